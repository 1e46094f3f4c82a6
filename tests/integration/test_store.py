"""The store against a real PostgreSQL: raw-first ingest, idempotency, the outbox, reads, audit."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from cap.parse import parse_alert
from cap.serialize import serialize
from cap.validate import validate
from dispatcher.errors import DatabaseUnavailable, NotFound, StateConflict, StoreError
from dispatcher.queue import NewSubmission, Queue, SubmissionResult
from dispatcher.store import (
    AlertState,
    JobKind,
    JobState,
    NewJob,
    Outcome,
    PresenceEntry,
    Refusal,
    Store,
    StoredAlert,
    SubmissionStatus,
    ValidationResult,
    create_pool,
    redact_url,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cap"
SENDER = "warnings@example.gov"
SENT = "2024-05-01T10:00:00+02:00"


def cap_xml(identifier: str = "EX-1", *, sender: str = SENDER, sent: str = SENT,
            headline: str = "Flood warning", status: str = "Actual", msg_type: str = "Alert",
            references: str | None = None, expires: str = "2024-05-01T18:00:00+02:00") -> bytes:
    refs = f"<references>{references}</references>" if references else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{sender}</sender><sent>{sent}</sent>
  <status>{status}</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
  <info><category>Met</category><event>Flood</event><urgency>Immediate</urgency>
    <severity>Severe</severity><certainty>Observed</certainty><expires>{expires}</expires>
    <headline>{headline}</headline>
    <area><areaDesc>Riverside</areaDesc>
      <polygon>52.0,13.0 52.0,13.2 52.2,13.2 52.2,13.0 52.0,13.0</polygon></area>
  </info>
</alert>""".encode()


async def ingest(store: Store, raw: bytes, *, source: str = "api:test",
                 refusal: Refusal | None = None) -> ValidationResult:
    """The pipeline's first steps: bytes first, then parse + validate, then the key."""
    stored = await store.insert_raw_alert(raw, source=source)
    report = validate(raw)
    alert = report.alerts[0].alert if len(report.alerts) == 1 else None
    return await store.record_validation(stored.id, alert=alert, findings=report.all_findings,
                                         refusal=refusal)


def job(operator: str = "Telco", kind: JobKind = JobKind.CBC_REST, **kwargs: object) -> NewJob:
    payload = kwargs.pop("payload", {"cells": ["262-01-1-1"], "text": "Flood warning"})
    return NewJob(operator=operator, gateway=f"{operator.lower()}-cbc", kind=kind,
                  payload=payload, **kwargs)  # type: ignore[arg-type]


async def accepted(store: Store, identifier: str = "EX-1", jobs: int = 2) -> StoredAlert:
    result = await ingest(store, cap_xml(identifier))
    assert result.outcome is Outcome.NEW
    done = await store.accept_alert_with_jobs(
        result.alert.id, [job(f"Op{i}") for i in range(jobs)])
    return done.alert


# -- raw first ------------------------------------------------------------------------------


async def test_bytes_are_stored_first_and_verbatim_even_when_not_cap(store: Store) -> None:
    junk = b"\x00\xffnot xml at all <alert"
    raw = await store.insert_raw_alert(junk, source="feed:https://example.org/cap.atom")
    assert raw.sha256 == hashlib.sha256(junk).hexdigest()
    received = await store.get_alert(raw.id)
    assert received.state is AlertState.RECEIVED and received.size == len(junk)
    assert received.key is None and received.source == "feed:https://example.org/cap.atom"

    result = await store.record_validation(raw.id, alert=None,
                                          findings=validate(junk).all_findings)
    assert result.outcome is Outcome.REFUSED
    assert result.alert.state is AlertState.REFUSED
    assert result.alert.refusal is not None and result.alert.refusal.code == "invalid"
    assert result.alert.findings and result.alert.findings[0]["severity"] == "error"
    assert result.alert.findings[0]["code"] in result.alert.refusal.reason
    assert await store.get_raw(raw.id) == junk
    with pytest.raises(StateConflict, match="already validated"):
        await store.record_validation(raw.id, alert=None)
    with pytest.raises(NotFound):
        await store.get_raw(raw.id + 1000)


