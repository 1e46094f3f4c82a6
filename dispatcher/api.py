"""The HTTP API (aiohttp): ingest, alerts, jobs, operators, drills, health and metrics.

:func:`create_api_app` builds the :class:`aiohttp.web.Application`; the
composition root (:mod:`dispatcher.app`) adds its own ``cleanup_ctx`` entries
and serves it. Every handler reaches the service through
``request.app[SERVICE]`` and the metrics through ``request.app[METRICS]``:
there is no module-level state.

Conventions, for every route under ``/api/v1`` (the OpenAPI document at
``/api/v1/openapi.json``, :mod:`dispatcher.openapi`, describes each one):

* JSON in and out, except the CAP body of ``POST /api/v1/alerts``, the raw
  alert (``application/cap+xml``), presence uploads (CSV or JSON lines),
  cell inventory uploads and the Prometheus text of ``/metrics``.
* Errors are ``{"error": {"code": "...", "message": "...", ...details}}`` with
  the matching status, for every failure: unknown routes and methods, bad
  parameters (the ``parameter`` is named), bodies over the limit (413, refused
  from ``Content-Length`` before anything is read, and while streaming),
  database trouble (503) and bugs (500, logged; never a traceback).
* ``Authorization: Bearer <token>``; a missing or unknown token is a 401 with
  ``WWW-Authenticate: Bearer``, a role that does not allow the call a 403
  saying why. Roles (:class:`dispatcher.config.Role`): an *authority* publishes
  and reads its own alerts; a *manager* runs drills and cancels (for its
  authority, or for all when unbound) and reads everything; an *operator*
  reads the jobs and alerts of its own network and uploads its presence and
  cell inventory; an *admin* may do everything but publish (it is bound to no
  authority), and alone reads the audit log.
* Every call that changes state appends an audit entry whose actor is the
  token's name.

``/healthz`` (the process answers), ``/readyz`` (the database answers and its
migrations are current) and ``/metrics`` (Prometheus) need no token, nor do the
static files of the emergency managers' console at ``/console`` (the page's
own API calls carry the token typed into it).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import numpy as np
import shapely
from aiohttp import web
from shapely.geometry.base import BaseGeometry

from cap.errors import CapcastError
from cap.model import Area, Circle, Status, ValuePair
from cap.model import Polygon as CapPolygon
from dispatcher.config import OperatorSettings, Role, Secret, TokenSettings
from dispatcher.errors import (
    DatabaseUnavailable,
    NotFound,
    SchemaNotReady,
    StateConflict,
    StoreError,
)
from dispatcher.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from dispatcher.metrics import Metrics
from dispatcher.openapi import openapi_document
from dispatcher.service import SERVICE, Service
from dispatcher.store import (
    AlertState,
    InventoryVersion,
    Job,
    JobKind,
    JobState,
    StoredAlert,
    migration_status,
)
from geo.areas import GeocodeUse, area_geometry
from geo.errors import GeoError
from geo.inventory import parse_cell_id

if TYPE_CHECKING:
    from dispatcher.pipeline import IngestResult

__all__ = [
    "API",
    "CONSOLE_DIR",
    "DEFAULT_UPLOAD_MAX_BYTES",
    "METRICS",
    "ApiError",
    "create_api_app",
    "parse_presence",
]

logger = logging.getLogger(__name__)

#: The prefix of every API route.
API = "/api/v1"
#: The largest presence or cell inventory upload accepted by default (a national
#: inventory of a million cells is about 100 MB of CSV).
DEFAULT_UPLOAD_MAX_BYTES = 512 << 20

#: Where the application keeps its :class:`~dispatcher.metrics.Metrics`.
METRICS: web.AppKey[Metrics] = web.AppKey("capcast.metrics", Metrics)
_UPLOAD_MAX: web.AppKey[int] = web.AppKey("capcast.upload_max_bytes", int)
_OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("capcast.openapi", dict)

#: Page sizes of the listings.
_DEFAULT_LIMIT = 50
_MAX_LIMIT = 500
#: With an area filter, alerts are read this many at a time and at most this many in all
#: per request (the area is checked in Python): a sparse match answers with a cursor.
_AREA_PAGE = 200
_AREA_SCAN_MAX = 5000
#: Presence reports this far in the future are refused (clocks drift; a day ahead does not).
_PRESENCE_FUTURE_SLACK = timedelta(minutes=5)
#: How many bad presence rows an answer lists (the count is always given).
_PRESENCE_MAX_PROBLEMS = 1000
_READY_TIMEOUT = 5.0
_CAP_TYPES = frozenset({"", "application/cap+xml", "application/xml", "text/xml",
                        "application/octet-stream"})
_MSISDN = re.compile(r"\+?[0-9]{5,15}")
_BIGINT_MAX = (1 << 63) - 1

E = TypeVar("E", bound=Enum)


# -- errors ------------------------------------------------------------------------------


class ApiError(CapcastError):
    """An answer other than success, raised by a handler and rendered by the middleware.

    ``code`` is a stable machine-readable word (``bad-parameter``), ``message``
    a sentence for people; ``details`` become further members of the error
    object (``parameter``, ``problems``...).
    """

    def __init__(self, status: int, code: str, message: str, *,
                 headers: Mapping[str, str] | None = None, **details: Any) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details
        super().__init__(message)

    def response(self) -> web.Response:
        """The JSON error response."""
        return _error(self.status, self.code, self.message, headers=self.headers,
                      **self.details)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _json(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    return web.Response(text=_dumps(data), status=status, headers=headers,
                        content_type=content_type, charset="utf-8")


def _error(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
           **details: Any) -> web.Response:
    return _json({"error": {"code": code, "message": message, **details}}, status=status,
                 headers=headers)


def _bad_parameter(name: str, message: str) -> NoReturn:
    raise ApiError(400, "bad-parameter", f"parameter {name!r}: {message}", parameter=name)


def _http_exception(exc: web.HTTPException, request: web.Request) -> web.Response:
    """A JSON body for the HTTP errors aiohttp raises itself (no route, wrong method...)."""
    headers = {k: v for k, v in exc.headers.items()
               if k.lower() not in ("content-type", "content-length")}
    status = exc.status
    if status == 404:
        return _error(404, "not-found", f"no such resource: {request.method} {request.path}",
                      headers=headers)
    if status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        return _error(405, "method-not-allowed",
                      f"{request.path} does not allow {request.method}"
                      + (f" (allowed: {', '.join(allowed)})" if allowed else ""),
                      headers=headers, allowed=allowed)
    if status == 413:
        return _error(413, "body-too-large", exc.text or "the request body is too large",
                      headers=headers)
    code = re.sub(r"[^a-z0-9]+", "-", (exc.reason or "error").lower()).strip("-")
    return _error(status, code or "error", exc.text or exc.reason or "error", headers=headers)


# -- middleware --------------------------------------------------------------------------


@web.middleware
async def _errors_and_metrics(request: web.Request,
                              handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                              ) -> web.StreamResponse:
    """Turn every failure into a JSON error and count every answer."""
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_exception(exc, request)
    except NotFound as exc:
        response = _error(404, "not-found", f"no {exc.kind} {exc.key}", kind=exc.kind)
    except (DatabaseUnavailable, SchemaNotReady) as exc:
        logger.warning("database unavailable: %s", exc,
                       extra={"action": "http_error", "path": request.path})
        code = "schema-not-ready" if isinstance(exc, SchemaNotReady) else "database-unavailable"
        response = _error(503, code, str(exc), headers={"Retry-After": "5"})
    except StateConflict as exc:
        response = _error(409, "state-conflict", exc.message, state=exc.state)
    except StoreError as exc:
        logger.error("store error on %s %s: %s", request.method, request.path, exc,
                     extra={"action": "http_error", "path": request.path})
        response = _error(500, "store-error", exc.message)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("unexpected error on %s %s", request.method, request.path,
                         extra={"action": "http_error", "path": request.path})
        response = _error(500, "internal-error",
                          "an internal error occurred; it was logged with the request")
    route = request.match_info.route.resource
    pattern = route.canonical if route is not None else "unmatched"
    request.app[METRICS].observe_request(request.method, pattern, response.status)
    return response


# -- authentication and roles ------------------------------------------------------------


def _authenticate(request: web.Request) -> TokenSettings:
    """The token of the request; 401 without one or with one that is not configured."""
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError(401, "unauthenticated",
                       "this call needs a bearer token (Authorization: Bearer <token>)",
                       headers={"WWW-Authenticate": 'Bearer realm="capcast"'})
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise ApiError(401, "invalid-token",
                       "the Authorization header must be 'Bearer <token>'",
                       headers={"WWW-Authenticate":
                                'Bearer realm="capcast", error="invalid_request"'})
    token = request.app[SERVICE].settings.find_token(value)
    if token is None:
        raise ApiError(401, "invalid-token", "the bearer token is not known",
                       headers={"WWW-Authenticate":
                                'Bearer realm="capcast", error="invalid_token"'})
    return token


def _forbid(token: TokenSettings, reason: str) -> NoReturn:
    raise ApiError(403, "forbidden", reason, role=token.role.value, token=token.name)


def _require(token: TokenSettings, roles: Collection[Role], what: str) -> None:
    if token.role not in roles:
        allowed = ", ".join(r.value for r in Role if r in roles)
        _forbid(token, f"token {token.name!r} has the role {token.role.value}; {what} needs "
                       f"the role {allowed}")


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()


def _alert_readable(token: TokenSettings, alert: StoredAlert, has_jobs_of_operator: bool) -> None:
    """Raise 403 unless ``token`` may read ``alert``."""
    if token.role in (Role.ADMIN, Role.MANAGER):
        return
    if token.role is Role.AUTHORITY:
        if alert.sender == token.authority or alert.source == f"api:{token.name}":
            return
        _forbid(token, f"token {token.name!r} reads only the alerts of {token.authority}")
    if has_jobs_of_operator:
        return
    _forbid(token, f"token {token.name!r} reads only alerts with jobs for operator "
                   f"{token.operator}")


async def _readable_alert(request: web.Request, token: TokenSettings,
                          alert_id: int) -> StoredAlert:
    service = request.app[SERVICE]
    alert = await service.store.get_alert(alert_id)
    mine = False
    if token.role is Role.OPERATOR and token.operator is not None:
        mine = bool(await service.store.list_jobs(alert_id=alert_id, operator=token.operator,
                                                  limit=1))
    _alert_readable(token, alert, mine)
    return alert


def _operator_settings(request: web.Request) -> OperatorSettings:
    name = request.match_info["name"]
    settings = request.app[SERVICE].settings
    operator = settings.operator(name)
    if operator is None:
        known = ", ".join(o.name for o in settings.operators) or "none"
        raise ApiError(404, "not-found", f"no operator {name!r} (configured: {known})",
                       kind="operator")
    return operator


def _operator_access(token: TokenSettings, operator: OperatorSettings, *, write: bool) -> None:
    if token.role is Role.ADMIN:
        return
    if token.role is Role.OPERATOR:
        if _same(token.operator, operator.name):
            return
        _forbid(token, f"token {token.name!r} acts for operator {token.operator}, not "
                       f"{operator.name}")
    if token.role is Role.MANAGER and not write:
        return
    _forbid(token, f"token {token.name!r} has the role {token.role.value}; this needs the "
                   f"operator's own token or an admin")


# -- parameters and bodies ---------------------------------------------------------------


class _Query:
    """The query parameters of a request, checked against the ones a route knows."""

    def __init__(self, request: web.Request, allowed: Collection[str]) -> None:
        query = request.query
        for name in query:
            if name not in allowed:
                valid = ", ".join(sorted(allowed)) or "none"
                _bad_parameter(name, f"unknown query parameter (valid: {valid})")
            if len(query.getall(name)) > 1:
                _bad_parameter(name, "given more than once")
        self._query = query

    def text(self, name: str) -> str | None:
        value = self._query.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value:
            _bad_parameter(name, "is empty")
        return value

    def integer(self, name: str, *, lo: int, hi: int, default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            _bad_parameter(name, f"{value!r} is not a whole number")
        if not lo <= number <= hi:
            _bad_parameter(name, f"{number} is out of range {lo}..{hi}")
        return number

    def moment(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        return _parse_moment(value, lambda message: _bad_parameter(name, message))

    def choices(self, name: str, kind: type[E]) -> list[E] | None:
        value = self.text(name)
        if value is None:
            return None
        by_value = {m.value.casefold(): m for m in kind}
        out = []
        for part in value.split(","):
            member = by_value.get(part.strip().casefold())
            if member is None:
                _bad_parameter(name, f"{part.strip()!r} is not one of "
                                     f"{', '.join(m.value for m in kind)}")
            out.append(member)
        return out

    def choice(self, name: str, kind: type[E]) -> E | None:
        found = self.choices(name, kind)
        if found is None:
            return None
        if len(found) != 1:
            _bad_parameter(name, "takes one value")
        return found[0]

    def flag(self, name: str) -> bool:
        if name not in self._query:
            return False
        value = self._query[name].strip().lower()
        if value in ("", "1", "true", "yes", "on"):  # "?geojson" alone means yes
            return True
        if value in ("0", "false", "no", "off"):
            return False
        _bad_parameter(name, f"{value!r} is not a yes/no value (1, true, 0, false)")

    def bbox(self, name: str) -> tuple[float, float, float, float] | None:
        value = self.text(name)
        if value is None:
            return None
        parts = value.split(",")
        if len(parts) != 4:
            _bad_parameter(name, "must be minlon,minlat,maxlon,maxlat (four numbers)")
        try:
            x0, y0, x1, y1 = (float(p) for p in parts)
        except ValueError:
            _bad_parameter(name, f"{value!r} is not four numbers")
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            _bad_parameter(name, "the numbers must be finite")
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            _bad_parameter(name, "needs -180 <= minlon <= maxlon <= 180 and "
                                 "-90 <= minlat <= maxlat <= 90")
        return x0, y0, x1, y1


def _parse_moment(value: str, fail: Callable[[str], NoReturn]) -> datetime:
    """An aware datetime from ISO 8601 text.

    A '+' that a query string turned into a space is put back.
    """
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace(" ", "+"))
        except ValueError:
            fail(f"{value!r} is not an ISO 8601 date and time (e.g. 2024-05-01T12:00:00Z)")
    if moment.tzinfo is None or moment.utcoffset() is None:
        fail(f"{value!r} has no UTC offset (add Z or +hh:mm)")
    return moment


def _path_id(request: web.Request, name: str = "id") -> int:
    value = request.match_info[name]
    if not value.isdigit() or not 1 <= int(value) <= _BIGINT_MAX:
        _bad_parameter(name, f"{value!r} is not an id (a positive whole number)")
    return int(value)


def _too_large(size: int | None, limit: int) -> ApiError:
    told = f"of {size} bytes " if size is not None else ""
    return ApiError(413, "body-too-large",
                    f"the request body {told}is over the limit of {limit} bytes", limit=limit)


async def _body_chunks(request: web.Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, refused with 413 past ``limit`` bytes.

    A Content-Length over the limit is refused before anything is read; a body
    without one (chunked) is refused as soon as more than ``limit`` bytes arrive.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(length, limit)
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _too_large(None, limit)
        yield chunk


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused with 413 past ``limit`` (before reading, from Content-Length)."""
    parts = [chunk async for chunk in _body_chunks(request, limit)]
    return b"".join(parts)


