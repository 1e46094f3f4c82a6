"""Reading CAP: bytes in, :class:`cap.model.Alert` out (sans-IO).

The reader walks the tree that :func:`cap.xml.parse_xml` builds and checks
every OASIS CAP 1.2 rule on the way, so that one pass yields both the model
and the findings. A model is built only when there are no errors; otherwise
:class:`~cap.errors.InvalidAlert` carries every finding.

CAP 1.1 and 1.0 documents are upgraded to the 1.2 model; each change the
upgrade makes is reported as a warning (code ``cap-upgraded``).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import numpy as np
import shapely

from cap.errors import InvalidAlert, NotCap
from cap.findings import Finding, Findings
from cap.model import (
    CAP10_NS,
    CAP11_NS,
    CAP12_NS,
    XMLDSIG_NS,
    Alert,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    Polygon,
    Reference,
    Resource,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
    ValuePair,
)
from cap.xml import DEFAULT_MAX_BYTES, XmlTree, parse_xml, split_qname

CAP_VERSIONS = {CAP12_NS: "1.2", CAP11_NS: "1.1", CAP10_NS: "1.0"}
EDXL_DE_NS = "urn:oasis:names:tc:emergency:EDXL:DE:1.0"

E = TypeVar("E")

_STRICT_DT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")
_LOOSE_DT = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[-+]\d\d:\d\d|[-+]\d\d\d\d)?")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_PAIR = re.compile(rf"({_NUMBER}),\s*({_NUMBER})")
_POLYGON = re.compile(rf"\s*{_NUMBER},{_NUMBER}(?:\s+{_NUMBER},{_NUMBER})*\s*")
_CIRCLE = re.compile(rf"\s*({_NUMBER}),({_NUMBER})\s+({_NUMBER})\s*")
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
                   r"(\s*;\s*[^;]+)*")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_FORBIDDEN_ID_CHARS = re.compile(r"[\s,<&]")
_MARKUP = re.compile(r"</?(?:[a-zA-Z][a-zA-Z0-9]*)(?:\s[^<>]*)?/?>|&(?:[a-zA-Z]{2,8}|#\d{2,5});")

ALERT_SEQ = ("identifier", "sender", "password", "sent", "status", "msgType", "source", "scope",
             "restriction", "addresses", "code", "note", "references", "incidents", "info")
INFO_SEQ = ("language", "category", "event", "responseType", "urgency", "severity", "certainty",
            "audience", "eventCode", "effective", "onset", "expires", "senderName", "headline",
            "description", "instruction", "web", "contact", "parameter", "resource", "area")
RESOURCE_SEQ = ("resourceDesc", "mimeType", "size", "uri", "derefUri", "digest")
AREA_SEQ = ("areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling")
PAIR_SEQ = ("valueName", "value")
REPEATABLE = frozenset({"code", "info", "category", "responseType", "eventCode", "parameter",
                        "resource", "area", "polygon", "circle", "geocode"})

_TZ_CACHE: dict[str, timezone] = {}


def _tz(offset: str) -> timezone:
    tz = _TZ_CACHE.get(offset)
    if tz is None:
        sign = -1 if offset[0] == "-" else 1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[-2:]))
        tz = UTC if not delta else timezone(sign * delta)
        _TZ_CACHE[offset] = tz
    return tz


def parse_datetime(text: str) -> datetime:
    """Parse a CAP 1.2 dateTime (``2024-07-13T11:47:04-06:00``) into an aware datetime.

    Raises ValueError for anything else, including "Z" and fractional seconds.
    """
    if not _STRICT_DT.fullmatch(text):
        raise ValueError(f"not a CAP dateTime: {text!r}")
    return datetime.fromisoformat(text[:19]).replace(tzinfo=_tz(text[19:]))


def format_datetime(value: datetime) -> str:
    """Write a datetime the way CAP 1.2 wants: seconds, offset, UTC as ``-00:00``."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"CAP datetimes must be timezone-aware: {value!r}")
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0:
        suffix = "-00:00"
    else:
        sign = "-" if minutes < 0 else "+"
        suffix = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{suffix}")


def _enum_lookup(enum: type[Any]) -> dict[str, Any]:
    return {member.value: member for member in enum}


_STATUS = _enum_lookup(Status)
_MSG_TYPE = _enum_lookup(MsgType)
_SCOPE = _enum_lookup(Scope)
_CATEGORY = _enum_lookup(Category)
_RESPONSE = _enum_lookup(ResponseType)
_URGENCY = _enum_lookup(Urgency)
_SEVERITY = _enum_lookup(Severity)
_CERTAINTY = _enum_lookup(Certainty)


def split_quoted(text: str) -> tuple[str, ...]:
    """Split a CAP space-delimited list where multi-word items are in double quotes."""
    items: list[str] = []
    for match in re.finditer(r'"([^"]*)"|(\S+)', text):
        item = match.group(1) if match.group(1) is not None else match.group(2)
        if item:
            items.append(item)
    return tuple(items)


@dataclass(slots=True)
class _Node:
    """The children of one element, grouped by local name, in document order."""

    children: dict[str, Any]
    path: str