async def test_a_valid_alert_gets_its_key_and_parsed_form(store: Store) -> None:
    raw = (EXAMPLES / "oasis-severe-thunderstorm.xml").read_bytes()
    result = await ingest(store, raw)
    alert = result.alert
    assert result.outcome is Outcome.NEW and result.alert_id == alert.id
    assert alert.state is AlertState.VALIDATED
    assert alert.key == ("KSTO@NWS.NOAA.GOV", "KSTO1055887203",
                         datetime(2003, 6, 17, 21, 57, tzinfo=UTC))
    assert (alert.status, alert.msg_type, alert.scope) == ("Actual", "Alert", "Public")
    assert alert.parsed is not None and alert.parsed["info"][0]["event"] == "SEVERE THUNDERSTORM"
    assert alert.expires_at == datetime(2003, 6, 17, 23, 0, tzinfo=UTC)
    assert await store.get_raw(alert.id) == raw
    assert (await store.find_by_key(*alert.key)) == alert


# -- idempotency ----------------------------------------------------------------------------


async def test_a_repeat_returns_the_first_alert(store: Store) -> None:
    first = await ingest(store, cap_xml())
    second = await ingest(store, cap_xml())
    assert second.outcome is Outcome.REPEAT
    assert second.alert_id == first.alert.id == second.first_id
    assert second.alert.state is AlertState.DUPLICATE
    assert second.alert.duplicate_of == first.alert.id
    # Both documents are kept; the key has one holder.
    assert await store.get_raw(second.alert.id) == cap_xml()
    holder = await store.find_by_key(SENDER, "EX-1", datetime.fromisoformat(SENT))
    assert holder is not None and holder.id == first.alert.id


async def test_a_reserialized_copy_is_a_repeat_not_a_conflict(store: Store) -> None:
    original = cap_xml()
    copy = serialize(parse_alert(original))
    assert copy != original
    first = await ingest(store, original)
    second = await ingest(store, copy)
    assert second.outcome is Outcome.REPEAT and second.alert_id == first.alert.id


async def test_same_key_other_content_is_a_conflict(store: Store) -> None:
    first = await ingest(store, cap_xml(headline="Flood warning"))
    other = await ingest(store, cap_xml(headline="Flood warning, river rising"))
    assert other.outcome is Outcome.CONFLICT and other.first_id == first.alert.id
    assert other.alert.state is AlertState.REFUSED
    assert other.alert.conflicts_with == first.alert.id
    assert other.alert.refusal is not None and other.alert.refusal.code == "conflict"
    assert str(first.alert.id) in other.alert.refusal.reason


@pytest.mark.parametrize("copies", [2, 5])
async def test_identical_documents_arriving_together_make_one_alert(
        store: Store, copies: int) -> None:
    rounds = 15
    for n in range(rounds):
        raw = cap_xml(f"RACE-{copies}-{n}")
        results = await asyncio.gather(*(ingest(store, raw) for _ in range(copies)))
        outcomes = sorted(r.outcome.value for r in results)
        assert outcomes == ["new"] + ["repeat"] * (copies - 1)
        (new,) = [r for r in results if r.outcome is Outcome.NEW]
        assert {r.alert_id for r in results} == {new.alert.id}
    async with store.pool.acquire() as conn:
        holders = await conn.fetchval(
            "SELECT count(*) FROM alerts WHERE identifier LIKE 'RACE-%' "
            "AND state NOT IN ('duplicate', 'refused')")
        rows = await conn.fetchval("SELECT count(*) FROM alerts WHERE identifier LIKE 'RACE-%'")
    assert (holders, rows) == (rounds, rounds * copies)


async def test_a_refused_alert_does_not_hold_its_key(store: Store) -> None:
    refused = await ingest(store, cap_xml(), refusal=Refusal(code="not-authorized",
                                                             reason="token is for another sender"))
    assert refused.outcome is Outcome.REFUSED and refused.alert.key is not None
    again = await ingest(store, cap_xml())
    assert again.outcome is Outcome.NEW
    # Refusing later (authorization after validation) frees the key too.
    later = await store.refuse_alert(again.alert.id, Refusal(code="outside-jurisdiction",
                                                             reason="area outside"))
    assert later.state is AlertState.REFUSED and later.refusal is not None
    assert (await ingest(store, cap_xml())).outcome is Outcome.NEW
    with pytest.raises(StateConflict, match="cannot be refused: it is refused"):
        await store.refuse_alert(again.alert.id, Refusal(code="x", reason="y"))


