"""Reading EDXL-DE 1.0 distributions that carry CAP alerts (sans-IO).

An OASIS EDXL Distribution Element wraps one or more ``contentObject``\\ s;
the CAP alerts capcast cares about sit in ``xmlContent/embeddedXMLContent``
(or, rarely, base64-encoded in ``nonXMLContent/contentData``, or referenced by
``nonXMLContent/uri`` with a CAP media type). :func:`read_distribution` walks
the tree once, builds a :class:`Distribution` and reports every EDXL-DE rule
broken as a :class:`~cap.findings.Finding`; the embedded alerts themselves are
left to :func:`cap.parse.read_alert`.

Rules and their codes (paths like ``EDXLDistribution/contentObject[2]/xmlContent``):

========================================  =======  ==============================================
code                                      level    rule
========================================  =======  ==============================================
edxl-distribution-id-required             error    ``distributionID`` present and not empty
edxl-sender-id-required                   error    ``senderID`` present and not empty
edxl-date-time-sent-required              error    ``dateTimeSent`` present and not empty
edxl-distribution-status-required         error    ``distributionStatus`` present and not empty
edxl-distribution-type-required           error    ``distributionType`` present and not empty
edxl-combined-confidentiality-required    error    ``combinedConfidentiality`` present, not empty
edxl-invalid-date-time                    error    ``dateTimeSent`` is an xs:dateTime with offset
edxl-date-time-zulu                       warning  "Z" instead of a numeric offset (-00:00)
edxl-invalid-distribution-status          error    Actual, Exercise, System or Test
edxl-invalid-distribution-type            error    one of the twelve EDXL-DE 1.0 types
edxl-sender-id-format                     warning  ``senderID`` in the form actor@domain
edxl-unknown-element                      error    element not in the EDXL-DE 1.0 schema here
edxl-duplicate-element                    error    a non-repeatable element occurs twice
edxl-element-order                        error    schema sequence order
edxl-unexpected-text                      error    text between elements
edxl-value-list-incomplete                error    valueListUrn and at least one value
edxl-explicit-address-incomplete          error    explicitAddressScheme and a value
edxl-content-object-required              error    at least one ``contentObject`` (Google's
                                                   EDXLDE_CONTENT_OBJECT_IS_REQUIRED)
edxl-content-missing                      error    a contentObject has xmlContent or nonXMLContent
edxl-content-both                         error    ... but not both (schema choice)
edxl-embedded-xml-empty                   error    embeddedXMLContent holds an element
edxl-mime-type-required                   error    nonXMLContent has a mimeType
edxl-invalid-size                         error    size is a non-negative integer
edxl-size-mismatch                        warning  size equals the length of contentData
edxl-content-data-invalid                 error    contentData is valid base64
edxl-digest-mismatch                      error    digest (SHA-1) matches contentData
edxl-uri-not-http                         warning  a CAP uri capcast would fetch is http(s)
edxl-no-cap-in-content-object             warning  a contentObject holds or points to no CAP
                                                   (Google: EDXLDE_NO_CAP_IN_CONTENT_OBJECT)
edxl-no-cap                               error    the distribution carries no CAP at all
========================================  =======  ==============================================

Google's cap-library reports EDXLDE_NO_CAP_IN_CONTENT_OBJECT as an error for
every content object without CAP; EDXL-DE legitimately carries other payloads
next to an alert (maps, documents), so here that is a warning and only a
distribution with no CAP at all is an error.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cap.containers import (
    CAP_MEDIA_TYPES,
    EmbeddedAlert,
    alert_from_document,
    child_path,
    find_alerts,
    has_elements,
    is_xml_media_type,
    iter_children,
    media_type,
    parse_iso_loose,
    parse_rfc3339,
    text_of,
)
from cap.errors import NotCap
from cap.findings import Finding, Findings
from cap.xml import DEFAULT_MAX_BYTES, XmlTree, parse_xml

EDXL_DE_NS = "urn:oasis:names:tc:emergency:EDXL:DE:1.0"

DISTRIBUTION_STATUSES = ("Actual", "Exercise", "System", "Test")
DISTRIBUTION_TYPES = ("Report", "Update", "Cancel", "Request", "Response", "Dispatch", "Ack",
                      "Error", "SensorConfiguration", "SensorControl", "SensorStatus",
                      "SensorDetection")

DISTRIBUTION_SEQ = ("distributionID", "senderID", "dateTimeSent", "distributionStatus",
                    "distributionType", "combinedConfidentiality", "language", "senderRole",
                    "recipientRole", "keyword", "distributionReference", "explicitAddress",
                    "targetArea", "contentObject")
CONTENT_OBJECT_SEQ = ("contentDescription", "contentKeyword", "incidentID",
                      "incidentDescription", "originatorRole", "consumerRole", "confidentiality",
                      "nonXMLContent", "xmlContent")
NON_XML_SEQ = ("mimeType", "size", "digest", "uri", "contentData")
XML_CONTENT_SEQ = ("keyXMLContent", "embeddedXMLContent")
TARGET_AREA_SEQ = ("circle", "polygon", "country", "subdivision", "locCodeUN")
VALUE_LIST_SEQ = ("valueListUrn", "value")
EXPLICIT_ADDRESS_SEQ = ("explicitAddressScheme", "explicitAddressValue")
REPEATABLE = frozenset({"senderRole", "recipientRole", "keyword", "distributionReference",
                        "explicitAddress", "targetArea", "contentObject", "contentKeyword",
                        "originatorRole", "consumerRole", "keyXMLContent", "embeddedXMLContent",
                        "value", "explicitAddressValue", *TARGET_AREA_SEQ})
_VALUE_LISTS = frozenset({"senderRole", "recipientRole", "keyword", "contentKeyword",
                          "originatorRole", "consumerRole"})
_REQUIRED = (("distributionID", "edxl-distribution-id-required"),
             ("senderID", "edxl-sender-id-required"),
             ("dateTimeSent", "edxl-date-time-sent-required"),
             ("distributionStatus", "edxl-distribution-status-required"),
             ("distributionType", "edxl-distribution-type-required"),
             ("combinedConfidentiality", "edxl-combined-confidentiality-required"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Distribution:
    """An EDXL-DE 1.0 distribution, reduced to what a CAP dispatcher needs.

    ``embedded`` lists the CAP alerts carried inline; ``cap_links`` the URIs
    of CAP documents that ``nonXMLContent`` points to (http and https only).
    """

    distribution_id: str | None
    sender_id: str | None
    date_time_sent: datetime | None
    distribution_status: str | None
    distribution_type: str | None
    combined_confidentiality: str | None = None
    language: str | None = None
    embedded: tuple[EmbeddedAlert, ...] = ()
    cap_links: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.date_time_sent is not None and self.date_time_sent.utcoffset() is None:
            raise ValueError("date_time_sent must be timezone-aware")


Groups = dict[str, list[tuple[str, Any]]]


class _Reader:
    """Walks one EDXLDistribution element, collecting findings."""

    def __init__(self, findings: Findings) -> None:
        self.f = findings
        self.embedded: list[EmbeddedAlert] = []
        self.cap_links: list[str] = []

    # -- structure ---------------------------------------------------------

    def group(self, raw: Any, path: str, seq: tuple[str, ...], *,
              foreign_ok: bool = False) -> Groups:
        """Group the EDXL children of ``raw`` by name, checking names, order and counts."""
        groups: Groups = {}
        if isinstance(raw, str) and raw.strip():
            self.f.error("edxl-unexpected-text", path,
                         f"<{_local(path)}> must contain elements, not text")
            return groups
        if isinstance(raw, dict) and text_of(raw):
            self.f.error("edxl-unexpected-text", path,
                         f"text {text_of(raw)[:40]!r} is not allowed between elements")
        last, last_name = -1, ""
        for ns, name, index, value in iter_children(raw):
            always = name == "contentObject"
            here = child_path(path, name, 0 if always and index is None else index)
            if ns != EDXL_DE_NS:
                if not foreign_ok:
                    where = f"{{{ns}}}{name}" if ns else name
                    self.f.error("edxl-unknown-element", here,
                                 f"<{where}> is not allowed in <{_local(path)}>; EDXL-DE 1.0 "
                                 "allows other namespaces only at the end of a contentObject")
                continue
            if name not in seq:
                close = difflib.get_close_matches(name, seq, n=1)
                self.f.error("edxl-unknown-element", here,
                             f"<{name}> is not an EDXL-DE 1.0 element of <{_local(path)}>",
                             f"did you mean <{close[0]}>?" if close else
                             f"allowed here: {', '.join(seq)}")
                continue
            position = seq.index(name)
            if position < last:
                self.f.error("edxl-element-order", here,
                             f"<{name}> must come before <{last_name}>",
                             f"order: {', '.join(seq)}")
            elif position > last:
                last, last_name = position, name
            entries = groups.setdefault(name, [])
            if entries and name not in REPEATABLE:
                if len(entries) == 1:
                    self.f.error("edxl-duplicate-element", here,
                                 f"<{name}> may occur only once in <{_local(path)}>")
                continue
            entries.append((here, value))
        return groups

    def single_text(self, groups: Groups, name: str, path: str,
                    required_code: str | None = None) -> str | None:
        """The text of a non-repeatable child, reporting it when required and missing."""
        items = groups.get(name)
        if not items:
            if required_code:
                self.f.error(required_code, f"{path}/{name}",
                             f"<{name}> is required in <{_local(path)}>")
            return None
        here, value = items[0]
        if has_elements(value):
            self.f.error("edxl-unexpected-text", here, f"<{name}> must contain text only")
        text = text_of(value)
        if not text and required_code:
            self.f.error(required_code, here, f"<{name}> is empty")
            return None
        return text or None

    # -- distribution --------------------------------------------------------

    def distribution(self, raw: Any, path: str) -> Distribution:
        """Read the distribution element and everything in it."""
        groups = self.group(raw, path, DISTRIBUTION_SEQ)
        values = {name: self.single_text(groups, name, path, code) for name, code in _REQUIRED}
        language = self.single_text(groups, "language", path)

        sent = self.date_time(values["dateTimeSent"], f"{path}/dateTimeSent")
        sender = values["senderID"]
        if sender is not None and "@" not in sender:
            self.f.warning("edxl-sender-id-format", f"{path}/senderID",
                           f"senderID {sender!r} is not in the form actor@domain",
                           "identify the sender like webmaster@agency.example")
        status = self.enumerated(values["distributionStatus"], DISTRIBUTION_STATUSES,
                                 f"{path}/distributionStatus", "edxl-invalid-distribution-status")
        kind = self.enumerated(values["distributionType"], DISTRIBUTION_TYPES,
                               f"{path}/distributionType", "edxl-invalid-distribution-type")

        for name in _VALUE_LISTS & groups.keys():
            for here, value in groups[name]:
                self.value_list(value, here)
        for here, value in groups.get("explicitAddress", []):
            sub = self.group(value, here, EXPLICIT_ADDRESS_SEQ)
            if not sub.get("explicitAddressScheme") or not sub.get("explicitAddressValue"):
                self.f.error("edxl-explicit-address-incomplete", here,
                             "<explicitAddress> needs <explicitAddressScheme> and at least one "
                             "<explicitAddressValue>")
        for here, value in groups.get("targetArea", []):
            self.group(value, here, TARGET_AREA_SEQ)

        objects = groups.get("contentObject", [])
        if not objects:
            self.f.error("edxl-content-object-required", f"{path}/contentObject",
                         "the distribution has no <contentObject>, so it carries no CAP alert",
                         "embed the CAP <alert> in contentObject/xmlContent/embeddedXMLContent")
        for here, value in objects:
            self.content_object(value, here)
        if objects and not self.embedded and not self.cap_links:
            self.f.error("edxl-no-cap", path,
                         "no contentObject holds a CAP alert or points to one",
                         "embed the CAP <alert> in contentObject/xmlContent/embeddedXMLContent")

        return Distribution(
            distribution_id=values["distributionID"], sender_id=sender, date_time_sent=sent,
            distribution_status=status, distribution_type=kind,
            combined_confidentiality=values["combinedConfidentiality"], language=language,
            embedded=tuple(self.embedded), cap_links=tuple(dict.fromkeys(self.cap_links)))

    def date_time(self, text: str | None, path: str) -> datetime | None:
        """Parse dateTimeSent, reporting a missing offset or a "Z"."""
        if text is None:
            return None
        try:
            value = parse_rfc3339(text)
        except ValueError:
            self.f.error("edxl-invalid-date-time", path,
                         f"dateTimeSent {text!r} is not a date and time with a UTC offset",
                         "write it like 2011-10-17T11:18:00-00:00")
            return parse_iso_loose(text)
        if text.endswith("Z"):
            self.f.warning("edxl-date-time-zulu", path,
                           f"dateTimeSent {text!r} uses \"Z\"; EDXL-DE, like CAP, expects a "
                           "numeric offset", "write UTC as -00:00")
        return value

    def enumerated(self, text: str | None, allowed: tuple[str, ...], path: str,
                   code: str) -> str | None:
        """Check an enumerated value; return it when allowed."""
        if text is None:
            return None
        if text in allowed:
            return text
        close = difflib.get_close_matches(text, allowed, n=1)
        self.f.error(code, path, f"{text!r} is not one of {', '.join(allowed)}",
                     f"did you mean {close[0]!r}?" if close else None)
        return None

    def value_list(self, raw: Any, path: str) -> None:
        """Check a valueListType element (valueListUrn + value+)."""
        sub = self.group(raw, path, VALUE_LIST_SEQ)
        if not sub.get("valueListUrn") or not sub.get("value"):
            self.f.error("edxl-value-list-incomplete", path,
                         f"<{_local(path)}> needs a <valueListUrn> and at least one <value>")

    # -- content -------------------------------------------------------------

    def content_object(self, raw: Any, path: str) -> None:
        """Check one contentObject and collect the CAP it carries."""
        groups = self.group(raw, path, CONTENT_OBJECT_SEQ, foreign_ok=True)
        for name in _VALUE_LISTS & groups.keys():
            for here, value in groups[name]:
                self.value_list(value, here)
        before = len(self.embedded) + len(self.cap_links)
        non_xml, xml = groups.get("nonXMLContent"), groups.get("xmlContent")
        if non_xml and xml:
            self.f.error("edxl-content-both", path,
                         "a contentObject holds either <nonXMLContent> or <xmlContent>, "
                         "not both", "put each payload in its own contentObject")
        elif not non_xml and not xml:
            self.f.error("edxl-content-missing", f"{path}/xmlContent",
                         "the contentObject has neither <xmlContent> nor <nonXMLContent>",
                         "embed the CAP <alert> in xmlContent/embeddedXMLContent")
        for here, value in xml or []:
            self.xml_content(value, here)
        for here, value in non_xml or []:
            self.non_xml_content(value, here)
        if (non_xml or xml) and len(self.embedded) + len(self.cap_links) == before:
            self.f.warning("edxl-no-cap-in-content-object", path,
                           "this contentObject neither holds a CAP alert nor points to one")

    def xml_content(self, raw: Any, path: str) -> None:
        """Collect the CAP alerts inside xmlContent/embeddedXMLContent."""
        groups = self.group(raw, path, XML_CONTENT_SEQ)
        for here, value in groups.get("embeddedXMLContent", []):
            if not has_elements(value):
                self.f.error("edxl-embedded-xml-empty", here,
                             "<embeddedXMLContent> must hold an XML element (the CAP <alert>)")
                continue
            self.embedded.extend(find_alerts(value, here))

    def non_xml_content(self, raw: Any, path: str) -> None:
        """Check nonXMLContent; a CAP media type yields a link or a decoded alert."""
        groups = self.group(raw, path, NON_XML_SEQ)
        mime = media_type(self.single_text(groups, "mimeType", path, "edxl-mime-type-required"))
        size_text = self.single_text(groups, "size", path)
        digest = self.single_text(groups, "digest", path)
        uri = self.single_text(groups, "uri", path)
        data_text = self.single_text(groups, "contentData", path)
        is_cap = mime in CAP_MEDIA_TYPES
        size: int | None = None
        if size_text is not None:
            if size_text.isdigit():
                size = int(size_text)
            else:
                self.f.error("edxl-invalid-size", f"{path}/size",
                             f"size {size_text!r} is not a whole number of bytes")
        if uri is not None and is_cap:
            if uri.lower().startswith(("http://", "https://")):
                self.cap_links.append(uri)
            else:
                self.f.warning("edxl-uri-not-http", f"{path}/uri",
                               f"the CAP uri {uri!r} is not an http(s) URL; capcast will not "
                               "fetch it")
        if data_text is None:
            return
        try:
            data = base64.b64decode("".join(data_text.split()), validate=True)
        except (binascii.Error, ValueError):
            self.f.error("edxl-content-data-invalid", f"{path}/contentData",
                         "<contentData> is not valid base64")
            return
        if size is not None and size != len(data):
            self.f.warning("edxl-size-mismatch", f"{path}/size",
                           f"size says {size} bytes but contentData holds {len(data)}")
        if digest is not None and not _digest_matches(digest, data):
            self.f.error("edxl-digest-mismatch", f"{path}/digest",
                         "the SHA-1 digest does not match contentData; the content may have "
                         "been altered", "recompute the digest over the decoded bytes")
            return
        if is_cap or is_xml_media_type(mime):
            alert, problem = alert_from_document(data, f"{path}/contentData")
            if alert is not None:
                self.embedded.append(alert)
            elif is_cap:
                self.f.error("edxl-content-data-invalid", f"{path}/contentData",
                             f"contentData is labelled {mime} but {problem}")


def _digest_matches(digest: str, data: bytes) -> bool:
    """True when ``digest`` is the SHA-1 of ``data`` in hex or base64."""
    sha1 = hashlib.sha1(data).digest()
    cleaned = "".join(digest.split())
    if cleaned.lower() == sha1.hex():
        return True
    try:
        return base64.b64decode(cleaned, validate=True) == sha1
    except (binascii.Error, ValueError):
        return False


def _local(path: str) -> str:
    return path.rsplit("/", 1)[-1].split("[", 1)[0]


def read_distribution_element(raw: Any, *, path: str = "EDXLDistribution",
                              ) -> tuple[Distribution, list[Finding]]:
    """Read one ``EDXLDistribution`` element as :func:`cap.xml.parse_xml` built it.

    ``path`` prefixes every finding and embedded alert path; the feed reader
    passes e.g. ``feed/entry[0]/content/EDXLDistribution`` for a distribution
    inside an Atom entry.
    """
    findings = Findings()
    distribution = _Reader(findings).distribution(raw, path)
    return distribution, findings.items


def read_distribution(tree: XmlTree) -> tuple[Distribution, list[Finding]]:
    """Read a parsed EDXL-DE 1.0 document: the distribution and the EDXL-DE rules it breaks.

    Raises :class:`~cap.errors.NotCap` when the root is not an EDXL-DE 1.0
    ``EDXLDistribution``. Like :func:`cap.parse.read_alert`, the findings
    cover the distribution only: neither the document-level warnings in
    ``tree.warnings`` nor the embedded alerts' own CAP findings (read each
    with :func:`cap.parse.read_alert`).
    """
    if tree.root_name != "EDXLDistribution" or tree.root_ns != EDXL_DE_NS:
        if tree.root_name == "EDXLDistribution" and tree.root_ns.startswith(
                "urn:oasis:names:tc:emergency:EDXL:DE"):
            raise NotCap("not-cap-root",
                         f"EDXL-DE namespace {tree.root_ns!r} is not supported; capcast reads "
                         f"EDXL-DE 1.0 ({EDXL_DE_NS})")
        raise NotCap("not-cap-root",
                     f"the root element is <{tree.root_name}>, not an EDXL-DE 1.0 "
                     "<EDXLDistribution>")
    return read_distribution_element(tree.root)


def parse_distribution(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Distribution:
    """Parse EDXL-DE bytes into a :class:`Distribution` (findings are dropped).

    Raises :class:`~cap.errors.XmlRefused` for unsafe or malformed XML and
    :class:`~cap.errors.NotCap` when the document is not an EDXL-DE 1.0
    distribution. Use :func:`read_distribution` to see the findings.
    """
    distribution, _ = read_distribution(parse_xml(data, max_bytes=max_bytes))
    return distribution