class _Reader:
    """Walks one alert element, collecting findings and building the model."""

    def __init__(self, ns: str, findings: Findings) -> None:
        self.ns = ns
        self.version = CAP_VERSIONS[ns]
        self.upgrading = self.version != "1.2"
        self.f = findings
        self.signed = False

    # -- structure ---------------------------------------------------------

    def node(self, raw: Any, path: str, seq: tuple[str, ...]) -> _Node:
        """Group the children of ``raw`` by CAP local name and check them."""
        children: dict[str, Any] = {}
        if raw is None:
            return _Node(children, path)
        if isinstance(raw, str):
            self.f.error("cap-unexpected-text", path,
                         f"<{path.rsplit('/', 1)[-1].split('[')[0]}> must contain elements, "
                         f"not text ({_clip(raw)!r})")
            return _Node(children, path)
        ns = self.ns
        keymap = _keymap(ns, seq)
        last = -1
        last_name = ""
        for key, value in raw.items():
            hit = keymap.get(key)
            if hit is not None:
                name, index = hit
                if index < last:
                    self._out_of_order(path, name, last_name, seq)
                else:
                    last, last_name = index, name
                if type(value) is list and name not in REPEATABLE:
                    value = self._repeated(path, name, value)
                children[name] = value
                continue
            if key[0] == "@":
                if key != "@xmlns":
                    self.f.warning("cap-unexpected-attribute", path,
                                   f"attribute {key[1:]!r} is not part of CAP and is ignored")
                continue
            if key == "#text":
                self.f.error("cap-unexpected-text", path,
                             f"text {_clip(value)!r} is not allowed between elements")
                continue
            el_ns, name = split_qname(key)
            if el_ns != ns:
                self._foreign(path, el_ns, name, seq)
                continue
            if name == "password" and self.version == "1.0" and seq is ALERT_SEQ:
                self.f.warning("cap-upgraded", f"{path}/password",
                               "<password> (CAP 1.0) was removed in CAP 1.1 and is dropped",
                               "remove <password>")
                continue
            try:
                index = seq.index(name)
            except ValueError:
                close = difflib.get_close_matches(name, seq, n=1)
                self.f.error("cap-unknown-element", f"{path}/{name}",
                             f"<{name}> is not a CAP {self.version} element here",
                             f"did you mean <{close[0]}>?" if close else
                             f"allowed here: {', '.join(s for s in seq if s != 'password')}")
                continue
            if index < last:
                self._out_of_order(path, name, last_name, seq)
            else:
                last, last_name = index, name
            children[name] = value
        return _Node(children, path)

    def _out_of_order(self, path: str, name: str, last_name: str, seq: tuple[str, ...]) -> None:
        self.f.error("cap-element-order", f"{path}/{name}",
                     f"<{name}> must come before <{last_name}>",
                     f"put the elements in this order: {', '.join(seq)}")

    def _repeated(self, path: str, name: str, value: list[Any]) -> Any:
        self.f.error("cap-repeated-element", f"{path}/{name}",
                     f"<{name}> appears {len(value)} times; it is allowed once", "keep one")
        return value[0]

    def _foreign(self, path: str, el_ns: str, name: str, seq: tuple[str, ...]) -> None:
        if el_ns == XMLDSIG_NS and name == "Signature" and seq is ALERT_SEQ:
            self.signed = True
            return
        if el_ns in CAP_VERSIONS or (not el_ns and name in seq):
            where = f"namespace {el_ns}" if el_ns else "no namespace"
            self.f.error("cap-wrong-namespace", f"{path}/{name}",
                         f"<{name}> is in {where}, not in the alert's namespace {self.ns}",
                         "put every CAP element in the alert's namespace")
        else:
            where = f"{{{el_ns}}}" if el_ns else ""
            self.f.error("cap-unknown-element", f"{path}/{name}",
                         f"<{where}{name}> is not allowed in CAP {self.version}"
                         + (" (only an XML signature may follow the alert's elements)"
                            if seq is ALERT_SEQ else ""),
                         "remove it, or carry the data in a <parameter>")

    # -- values --------------------------------------------------------------

    def text(self, node: _Node, name: str, *, required: bool = False) -> str | None:
        """The text of a single child element (None when absent)."""
        raw = node.children.get(name)
        path = f"{node.path}/{name}"
        if raw is None:
            if name in node.children:
                if required:
                    self.f.error("cap-empty-element", path, f"<{name}> is empty",
                                 f"give <{name}> a value")
                    return None
                return ""
            if required:
                self.f.error("cap-missing-element", path,
                             f"required element <{name}> is missing", f"add <{name}>")
            return None
        return self._as_text(raw, path, name)

    def _as_text(self, raw: Any, path: str, name: str) -> str | None:
        if isinstance(raw, str):
            return raw
        if isinstance(raw, dict):
            elements = [k for k in raw if k[0] not in "@#"]
            if elements:
                self.f.error("cap-unexpected-element", path,
                             f"<{name}> must contain text, not elements "
                             f"(found <{split_qname(elements[0])[1]}>)")
                return None
            attributes = [k[1:] for k in raw if k[0] == "@" and k != "@xmlns"]
            if attributes:
                self.f.warning("cap-unexpected-attribute", path,
                               f"attribute {attributes[0]!r} is not part of CAP and is ignored")
            return str(raw.get("#text", ""))
        return None

    def texts(self, node: _Node, name: str) -> list[tuple[str, str]]:
        """(path, text) for every occurrence of a repeatable child element."""
        raw = node.children.get(name)
        if name not in node.children:
            return []
        items = raw if isinstance(raw, list) else [raw]
        out = []
        for i, item in enumerate(items):
            path = f"{node.path}/{name}[{i}]"
            text = "" if item is None else self._as_text(item, path, name)
            if text is not None:
                out.append((path, text))
        return out

    def elements(self, node: _Node, name: str) -> list[tuple[str, Any]]:
        """(path, raw) for every occurrence of a repeatable complex child."""
        if name not in node.children:
            return []
        raw = node.children[name]
        items = raw if isinstance(raw, list) else [raw]
        return [(f"{node.path}/{name}[{i}]", item) for i, item in enumerate(items)]

    def enum(self, node: _Node, name: str, table: dict[str, E], *,
             required: bool = True) -> E | None:
        text = self.text(node, name, required=required)
        if text is None:
            return None
        return self._enum_value(f"{node.path}/{name}", name, text, table)

    def _enum_value(self, path: str, name: str, text: str, table: dict[str, E]) -> E | None:
        value = table.get(text)
        if value is not None:
            return value
        stripped = text.strip()
        for key, member in table.items():
            if key.lower() == stripped.lower():
                if key == stripped and stripped != text:
                    self.f.warning("cap-whitespace", path,
                                   f"<{name}> has whitespace around {key!r}", f"write {key!r}")
                    return member
                self.f.error("cap-invalid-value", path,
                             f"<{name}> value {text!r} has the wrong case", f"write {key!r}")
                return None
        if name == "certainty" and stripped == "Very Likely":
            if self.upgrading:
                self.f.warning("cap-upgraded", path,
                               "certainty 'Very Likely' (CAP 1.0/1.1) is read as 'Likely'")
                return table["Likely"]
            self.f.error("cap-invalid-value", path,
                         "certainty 'Very Likely' was removed in CAP 1.2", "write 'Likely'")
            return None
        if not text:
            self.f.error("cap-empty-element", path, f"<{name}> is empty",
                         f"use one of: {', '.join(table)}")
            return None
        close = difflib.get_close_matches(stripped, list(table), n=1, cutoff=0.6)
        self.f.error("cap-invalid-value", path,
                     f"<{name}> value {_clip(text)!r} is not one of: {', '.join(table)}",
                     f"did you mean {close[0]!r}?" if close else None)
        return None

    def when(self, node: _Node, name: str, *, required: bool = False) -> datetime | None:
        text = self.text(node, name, required=required)
        if text is None or (text == "" and not required):
            if text == "":
                self.f.error("cap-empty-element", f"{node.path}/{name}", f"<{name}> is empty",
                             "remove it or give a dateTime like 2024-07-13T11:47:04-06:00")
            return None
        return self._datetime_value(f"{node.path}/{name}", name, text)

    def _datetime_value(self, path: str, name: str, text: str) -> datetime | None:
        if _STRICT_DT.fullmatch(text):
            try:
                return datetime.fromisoformat(text[:19]).replace(tzinfo=_tz(text[19:]))
            except ValueError as exc:
                self.f.error("cap-invalid-datetime", path,
                             f"<{name}> {text!r} is not a real date and time ({exc})")
                return None
        stripped = text.strip()
        match = _LOOSE_DT.fullmatch(stripped)
        if match is None:
            self.f.error("cap-invalid-datetime", path,
                         f"<{name}> {_clip(text)!r} is not a CAP dateTime",
                         "write it like 2024-07-13T11:47:04-06:00 (seconds and UTC offset "
                         "required, no fractional seconds, no 'Z')")
            return None
        base, fraction, offset = match.groups()
        if offset is None:
            self.f.error("cap-datetime-no-offset", path,
                         f"<{name}> {text!r} has no UTC offset, so the moment it names is "
                         "unknown", f"add the offset, e.g. {base}-00:00 for UTC")
            return None
        problems = []
        if stripped != text:
            problems.append("surrounding whitespace")
        if fraction:
            problems.append(f"fractional seconds ({fraction})")
        if offset == "Z":
            problems.append("'Z' instead of '-00:00'")
            offset = "-00:00"
        elif ":" not in offset:
            problems.append(f"offset {offset} without a colon")
            offset = f"{offset[:3]}:{offset[3:]}"
        try:
            value = datetime.fromisoformat(base).replace(tzinfo=_tz(offset))
        except ValueError as exc:
            self.f.error("cap-invalid-datetime", path,
                         f"<{name}> {text!r} is not a real date and time ({exc})")
            return None
        fixed = format_datetime(value)
        report = self.f.warning if self.upgrading else self.f.error
        report("cap-invalid-datetime" if not self.upgrading else "cap-upgraded", path,
               f"<{name}> {text!r} has {' and '.join(problems)}"
               + (f"; read as {fixed} for CAP 1.2" if self.upgrading else
                  "; CAP 1.2 allows neither"),
               f"write {fixed}")
        return value

    def number(self, node: _Node, name: str) -> float | None:
        text = self.text(node, name)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if value != value or value in (float("inf"), float("-inf")):
            self.f.error("cap-invalid-number", f"{node.path}/{name}",
                         f"<{name}> {_clip(text)!r} is not a decimal number",
                         "write a number of feet, e.g. 1500")
            return None
        return value

    # -- elements --------------------------------------------------------------

    def alert(self, raw: Any, path: str) -> Alert | None:
        node = self.node(raw, path, ALERT_SEQ)
        mark = len(self.f.items)
        identifier = self.text(node, "identifier", required=True)
        sender = self.text(node, "sender", required=True)
        for name, value in (("identifier", identifier), ("sender", sender)):
            if value is not None and _FORBIDDEN_ID_CHARS.search(value):
                bad = _FORBIDDEN_ID_CHARS.search(value).group()  # type: ignore[union-attr]
                self.f.error("cap-forbidden-character", f"{path}/{name}",
                             f"<{name}> {_clip(value)!r} contains {_char_name(bad)}; CAP "
                             "forbids spaces, commas, '<' and '&' in it",
                             "remove or replace the character")
            elif value == "":
                self.f.error("cap-empty-element", f"{path}/{name}", f"<{name}> is empty")
        sent = self.when(node, "sent", required=True)
        status = self.enum(node, "status", _STATUS)
        msg_type = self.enum(node, "msgType", _MSG_TYPE)
        source = self.text(node, "source")
        scope = self.enum(node, "scope", _SCOPE)
        restriction = self.text(node, "restriction")
        addresses_text = self.text(node, "addresses")
        addresses = split_quoted(addresses_text) if addresses_text else ()
        codes = tuple(text for _, text in self.texts(node, "code"))
        note = self.text(node, "note")
        references = self.references(node, sender, identifier, sent, msg_type)
        incidents_text = self.text(node, "incidents")
        incidents = split_quoted(incidents_text) if incidents_text else ()

        if scope is Scope.RESTRICTED and not restriction:
            self.f.error("cap-restriction-required", f"{path}/restriction",
                         "scope is Restricted but <restriction> is missing or empty",
                         "add <restriction> saying who may receive the alert")
        if scope is Scope.PRIVATE and not addresses:
            self.f.error("cap-addresses-required", f"{path}/addresses",
                         "scope is Private but <addresses> is missing or empty",
                         "add <addresses> listing the recipients")
        if restriction and scope is not None and scope is not Scope.RESTRICTED:
            self.f.warning("cap-restriction-ignored", f"{path}/restriction",
                           f"scope is {scope.value}, so <restriction> has no effect",
                           "remove <restriction>, or use scope Restricted")
        if status is Status.EXERCISE and not note:
            self.f.warning("cap-note-expected", f"{path}/note",
                           "status Exercise should identify the exercise in <note>",
                           "add <note> naming the exercise")
        if scope is Scope.PUBLIC and addresses:
            self.f.warning("cap-addresses-ignored", f"{path}/addresses",
                           "scope is Public, so <addresses> has no effect",
                           "remove <addresses>, or use scope Private")
        if msg_type in (MsgType.UPDATE, MsgType.CANCEL) and "references" not in node.children:
            self.f.error("cap-references-required", f"{path}/references",
                         f"msgType {msg_type.value} must name the alerts it "
                         f"{'updates' if msg_type is MsgType.UPDATE else 'cancels'} in "
                         "<references>",
                         "add <references> with sender,identifier,sent of each earlier alert")
        if msg_type in (MsgType.ACK, MsgType.ERROR) and not references:
            self.f.warning("cap-references-expected", f"{path}/references",
                           f"msgType {msg_type.value} normally references the alerts it "
                           "answers")
        if msg_type is MsgType.ERROR and not note:
            self.f.warning("cap-note-expected", f"{path}/note",
                           "msgType Error should explain the error in <note>")

        infos = []
        for info_path, info_raw in self.elements(node, "info"):
            info = self.info(info_raw, info_path)
            if info is not None:
                infos.append(info)
        if not infos and msg_type is MsgType.ALERT and "info" not in node.children:
            self.f.warning("cap-no-info", path,
                           "the alert has no <info>, so it tells recipients nothing",
                           "add an <info> block with the event, urgency, severity and certainty")

        if any(f.is_error for f in self.f.items[mark:]):
            return None
        assert identifier is not None and sender is not None and sent is not None
        assert status is not None and msg_type is not None and scope is not None
        return Alert(identifier=identifier, sender=sender, sent=sent, status=status,
                     msg_type=msg_type, source=source, scope=scope, restriction=restriction,
                     addresses=addresses, codes=codes, note=note, references=references,
                     incidents=incidents, infos=tuple(infos), signed=self.signed)

    def references(self, node: _Node, sender: str | None, identifier: str | None,
                   sent: datetime | None, msg_type: MsgType | None) -> tuple[Reference, ...]:
        text = self.text(node, "references")
        path = f"{node.path}/references"
        if text is None:
            return ()
        if not text.strip():
            if msg_type in (MsgType.UPDATE, MsgType.CANCEL):
                self.f.error("cap-references-required", path,
                             f"<references> is empty but msgType {msg_type.value} must name "
                             "the alerts it replaces",
                             "list sender,identifier,sent of each earlier alert")
            else:
                self.f.warning("cap-empty-element", path, "<references> is empty",
                               "remove the empty element")
            return ()
        out = []
        for i, triplet in enumerate(text.split()):
            parts = triplet.split(",")
            item_path = f"{path}[{i}]" if len(text.split()) > 1 else path
            if len(parts) != 3 or not parts[0] or not parts[1]:
                self.f.error("cap-invalid-reference", item_path,
                             f"reference {_clip(triplet)!r} is not a sender,identifier,sent "
                             "triplet", "write sender,identifier,sent with no spaces inside; "
                             "separate triplets with spaces")
                continue
            ref_sent = self._datetime_value(item_path, "references", parts[2])
            if ref_sent is None:
                continue
            ref = Reference(sender=parts[0], identifier=parts[1], sent=ref_sent)
            if ref.sender == sender and ref.identifier == identifier:
                self.f.error("cap-self-reference", item_path,
                             "the alert references itself", "reference earlier alerts only")
            elif sent is not None and ref_sent > sent:
                self.f.warning("cap-reference-postdated", item_path,
                               f"the referenced alert was sent ({parts[2]}) after this one "
                               f"({format_datetime(sent)})")
            out.append(ref)
        return tuple(out)

    def pairs(self, node: _Node, name: str) -> tuple[ValuePair, ...]:
        raw_items = node.children.get(name)
        if raw_items is None and name not in node.children:
            return ()
        items = raw_items if type(raw_items) is list else [raw_items]
        key_name, key_value = self.ns + ":valueName", self.ns + ":value"
        fast = []
        for raw in items:
            # Fast path for the well-formed common case; anything else is
            # re-read below with full checks and paths.
            if type(raw) is not dict or len(raw) != 2:
                break
            value_name, value = raw.get(key_name), raw.get(key_value, 0)
            if type(value_name) is not str or not value_name or (
                    value is not None and type(value) is not str) or next(iter(raw)) != key_name:
                break
            fast.append(ValuePair(value_name=value_name, value=value or ""))
        else:
            return tuple(fast)
        out = []
        for path, raw in self.elements(node, name):
            if isinstance(raw, str) and self.version == "1.0" and "=" in raw:
                value_name, _, value = raw.partition("=")
                upper = value_name.strip().upper()
                self.f.warning("cap-upgraded", path,
                               f"CAP 1.0 <{name}> {raw!r} is read as valueName {upper!r}, "
                               f"value {value.strip()!r}")
                out.append(ValuePair(value_name=upper, value=value.strip()))
                continue
            pair = self.node(raw, path, PAIR_SEQ)
            value_name = self.text(pair, "valueName", required=True)
            # An empty <value/> is valid CAP and common (NWS WMOHEADER, for one).
            value = self.text(pair, "value", required="value" not in pair.children)
            if value_name == "":
                self.f.error("cap-empty-element", f"{path}/valueName", "<valueName> is empty",
                             "name the code system, e.g. SAME, UGC, EMMA_ID")
            if value_name is not None and value is not None:
                out.append(ValuePair(value_name=value_name, value=value))
        return tuple(out)

    def info(self, raw: Any, path: str) -> Info | None:
        node = self.node(raw, path, INFO_SEQ)
        mark = len(self.f.items)
        language = self.text(node, "language")
        if language is not None and not _LANGUAGE.fullmatch(language):
            self.f.error("cap-invalid-language", f"{path}/language",
                         f"<language> {_clip(language)!r} is not an RFC 3066 language tag",
                         "write a tag like en-US, fr or es-419")
        categories = []
        for cat_path, text in self.texts(node, "category"):
            value = self._enum_value(cat_path, "category", text, _CATEGORY)
            if value is not None:
                categories.append(value)
        if "category" not in node.children:
            self.f.error("cap-missing-element", f"{path}/category",
                         "required element <category> is missing",
                         f"add at least one <category>: {', '.join(_CATEGORY)}")
        event = self.text(node, "event", required=True)
        if event == "":
            self.f.error("cap-empty-element", f"{path}/event", "<event> is empty",
                         "say what the event is, e.g. Flash Flood")
        responses = []
        for resp_path, text in self.texts(node, "responseType"):
            value = self._enum_value(resp_path, "responseType", text, _RESPONSE)
            if value in (ResponseType.AVOID, ResponseType.ALL_CLEAR) and self.upgrading:
                self.f.warning("cap-upgraded", resp_path,
                               f"responseType {text} is new in CAP 1.2")
            if value is not None:
                responses.append(value)
        urgency = self.enum(node, "urgency", _URGENCY)
        severity = self.enum(node, "severity", _SEVERITY)
        certainty = self.enum(node, "certainty", _CERTAINTY)
        audience = self.text(node, "audience")
        event_codes = self.pairs(node, "eventCode")
        effective = self.when(node, "effective")
        onset = self.when(node, "onset")
        expires = self.when(node, "expires")
        if expires is not None:
            if effective is not None and expires < effective:
                self.f.error("cap-expires-before-effective", f"{path}/expires",
                             f"<expires> {format_datetime(expires)} is before <effective> "
                             f"{format_datetime(effective)}", "fix one of the two times")
            elif effective is not None and expires == effective:
                self.f.warning("cap-expires-at-effective", f"{path}/expires",
                               f"<expires> equals <effective> ({format_datetime(expires)}), so "
                               "the information is never in effect",
                               "give the time the information stops being valid")
            if onset is not None and expires < onset:
                self.f.error("cap-expires-before-onset", f"{path}/expires",
                             f"<expires> {format_datetime(expires)} is before <onset> "
                             f"{format_datetime(onset)}", "fix one of the two times")
        sender_name = self.text(node, "senderName")
        headline = self.text(node, "headline")
        description = self.text(node, "description")
        instruction = self.text(node, "instruction")
        for name, value in (("headline", headline), ("description", description),
                            ("instruction", instruction)):
            if value and _MARKUP.search(value):
                found = _MARKUP.search(value).group()  # type: ignore[union-attr]
                self.f.warning("cap-markup-in-text", f"{path}/{name}",
                               f"<{name}> contains markup {_clip(found, 20)!r}; CAP text is "
                               "plain text and phones show markup literally",
                               "write plain text; use line breaks instead of HTML tags")
        if headline is not None and len(headline) > 160:
            self.f.warning("cap-long-headline", f"{path}/headline",
                           f"<headline> is {len(headline)} characters; CAP asks for a brief "
                           "headline (about 160 characters, one SMS)",
                           "shorten it; put details in <description>")
        web = self.text(node, "web")
        if web and not _URI_SCHEME.fullmatch(web.strip()):
            self.f.warning("cap-invalid-uri", f"{path}/web",
                           f"<web> {_clip(web)!r} is not a full absolute URI",
                           "write it with its scheme, e.g. https://example.org/alert/123")
        contact = self.text(node, "contact")
        parameters = self.pairs(node, "parameter")
        resources = []
        for res_path, res_raw in self.elements(node, "resource"):
            resource = self.resource(res_raw, res_path)
            if resource is not None:
                resources.append(resource)
        areas = []
        for area_path, area_raw in self.elements(node, "area"):
            area = self.area(area_raw, area_path)
            if area is not None:
                areas.append(area)
        if any(f.is_error for f in self.f.items[mark:]):
            return None
        assert event is not None and urgency is not None
        assert severity is not None and certainty is not None
        return Info(language=language or "en-US", categories=tuple(categories), event=event,
                    response_types=tuple(responses), urgency=urgency, severity=severity,
                    certainty=certainty, audience=audience, event_codes=event_codes,
                    effective=effective, onset=onset, expires=expires, sender_name=sender_name,
                    headline=headline, description=description, instruction=instruction,
                    web=web, contact=contact, parameters=parameters, resources=tuple(resources),
                    areas=tuple(areas))

    def resource(self, raw: Any, path: str) -> Resource | None:
        node = self.node(raw, path, RESOURCE_SEQ)
        mark = len(self.f.items)
        desc = self.text(node, "resourceDesc", required=True)
        if self.upgrading and "mimeType" not in node.children:
            self.f.warning("cap-upgraded", f"{path}/mimeType",
                           "<mimeType> is required in CAP 1.2; read as "
                           "application/octet-stream", "add the resource's MIME type")
            mime: str | None = "application/octet-stream"
        else:
            mime = self.text(node, "mimeType", required=True)
            if mime is not None and not _MIME.fullmatch(mime.strip()):
                self.f.error("cap-invalid-mime-type", f"{path}/mimeType",
                             f"<mimeType> {_clip(mime)!r} is not an RFC 2046 MIME type",
                             "write type/subtype, e.g. image/png or application/pdf")
        size = None
        size_text = self.text(node, "size")
        if size_text is not None:
            try:
                size = int(size_text.strip())
                if size < 0:
                    raise ValueError
            except ValueError:
                self.f.error("cap-invalid-size", f"{path}/size",
                             f"<size> {_clip(size_text)!r} is not a whole number of bytes")
        uri = self.text(node, "uri")
        deref = self.text(node, "derefUri")
        if uri and deref is None and not _URI_SCHEME.fullmatch(uri.strip()):
            self.f.warning("cap-invalid-uri", f"{path}/uri",
                           f"<uri> {_clip(uri)!r} is not a full absolute URI (a relative one "
                           "is allowed only to name the content of <derefUri>)",
                           "write it with its scheme, e.g. https://example.org/map.png")
        if deref is not None:
            try:
                base64.b64decode("".join(deref.split()), validate=True)
            except (binascii.Error, ValueError):
                self.f.error("cap-invalid-base64", f"{path}/derefUri",
                             "<derefUri> is not valid base64",
                             "encode the file's bytes with base64")
        digest = self.text(node, "digest")
        if digest is not None and not re.fullmatch(r"[0-9A-Fa-f]{40}", digest.strip()):
            self.f.warning("cap-invalid-digest", f"{path}/digest",
                           f"<digest> {_clip(digest)!r} is not a SHA-1 hex digest "
                           "(40 hexadecimal digits)")
        if any(f.is_error for f in self.f.items[mark:]):
            return None
        assert desc is not None and mime is not None
        return Resource(resource_desc=desc, mime_type=mime, size=size, uri=uri,
                        deref_uri=deref, digest=digest)

    def area(self, raw: Any, path: str) -> Area | None:
        node = self.node(raw, path, AREA_SEQ)
        mark = len(self.f.items)
        desc = self.text(node, "areaDesc", required=True)
        polygons = []
        for poly_path, text in self.texts(node, "polygon"):
            polygon = self.polygon(poly_path, text)
            if polygon is not None:
                polygons.append(polygon)
        circles = []
        for circle_path, text in self.texts(node, "circle"):
            circle = self.circle(circle_path, text)
            if circle is not None:
                circles.append(circle)
        geocodes = self.pairs(node, "geocode")
        altitude = self.number(node, "altitude")
        ceiling = self.number(node, "ceiling")
        if ceiling is not None and altitude is None:
            self.f.error("cap-ceiling-without-altitude", f"{path}/ceiling",
                         "<ceiling> is given without <altitude>",
                         "add <altitude> (the floor of the area, in feet)")
        elif ceiling is not None and altitude is not None and ceiling < altitude:
            self.f.error("cap-ceiling-below-altitude", f"{path}/ceiling",
                         f"<ceiling> {ceiling:g} is below <altitude> {altitude:g}")
        if any(f.is_error for f in self.f.items[mark:]):
            return None
        assert desc is not None
        return Area(area_desc=desc, polygons=tuple(polygons), circles=tuple(circles),
                    geocodes=geocodes, altitude=altitude, ceiling=ceiling)

    def polygon(self, path: str, text: str) -> Polygon | None:
        if not text.strip():
            # NWS has published empty <polygon/> elements for years; they carry no
            # area, so they are dropped rather than refused.
            self.f.warning("cap-empty-polygon", path, "<polygon> is empty and is ignored",
                           "remove the empty element")
            return None
        if not _POLYGON.fullmatch(text):
            bad = next((tok for tok in text.split() if not _PAIR.fullmatch(tok)), text)
            self.f.error("cap-invalid-polygon", path,
                         f"<polygon> has {_clip(bad)!r}, which is not a lat,lon pair",
                         "write whitespace-separated lat,lon pairs like 38.47,-120.14, "
                         "with no space after the comma and none at the end")
            return None
        numbers = list(map(float, text.replace(",", " ").split()))
        lats = numbers[0::2]
        lons = numbers[1::2]
        points = tuple(zip(lats, lons, strict=True))
        ok = True
        if len(points) < 4:
            self.f.error("cap-polygon-too-few-points", path,
                         f"<polygon> has {len(points)} points; at least 4 are needed "
                         "(3 corners and the first repeated to close it)")
            ok = False
        if points[0] != points[-1]:
            self.f.error("cap-polygon-not-closed", path,
                         "<polygon> is not closed: the last pair differs from the first",
                         f"append {_fmt(points[0][0])},{_fmt(points[0][1])}")
            ok = False
        bad_lat = bad_lon = None
        if not (min(lats) >= -90.0 and max(lats) <= 90.0):
            bad_lat = next(lat for lat in lats if not -90.0 <= lat <= 90.0)
        if not (min(lons) >= -180.0 and max(lons) <= 180.0):
            bad_lon = next(lon for lon in lons if not -180.0 <= lon <= 180.0)
        if bad_lat is not None or bad_lon is not None:
            swapped = all(-90.0 <= lon <= 90.0 for lon in lons) and all(
                -180.0 <= lat <= 180.0 for lat in lats)
            what = (f"latitude {_fmt(bad_lat)} is outside -90..90" if bad_lat is not None
                    else f"longitude {_fmt(bad_lon)} is outside -180..180")
            self.f.error("cap-polygon-out-of-range", path, f"<polygon> {what}",
                         "the pairs look like lon,lat; CAP wants lat,lon: swap each pair"
                         if swapped and bad_lat is not None else None)
            ok = False
        if not ok:
            return None
        self._polygon_shape(path, numbers, lons)
        return Polygon(points=points)

    def _polygon_shape(self, path: str, numbers: list[float], lons: list[float]) -> None:
        coords = np.array(numbers).reshape(-1, 2)[:, ::-1]
        if max(lons) - min(lons) > 180.0 and (np.abs(np.diff(coords[:, 0])) > 180.0).any():
            self.f.warning("cap-polygon-antimeridian", path,
                           "<polygon> crosses the 180th meridian; it is read as the shorter "
                           "way round")
            return
        reason = _ring_problem(coords)
        if reason is not None:
            self.f.warning("cap-polygon-self-intersection", path,
                           f"<polygon> is not a simple ring: {reason}",
                           "draw the boundary without crossing itself")

    def circle(self, path: str, text: str) -> Circle | None:
        match = _CIRCLE.fullmatch(text)
        if not text.strip():
            self.f.error("cap-empty-element", path, "<circle> is empty",
                         "write 'lat,lon radius' (radius in km), or remove the element")
            return None
        if match is None:
            self.f.error("cap-invalid-circle", path,
                         f"<circle> {_clip(text)!r} is not 'lat,lon radius'",
                         "write the centre and the radius in km, e.g. 32.9525,-115.5527 10")
            return None
        lat, lon, radius = (float(g) for g in match.groups())
        if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
            swapped = -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0
            self.f.error("cap-circle-out-of-range", path,
                         f"<circle> centre {_fmt(lat)},{_fmt(lon)} is out of range",
                         "the centre looks like lon,lat; CAP wants lat,lon"
                         if swapped else None)
            return None
        if radius < 0:
            self.f.error("cap-circle-negative-radius", path,
                         f"<circle> radius {_fmt(radius)} km is negative")
            return None
        return Circle(lat=lat, lon=lon, radius_km=radius)