async def test_invalid_alert_is_refused_with_its_findings(store: Store) -> None:
    raw = cap_xml().replace(b"<scope>Public</scope>", b"<scope>Everyone</scope>")
    result = await ingest(store, raw)
    assert result.outcome is Outcome.REFUSED
    assert result.alert.refusal is not None and result.alert.refusal.code == "invalid"
    assert "Everyone" in result.alert.refusal.reason
    assert any(f["path"] == "alert/scope" for f in result.alert.findings)


async def test_references_are_resolved_and_unknown_ones_flagged(store: Store) -> None:
    original = await accepted(store, "EX-1")
    update = cap_xml("EX-2", msg_type="Update", sent="2024-05-01T11:00:00+02:00",
                     references=f"{SENDER},EX-1,{SENT} {SENDER},EX-0,2024-05-01T09:00:00+02:00")
    result = await ingest(store, update)
    assert result.outcome is Outcome.NEW
    assert [(r.identifier, r.referenced_id) for r in result.references] == \
        [("EX-1", original.id), ("EX-0", None)]
    assert [r.identifier for r in result.unknown_references] == ["EX-0"]
    assert "unknown_references" in result.alert.flags
    # The missing one arrives late: the reference is resolved then.
    late = await ingest(store, cap_xml("EX-0", sent="2024-05-01T09:00:00+02:00"))
    detail = await store.get_alert_detail(result.alert.id)
    assert [r.referenced_id for r in detail.references] == [original.id, late.alert.id]


# -- the outbox -----------------------------------------------------------------------------


async def test_accepting_writes_the_alert_and_its_jobs_together(store: Store) -> None:
    result = await ingest(store, cap_xml())
    expiry = datetime(2030, 1, 1, tzinfo=UTC)
    jobs = [job("Alpha", expires_at=expiry, lock_key="Alpha:4370"),
            job("Bravo", JobKind.SMPP_SMS, priority=5, max_attempts=3)]
    done = await store.accept_alert_with_jobs(result.alert.id, jobs, plan={"cells": 2},
                                              flags=["area_clipped"], actor="token:dwd")
    assert done.alert.state is AlertState.PLANNED and done.alert.accepted_at is not None
    assert done.alert.plan == {"cells": 2} and "area_clipped" in done.alert.flags
    assert [(j.operator, j.kind, j.state, j.attempts) for j in done.jobs] == [
        ("Alpha", JobKind.CBC_REST, JobState.QUEUED, 0),
        ("Bravo", JobKind.SMPP_SMS, JobState.QUEUED, 0)]
    assert done.jobs[0].expires_at == expiry and done.jobs[0].lock_key == "Alpha:4370"
    assert done.jobs[1].priority == 5 and done.jobs[1].max_attempts == 3
    assert done.jobs[0].payload == {"cells": ["262-01-1-1"], "text": "Flood warning"}
    (entry,) = await store.audit_entries(subject=f"alert:{result.alert.id}")
    assert (entry.actor, entry.action, entry.details["jobs"]) == ("token:dwd", "alert.accepted",
                                                                 2)
    with pytest.raises(StateConflict, match="cannot be accepted: it is planned"):
        await store.accept_alert_with_jobs(result.alert.id, jobs)


async def test_a_failure_while_writing_jobs_leaves_the_alert_unaccepted(store: Store) -> None:
    result = await ingest(store, cap_xml())
    # PostgreSQL's jsonb refuses \u0000: the second job fails inside the transaction,
    # after the alert's row was already updated.
    bad = [job("Alpha"), job("Bravo", payload={"text": "nul \u0000 byte"})]
    with pytest.raises(StoreError, match="accept_alert_with_jobs"):
        await store.accept_alert_with_jobs(result.alert.id, bad)
    alert = await store.get_alert(result.alert.id)
    assert alert.state is AlertState.VALIDATED and alert.accepted_at is None
    detail = await store.get_alert_detail(result.alert.id)
    assert detail.jobs == () and await store.audit_entries() == []
    good = await store.accept_alert_with_jobs(result.alert.id, [job("Alpha")])
    assert good.alert.state is AlertState.PLANNED and len(good.jobs) == 1


async def test_an_alert_with_nothing_to_send_is_accepted_without_jobs(store: Store) -> None:
    result = await ingest(store, cap_xml(status="Draft"))
    done = await store.accept_alert_with_jobs(result.alert.id, [])
    assert done.alert.state is AlertState.ACCEPTED and done.jobs == ()
    assert done.alert.finished_at is not None


