"""Hostile and broken XML is refused with a clear error and never crashes the parser."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cap.errors import XmlRefused
from cap.validate import validate
from cap.xml import parse_xml

ALERT = """<?xml version="1.0" encoding="{enc}"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>TEST-1</identifier>
  <sender>test@example.org</sender>
  <sent>2024-07-13T11:47:04-06:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Met</category>
    <event>{event}</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <area><areaDesc>Somewhere</areaDesc></area>
  </info>
</alert>
"""


def alert_bytes(event: str = "Flood", enc: str = "UTF-8", codec: str = "utf-8") -> bytes:
    return ALERT.format(enc=enc, event=event).encode(codec)


def refused(data: bytes, **kwargs: int) -> XmlRefused:
    with pytest.raises(XmlRefused) as info:
        parse_xml(data, **kwargs)
    return info.value


def test_plain_alert_parses_without_warnings() -> None:
    tree = parse_xml(alert_bytes())
    assert (tree.root_ns, tree.root_name) == ("urn:oasis:names:tc:emergency:cap:1.2", "alert")
    assert tree.warnings == []


def test_size_limit_is_checked_before_parsing() -> None:
    data = alert_bytes()
    exc = refused(data, max_bytes=len(data) - 1)
    assert exc.code == "xml-too-large"
    assert f"{len(data):,} bytes" in exc.message
    parse_xml(data, max_bytes=len(data))


def test_default_limit_is_one_mebibyte() -> None:
    padding = "x" * (1 << 20)
    assert refused(alert_bytes(event=padding)).code == "xml-too-large"


def test_billion_laughs_is_refused_as_a_dtd() -> None:
    data = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol4;</identifier></alert>"""
    exc = refused(data)
    assert exc.code == "xml-dtd-forbidden"
    assert exc.line == 2


def test_external_entity_is_never_resolved(tmp_path: object) -> None:
    data = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""
    exc = refused(data)
    assert exc.code == "xml-dtd-forbidden"
    assert "root:" not in str(exc)


def test_external_dtd_and_parameter_entities_are_refused() -> None:
    data = b"""<?xml version="1.0"?>
<!DOCTYPE alert PUBLIC "-//A/B/EN" "http://example.invalid/payload.dtd" [
  <!ENTITY % remote SYSTEM "http://example.invalid/payload2">
  %remote;
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>"""
    assert refused(data).code == "xml-dtd-forbidden"


def test_google_xxe_feed_is_refused(corpus) -> None:  # type: ignore[no-untyped-def]
    data = (corpus / "google-cap-library/feeds/xee.atom").read_bytes()
    assert refused(data).code == "xml-dtd-forbidden"


def test_xinclude_is_refused() -> None:
    data = b"""<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"
  xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/></alert>"""
    exc = refused(data)
    assert exc.code == "xml-xinclude-forbidden"
    assert exc.line == 2


def test_excessive_nesting_is_refused() -> None:
    depth = 5000
    data = b"<a>" * depth + b"</a>" * depth
    exc = refused(data)
    assert exc.code == "xml-too-deep"
    parse_xml(b"<a>" * 50 + b"</a>" * 50)


def test_bytes_contradicting_utf8_declaration_name_line_and_column() -> None:
    data = alert_bytes(event="Crue de la Seine à Paris", codec="latin-1")
    exc = refused(data)
    assert exc.code == "xml-encoding-mismatch"
    assert exc.line == 11
    assert exc.column == len("    <event>Crue de la Seine ") + 1
    assert "0xE0" in exc.message


def test_utf8_bytes_declared_as_latin1_are_refused() -> None:
    data = alert_bytes(event="Crue à Paris", enc="ISO-8859-1", codec="utf-8")
    exc = refused(data)
    assert exc.code == "xml-encoding-mismatch"
    assert "UTF-8" in exc.message


def test_latin1_declared_and_encoded_is_read_correctly() -> None:
    tree = parse_xml(alert_bytes(event="Crue à Paris", enc="ISO-8859-1", codec="latin-1"))
    info = tree.root["urn:oasis:names:tc:emergency:cap:1.2:info"]
    assert info["urn:oasis:names:tc:emergency:cap:1.2:event"] == "Crue à Paris"
    assert tree.encoding == "iso8859-1"


def test_utf16_declaration_on_8bit_bytes_is_refused() -> None:
    assert refused(alert_bytes(enc="UTF-16")).code == "xml-encoding-mismatch"


def test_utf16_with_bom_is_accepted_with_a_warning() -> None:
    data = codecs.BOM_UTF16_LE + alert_bytes(enc="UTF-16", event="Überflutung",
                                             codec="utf-16-le")
    tree = parse_xml(data)
    assert [w.code for w in tree.warnings] == ["xml-byte-order-mark"]


def test_unknown_encoding_is_refused() -> None:
    exc = refused(alert_bytes(enc="KLINGON-8"))
    assert exc.code == "xml-unknown-encoding"
    assert "KLINGON-8" in exc.message


def test_utf8_bom_is_accepted_with_a_warning() -> None:
    tree = parse_xml(codecs.BOM_UTF8 + alert_bytes())
    assert [w.code for w in tree.warnings] == ["xml-byte-order-mark"]


def test_utf8_bom_contradicting_declaration_is_refused() -> None:
    exc = refused(codecs.BOM_UTF8 + alert_bytes(enc="ISO-8859-1"))
    assert exc.code == "xml-encoding-mismatch"


def test_whitespace_before_declaration_is_accepted_with_a_warning() -> None:
    tree = parse_xml(b"\n  \n" + alert_bytes())
    assert [w.code for w in tree.warnings] == ["xml-leading-whitespace"]
    assert validate(b"\n  " + alert_bytes()).valid


def test_undeclared_prefix_is_refused_with_position() -> None:
    data = b'<?xml version="1.0"?>\n<cap:alert>\n</cap:alert>'
    exc = refused(data)
    assert exc.code == "xml-unbound-prefix"
    assert (exc.line, exc.column) == (2, 1)
    assert exc.fix is not None and "xmlns:cap" in exc.fix


def test_malformed_xml_names_line_and_column() -> None:
    data = alert_bytes().replace(b"</event>", b"</evnt>")
    exc = refused(data)
    assert exc.code == "xml-malformed"
    assert exc.line == 11
    assert "mismatched tag" in exc.message


def test_undefined_entity_is_refused() -> None:
    exc = refused(alert_bytes(event="Flood&nbsp;Warning"))
    assert exc.code == "xml-undefined-entity"
    assert exc.line == 11


def test_empty_document_is_refused() -> None:
    assert refused(b"").code == "xml-empty"
    assert refused(b"  \n").code == "xml-empty"


def test_text_is_not_accepted() -> None:
    with pytest.raises(TypeError):
        parse_xml(ALERT)  # type: ignore[arg-type]


def test_refusals_become_findings_in_validate() -> None:
    report = validate(b"<alert")
    assert report.kind == "refused"
    assert not report.valid
    (finding,) = report.errors
    assert finding.code == "xml-malformed"
    assert finding.line == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_validate(data: bytes) -> None:
    report = validate(data)
    assert not report.valid or report.kind != "refused"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_alerts_never_crash_validate(data: st.DataObject) -> None:
    original = bytearray(alert_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            original[position] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del original[position]
        else:
            original.insert(position, data.draw(st.sampled_from(b"<>&;\"'/=:x \x00\xff")))
    report = validate(bytes(original))
    assert isinstance(report.valid, bool)