_KEYMAPS: dict[tuple[str, tuple[str, ...]], dict[str, tuple[str, int]]] = {}


def _keymap(ns: str, seq: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """Qualified key -> (local name, position in the XSD sequence), cached per namespace."""
    keymap = _KEYMAPS.get((ns, seq))
    if keymap is None:
        keymap = {f"{ns}:{name}": (name, index) for index, name in enumerate(seq)
                  if name != "password"}
        _KEYMAPS[(ns, seq)] = keymap
    return keymap


def _ring_problem(coords: np.ndarray) -> str | None:
    """Why a closed ring of (lon, lat) rows is not simple (self-intersection, spikes), or None."""
    polygon = shapely.polygons(coords)
    if shapely.is_valid(polygon):
        return None
    return str(shapely.is_valid_reason(polygon))


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:g}" if abs(value) >= 1e-4 else repr(value)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _char_name(char: str) -> str:
    return {" ": "a space", ",": "a comma", "<": "'<'", "&": "'&'"}.get(
        char, f"whitespace {char!r}")


# -- public entry points ------------------------------------------------------


def read_alert(raw: Any, ns: str, *, path: str = "alert",
               findings: Findings | None = None) -> tuple[Alert | None, list[Finding]]:
    """Read one ``<alert>`` element (as parsed by :func:`cap.xml.parse_xml`).

    ``ns`` is the element's namespace (CAP 1.0, 1.1 or 1.2). Returns the
    model (None when any error was found) and the findings.
    """
    collector = findings if findings is not None else Findings()
    if ns not in CAP_VERSIONS:
        raise NotCap("not-cap", f"namespace {ns!r} is not a CAP namespace")
    reader = _Reader(ns, collector)
    if reader.upgrading:
        collector.warning("cap-upgraded", path,
                          f"CAP {reader.version} document read as CAP 1.2",
                          f"publish in the CAP 1.2 namespace {CAP12_NS}")
    alert = reader.alert(raw, path)
    return alert, collector.items