async def test_only_validated_alerts_can_be_accepted(store: Store) -> None:
    raw = await store.insert_raw_alert(cap_xml(), source="api:test")
    with pytest.raises(StateConflict, match="it is received"):
        await store.accept_alert_with_jobs(raw.id, [job()])
    with pytest.raises(NotFound):
        await store.accept_alert_with_jobs(raw.id + 99, [job()])


async def test_a_cancel_stops_the_referenced_alert_in_the_same_transaction(
        store: Store, queue: Queue) -> None:
    first = await accepted(store, "EX-1", jobs=3)
    (running,) = await queue.claim("worker-a", limit=1)
    cancel = await ingest(store, cap_xml("EX-1-C", msg_type="Cancel",
                                         sent="2024-05-01T12:00:00+02:00",
                                         references=f"{SENDER},EX-1,{SENT}"))
    done = await store.accept_alert_with_jobs(cancel.alert.id, [job("Op0")],
                                              stop_alerts=[first.id])
    assert len(done.stopped_jobs) == 3 and done.stopped_alerts == (first.id,)
    stopped = await store.get_alert_detail(first.id)
    assert stopped.alert.state is AlertState.CANCELLED
    assert stopped.alert.stopped_by == cancel.alert.id
    assert {j.state for j in stopped.jobs} == {JobState.CANCELLED}
    assert {j.last_error for j in stopped.jobs} == {f"stopped by alert {cancel.alert.id}"}
    from dispatcher.errors import JobStopped

    with pytest.raises(JobStopped, match="cancelled"):
        await queue.heartbeat(running)


# -- reading --------------------------------------------------------------------------------


async def test_list_and_search_alerts(store: Store) -> None:
    ids = []
    for n in range(5):
        status = "Exercise" if n % 2 else "Actual"
        sender = "other@example.org" if n == 4 else SENDER
        ids.append((await ingest(store, cap_xml(f"L-{n}", status=status,
                                                sender=sender))).alert.id)
    assert [a.id for a in await store.list_alerts()] == ids[::-1]
    assert [a.id for a in await store.list_alerts(status="Exercise")] == [ids[3], ids[1]]
    assert [a.id for a in await store.list_alerts(sender="other@example.org")] == [ids[4]]
    page = await store.list_alerts(limit=2)
    assert [a.id for a in page] == [ids[4], ids[3]]
    assert [a.id for a in await store.list_alerts(before_id=page[-1].id, limit=2)] == \
        [ids[2], ids[1]]
    await store.accept_alert_with_jobs(ids[0], [job()])
    assert [a.id for a in await store.list_alerts(states=[AlertState.PLANNED])] == [ids[0]]
    now = (await store.get_alert(ids[4])).received_at
    assert len(await store.list_alerts(since=now)) >= 1
    assert await store.list_alerts(until=now - timedelta(hours=1)) == []


async def test_alert_detail_has_jobs_submissions_and_receipts(store: Store,
                                                              queue: Queue) -> None:
    alert = await accepted(store, jobs=1)
    (claimed,) = await queue.claim("w1")
    ids = await queue.record_submissions(claimed, [NewSubmission(item="+4915100000001#1",
                                                                 sequence_number=7),
                                                   NewSubmission(item="+4915100000002#1",
                                                                 sequence_number=8)])
    # One receipt overtakes its answer; the other comes after it.
    early = await store.record_receipt(operator="Op0", gateway="op0-cbc", message_id="m-1",
                                       state="DELIVRD", raw={"stat": "DELIVRD"})
    assert early.submission_id is None
    await queue.settle_submissions([
        SubmissionResult(id=ids[0], status=SubmissionStatus.ACKNOWLEDGED, message_id="m-1"),
        SubmissionResult(id=ids[1], status=SubmissionStatus.ACKNOWLEDGED, message_id="m-2")])
    late = await store.record_receipt(operator="Op0", gateway="op0-cbc", message_id="m-2",
                                      state="DELIVRD")
    assert late.submission_id == ids[1]
    await queue.complete(claimed, result={"submitted": 2})
    detail = await store.get_alert_detail(alert.id)
    assert detail.alert.state is AlertState.DONE
    assert [j.state for j in detail.jobs] == [JobState.SUCCEEDED]
    assert [(s.item, s.sequence_number, s.status, s.message_id) for s in detail.submissions] == [
        ("+4915100000001#1", 7, SubmissionStatus.ACKNOWLEDGED, "m-1"),
        ("+4915100000002#1", 8, SubmissionStatus.ACKNOWLEDGED, "m-2")]
    assert sorted((r.message_id, r.submission_id) for r in detail.receipts) == \
        [("m-1", ids[0]), ("m-2", ids[1])]