async def _read_json(request: web.Request, limit: int, *, required: bool) -> Any:
    body = await _read_body(request, limit)
    if not body.strip():
        if required:
            raise ApiError(400, "bad-json", "this call needs a JSON body")
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad-json", f"the body is not JSON: {exc}") from None


def _media_type(request: web.Request) -> str:
    """The request's media type, lower case, without parameters ('' when absent)."""
    if "Content-Type" not in request.headers:
        return ""
    return request.content_type.lower()


# -- rendering ---------------------------------------------------------------------------


def _alert_link(alert_id: int) -> str:
    return f"{API}/alerts/{alert_id}"


def _absolute(request: web.Request, path: str) -> str:
    public = request.app[SERVICE].settings.http.public_url
    if public:
        return public.rstrip("/") + path
    return str(request.url.with_path(path).with_query(None))


def _alert_json(alert: StoredAlert, *, full: bool) -> dict[str, Any]:
    infos = (alert.parsed or {}).get("info") or [{}]
    first = infos[0] if isinstance(infos[0], Mapping) else {}
    out: dict[str, Any] = {
        "id": alert.id, "state": alert.state.value, "sender": alert.sender,
        "identifier": alert.identifier, "sent": alert.sent, "status": alert.status,
        "msg_type": alert.msg_type, "scope": alert.scope, "event": first.get("event"),
        "headline": first.get("headline"), "received_at": alert.received_at,
        "source": alert.source, "sha256": alert.sha256, "size": alert.size,
        "flags": list(alert.flags), "refusal": alert.refusal,
        "duplicate_of": alert.duplicate_of, "conflicts_with": alert.conflicts_with,
        "stopped_by": alert.stopped_by, "expires_at": alert.expires_at,
        "validated_at": alert.validated_at, "accepted_at": alert.accepted_at,
        "finished_at": alert.finished_at,
        "links": {"self": _alert_link(alert.id), "cap": f"{_alert_link(alert.id)}/cap"},
    }
    if full:
        out["parsed"] = alert.parsed
        out["findings"] = list(alert.findings)
        out["plan"] = alert.plan
    return out


