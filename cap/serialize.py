"""Writing CAP: the model back to CAP 1.2 XML, and to and from a JSON form.

The JSON form mirrors the XML element for element: keys are CAP element
names, values are the element text exactly as CAP writes it (datetimes with
their offset, polygons as ``"lat,lon lat,lon ..."``), and repeatable elements
are lists. Reading JSON goes through the same reader as XML, so it is held
to the same rules and reports the same findings.

Serializing drops an XML signature: the bytes change, so it could not verify.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from cap.errors import InvalidAlert
from cap.findings import Finding
from cap.model import CAP12_NS, Alert, Area, Info, Resource, ValuePair
from cap.parse import format_datetime, read_alert

__all__ = ["alert_from_json", "alert_to_json", "format_number", "serialize"]


def format_number(value: float) -> str:
    """The shortest decimal text that reads back as exactly ``value``, never in exponent form."""
    text = np.format_float_positional(value, unique=True, trim="-")
    return "0" if text == "-0" else text


def _quoted(items: tuple[str, ...]) -> str:
    return " ".join(f'"{item}"' if any(c.isspace() for c in item) else item for item in items)


def _pairs(pairs: tuple[ValuePair, ...]) -> list[dict[str, str]]:
    return [{"valueName": p.value_name, "value": p.value} for p in pairs]


def _area(area: Area) -> dict[str, Any]:
    out: dict[str, Any] = {"areaDesc": area.area_desc}
    if area.polygons:
        out["polygon"] = [" ".join(f"{format_number(lat)},{format_number(lon)}"
                                   for lat, lon in polygon.points)
                          for polygon in area.polygons]
    if area.circles:
        out["circle"] = [f"{format_number(c.lat)},{format_number(c.lon)} "
                         f"{format_number(c.radius_km)}" for c in area.circles]
    if area.geocodes:
        out["geocode"] = _pairs(area.geocodes)
    if area.altitude is not None:
        out["altitude"] = format_number(area.altitude)
    if area.ceiling is not None:
        out["ceiling"] = format_number(area.ceiling)
    return out


def _resource(resource: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceDesc": resource.resource_desc,
                           "mimeType": resource.mime_type}
    if resource.size is not None:
        out["size"] = str(resource.size)
    for key, value in (("uri", resource.uri), ("derefUri", resource.deref_uri),
                       ("digest", resource.digest)):
        if value is not None:
            out[key] = value
    return out


def _info(info: Info) -> dict[str, Any]:
    out: dict[str, Any] = {"language": info.language,
                           "category": [c.value for c in info.categories],
                           "event": info.event}
    if info.response_types:
        out["responseType"] = [r.value for r in info.response_types]
    out["urgency"] = info.urgency.value
    out["severity"] = info.severity.value
    out["certainty"] = info.certainty.value
    if info.audience is not None:
        out["audience"] = info.audience
    if info.event_codes:
        out["eventCode"] = _pairs(info.event_codes)
    for key, when in (("effective", info.effective), ("onset", info.onset),
                      ("expires", info.expires)):
        if when is not None:
            out[key] = format_datetime(when)
    for key, text in (("senderName", info.sender_name), ("headline", info.headline),
                      ("description", info.description), ("instruction", info.instruction),
                      ("web", info.web), ("contact", info.contact)):
        if text is not None:
            out[key] = text
    if info.parameters:
        out["parameter"] = _pairs(info.parameters)
    if info.resources:
        out["resource"] = [_resource(r) for r in info.resources]
    if info.areas:
        out["area"] = [_area(a) for a in info.areas]
    return out


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """The alert as a JSON-ready dict keyed by CAP element names (see module docstring)."""
    out: dict[str, Any] = {"identifier": alert.identifier, "sender": alert.sender,
                           "sent": format_datetime(alert.sent), "status": alert.status.value,
                           "msgType": alert.msg_type.value}
    if alert.source is not None:
        out["source"] = alert.source
    out["scope"] = alert.scope.value
    if alert.restriction is not None:
        out["restriction"] = alert.restriction
    if alert.addresses:
        out["addresses"] = _quoted(alert.addresses)
    if alert.codes:
        out["code"] = list(alert.codes)
    if alert.note is not None:
        out["note"] = alert.note
    if alert.references:
        out["references"] = " ".join(f"{r.sender},{r.identifier},{format_datetime(r.sent)}"
                                     for r in alert.references)
    if alert.incidents:
        out["incidents"] = _quoted(alert.incidents)
    if alert.infos:
        out["info"] = [_info(i) for i in alert.infos]
    return out


# alert_to_json builds each dict in the CAP XSD sequence order, so writing keys in
# insertion order yields schema-valid XML.
def _write(parts: list[str], name: str, value: Any, indent: str) -> None:
    if isinstance(value, list):
        for item in value:
            _write(parts, name, item, indent)
        return
    if isinstance(value, dict):
        parts.append(f"{indent}<{name}>\n")
        for key, child in value.items():
            _write(parts, key, child, indent + "  ")
        parts.append(f"{indent}</{name}>\n")
        return
    parts.append(f"{indent}<{name}>{escape(value)}</{name}>\n")


def serialize(alert: Alert) -> bytes:
    """The alert as CAP 1.2 XML (UTF-8), with UTC written as ``-00:00``."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<alert xmlns="{CAP12_NS}">\n']
    for key, value in alert_to_json(alert).items():
        _write(parts, key, value, "  ")
    parts.append("</alert>\n")
    return "".join(parts).encode("utf-8")


def _qualify(value: Any, ns: str, path: str, problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {f"{ns}:{key}": _qualify(child, ns, f"{path}/{key}", problems)
                for key, child in value.items()}
    if isinstance(value, list):
        return [_qualify(item, ns, path, problems) for item in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        problems.append(f"{path}: {value!r} must be a string")
        return None
    if isinstance(value, int | float):
        return format_number(float(value)) if isinstance(value, float) else str(value)
    problems.append(f"{path}: {type(value).__name__} is not allowed, only strings")
    return None


def alert_from_json(document: Any) -> Alert:
    """Read the JSON form (see :func:`alert_to_json`) with every CAP rule applied.

    Raises :class:`~cap.errors.InvalidAlert` listing every finding when the
    document breaks a rule.
    """
    if isinstance(document, dict) and set(document) == {"alert"}:
        document = document["alert"]
    if not isinstance(document, dict):
        raise InvalidAlert([Finding.error_at("json-not-object", "alert",
                                             "the JSON document must be an object of CAP "
                                             "elements")])
    problems: list[str] = []
    raw = _qualify(document, CAP12_NS, "alert", problems)
    if problems:
        raise InvalidAlert([Finding.error_at("json-invalid-value", p.split(":")[0], p)
                            for p in problems])
    alert, findings = read_alert(raw, CAP12_NS)
    if alert is None:
        raise InvalidAlert(findings)
    return alert