# -- authorities, presence, inventory, audit ------------------------------------------------


async def test_authorities_are_upserted_and_linked_to_alerts(store: Store) -> None:
    first = await store.upsert_authority(sender=SENDER, display_name="Weather",
                                         allowed_statuses=["Actual", "Exercise"])
    again = await store.upsert_authority(sender=SENDER, display_name="Weather Service",
                                         profile="cap-cp", signature_required=True,
                                         jurisdiction={"type": "Polygon"})
    assert again.id == first.id and again.display_name == "Weather Service"
    assert again.allowed_statuses == ("Actual", "Exercise") or again.allowed_statuses == ()
    assert again.signature_required and again.jurisdiction == {"type": "Polygon"}
    assert await store.get_authority(SENDER) == again
    assert await store.get_authority("nobody") is None
    assert [a.sender for a in await store.list_authorities()] == [SENDER]
    assert (await ingest(store, cap_xml())).alert.authority_id == first.id


async def test_presence_upserts_keep_the_newest_report(store: Store) -> None:
    t0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
    await store.upsert_presence("Telco", [
        PresenceEntry(msisdn="491510001", cell_id="c1", reported_at=t0),
        PresenceEntry(msisdn="491510002", cell_id="c1", reported_at=t0),
        PresenceEntry(msisdn="491510002", cell_id="c2", reported_at=t0 + timedelta(minutes=1)),
    ])
    await store.upsert_presence("Telco", [  # late and stale: ignored
        PresenceEntry(msisdn="491510001", cell_id="c9", reported_at=t0 - timedelta(hours=1))])
    await store.upsert_presence("Other", [
        PresenceEntry(msisdn="491510001", cell_id="c1", reported_at=t0)])
    assert [(p.msisdn, p.cell_id) for p in await store.presence_in_cells("Telco", ["c1", "c2"])] \
        == [("491510001", "c1"), ("491510002", "c2")]
    assert await store.presence_in_cells("Telco", ["c9"]) == []
    assert [p.msisdn for p in await store.presence_in_cells(
        "Telco", ["c1", "c2"], since=t0 + timedelta(seconds=30))] == ["491510002"]
    assert await store.prune_presence("Telco", t0 + timedelta(seconds=30)) == 1
    assert await store.count_presence("Telco") == 1 and await store.count_presence("Other") == 1


async def test_presence_bulk_load_replaces_or_merges(store: Store) -> None:
    t0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
    n = 50_000
    rows = [(f"49151{i:07d}", f"cell-{i % 500}", t0) for i in range(n)]
    assert await store.load_presence("Telco", rows) == n
    assert await store.count_presence("Telco") == n
    assert len(await store.presence_in_cells("Telco", ["cell-7", "cell-8"])) == 200
    # A fresh snapshot replaces the old one entirely.
    snapshot = [("491519999999", "cell-1", t0), ("491519999999", "cell-2",
                                                 t0 + timedelta(seconds=5))]
    assert await store.load_presence("Telco", snapshot) == 2
    assert [(p.msisdn, p.cell_id) for p in await store.presence_in_cells(
        "Telco", ["cell-1", "cell-2"])] == [("491519999999", "cell-2")]
    # Merging keeps what is there and the newer report wins.
    await store.load_presence("Telco", [("491510000000", "cell-3", t0),
                                        ("491519999999", "cell-4", t0)], replace=False)
    assert sorted((p.msisdn, p.cell_id) for p in await store.presence_in_cells(
        "Telco", ["cell-2", "cell-3", "cell-4"])) == [("491510000000", "cell-3"),
                                                      ("491519999999", "cell-2")]