def _job_json(job: Job, *, payload: bool) -> dict[str, Any]:
    data = job.payload
    out: dict[str, Any] = {
        "id": job.id, "alert_id": job.alert_id, "operator": job.operator,
        "gateway": job.gateway, "kind": job.kind.value, "state": job.state.value,
        "action": data.get("action"), "scope": data.get("scope"),
        "cells": len(data.get("cells") or ()),
        "message_identifiers": data.get("message_identifiers"),
        "priority": job.priority, "lock_key": job.lock_key, "expires_at": job.expires_at,
        "attempts": job.attempts, "max_attempts": job.max_attempts,
        "next_attempt_at": job.next_attempt_at, "lease_owner": job.lease_owner,
        "lease_expires_at": job.lease_expires_at, "heartbeat_at": job.heartbeat_at,
        "last_error": job.last_error, "result": job.result, "created_at": job.created_at,
        "started_at": job.started_at, "finished_at": job.finished_at,
        "links": {"self": f"{API}/jobs/{job.id}", "alert": _alert_link(job.alert_id)},
    }
    if payload:
        out["payload"] = data
    return out


def _record(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _version_json(version: InventoryVersion) -> dict[str, Any]:
    out = _record(version)
    out["path"] = Path(version.path).name  # where on the server is no business of clients
    return out


def _ingest_json(request: web.Request, result: IngestResult) -> tuple[dict[str, Any],
                                                                      dict[str, str]]:
    body: dict[str, Any] = {
        "id": result.alert_id, "stored_id": result.stored_id,
        "outcome": result.outcome.value, "jobs": result.jobs,
        "findings": [dict(f) for f in result.findings],
        "refusal": result.refusal, "flags": list(result.flags),
        "timings_ms": dict(result.timings_ms),
        "links": {"self": _alert_link(result.alert_id),
                  "stored": _alert_link(result.stored_id)},
    }
    headers: dict[str, str] = {}
    if result.http_status in (200, 201):
        headers["Location"] = _absolute(request, _alert_link(result.alert_id))
    if result.http_status >= 400:
        refusal = result.refusal
        body["error"] = {
            "code": refusal.code if refusal is not None else result.outcome.value,
            "message": refusal.reason if refusal is not None else result.outcome.value,
            "alert_id": result.stored_id, "findings": body["findings"]}
    if result.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="capcast"'
    return body, headers


def _targeting_summary(alert: StoredAlert, jobs: Sequence[Job]) -> dict[str, Any]:
    """Counts per operator from the plan (what was decided when the alert was accepted)."""
    plan = alert.plan or {}
    operators: dict[str, dict[str, Any]] = {}
    for entry in plan.get("targeting") or ():
        name = str(entry.get("operator"))
        operators[name] = {"cells": entry.get("cells"),
                           "network_cells": entry.get("network_cells"),
                           "whole_network": entry.get("whole_network"),
                           "min_overlap": entry.get("min_overlap"),
                           "overlap_mean": entry.get("overlap_mean"),
                           "mostly_inside": entry.get("mostly_inside"),
                           "jobs": 0, "gateways": []}
    for job in jobs:
        entry = operators.setdefault(job.operator, {"cells": None, "jobs": 0, "gateways": []})
        entry["jobs"] += 1
        if job.gateway not in entry["gateways"]:
            entry["gateways"].append(job.gateway)
    return {"area_km2": plan.get("area_km2"), "operators": operators,
            "geojson": f"{_alert_link(alert.id)}/targeting.geojson"}


def _points(text: str) -> tuple[tuple[float, float], ...] | None:
    try:
        return tuple((float(lat), float(lon)) for lat, lon in
                     (token.split(",") for token in text.split()))
    except ValueError:
        return None


def _stored_areas(parsed: Mapping[str, Any]) -> list[Area]:
    """The distinct ``<area>`` elements of a stored parsed form (cap.serialize's JSON).

    Read directly rather than with ``alert_from_json``: jsonb keeps no key order,
    and the alert was validated when it arrived. Malformed parts are left out.
    """
    areas: dict[Area, None] = {}
    for info in parsed.get("info") or ():
        if not isinstance(info, Mapping):
            continue
        for raw in info.get("area") or ():
            if not isinstance(raw, Mapping):
                continue
            polygons = []
            for text in raw.get("polygon") or ():
                points = _points(str(text))
                if points is not None and len(points) >= 4:
                    polygons.append(CapPolygon(points=points))
            circles = []
            for text in raw.get("circle") or ():
                centre, _, radius = str(text).strip().partition(" ")
                point = _points(centre)
                try:
                    radius_km = float(radius)
                except ValueError:
                    continue
                if point is not None and len(point) == 1:
                    circles.append(Circle(lat=point[0][0], lon=point[0][1],
                                          radius_km=radius_km))
            geocodes = tuple(ValuePair(value_name=str(g.get("valueName", "")),
                                       value=str(g.get("value", "")))
                             for g in raw.get("geocode") or () if isinstance(g, Mapping))
            areas[Area(area_desc=str(raw.get("areaDesc", "")), polygons=tuple(polygons),
                       circles=tuple(circles), geocodes=geocodes)] = None
    return list(areas)


def _alert_area(service: Service, alert: StoredAlert) -> BaseGeometry | None:
    """The alert's area in lon/lat from its parsed form, None when it has none."""
    if alert.parsed is None:
        return None
    use = GeocodeUse(service.settings.targeting.geocodes.value)
    parts = [area_geometry(area, registry=service.registry, geocodes=use).geometry
             for area in _stored_areas(alert.parsed)]
    parts = [p for p in parts if not p.is_empty]
    if not parts:
        return None
    return shapely.union_all(parts) if len(parts) > 1 else parts[0]


def _min_overlap(service: Service, operator: str) -> float:
    configured = service.settings.operator(operator)
    if configured is not None:
        return configured.targeting.min_overlap
    return service.settings.targeting.min_overlap


def _targeting_geojson(service: Service, alert: StoredAlert,
                       planned: Mapping[str, set[str]]) -> dict[str, Any]:
    """The area and, per operator, every cell it touches (geo.report), from the live indexes.

    Cells carry ``policies`` (which targeting policies pick them), ``targeted``
    (the operator's configured policy picks them) and ``planned`` (a job of
    this alert names them; the inventory may have changed since the plan).
    """
    from geo.report import targeting_report, to_geojson

    area = _alert_area(service, alert)
    if area is None:
        return {"type": "FeatureCollection", "features": [],
                "properties": {"alert_id": alert.id, "area_km2": 0.0, "operators": {},
                               "note": "the alert has no area that could be resolved"}}
    features: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    area_km2: float | None = None
    for operator in service.operators:
        min_overlap = _min_overlap(service, operator.name)
        names = [operator.index_operator] if operator.index_operator is not None else None
        result = operator.index.target(area, 0.0, operators=names)
        count = len(result)
        if count == 0:
            summary[operator.name] = {"cells": 0, "min_overlap": min_overlap}
            continue
        polygons = np.asarray(operator.index.coverage(result.indices), dtype=object)
        cell_ids = np.asarray(result.cell_ids)
        owners = np.full(count, operator.name, dtype=object)
        report = targeting_report(area, polygons=polygons, operators=owners,
                                  any_indices=np.arange(count, dtype=np.int64),
                                  overlap=np.asarray(result.overlap, dtype=np.float64),
                                  min_overlap=min_overlap)
        area_km2 = report.area_km2
        rendered = to_geojson(report, polygons=polygons, cell_ids=cell_ids, operators=owners)
        mine = planned.get(operator.name, set())
        for feature in rendered["features"][1:]:
            feature["properties"]["planned"] = feature["properties"]["cell_id"] in mine
            features.append(feature)
        summary[operator.name] = {**report.to_json()["operators"][operator.name],
                                  "min_overlap": min_overlap}
    if area_km2 is None:
        area_km2 = float((alert.plan or {}).get("area_km2") or 0.0)
    area_feature = {"type": "Feature", "geometry": shapely.geometry.mapping(area),
                    "properties": {"role": "alert-area", "alert_id": alert.id,
                                   "area_km2": round(area_km2, 3)}}
    return {"type": "FeatureCollection", "features": [area_feature, *features],
            "properties": {"alert_id": alert.id, "area_km2": round(area_km2, 3),
                           "operators": summary}}


def _planned_cells(jobs: Iterable[Job]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for job in jobs:
        out.setdefault(job.operator, set()).update(str(c) for c in
                                                   job.payload.get("cells") or ())
    return out


def _areas_match(service: Service, alerts: Sequence[StoredAlert],
                 box: BaseGeometry) -> list[bool]:
    """Whether each alert's area intersects ``box`` (runs in a worker thread)."""
    out = []
    for alert in alerts:
        area = _alert_area(service, alert)
        out.append(area is not None and bool(shapely.intersects(area, box)))
    return out


# -- handlers: ingest and alerts ---------------------------------------------------------


async def post_alert(request: web.Request) -> web.Response:
    """``POST /api/v1/alerts``: ingest one CAP document."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    if token.role is Role.OPERATOR:
        _forbid(token, f"token {token.name!r} is an operator token: operators cannot publish "
                       "alerts")
    if token.authority is None:
        _forbid(token, f"token {token.name!r} ({token.role.value}) is bound to no authority: "
                       "only a token of an authority (or a manager bound to one) publishes")
    media = _media_type(request)
    if media not in _CAP_TYPES:
        raise ApiError(415, "unsupported-media-type",
                       f"a CAP document is XML (application/cap+xml), not {media}")
    raw = await _read_body(request, service.settings.http.max_body_bytes)
    started = time.perf_counter()
    result = await service.ingest.submit(raw, source=f"api:{token.name}",
                                         token_authority=token.authority)
    request.app[METRICS].observe_ingest(result.outcome.value,
                                        time.perf_counter() - started, result.timings_ms)
    await service.store.audit(
        actor=token.name, action="alert.submit", subject=f"alert:{result.stored_id}",
        details={"outcome": result.outcome.value, "http_status": result.http_status,
                 "alert_id": result.alert_id, "jobs": result.jobs,
                 "refusal": result.refusal.code if result.refusal is not None else None})
    logger.info("alert submitted by %s: %s", token.name, result.outcome.value,
                extra={"action": "alert_submit", "alert_id": result.alert_id,
                       "stored_id": result.stored_id, "outcome": result.outcome.value})
    body, headers = _ingest_json(request, result)
    return _json(body, status=result.http_status, headers=headers)


async def list_alerts(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts``: alerts newest first, filtered, paged with a cursor."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    q = _Query(request, ("status", "sender", "state", "since", "until", "area", "limit",
                         "cursor"))
    status_choice = q.choice("status", Status)
    sender = q.text("sender")
    states = q.choices("state", AlertState)
    since, until = q.moment("since"), q.moment("until")
    bbox = q.bbox("area")
    limit = q.integer("limit", lo=1, hi=_MAX_LIMIT, default=_DEFAULT_LIMIT)
    assert limit is not None
    cursor = q.integer("cursor", lo=1, hi=_BIGINT_MAX)
    operator: str | None = None
    source: str | None = None
    if token.role is Role.AUTHORITY:
        if sender is not None and sender != token.authority:
            _forbid(token, f"token {token.name!r} lists only the alerts of {token.authority}")
        sender, source = token.authority, f"api:{token.name}"
    elif token.role is Role.OPERATOR:
        operator = token.operator

    box = shapely.box(*bbox) if bbox is not None else None
    page = limit if box is None else _AREA_PAGE
    found: list[StoredAlert] = []
    before = cursor
    more = False
    scanned = 0
    while True:
        rows = await service.store.search_alerts(
            status=status_choice.value if status_choice is not None else None, sender=sender,
            states=states, since=since, until=until, before_id=before, operator=operator,
            source=source, limit=page)
        scanned += len(rows)
        if box is not None:
            keep = await asyncio.to_thread(_areas_match, service, rows, box)
        else:
            keep = [True] * len(rows)
        for row, wanted in zip(rows, keep, strict=True):
            before = row.id
            if wanted:
                found.append(row)
                if len(found) == limit:
                    break
        if len(found) == limit:
            more = True
            break
        if len(rows) < page:
            break
        if scanned >= _AREA_SCAN_MAX:
            more = True  # answer what was found; the cursor continues the scan
            break
    next_cursor = before if more and before is not None else None
    return _page(request, "alerts", [_alert_json(a, full=False) for a in found], next_cursor)


def _page(request: web.Request, key: str, items: list[Any],
          next_cursor: int | None) -> web.Response:
    """One page of a listing, with ``next_cursor`` and the ``next`` link when there is more."""
    body: dict[str, Any] = {key: items, "next_cursor": next_cursor}
    if next_cursor is not None:
        query = dict(request.query)
        query["cursor"] = str(next_cursor)
        body["next"] = str(request.rel_url.with_query(query))
    return _json(body)


async def get_alert(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts/{id}``: one alert with everything recorded about it."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    alert_id = _path_id(request)
    q = _Query(request, ("geojson",))
    with_geojson = q.flag("geojson")
    detail = await service.store.get_alert_detail(alert_id)
    mine = token.role is Role.OPERATOR and any(_same(j.operator, token.operator)
                                               for j in detail.jobs)
    _alert_readable(token, detail.alert, mine)
    jobs = detail.jobs
    submissions = detail.submissions
    receipts = detail.receipts
    if token.role is Role.OPERATOR:
        # An operator sees its own network's work only.
        jobs = tuple(j for j in jobs if _same(j.operator, token.operator))
        ids = {j.id for j in jobs}
        submissions = tuple(s for s in submissions if s.job_id in ids)
        receipts = tuple(r for r in receipts if _same(r.operator, token.operator))
    body = _alert_json(detail.alert, full=True)
    body["references"] = [_record(r) for r in detail.references]
    body["jobs"] = [_job_json(j, payload=False) for j in jobs]
    body["submissions"] = [_record(s) for s in submissions]
    body["receipts"] = [_record(r) for r in receipts]
    body["targeting"] = _targeting_summary(detail.alert, jobs)
    if with_geojson:
        body["targeting"]["geojson"] = await asyncio.to_thread(
            _targeting_geojson, service, detail.alert, _planned_cells(jobs))
    return _json(body)


async def get_alert_cap(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts/{id}/cap``: the document exactly as it was received."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    alert_id = _path_id(request)
    _Query(request, ())
    await _readable_alert(request, token, alert_id)
    raw = await service.store.get_raw(alert_id)
    return web.Response(body=raw, content_type="application/cap+xml")


async def get_alert_geojson(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts/{id}/targeting.geojson``: the area and the cells it touches."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    alert_id = _path_id(request)
    _Query(request, ())
    detail = await service.store.get_alert_detail(alert_id)
    mine = token.role is Role.OPERATOR and any(_same(j.operator, token.operator)
                                               for j in detail.jobs)
    _alert_readable(token, detail.alert, mine)
    document = await asyncio.to_thread(_targeting_geojson, service, detail.alert,
                                       _planned_cells(detail.jobs))
    if token.role is Role.OPERATOR:
        document["features"] = [f for f in document["features"]
                                if f["properties"].get("role") != "cell"
                                or _same(f["properties"].get("operator"), token.operator)]
        document["properties"]["operators"] = {
            k: v for k, v in document["properties"]["operators"].items()
            if _same(k, token.operator)}
    return _json(document, content_type="application/geo+json")


async def cancel_alert(request: web.Request) -> web.Response:
    """``POST /api/v1/alerts/{id}/cancel``: issue a CAP Cancel for the alert."""
    from dispatcher import drills

    service = request.app[SERVICE]
    token = _authenticate(request)
    alert_id = _path_id(request)
    _Query(request, ())
    alert = await service.store.get_alert(alert_id)
    if token.role is Role.OPERATOR:
        _forbid(token, f"token {token.name!r} is an operator token: operators cannot cancel "
                       "alerts")
    if token.role is not Role.ADMIN and not (
            (token.role is Role.MANAGER and token.authority is None)
            or (alert.sender is not None and alert.sender == token.authority)):
        _forbid(token, f"token {token.name!r} cancels only alerts of {token.authority}, "
                       f"not of {alert.sender}")
    data = await _read_json(request, service.settings.http.max_body_bytes, required=False)
    note: str | None = None
    if data is not None:
        if not isinstance(data, dict):
            raise ApiError(400, "bad-json", "the body must be a JSON object")
        unknown = sorted(set(data) - {"note"})
        if unknown:
            raise ApiError(400, "bad-json", f"unknown member {unknown[0]!r} (valid: note)",
                           field=unknown[0])
        if data.get("note") is not None and not isinstance(data["note"], str):
            raise ApiError(400, "bad-json", "note must be a string", field="note")
        note = data.get("note")
    try:
        # drills.cancel_alert writes the audit entry (actor: this token's name).
        result = await drills.cancel_alert(service, alert_id, actor=token.name, note=note)
    except drills.CancelError as exc:
        raise ApiError(exc.http_status, exc.code, exc.message, alert_id=exc.alert_id) from None
    body, headers = _ingest_json(request, result)
    body["cancelled"] = alert_id
    return _json(body, status=result.http_status, headers=headers)


async def post_drill(request: web.Request) -> web.Response:
    """``POST /api/v1/drills``: run a drill (an Exercise alert) and report its timings."""
    from dispatcher import drills

    service = request.app[SERVICE]
    token = _authenticate(request)
    _Query(request, ())
    _require(token, (Role.MANAGER, Role.ADMIN), "running a drill")
    data = await _read_json(request, service.settings.http.max_body_bytes, required=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad-json", "the body must be a JSON object")
    try:
        drill = drills.DrillRequest.from_json(data)
        # run_drill writes the audit entry (actor: this token's name).
        result = await drills.run_drill(service, drill, actor=token.name,
                                        authority=token.authority)
    except drills.DrillRequestError as exc:
        code = "forbidden" if exc.http_status == 403 else "invalid-drill"
        raise ApiError(exc.http_status, code, f"{exc.field}: {exc.message}",
                       field=exc.field) from None
    return _json(result.to_json(), status=result.http_status)


# -- handlers: jobs ----------------------------------------------------------------------


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /api/v1/jobs``: jobs newest first (an operator sees its own)."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    q = _Query(request, ("alert", "operator", "state", "kind", "limit", "cursor"))
    alert_id = q.integer("alert", lo=1, hi=_BIGINT_MAX)
    operator = q.text("operator")
    states = q.choices("state", JobState)
    kind = q.choice("kind", JobKind)
    limit = q.integer("limit", lo=1, hi=_MAX_LIMIT, default=_DEFAULT_LIMIT)
    assert limit is not None
    cursor = q.integer("cursor", lo=1, hi=_BIGINT_MAX)
    sender: str | None = None
    if token.role is Role.OPERATOR:
        if operator is not None and not _same(operator, token.operator):
            _forbid(token, f"token {token.name!r} lists only the jobs of {token.operator}")
        operator = token.operator
    elif token.role is Role.AUTHORITY:
        sender = token.authority
    jobs = await service.store.list_jobs(alert_id=alert_id, operator=operator, states=states,
                                         sender=sender, kind=kind, before_id=cursor,
                                         limit=limit)
    next_cursor = jobs[-1].id if len(jobs) == limit else None
    return _page(request, "jobs", [_job_json(j, payload=False) for j in jobs], next_cursor)


async def get_job(request: web.Request) -> web.Response:
    """``GET /api/v1/jobs/{id}``: one job with its payload, submissions and receipts."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    job_id = _path_id(request)
    _Query(request, ())
    job = await service.queue.get_job(job_id)
    if token.role is Role.OPERATOR and not _same(job.operator, token.operator):
        _forbid(token, f"token {token.name!r} reads only the jobs of {token.operator}")
    if token.role is Role.AUTHORITY:
        alert = await service.store.get_alert(job.alert_id)
        if alert.sender != token.authority:
            _forbid(token, f"token {token.name!r} reads only the jobs of {token.authority}'s "
                           "alerts")
    submissions = await service.queue.submissions(job_id)
    receipts = await service.store.receipts_of_job(job_id)
    body = _job_json(job, payload=True)
    body["submissions"] = [_record(s) for s in submissions]
    body["receipts"] = [_record(r) for r in receipts]
    return _json(body)


# -- handlers: operators, presence, inventory --------------------------------------------


def _gateway_json(gateway: Any) -> dict[str, Any]:
    """A gateway's settings without its secrets (not even whether one is set)."""
    out: dict[str, Any] = {"name": gateway.name, "kind": gateway.kind.value}
    for f in dataclasses.fields(gateway):
        value = getattr(gateway, f.name)
        if f.name in ("name", "password", "authorization") or isinstance(value, Secret):
            continue
        out[f.name] = value
    return out


async def list_operators(request: web.Request) -> web.Response:
    """``GET /api/v1/operators``: the configured operators and what is loaded for them."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    _Query(request, ())
    loaded = {o.name.casefold(): o for o in service.operators}
    out = []
    for operator in service.settings.operators:
        if token.role is Role.OPERATOR and not _same(operator.name, token.operator):
            continue
        active = await service.store.active_inventory(operator.name)
        plan_input = loaded.get(operator.name.casefold())
        index_cells: int | None = None
        if plan_input is not None:
            index_cells = (len(plan_input.index) if plan_input.index_operator is None
                           else plan_input.network_cells)
        out.append({
            "name": operator.name, "display_name": operator.display_name,
            "plmn": operator.plmn, "languages": list(operator.languages),
            "targeting": operator.targeting,
            "gateways": [_gateway_json(g) for g in operator.gateways],
            "exercise": {"gateways": list(operator.exercise.gateways)},
            "test": {"gateways": list(operator.test.gateways)},
            "inventory": _version_json(active) if active is not None else None,
            "index": {"loaded": plan_input is not None, "cells": index_cells},
            "presence": {"subscribers": await service.store.count_presence(operator.name)},
            "links": {"presence": f"{API}/operators/{operator.name}/presence",
                      "inventory": f"{API}/operators/{operator.name}/inventory"},
        })
    return _json({"operators": out})


def parse_presence(body: bytes, *, fmt: str, now: datetime
                   ) -> tuple[list[tuple[str, str, datetime]], list[dict[str, Any]], int]:
    """Read a presence upload: (rows, problems, count of bad rows).

    ``fmt`` is ``csv`` (``msisdn,cell_id[,reported_at]``, an optional header
    line naming those columns) or ``jsonl`` (one object per line with those
    members). MSISDNs are 5 to 15 digits with an optional ``+``; cell ids are
    normalized to their standard form; ``reported_at`` is ISO 8601 with an
    offset (default ``now``) and not in the future. Problems name the line
    (1-based) and what is wrong; blank lines are skipped.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [{"line": body.count(b"\n", 0, exc.start) + 1,
                     "message": f"not UTF-8 text: {exc.reason}"}], 1
    rows: list[tuple[str, str, datetime]] = []
    problems: list[dict[str, Any]] = []
    bad = 0
    latest = now + _PRESENCE_FUTURE_SLACK

    def fail(line: int, message: str) -> None:
        nonlocal bad
        bad += 1
        if len(problems) < _PRESENCE_MAX_PROBLEMS:
            problems.append({"line": line, "message": message})

    def check(line: int, msisdn: Any, cell: Any, reported: Any) -> None:
        reasons = []
        if not isinstance(msisdn, str) or not _MSISDN.fullmatch(msisdn.strip()):
            reasons.append(f"msisdn {msisdn!r} is not 5 to 15 digits (with an optional +)")
        cell_id = ""
        if not isinstance(cell, str):
            reasons.append(f"cell_id {cell!r} is not a string")
        else:
            try:
                cell_id = parse_cell_id(cell.strip()).text
            except GeoError as exc:
                reasons.append(f"cell_id {cell.strip()!r}: "
                               f"{getattr(exc, 'detail', None) or exc}")
        at = now
        if reported not in (None, ""):
            if not isinstance(reported, str):
                reasons.append(f"reported_at {reported!r} is not a string")
            else:
                try:
                    at = _parse_moment(reported, _raise_value_error)
                except ValueError as exc:
                    reasons.append(f"reported_at: {exc}")
                else:
                    if at > latest:
                        reasons.append(f"reported_at {reported.strip()} is in the future")
        if reasons:
            fail(line, "; ".join(reasons))
        else:
            assert isinstance(msisdn, str)
            rows.append((msisdn.strip(), cell_id, at))

    if fmt == "csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        first = True
        for record in reader:
            line = reader.line_num
            if not record or all(not field.strip() for field in record):
                continue
            if first:
                first = False
                if record[0].strip().casefold() == "msisdn":
                    names = [f.strip().casefold() for f in record]
                    if names not in (["msisdn", "cell_id"],
                                     ["msisdn", "cell_id", "reported_at"]):
                        fail(line, "the header must be msisdn,cell_id[,reported_at]")
                    continue
            if len(record) not in (2, 3):
                fail(line, f"{len(record)} fields; expected msisdn,cell_id[,reported_at]")
                continue
            check(line, record[0], record[1], record[2] if len(record) == 3 else None)
    else:
        for number, raw_line in enumerate(text.splitlines(), start=1):
            if not raw_line.strip():
                continue
            try:
                item = json.loads(raw_line)
            except ValueError as exc:
                fail(number, f"not JSON: {exc}")
                continue
            if not isinstance(item, dict):
                fail(number, "not a JSON object")
                continue
            unknown = sorted(set(item) - {"msisdn", "cell_id", "reported_at"})
            if unknown:
                fail(number, f"unknown member {unknown[0]!r} (valid: msisdn, cell_id, "
                             "reported_at)")
                continue
            check(number, item.get("msisdn"), item.get("cell_id"), item.get("reported_at"))
    return rows, problems, bad


def _raise_value_error(message: str) -> NoReturn:
    raise ValueError(message)


_JSONL_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines", "application/json-lines",
                          "application/jsonlines", "application/json"})