def root_kind(tree: XmlTree) -> str:
    """Classify a parsed document: ``alert``, ``edxl``, ``atom``, ``rss``, or raise NotCap."""
    if tree.root_name == "alert" and tree.root_ns in CAP_VERSIONS:
        return "alert"
    if tree.root_name == "EDXLDistribution" and tree.root_ns == EDXL_DE_NS:
        return "edxl"
    if tree.root_name == "feed" and tree.root_ns == "http://www.w3.org/2005/Atom":
        return "atom"
    if tree.root_name == "rss" and tree.root_ns == "":
        return "rss"
    raise not_cap_error(tree)


def not_cap_error(tree: XmlTree) -> NotCap:
    """A clear refusal for a document whose root is not something capcast reads."""
    qualified = f"{{{tree.root_ns}}}{tree.root_name}" if tree.root_ns else tree.root_name
    if tree.root_name == "alert":
        if tree.root_ns:
            return NotCap("not-cap-namespace",
                          f"<alert> is in namespace {tree.root_ns!r}, which is not CAP 1.0, 1.1 "
                          "or 1.2", fix=f"use xmlns=\"{CAP12_NS}\"")
        return NotCap("not-cap-namespace", "<alert> has no namespace",
                      fix=f"add xmlns=\"{CAP12_NS}\" to <alert>")
    if tree.root_name == "EDXLDistribution":
        return NotCap("not-cap-edxl-version",
                      f"EDXL distributions in namespace {tree.root_ns!r} are not supported; "
                      f"capcast reads EDXL-DE 1.0 ({EDXL_DE_NS})",
                      fix="send the CAP alert itself, or wrap it in EDXL-DE 1.0")
    if tree.root_name == "alerts" and tree.root_ns in CAP_VERSIONS:
        count = tree.root.get(f"{tree.root_ns}:alert") if isinstance(tree.root, dict) else None
        n = len(count) if isinstance(count, list) else (1 if count else 0)
        return NotCap("not-cap-root",
                      f"the root element is <alerts>, a non-standard bundle of {n} alerts; a "
                      "CAP document holds exactly one <alert>",
                      fix="send each <alert> as its own document, or list them in an Atom feed")
    return NotCap("not-cap-root",
                  f"the root element is {qualified}, not a CAP <alert> (nor an EDXL-DE "
                  "distribution or an Atom/RSS feed)",
                  fix="send a CAP 1.2 <alert> document")


def parse_alert(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Alert:
    """Parse one CAP alert from bytes, checking every OASIS CAP 1.2 rule.

    Raises :class:`~cap.errors.XmlRefused` for unsafe or malformed XML,
    :class:`~cap.errors.NotCap` when the root is not a CAP alert, and
    :class:`~cap.errors.InvalidAlert` (with every finding) when a rule is broken.
    Warnings do not stop parsing; use :func:`cap.validate.validate` to see them.
    """
    tree = parse_xml(data, max_bytes=max_bytes)
    if root_kind(tree) != "alert":
        raise NotCap("not-cap-root",
                     f"the document is an {root_kind(tree)} document, not a single CAP alert",
                     fix="use cap.validate.validate_document to read feeds and distributions")
    alert, findings = read_alert(tree.root, tree.root_ns)
    if alert is None:
        raise InvalidAlert(tree.warnings + findings)
    return alert

