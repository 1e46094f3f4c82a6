"""The worker's SMPP ports against a real PostgreSQL and the SMSC simulator over loopback."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from cap.model import Reference, Status
from dispatcher.planner import (
    Action,
    BroadcastScope,
    GatewayKind,
    PlannedJob,
    Repetition,
)
from dispatcher.queue import Queue
from dispatcher.smpp_ports import SmppBroadcastPort, SmppSmsPort
from dispatcher.store import (
    Job,
    JobKind,
    JobState,
    NewJob,
    Store,
    Submission,
    SubmissionStatus,
)
from dispatcher.worker import GatewayPort, Worker
from gateways.channels import GeographicalScope, SerialNumber
from gateways.compose import BroadcastText, SmsText, TextSource
from gateways.errors import LocalProtocolError
from gateways.simulators.smsc import SmscConfig, SmscSimulator
from gateways.smpp import codec
from gateways.smpp.client import LinkConfig, SmppClient
from gateways.text import cbs_pages, sms_segments

from .test_store import cap_xml, ingest

OPERATOR = "Telco"
BROADCAST_GW = "bc"
SMS_GW = "sms"
CELLS = tuple(f"262-01-100-{i}" for i in range(50))
TARGETED = CELLS[:30]
#: A large area: its broadcast_area_identifier TLVs alone take about 240 KB.
LARGE = tuple(f"262-01-{2000 + i // 1000}-{i}" for i in range(12_000))
_alerts = itertools.count()


def now() -> datetime:
    return datetime.now(UTC)


def link(port: int, *, version: int = 0x34, **overrides: object) -> LinkConfig:
    options: dict[str, object] = {
        "host": "127.0.0.1", "port": port, "system_id": "capcast", "password": "pw",
        "interface_version": version, "window": 10, "reconnect_initial": 0.05,
        "reconnect_max": 0.2, "response_timeout": 2.0, "throttle_backoff_initial": 0.02,
        "throttle_backoff_max": 0.2}
    options.update(overrides)
    return LinkConfig(**options)  # type: ignore[arg-type]


def serial(code: int, update: int = 0) -> SerialNumber:
    return SerialNumber(geo_scope=GeographicalScope.PLMN_WIDE, message_code=code,
                        update_number=update)


def broadcast_job(action: Action, mids: Sequence[int], *, code: int, update: int = 0,
                  cells: Sequence[str] = TARGETED, expires_at: datetime | None = None,
                  n: int = 0) -> PlannedJob:
    texts = () if action is Action.STOP else tuple(
        BroadcastText(language="en", text=f"Flood warning on {mid}, update {update}",
                      source=TextSource.COMPOSED, shortened=False,
                      pages=cbs_pages(f"Flood warning on {mid}, update {update}", language="en"),
                      message_identifier=mid, additional_language=False, expires=None)
        for mid in mids)
    return PlannedJob(
        key=f"{OPERATOR}/{BROADCAST_GW}/{action.value}" + (f"/{n}" if n else ""),
        alert=Reference(sender="test@example.org", identifier="X", sent=now()),
        status=Status.ACTUAL, operator=OPERATOR, plmn="262-01", gateway=BROADCAST_GW,
        kind=GatewayKind.SMPP_BROADCAST, action=action, scope=BroadcastScope.CELLS,
        cells=tuple(sorted(cells)), recipients_from_presence=False,
        message_identifiers=tuple(mids), serial_number=serial(code, update), texts=texts,
        repetition=None if action is Action.STOP else Repetition(period_seconds=120, count=0),
        expires_at=expires_at or now() + timedelta(hours=1))


def sms_text(language: str, text: str) -> SmsText:
    return SmsText(language=language, text=text, source=TextSource.COMPOSED, shortened=False,
                   segments_preview=sms_segments(text, reference=0), expires=None)


EN = sms_text("en", "Flood warning: move to higher ground now.")
# Greek needs UCS-2: more than 70 characters make two segments.
EL = sms_text("el", "Προειδοποίηση πλημμύρας: μετακινηθείτε τώρα σε υψηλότερο έδαφος. "
                    "Ακολουθήστε τις οδηγίες των αρχών.")


def sms_job(texts: Sequence[SmsText] = (EN,), *, cells: Sequence[str] = TARGETED,
            expires_at: datetime | None = None) -> PlannedJob:
    return PlannedJob(
        key=f"{OPERATOR}/{SMS_GW}/create",
        alert=Reference(sender="test@example.org", identifier="X", sent=now()),
        status=Status.ACTUAL, operator=OPERATOR, plmn="262-01", gateway=SMS_GW,
        kind=GatewayKind.SMPP_SMS, action=Action.CREATE, scope=BroadcastScope.CELLS,
        cells=tuple(sorted(cells)), recipients_from_presence=True, message_identifiers=(),
        serial_number=None, texts=tuple(texts), repetition=None,
        expires_at=expires_at or now() + timedelta(hours=1))


async def enqueue(store: Store, planned: Sequence[PlannedJob]) -> list[Job]:
    """One accepted alert with these jobs, lock keys as the pipeline sets them."""
    result = await ingest(store, cap_xml(f"SMPP-{next(_alerts)}"))
    jobs = [NewJob(operator=p.operator, gateway=p.gateway, kind=JobKind(p.kind.value),
                   payload=p.to_json(), expires_at=p.expires_at,
                   lock_key=(f"{p.operator}:{p.gateway}:{p.serial_number.message_code}"
                             if p.serial_number is not None else None))
            for p in planned]
    return list((await store.accept_alert_with_jobs(result.alert.id, jobs)).jobs)


async def drain(worker: Worker, queue: Queue, jobs: Sequence[Job], timeout: float = 20.0) -> None:
    """Run the worker until every job has finished (retries included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        states = [(await queue.get_job(j.id)).state for j in jobs]
        if all(s.finished for s in states):
            return
        assert loop.time() < deadline, f"jobs did not finish: {states}"
        if await worker.run_once() == 0:
            await asyncio.sleep(0.05)


def make_worker(queue: Queue, ports: dict[tuple[str, str], GatewayPort], name: str = "w1",
                *, lease_seconds: float = 5.0,
                clock: Callable[[], datetime] = now) -> Worker:
    return Worker(queue=queue, gateways=ports, worker_id=name, lease_seconds=lease_seconds,
                  clock=clock)


def msisdn(i: int) -> str:
    return f"4915100{i:06d}"


async def load_presence(store: Store, *, per_cell: int = 10, stale: int = 0) -> set[str]:
    """``per_cell`` subscribers in each of CELLS; returns those fresh in TARGETED.

    The first ``stale`` subscribers of the targeted cells were reported two days ago.
    """
    fresh = now() - timedelta(minutes=5)
    rows, inside = [], set()
    for c, cell in enumerate(CELLS):
        for k in range(per_cell):
            i = c * per_cell + k
            old = cell in TARGETED and i < stale
            rows.append((msisdn(i), cell, fresh - timedelta(days=2) if old else fresh))
            if cell in TARGETED and not old:
                inside.add(msisdn(i))
    await store.load_presence(OPERATOR, rows)
    return inside


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    async with SmscSimulator(SmscConfig(dlr_delay=0.05, seed=7)) as sim:
        yield sim


def broadcasts_by_channel(sim: SmscSimulator) -> Counter[int]:
    return Counter(r.pdu.content_type.content_type for r in sim.records("broadcast_sm")
                   if isinstance(r.pdu, codec.BroadcastSm) and r.pdu.content_type is not None)


def cancelled_ids(sim: SmscSimulator) -> list[str]:
    return [r.pdu.message_id for r in sim.records("cancel_broadcast_sm")
            if isinstance(r.pdu, codec.CancelBroadcastSm)]


# -- cell broadcast -------------------------------------------------------------------------


async def test_broadcast_create_replace_stop(store: Store, queue: Queue,
                                             smsc: SmscSimulator) -> None:
    mids = (4370, 4383)
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        port = SmppBroadcastPort(client, queue=queue, source="CAPCAST")
        worker = make_worker(queue, {(OPERATOR, BROADCAST_GW): port})

        # Create: one broadcast_sm per message identifier, to the job's cells.
        created = await enqueue(store, [broadcast_job(Action.CREATE, mids, code=17)])
        await drain(worker, queue, created)
        assert broadcasts_by_channel(smsc) == Counter(mids)
        first: dict[int, str] = {}
        for sub in await queue.submissions(created[0].id):
            assert sub.status is SubmissionStatus.ACKNOWLEDGED
            assert sub.details is not None and sub.details["operation"] == "create"
            assert sub.details["serial_number"] == serial(17).pack()
            assert sub.message_id is not None and sub.message_id in smsc.broadcasts
            first[sub.details["message_id"]] = sub.message_id
        assert sorted(first) == sorted(mids)
        for record in smsc.records("broadcast_sm"):
            pdu = record.pdu
            assert isinstance(pdu, codec.BroadcastSm)
            assert sorted(a.name or "" for a in pdu.areas) == sorted(TARGETED)
            assert pdu.frequency_interval is not None
            assert pdu.frequency_interval.total_seconds == 120 and pdu.rep_num == 0
            assert pdu.validity_period  # the job's expiry

        # Update: the replace cancels each earlier broadcast, then broadcasts the new
        # version; the stop for the cells that left finds nothing more on the air.
        left = TARGETED[20:]
        update = await enqueue(store, [
            broadcast_job(Action.REPLACE, mids, code=17, update=1, cells=TARGETED[:20]),
            broadcast_job(Action.STOP, mids, code=17, update=0, cells=left, n=1)])
        await drain(worker, queue, update)
        assert [(await queue.get_job(j.id)).state for j in update] == [JobState.SUCCEEDED] * 2
        assert sorted(cancelled_ids(smsc)) == sorted(first.values())
        assert broadcasts_by_channel(smsc) == Counter(mids * 2)
        commands = [r.pdu.command for r in smsc.records()
                    if r.pdu.command in ("broadcast_sm", "cancel_broadcast_sm")]
        assert commands == ["broadcast_sm"] * 2 + ["cancel_broadcast_sm", "broadcast_sm"] * 2
        replaced = {s.details["message_id"]: s.message_id or ""
                    for s in await queue.submissions(update[0].id)
                    if s.details is not None and s.details["operation"] == "replace"}
        assert sorted(replaced) == sorted(mids)
        for mid in mids:
            assert smsc.broadcasts[first[mid]].state is codec.MessageState.DELETED
            assert smsc.broadcasts[replaced[mid]].state is codec.MessageState.ENROUTE
        assert await queue.submissions(update[1].id) == []

        # Cancel: stops what is on the air; an id the SMSC no longer knows counts as stopped.
        gone = replaced[mids[1]]
        del smsc.broadcasts[gone]
        cancel = await enqueue(store, [broadcast_job(Action.STOP, mids, code=17, update=1)])
        await drain(worker, queue, cancel)
        [job] = [await queue.get_job(j.id) for j in cancel]
        assert job.state is JobState.SUCCEEDED
    assert cancelled_ids(smsc)[2:] == [replaced[mids[0]], gone]
    assert smsc.broadcasts[replaced[mids[0]]].state is codec.MessageState.DELETED
    assert broadcasts_by_channel(smsc) == Counter(mids * 2)
    assert job.result is not None
    assert [d.get("confirmation") for d in job.result["details"]] == \
        ["cancelled", "already-stopped"]


async def test_broadcast_crash_between_record_and_settle(store: Store, queue: Queue,
                                                         smsc: SmscSimulator) -> None:
    mids = (4370, 4371, 4372)
    [job] = await enqueue(store, [broadcast_job(Action.CREATE, mids, code=3)])
    smsc.configure(response_delay=0.5)
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as doomed:
        worker = make_worker(queue, {(OPERATOR, BROADCAST_GW): SmppBroadcastPort(doomed,
                                                                                queue=queue)},
                             "doomed", lease_seconds=1.0)
        running = asyncio.create_task(worker.run_once())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(smsc.records("broadcast_sm")) < 2:  # the second is on its way
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        running.cancel()  # the worker dies before the answer to the second arrives
        with pytest.raises(asyncio.CancelledError):
            await running
    subs = await queue.submissions(job.id)
    assert [s.status for s in subs] == [SubmissionStatus.ACKNOWLEDGED, SubmissionStatus.PENDING]

    smsc.configure(response_delay=0.0)
    await asyncio.sleep(1.1)  # the dead worker's lease runs out
    assert (await queue.housekeeping()).requeued == (job.id,)
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        survivor = make_worker(queue, {(OPERATOR, BROADCAST_GW): SmppBroadcastPort(
            client, queue=queue)}, "survivor")
        await drain(survivor, queue, [job])
    done = await queue.get_job(job.id)
    assert done.state is JobState.SUCCEEDED and done.attempts == 2
    # Only the request in flight at the crash went out twice.
    assert broadcasts_by_channel(smsc) == Counter({4370: 1, 4371: 2, 4372: 1})
    subs = await queue.submissions(job.id)
    assert [(s.item, s.status) for s in subs] == [
        ("create:4370", SubmissionStatus.ACKNOWLEDGED), ("create:4371", SubmissionStatus.IN_DOUBT),
        ("create:4371", SubmissionStatus.ACKNOWLEDGED),
        ("create:4372", SubmissionStatus.ACKNOWLEDGED)]
    assert done.result is not None and done.result["skipped"] == 1


# -- cell broadcast to many cells: several broadcast_sm per message identifier ----------------


def parts_of(sim: SmscSimulator, mid: int) -> list[codec.BroadcastSm]:
    """The broadcast_sm PDUs the simulator received for channel ``mid``, in order."""
    return [r.pdu for r in sim.records("broadcast_sm")
            if isinstance(r.pdu, codec.BroadcastSm) and r.pdu.content_type is not None
            and r.pdu.content_type.content_type == mid]


def area_octets(cells: Sequence[str]) -> int:
    """What the cells' broadcast_area_identifier TLVs take, encoded."""
    return len(codec.encode_tlvs([codec.BroadcastArea.alias(c).to_tlv() for c in cells]))


def check_parts(sim: SmscSimulator, mid: int, cells: Sequence[str], *, limit: int,
                operation: str, subs: Sequence[Submission]) -> list[str]:
    """Every cell went out once, in PDUs under ``limit``, each recorded; their SMSC ids."""
    pdus = parts_of(sim, mid)
    assert len(pdus) > 1
    assert max(len(codec.encode(p)) for p in pdus) <= limit
    # As few PDUs as the cells need, give or take each PDU's other fields.
    assert math.ceil(area_octets(cells) / limit) <= len(pdus) \
        <= math.ceil(area_octets(cells) / (limit - 1000))
    assert [a.name for p in pdus for a in p.areas] == sorted(cells)
    mine = [s for s in subs if s.details is not None and s.details["message_id"] == mid
            and s.details["operation"] == operation]
    assert [s.item for s in mine] == [f"{operation}:{mid}#{n}" for n in range(1, len(pdus) + 1)]
    assert {s.status for s in mine} == {SubmissionStatus.ACKNOWLEDGED}
    ids = [s.message_id or "" for s in mine]
    assert [sim.broadcasts[i].request.areas for i in ids] == [p.areas for p in pdus]
    assert [s.details["cells"] for s in mine if s.details] == [len(p.areas) for p in pdus]
    return ids


async def test_broadcast_to_many_cells_is_split_under_the_pdu_limit(
        store: Store, queue: Queue, smsc: SmscSimulator) -> None:
    mids = (4370, 4383)
    assert area_octets(LARGE) > 3 * codec.MAX_PDU_SIZE
    [job] = await enqueue(store, [broadcast_job(Action.CREATE, mids, code=21, cells=LARGE)])
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        port = SmppBroadcastPort(client, queue=queue, source="CAPCAST")
        await drain(make_worker(queue, {(OPERATOR, BROADCAST_GW): port}), queue, [job])
    done = await queue.get_job(job.id)
    assert done.state is JobState.SUCCEEDED and done.attempts == 1
    subs = await queue.submissions(job.id)
    ids = [check_parts(smsc, mid, LARGE, limit=60_000, operation="create", subs=subs)
           for mid in mids]
    assert done.result is not None and done.result["sent"] == len(subs) == sum(map(len, ids))
    assert smsc.stats().connections == 1  # no PDU refused, no link dropped


async def test_replace_and_stop_cancel_every_part(store: Store, queue: Queue,
                                                  smsc: SmscSimulator) -> None:
    mid, limit = 4370, 20_000
    cells = LARGE[:3000]
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        port = SmppBroadcastPort(client, queue=queue, max_pdu_bytes=limit)
        worker = make_worker(queue, {(OPERATOR, BROADCAST_GW): port})
        created = await enqueue(store, [broadcast_job(Action.CREATE, (mid,), code=5,
                                                      cells=cells)])
        await drain(worker, queue, created)
        first = check_parts(smsc, mid, cells, limit=limit, operation="create",
                            subs=await queue.submissions(created[0].id))

        # Update: the replace cancels every part of the first version, then broadcasts the
        # new one's parts; the stop for the cells that left (the first version's serial
        # number) finds nothing on the air and leaves the new version alone.
        kept, left = cells[:2000], cells[2000:]
        update = await enqueue(store, [
            broadcast_job(Action.REPLACE, (mid,), code=5, update=1, cells=kept),
            broadcast_job(Action.STOP, (mid,), code=5, update=0, cells=left, n=1)])
        await drain(worker, queue, update)
        assert [(await queue.get_job(j.id)).state for j in update] == [JobState.SUCCEEDED] * 2
        assert cancelled_ids(smsc) == first
        commands = [r.pdu.command for r in smsc.records()
                    if r.pdu.command in ("broadcast_sm", "cancel_broadcast_sm")]
        subs = await queue.submissions(update[0].id)
        assert [s.item for s in subs if s.item.startswith("cancel:")] == \
            [f"cancel:{mid}#{n}" for n in range(1, len(first) + 1)]
        second = [s.message_id or "" for s in subs if s.item.startswith("replace:")]
        assert commands == ["broadcast_sm"] * len(first) + ["cancel_broadcast_sm"] * len(first) \
            + ["broadcast_sm"] * len(second)
        assert await queue.submissions(update[1].id) == []
        assert {smsc.broadcasts[i].state for i in first} == {codec.MessageState.DELETED}
        assert {smsc.broadcasts[i].state for i in second} == {codec.MessageState.ENROUTE}
        assert [a.name for i in second for a in smsc.broadcasts[i].request.areas] == \
            sorted(kept)

        # Cancel: stops every part of the version on the air.
        cancel = await enqueue(store, [broadcast_job(Action.STOP, (mid,), code=5, update=1,
                                                     n=2)])
        await drain(worker, queue, cancel)
    assert (await queue.get_job(cancel[0].id)).state is JobState.SUCCEEDED
    assert cancelled_ids(smsc) == first + second
    assert {smsc.broadcasts[i].state for i in second} == {codec.MessageState.DELETED}
    assert [s.item for s in await queue.submissions(cancel[0].id)] == \
        [f"stop:{mid}#{n}" for n in range(1, len(second) + 1)]


async def crash_after(sim: SmscSimulator, port: Callable[[SmppClient], SmppBroadcastPort],
                      queue: Queue, job: Job, command: str, count: int) -> None:
    """Run ``job`` until the ``count``-th ``command`` is sent, then kill the worker.

    The SMSC answers slowly meanwhile, so that request is in flight at the crash;
    afterwards it answers at once and the job's lease runs out.
    """
    sim.configure(response_delay=0.5)
    async with SmppClient([link(sim.port, version=0x50)], operator=OPERATOR) as doomed:
        worker = make_worker(queue, {(OPERATOR, BROADCAST_GW): port(doomed)}, "doomed",
                             lease_seconds=1.0)
        running = asyncio.create_task(worker.run_once())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(sim.records(command)) < count:
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    sim.configure(response_delay=0.0)
    await asyncio.sleep(1.1)
    assert (await queue.housekeeping()).requeued == (job.id,)


async def test_crash_between_parts_resends_only_the_part_in_flight(
        store: Store, queue: Queue, smsc: SmscSimulator) -> None:
    mid = 4370
    [job] = await enqueue(store, [broadcast_job(Action.CREATE, (mid,), code=6, cells=LARGE)])
    await crash_after(smsc, lambda c: SmppBroadcastPort(c, queue=queue), queue, job,
                      "broadcast_sm", 2)
    assert [(s.item, s.status) for s in await queue.submissions(job.id)] == [
        (f"create:{mid}#1", SubmissionStatus.ACKNOWLEDGED),
        (f"create:{mid}#2", SubmissionStatus.IN_DOUBT)]
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        survivor = make_worker(queue, {(OPERATOR, BROADCAST_GW): SmppBroadcastPort(
            client, queue=queue)}, "survivor")
        await drain(survivor, queue, [job])
    done = await queue.get_job(job.id)
    assert done.state is JobState.SUCCEEDED and done.attempts == 2
    # Only the part in flight at the crash went out twice.
    pdus = parts_of(smsc, mid)
    parts = len(pdus) - 1
    assert parts > 2 and pdus[1].areas == pdus[2].areas
    assert len({p.areas for p in pdus}) == parts
    assert [a.name for p in pdus[:2] + pdus[3:] for a in p.areas] == sorted(LARGE)
    subs = await queue.submissions(job.id)
    assert [(s.item, s.status) for s in subs] == [
        (f"create:{mid}#1", SubmissionStatus.ACKNOWLEDGED),
        (f"create:{mid}#2", SubmissionStatus.IN_DOUBT),
        *((f"create:{mid}#{n}", SubmissionStatus.ACKNOWLEDGED) for n in range(2, parts + 1))]
    assert done.result is not None and done.result["skipped"] == 1


async def test_crash_between_stops_cancels_the_rest(store: Store, queue: Queue,
                                                    smsc: SmscSimulator) -> None:
    mid, limit = 4370, 20_000

    def port(client: SmppClient) -> SmppBroadcastPort:
        return SmppBroadcastPort(client, queue=queue, max_pdu_bytes=limit)

    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        worker = make_worker(queue, {(OPERATOR, BROADCAST_GW): port(client)})
        created = await enqueue(store, [broadcast_job(Action.CREATE, (mid,), code=7,
                                                      cells=LARGE[:3000])])
        await drain(worker, queue, created)
    on_air = [s.message_id or "" for s in await queue.submissions(created[0].id)]
    assert len(on_air) > 2
    [job] = await enqueue(store, [broadcast_job(Action.STOP, (mid,), code=7, n=1)])
    await crash_after(smsc, port, queue, job, "cancel_broadcast_sm", 2)
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        await drain(make_worker(queue, {(OPERATOR, BROADCAST_GW): port(client)}, "survivor"),
                    queue, [job])
    done = await queue.get_job(job.id)
    assert done.state is JobState.SUCCEEDED and done.attempts == 2
    # The second part's cancel was in flight: sent again (and found stopped); the first
    # is not sent again, the rest once.
    assert cancelled_ids(smsc) == on_air[:2] + on_air[1:]
    assert {smsc.broadcasts[i].state for i in on_air} == {codec.MessageState.DELETED}
    assert done.result is not None and done.result["skipped"] == 1
    assert [d["confirmation"] for d in done.result["details"]] == \
        ["already-stopped"] + ["cancelled"] * (len(on_air) - 2)


async def test_pdu_limit_too_small_for_one_cell(store: Store, queue: Queue,
                                                smsc: SmscSimulator) -> None:
    planned = broadcast_job(Action.CREATE, (4370,), code=8)
    [text] = planned.texts
    assert isinstance(text, BroadcastText)
    [job] = await enqueue(store, [planned])
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        with pytest.raises(ValueError, match="max_pdu_bytes"):
            SmppBroadcastPort(client, queue=queue, max_pdu_bytes=codec.HEADER.size)
        port = SmppBroadcastPort(client, queue=queue, max_pdu_bytes=150)
        with pytest.raises(LocalProtocolError, match="more than max_pdu_bytes 150"):
            port.split(planned, 4370, text)
        await drain(make_worker(queue, {(OPERATOR, BROADCAST_GW): port}), queue, [job])
    failed = await queue.get_job(job.id)
    # Refused for good: no attempt could do better.
    assert failed.state is JobState.FAILED and failed.attempts == 1
    assert failed.last_error is not None and "max_pdu_bytes 150" in failed.last_error
    assert await queue.submissions(job.id) == [] and smsc.records("broadcast_sm") == []


# -- location-based SMS ---------------------------------------------------------------------


def submitted_to(sim: SmscSimulator) -> Counter[str]:
    return Counter(p.destination_addr for p in sim.submitted())


async def test_sms_to_the_subscribers_present(store: Store, queue: Queue,
                                              smsc: SmscSimulator) -> None:
    inside = await load_presence(store, stale=20)
    [job] = await enqueue(store, [sms_job((EN, EL))])
    segments = EN.segments_preview.count + EL.segments_preview.count
    assert EL.segments_preview.count == 2
    async with SmppClient([link(smsc.port)], operator=OPERATOR) as client:
        port = SmppSmsPort(client, store=store, queue=queue, source="CAPCAST",
                           presence_max_age=timedelta(hours=1), receipt_timeout=5.0,
                           batch_size=64, cell_chunk=7)
        await drain(make_worker(queue, {(OPERATOR, SMS_GW): port}), queue, [job])
    done = await queue.get_job(job.id)
    assert done.state is JobState.SUCCEEDED and done.attempts == 1
    # Exactly the fresh subscribers of the targeted cells, one submit_sm per segment.
    assert submitted_to(smsc) == Counter({m: segments for m in inside})
    assert done.result is not None and done.result["sent"] == 2 * len(inside)
    subs = await queue.submissions(job.id)
    assert len(subs) == 2 * len(inside)
    assert {s.status for s in subs} == {SubmissionStatus.ACKNOWLEDGED}
    assert {s.item for s in subs} == {f"sms:{lang}:{m}" for lang in ("en", "el") for m in inside}
    # Every receipt recorded and linked to its submission (both segments of a Greek one).
    detail = await store.get_alert_detail(done.alert_id)
    assert len(detail.receipts) == len(inside) * segments
    per_submission = Counter(r.submission_id for r in detail.receipts)
    by_id = {s.id: s for s in subs}
    for sub_id, count in per_submission.items():
        assert sub_id is not None
        assert count == (2 if by_id[sub_id].item.startswith("sms:el:") else 1)
    assert {r.state for r in detail.receipts} == {"DELIVRD"}


async def test_sms_without_presence_completes_with_nothing_sent(
        store: Store, queue: Queue, smsc: SmscSimulator) -> None:
    await load_presence(store)
    [job] = await enqueue(store, [sms_job(cells=("262-01-999-1", "262-01-999-2"))])
    async with SmppClient([link(smsc.port)], operator=OPERATOR) as client:
        port = SmppSmsPort(client, store=store, queue=queue, source="CAPCAST")
        await drain(make_worker(queue, {(OPERATOR, SMS_GW): port}), queue, [job])
    done = await queue.get_job(job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.result is not None and done.result["sent"] == 0
    assert "no subscriber present" in done.result["details"][0]["note"]
    assert smsc.submitted() == [] and await queue.submissions(job.id) == []


async def test_sms_throttled_by_the_smsc_still_completes(store: Store, queue: Queue,
                                                         smsc: SmscSimulator) -> None:
    inside = await load_presence(store, per_cell=7)
    smsc.configure(tps=150.0, dlr_delay=None)
    [job] = await enqueue(store, [sms_job()])
    async with SmppClient([link(smsc.port, window=20)], operator=OPERATOR) as client:
        port = SmppSmsPort(client, store=store, queue=queue, source="CAPCAST",
                           registered_delivery=False, batch_size=50)
        await drain(make_worker(queue, {(OPERATOR, SMS_GW): port}), queue, [job], timeout=30)
    done = await queue.get_job(job.id)
    assert done.state is JobState.SUCCEEDED
    stats = smsc.stats()
    assert stats.throttled > 0
    assert stats.accepted == len(inside)  # each accepted once, however often throttled
    assert set(submitted_to(smsc)) == inside
    latest = {s.item: s.status for s in await queue.submissions(job.id)
              if s.status is SubmissionStatus.ACKNOWLEDGED}
    assert len(latest) == len(inside)
    # The job's record shows the throttling it went through: in the attempts' results
    # and in the submissions that failed for it.
    [details] = (done.result or {})["details"]
    failed = [s for s in await queue.submissions(job.id) if s.status is SubmissionStatus.FAILED]
    assert {"resubmitted", "link_throttled"} <= set(details)
    assert details["link_throttled"] > 0 or any("ESME_RTHROTTLED" in (s.error or "")
                                                for s in failed), (details, done.last_error)


async def test_sms_link_dropped_mid_job(store: Store, queue: Queue,
                                        smsc: SmscSimulator) -> None:
    inside = await load_presence(store)
    # The answers to the last window before each drop are lost with the link.
    smsc.configure(disconnect_after=100, response_delay=0.01)
    [job] = await enqueue(store, [sms_job()])
    window = 10
    async with SmppClient([link(smsc.port, window=window)], operator=OPERATOR) as client:
        port = SmppSmsPort(client, store=store, queue=queue, source="CAPCAST",
                           receipt_timeout=0.5, batch_size=50)
        await drain(make_worker(queue, {(OPERATOR, SMS_GW): port}), queue, [job], timeout=30)
    done = await queue.get_job(job.id)
    assert done.state is JobState.SUCCEEDED
    drops = smsc.stats().connections - 1
    assert drops >= 2
    sent = submitted_to(smsc)
    assert set(sent) == inside
    # Nothing twice beyond the windows in flight when the link dropped.
    assert sum(sent.values()) - len(inside) <= drops * window
    assert done.attempts >= 2 and done.last_error is not None
    assert "without an answer" in done.last_error
    subs = await queue.submissions(job.id)
    doubtful = [s.item for s in subs if s.status is SubmissionStatus.IN_DOUBT]
    assert 0 < len(doubtful) <= drops * window
    acknowledged = {s.item for s in subs if s.status is SubmissionStatus.ACKNOWLEDGED}
    assert acknowledged == {f"sms:en:{m}" for m in inside}


async def test_expired_jobs_send_nothing(store: Store, queue: Queue,
                                         smsc: SmscSimulator) -> None:
    await load_presence(store)
    expires = now() + timedelta(hours=1)
    sms, broadcast = await enqueue(store, [
        sms_job(expires_at=expires),
        broadcast_job(Action.CREATE, (4370,), code=9, expires_at=expires)])
    late = expires + timedelta(seconds=1)
    async with SmppClient([link(smsc.port, version=0x50)], operator=OPERATOR) as client:
        ports: dict[tuple[str, str], GatewayPort] = {
            (OPERATOR, SMS_GW): SmppSmsPort(client, store=store, queue=queue, source="C",
                                            clock=lambda: late),
            (OPERATOR, BROADCAST_GW): SmppBroadcastPort(client, queue=queue,
                                                        clock=lambda: late)}
        await drain(make_worker(queue, ports), queue, [sms, broadcast])
    for job in (sms, broadcast):
        current = await queue.get_job(job.id)
        assert current.state is JobState.FAILED
        assert current.last_error is not None and "expired" in current.last_error
        assert await queue.submissions(job.id) == []
    assert smsc.submitted() == [] and smsc.records("broadcast_sm") == []


async def test_sms_expiring_mid_job_stops_recording(store: Store, queue: Queue,
                                                    smsc: SmscSimulator) -> None:
    await load_presence(store)
    expires = now() + timedelta(hours=1)
    [job] = await enqueue(store, [sms_job(expires_at=expires)])
    ticks = itertools.count()

    def clock() -> datetime:
        # The start check and two batches are before the expiry, the rest after it.
        return now() if next(ticks) < 3 else expires

    async with SmppClient([link(smsc.port)], operator=OPERATOR) as client:
        port = SmppSmsPort(client, store=store, queue=queue, source="C", clock=clock,
                           batch_size=40, receipt_timeout=0.0)
        await drain(make_worker(queue, {(OPERATOR, SMS_GW): port}), queue, [job])
    current = await queue.get_job(job.id)
    assert current.state is JobState.FAILED
    assert current.last_error is not None and "expired" in current.last_error
    subs = await queue.submissions(job.id)
    assert len(subs) == 80 and len(smsc.submitted()) == 80
    assert {s.status for s in subs} == {SubmissionStatus.ACKNOWLEDGED}