_CSV_TYPES = frozenset({"text/csv", "application/csv"})


async def put_presence(request: web.Request) -> web.Response:
    """``PUT /api/v1/operators/{name}/presence``: subscribers per cell (CSV or JSON lines)."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    operator = _operator_settings(request)
    _operator_access(token, operator, write=True)
    q = _Query(request, ("mode",))
    mode = q.text("mode") or "replace"
    if mode not in ("replace", "merge"):
        _bad_parameter("mode", f"{mode!r} is not replace or merge")
    media = _media_type(request)
    body = await _read_body(request, request.app[_UPLOAD_MAX])
    if media in _CSV_TYPES:
        fmt = "csv"
    elif media in _JSONL_TYPES:
        fmt = "jsonl"
    elif media in ("", "text/plain", "application/octet-stream"):
        fmt = "jsonl" if body.lstrip().startswith(b"{") else "csv"
    else:
        raise ApiError(415, "unsupported-media-type",
                       f"presence is CSV (text/csv) or JSON lines (application/x-ndjson), "
                       f"not {media}")
    rows, problems, bad = await asyncio.to_thread(parse_presence, body, fmt=fmt,
                                                  now=service.clock())
    if bad:
        raise ApiError(422, "invalid-presence",
                       f"{bad} bad row{'s' if bad != 1 else ''}; nothing was stored",
                       count=bad, problems=problems)
    if not rows:
        raise ApiError(422, "invalid-presence", "the body holds no rows; nothing was stored",
                       count=0, problems=[])
    loaded = await service.store.load_presence(operator.name, rows, replace=mode == "replace")
    subscribers = await service.store.count_presence(operator.name)
    await service.store.audit(actor=token.name, action="presence.upload",
                              subject=f"operator:{operator.name}",
                              details={"rows": loaded, "mode": mode, "format": fmt,
                                       "subscribers": subscribers})
    return _json({"operator": operator.name, "rows": loaded, "mode": mode, "format": fmt,
                  "subscribers": subscribers})


def _sniff_inventory_format(path: Path) -> str | None:
    with path.open("rb") as stream:
        head = stream.read(4096)
    if head[:2] == b"\x1f\x8b":
        return "opencellid"  # gzip: only the OpenCelliD reader takes it
    text = head.decode("utf-8", "replace").lstrip("\ufeff").lstrip()
    if text.startswith("{"):
        return "geojson"
    first = text.split("\n", 1)[0].split(",", 1)[0].strip().strip('"').casefold()
    if first == "cell_id":
        return "sectors"
    if first in ("radio", "gsm", "umts", "lte", "nr", "cdma"):
        return "opencellid"
    return None


def _plmn_key(text: str) -> tuple[int, int] | None:
    parts = text.split("-")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def _import_inventory(upload: Path, fmt: str, operator: OperatorSettings, on_error: str,
                      folder: Path) -> dict[str, Any]:
    """Import, check and save an upload as GeoParquet (runs in a worker thread)."""
    from geo.cells import import_cells

    result = import_cells(upload, fmt, operator=operator.name,
                          on_error="skip" if on_error == "skip" else "refuse", progress=False)
    inventory = result.inventory
    others = sorted(set(inventory.operator_names()) - {operator.name})
    if others:
        raise ApiError(422, "inventory-other-operator",
                       f"the file holds cells of other operators ({', '.join(others[:5])}); "
                       f"upload only the cells of {operator.name}")
    wanted = _plmn_key(operator.plmn)
    heads: dict[str, int] = {}
    for cell_id in inventory.cell_ids.tolist():
        head = cell_id.rsplit("-", 2)[0] if cell_id.count("-") == 3 else \
            cell_id.rsplit("-", 1)[0]
        heads[head] = heads.get(head, 0) + 1
    foreign = {h: n for h, n in heads.items() if _plmn_key(h) != wanted}
    if foreign:
        listed = ", ".join(f"{h}: {n} cells" for h, n in sorted(foreign.items())[:5])
        raise ApiError(422, "inventory-other-network",
                       f"the file holds cells of other networks ({listed}); "
                       f"{operator.name}'s PLMN is {operator.plmn}")
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".saving-{os.getpid()}-{time.monotonic_ns()}.parquet"
    try:
        inventory.save(staging, progress=False)
        digest = hashlib.sha256()
        with staging.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        sha256 = digest.hexdigest()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        final = folder / f"{stamp}-{sha256[:12]}.parquet"
        os.replace(staging, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
    return {"path": final, "sha256": sha256, "cells": len(inventory), "format": result.format,
            "rows": result.rows, "skipped": result.skipped,
            "problems": [_record(p) for p in result.problems], "notes": list(result.notes),
            "summary": inventory.summary().to_json()}


async def post_inventory(request: web.Request) -> web.Response:
    """``POST /api/v1/operators/{name}/inventory``: upload a cell inventory (a new version)."""
    from geo.cells import FORMATS, ImportRefused

    service = request.app[SERVICE]
    token = _authenticate(request)
    operator = _operator_settings(request)
    _operator_access(token, operator, write=True)
    q = _Query(request, ("format", "on_error"))
    fmt = q.text("format")
    if fmt is not None and fmt not in FORMATS:
        _bad_parameter("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    on_error = q.text("on_error") or "refuse"
    if on_error not in ("refuse", "skip"):
        _bad_parameter("on_error", f"{on_error!r} is not refuse or skip")
    media = _media_type(request)
    if fmt is None and media in ("application/geo+json", "application/json"):
        fmt = "geojson"
    folder = service.settings.data_dir / "inventories" / operator.name
    uploads = service.settings.data_dir / "inventories" / ".uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=uploads, prefix=f"{operator.name}-", suffix=".upload")
    upload = Path(name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as stream:
            async for chunk in _body_chunks(request, request.app[_UPLOAD_MAX]):
                stream.write(chunk)
                size += len(chunk)
        if size == 0:
            raise ApiError(400, "empty-body", "the body holds no cell inventory")
        if fmt is None:
            fmt = _sniff_inventory_format(upload)
            if fmt is None:
                _bad_parameter("format", "the format could not be told from the file; give "
                                         f"?format= one of {', '.join(FORMATS)}")
        try:
            imported = await asyncio.to_thread(_import_inventory, upload, fmt, operator,
                                               on_error, folder)
        except ImportRefused as exc:
            raise ApiError(422, "inventory-refused",
                           f"{exc.count} bad row{'s' if exc.count != 1 else ''}; nothing was "
                           "imported (?on_error=skip leaves them out)", count=exc.count,
                           problems=[_record(p) for p in exc.problems]) from None
        except GeoError as exc:
            raise ApiError(422, "inventory-invalid",
                           str(getattr(exc, "detail", None) or exc)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            upload.unlink()
    path: Path = imported["path"]
    version = await service.store.add_inventory_version(
        operator=operator.name, path=str(path), sha256=imported["sha256"],
        cell_count=imported["cells"], activate=True)
    reload: dict[str, Any] = {"called": False, "error": None}
    if callable(service.on_inventory):
        reload["called"] = True
        try:
            await service.on_inventory(operator.name, path)
        except Exception as exc:
            # The version is recorded and active; the running index could not follow.
            logger.exception("reloading the index of %s failed", operator.name,
                             extra={"action": "inventory_reload", "operator": operator.name,
                                    "version": version.version})
            reload["error"] = str(exc) or type(exc).__name__
    await service.store.audit(
        actor=token.name, action="inventory.upload", subject=f"operator:{operator.name}",
        details={"version": version.version, "cells": version.cell_count,
                 "sha256": version.sha256, "format": imported["format"],
                 "rows": imported["rows"], "skipped": imported["skipped"],
                 "reload_error": reload["error"]})
    body = {"operator": operator.name, "version": _version_json(version),
            "format": imported["format"], "rows": imported["rows"],
            "skipped": imported["skipped"], "problems": imported["problems"],
            "notes": imported["notes"], "summary": imported["summary"], "reload": reload}
    location = _absolute(request, f"{API}/operators/{operator.name}/inventory")
    return _json(body, status=201, headers={"Location": location})


async def list_inventory(request: web.Request) -> web.Response:
    """``GET /api/v1/operators/{name}/inventory``: every inventory version of the operator."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    operator = _operator_settings(request)
    _operator_access(token, operator, write=False)
    _Query(request, ())
    versions = await service.store.list_inventory_versions(operator.name)
    active = next((v.version for v in versions if v.active), None)
    return _json({"operator": operator.name, "active": active,
                  "versions": [_version_json(v) for v in versions]})


