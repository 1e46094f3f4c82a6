"""The HTTP API over real sockets, a real PostgreSQL, a real ingest pipeline and real tokens.

Each test serves :func:`dispatcher.api.create_api_app` with aiohttp's
``TestServer`` on loopback and talks to it with ``TestClient``; the service is
built by hand from settings read by :func:`dispatcher.config.load_settings`
(a TOML file and a secrets file written for the test), the store and queue on
the test's own database, and an :class:`~dispatcher.pipeline.Ingest` over a
small synthetic cell index around Kreis Ahrweiler (where the DWD sample alert
warns).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import shapely
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate as validate_openapi

from dispatcher.api import create_api_app
from dispatcher.config import Settings, hash_token, load_settings
from dispatcher.pipeline import AuthorityPolicy, Ingest
from dispatcher.planner import (
    GatewayKind,
    GatewayPlanInput,
    OperatorPlanInput,
    StatusPolicy,
    TargetingPolicy,
)
from dispatcher.queue import NewSubmission, Queue, SubmissionResult
from dispatcher.service import Service
from dispatcher.store import AlertState, Store, SubmissionStatus, create_pool
from gateways.simulators.smsc import SmscConfig, SmscSimulator
from gateways.smpp.client import LinkConfig, SmppClient
from geo.index import CellIndex
from geo.synth import synthesize

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
DWD = (CORPUS / "dwd" / "Z_CAP_C_EDZW_20150722094400_PVW_161.xml").read_bytes()
SENDER = "CAP@dwd.de"
NOW = datetime(2015, 7, 22, 10, 0, tzinfo=UTC)
AHRWEILER_BOX = (6.6, 50.2, 7.6, 50.8)
MAX_BODY = 64 * 1024
SMPP_PASSWORD = "s3cret-smpp-password"

#: The bearer tokens of the test's configuration, by their configured names.
TOKENS = {
    "dwd_ingest": "tok-dwd-7f3a9c",           # authority CAP@dwd.de
    "other_ingest": "tok-other-51d2e0",       # authority other@example.gov
    "dwd-duty": "tok-dwd-manager-0b77",       # manager bound to CAP@dwd.de
    "national": "tok-national-manager-9e1",   # manager bound to none
    "alpha-noc": "tok-alpha-noc-44c1",        # operator Alpha
    "beta-noc": "tok-beta-noc-2a90",          # operator Beta
    "ops": "tok-admin-c0ffee",                # admin
}

CONFIG = """
data_dir = "{data_dir}"

[http]
port = 0
max_body_bytes = {max_body}

[[authorities]]
sender = "CAP@dwd.de"
name = "Deutscher Wetterdienst"
statuses = ["Actual", "Exercise", "Test"]
tokens = ["dwd_ingest"]

[[authorities]]
sender = "other@example.gov"
name = "Other authority"
tokens = ["other_ingest"]

[[operators]]
name = "Alpha"
plmn = "001-01"

[operators.exercise]
gateways = ["cbc"]

[[operators.gateways]]
name = "cbc"
kind = "smpp-broadcast"
host = "127.0.0.1"
system_id = "capcast"
password_secret = "alpha_smpp"
window = 8

[[operators]]
name = "Beta"
plmn = "001-02"

[[tokens]]
name = "dwd-duty"
role = "manager"
secret = "dwd_manager"
authority = "CAP@dwd.de"

[[tokens]]
name = "national"
role = "manager"
secret = "national_manager"

[[tokens]]
name = "alpha-noc"
role = "operator"
secret = "alpha_noc"
operator = "Alpha"

[[tokens]]
name = "beta-noc"
role = "operator"
secret = "beta_noc"
operator = "Beta"

