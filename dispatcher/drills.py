"""Drills and manager cancels: CAP messages the service writes itself, sent the normal way.

A drill (:func:`run_drill`, ``POST /api/v1/drills``) is a CAP 1.2 alert with
status **Exercise** written for an emergency manager: an area (GeoJSON) or a
preset (the authority's jurisdiction, or one geocode), a text, optionally a
test channel. It is serialized and submitted through
:meth:`Ingest.submit <dispatcher.pipeline.Ingest.submit>` like any alert an
authority posts, so it is validated, authorized (the authority must allow
Exercise), planned and dispatched by the same code: the planner sends an
Exercise only through the gateways, on the test channels and to the cells each
operator configures for exercises (:class:`~dispatcher.planner.StatusPolicy`),
and refuses to plan one on a public channel (``ExerciseLeak``). With
``wait_seconds`` the drill waits for its jobs and reports per-hop timings
from the stored timestamps (the database's clock):

* the ingest steps as :class:`~dispatcher.pipeline.IngestResult` measured them
  (``store_raw``, ``validate``, ``authorize``, ``idempotency``, ``plan``, ``commit``);
* ``claim``: from the commit (``alerts.accepted_at``) to the first job claimed
  (``jobs.started_at``);
* ``first_submission``: from that claim to the first request recorded for a
  peer (``submissions.sent_at``, written just before it is sent);
* ``acknowledged``: from that first request to the last acknowledgement
  (``submissions.acked_at``);
* ``total``: from the arrival of the bytes (``alerts.received_at``) to the last
  job finished (``jobs.finished_at``), once every job has.

The channel is chosen the only ways the planner understands (it reads no
``<parameter>`` for channels): the authority's own event-code mapping
(``[authorities.channels]``), else a SAME event code with a fixed test channel
(``DMO`` 4381 exercise, ``RMT`` 4380 monthly test, ``RWT``/``NPT`` 4398
state/local test), checked with :func:`gateways.channels.message_identifier`
before anything is sent. The planner cannot restrict an alert to named
operators: ``operators`` is checked and reported against, not enforced (see
:attr:`DrillResult.notes`).

A manager cancel (:func:`cancel_alert`) writes a CAP **Cancel** from the
alert's own sender referencing it and submits it the same way, so the planner
stops every broadcast of the chain and the store marks the alert cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import split as split_geometry

from cap.errors import CapcastError, InvalidAlert
from cap.model import (
    Alert,
    Area,
    Category,
    Certainty,
    Info,
    MsgType,
    Polygon,
    Reference,
    Scope,
    Severity,
    Status,
    Urgency,
    ValuePair,
)
from cap.serialize import alert_from_json, serialize
from cap.validate import validate
from dispatcher.config import AuthoritySettings
from dispatcher.errors import NotFound
from dispatcher.pipeline import IngestOutcome, IngestResult
from dispatcher.service import Service
from dispatcher.store import AlertDetail, AlertState, SubmissionStatus
from gateways.channels import (
    TEST_CHANNELS,
    AuthorityChannels,
    is_test_channel,
    message_identifier,
)
from geo.geocodes import GeocodeRegistry

__all__ = [
    "DRILL_EVENT",
    "CancelError",
    "DrillRequest",
    "DrillRequestError",
    "DrillResult",
    "build_cancel_alert",
    "build_drill_alert",
    "cancel_alert",
    "channel_event_codes",
    "run_drill",
]

#: The ``<event>`` of every drill.
DRILL_EVENT: Final = "Drill"
#: Limits of a drill request (a drill is a short message over a drawn area).
MAX_TEXT_CHARS: Final = 4096
MAX_HEADLINE_CHARS: Final = 160
MAX_AREA_VERTICES: Final = 20_000
MAX_WAIT_SECONDS: Final = 120.0
MAX_EXPIRES_MINUTES: Final = 1440
#: Douglas-Peucker tolerance (degrees, about 5 m) for a jurisdiction too detailed for CAP;
#: less than the pipeline's jurisdiction slack (1e-4), so the drill stays inside it.
_SIMPLIFY_DEG: Final = 5e-5
#: valueName of the event code that selects an authority's own channel mapping.
CHANNEL_EVENT_CODE: Final = "capcast-channel"
_SAME_TEST_CODES: Final = ("DMO", "RMT", "RWT", "NPT")

_FIELDS: Final = frozenset({"area", "preset", "text", "headline", "language", "operators",
                            "channel", "expires_minutes", "authority", "wait_seconds"})
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_GEOCODE = re.compile(r"([^=\s]+)=(\S(?:.*\S)?)")
# Characters XML 1.0 cannot carry (a CAP document with them would not parse).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class DrillRequestError(CapcastError):
    """A drill request that cannot be run; ``field`` names the request member at fault.

    ``http_status`` is what the API answers: 422 for a bad value, 403 when the
    token may not act for the authority asked for.
    """

    def __init__(self, field: str, message: str, *, http_status: int = 422) -> None:
        self.field = field
        self.message = message
        self.http_status = http_status
        super().__init__(f"{field}: {message}")


class CancelError(CapcastError):
    """An alert that cannot be cancelled, and why.

    ``code`` is stable (``not-found``, ``not-accepted``, ``already-cancelled``,
    ``expired``, ``not-cancellable``); ``http_status`` 404, 409 or 422.
    """

    def __init__(self, message: str, *, alert_id: int, code: str, http_status: int) -> None:
        self.message = message
        self.alert_id = alert_id
        self.code = code
        self.http_status = http_status
        super().__init__(message)


# -- the request --------------------------------------------------------------------------


def _text(data: Mapping[str, Any], name: str, *, limit: int, required: bool = False,
          default: str | None = None) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise DrillRequestError(name, "is required")
        return default
    if not isinstance(value, str):
        raise DrillRequestError(name, f"must be a string, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise DrillRequestError(name, "must not be empty")
    if len(value) > limit:
        raise DrillRequestError(name, f"is {len(value)} characters long; at most {limit}")
    bad = _NOT_XML.search(value)
    if bad is not None:
        raise DrillRequestError(name, f"holds the character U+{ord(bad.group()):04X}, which "
                                      "XML cannot carry")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DrillRequestError(name, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise DrillRequestError(name, f"must be a finite number, not {value}")
    return float(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DrillRequestError(name, f"must be an integer, not {value!r}")
    return value


def _position(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise DrillRequestError("area", f"{where}: a position is [longitude, latitude], "
                                        f"not {value!r}")
    lon, lat = (_number(v, "area") for v in value[:2])
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise DrillRequestError("area", f"{where}: [{lon}, {lat}] is not a longitude, latitude "
                                        "pair (GeoJSON puts the longitude first)")
    return lon, lat


def _ring(value: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(value, list | tuple):
        raise DrillRequestError("area", f"{where}: a ring is a list of positions")
    points = [_position(p, f"{where}[{i}]") for i, p in enumerate(value)]
    if len(points) < 4:
        raise DrillRequestError("area", f"{where}: a ring needs at least 4 positions, has "
                                        f"{len(points)}")
    if points[0] != points[-1]:
        raise DrillRequestError("area", f"{where}: the ring is not closed (its last position "
                                        "must repeat the first)")
    return points


def _hole_free(polygon: shapely.Polygon) -> list[shapely.Polygon]:
    """``polygon`` cut into pieces without holes (CAP polygons cannot have holes).

    A vertical line through each hole opens it; the pieces cover exactly the
    polygon, so no recipient in a hole is warned.
    """
    pieces = [polygon]
    for hole in polygon.interiors:
        x = shapely.Polygon(hole).representative_point().x
        _, miny, _, maxy = polygon.bounds
        cut = shapely.LineString([(x, miny - 1.0), (x, maxy + 1.0)])
        split: list[shapely.Polygon] = []
        for piece in pieces:
            if piece.intersects(cut):
                parts = shapely.get_parts(split_geometry(piece, cut))
                split.extend(p for p in parts if p.geom_type == "Polygon")
            else:
                split.append(piece)
        pieces = split
    return [p for p in pieces if not p.is_empty and p.area > 0]


def _cap_polygons(geometry: BaseGeometry) -> tuple[Polygon, ...]:
    """CAP polygons (lat, lon, closed) of a polygonal lon/lat geometry, holes cut open."""
    out: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if part.geom_type == "MultiPolygon":
            out.extend(_cap_polygons(part))
            continue
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        for piece in _hole_free(part):
            ring = shapely.Polygon(piece.exterior).normalize().exterior
            out.append(Polygon(points=tuple((lat, lon) for lon, lat in ring.coords)))
    return tuple(out)


def _area(value: Any) -> tuple[Polygon, ...]:
    """The ``area`` member: a GeoJSON Polygon or MultiPolygon as CAP polygons."""
    if not isinstance(value, Mapping):
        raise DrillRequestError("area", "must be a GeoJSON geometry object "
                                        '({"type": "Polygon", "coordinates": [...]})')
    extra = sorted(set(value) - {"type", "coordinates", "bbox"})
    if extra:
        raise DrillRequestError("area", f"unknown GeoJSON member(s) {', '.join(extra)}: give "
                                        "the geometry, not a Feature")
    kind = value.get("type")
    coordinates = value.get("coordinates")
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list | tuple) or not coordinates:
            raise DrillRequestError("area", "a MultiPolygon needs at least one polygon")
        polygons = list(coordinates)
    else:
        raise DrillRequestError("area", f"type must be Polygon or MultiPolygon, not {kind!r}")
    shapes: list[shapely.Polygon] = []
    vertices = 0
    for i, rings in enumerate(polygons):
        where = f"coordinates[{i}]" if kind == "MultiPolygon" else "coordinates"
        if not isinstance(rings, list | tuple) or not rings:
            raise DrillRequestError("area", f"{where}: a polygon is a non-empty list of rings")
        exterior, *holes = (_ring(r, f"{where}[{j}]") for j, r in enumerate(rings))
        vertices += len(exterior) + sum(len(h) for h in holes)
        if vertices > MAX_AREA_VERTICES:
            raise DrillRequestError("area", f"more than {MAX_AREA_VERTICES} positions")
        shape = shapely.Polygon(exterior, holes)
        if not shape.is_valid:
            raise DrillRequestError("area", f"{where}: not a valid polygon "
                                            f"({shapely.is_valid_reason(shape)})")
        if shape.area <= 0:
            raise DrillRequestError("area", f"{where}: the polygon has no area")
        shapes.append(shape)
    return _cap_polygons(shapely.MultiPolygon(shapes) if len(shapes) > 1 else shapes[0])


def _preset(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DrillRequestError("preset", "must be 'jurisdiction' or a geocode VALUENAME=VALUE "
                                          "(like NUTS3=DEA11)")
    preset: str = value.strip()
    if preset != "jurisdiction" and _GEOCODE.fullmatch(preset) is None:
        raise DrillRequestError("preset", f"{preset!r} is neither 'jurisdiction' nor a geocode "
                                          "VALUENAME=VALUE (like NUTS3=DEA11)")
    return preset


def _operators(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise DrillRequestError("operators", "must be a non-empty list of operator names")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise DrillRequestError("operators", f"{item!r} is not an operator name")
        if item.strip() in names:
            raise DrillRequestError("operators", f"{item.strip()!r} is listed twice")
        names.append(item.strip())
    return tuple(names)


def _channel(value: Any) -> int:
    channel = _integer(value, "channel")
    if not 0 <= channel <= 0xFFFF:
        raise DrillRequestError("channel", f"{channel} is not a message identifier (0..65535)")
    if 4352 <= channel <= 4399 and channel not in TEST_CHANNELS:
        raise DrillRequestError("channel", f"{channel} is a public warning channel; a drill "
                                           f"goes only on a test channel "
                                           f"({', '.join(map(str, sorted(TEST_CHANNELS)))})")
    return channel


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillRequest:
    """What a manager asks for (``POST /api/v1/drills``); build it with :meth:`from_json`.

    Exactly one of ``area`` (CAP polygons, from a GeoJSON Polygon or
    MultiPolygon in lon/lat) and ``preset`` (``"jurisdiction"`` or a geocode
    ``"VALUENAME=VALUE"``). ``operators``, ``channel``, ``authority`` and the
    preset are checked against the service by :func:`run_drill`.
    """

    text: str
    area: tuple[Polygon, ...] | None = None
    preset: str | None = None
    headline: str | None = None
    language: str = "en"
    operators: tuple[str, ...] | None = None
    channel: int | None = None
    expires_minutes: int = 30
    authority: str | None = None
    wait_seconds: float = 0.0

    def __post_init__(self) -> None:
        if (self.area is None) == (self.preset is None):
            raise DrillRequestError("area", "give exactly one of area and preset")
        if self.area is not None and not self.area:
            raise DrillRequestError("area", "must hold at least one polygon")
        if not self.text.strip():
            raise DrillRequestError("text", "must not be empty")
        if not 1 <= self.expires_minutes <= MAX_EXPIRES_MINUTES:
            raise DrillRequestError("expires_minutes", f"must be 1..{MAX_EXPIRES_MINUTES}, not "
                                                       f"{self.expires_minutes}")
        if not 0.0 <= self.wait_seconds <= MAX_WAIT_SECONDS:
            raise DrillRequestError("wait_seconds", f"must be 0..{MAX_WAIT_SECONDS:g}, not "
                                                    f"{self.wait_seconds}")
        if self.channel is not None:
            _channel(self.channel)
        if _LANGUAGE.fullmatch(self.language) is None:
            raise DrillRequestError("language", f"{self.language!r} is not a language tag "
                                                "(like en or de-DE)")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DrillRequest:
        """Read and check a request body; every error names its field.

        Raises:
            DrillRequestError: an unknown member, a missing or malformed value.

        """
        if not isinstance(data, Mapping):
            raise DrillRequestError("body", "must be a JSON object")
        unknown = sorted(str(k) for k in data if k not in _FIELDS)
        if unknown:
            raise DrillRequestError(unknown[0], f"unknown member (known: "
                                                f"{', '.join(sorted(_FIELDS))})")
        has_area = data.get("area") is not None
        has_preset = data.get("preset") is not None
        if has_area and has_preset:
            raise DrillRequestError("preset", "give either area or preset, not both")
        if not has_area and not has_preset:
            raise DrillRequestError("area", "is required (or a preset)")
        text = _text(data, "text", limit=MAX_TEXT_CHARS, required=True)
        assert text is not None
        language = _text(data, "language", limit=35, default="en")
        assert language is not None
        if _LANGUAGE.fullmatch(language) is None:
            raise DrillRequestError("language", f"{language!r} is not a language tag "
                                                "(like en or de-DE)")
        expires = data.get("expires_minutes")
        wait = data.get("wait_seconds")
        return cls(
            text=text,
            area=_area(data["area"]) if has_area else None,
            preset=_preset(data["preset"]) if has_preset else None,
            headline=_text(data, "headline", limit=MAX_HEADLINE_CHARS),
            language=language,
            operators=_operators(data["operators"]) if data.get("operators") is not None
            else None,
            channel=_channel(data["channel"]) if data.get("channel") is not None else None,
            expires_minutes=(_integer(expires, "expires_minutes") if expires is not None
                             else 30),
            authority=_text(data, "authority", limit=255),
            wait_seconds=_number(wait, "wait_seconds") if wait is not None else 0.0,
        )

    @property
    def geocode(self) -> tuple[str, str] | None:
        """The preset as (valueName, value) when it is a geocode, else None."""
        if self.preset is None or self.preset == "jurisdiction":
            return None
        match = _GEOCODE.fullmatch(self.preset)
        return (match[1], match[2]) if match is not None else None


# -- the result ---------------------------------------------------------------------------


def _ingest_json(result: IngestResult) -> dict[str, Any]:
    return {"outcome": result.outcome.value, "http_status": result.http_status,
            "alert_id": result.alert_id, "stored_id": result.stored_id, "jobs": result.jobs,
            "refusal": ({"code": result.refusal.code, "reason": result.refusal.reason}
                        if result.refusal is not None else None),
            "findings": [dict(f) for f in result.findings], "flags": list(result.flags),
            "timings_ms": dict(result.timings_ms)}


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillResult:
    """What a drill did: the alert, what ingest said, its jobs and how long each hop took.

    ``jobs`` summarizes the jobs (``total``, ``finished``, ``by_state``, and per
    operator its jobs, cells, channels and states, plus submission counts);
    ``timings_ms`` the hops of the module docstring that have happened;
    ``channel`` the message identifier the planner maps the drill to (before
    the operators' own allow-lists); ``operators`` those that got jobs;
    ``notes`` what the caller should know (e.g. operators asked for but not
    enforceable). ``http_status`` is what the API answers with.
    """

    alert_id: int
    identifier: str
    sender: str
    sent: datetime
    expires: datetime
    ingest: IngestResult
    jobs: Mapping[str, Any]
    done: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    http_status: int = 201
    channel: int | None = None
    operators: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the API's answer)."""
        return {"alert_id": self.alert_id, "identifier": self.identifier,
                "sender": self.sender, "sent": self.sent.isoformat(),
                "expires": self.expires.isoformat(), "status": Status.EXERCISE.value,
                "ingest": _ingest_json(self.ingest), "jobs": dict(self.jobs),
                "done": self.done, "timings_ms": dict(self.timings_ms),
                "http_status": self.http_status, "channel": self.channel,
                "operators": list(self.operators), "notes": list(self.notes)}


# -- building the alerts -------------------------------------------------------------------


def _seconds(moment: datetime) -> datetime:
    # CAP writes whole seconds: the key (sender, identifier, sent) must survive a round trip.
    return moment.replace(microsecond=0)


def build_drill_alert(request: DrillRequest, *, sender: str, sent: datetime, area: Area,
                      identifier: str | None = None,
                      event_codes: Sequence[ValuePair] = (),
                      sender_name: str | None = None, note: str | None = None) -> Alert:
    """The Exercise alert of a drill (pure: no service, no clock).

    ``area`` is the resolved CAP area (polygons or geocodes); ``event_codes``
    select the channel (see the module docstring). The result is always status
    Exercise, msgType Alert, scope Public, one info block (category Safety,
    event "Drill", urgency/severity/certainty Unknown), expiring
    ``request.expires_minutes`` after ``sent``.
    """
    sent = _seconds(sent)
    info = Info(language=request.language, categories=(Category.SAFETY,), event=DRILL_EVENT,
                urgency=Urgency.UNKNOWN, severity=Severity.UNKNOWN,
                certainty=Certainty.UNKNOWN, event_codes=tuple(event_codes),
                expires=sent + timedelta(minutes=request.expires_minutes),
                sender_name=sender_name, headline=request.headline,
                description=request.text, areas=(area,))
    alert = Alert(identifier=identifier or f"capcast-drill-{uuid.uuid4().hex}", sender=sender,
                  sent=sent, status=Status.EXERCISE, msg_type=MsgType.ALERT,
                  source="capcast drill", scope=Scope.PUBLIC,
                  note=note or "Drill: an exercise, not a real warning", infos=(info,))
    _never_actual(alert)
    return alert


def _never_actual(alert: Alert) -> None:
    # Not an `assert` statement: this check must survive `python -O`.
    if alert.status is not Status.EXERCISE or alert.msg_type is not MsgType.ALERT:
        raise AssertionError(f"a drill must be an Exercise Alert, not {alert.status.value} "
                             f"{alert.msg_type.value}")


_TEXT_PARAMETERS: Final = frozenset({"CMAMtext", "CMAMlongtext"})


def build_cancel_alert(original: Alert, *, sent: datetime, note: str,
                       identifier: str | None = None) -> Alert:
    """A CAP Cancel of ``original`` from its own sender (pure).

    Same status and scope (restriction, addresses) as the original; references
    it; one info per original info echoing its language, categories, event,
    urgency, severity, certainty, event codes and areas, with the ``note`` as
    description, expiring an hour after ``sent``.
    """
    sent = _seconds(sent)
    infos = tuple(Info(
        language=info.language, categories=info.categories, event=info.event,
        urgency=info.urgency, severity=info.severity, certainty=info.certainty,
        event_codes=info.event_codes, expires=sent + timedelta(hours=1),
        sender_name=info.sender_name,
        headline=f"Cancelled: {info.headline or info.event}"[:MAX_HEADLINE_CHARS],
        description=note,
        parameters=tuple(p for p in info.parameters if p.value_name not in _TEXT_PARAMETERS),
        areas=info.areas) for info in original.infos)
    return Alert(identifier=identifier or f"capcast-cancel-{uuid.uuid4().hex}",
                 sender=original.sender, sent=sent, status=original.status,
                 msg_type=MsgType.CANCEL, source="capcast cancel", scope=original.scope,
                 restriction=original.restriction, addresses=original.addresses,
                 note=note, references=(Reference(sender=original.sender,
                                                  identifier=original.identifier,
                                                  sent=original.sent),),
                 incidents=original.incidents, infos=infos)


# -- resolving a request against the service ----------------------------------------------


def _sender(request: DrillRequest, authority: str | None) -> str:
    if authority is not None:
        if request.authority is not None and request.authority != authority:
            raise DrillRequestError("authority", f"this token acts for {authority!r}, not "
                                                 f"{request.authority!r}", http_status=403)
        return authority
    if request.authority is None:
        raise DrillRequestError("authority", "is required: this token is not bound to an "
                                             "authority")
    return request.authority


def _operator_names(service: Service, asked: Sequence[str] | None) -> tuple[str, ...]:
    if asked is None:
        return ()
    configured = {op.name.casefold(): op.name for op in service.operators}
    unknown = [name for name in asked if name.casefold() not in configured]
    if unknown:
        known = ", ".join(sorted(configured.values())) or "none"
        raise DrillRequestError("operators", f"unknown operator(s) {', '.join(unknown)} "
                                             f"(configured: {known})")
    return tuple(configured[name.casefold()] for name in asked)


def _registry(service: Service, what: str) -> GeocodeRegistry:
    if service.registry is None:
        raise DrillRequestError("preset", f"{what}: no geocode boundaries are configured "
                                          "(targeting.geodata_dir)")
    return service.registry


def _check_geocode(registry: GeocodeRegistry, value_name: str, value: str) -> str | None:
    """The feature's name, or raise naming the geocode when it cannot be resolved."""
    result = registry.lookup(value_name, value)
    if not result.found:
        reason = result.note or result.status.value
        raise DrillRequestError("preset", f"unknown geocode {value_name}={value}: {reason}")
    return result.name


def _vertices(polygons: Sequence[Polygon]) -> int:
    return sum(len(p.points) for p in polygons)


def _resolve_area(service: Service, request: DrillRequest, sender: str,
                  authority: AuthoritySettings) -> Area:
    if request.area is not None:
        return Area(area_desc="Drill area", polygons=request.area)
    geocode = request.geocode
    if geocode is not None:
        name = _check_geocode(_registry(service, request.preset or ""), *geocode)
        return Area(area_desc=name or f"{geocode[0]} {geocode[1]}",
                    geocodes=(ValuePair(value_name=geocode[0], value=geocode[1]),))
    spec = authority.jurisdiction
    if spec is None:
        raise DrillRequestError("preset", f"authority {sender} has no jurisdiction configured")
    if spec.file is None:
        registry = _registry(service, "jurisdiction")
        for code in spec.geocodes:
            _check_geocode(registry, code.value_name, code.value)
        return Area(area_desc=f"Jurisdiction of {authority.name}",
                    geocodes=tuple(ValuePair(value_name=c.value_name, value=c.value)
                                   for c in spec.geocodes))
    # The pipeline read the file at start-up: use that geometry, not a second read.
    geometry = service.ingest.jurisdiction(sender)
    if geometry is None:
        raise DrillRequestError("preset", f"authority {sender}'s jurisdiction file "
                                          f"{spec.file} is not loaded by the service")
    polygons = _cap_polygons(geometry)
    if _vertices(polygons) > MAX_AREA_VERTICES:
        polygons = _cap_polygons(shapely.simplify(geometry, _SIMPLIFY_DEG,
                                                  preserve_topology=True))
    if _vertices(polygons) > MAX_AREA_VERTICES:
        raise DrillRequestError("preset", f"the jurisdiction of {sender} has more than "
                                          f"{MAX_AREA_VERTICES} points even simplified: draw "
                                          "the area instead")
    return Area(area_desc=f"Jurisdiction of {authority.name}", polygons=polygons)


def channel_event_codes(request: DrillRequest, base: Alert, authority: AuthoritySettings
                        ) -> tuple[tuple[ValuePair, ...], int | None]:
    """The event codes that make the planner put ``base`` on ``request.channel``, and the channel.

    Without a channel asked for: the codes the authority's profile needs and the
    channel the planner will pick. Raises :class:`DrillRequestError` (``channel``)
    for a channel that is no test channel or that no event code selects.
    """
    channels: AuthorityChannels | None = authority.channels
    overrides = {base.sender: channels} if channels is not None else {}
    # IPAWS wants exactly one SAME event code; DMO (demo/practice) is the drill's own.
    plain: tuple[ValuePair, ...] = ((ValuePair(value_name="SAME", value="DMO"),)
                                    if authority.profile == "ipaws" else ())

    def predict(codes: tuple[ValuePair, ...]) -> int | None:
        info = dataclasses.replace(base.infos[0], event_codes=codes)
        return message_identifier(dataclasses.replace(base, infos=(info,)), info,
                                  overrides=overrides)

    if request.channel is None:
        return plain, predict(plain)
    extra = channels.test_channels if channels is not None else frozenset()
    if not is_test_channel(request.channel, extra):
        allowed = ", ".join(map(str, sorted(TEST_CHANNELS | extra)))
        raise DrillRequestError("channel", f"{request.channel} is not a test channel (test "
                                           f"channels: {allowed})")
    candidates: list[tuple[ValuePair, ...]] = [plain]
    if channels is not None:
        candidates += [(*plain, ValuePair(value_name=CHANNEL_EVENT_CODE, value=code))
                       for code, ident in sorted(channels.by_event_code.items())
                       if ident == request.channel]
    candidates += [(ValuePair(value_name="SAME", value=code),) for code in _SAME_TEST_CODES]
    reachable = set()
    for codes in candidates:
        channel = predict(codes)
        if channel == request.channel:
            return codes, channel
        if channel is not None:
            reachable.add(channel)
    raise DrillRequestError(
        "channel", f"the planner cannot put a drill of {base.sender} on channel "
                   f"{request.channel}: it picks channels from event codes and the authority's "
                   f"channel settings, which give {', '.join(map(str, sorted(reachable)))}")


# -- running a drill -----------------------------------------------------------------------


def _ms(delta: timedelta) -> float:
    return round(delta.total_seconds() * 1000.0, 3)


def _timings(ingest: IngestResult, detail: AlertDetail | None, done: bool) -> dict[str, float]:
    timings = {name: float(value) for name, value in ingest.timings_ms.items()}
    if detail is None:
        return timings
    alert = detail.alert
    claimed = [j.started_at for j in detail.jobs if j.started_at is not None]
    sent = [s.sent_at for s in detail.submissions]
    acked = [s.acked_at for s in detail.submissions
             if s.status is SubmissionStatus.ACKNOWLEDGED and s.acked_at is not None]
    if alert.accepted_at is not None and claimed:
        timings["claim"] = _ms(min(claimed) - alert.accepted_at)
    if claimed and sent:
        timings["first_submission"] = _ms(min(sent) - min(claimed))
    if sent and acked:
        timings["acknowledged"] = _ms(max(acked) - min(sent))
    finished = [j.finished_at for j in detail.jobs if j.finished_at is not None]
    if done and detail.jobs and len(finished) == len(detail.jobs):
        timings["total"] = _ms(max(finished) - alert.received_at)
    return timings


def _jobs_summary(detail: AlertDetail | None) -> dict[str, Any]:
    if detail is None:
        return {"total": 0, "finished": 0, "by_state": {}, "operators": {},
                "submissions": 0, "acknowledged": 0}
    operators: dict[str, dict[str, Any]] = {}
    for job in detail.jobs:
        entry = operators.setdefault(job.operator, {"jobs": 0, "cells": 0, "gateways": [],
                                                    "channels": [], "states": Counter()})
        entry["jobs"] += 1
        entry["cells"] += len(job.payload.get("cells", ()))
        if job.gateway not in entry["gateways"]:
            entry["gateways"].append(job.gateway)
        for channel in job.payload.get("message_identifiers", ()):
            if channel not in entry["channels"]:
                entry["channels"].append(channel)
        entry["states"][job.state.value] += 1
    for entry in operators.values():
        entry["states"] = dict(entry["states"])
    return {"total": len(detail.jobs),
            "finished": sum(1 for j in detail.jobs if j.state.finished),
            "by_state": dict(Counter(j.state.value for j in detail.jobs)),
            "operators": operators,
            "submissions": len(detail.submissions),
            "acknowledged": sum(1 for s in detail.submissions
                                if s.status is SubmissionStatus.ACKNOWLEDGED)}


async def _wait_for_jobs(service: Service, alert_id: int, seconds: float
                         ) -> tuple[AlertDetail, bool]:
    """Poll the store until every job of the alert has finished, or ``seconds`` pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    interval = 0.02
    while True:
        detail = await service.store.get_alert_detail(alert_id)
        if all(job.state.finished for job in detail.jobs):
            return detail, True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return detail, False
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 0.25)


async def run_drill(service: Service, request: DrillRequest, *, actor: str,
                    authority: str | None) -> DrillResult:
    """Run a drill: build the Exercise alert, submit it like any alert, report on it.

    ``actor`` names the manager (audit log, the alert's source ``drill:<actor>``);
    ``authority`` is the sender the caller's token is bound to (None for a
    token bound to none: then ``request.authority`` names it).

    Raises:
        DrillRequestError: the request does not fit this service (unknown
            authority, operator or geocode, a channel the planner cannot use).

    """
    sender = _sender(request, authority)
    settings = service.settings.authority(sender)
    if settings is None:
        known = ", ".join(a.sender for a in service.settings.authorities) or "none"
        raise DrillRequestError("authority", f"no authority has the sender {sender!r} "
                                             f"(configured: {known})")
    asked = _operator_names(service, request.operators)
    area = _resolve_area(service, request, sender, settings)
    now = _seconds(service.clock())
    base = build_drill_alert(request, sender=sender, sent=now, area=area,
                             sender_name=settings.name, note=f"Drill run by {actor}")
    codes, channel = channel_event_codes(request, base, settings)
    alert = dataclasses.replace(base, infos=(dataclasses.replace(base.infos[0],
                                                                 event_codes=codes),))
    _never_actual(alert)
    raw = serialize(alert)
    result = await service.ingest.submit(raw, source=f"drill:{actor}", token_authority=sender,
                                         only_operators=asked or None)

    detail: AlertDetail | None = None
    done = True
    if result.outcome is IngestOutcome.ACCEPTED:
        if request.wait_seconds > 0:
            detail, done = await _wait_for_jobs(service, result.alert_id, request.wait_seconds)
        else:
            detail = await service.store.get_alert_detail(result.alert_id)
            done = all(job.state.finished for job in detail.jobs)
    with_jobs = tuple(dict.fromkeys(job.operator for job in detail.jobs)) if detail else ()
    notes: list[str] = []
    if asked:
        others = [name for name in with_jobs if name not in asked]
        if others:
            notes.append(f"operators not asked for that got jobs: {', '.join(others)}")
        missing = [name for name in asked if name not in with_jobs]
        if missing:
            notes.append(f"operators asked for that got no job: {', '.join(missing)}")
    if detail is not None and request.channel is not None:
        planned = {c for job in detail.jobs for c in job.payload.get("message_identifiers", ())}
        if planned - {request.channel}:
            notes.append(f"channel: jobs use {sorted(planned)}, not only {request.channel} "
                         "(an additional-language block, or the planner's options)")
    if result.outcome is not IngestOutcome.ACCEPTED and result.refusal is not None:
        notes.append(f"refused: {result.refusal.reason}")
    await service.store.audit(
        actor=actor, action="drill.run", subject=f"alert:{result.alert_id}",
        details={"identifier": alert.identifier, "sender": sender,
                 "outcome": result.outcome.value, "http_status": result.http_status,
                 "jobs": len(detail.jobs) if detail else 0, "channel": channel,
                 "operators_asked": list(asked), "operators_with_jobs": list(with_jobs),
                 "preset": request.preset, "expires_minutes": request.expires_minutes})
    expires = base.infos[0].expires
    assert expires is not None
    return DrillResult(alert_id=result.alert_id, identifier=alert.identifier, sender=sender,
                       sent=alert.sent, expires=expires, ingest=result,
                       jobs=_jobs_summary(detail), done=done,
                       timings_ms=_timings(result, detail, done),
                       http_status=result.http_status, channel=channel,
                       operators=with_jobs, notes=tuple(notes))


# -- cancelling an alert -------------------------------------------------------------------

_CANCELLABLE: Final = frozenset({AlertState.ACCEPTED, AlertState.PLANNED,
                                 AlertState.DISPATCHING, AlertState.DONE})


async def _original(service: Service, alert_id: int, parsed: Mapping[str, Any] | None
                    ) -> Alert:
    """The stored alert as a model: its parsed form, else its bytes read again."""
    if parsed is not None:
        try:
            return alert_from_json(dict(parsed))
        except InvalidAlert:
            pass  # read the bytes below
    report = validate(await service.store.get_raw(alert_id), check_signature=False)
    if len(report.alerts) == 1 and report.alerts[0].alert is not None:
        return report.alerts[0].alert
    raise CancelError(f"alert {alert_id} cannot be read back as CAP", alert_id=alert_id,
                      code="not-cancellable", http_status=422)


async def cancel_alert(service: Service, alert_id: int, *, actor: str,
                       note: str | None = None) -> IngestResult:
    """Cancel an accepted alert: submit a CAP Cancel from its sender, audit who asked.

    The Cancel goes through ingest like any message of the authority, so the
    planner stops every broadcast of the alert's chain and the alert becomes
    ``cancelled``. Returns what ingest answered (a refusal included: the
    authority may, say, no longer publish this status).

    Raises:
        CancelError: 404 no such alert; 409 not accepted (refused, a repeat,
            still being ingested), already cancelled or superseded, or expired;
            422 not cancellable (status Draft or System, msgType Cancel, Ack or Error).

    """
    try:
        stored = await service.store.get_alert(alert_id)
    except NotFound:
        raise CancelError(f"no alert {alert_id}", alert_id=alert_id, code="not-found",
                          http_status=404) from None
    state = stored.state
    if state is AlertState.CANCELLED:
        by = f" by alert {stored.stopped_by}" if stored.stopped_by is not None else ""
        raise CancelError(f"alert {alert_id} was already cancelled or superseded{by}",
                          alert_id=alert_id, code="already-cancelled", http_status=409)
    if state is AlertState.EXPIRED:
        raise CancelError(f"alert {alert_id} has expired: nothing of it is on the air",
                          alert_id=alert_id, code="expired", http_status=409)
    if state is AlertState.DUPLICATE:
        raise CancelError(f"alert {alert_id} is a repeat of alert {stored.duplicate_of}: "
                          f"cancel that one", alert_id=alert_id, code="not-accepted",
                          http_status=409)
    if state not in _CANCELLABLE:
        raise CancelError(f"alert {alert_id} was not accepted (it is {state.value})",
                          alert_id=alert_id, code="not-accepted", http_status=409)
    if stored.status in (Status.DRAFT.value, Status.SYSTEM.value):
        raise CancelError(f"alert {alert_id} has status {stored.status}: it is never sent, "
                          "so there is nothing to cancel", alert_id=alert_id,
                          code="not-cancellable", http_status=422)
    if stored.msg_type in (MsgType.CANCEL.value, MsgType.ACK.value, MsgType.ERROR.value):
        raise CancelError(f"alert {alert_id} is a {stored.msg_type} message, which cannot be "
                          "cancelled", alert_id=alert_id, code="not-cancellable",
                          http_status=422)
    original = await _original(service, alert_id, stored.parsed)
    text = (note or "").strip() or f"Cancelled by {actor}"
    if _NOT_XML.search(text) is not None:
        raise CancelError("the note holds characters XML cannot carry", alert_id=alert_id,
                          code="not-cancellable", http_status=422)
    cancel = build_cancel_alert(original, sent=service.clock(), note=text)
    result = await service.ingest.submit(serialize(cancel), source=f"cancel:{actor}",
                                         token_authority=original.sender)
    await service.store.audit(
        actor=actor, action="alert.cancel", subject=f"alert:{alert_id}",
        details={"cancel_alert_id": result.alert_id, "identifier": cancel.identifier,
                 "outcome": result.outcome.value, "http_status": result.http_status,
                 "jobs": result.jobs, "note": text})
    return result