# -- handlers: authorities, audit --------------------------------------------------------


async def who_am_i(request: web.Request) -> web.Response:
    """``GET /api/v1/me``: the token's name, role, binding and what it may do.

    The console uses it to offer only the actions the token can take; the API
    still checks each call.
    """
    token = _authenticate(request)
    _Query(request, ())
    role = token.role
    return _json({
        "name": token.name, "role": role.value, "authority": token.authority,
        "operator": token.operator,
        # As the handlers decide: publishing needs a token bound to an authority.
        "may": {"publish": role is not Role.OPERATOR and token.authority is not None,
                "cancel": role in (Role.AUTHORITY, Role.MANAGER, Role.ADMIN),
                "drill": role in (Role.MANAGER, Role.ADMIN),
                "audit": role is Role.ADMIN}})


async def list_authorities(request: web.Request) -> web.Response:
    """``GET /api/v1/authorities``: the configured authorities and their stored records."""
    service = request.app[SERVICE]
    _authenticate(request)
    _Query(request, ())
    stored = {a.sender: a for a in await service.store.list_authorities()}
    out = []
    for authority in service.settings.authorities:
        record = stored.get(authority.sender)
        out.append({
            "sender": authority.sender, "name": authority.name, "profile": authority.profile,
            "statuses": [s.value for s in authority.statuses],
            "jurisdiction": ({"file": authority.jurisdiction.file.name
                              if authority.jurisdiction.file is not None else None,
                              "geocodes": [str(g) for g in authority.jurisdiction.geocodes]}
                             if authority.jurisdiction is not None else None),
            "jurisdiction_policy": authority.jurisdiction_policy.value,
            "signature_required": authority.signature_required,
            "id": record.id if record is not None else None,
            "updated_at": record.updated_at if record is not None else None,
        })
    return _json({"authorities": out})