async def test_inventory_versions(store: Store) -> None:
    v1 = await store.add_inventory_version(operator="Telco", path="/data/telco-1.parquet",
                                           sha256="a" * 64, cell_count=1000)
    v2 = await store.add_inventory_version(operator="Telco", path="/data/telco-2.parquet",
                                           sha256="b" * 64, cell_count=1200)
    staged = await store.add_inventory_version(operator="Telco", path="/data/telco-3.parquet",
                                               sha256="c" * 64, cell_count=5, activate=False)
    other = await store.add_inventory_version(operator="Other", path="/data/o.parquet",
                                              sha256="d" * 64, cell_count=7)
    assert (v1.version, v2.version, staged.version, other.version) == (1, 2, 3, 1)
    assert (await store.active_inventory("Telco")) == v2
    assert [(v.version, v.active) for v in await store.list_inventory_versions("Telco")] == \
        [(1, False), (2, True), (3, False)]
    back = await store.activate_inventory_version("Telco", 1)
    assert back.active and (await store.active_inventory("Telco")) == back
    assert (await store.active_inventory("Other")) == other
    with pytest.raises(NotFound, match="Telco v9"):
        await store.activate_inventory_version("Telco", 9)
    assert (await store.active_inventory("Telco")) == back  # the failed switch changed nothing
    assert await store.active_inventory("Nobody") is None


async def test_concurrent_inventory_versions_get_distinct_numbers(store: Store) -> None:
    made = await asyncio.gather(*(store.add_inventory_version(
        operator="Telco", path=f"/data/{i}", sha256="e" * 64, cell_count=i) for i in range(6)))
    assert sorted(v.version for v in made) == [1, 2, 3, 4, 5, 6]
    assert sum(v.active for v in await store.list_inventory_versions("Telco")) == 1


async def test_audit_log_is_append_only(store: Store) -> None:
    entry = await store.audit(actor="admin:ops", action="token.created", subject="token:dwd",
                              details={"role": "authority"})
    assert entry.details == {"role": "authority"} and entry.at.tzinfo is not None
    async with store.pool.acquire() as conn:
        for statement in ("UPDATE audit_log SET actor = 'someone else'",
                          "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
    assert await store.audit_entries() == [entry]
    second = await store.audit(actor="admin:ops", action="token.revoked", subject="token:dwd")
    assert await store.audit_entries(subject="token:dwd") == [second, entry]
    assert await store.audit_entries(action="token.created") == [entry]


# -- errors ---------------------------------------------------------------------------------


async def test_unreachable_database_names_the_url_without_its_password() -> None:
    url = "postgresql://capcast:s3cret-pw@127.0.0.1:9/capcast"
    with pytest.raises(DatabaseUnavailable) as caught:
        await create_pool(url, timeout=5)
    message = str(caught.value)
    assert "postgresql://capcast:***@127.0.0.1:9/capcast" in message
    assert "s3cret-pw" not in message and "refused" in message.lower()
    assert caught.value.url == redact_url(url) and caught.value.operation == "connect"
    assert isinstance(caught.value.__cause__, OSError)


async def test_missing_database_is_named(database_url: str) -> None:
    from .conftest import with_database

    url = with_database(database_url, "capcast_no_such_db")
    with pytest.raises(DatabaseUnavailable, match='"capcast_no_such_db" does not exist'):
        await create_pool(url, timeout=5)


async def test_a_connection_lost_mid_transaction_is_translated_and_changes_nothing(
        store: Store, database_url: str) -> None:
    result = await ingest(store, cap_xml())
    blocker = await asyncpg.connect(database_url)
    try:
        async with blocker.transaction():
            await blocker.execute("SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE",
                                  result.alert.id)
            accepting = asyncio.create_task(
                store.accept_alert_with_jobs(result.alert.id, [job()]))
            waiting = None
            for _ in range(200):  # until the store's backend waits for our lock
                waiting = await blocker.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting, "the store never waited for the lock"
            await blocker.execute("SELECT pg_terminate_backend($1)", waiting)
            with pytest.raises(DatabaseUnavailable, match="accept_alert_with_jobs") as caught:
                await accepting
    finally:
        await blocker.close()
    assert caught.value.operation == "accept_alert_with_jobs"
    assert isinstance(caught.value.__cause__, asyncpg.PostgresError | asyncpg.InterfaceError)
    # Nothing was half-written, and the pool recovers by itself.
    alert = await store.get_alert(result.alert.id)
    assert alert.state is AlertState.VALIDATED
    assert (await store.get_alert_detail(result.alert.id)).jobs == ()


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql://postgres:@/capcast?host=/tmp/x", "postgresql://postgres@/capcast?host=/tmp/x"),
    ("postgresql:///db?user=u&password=pw&host=/s", "postgresql:///db?user=u&password=***&host=/s"),
    ("host=h password=pw dbname=db", "host=h password=*** dbname=db"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
