"""What Atom, RSS and EDXL-DE readers share: embedded alerts and tree helpers (sans-IO).

A CAP alert reaches capcast either as its own document or inside a
container: an Atom entry or RSS item (a "fat" feed), or an EDXL-DE
``contentObject``. The container readers (:mod:`cap.feeds`,
:mod:`cap.edxl`) report each alert they find as an :class:`EmbeddedAlert`,
which :func:`cap.parse.read_alert` then reads like any other alert.

The helpers below walk the dict trees that :func:`cap.xml.parse_xml` builds
(keys ``"<namespace uri>:<local name>"``, attributes ``"@name"``, text
``"#text"``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cap.errors import XmlRefused
from cap.model import CAP10_NS, CAP11_NS, CAP12_NS
from cap.xml import parse_xml, split_qname

CAP_NAMESPACES = frozenset({CAP12_NS, CAP11_NS, CAP10_NS})
#: The two media types proposed for CAP documents (draft-barnes-atoca-cap-mime).
CAP_MEDIA_TYPES = frozenset({"application/cap+xml", "application/common-alerting-protocol+xml"})
XML_NS = "http://www.w3.org/XML/1998/namespace"

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")
_XML_DECLARATION = re.compile(r"\s*<\?xml[^>]*\?>")
_ISO_LOOSE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?\s*([Zz]|[+-]\d\d:?\d\d)?")


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddedAlert:
    """A CAP ``<alert>`` element found inside a feed entry or an EDXL-DE distribution.

    ``path`` names the element (``feed/entry[3]/content/alert``,
    ``EDXLDistribution/contentObject[2]/xmlContent/embeddedXMLContent/alert``);
    ``ns`` is its CAP namespace; ``raw`` is the element as xmltodict parsed
    it. Read it with ``cap.parse.read_alert(a.raw, a.ns, path=a.path)``.
    """

    path: str
    ns: str
    raw: Any

    def __post_init__(self) -> None:
        if self.ns not in CAP_NAMESPACES:
            raise ValueError(f"{self.ns!r} is not a CAP namespace")


def iter_children(raw: Any) -> Iterator[tuple[str, str, int | None, Any]]:
    """Yield ``(namespace, local name, index, value)`` for each child element of ``raw``.

    ``index`` counts same-named siblings from 0 when the name repeats, and is
    None when the element occurs once. Attributes and text are skipped.
    """
    if not isinstance(raw, dict):
        return
    for key, value in raw.items():
        if key[0] in "@#":
            continue
        ns, name = split_qname(key)
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield ns, name, i, item
        else:
            yield ns, name, None, value


def child_path(parent: str, name: str, index: int | None) -> str:
    """``parent/name`` or ``parent/name[index]``."""
    return f"{parent}/{name}" if index is None else f"{parent}/{name}[{index}]"


def attr(raw: Any, name: str) -> str | None:
    """The value of the unqualified attribute ``name`` of an element, stripped."""
    if isinstance(raw, dict):
        value = raw.get(f"@{name}")
        if isinstance(value, str):
            return value.strip()
    return None


def text_of(raw: Any) -> str:
    """The direct text of an element ('' when it has none); child elements are ignored."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, dict):
        text = raw.get("#text")
        return text.strip() if isinstance(text, str) else ""
    return ""


def all_text(raw: Any) -> str:
    """All text inside an element and its descendants, joined with single spaces.

    xmltodict keeps an element's own text apart from its children, so mixed
    content comes out as the element's text first, then its children's.
    """
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            walk(node.get("#text"))
            for key, value in node.items():
                if key[0] not in "@#":
                    walk(value)

    walk(raw)
    return " ".join(" ".join(parts).split())


def has_elements(raw: Any) -> bool:
    """True when the element has at least one child element."""
    return isinstance(raw, dict) and any(key[0] not in "@#" for key in raw)