async def list_audit(request: web.Request) -> web.Response:
    """``GET /api/v1/audit``: the audit log newest first (admin)."""
    service = request.app[SERVICE]
    token = _authenticate(request)
    _require(token, (Role.ADMIN,), "reading the audit log")
    q = _Query(request, ("subject", "action", "limit", "cursor"))
    limit = q.integer("limit", lo=1, hi=_MAX_LIMIT, default=100)
    assert limit is not None
    entries = await service.store.audit_entries(
        subject=q.text("subject"), action=q.text("action"),
        before_id=q.integer("cursor", lo=1, hi=_BIGINT_MAX), limit=limit)
    next_cursor = entries[-1].id if len(entries) == limit else None
    return _json({"entries": [_record(e) for e in entries], "next_cursor": next_cursor})


# -- handlers: health, metrics, OpenAPI --------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process answers (the database is not consulted)."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: the database answers and its migrations are up to date."""
    service = request.app[SERVICE]
    try:
        status = await asyncio.wait_for(migration_status(service.store.pool),
                                        _READY_TIMEOUT)
    except TimeoutError:
        return _error(503, "database-unavailable",
                      f"the database did not answer within {_READY_TIMEOUT:g} s",
                      database=service.database_display)
    except StoreError as exc:
        return _error(503, "database-unavailable", str(exc),
                      database=service.database_display)
    if not status.up_to_date:
        reasons = []
        if status.pending:
            reasons.append("pending migrations: " + ", ".join(m.label for m in status.pending))
        if status.unknown:
            reasons.append("migrations this capcast does not know: "
                           + ", ".join(m.label for m in status.unknown))
        if status.changed:
            reasons.append("changed migrations: " + ", ".join(c[0] for c in status.changed))
        return _error(503, "schema-not-ready", "; ".join(reasons) + " (run capcast db migrate)",
                      database=service.database_display,
                      pending=[m.label for m in status.pending])
    return _json({"status": "ready", "database": service.database_display,
                  "schema_version": status.version})


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text (job counts are read from the queue now)."""
    service = request.app[SERVICE]
    counts = None
    try:
        counts = await service.queue.counts()
    except StoreError as exc:
        logger.warning("metrics: the job counts could not be read: %s", exc,
                       extra={"action": "metrics"})
    registry = request.app[METRICS]
    registry.set_job_counts(counts)
    # Rendered on the loop's thread: the SMPP collector reads the clients' live counters.
    response = web.Response(body=registry.render())
    response.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return response


async def openapi(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of this API."""
    return _json(request.app[_OPENAPI])


