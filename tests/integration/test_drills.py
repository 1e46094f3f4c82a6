"""Drills and manager cancels through the real pipeline, PostgreSQL, workers and CBC simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import shapely

from cap.model import Status
from dispatcher.config import AuthoritySettings, Jurisdiction, Settings
from dispatcher.drills import (
    CancelError,
    DrillRequest,
    DrillRequestError,
    cancel_alert,
    run_drill,
)
from dispatcher.pipeline import AuthorityPolicy, Ingest, IngestOutcome
from dispatcher.planner import (
    GatewayKind,
    GatewayPlanInput,
    OperatorPlanInput,
    StatusPolicy,
    TargetingPolicy,
)
from dispatcher.queue import Queue
from dispatcher.service import Service
from dispatcher.store import AlertState, JobState, Store, SubmissionStatus
from dispatcher.worker import CbcRestPort, Worker
from gateways.cbc.client import CbcClient
from gateways.cbc.ecbe import Dialect, EcbeOptions, Operation
from gateways.channels import TEST_CHANNELS
from gateways.simulators.cbc import CbcSimulator
from geo.geocodes import GeocodeRegistry
from geo.index import CellIndex
from geo.synth import synthesize

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
DWD = (CORPUS / "dwd" / "Z_CAP_C_EDZW_20150722094400_PVW_161.xml").read_bytes()
IDENTIFIER = b"2.49.0.1.276.DWD.PVW.1437558240606.161"
SENDER = "CAP@dwd.de"
OTHER = "warn@example.gov"
AHRWEILER_BOX = (6.6, 50.2, 7.6, 50.8)
DRILL_BOX = (6.8, 50.3, 7.4, 50.7)


@cache
def inventories() -> tuple[tuple[CellIndex, str, frozenset[str]], tuple[CellIndex, str]]:
    alpha = synthesize(400, seed=1, bbox=AHRWEILER_BOX, operators=("Alpha",))
    beta = synthesize(200, seed=2, bbox=AHRWEILER_BOX, operators=("Beta",))

    def plmn(inventory: Any) -> str:
        return "-".join(str(inventory.cell_ids[0]).split("-")[:2])

    # Alpha lets exercises reach every other cell of its network, through "cbc" only.
    allowed = frozenset(str(c) for c in sorted(alpha.cell_ids)[::2])
    return ((CellIndex.from_inventory(alpha), plmn(alpha), allowed),
            (CellIndex.from_inventory(beta), plmn(beta)))


def operators() -> tuple[OperatorPlanInput, OperatorPlanInput]:
    (alpha_index, alpha_plmn, allowed), (beta_index, beta_plmn) = inventories()
    gateway = GatewayPlanInput(name="cbc", kind=GatewayKind.CBC_REST, dialect=Dialect.CAPCAST)
    alpha = OperatorPlanInput(name="Alpha", plmn=alpha_plmn, index=alpha_index,
                              gateways=(gateway,),
                              exercise=StatusPolicy(gateways=frozenset({"cbc"}), cells=allowed))
    # Beta configures nothing for exercises: a drill must never reach it.
    beta = OperatorPlanInput(name="Beta", plmn=beta_plmn, index=beta_index,
                             gateways=(gateway,))
    return alpha, beta


def jurisdiction_geometry() -> shapely.Polygon:
    # The Kreis box with a hole: CAP cannot say "except here", the drill must cut around it.
    hole = shapely.box(6.65, 50.22, 6.75, 50.28)  # outside DRILL_BOX
    return shapely.Polygon(shapely.box(*AHRWEILER_BOX).exterior.coords,
                           [hole.exterior.coords])


def registry() -> GeocodeRegistry:
    found = GeocodeRegistry()
    found.add_geometries("NUTS3", {"DEA11": shapely.box(*DRILL_BOX)})
    return found


@pytest.fixture
def jurisdiction_file(tmp_path: Path) -> Path:
    path = tmp_path / "dwd.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {},
         "geometry": shapely.geometry.mapping(jurisdiction_geometry())}]}))
    return path


@pytest.fixture
def service(store: Store, queue: Queue, jurisdiction_file: Path) -> Service:
    statuses = frozenset({Status.ACTUAL, Status.EXERCISE, Status.DRAFT})
    policies = {SENDER: AuthorityPolicy(sender=SENDER, allowed_statuses=statuses,
                                        jurisdiction=jurisdiction_geometry()),
                OTHER: AuthorityPolicy(sender=OTHER, allowed_statuses=statuses)}
    settings = Settings(authorities=(
        AuthoritySettings(sender=SENDER, name="DWD",
                          jurisdiction=Jurisdiction(file=jurisdiction_file)),
        AuthoritySettings(sender=OTHER, name="Other")))
    ops = operators()
    codes = registry()

    def clock() -> datetime:
        return datetime.now(UTC)

    ingest = Ingest(store=store, authorities=policies, operators=ops,
                    targeting=TargetingPolicy(), clock=clock, registry=codes)
    return Service(settings=settings, store=store, queue=queue, ingest=ingest, clock=clock,
                   registry=codes)


def box_geojson(box: tuple[float, float, float, float]) -> dict[str, Any]:
    return shapely.geometry.mapping(shapely.box(*box))


def drill(**extra: Any) -> DrillRequest:
    data: dict[str, Any] = {"text": "Drill: please ignore", "area": box_geojson(DRILL_BOX)}
    data.update(extra)
    if "preset" in extra:
        del data["area"]
    return DrillRequest.from_json(data)


def _iso(moment: datetime) -> bytes:
    return moment.isoformat(timespec="seconds").encode()


def actual_alert(suffix: bytes = b"161", status: bytes = b"Actual") -> bytes:
    """The corpus warning, moved to now so that it is live."""
    now = datetime.now(UTC).replace(microsecond=0)
    return (DWD.replace(b"<sent>2015-07-22T09:24:00+00:00</sent>",
                        b"<sent>" + _iso(now - timedelta(minutes=5)) + b"</sent>")
            .replace(b"2015-07-22T17:00:00+00:00", _iso(now + timedelta(days=1)))
            .replace(IDENTIFIER, IDENTIFIER[:-3] + suffix)
            .replace(b"<status>Actual</status>", b"<status>" + status + b"</status>"))


@contextlib.contextmanager
def no_worker() -> Iterator[None]:
    yield


@contextlib.asynccontextmanager
async def running_worker(queue: Queue) -> AsyncIterator[CbcSimulator]:
    async with CbcSimulator(dialect=Dialect.CAPCAST) as sim, \
            CbcClient(sim.base_url, options=EcbeOptions(dialect=Dialect.CAPCAST), timeout=5.0,
                      connect_timeout=2.0, retries=0, operator="Alpha") as cbc:
        worker = Worker(queue=queue, gateways={("Alpha", "cbc"): CbcRestPort(cbc)},
                        worker_id="w1", lease_seconds=10.0, poll_interval=0.2)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            yield sim
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


# -- drills --------------------------------------------------------------------------------


async def test_drill_is_an_exercise_on_test_channels_and_allowed_cells_only(
        service: Service, store: Store) -> None:
    result = await run_drill(service, drill(), actor="alice", authority=SENDER)
    assert result.ingest.outcome is IngestOutcome.ACCEPTED, result.ingest
    assert result.http_status == 201
    detail = await store.get_alert_detail(result.alert_id)
    assert detail.alert.status == "Exercise" and detail.alert.msg_type == "Alert"
    assert detail.alert.source == "drill:alice"
    assert detail.alert.identifier == result.identifier
    assert b"<status>Exercise</status>" in await store.get_raw(result.alert_id)
    (_, _, allowed), _ = inventories()
    assert detail.jobs, "Alpha allows exercises on some cells of the drill area"
    for job in detail.jobs:
        assert job.operator == "Alpha"  # Beta configures nothing for exercises
        assert job.payload["status"] == "Exercise"
        assert job.payload["message_identifiers"]
        assert set(job.payload["message_identifiers"]) <= TEST_CHANNELS
        assert job.payload["cells"] and set(job.payload["cells"]) <= allowed
    assert result.operators == ("Alpha",)
    assert result.channel == 4381
    assert result.jobs["total"] == len(detail.jobs)
    assert result.jobs["operators"]["Alpha"]["channels"] == [4381]
    assert set(result.timings_ms) >= {"store_raw", "validate", "authorize", "plan", "commit"}
    assert not result.done  # nobody runs the jobs here, and it did not wait
    [entry] = await store.audit_entries(subject=f"alert:{result.alert_id}", action="drill.run")
    assert entry.actor == "alice" and entry.details["outcome"] == "accepted"
    assert result.to_json()["status"] == "Exercise"
    json.dumps(result.to_json())  # JSON-ready


async def test_drill_waits_for_its_jobs_and_reports_each_hop(
        service: Service, store: Store, queue: Queue) -> None:
    async with running_worker(queue) as sim:
        result = await run_drill(service, drill(wait_seconds=20, channel=4398),
                                 actor="alice", authority=SENDER)
    assert result.done, result.jobs
    assert result.jobs["by_state"] == {"succeeded": result.jobs["total"]}
    assert result.jobs["acknowledged"] >= 1
    hops = ("claim", "first_submission", "acknowledged", "total")
    assert all(hop in result.timings_ms for hop in hops), result.timings_ms
    assert all(result.timings_ms[hop] >= 0 for hop in hops)
    ingest_ms = sum(result.ingest.timings_ms.values())
    assert result.timings_ms["total"] >= result.timings_ms["claim"]
    assert result.timings_ms["total"] < 20_000 + ingest_ms
    # What reached the CBC: the state/local test channel asked for, nothing public.
    creates = sim.received(operation=Operation.CREATE)
    assert creates and {r.message_id for r in creates} == {4398}
    detail = await store.get_alert_detail(result.alert_id)
    assert all(s.status is SubmissionStatus.ACKNOWLEDGED for s in detail.submissions)
    assert detail.alert.state is AlertState.DONE


async def test_drill_presets(service: Service, store: Store) -> None:
    by_code = await run_drill(service, drill(preset="NUTS3=DEA11"), actor="bob",
                              authority=SENDER)
    assert by_code.ingest.outcome is IngestOutcome.ACCEPTED, by_code.ingest
    assert by_code.operators == ("Alpha",)
    parsed = (await store.get_alert(by_code.alert_id)).parsed
    assert parsed is not None
    assert parsed["info"][0]["area"][0]["geocode"] == [{"valueName": "NUTS3", "value": "DEA11"}]

    # The jurisdiction has a hole: the drill's polygons go around it, so the pipeline
    # (which refuses areas outside the jurisdiction) accepts it.
    whole = await run_drill(service, drill(preset="jurisdiction"), actor="bob",
                            authority=SENDER)
    assert whole.ingest.outcome is IngestOutcome.ACCEPTED, whole.ingest
    parsed = (await store.get_alert(whole.alert_id)).parsed
    assert parsed is not None
    polygons = parsed["info"][0]["area"][0]["polygon"]
    assert len(polygons) >= 2
    union = shapely.union_all([
        shapely.Polygon([(float(p.split(",")[1]), float(p.split(",")[0]))
                         for p in text.split()]) for text in polygons])
    assert union.symmetric_difference(jurisdiction_geometry()).area < 1e-9

    with pytest.raises(DrillRequestError) as caught:
        await run_drill(service, drill(preset="NUTS3=XX999"), actor="bob", authority=SENDER)
    assert caught.value.field == "preset" and "NUTS3=XX999" in caught.value.message
    with pytest.raises(DrillRequestError) as caught:
        await run_drill(service, drill(preset="jurisdiction"), actor="bob", authority=OTHER)
    assert caught.value.field == "preset" and "no jurisdiction" in caught.value.message


async def test_drill_request_checked_against_the_service(service: Service,
                                                         store: Store) -> None:
    cases: list[tuple[DrillRequest, str | None, str, int]] = [
        (drill(operators=["Alpha", "Gamma"]), SENDER, "operators", 422),
        (drill(), None, "authority", 422),
        (drill(authority="nobody@example.org"), None, "authority", 422),
        (drill(authority=OTHER), SENDER, "authority", 403),
        (drill(channel=4355), SENDER, "channel", 422),
    ]
    for request, authority, field, status in cases:
        with pytest.raises(DrillRequestError) as caught:
            await run_drill(service, request, actor="carol", authority=authority)
        assert (caught.value.field, caught.value.http_status) == (field, status), caught.value
    assert await store.list_alerts() == [], "nothing is stored for a refused request"


async def test_named_operators_are_the_only_ones_planned(service: Service) -> None:
    # Alpha's exercise settings cover the area, but the drill names only Beta.
    everyone = await run_drill(service, drill(), actor="dave", authority=SENDER)
    assert "Alpha" in everyone.operators
    result = await run_drill(service, drill(operators=["beta"]), actor="dave",
                             authority=SENDER)
    assert result.operators == ()
    assert not any("not asked for that got jobs" in note for note in result.notes)
    assert any("asked for that got no job: Beta" in note for note in result.notes)
    alpha = await run_drill(service, drill(operators=["ALPHA"]), actor="dave",
                            authority=SENDER)
    assert alpha.operators == ("Alpha",)


async def test_drill_refused_by_the_pipeline_is_reported(service: Service,
                                                         store: Store) -> None:
    # An area outside the jurisdiction: ingest refuses it, the drill reports why.
    result = await run_drill(service, drill(area=box_geojson((13.0, 52.3, 13.8, 52.7))),
                             actor="erin", authority=SENDER)
    assert result.ingest.outcome is IngestOutcome.REFUSED
    assert result.http_status == 403
    assert result.jobs["total"] == 0 and result.done
    assert any("jurisdiction" in note for note in result.notes)
    assert (await store.get_alert(result.alert_id)).state is AlertState.REFUSED


# -- cancel --------------------------------------------------------------------------------


async def test_cancel_stops_every_broadcast_of_the_alert(service: Service,
                                                          store: Store) -> None:
    original = await service.ingest.submit(actual_alert(), source="api:test",
                                           token_authority=SENDER)
    assert original.outcome is IngestOutcome.ACCEPTED and original.jobs >= 2, original
    result = await cancel_alert(service, original.alert_id, actor="frank",
                                note="sent in error")
    assert result.outcome is IngestOutcome.ACCEPTED, result
    assert result.http_status == 201

    cancelled = await store.get_alert_detail(original.alert_id)
    assert cancelled.alert.state is AlertState.CANCELLED
    assert cancelled.alert.stopped_by == result.alert_id
    assert all(job.state is JobState.CANCELLED for job in cancelled.jobs)

    cancel = await store.get_alert_detail(result.alert_id)
    assert cancel.alert.msg_type == "Cancel" and cancel.alert.status == "Actual"
    assert cancel.alert.sender == SENDER and cancel.alert.source == "cancel:frank"
    assert [r.referenced_id for r in cancel.references] == [original.alert_id]
    assert "references-unknown" not in cancel.alert.flags
    # One stop job per operator that had broadcasts, each naming the alert it stops.
    assert {job.operator for job in cancel.jobs} == {j.operator for j in cancelled.jobs}
    for job in cancel.jobs:
        assert job.payload["action"] == "stop"
        assert [ref["identifier"] for ref in job.payload["supersedes"]] == [
            cancelled.alert.identifier]
    [entry] = await store.audit_entries(subject=f"alert:{original.alert_id}",
                                        action="alert.cancel")
    assert entry.actor == "frank" and entry.details["cancel_alert_id"] == result.alert_id

    with pytest.raises(CancelError) as twice:
        await cancel_alert(service, original.alert_id, actor="frank")
    assert (twice.value.http_status, twice.value.code) == (409, "already-cancelled")
    with pytest.raises(CancelError) as of_cancel:
        await cancel_alert(service, result.alert_id, actor="frank")
    assert (of_cancel.value.http_status, of_cancel.value.code) == (422, "not-cancellable")


async def test_cancel_of_a_drill_is_an_exercise(service: Service, store: Store) -> None:
    drilled = await run_drill(service, drill(), actor="gina", authority=SENDER)
    result = await cancel_alert(service, drilled.alert_id, actor="gina")
    assert result.outcome is IngestOutcome.ACCEPTED, result
    cancel = await store.get_alert(result.alert_id)
    assert (cancel.status, cancel.msg_type) == ("Exercise", "Cancel")
    assert (await store.get_alert(drilled.alert_id)).state is AlertState.CANCELLED


async def test_cancel_refusals(service: Service, store: Store) -> None:
    with pytest.raises(CancelError) as unknown:
        await cancel_alert(service, 999_999, actor="hal")
    assert (unknown.value.http_status, unknown.value.code) == (404, "not-found")

    refused = await service.ingest.submit(actual_alert(b"162"), source="api:test",
                                          token_authority=OTHER)
    assert refused.outcome is IngestOutcome.REFUSED
    with pytest.raises(CancelError) as not_accepted:
        await cancel_alert(service, refused.alert_id, actor="hal")
    assert (not_accepted.value.http_status, not_accepted.value.code) == (409, "not-accepted")

    draft = await service.ingest.submit(actual_alert(b"163", b"Draft"), source="api:test",
                                        token_authority=SENDER)
    assert draft.outcome is IngestOutcome.ACCEPTED, draft
    with pytest.raises(CancelError) as never_sent:
        await cancel_alert(service, draft.alert_id, actor="hal")
    assert (never_sent.value.http_status, never_sent.value.code) == (422, "not-cancellable")
    # Nothing was submitted for the refused cancels.
    assert len(await store.list_alerts()) == 2
