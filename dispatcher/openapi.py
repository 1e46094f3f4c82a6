"""The OpenAPI 3.1 description of the HTTP API (:mod:`dispatcher.api`).

Served at ``/api/v1/openapi.json``.

Written by hand next to the handlers, as data: every route, its parameters,
bodies, answers and the shared error shape. A test checks that each route the
application registers is described here (and nothing else) and that the
document validates against the OpenAPI 3.1 schema.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_JSON = "application/json"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Schema], required: tuple[str, ...] = (), *,
         description: str | None = None, extra: bool = True) -> Schema:
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if not extra:
        out["additionalProperties"] = False
    if description:
        out["description"] = description
    return out


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_NUM: Schema = {"type": "number"}
_BOOL: Schema = {"type": "boolean"}
_TIME: Schema = {"type": "string", "format": "date-time"}
_ANY_OBJ: Schema = {"type": "object", "additionalProperties": True}
_ID: Schema = {"type": "integer", "minimum": 1, "maximum": (1 << 63) - 1}

_ALERT_STATES = ["received", "validated", "refused", "duplicate", "accepted", "planned",
                 "dispatching", "done", "cancelled", "expired"]
_JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled", "expired"]
_JOB_KINDS = ["cbc-rest", "smpp-broadcast", "smpp-sms"]
_STATUSES = ["Actual", "Exercise", "System", "Test", "Draft"]


def _schemas() -> dict[str, Schema]:
    finding = _obj({"code": _STR, "path": {"type": "string",
                                           "description": "CAP element path, e.g. "
                                                          "alert/info[0]/urgency"},
                    "message": _STR, "severity": {"enum": ["error", "warning"]}},
                   ("code", "path", "message", "severity"))
    refusal = _obj({"code": _STR, "reason": _STR}, ("code", "reason"))
    links = {"type": "object", "additionalProperties": {"type": "string"}}
    alert_summary = _obj({
        "id": _INT, "state": {"enum": _ALERT_STATES}, "sender": _nullable(_STR),
        "identifier": _nullable(_STR), "sent": _nullable(_TIME), "status": _nullable(_STR),
        "msg_type": _nullable(_STR), "scope": _nullable(_STR), "event": _nullable(_STR),
        "headline": _nullable(_STR), "received_at": _TIME, "source": _STR, "sha256": _STR,
        "size": _INT, "flags": {"type": "array", "items": _STR},
        "refusal": _nullable(_ref("Refusal")), "duplicate_of": _nullable(_INT),
        "conflicts_with": _nullable(_INT), "stopped_by": _nullable(_INT),
        "expires_at": _nullable(_TIME), "validated_at": _nullable(_TIME),
        "accepted_at": _nullable(_TIME), "finished_at": _nullable(_TIME), "links": links,
    }, ("id", "state", "received_at", "source", "sha256"))
    job = _obj({
        "id": _INT, "alert_id": _INT, "operator": _STR, "gateway": _STR,
        "kind": {"enum": _JOB_KINDS}, "state": {"enum": _JOB_STATES},
        "action": _nullable(_STR), "scope": _nullable(_STR),
        "cells": {"type": "integer", "description": "how many cells the job names"},
        "message_identifiers": _nullable({"type": "array", "items": _INT}),
        "priority": _INT, "lock_key": _nullable(_STR), "expires_at": _nullable(_TIME),
        "attempts": _INT, "max_attempts": _INT, "next_attempt_at": _TIME,
        "lease_owner": _nullable(_STR), "lease_expires_at": _nullable(_TIME),
        "heartbeat_at": _nullable(_TIME), "last_error": _nullable(_STR),
        "result": _nullable(_ANY_OBJ), "created_at": _TIME, "started_at": _nullable(_TIME),
        "finished_at": _nullable(_TIME), "links": links,
    }, ("id", "alert_id", "operator", "gateway", "kind", "state"))
    submission = _obj({
        "id": _INT, "job_id": _INT, "attempt": _INT, "item": _STR,
        "sequence_number": _nullable(_INT), "message_id": _nullable(_STR),
        "status": {"enum": ["pending", "acknowledged", "rejected", "failed", "in_doubt"]},
        "sent_at": _TIME, "acked_at": _nullable(_TIME), "error": _nullable(_STR),
        "details": _nullable(_ANY_OBJ)}, ("id", "job_id", "item", "status", "sent_at"))
    receipt = _obj({
        "id": _INT, "operator": _STR, "gateway": _STR, "message_id": _STR,
        "submission_id": _nullable(_INT), "state": _STR, "received_at": _TIME, "raw": {}},
        ("id", "operator", "gateway", "message_id", "state"))
    feature_collection = _obj({
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": _obj({
            "type": {"const": "Feature"}, "geometry": _nullable(_ANY_OBJ),
            "properties": _obj({
                "role": {"enum": ["alert-area", "cell"]}, "cell_id": _STR, "operator": _STR,
                "policies": {"type": "array", "items": _STR}, "targeted": _BOOL,
                "planned": _BOOL})})},
        "properties": _ANY_OBJ}, ("type", "features"),
        description="GeoJSON (RFC 7946): the alert area first, then every cell it touches "
                    "per operator, with the policies that pick it (geo.report)")
    inventory_version = _obj({
        "id": _INT, "operator": _STR, "version": _INT, "path": {
            "type": "string", "description": "the GeoParquet file's name"},
        "sha256": _STR, "cell_count": _INT, "created_at": _TIME, "active": _BOOL},
        ("operator", "version", "sha256", "cell_count", "active"))
    row_problem = _obj({"line": _INT, "message": _STR, "reason": _STR,
                        "feature": _nullable(_INT)}, ("line",))
    return {
        "Error": _obj({"error": _obj({
            "code": {"type": "string", "description": "stable machine-readable word"},
            "message": {"type": "string", "description": "what went wrong, for people"},
            "parameter": {"type": "string", "description": "the bad parameter (400)"},
            "problems": {"type": "array", "items": _ref("RowProblem")},
        }, ("code", "message"))}, ("error",),
            description="Every error: a code, a message and details as further members"),
        "Finding": finding,
        "Refusal": refusal,
        "RowProblem": row_problem,
        "IngestResult": _obj({
            "id": {"type": "integer", "description": "the alert (the first one for a repeat)"},
            "stored_id": {"type": "integer", "description": "this submission's stored row"},
            "outcome": {"enum": ["accepted", "repeat", "conflict", "refused"]},
            "jobs": _INT, "findings": {"type": "array", "items": _ref("Finding")},
            "refusal": _nullable(_ref("Refusal")), "flags": {"type": "array", "items": _STR},
            "timings_ms": {"type": "object", "additionalProperties": _NUM},
            "links": links,
            "error": {"type": "object", "description": "present when refused (4xx, 5xx)"},
            "cancelled": {"type": "integer", "description": "cancel: the alert cancelled"},
        }, ("id", "stored_id", "outcome", "jobs", "findings", "flags", "timings_ms")),
        "AlertSummary": alert_summary,
        "AlertList": _obj({"alerts": {"type": "array", "items": _ref("AlertSummary")},
                           "next_cursor": _nullable(_INT), "next": _STR},
                          ("alerts", "next_cursor")),
        "AlertDetail": {"allOf": [_ref("AlertSummary"), _obj({
            "parsed": _nullable(_ANY_OBJ), "findings": {"type": "array", "items": _ANY_OBJ},
            "plan": _nullable(_ANY_OBJ),
            "references": {"type": "array", "items": _ANY_OBJ},
            "jobs": {"type": "array", "items": _ref("Job")},
            "submissions": {"type": "array", "items": _ref("Submission")},
            "receipts": {"type": "array", "items": _ref("Receipt")},
            "targeting": _obj({"area_km2": _nullable(_NUM),
                               "operators": {"type": "object",
                                             "additionalProperties": _ANY_OBJ},
                               "geojson": {"anyOf": [_STR, _ref("FeatureCollection")]}}),
        }, ("parsed", "plan", "jobs", "submissions", "receipts", "targeting"))]},
        "Job": job,
        "JobDetail": {"allOf": [_ref("Job"), _obj({
            "payload": _ANY_OBJ,
            "submissions": {"type": "array", "items": _ref("Submission")},
            "receipts": {"type": "array", "items": _ref("Receipt")}},
            ("payload", "submissions", "receipts"))]},
        "JobList": _obj({"jobs": {"type": "array", "items": _ref("Job")},
                         "next_cursor": _nullable(_INT), "next": _STR},
                        ("jobs", "next_cursor")),
        "Submission": submission,
        "Receipt": receipt,
        "FeatureCollection": feature_collection,
        "CancelRequest": _obj({"note": {"type": "string",
                                        "description": "put into the Cancel's <note>"}},
                              extra=False),
        "DrillRequest": _obj({
            "area": {"description": "a GeoJSON geometry (lon/lat) to warn"},
            "preset": {"type": "string", "description": "a named area instead of area"},
            "text": _STR, "operators": {"type": "array", "items": _STR}, "channel": {}},
            description="An Exercise alert to send: an area or a preset, the text, the "
                        "operators and the channel (see dispatcher.drills)"),
        "DrillResult": _obj({"alert_id": _INT},
                            description="The drill's alert and its per-hop timings"),
        "Gateway": _obj({"name": _STR, "kind": {"enum": _JOB_KINDS}, "enabled": _BOOL},
                        ("name", "kind"),
                        description="A gateway's settings; secrets are never shown"),
        "Operator": _obj({
            "name": _STR, "display_name": _STR, "plmn": _STR,
            "languages": {"type": "array", "items": _STR}, "targeting": _ANY_OBJ,
            "gateways": {"type": "array", "items": _ref("Gateway")},
            "exercise": _ANY_OBJ, "test": _ANY_OBJ,
            "inventory": _nullable(_ref("InventoryVersion")),
            "index": _obj({"loaded": _BOOL, "cells": _nullable(_INT)}),
            "presence": _obj({"subscribers": _INT}), "links": links},
            ("name", "plmn", "gateways", "inventory", "presence")),
        "OperatorList": _obj({"operators": {"type": "array", "items": _ref("Operator")}},
                             ("operators",)),
        "PresenceResult": _obj({"operator": _STR, "rows": _INT,
                                "mode": {"enum": ["replace", "merge"]},
                                "format": {"enum": ["csv", "jsonl"]}, "subscribers": _INT},
                               ("operator", "rows", "mode", "subscribers")),
        "InventoryVersion": inventory_version,
        "InventoryUpload": _obj({
            "operator": _STR, "version": _ref("InventoryVersion"),
            "format": {"enum": ["opencellid", "sectors", "geojson"]}, "rows": _INT,
            "skipped": _INT, "problems": {"type": "array", "items": _ref("RowProblem")},
            "notes": {"type": "array", "items": _STR}, "summary": _ANY_OBJ,
            "reload": _obj({"called": _BOOL, "error": _nullable(_STR)})},
            ("operator", "version", "format", "rows", "skipped", "reload")),
        "InventoryList": _obj({"operator": _STR, "active": _nullable(_INT),
                               "versions": {"type": "array",
                                            "items": _ref("InventoryVersion")}},
                              ("operator", "active", "versions")),
        "Authority": _obj({"sender": _STR, "name": _STR, "profile": _STR,
                           "statuses": {"type": "array", "items": {"enum": _STATUSES}},
                           "jurisdiction": _nullable(_ANY_OBJ),
                           "jurisdiction_policy": {"enum": ["reject", "clip"]},
                           "signature_required": _BOOL, "id": _nullable(_INT),
                           "updated_at": _nullable(_TIME)}, ("sender", "name")),
        "AuthorityList": _obj({"authorities": {"type": "array", "items": _ref("Authority")}},
                              ("authorities",)),
        "Me": _obj({"name": _STR, "role": {"enum": ["authority", "manager", "operator",
                                                     "admin"]},
                    "authority": _nullable(_STR), "operator": _nullable(_STR),
                    "may": _obj({"publish": _BOOL, "cancel": _BOOL, "drill": _BOOL,
                                 "audit": _BOOL})},
                   ("name", "role", "may")),
        "AuditEntry": _obj({"id": _INT, "at": _TIME, "actor": _STR, "action": _STR,
                            "subject": _nullable(_STR), "details": _ANY_OBJ},
                           ("id", "at", "actor", "action")),
        "AuditList": _obj({"entries": {"type": "array", "items": _ref("AuditEntry")},
                           "next_cursor": _nullable(_INT)}, ("entries", "next_cursor")),
        "Health": _obj({"status": {"const": "ok"}}, ("status",)),
        "Ready": _obj({"status": {"const": "ready"}, "database": _STR,
                       "schema_version": _INT}, ("status",)),
    }


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {_JSON: {"schema": _ref("Error")}}}


def _responses() -> dict[str, Any]:
    unauthorized = _error_response("No bearer token, or one that is not known")
    unauthorized["headers"] = {"WWW-Authenticate": {
        "description": "Bearer", "schema": {"type": "string"}}}
    return {
        "BadRequest": _error_response("A bad parameter (named in `parameter`) or body"),
        "Unauthorized": unauthorized,
        "Forbidden": _error_response("The token's role does not allow this; the message "
                                     "says why"),
        "NotFound": _error_response("No such alert, job, operator or route"),
        "TooLarge": _error_response("The body is over the limit (refused before it is "
                                    "read when Content-Length says so)"),
        "UnsupportedMediaType": _error_response("The body's Content-Type is not accepted"),
        "Unprocessable": _error_response("The body was read but breaks a rule; every bad "
                                         "row or field is listed"),
        "Unavailable": _error_response("The database cannot be reached (retry later)"),
    }


def _use(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/{name}"}


def _ok(schema: str, description: str, *, media: str = _JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": _ref(schema)}}}


def _param(name: str, where: str, description: str, schema: Schema, *,
           required: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "description": description,
                           "schema": schema, **extra}
    if required or where == "path":
        out["required"] = True
    return out


def _common(auth: bool = True) -> dict[str, Any]:
    out = {"400": _use("BadRequest"), "404": _use("NotFound"), "503": _use("Unavailable")}
    if auth:
        out |= {"401": _use("Unauthorized"), "403": _use("Forbidden")}
    return out


_ALERT_ID = _param("id", "path", "The alert's id", _ID)
_JOB_ID = _param("id", "path", "The job's id", _ID)
_OPERATOR = _param("name", "path", "The operator's name (case-insensitive)", _STR)
_LIMIT = _param("limit", "query", "At most this many items (1..500)",
                {"type": "integer", "minimum": 1, "maximum": 500, "default": 50})
_CURSOR = _param("cursor", "query", "Continue after this id (the previous page's "
                                    "next_cursor)", _ID)


def _paths(max_body_bytes: int, upload_max_bytes: int) -> dict[str, Any]:
    ingest_ok = {
        "201": {**_ok("IngestResult", "Accepted and planned"),
                "headers": {"Location": {"description": "the alert",
                                         "schema": {"type": "string"}}}},
        "200": {**_ok("IngestResult", "A repeat: the first alert's id"),
                "headers": {"Location": {"description": "the first alert",
                                         "schema": {"type": "string"}}}},
        "400": _ok("IngestResult", "Not XML or not CAP (findings say where)"),
        "401": _ok("IngestResult", "No or unknown bearer token"),
        "403": _ok("IngestResult", "Not authorized: unknown authority, another authority's "
                                   "alert, status not allowed, outside the jurisdiction, "
                                   "signature required"),
        "409": _ok("IngestResult", "The same (sender, identifier, sent) with other content"),
        "413": _use("TooLarge"),
        "415": _use("UnsupportedMediaType"),
        "422": _ok("IngestResult", "Readable CAP that breaks a rule (findings name the "
                                   "element path)"),
        "500": _ok("IngestResult", "The alert could not be planned"),
        "503": _use("Unavailable"),
    }
    return {
        "/healthz": {"get": {
            "operationId": "healthz", "summary": "The process answers (no database check)",
            "tags": ["health"], "security": [],
            "responses": {"200": _ok("Health", "Alive")}}},
        "/readyz": {"get": {
            "operationId": "readyz",
            "summary": "The database answers and its migrations are up to date",
            "tags": ["health"], "security": [],
            "responses": {"200": _ok("Ready", "Ready"),
                          "503": _error_response("Not ready: the reason (database "
                                                 "unreachable, migrations pending)")}}},
        "/metrics": {"get": {
            "operationId": "metrics", "summary": "Prometheus metrics (text format)",
            "description": "Alerts ingested by outcome, ingest latency, jobs by kind and "
                           "state, per-link SMPP counters, HTTP requests.",
            "tags": ["health"], "security": [],
            "responses": {"200": {"description": "Prometheus text exposition format",
                                  "content": {"text/plain": {"schema": _STR}}}}}},
        "/console": {"get": {
            "operationId": "console",
            "summary": "The emergency managers' console (an HTML page, no token needed)",
            "description": "Alerts, their map and jobs, cancel and drills in a browser. "
                           "The page asks for a bearer token and sends it with its API "
                           "calls; it keeps it in the tab's sessionStorage only.",
            "tags": ["console"], "security": [],
            "responses": {"200": {"description": "The page",
                                  "content": {"text/html": {"schema": _STR}}},
                          "304": {"description": "Not modified (If-None-Match)"}}}},
        "/console/{file}": {"get": {
            "operationId": "consoleFile",
            "summary": "A static file of the console (script, style sheet)",
            "description": "An empty name redirects to /console.",
            "tags": ["console"], "security": [],
            "parameters": [_param("file", "path", "The file's name, e.g. console.js",
                                  {"type": "string",
                                   "pattern": "^[A-Za-z0-9_-]*(\\.(html|js|css|svg))?$"})],
            "responses": {"200": {"description": "The file", "content": {
                media: {"schema": _STR}
                for media in ("text/javascript", "text/css", "text/html", "image/svg+xml")}},
                          "304": {"description": "Not modified (If-None-Match)"},
                          "308": {"description": "/console/ redirects to /console"},
                          "404": _use("NotFound")}}},
        "/api/v1/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "tags": ["meta"],
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1",
                                  "content": {_JSON: {"schema": _ANY_OBJ}}}}}},
        "/api/v1/alerts": {
            "post": {
                "operationId": "postAlert", "summary": "Submit a CAP alert",
                "description": "Stored verbatim first, then validated (the authority's "
                               "profile), authorized (the token's authority must be the "
                               "sender), deduplicated on (sender, identifier, sent) and "
                               f"planned. Bodies over {max_body_bytes} bytes are refused "
                               "with 413 before they are read. Roles: authority, or a "
                               "manager bound to the authority.",
                "tags": ["alerts"],
                "requestBody": {"required": True, "content": {
                    media: {"schema": {"type": "string",
                                       "description": "a CAP 1.2 (or 1.1) document"}}
                    for media in ("application/cap+xml", "application/xml", "text/xml")}},
                "responses": ingest_ok},
            "get": {
                "operationId": "listAlerts", "summary": "List and search alerts, newest first",
                "description": "Authority tokens see their own alerts, operator tokens the "
                               "alerts with jobs for their network.",
                "tags": ["alerts"],
                "parameters": [
                    _param("status", "query", "CAP status", {"enum": _STATUSES}),
                    _param("sender", "query", "CAP sender", _STR),
                    _param("state", "query", "Alert states, comma-separated",
                           {"type": "string", "example": "planned,dispatching"}),
                    _param("since", "query", "Received at or after (ISO 8601 with offset)",
                           _TIME),
                    _param("until", "query", "Received before (ISO 8601 with offset)", _TIME),
                    _param("area", "query", "Only alerts whose area intersects this box: "
                                            "minlon,minlat,maxlon,maxlat",
                           {"type": "string", "example": "6.6,50.2,7.6,50.8"}),
                    _LIMIT, _CURSOR],
                "responses": {"200": _ok("AlertList", "A page of alerts"), **_common()}}},
        "/api/v1/alerts/{id}": {"get": {
            "operationId": "getAlert",
            "summary": "One alert with its parsed form, plan, jobs, submissions, receipts "
                       "and targeting report",
            "tags": ["alerts"],
            "parameters": [_ALERT_ID, _param(
                "geojson", "query", "Embed the targeting GeoJSON (area and cells)",
                {"type": "boolean"})],
            "responses": {"200": _ok("AlertDetail", "The alert"), **_common()}}},
        "/api/v1/alerts/{id}/cap": {"get": {
            "operationId": "getAlertCap", "summary": "The CAP document exactly as received",
            "tags": ["alerts"], "parameters": [_ALERT_ID],
            "responses": {"200": {"description": "The raw bytes",
                                  "content": {"application/cap+xml": {"schema": _STR}}},
                          **_common()}}},
        "/api/v1/alerts/{id}/targeting.geojson": {"get": {
            "operationId": "getAlertTargeting",
            "summary": "The alert's area and the cells it targets, per operator (GeoJSON)",
            "description": "Computed with the operators' current cell indexes; `planned` "
                           "says whether the alert's jobs name the cell.",
            "tags": ["alerts"], "parameters": [_ALERT_ID],
            "responses": {"200": _ok("FeatureCollection", "GeoJSON",
                                     media="application/geo+json"), **_common()}}},
        "/api/v1/alerts/{id}/cancel": {"post": {
            "operationId": "cancelAlert",
            "summary": "Cancel an alert (issues a CAP Cancel from its authority)",
            "description": "Roles: admin, a manager of the alert's authority (or unbound), "
                           "the authority itself.",
            "tags": ["alerts"], "parameters": [_ALERT_ID],
            "requestBody": {"required": False, "content": {
                _JSON: {"schema": _ref("CancelRequest")}}},
            "responses": {"201": _ok("IngestResult", "The Cancel was accepted"),
                          "200": _ok("IngestResult", "A repeat of an earlier Cancel"),
                          "409": _error_response("The alert cannot be cancelled"),
                          "413": _use("TooLarge"), **_common()}}},
        "/api/v1/drills": {"post": {
            "operationId": "runDrill",
            "summary": "Run a drill: an Exercise alert, reported with per-hop timings",
            "description": "Roles: manager, admin.", "tags": ["drills"],
            "requestBody": {"required": True, "content": {
                _JSON: {"schema": _ref("DrillRequest")}}},
            "responses": {"200": _ok("DrillResult", "The drill ran"),
                          "201": _ok("DrillResult", "The drill's alert was accepted"),
                          "413": _use("TooLarge"),
                          "422": _use("Unprocessable"), **_common()}}},
        "/api/v1/jobs": {"get": {
            "operationId": "listJobs", "summary": "List jobs, newest first",
            "description": "Operator tokens see their own network's jobs, authority tokens "
                           "the jobs of their alerts.",
            "tags": ["jobs"],
            "parameters": [
                _param("alert", "query", "Jobs of this alert", _ID),
                _param("operator", "query", "Jobs of this operator", _STR),
                _param("state", "query", "Job states, comma-separated",
                       {"type": "string", "example": "queued,running"}),
                _param("kind", "query", "Gateway kind", {"enum": _JOB_KINDS}),
                _LIMIT, _CURSOR],
            "responses": {"200": _ok("JobList", "A page of jobs"), **_common()}}},
        "/api/v1/jobs/{id}": {"get": {
            "operationId": "getJob", "summary": "One job with its payload, submissions and "
                                                "receipts",
            "tags": ["jobs"], "parameters": [_JOB_ID],
            "responses": {"200": _ok("JobDetail", "The job"), **_common()}}},
        "/api/v1/operators": {"get": {
            "operationId": "listOperators",
            "summary": "Configured operators: gateways (without secrets), active cell "
                       "inventory, subscribers present",
            "tags": ["operators"],
            "responses": {"200": _ok("OperatorList", "The operators"), **_common()}}},
        "/api/v1/operators/{name}/presence": {"put": {
            "operationId": "putPresence",
            "summary": "Upload the subscribers present per cell (for location-based SMS)",
            "description": "CSV `msisdn,cell_id[,reported_at]` (optional header) or JSON "
                           "lines `{\"msisdn\", \"cell_id\", \"reported_at\"}`. Any bad row "
                           "refuses the whole upload (422, every bad line listed) and "
                           "nothing is stored. Roles: the operator's token, admin. "
                           f"At most {upload_max_bytes} bytes.",
            "tags": ["operators"],
            "parameters": [_OPERATOR, _param(
                "mode", "query", "replace: the body is the operator's whole snapshot; "
                                 "merge: newer reports move subscribers",
                {"enum": ["replace", "merge"], "default": "replace"})],
            "requestBody": {"required": True, "content": {
                "text/csv": {"schema": _STR},
                "application/x-ndjson": {"schema": _STR}}},
            "responses": {"200": _ok("PresenceResult", "Stored"), "413": _use("TooLarge"),
                          "415": _use("UnsupportedMediaType"),
                          "422": _use("Unprocessable"), **_common()}}},
        "/api/v1/operators/{name}/inventory": {
            "post": {
                "operationId": "postInventory",
                "summary": "Upload a cell inventory: a new active version",
                "description": "OpenCelliD CSV, a sector table (CSV) or GeoJSON coverage; "
                               "saved as GeoParquet and recorded as the operator's active "
                               "version; the service then reloads the operator's index. "
                               "Roles: the operator's token, admin. "
                               f"At most {upload_max_bytes} bytes.",
                "tags": ["operators"],
                "parameters": [
                    _OPERATOR,
                    _param("format", "query", "The file's format (guessed when absent)",
                           {"enum": ["opencellid", "sectors", "geojson"]}),
                    _param("on_error", "query", "refuse the file on any bad row, or skip "
                                                "bad rows", {"enum": ["refuse", "skip"],
                                                             "default": "refuse"})],
                "requestBody": {"required": True, "content": {
                    "text/csv": {"schema": _STR},
                    "application/geo+json": {"schema": _ANY_OBJ},
                    "application/gzip": {"schema": {"type": "string",
                                                    "contentEncoding": "binary"}}}},
                "responses": {"201": {**_ok("InventoryUpload", "The new version"),
                                      "headers": {"Location": {
                                          "description": "the operator's versions",
                                          "schema": {"type": "string"}}}},
                              "413": _use("TooLarge"), "422": _use("Unprocessable"),
                              **_common()}},
            "get": {
                "operationId": "listInventory", "summary": "The operator's inventory versions",
                "tags": ["operators"], "parameters": [_OPERATOR],
                "responses": {"200": _ok("InventoryList", "The versions"), **_common()}}},
        "/api/v1/me": {"get": {
            "operationId": "whoAmI", "summary": "The token's name, role and what it may do",
            "tags": ["meta"],
            "responses": {"200": _ok("Me", "Who the bearer token is"), **_common()}}},
        "/api/v1/authorities": {"get": {
            "operationId": "listAuthorities", "summary": "The alerting authorities",
            "tags": ["authorities"],
            "responses": {"200": _ok("AuthorityList", "The authorities"), **_common()}}},
        "/api/v1/audit": {"get": {
            "operationId": "listAudit", "summary": "The audit log, newest first (admin)",
            "tags": ["audit"],
            "parameters": [_param("subject", "query", "Entries about this subject "
                                                      "(alert:12, operator:opa)", _STR),
                           _param("action", "query", "Entries of this action "
                                                     "(alert.submit)", _STR),
                           {**_LIMIT, "schema": {"type": "integer", "minimum": 1,
                                                 "maximum": 500, "default": 100}},
                           _CURSOR],
            "responses": {"200": _ok("AuditList", "A page of entries"), **_common()}}},
    }


def openapi_document(*, server_url: str | None = None, max_body_bytes: int = 1 << 20,
                     upload_max_bytes: int = 512 << 20) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a JSON-ready dict) for the API's routes and limits."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "capcast",
            "version": "1",
            "summary": "CAP warning dispatcher: ingest, targeting, cell broadcast and "
                       "LB-SMS jobs",
            "description": "Errors are JSON: {\"error\": {\"code\", \"message\", ...}}. "
                           "Roles per bearer token: authority, manager, operator, admin.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"bearer": []}],
        "paths": _paths(max_body_bytes, upload_max_bytes),
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A token configured for an authority, a manager, an "
                               "operator or an admin"}},
            "schemas": _schemas(),
            "responses": _responses(),
        },
        "tags": [{"name": n} for n in ("alerts", "drills", "jobs", "operators",
                                       "authorities", "audit", "health", "meta",
                                       "console")],
    }
    if server_url:
        document["servers"] = [{"url": server_url.rstrip("/")}]
    return document