# -- handlers: the console (static files) ------------------------------------------------

#: The emergency managers' console: static files shipped in the package (package data).
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
#: The files the console may serve and their media types; a name is one plain word and
#: one of these extensions, so no path can leave the folder.
_CONSOLE_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css",
                  "svg": "image/svg+xml"}
_CONSOLE_NAME = re.compile(r"[A-Za-z0-9_-]+\.(html|js|css|svg)")
#: Everything the page needs comes from this server; no inline script or style, no
#: framing (a token is typed into it), no referrer leaking the URL.
_CONSOLE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load (ETag): an upgraded capcast serves its new console at once.
    "Cache-Control": "no-cache",
}


def _console_file(name: str) -> tuple[bytes, str]:
    """The bytes and media type of a console file; 404 for any other name."""
    match = _CONSOLE_NAME.fullmatch(name)
    path = CONSOLE_DIR / name
    if match is None or not path.is_file():
        raise ApiError(404, "not-found", f"the console has no file {name!r}", kind="file")
    return path.read_bytes(), _CONSOLE_TYPES[match[1]]


async def console(request: web.Request) -> web.StreamResponse:
    """``GET /console``, ``GET /console/{file}``: the emergency managers' console page.

    Static files from ``dispatcher/console``; the page itself calls the API
    with the bearer token the user types in (kept in the tab's sessionStorage).
    """
    name = request.match_info.get("file", "")
    if name == "":
        if request.path.endswith("/"):
            # The page's links are relative to /console: /console/ would break them.
            raise web.HTTPPermanentRedirect(location=request.path.rstrip("/"))
        name = "index.html"
        if not (CONSOLE_DIR / name).is_file():
            logger.error("the console's files are missing in %s", CONSOLE_DIR,
                         extra={"action": "console"})
            raise ApiError(500, "console-missing",
                           f"the console's files are not installed ({CONSOLE_DIR}); "
                           "reinstall capcast with its package data")
    body, media = await asyncio.to_thread(_console_file, name)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**_CONSOLE_HEADERS, "ETag": etag}
    if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers, content_type=media, charset="utf-8")


