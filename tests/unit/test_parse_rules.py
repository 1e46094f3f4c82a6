"""Every OASIS CAP 1.2 rule the reader checks, one small document at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cap.errors import InvalidAlert, NotCap
from cap.findings import Finding
from cap.model import Category, MsgType, Scope, Status
from cap.parse import parse_alert, parse_datetime, read_alert, split_quoted
from cap.xml import parse_xml

NS = "urn:oasis:names:tc:emergency:cap:1.2"

HEAD = {
    "identifier": "<identifier>ID-1</identifier>",
    "sender": "<sender>test@example.org</sender>",
    "sent": "<sent>2024-07-13T11:47:04-06:00</sent>",
    "status": "<status>Actual</status>",
    "msgType": "<msgType>Alert</msgType>",
    "source": "",
    "scope": "<scope>Public</scope>",
    "restriction": "",
    "addresses": "",
    "code": "",
    "note": "",
    "references": "",
    "incidents": "",
}
INFO = {
    "language": "<language>en-US</language>",
    "category": "<category>Met</category>",
    "event": "<event>Flash Flood</event>",
    "responseType": "",
    "urgency": "<urgency>Immediate</urgency>",
    "severity": "<severity>Severe</severity>",
    "certainty": "<certainty>Observed</certainty>",
    "effective": "",
    "onset": "",
    "expires": "<expires>2024-07-13T18:00:00-06:00</expires>",
    "headline": "",
    "web": "",
    "resource": "",
    "area": "<area><areaDesc>Valley</areaDesc>"
            "<polygon>38.47,-120.14 38.34,-119.95 38.52,-119.74 38.47,-120.14</polygon></area>",
}


def doc(ns: str = NS, info: bool = True, **parts: str) -> bytes:
    head = {**HEAD, **{k: v for k, v in parts.items() if k in HEAD}}
    body = {**INFO, **{k: v for k, v in parts.items() if k in INFO}}
    unknown = set(parts) - set(HEAD) - set(INFO)
    assert not unknown, unknown
    info_xml = f"<info>{''.join(body.values())}</info>" if info else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="{ns}">'
            f"{''.join(head.values())}{info_xml}</alert>").encode()


def findings_of(data: bytes) -> list[Finding]:
    tree = parse_xml(data)
    _, findings = read_alert(tree.root, tree.root_ns)
    return findings


def codes(data: bytes, severity: str = "error") -> list[str]:
    return [f.code for f in findings_of(data) if f.severity.value == severity]


def only_error(data: bytes, code: str, path: str | None = None) -> Finding:
    errors = [f for f in findings_of(data) if f.is_error]
    assert [f.code for f in errors] == [code], errors
    if path is not None:
        assert errors[0].path == path
    return errors[0]


def test_baseline_document_is_valid() -> None:
    alert = parse_alert(doc())
    assert alert.identifier == "ID-1"
    assert alert.status is Status.ACTUAL and alert.msg_type is MsgType.ALERT
    assert alert.scope is Scope.PUBLIC
    assert alert.infos[0].categories == (Category.MET,)
    assert alert.infos[0].areas[0].polygons[0].points[0] == (38.47, -120.14)
    assert findings_of(doc()) == []


@pytest.mark.parametrize("name", ["identifier", "sender", "sent", "status", "msgType", "scope"])
def test_required_alert_elements(name: str) -> None:
    finding = only_error(doc(**{name: ""}), "cap-missing-element", f"alert/{name}")
    assert f"<{name}>" in finding.message


@pytest.mark.parametrize("name", ["category", "event", "urgency", "severity", "certainty"])
def test_required_info_elements(name: str) -> None:
    only_error(doc(**{name: ""}), "cap-missing-element", f"alert/info[0]/{name}")


def test_area_desc_and_resource_fields_are_required() -> None:
    only_error(doc(area="<area><circle>1,2 3</circle></area>"), "cap-missing-element",
               "alert/info[0]/area[0]/areaDesc")
    only_error(doc(resource="<resource><resourceDesc>map</resourceDesc></resource>"),
               "cap-missing-element", "alert/info[0]/resource[0]/mimeType")


@pytest.mark.parametrize(("name", "bad", "hint"), [
    ("status", "Real", None), ("msgType", "Updated", "Update"), ("scope", "Open", None),
    ("category", "Weather", None), ("urgency", "Now", None), ("severity", "Severer", "Severe"),
    ("certainty", "Probable", None),
])
def test_enumerations(name: str, bad: str, hint: str | None) -> None:
    finding = only_error(doc(**{name: f"<{name}>{bad}</{name}>"}), "cap-invalid-value")
    assert bad in finding.message
    if hint:
        assert finding.fix is not None and hint in finding.fix


def test_enumeration_case_is_an_error_with_the_fix() -> None:
    finding = only_error(doc(status="<status>actual</status>"), "cap-invalid-value")
    assert finding.fix == "write 'Actual'"


def test_very_likely_is_an_error_in_12_and_upgraded_from_11() -> None:
    only_error(doc(certainty="<certainty>Very Likely</certainty>"), "cap-invalid-value")
    alert = parse_alert(doc(ns="urn:oasis:names:tc:emergency:cap:1.1",
                            certainty="<certainty>Very Likely</certainty>"))
    assert alert.infos[0].certainty.value == "Likely"


@pytest.mark.parametrize("text", [
    "2024-07-13T11:47:04Z", "2024-07-13T11:47:04.5-06:00", "2024-07-13T11:47:04",
    "2024-07-13 11:47:04-06:00", "13/07/2024", "2024-07-13T11:47-06:00",
])
def test_datetime_pattern(text: str) -> None:
    errors = [f for f in findings_of(doc(sent=f"<sent>{text}</sent>")) if f.is_error]
    assert len(errors) == 1 and errors[0].path == "alert/sent"
    assert errors[0].code in {"cap-invalid-datetime", "cap-datetime-no-offset"}


def test_datetime_offsets() -> None:
    assert parse_datetime("2024-07-13T11:47:04+00:00") == datetime(2024, 7, 13, 11, 47, 4,
                                                                  tzinfo=UTC)
    assert parse_datetime("2024-07-13T11:47:04-00:00").utcoffset() == timedelta(0)
    value = parse_datetime("2024-07-13T11:47:04+05:30")
    assert value.utcoffset() == timedelta(hours=5, minutes=30)
    assert findings_of(doc(sent="<sent>2024-07-13T11:47:04+00:00</sent>")) == []


def test_impossible_date_is_an_error() -> None:
    only_error(doc(sent="<sent>2024-02-30T11:47:04-06:00</sent>"), "cap-invalid-datetime")


def test_cap11_z_and_fractions_are_upgraded_with_warnings() -> None:
    data = doc(ns="urn:oasis:names:tc:emergency:cap:1.1",
               sent="<sent>2024-07-13T11:47:04.123Z</sent>")
    alert = parse_alert(data)
    assert alert.sent == datetime(2024, 7, 13, 11, 47, 4, tzinfo=UTC)
    assert "cap-upgraded" in codes(data, "warning")


def test_polygon_needs_four_points() -> None:
    only_error(doc(area="<area><areaDesc>x</areaDesc><polygon>1,1 2,2 1,1</polygon></area>"),
               "cap-polygon-too-few-points", "alert/info[0]/area[0]/polygon[0]")


def test_polygon_must_be_closed_and_fix_names_the_pair() -> None:
    finding = only_error(
        doc(area="<area><areaDesc>x</areaDesc><polygon>1,1 2,2 3,1 1,2</polygon></area>"),
        "cap-polygon-not-closed")
    assert finding.fix == "append 1,1"


def test_polygon_path_counts_polygons() -> None:
    area = ("<area><areaDesc>x</areaDesc><polygon>1,1 2,2 3,1 1,1</polygon>"
            "<polygon>1,1 2,2 1,1</polygon></area>")
    only_error(doc(area=area), "cap-polygon-too-few-points", "alert/info[0]/area[0]/polygon[1]")


def test_polygon_syntax_names_the_bad_pair() -> None:
    finding = only_error(
        doc(area="<area><areaDesc>x</areaDesc><polygon>1,1 2, 2 3,1 1,1</polygon></area>"),
        "cap-invalid-polygon")
    assert "'2,'" in finding.message


def test_polygon_pairs_may_be_separated_by_newlines() -> None:
    area = "<area><areaDesc>x</areaDesc><polygon>1,1\n2,2\n\t3,1   1,1\n</polygon></area>"
    alert = parse_alert(doc(area=area))
    assert len(alert.infos[0].areas[0].polygons[0].points) == 4


def test_polygon_in_lon_lat_order_gets_a_hint() -> None:
    ring = "-120.14,38.47 -119.95,38.34 -119.74,38.52 -120.14,38.47"
    finding = only_error(doc(area=f"<area><areaDesc>x</areaDesc><polygon>{ring}</polygon></area>"),
                         "cap-polygon-out-of-range")
    assert finding.fix is not None and "lon,lat" in finding.fix


def test_polygon_longitude_out_of_range() -> None:
    finding = only_error(
        doc(area="<area><areaDesc>x</areaDesc><polygon>1,1 2,200 3,1 1,1</polygon></area>"),
        "cap-polygon-out-of-range")
    assert "200" in finding.message and finding.fix is None


def test_self_intersecting_polygon_is_a_warning() -> None:
    bowtie = "0,0 1,1 1,0 0,1 0,0"
    data = doc(area=f"<area><areaDesc>x</areaDesc><polygon>{bowtie}</polygon></area>")
    assert codes(data) == []
    assert codes(data, "warning") == ["cap-polygon-self-intersection"]


def test_empty_polygon_is_dropped_with_a_warning() -> None:
    data = doc(area="<area><areaDesc>x</areaDesc><polygon></polygon></area>")
    assert codes(data, "warning") == ["cap-empty-polygon"]
    assert parse_alert(data).infos[0].areas[0].polygons == ()


@pytest.mark.parametrize(("circle", "code"), [
    ("32.9,-115.5", "cap-invalid-circle"), ("32.9 -115.5 10", "cap-invalid-circle"),
    ("32.9,-115.5 -1", "cap-circle-negative-radius"), ("-115.5,32.9 10",
                                                        "cap-circle-out-of-range"),
    ("", "cap-empty-element"),
])
def test_circle_syntax(circle: str, code: str) -> None:
    only_error(doc(area=f"<area><areaDesc>x</areaDesc><circle>{circle}</circle></area>"), code,
               "alert/info[0]/area[0]/circle[0]")


def test_circle_radius_zero_is_a_point() -> None:
    alert = parse_alert(doc(area="<area><areaDesc>x</areaDesc>"
                                 "<circle>-6.2,106.8 0</circle></area>"))
    circle = alert.infos[0].areas[0].circles[0]
    assert (circle.lat, circle.lon, circle.radius_km) == (-6.2, 106.8, 0.0)


def test_references_are_triplets() -> None:
    refs = ("<references>a@b.org,ID-0,2024-07-13T10:00:00-06:00 "
            "a@b.org,ID-00,2024-07-13T09:00:00-06:00</references>")
    alert = parse_alert(doc(msgType="<msgType>Update</msgType>", references=refs))
    assert [r.identifier for r in alert.references] == ["ID-0", "ID-00"]
    only_error(doc(references="<references>a@b.org,ID-0</references>"),
               "cap-invalid-reference")


def test_self_reference_is_an_error() -> None:
    refs = "<references>test@example.org,ID-1,2024-07-13T11:47:04-06:00</references>"
    only_error(doc(msgType="<msgType>Update</msgType>", references=refs), "cap-self-reference")


def test_postdated_reference_is_a_warning() -> None:
    refs = "<references>a@b.org,ID-0,2025-01-01T00:00:00-00:00</references>"
    data = doc(msgType="<msgType>Cancel</msgType>", references=refs)
    assert codes(data, "warning") == ["cap-reference-postdated"]


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
def test_update_and_cancel_need_references(msg_type: str) -> None:
    only_error(doc(msgType=f"<msgType>{msg_type}</msgType>"), "cap-references-required")
    only_error(doc(msgType=f"<msgType>{msg_type}</msgType>", references="<references/>"),
               "cap-references-required")


@pytest.mark.parametrize(("value", "char"), [("ID 1", "space"), ("ID,1", "comma"),
                                             ("ID&amp;1", "'&'"), ("ID&lt;1", "'<'")])
def test_identifier_and_sender_characters(value: str, char: str) -> None:
    finding = only_error(doc(identifier=f"<identifier>{value}</identifier>"),
                         "cap-forbidden-character", "alert/identifier")
    assert char in finding.message
    only_error(doc(sender=f"<sender>{value}</sender>"), "cap-forbidden-character",
               "alert/sender")


def test_private_scope_needs_addresses() -> None:
    only_error(doc(scope="<scope>Private</scope>"), "cap-addresses-required")
    alert = parse_alert(doc(scope="<scope>Private</scope>",
                            addresses='<addresses>ops@a.org "Duty Desk"</addresses>'))
    assert alert.addresses == ("ops@a.org", "Duty Desk")


def test_restricted_scope_needs_restriction() -> None:
    only_error(doc(scope="<scope>Restricted</scope>"), "cap-restriction-required")


def test_expires_after_effective_and_onset() -> None:
    only_error(doc(effective="<effective>2024-07-13T19:00:00-06:00</effective>"),
               "cap-expires-before-effective", "alert/info[0]/expires")
    only_error(doc(onset="<onset>2024-07-13T19:00:00-06:00</onset>"),
               "cap-expires-before-onset")


def test_mime_type_syntax() -> None:
    bad = "<resource><resourceDesc>map</resourceDesc><mimeType>png</mimeType></resource>"
    only_error(doc(resource=bad), "cap-invalid-mime-type",
               "alert/info[0]/resource[0]/mimeType")
    good = ("<resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType>"
            "<size>120</size><uri>http://x.org/m.png</uri></resource>")
    assert parse_alert(doc(resource=good)).infos[0].resources[0].size == 120


def test_deref_uri_must_be_base64() -> None:
    bad = ("<resource><resourceDesc>a</resourceDesc><mimeType>audio/mpeg</mimeType>"
           "<derefUri>not base64!</derefUri></resource>")
    only_error(doc(resource=bad), "cap-invalid-base64")


def test_unknown_element_suggests_the_right_one() -> None:
    finding = only_error(doc(headline="<headLine>x</headLine>"), "cap-unknown-element",
                         "alert/info[0]/headLine")
    assert finding.fix == "did you mean <headline>?"


def test_element_order_is_checked() -> None:
    data = doc(identifier="", sent="<sent>2024-07-13T11:47:04-06:00</sent>"
                                   "<identifier>ID-1</identifier>")
    finding = only_error(data, "cap-element-order", "alert/identifier")
    assert "before <sent>" in finding.message


def test_repeated_single_element_is_an_error() -> None:
    only_error(doc(event="<event>a</event><event>b</event>"), "cap-repeated-element")


def test_element_in_another_namespace_is_an_error() -> None:
    data = doc(note='<note xmlns="urn:oasis:names:tc:emergency:cap:1.1">x</note>')
    only_error(data, "cap-wrong-namespace", "alert/note")


def test_foreign_extension_element_is_an_error() -> None:
    only_error(doc(note='<x:extra xmlns:x="urn:example">1</x:extra>'), "cap-unknown-element")


def test_signature_is_allowed_at_the_end() -> None:
    data = doc().replace(b"</alert>", b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/>'
                                      b"</alert>")
    assert parse_alert(data).signed


def test_text_instead_of_elements_is_an_error() -> None:
    data = doc(area="<area>Valley</area>")
    assert codes(data) == ["cap-unexpected-text", "cap-missing-element"]
    assert findings_of(data)[0].path == "alert/info[0]/area[0]"


def test_cap10_name_value_pairs_are_upgraded() -> None:
    data = doc(ns="http://www.incident.com/cap/1.0",
               area="<area><areaDesc>x</areaDesc><geocode>fips6=006109</geocode></area>")
    geocode = parse_alert(data).infos[0].areas[0].geocodes[0]
    assert (geocode.value_name, geocode.value) == ("FIPS6", "006109")


def test_upgrade_is_reported() -> None:
    warnings = [f for f in findings_of(doc(ns="urn:oasis:names:tc:emergency:cap:1.1"))
                if f.code == "cap-upgraded"]
    assert warnings and "CAP 1.1" in warnings[0].message


def test_alert_without_info_is_valid_with_a_warning() -> None:
    data = doc(info=False)
    assert parse_alert(data).infos == ()
    assert codes(data, "warning") == ["cap-no-info"]


def test_invalid_alert_carries_every_error() -> None:
    with pytest.raises(InvalidAlert) as info:
        parse_alert(doc(status="<status>x</status>", scope="", event=""))
    assert len([f for f in info.value.findings if f.is_error]) == 3
    assert "alert/status" in str(info.value)


def test_unknown_root_and_namespace_are_refused() -> None:
    with pytest.raises(NotCap, match="urn:example"):
        parse_alert(b'<alert xmlns="urn:example"/>')
    with pytest.raises(NotCap, match="no namespace"):
        parse_alert(b"<alert/>")
    with pytest.raises(NotCap, match="html"):
        parse_alert(b"<html/>")


def test_split_quoted() -> None:
    assert split_quoted('a b "c d" e') == ("a", "b", "c d", "e")
    assert split_quoted("") == ()


def test_markup_in_text_is_a_warning() -> None:
    data = doc(headline="<headline>Flood&lt;br/&gt;warning</headline>")
    assert codes(data) == []
    assert codes(data, "warning") == ["cap-markup-in-text"]
    assert codes(doc(headline="<headline>Rain 5 &lt; 10 mm &amp; wind</headline>"),
                 "warning") == []


def test_long_headline_is_a_warning() -> None:
    assert codes(doc(headline=f"<headline>{'x' * 161}</headline>"), "warning") == [
        "cap-long-headline"]
    assert codes(doc(headline=f"<headline>{'x' * 160}</headline>"), "warning") == []


def test_restriction_without_restricted_scope_is_a_warning() -> None:
    data = doc(restriction="<restriction>staff only</restriction>")
    assert codes(data, "warning") == ["cap-restriction-ignored"]


def test_exercise_should_name_the_exercise() -> None:
    assert codes(doc(status="<status>Exercise</status>"), "warning") == ["cap-note-expected"]
    assert codes(doc(status="<status>Exercise</status>", note="<note>Ex SHAKE-24</note>"),
                 "warning") == []


def test_relative_resource_uri_needs_deref_uri() -> None:
    relative = ("<resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType>"
                "<uri>map.png</uri></resource>")
    assert codes(doc(resource=relative), "warning") == ["cap-invalid-uri"]
    embedded = relative.replace("</uri>", "</uri><derefUri>aGVsbG8=</derefUri>")
    assert codes(doc(resource=embedded), "warning") == []


def test_web_must_be_absolute() -> None:
    assert codes(doc(web="<web>www.meteo.dz</web>"), "warning") == ["cap-invalid-uri"]
