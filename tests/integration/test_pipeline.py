"""The ingest pipeline against a real PostgreSQL: raw first, authorization, idempotency, outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import shapely
from shapely.geometry.base import BaseGeometry

from cap.model import Status
from dispatcher.pipeline import (
    AuthorityPolicy,
    Ingest,
    IngestOutcome,
    IngestResult,
    JurisdictionPolicy,
)
from dispatcher.planner import GatewayKind, GatewayPlanInput, OperatorPlanInput, TargetingPolicy
from dispatcher.store import AlertState, Store
from geo.index import CellIndex
from geo.synth import synthesize

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
DWD = (CORPUS / "dwd" / "Z_CAP_C_EDZW_20150722094400_PVW_161.xml").read_bytes()
SENDER = "CAP@dwd.de"
# The alert (Kreis Ahrweiler) was live then: sent 09:24, expires 17:00 UTC.
NOW = datetime(2015, 7, 22, 10, 0, tzinfo=UTC)
AHRWEILER_BOX = (6.6, 50.2, 7.6, 50.8)


@cache
def operator() -> OperatorPlanInput:
    inventory = synthesize(500, seed=1, bbox=AHRWEILER_BOX, operators=("Alpha",))
    index = CellIndex.from_arrays(inventory.cell_ids, inventory.polygons, inventory.operators)
    plmn = "-".join(str(inventory.cell_ids[0]).split("-")[:2])
    return OperatorPlanInput(name="Alpha", plmn=plmn, index=index, languages=("de",),
                             gateways=(GatewayPlanInput(name="cbc",
                                                        kind=GatewayKind.SMPP_BROADCAST),))


def ingest(store: Store, *, jurisdiction: BaseGeometry | None = None,
           on_outside: JurisdictionPolicy = JurisdictionPolicy.REJECT,
           signature_required: bool = False) -> Ingest:
    policy = AuthorityPolicy(sender=SENDER, profile="oasis",
                             allowed_statuses=frozenset({Status.ACTUAL}),
                             jurisdiction=jurisdiction, on_outside=on_outside,
                             signature_required=signature_required)
    return Ingest(store=store, authorities={SENDER: policy}, operators=[operator()],
                  targeting=TargetingPolicy(), clock=lambda: NOW)


async def submit(pipeline: Ingest, raw: bytes = DWD, *,
                 token: str | None = SENDER) -> IngestResult:
    return await pipeline.submit(raw, source="api:test", token_authority=token)


async def test_accepted_alert_has_its_jobs(store: Store) -> None:
    result = await submit(ingest(store))
    assert result.outcome is IngestOutcome.ACCEPTED, result
    assert result.http_status == 201
    assert result.jobs >= 1
    detail = await store.get_alert_detail(result.alert_id)
    assert detail.alert.state is AlertState.PLANNED
    assert len(detail.jobs) == result.jobs
    payload = detail.jobs[0].payload
    assert payload["operator"] == "Alpha" and payload["kind"] == "smpp-broadcast"
    assert payload["cells"], "the alert area (Kreis Ahrweiler) lies in the inventory"
    assert detail.alert.plan is not None and detail.alert.plan["jobs"]
    assert set(result.timings_ms) == {"store_raw", "validate", "authorize", "idempotency",
                                      "plan", "commit"}
    assert await store.get_raw(result.alert_id) == DWD


async def test_invalid_xml_is_refused_but_stored(store: Store) -> None:
    raw = DWD[:500]  # cut off: not well-formed
    result = await submit(ingest(store), raw)
    assert result.outcome is IngestOutcome.REFUSED
    assert result.http_status == 400
    assert result.findings and result.findings[0]["code"]
    assert await store.get_raw(result.stored_id) == raw
    assert (await store.get_alert(result.stored_id)).state is AlertState.REFUSED


async def test_rule_breaking_alert_is_refused_with_findings(store: Store) -> None:
    raw = DWD.replace(b"<urgency>Immediate</urgency>", b"<urgency>Soonish</urgency>")
    result = await submit(ingest(store), raw)
    assert result.outcome is IngestOutcome.REFUSED
    assert result.http_status == 422
    assert any(f["severity"] == "error" and "urgency" in f["path"] for f in result.findings)
    assert await store.get_raw(result.stored_id) == raw


async def test_token_of_another_authority_is_refused(store: Store) -> None:
    result = await submit(ingest(store), token="other@example.gov")
    assert result.outcome is IngestOutcome.REFUSED
    assert result.http_status == 403
    assert result.refusal is not None
    assert result.refusal.reason == "token for other@example.gov cannot publish for CAP@dwd.de"
    assert (await store.get_alert_detail(result.stored_id)).jobs == ()


async def test_unknown_authority_and_missing_token_are_refused(store: Store) -> None:
    raw = DWD.replace(b"<sender>CAP@dwd.de</sender>", b"<sender>nobody@example.org</sender>")
    unknown = await submit(ingest(store), raw, token="nobody@example.org")
    assert unknown.http_status == 403
    assert unknown.refusal is not None and unknown.refusal.code == "unknown-authority"
    anonymous = await submit(ingest(store), token=None)
    assert anonymous.http_status == 401


async def test_disallowed_status_is_refused(store: Store) -> None:
    raw = DWD.replace(b"<status>Actual</status>", b"<status>Exercise</status>")
    result = await submit(ingest(store), raw)
    assert result.outcome is IngestOutcome.REFUSED
    assert result.http_status == 403
    assert result.refusal is not None and result.refusal.code == "status-not-allowed"


async def test_missing_signature_is_refused_when_required(store: Store) -> None:
    result = await submit(ingest(store, signature_required=True))
    assert result.http_status == 403
    assert result.refusal is not None and result.refusal.code == "signature-required"


async def test_area_outside_jurisdiction_is_refused(store: Store) -> None:
    berlin = shapely.box(13.0, 52.3, 13.8, 52.7)
    result = await submit(ingest(store, jurisdiction=berlin))
    assert result.outcome is IngestOutcome.REFUSED
    assert result.refusal is not None and result.refusal.code == "outside-jurisdiction"
    inside = await submit(ingest(store, jurisdiction=shapely.box(*AHRWEILER_BOX)))
    assert inside.outcome is IngestOutcome.ACCEPTED, inside


async def test_area_partly_outside_is_clipped_when_configured(store: Store) -> None:
    # The western half of the Kreis: the plan targets fewer cells, and says why.
    west = shapely.box(6.6, 50.2, 7.0, 50.8)
    whole = await submit(ingest(store))
    whole_cells = {c for j in (await store.get_alert_detail(whole.alert_id)).jobs
                   for c in j.payload["cells"]}
    other = DWD.replace(b"PVW.1437558240606.161", b"PVW.1437558240606.162")
    clipped = await submit(ingest(store, jurisdiction=west,
                                  on_outside=JurisdictionPolicy.CLIP), other)
    assert clipped.outcome is IngestOutcome.ACCEPTED, clipped
    assert "area-clipped-to-jurisdiction" in clipped.flags
    cells = {c for j in (await store.get_alert_detail(clipped.alert_id)).jobs
             for c in j.payload["cells"]}
    assert cells and cells < whole_cells
    rejected = await submit(ingest(store, jurisdiction=west), other.replace(b".162", b".163"))
    assert rejected.refusal is not None and rejected.refusal.code == "outside-jurisdiction"


async def test_repeat_returns_the_first_id(store: Store) -> None:
    pipeline = ingest(store)
    first = await submit(pipeline)
    again = await submit(pipeline)
    assert again.outcome is IngestOutcome.REPEAT
    assert again.http_status == 200
    assert again.alert_id == first.alert_id
    assert again.stored_id != first.stored_id
    assert (await store.get_alert(again.stored_id)).state is AlertState.DUPLICATE
    assert len((await store.get_alert_detail(first.alert_id)).jobs) == first.jobs


async def test_same_key_other_content_conflicts(store: Store) -> None:
    pipeline = ingest(store)
    first = await submit(pipeline)
    other = DWD.replace(b"Amtliche WARNUNG vor HITZE", b"Amtliche WARNUNG vor STARKER HITZE")
    result = await submit(pipeline, other)
    assert result.outcome is IngestOutcome.CONFLICT
    assert result.http_status == 409
    assert result.alert_id != first.alert_id
    assert (await store.get_alert_detail(result.alert_id)).jobs == ()


async def test_identical_concurrent_submits_make_one_alert(store: Store) -> None:
    pipeline = ingest(store)
    results = await asyncio.gather(*(submit(pipeline) for _ in range(4)))
    accepted = [r for r in results if r.outcome is IngestOutcome.ACCEPTED]
    assert len(accepted) == 1
    assert all(r.outcome is IngestOutcome.REPEAT and r.alert_id == accepted[0].alert_id
               for r in results if r is not accepted[0])
    alerts = await store.list_alerts(sender=SENDER)
    planned = [a for a in alerts if a.state is AlertState.PLANNED]
    assert [a.id for a in planned] == [accepted[0].alert_id]


async def test_cancel_stops_the_referenced_alert(store: Store) -> None:
    pipeline = ingest(store)
    first = await submit(pipeline)
    cancel = (DWD.replace(b"PVW.1437558240606.161", b"PVW.1437558240606.999")
              .replace(b"<sent>2015-07-22T09:24:00+00:00</sent>",
                       b"<sent>2015-07-22T09:50:00+00:00</sent>")
              .replace(b"<msgType>Alert</msgType>", b"<msgType>Cancel</msgType>")
              .replace(b"<scope>Public</scope>",
                       b"<scope>Public</scope><references>CAP@dwd.de,"
                       b"2.49.0.1.276.DWD.PVW.1437558240606.161,"
                       b"2015-07-22T09:24:00+00:00</references>"))
    result = await submit(pipeline, cancel)
    assert result.outcome is IngestOutcome.ACCEPTED, result
    detail = await store.get_alert_detail(result.alert_id)
    assert detail.jobs and all(j.payload["action"] == "stop" for j in detail.jobs)
    assert (await store.get_alert(first.alert_id)).state is AlertState.CANCELLED
    assert "references-unknown" not in result.flags


async def test_update_replaces_the_broadcast_with_the_next_serial(store: Store) -> None:
    pipeline = ingest(store)
    first = await submit(pipeline)
    update = (DWD.replace(b"PVW.1437558240606.161", b"PVW.1437558240606.170")
              .replace(b"<sent>2015-07-22T09:24:00+00:00</sent>",
                       b"<sent>2015-07-22T09:40:00+00:00</sent>")
              .replace(b"<msgType>Alert</msgType>", b"<msgType>Update</msgType>")
              .replace(b"<scope>Public</scope>",
                       b"<scope>Public</scope><references>CAP@dwd.de,"
                       b"2.49.0.1.276.DWD.PVW.1437558240606.161,"
                       b"2015-07-22T09:24:00+00:00</references>"))
    result = await submit(pipeline, update)
    assert result.outcome is IngestOutcome.ACCEPTED, result
    before = (await store.get_alert_detail(first.alert_id)).jobs[0].payload
    jobs = (await store.get_alert_detail(result.alert_id)).jobs
    replaced = [j.payload for j in jobs if j.payload["action"] == "replace"]
    assert replaced, [j.payload["action"] for j in jobs]
    assert replaced[0]["message_identifiers"] == before["message_identifiers"]
    assert replaced[0]["serial_number"]["msg_code"] == before["serial_number"]["msg_code"]
    assert replaced[0]["serial_number"]["update_nr"] == before["serial_number"]["update_nr"] + 1
    assert (await store.get_alert(first.alert_id)).state is AlertState.CANCELLED


async def test_alert_left_validated_by_a_crash_is_planned_by_the_sweep(store: Store) -> None:
    # What a crash between validation and commit leaves: the key is held, no plan, no jobs.
    from cap.parse import parse_alert

    stored = await store.insert_raw_alert(DWD, source="api:test")
    await store.record_validation(stored.id, alert=parse_alert(DWD))
    assert (await store.get_alert(stored.id)).state is AlertState.VALIDATED
    pipeline = ingest(store)
    # The sender's retry is a repeat: without the sweep the alert would never be sent.
    assert (await submit(pipeline)).outcome is IngestOutcome.REPEAT

    assert await pipeline.resume_stalled() == [], "too recent: it may still be committing"
    assert await pipeline.resume_stalled(older_than=timedelta(0)) == [stored.id]
    detail = await store.get_alert_detail(stored.id)
    assert detail.alert.state is AlertState.PLANNED
    assert detail.jobs and detail.alert.plan is not None
    assert await pipeline.resume_stalled(older_than=timedelta(0)) == [], "resumed once only"


async def test_a_new_chain_never_takes_a_message_code_another_broadcast_has_on_the_air(
        store: Store) -> None:
    from cap.parse import parse_alert
    from gateways.channels import message_code_for

    original = parse_alert(DWD).identifier
    wanted = message_code_for(SENDER, "first")
    # Another identifier whose hash lands on the same 10-bit code: without the store's
    # codes in use both broadcasts would carry one serial number, and handsets would
    # drop the second as a repeat of the first.
    twin = next(f"twin-{n}" for n in range(100_000)
                if message_code_for(SENDER, f"twin-{n}") == wanted)
    pipeline = ingest(store)
    codes = []
    for identifier in ("first", twin):
        result = await submit(pipeline, DWD.replace(original.encode(), identifier.encode()))
        assert result.outcome is IngestOutcome.ACCEPTED, result
        detail = await store.get_alert_detail(result.alert_id)
        assert detail.alert.plan is not None
        codes.append(detail.alert.plan["serial_number"]["msg_code"])
    assert codes[0] == wanted
    assert codes[1] != wanted

    # Once the first is cancelled its code is free again for a new chain.
    cancel = (DWD.replace(original.encode(), b"cancel-first")
              .replace(b"<sent>2015-07-22T09:24:00+00:00</sent>",
                       b"<sent>2015-07-22T09:50:00+00:00</sent>")
              .replace(b"<msgType>Alert</msgType>", b"<msgType>Cancel</msgType>")
              .replace(b"<scope>Public</scope>",
                       b"<scope>Public</scope><references>CAP@dwd.de,first,"
                       b"2015-07-22T09:24:00+00:00</references>"))
    assert (await submit(pipeline, cancel)).outcome is IngestOutcome.ACCEPTED
    another = next(f"third-{n}" for n in range(100_000)
                   if message_code_for(SENDER, f"third-{n}") == wanted)
    result = await submit(pipeline, DWD.replace(original.encode(), another.encode()))
    detail = await store.get_alert_detail(result.alert_id)
    assert detail.alert.plan is not None
    assert detail.alert.plan["serial_number"]["msg_code"] == wanted