# -- the application ---------------------------------------------------------------------


def create_api_app(service: Service, *, metrics_registry: Metrics | None = None,
                   upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES) -> web.Application:
    """The API as an aiohttp application over ``service`` (routes, middleware, metrics).

    ``metrics_registry``: the metrics to update (a new :class:`Metrics`
    reading ``service.smpp_clients`` when None). ``upload_max_bytes`` caps
    presence and cell inventory uploads; CAP documents and other bodies are
    capped by ``settings.http.max_body_bytes``.
    """
    max_body = service.settings.http.max_body_bytes
    # client_max_size guards any full read of a body; the handlers stream with their own
    # limits (and check Content-Length first), so uploads may exceed it.
    app = web.Application(client_max_size=max_body, middlewares=[_errors_and_metrics])
    app[SERVICE] = service
    app[METRICS] = metrics_registry or Metrics(smpp_clients=lambda: service.smpp_clients)
    app[_UPLOAD_MAX] = upload_max_bytes
    app[_OPENAPI] = openapi_document(server_url=service.settings.http.public_url,
                                     max_body_bytes=max_body,
                                     upload_max_bytes=upload_max_bytes)
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")
    app.router.add_get(f"{API}/openapi.json", openapi, name="openapi")
    app.router.add_post(f"{API}/alerts", post_alert, name="post_alert")
    app.router.add_get(f"{API}/alerts", list_alerts, name="list_alerts")
    app.router.add_get(f"{API}/alerts/{{id}}", get_alert, name="get_alert")
    app.router.add_get(f"{API}/alerts/{{id}}/cap", get_alert_cap, name="get_alert_cap")
    app.router.add_get(f"{API}/alerts/{{id}}/targeting.geojson", get_alert_geojson,
                       name="get_alert_geojson")
    app.router.add_post(f"{API}/alerts/{{id}}/cancel", cancel_alert, name="cancel_alert")
    app.router.add_post(f"{API}/drills", post_drill, name="post_drill")
    app.router.add_get(f"{API}/jobs", list_jobs, name="list_jobs")
    app.router.add_get(f"{API}/jobs/{{id}}", get_job, name="get_job")
    app.router.add_get(f"{API}/operators", list_operators, name="list_operators")
    app.router.add_put(f"{API}/operators/{{name}}/presence", put_presence, name="put_presence")
    app.router.add_post(f"{API}/operators/{{name}}/inventory", post_inventory,
                        name="post_inventory")
    app.router.add_get(f"{API}/operators/{{name}}/inventory", list_inventory,
                       name="list_inventory")
    app.router.add_get(f"{API}/me", who_am_i, name="who_am_i")
    app.router.add_get(f"{API}/authorities", list_authorities, name="list_authorities")
    app.router.add_get(f"{API}/audit", list_audit, name="list_audit")
    # The console: static files, no token needed to load them (the API calls need one).
    app.router.add_get("/console", console, name="console")
    app.router.add_get("/console/{file:[^/]*}", console, name="console_file")
    return app