def media_type(value: str | None) -> str | None:
    """A MIME type lower-cased and without parameters (``text/xml; charset=x`` → ``text/xml``)."""
    if value is None:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def is_xml_media_type(value: str | None) -> bool:
    """True for ``*/xml`` and ``*+xml`` types, except XHTML and Atom documents."""
    if value is None:
        return False
    return (value.endswith("/xml") or value.endswith("+xml")) and value not in (
        "application/xhtml+xml", "application/atom+xml")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 ``date-time`` (as Atom requires it) into an aware datetime.

    Uppercase ``T`` and ``Z`` are required, fractional seconds are allowed,
    and a leap second (``:60``) is read as the first instant of the next
    minute. Raises ValueError for anything else.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    leap = second == 60
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    tz = UTC if zone == "Z" else _offset(zone)
    value = datetime(year, month, day, hour, minute, 59 if leap else second, micro, tzinfo=tz)
    return value + timedelta(seconds=1) if leap else value


def parse_iso_loose(text: str) -> datetime | None:
    """Best-effort reading of an ISO 8601-like timestamp; None unless it has an offset.

    Used to keep a usable value in the model after a strict parser refused
    the text (the refusal is still reported as a finding).
    """
    match = _ISO_LOOSE.fullmatch(text.strip())
    if match is None or match.group(8) is None:
        return None
    zone = match.group(8)
    if zone in "Zz":
        tz = UTC
    else:
        zone = zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
        try:
            tz = _offset(zone)
        except ValueError:
            return None
    second = min(int(match.group(6) or 0), 59)
    try:
        return datetime(int(match.group(1)), int(match.group(2)), int(match.group(3)),
                        int(match.group(4)), int(match.group(5)), second, tzinfo=tz)
    except ValueError:
        return None


def _offset(zone: str) -> timezone:
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad UTC offset {zone!r}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if zone[0] == "-" else delta) if delta else UTC


#: Called for every element on the way down; returns the alerts it handled
#: itself (the walk then does not descend), or None to let the walk continue.
NestedHandler = Callable[[str, str, Any, str], "list[EmbeddedAlert] | None"]


def find_alerts(raw: Any, path: str, *, nested: NestedHandler | None = None) -> list[EmbeddedAlert]:
    """Every CAP ``<alert>`` element below ``raw``, in document order.

    The walk does not descend into an alert. ``nested(ns, name, value,
    path)`` may take over an element (the feed reader hands EDXL-DE
    distributions to :mod:`cap.edxl` this way).
    """
    found: list[EmbeddedAlert] = []
    for ns, name, index, value in iter_children(raw):
        here = child_path(path, name, index)
        if name == "alert" and ns in CAP_NAMESPACES:
            found.append(EmbeddedAlert(path=here, ns=ns, raw=value))
            continue
        if nested is not None:
            handled = nested(ns, name, value, here)
            if handled is not None:
                found.extend(handled)
                continue
        if isinstance(value, dict):
            found.extend(find_alerts(value, here, nested=nested))
    return found


def looks_like_cap_markup(text: str) -> bool:
    """True when a string plausibly holds a serialized CAP alert (an alert and a CAP namespace)."""
    return "<" in text and "alert" in text and any(ns in text for ns in CAP_NAMESPACES)


def alert_from_document(data: str | bytes, path: str) -> tuple[EmbeddedAlert | None, str | None]:
    """Parse a serialized CAP document found inside a container (escaped text, base64 data).

    Returns ``(alert, None)`` when ``data`` is a CAP ``<alert>`` document and
    ``(None, reason)`` otherwise. The text is parsed with the same safety
    limits as every other document (:func:`cap.xml.parse_xml`); an XML
    declaration in a string is dropped, since the string is already decoded.
    """
    if isinstance(data, str):
        declaration = _XML_DECLARATION.match(data)
        if declaration is not None:
            data = data[declaration.end():]
        data = data.encode("utf-8")
    try:
        tree = parse_xml(data)
    except XmlRefused as exc:
        return None, f"it is not well-formed XML: {exc}"
    if tree.root_name != "alert" or tree.root_ns not in CAP_NAMESPACES:
        return None, f"its root element is <{tree.root_name}>, not a CAP <alert>"
    return EmbeddedAlert(path=f"{path}/alert", ns=tree.root_ns, raw=tree.root), None