[[tokens]]
name = "ops"
role = "admin"
secret = "ops_admin"
"""

SECRET_NAMES = {"dwd_ingest": "dwd_ingest", "other_ingest": "other_ingest",
                "dwd-duty": "dwd_manager", "national": "national_manager",
                "alpha-noc": "alpha_noc", "beta-noc": "beta_noc", "ops": "ops_admin"}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def variant(number: int) -> bytes:
    """The DWD alert under another identifier (another alert for the store)."""
    return DWD.replace(b"PVW.1437558240606.161", f"PVW.1437558240606.{number}".encode())


@cache
def alpha() -> OperatorPlanInput:
    inventory = synthesize(400, seed=3, bbox=AHRWEILER_BOX, operators=("Alpha",))
    index = CellIndex.from_arrays(inventory.cell_ids, inventory.polygons, inventory.operators)
    # Exercises (drills) may go through its gateway to any of its cells.
    exercise = StatusPolicy(gateways=frozenset({"cbc"}),
                            cells=frozenset(str(c) for c in inventory.cell_ids))
    return OperatorPlanInput(name="Alpha", plmn="001-01", index=index, languages=("de",),
                             gateways=(GatewayPlanInput(name="cbc",
                                                        kind=GatewayKind.SMPP_BROADCAST),),
                             exercise=exercise)


def load(tmp_path: Path) -> Settings:
    config = tmp_path / "capcast.toml"
    config.write_text(CONFIG.format(data_dir=tmp_path / "data", max_body=MAX_BODY))
    secrets = tmp_path / "secrets.toml"
    lines = ["[secrets]", f'alpha_smpp = "{SMPP_PASSWORD}"']
    lines += [f'{SECRET_NAMES[name]} = "{hash_token(token)}"' for name, token in TOKENS.items()]
    secrets.write_text("\n".join(lines) + "\n")
    secrets.chmod(0o600)
    return load_settings(config, env={}, secrets_path=secrets)


def build_service(settings: Settings, store: Store, queue: Queue) -> Service:
    policies = {a.sender: AuthorityPolicy(sender=a.sender, profile=a.profile,
                                          allowed_statuses=frozenset(a.statuses))
                for a in settings.authorities}
    ingest = Ingest(store=store, authorities=policies, operators=[alpha()],
                    targeting=TargetingPolicy(), clock=lambda: NOW,
                    max_bytes=settings.http.max_body_bytes)
    return Service(settings=settings, store=store, queue=queue, ingest=ingest,
                   clock=lambda: NOW, database_display="test-db")


@pytest.fixture
def service(tmp_path: Path, store: Store, queue: Queue) -> Service:
    return build_service(load(tmp_path), store, queue)


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(service: Service) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_api_app(service))) as test_client:
        yield test_client


async def post_cap(client: Client, raw: bytes = DWD, token: str = "dwd_ingest"
                   ) -> tuple[int, dict[str, Any], Any]:
    response = await client.post("/api/v1/alerts", data=raw,
                                 headers={**auth(token), "Content-Type": "application/cap+xml"})
    return response.status, await response.json(), response.headers


async def get_json(client: Client, path: str, token: str = "ops", *,
                   status: int = 200) -> Any:
    response = await client.get(path, headers=auth(token))
    body = await response.json()
    assert response.status == status, (path, response.status, body)
    assert response.content_type in ("application/json", "application/geo+json")
    return body


def assert_error(body: Any, code: str) -> dict[str, Any]:
    assert set(body) >= {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


# -- health, errors, OpenAPI ---------------------------------------------------------------


async def test_health_readiness_and_json_errors(client: Client) -> None:
    assert await get_json(client, "/healthz") == {"status": "ok"}
    ready = await get_json(client, "/readyz")
    assert ready["status"] == "ready" and ready["schema_version"] >= 1
    response = await client.get("/api/v1/nowhere")
    assert response.status == 404 and response.content_type == "application/json"
    assert_error(await response.json(), "not-found")
    response = await client.delete("/api/v1/alerts", headers=auth("ops"))
    assert response.status == 405
    error = assert_error(await response.json(), "method-not-allowed")
    assert "POST" in error["allowed"] and "POST" in response.headers["Allow"]


async def test_readyz_names_pending_migrations_and_an_unreachable_database(
        tmp_path: Path, make_database: Any, queue: Queue) -> None:
    empty_url = await make_database(empty=True)
    pool = await create_pool(empty_url, min_size=1, max_size=2)
    try:
        service = build_service(load(tmp_path), Store(pool=pool, url=empty_url), queue)
        async with TestClient(TestServer(create_api_app(service))) as client:
            response = await client.get("/readyz")
            assert response.status == 503
            error = assert_error(await response.json(), "schema-not-ready")
            assert "0001_initial" in error["pending"]
            await pool.close()
            response = await client.get("/readyz")
            assert response.status == 503
            assert_error(await response.json(), "database-unavailable")
            assert (await client.get("/healthz")).status == 200
    finally:
        await pool.close()


async def test_openapi_describes_every_route_and_validates(client: Client) -> None:
    document = await get_json(client, "/api/v1/openapi.json")
    validate_openapi(document)
    app = client.server.app
    assert app is not None
    registered = {(route.resource.canonical, route.method.lower())
                  for route in app.router.routes()
                  if route.resource is not None and route.method != "HEAD"}
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method in ("get", "post", "put", "delete", "patch")}
    assert registered == documented
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, method in registered:
        operation = document["paths"][path][method]
        assert "200" in operation["responses"] or "201" in operation["responses"]
        for name in re.findall(r"{(\w+)}", path):
            assert any(p["name"] == name and p["in"] == "path"
                       for p in operation.get("parameters", [])), (path, name)


# -- authentication and roles ------------------------------------------------------------


async def test_tokens_are_required_and_checked(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await client.get("/api/v1/alerts", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json())["error"]["code"] in ("unauthenticated", "invalid-token")
    response = await client.post("/api/v1/alerts", data=DWD)
    assert response.status == 401
    # Nothing was stored for a request without credentials.
    assert (await get_json(client, "/api/v1/alerts"))["alerts"] == []
    error = assert_error(await get_json(client, "/api/v1/audit", "national", status=403),
                         "forbidden")
    assert "admin" in error["message"] and error["role"] == "manager"


async def test_publishing_roles(client: Client) -> None:
    status, body, _ = await post_cap(client, token="other_ingest")
    assert status == 403
    assert body["outcome"] == "refused" and body["error"]["code"] == "forbidden-sender"
    status, body, _ = await post_cap(client, token="alpha-noc")
    assert status == 403 and assert_error(body, "forbidden")["role"] == "operator"
    status, body, _ = await post_cap(client, token="national")
    assert status == 403 and "bound to no authority" in body["error"]["message"]
    # A manager bound to the authority publishes for it.
    status, body, headers = await post_cap(client, token="dwd-duty")
    assert status == 201, body
    assert headers["Location"].endswith(f"/api/v1/alerts/{body['id']}")


# -- ingest ---------------------------------------------------------------------------------


async def test_post_alert_then_read_it_back(client: Client, store: Store) -> None:
    status, body, headers = await post_cap(client)
    assert status == 201, body
    assert body["outcome"] == "accepted" and body["jobs"] >= 1
    assert set(body["timings_ms"]) >= {"store_raw", "validate", "plan", "commit"}
    alert_id = body["id"]
    location = headers["Location"]
    assert location.startswith("http://") and location.endswith(f"/api/v1/alerts/{alert_id}")

    detail = await get_json(client, f"/api/v1/alerts/{alert_id}", "dwd_ingest")
    assert detail["state"] == "planned" and detail["sender"] == SENDER
    assert detail["parsed"]["identifier"] == "2.49.0.1.276.DWD.PVW.1437558240606.161"
    assert detail["plan"]["jobs"] and len(detail["jobs"]) == body["jobs"]
    stored = await store.get_alert_detail(alert_id)
    planned_cells = len(stored.jobs[0].payload["cells"])
    assert detail["jobs"][0]["cells"] == planned_cells > 0
    alpha_report = detail["targeting"]["operators"]["Alpha"]
    assert alpha_report["cells"] == planned_cells and alpha_report["jobs"] == body["jobs"]

    response = await client.get(f"/api/v1/alerts/{alert_id}/cap", headers=auth("dwd_ingest"))
    assert response.status == 200 and response.content_type == "application/cap+xml"
    assert await response.read() == DWD

    again_status, again, again_headers = await post_cap(client)
    assert again_status == 200 and again["outcome"] == "repeat" and again["id"] == alert_id
    assert again_headers["Location"] == location

    audit = await get_json(client, "/api/v1/audit?action=alert.submit")
    entries = audit["entries"]
    assert [e["details"]["outcome"] for e in entries] == ["repeat", "accepted"]
    assert {e["actor"] for e in entries} == {"dwd_ingest"}


async def test_bad_documents_are_refused_with_findings(client: Client) -> None:
    status, body, headers = await post_cap(client, DWD[:400])
    assert status == 400 and "Location" not in headers
    assert body["outcome"] == "refused" and body["findings"]
    assert body["error"]["findings"] == body["findings"]

    status, body, _ = await post_cap(
        client, variant(170).replace(b"<urgency>Immediate</urgency>", b"<urgency>Soon</urgency>"))
    assert status == 422, body
    paths = [f["path"] for f in body["findings"] if f["severity"] == "error"]
    assert any(p.endswith("urgency") and p.startswith("alert/info") for p in paths), paths

    unknown = variant(171).replace(b"<sender>CAP@dwd.de</sender>",
                                   b"<sender>nobody@example.org</sender>")
    status, body, _ = await post_cap(client, unknown)
    assert status == 403 and body["error"]["code"] == "unknown-authority"

    response = await client.post("/api/v1/alerts", data=b'{"alert": 1}',
                                 headers={**auth("dwd_ingest"),
                                          "Content-Type": "application/json"})
    assert response.status == 415
    assert_error(await response.json(), "unsupported-media-type")


async def test_same_key_other_content_is_a_conflict(client: Client) -> None:
    first, body, _ = await post_cap(client)
    assert first == 201
    other = DWD.replace(b"Amtliche WARNUNG vor HITZE", b"Amtliche WARNUNG vor STARKER HITZE")
    status, conflict, _ = await post_cap(client, other)
    assert status == 409 and conflict["outcome"] == "conflict"
    assert conflict["error"]["code"] == "conflict" and conflict["id"] != body["id"]


async def test_two_identical_concurrent_posts_make_one_alert(client: Client,
                                                             store: Store) -> None:
    results = await asyncio.gather(*(post_cap(client) for _ in range(3)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 200, 201], [r[1] for r in results]
    assert len({body["id"] for _, body, _ in results}) == 1
    alerts = await store.list_alerts(sender=SENDER)
    assert [a.state for a in alerts].count(AlertState.PLANNED) == 1
    assert [a.state for a in alerts].count(AlertState.DUPLICATE) == 2


async def test_oversize_bodies_are_refused_before_reading(client: Client) -> None:
    big = DWD + b" " * (MAX_BODY + 1 - len(DWD))
    status, body, _ = await post_cap(client, big)
    assert status == 413 and assert_error(body, "body-too-large")["limit"] == MAX_BODY

    # A Content-Length over the limit is answered at once, without waiting for a body
    # that never comes.
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"POST /api/v1/alerts HTTP/1.1\r\nHost: {host}\r\n"
                 f"Authorization: Bearer {TOKENS['dwd_ingest']}\r\n"
                 f"Content-Type: application/cap+xml\r\nContent-Length: 100000000\r\n"
                 f"\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    assert head.startswith(b"HTTP/1.1 413"), head
    writer.close()

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 4096 + 2):
            yield b" " * 4096

    response = await client.post("/api/v1/alerts", data=chunked(),
                                 headers={**auth("dwd_ingest"),
                                          "Content-Type": "application/cap+xml"})
    assert response.status == 413
    assert_error(await response.json(), "body-too-large")
    # Nothing of the refused bodies was stored.
    assert (await get_json(client, "/api/v1/alerts"))["alerts"] == []


# -- listing and reading alerts -------------------------------------------------------------


async def test_list_alerts_filters_pages_and_visibility(client: Client) -> None:
    ids = []
    for number in range(200, 205):
        status, body, _ = await post_cap(client, variant(number))
        assert status == 201, body
        ids.append(body["id"])
    status, refused, _ = await post_cap(client, DWD[:300])
    assert status == 400
    newest_first = list(reversed(ids))

    everything = await get_json(client, "/api/v1/alerts")
    assert [a["id"] for a in everything["alerts"]] == [refused["id"], *newest_first]
    planned = await get_json(client, "/api/v1/alerts?state=planned,dispatching&status=actual")
    assert [a["id"] for a in planned["alerts"]] == newest_first
    assert (await get_json(client, "/api/v1/alerts?status=Exercise"))["alerts"] == []
    by_sender = await get_json(client, f"/api/v1/alerts?sender={SENDER}&state=planned")
    assert len(by_sender["alerts"]) == 5

    page = await get_json(client, "/api/v1/alerts?state=planned&limit=2")
    assert [a["id"] for a in page["alerts"]] == newest_first[:2]
    rest = await get_json(client, f"/api/v1/alerts?state=planned&limit=2&cursor="
                                  f"{page['next_cursor']}")
    assert [a["id"] for a in rest["alerts"]] == newest_first[2:4]
    assert page["next"].startswith("/api/v1/alerts?")

    # Arrival times come from the database clock: a window around now holds them all.
    future = "2999-01-01T00:00:00Z"
    assert (await get_json(client, f"/api/v1/alerts?since={future}"))["alerts"] == []
    until = await get_json(client, f"/api/v1/alerts?until={future}&since=2000-01-01T00:00:00"
                                   "%2B00:00")
    assert len(until["alerts"]) == 6

    inside = await get_json(client, "/api/v1/alerts?area=7.0,50.3,7.3,50.6&limit=3")
    assert [a["id"] for a in inside["alerts"]] == newest_first[:3]
    berlin = await get_json(client, "/api/v1/alerts?area=13.0,52.3,13.8,52.7")
    assert berlin["alerts"] == [] and berlin["next_cursor"] is None

    other = await get_json(client, "/api/v1/alerts", "other_ingest")
    assert other["alerts"] == []
    mine = await get_json(client, "/api/v1/alerts", "dwd_ingest")
    # The authority also sees its unreadable document (no sender, but its source).
    assert [a["id"] for a in mine["alerts"]] == [refused["id"], *newest_first]
    assert_error(await get_json(client, "/api/v1/alerts?sender=other@example.gov",
                                "dwd_ingest", status=403), "forbidden")
    assert [a["id"] for a in (await get_json(client, "/api/v1/alerts", "alpha-noc"))[
        "alerts"]] == newest_first
    assert (await get_json(client, "/api/v1/alerts", "beta-noc"))["alerts"] == []


BAD_QUERIES = [
    ("alerts", "limit=abc", "limit"), ("alerts", "limit=0", "limit"),
    ("alerts", "since=yesterday", "since"), ("alerts", "until=2015-07-22T10:00:00", "until"),
    ("alerts", "area=1,2,3", "area"), ("alerts", "area=9,1,2,3", "area"),
    ("alerts", "state=lost", "state"), ("alerts", "status=Real", "status"),
    ("alerts", "cursor=-1", "cursor"), ("alerts", "colour=red", "colour"),
    ("alerts", "limit=1&limit=2", "limit"), ("alerts/1", "geojson=maybe", "geojson"),
    ("jobs", "state=lost", "state"), ("jobs", "kind=fax", "kind"), ("jobs", "alert=x", "alert"),
    ("audit", "limit=501", "limit"),
]


async def test_bad_query_parameters_are_named(client: Client) -> None:
    for path, query, parameter in BAD_QUERIES:
        body = await get_json(client, f"/api/v1/{path}?{query}", status=400)
        error = assert_error(body, "bad-parameter")
        assert error["parameter"] == parameter, (path, query, error)
        assert repr(parameter) in error["message"]


async def test_alert_visibility_and_missing_alerts(client: Client) -> None:
    status, body, _ = await post_cap(client)
    assert status == 201
    alert_id = body["id"]
    for token in ("other_ingest", "beta-noc"):
        for suffix in ("", "/cap", "/targeting.geojson"):
            error = assert_error(await get_json(client, f"/api/v1/alerts/{alert_id}{suffix}",
                                                token, status=403), "forbidden")
            assert error["token"] == token
    for token in ("alpha-noc", "dwd-duty", "national", "ops"):
        assert (await get_json(client, f"/api/v1/alerts/{alert_id}", token))["id"] == alert_id
    assert_error(await get_json(client, "/api/v1/alerts/999999", status=404), "not-found")
    assert_error(await get_json(client, "/api/v1/alerts/999999/cap", status=404), "not-found")
    error = assert_error(await get_json(client, "/api/v1/alerts/abc", status=400),
                         "bad-parameter")
    assert error["parameter"] == "id"


async def test_targeting_geojson_matches_the_plan(client: Client, store: Store) -> None:
    status, body, _ = await post_cap(client)
    assert status == 201
    alert_id = body["id"]
    planned = {c for job in (await store.get_alert_detail(alert_id)).jobs
               for c in job.payload["cells"]}
    document = await get_json(client, f"/api/v1/alerts/{alert_id}/targeting.geojson",
                              "alpha-noc")
    assert document["type"] == "FeatureCollection"
    area, *cells = document["features"]
    assert area["properties"]["role"] == "alert-area"
    area_shape = shapely.geometry.shape(area["geometry"])
    assert area_shape.intersects(shapely.box(*AHRWEILER_BOX))
    targeted = {f["properties"]["cell_id"] for f in cells if f["properties"]["targeted"]}
    assert targeted == planned
    assert all(f["properties"]["planned"] == (f["properties"]["cell_id"] in planned)
               for f in cells)
    assert all(shapely.geometry.shape(f["geometry"]).intersects(area_shape) for f in cells)
    summary = document["properties"]["operators"]["Alpha"]
    assert summary["any-overlap"]["cells"] == len(planned)

    embedded = await get_json(client, f"/api/v1/alerts/{alert_id}?geojson=1")
    assert embedded["targeting"]["geojson"]["features"] == document["features"]
    plain = await get_json(client, f"/api/v1/alerts/{alert_id}")
    assert plain["targeting"]["geojson"].endswith("/targeting.geojson")


# -- jobs -----------------------------------------------------------------------------------


async def test_jobs_with_submissions_and_receipts(client: Client, service: Service) -> None:
    # Expiring long after the database's clock, so that a worker may claim its jobs.
    lasting = DWD.replace(b"<expires>2015-07-22T17:00:00+00:00</expires>",
                          b"<expires>2099-07-22T17:00:00+00:00</expires>")
    status, body, _ = await post_cap(client, lasting)
    assert status == 201
    alert_id = body["id"]
    listing = await get_json(client, f"/api/v1/jobs?alert={alert_id}")
    assert len(listing["jobs"]) == body["jobs"]
    job_id = listing["jobs"][0]["id"]
    assert listing["jobs"][0]["state"] == "queued" and "payload" not in listing["jobs"][0]

    # A worker's records, made through the real queue and store.
    [job] = await service.queue.claim("worker-1")
    [submission_id] = await service.queue.record_submissions(
        job, [NewSubmission(item="page-1", sequence_number=7)])
    await service.queue.settle_submissions([SubmissionResult(
        id=submission_id, status=SubmissionStatus.ACKNOWLEDGED, message_id="m-1")])
    await service.store.record_receipt(operator="Alpha", gateway="cbc", message_id="m-1",
                                       state="delivered")

    detail = await get_json(client, f"/api/v1/jobs/{job_id}", "alpha-noc")
    assert detail["state"] == "running" and detail["payload"]["operator"] == "Alpha"
    assert [s["message_id"] for s in detail["submissions"]] == ["m-1"]
    assert detail["submissions"][0]["status"] == "acknowledged"
    assert [r["state"] for r in detail["receipts"]] == ["delivered"]
    alert = await get_json(client, f"/api/v1/alerts/{alert_id}", "alpha-noc")
    assert [s["id"] for s in alert["submissions"]] == [submission_id]
    assert [r["message_id"] for r in alert["receipts"]] == ["m-1"]

    running = await get_json(client, "/api/v1/jobs?state=running&operator=Alpha")
    assert [j["id"] for j in running["jobs"]] == [job_id]
    assert (await get_json(client, "/api/v1/jobs?state=failed"))["jobs"] == []
    assert (await get_json(client, "/api/v1/jobs", "beta-noc"))["jobs"] == []
    assert (await get_json(client, "/api/v1/jobs", "other_ingest"))["jobs"] == []
    assert len((await get_json(client, "/api/v1/jobs", "dwd_ingest"))["jobs"]) == body["jobs"]
    assert_error(await get_json(client, f"/api/v1/jobs/{job_id}", "beta-noc", status=403),
                 "forbidden")
    assert_error(await get_json(client, f"/api/v1/jobs/{job_id}", "other_ingest",
                                status=403), "forbidden")
    assert_error(await get_json(client, "/api/v1/jobs?operator=Alpha", "beta-noc",
                                status=403), "forbidden")
    assert assert_error(await get_json(client, "/api/v1/jobs?state=lost", status=400),
                        "bad-parameter")["parameter"] == "state"
    assert_error(await get_json(client, "/api/v1/jobs/424242", status=404), "not-found")


# -- operators, presence, inventory --------------------------------------------------------


async def test_operators_without_secrets(client: Client) -> None:
    response = await client.get("/api/v1/operators", headers=auth("ops"))
    text = await response.text()
    assert response.status == 200
    assert SMPP_PASSWORD not in text and "password" not in text
    operators = json.loads(text)["operators"]
    assert [o["name"] for o in operators] == ["Alpha", "Beta"]
    alpha_json = operators[0]
    assert alpha_json["plmn"] == "001-01"
    assert alpha_json["gateways"] == [alpha_json["gateways"][0]]
    gateway = alpha_json["gateways"][0]
    assert gateway["name"] == "cbc" and gateway["kind"] == "smpp-broadcast"
    assert gateway["host"] == "127.0.0.1" and gateway["window"] == 8
    assert alpha_json["inventory"] is None and alpha_json["presence"]["subscribers"] == 0
    assert alpha_json["index"] == {"loaded": True, "cells": len(alpha().index)}
    assert operators[1]["index"]["loaded"] is False
    own = await get_json(client, "/api/v1/operators", "beta-noc")
    assert [o["name"] for o in own["operators"]] == ["Beta"]


async def test_presence_upload(client: Client, store: Store) -> None:
    good = ("msisdn,cell_id,reported_at\n"
            "+491511234567,001-01-1-1,2015-07-22T09:00:00Z\n"
            "\n"
            "491511234568,001-01-0256\n")
    response = await client.put("/api/v1/operators/alpha/presence", data=good,
                                headers={**auth("alpha-noc"), "Content-Type": "text/csv"})
    body = await response.json()
    assert response.status == 200, body
    assert body["rows"] == 2 and body["subscribers"] == 2 and body["mode"] == "replace"
    cells = {e.cell_id for e in await store.presence_in_cells("Alpha",
                                                              ["001-01-1-1", "001-01-256"])}
    assert cells == {"001-01-1-1", "001-01-256"}  # the leading zero dropped

    bad = ("msisdn,cell_id\n"
           "12ab,001-01-1-1\n"
           "491511234568,not-a-cell\n"
           "491511234569,001-01-1-1,2030-01-01T00:00:00Z\n"
           "491511234570\n"
           "491511234571,001-01-1-2\n")
    response = await client.put("/api/v1/operators/Alpha/presence", data=bad,
                                headers={**auth("ops"), "Content-Type": "text/csv"})
    error = assert_error(await response.json(), "invalid-presence")
    assert response.status == 422
    assert [p["line"] for p in error["problems"]] == [2, 3, 4, 5] and error["count"] == 4
    assert "msisdn" in error["problems"][0]["message"]
    assert "future" in error["problems"][2]["message"]
    assert await store.count_presence("Alpha") == 2  # nothing of the bad upload was stored

    lines = "\n".join(json.dumps(row) for row in (
        {"msisdn": "491510000001", "cell_id": "001-01-1-3"},
        {"msisdn": "+491511234567", "cell_id": "001-01-1-2",
         "reported_at": "2015-07-22T09:30:00+02:00"}))
    response = await client.put("/api/v1/operators/Alpha/presence?mode=merge", data=lines,
                                headers={**auth("alpha-noc"),
                                         "Content-Type": "application/x-ndjson"})
    body = await response.json()
    assert response.status == 200, body
    assert body["format"] == "jsonl" and body["subscribers"] == 3

    response = await client.put("/api/v1/operators/Alpha/presence", data='{"msisdn": 1}\n[]',
                                headers=auth("alpha-noc"))
    error = assert_error(await response.json(), "invalid-presence")
    assert [p["line"] for p in error["problems"]] == [1, 2]

    for token, status in (("beta-noc", 403), ("dwd-duty", 403), ("dwd_ingest", 403)):
        response = await client.put("/api/v1/operators/Alpha/presence", data=good,
                                    headers={**auth(token), "Content-Type": "text/csv"})
        assert response.status == status
        assert_error(await response.json(), "forbidden")
    response = await client.put("/api/v1/operators/Gamma/presence", data=good,
                                headers={**auth("ops"), "Content-Type": "text/csv"})
    assert response.status == 404
    audit = await get_json(client, "/api/v1/audit?action=presence.upload")
    assert [e["actor"] for e in audit["entries"]] == ["alpha-noc", "alpha-noc"]


SECTORS = ("cell_id,operator,radio,lon,lat,azimuth_deg,beamwidth_deg,range_m\n"
           "001-01-1-1,Alpha,GSM,7.0,50.5,0,120,2000\n"
           "001-01-1-2,Alpha,GSM,7.0,50.5,120,120,2000\n"
           "001-01-300,Alpha,LTE,7.1,50.5,0,360,1500\n")


async def test_inventory_upload_versions_and_reload_hook(client: Client, service: Service,
                                                         store: Store) -> None:
    reloaded: list[tuple[str, Path]] = []

    async def on_inventory(operator: str, path: Path) -> None:
        reloaded.append((operator, path))

    service.on_inventory = on_inventory
    response = await client.post("/api/v1/operators/Alpha/inventory", data=SECTORS,
                                 headers={**auth("alpha-noc"), "Content-Type": "text/csv"})
    body = await response.json()
    assert response.status == 201, body
    assert body["format"] == "sectors" and body["rows"] == 3 and body["skipped"] == 0
    assert body["version"]["version"] == 1 and body["version"]["cell_count"] == 3
    assert body["reload"] == {"called": True, "error": None}
    [(operator, path)] = reloaded
    assert operator == "Alpha" and path.is_file()
    assert path.parent == service.settings.data_dir / "inventories" / "Alpha"
    [version] = await store.list_inventory_versions("Alpha")
    assert version.path == str(path) and version.active
    from geo.inventory import Inventory
    saved = Inventory.load(path)
    assert sorted(saved.cell_ids.tolist()) == ["001-01-1-1", "001-01-1-2", "001-01-300"]

    second = SECTORS.replace("2000\n", "2500\n")
    response = await client.post("/api/v1/operators/Alpha/inventory?format=sectors",
                                 data=second, headers=auth("ops"))
    assert response.status == 201
    listing = await get_json(client, "/api/v1/operators/Alpha/inventory", "alpha-noc")
    assert listing["active"] == 2
    assert [(v["version"], v["active"]) for v in listing["versions"]] == [(1, False), (2, True)]
    operators = await get_json(client, "/api/v1/operators")
    assert operators["operators"][0]["inventory"]["version"] == 2

    broken = SECTORS + "001-01-1-9,Alpha,GSM,7.0,50.5,400,120,2000\n"
    response = await client.post("/api/v1/operators/Alpha/inventory", data=broken,
                                 headers={**auth("alpha-noc"), "Content-Type": "text/csv"})
    error = assert_error(await response.json(), "inventory-refused")
    assert response.status == 422 and error["count"] == 1
    assert error["problems"][0]["line"] == 5 and "azimuth" in error["problems"][0]["reason"]

    foreign = SECTORS.replace("001-01-300", "001-02-300")
    response = await client.post("/api/v1/operators/Alpha/inventory", data=foreign,
                                 headers={**auth("alpha-noc"), "Content-Type": "text/csv"})
    assert response.status == 422
    assert "001-02" in assert_error(await response.json(), "inventory-other-network")["message"]
    assert len(await store.list_inventory_versions("Alpha")) == 2
    assert len(reloaded) == 2

    response = await client.post("/api/v1/operators/Alpha/inventory", data=SECTORS,
                                 headers={**auth("beta-noc"), "Content-Type": "text/csv"})
    assert response.status == 403
    assert_error(await get_json(client, "/api/v1/operators/Alpha/inventory", "dwd_ingest",
                                status=403), "forbidden")
    audit = await get_json(client, "/api/v1/audit?subject=operator:Alpha")
    assert [(e["action"], e["actor"]) for e in audit["entries"]] == [
        ("inventory.upload", "ops"), ("inventory.upload", "alpha-noc")]
    # The uploads' temporary files are gone.
    assert not list((service.settings.data_dir / "inventories" / ".uploads").iterdir())


# -- authorities, metrics -------------------------------------------------------------------


async def test_authorities(client: Client, store: Store) -> None:
    await store.upsert_authority(sender=SENDER, display_name="DWD", profile="oasis",
                                 allowed_statuses=["Actual"])
    body = await get_json(client, "/api/v1/authorities", "beta-noc")
    by_sender = {a["sender"]: a for a in body["authorities"]}
    assert set(by_sender) == {SENDER, "other@example.gov"}
    assert by_sender[SENDER]["name"] == "Deutscher Wetterdienst"
    assert by_sender[SENDER]["statuses"] == ["Actual", "Exercise", "Test"]
    assert by_sender[SENDER]["id"] is not None and by_sender["other@example.gov"]["id"] is None


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


async def test_metrics(client: Client, service: Service) -> None:
    status, body, _ = await post_cap(client)
    assert status == 201
    assert (await post_cap(client, DWD[:100]))[0] == 400
    simulator = SmscSimulator(SmscConfig(dlr_delay=None, credentials={"capcast": "pw"}))
    await simulator.start()
    try:
        link = LinkConfig(host="127.0.0.1", port=simulator.port, system_id="capcast",
                          password="pw", name="lbsms-1")
        async with SmppClient([link], operator="Alpha") as smpp:
            service.smpp_clients = {("Alpha", "lbsms"): smpp}
            summary = await smpp.submit_bulk(text="test", source="CAPCAST",
                                             recipients=["4915100000001", "4915100000002"],
                                             registered_delivery=False).wait()
            assert summary["accepted"] == 2
            response = await client.get("/metrics")
            text = await response.text()
    finally:
        await simulator.stop()
    assert response.status == 200 and response.content_type == "text/plain"
    assert sample(text, "capcast_alerts_ingested_total", outcome="accepted") == 1
    assert sample(text, "capcast_alerts_ingested_total", outcome="refused") == 1
    assert sample(text, "capcast_ingest_seconds_count") == 2
    assert sample(text, "capcast_ingest_step_seconds_count", step="plan") == 1
    assert sample(text, "capcast_jobs", kind="smpp-broadcast", state="queued") == body["jobs"]
    assert sample(text, "capcast_jobs", kind="smpp-sms", state="queued") == 0
    assert sample(text, "capcast_database_up") == 1
    link_labels = {"operator": "Alpha", "gateway": "lbsms", "link": "lbsms-1"}
    assert sample(text, "capcast_smpp_link_submitted_total", **link_labels) == 2
    assert sample(text, "capcast_smpp_link_acknowledged_total", **link_labels) == 2
    assert sample(text, "capcast_smpp_link_connected", **link_labels) == 1
    assert sample(text, "capcast_smpp_link_throttled_total", **link_labels) == 0
    assert sample(text, "capcast_smpp_link_latency_seconds", **link_labels) >= 0
    assert sample(text, "capcast_http_requests_total", method="POST", route="/api/v1/alerts",
                  status="201") == 1


async def test_each_app_has_its_own_registry(service: Service) -> None:
    first, second = create_api_app(service), create_api_app(service)
    from dispatcher.api import METRICS
    first[METRICS].observe_ingest("accepted", 0.01)
    assert b'capcast_alerts_ingested_total{outcome="accepted"} 1.0' in first[METRICS].render()
    assert b"capcast_alerts_ingested_total{" not in second[METRICS].render()


# -- cancel and drills (dispatcher.drills) ---------------------------------------------------


async def test_cancel_an_alert(client: Client, store: Store) -> None:
    status, body, _ = await post_cap(client)
    assert status == 201
    alert_id = body["id"]
    path = f"/api/v1/alerts/{alert_id}/cancel"
    for token in ("other_ingest", "beta-noc", "alpha-noc"):
        response = await client.post(path, headers=auth(token))
        assert response.status == 403, token
        assert_error(await response.json(), "forbidden")
    response = await client.post(path, json={"colour": "red"}, headers=auth("dwd-duty"))
    assert response.status == 400
    assert assert_error(await response.json(), "bad-json")["field"] == "colour"
    assert (await store.get_alert(alert_id)).state is AlertState.PLANNED

    response = await client.post(path, json={"note": "All clear"}, headers=auth("dwd-duty"))
    cancel = await response.json()
    assert response.status == 201, cancel
    assert cancel["outcome"] == "accepted" and cancel["cancelled"] == alert_id
    assert response.headers["Location"].endswith(f"/api/v1/alerts/{cancel['id']}")
    original = await get_json(client, f"/api/v1/alerts/{alert_id}", "dwd_ingest")
    assert original["state"] == "cancelled" and original["stopped_by"] == cancel["id"]
    issued = await get_json(client, f"/api/v1/alerts/{cancel['id']}", "dwd_ingest")
    assert issued["msg_type"] == "Cancel" and issued["parsed"]["note"] == "All clear"

    response = await client.post(path, headers=auth("ops"))
    assert response.status == 409
    assert_error(await response.json(), "already-cancelled")
    response = await client.post("/api/v1/alerts/987654/cancel", headers=auth("ops"))
    assert response.status == 404
    audit = await get_json(client, "/api/v1/audit?action=alert.cancel")
    assert [(e["actor"], e["subject"]) for e in audit["entries"]] == [
        ("dwd-duty", f"alert:{alert_id}")]


DRILL_AREA = {"type": "Polygon",
              "coordinates": [[[7.0, 50.4], [7.2, 50.4], [7.2, 50.5], [7.0, 50.5], [7.0, 50.4]]]}


async def test_drills(client: Client) -> None:
    drill = {"area": DRILL_AREA, "text": "This is a drill of the warning system."}
    for token in ("dwd_ingest", "alpha-noc"):
        response = await client.post("/api/v1/drills", json=drill, headers=auth(token))
        assert response.status == 403
        assert_error(await response.json(), "forbidden")
    for token, request, status, code, field in (
            ("national", drill, 422, "invalid-drill", "authority"),
            ("dwd-duty", {**drill, "colour": 1}, 422, "invalid-drill", "colour"),
            ("dwd-duty", {**drill, "authority": "other@example.gov"}, 403, "forbidden",
             "authority"),
            ("dwd-duty", {"text": "no area"}, 422, "invalid-drill", "area")):
        response = await client.post("/api/v1/drills", json=request, headers=auth(token))
        assert response.status == status, (request, await response.text())
        assert assert_error(await response.json(), code)["field"] == field
    response = await client.post("/api/v1/drills", data=b"{not json", headers=auth("ops"))
    assert response.status == 400
    assert_error(await response.json(), "bad-json")

    response = await client.post("/api/v1/drills", json={**drill, "authority": SENDER},
                                 headers=auth("national"))
    result = await response.json()
    assert response.status == 201, result
    assert result["ingest"]["outcome"] == "accepted" and result["jobs"]["total"] >= 1
    alert = await get_json(client, f"/api/v1/alerts/{result['alert_id']}", "dwd_ingest")
    assert alert["status"] == "Exercise" and alert["source"] == "drill:national"
    audit = await get_json(client, "/api/v1/audit?action=drill.run")
    assert [e["actor"] for e in audit["entries"]] == ["national"]
