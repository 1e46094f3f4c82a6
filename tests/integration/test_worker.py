"""Workers against a real PostgreSQL and the CBC simulator over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from cap.model import Status
from dispatcher.pipeline import AuthorityPolicy, Ingest, IngestOutcome
from dispatcher.planner import GatewayKind, GatewayPlanInput, OperatorPlanInput, TargetingPolicy
from dispatcher.queue import Queue
from dispatcher.store import Job, JobState, Store, SubmissionStatus
from dispatcher.worker import CbcRestPort, GatewayPort, Worker
from gateways.cbc.client import CbcClient
from gateways.cbc.ecbe import Dialect, EcbeOptions, Operation, parse_cell_id
from gateways.channels import SerialNumber
from gateways.simulators.cbc import CbcSimulator, Fault, FaultKind, Outcome
from geo.index import CellIndex
from geo.synth import synthesize

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
DWD = (CORPUS / "dwd" / "Z_CAP_C_EDZW_20150722094400_PVW_161.xml").read_bytes()
SENDER = "CAP@dwd.de"
IDENTIFIER = b"2.49.0.1.276.DWD.PVW.1437558240606.161"
AHRWEILER_BOX = (6.6, 50.2, 7.6, 50.8)
OPERATOR = "Alpha"


def _iso(moment: datetime) -> bytes:
    return moment.isoformat(timespec="seconds").encode()


# The corpus alert is from 2015; the queue uses the database's clock, so shift it to now.
NOW = datetime.now(UTC).replace(microsecond=0)
SENT = NOW - timedelta(hours=1)


def alert(*, suffix: bytes = b"161", sent: datetime = SENT, msg_type: bytes = b"Alert",
          references: bool = False) -> bytes:
    raw = (DWD.replace(b"<sent>2015-07-22T09:24:00+00:00</sent>", b"<sent>" + _iso(sent)
                       + b"</sent>")
           .replace(b"2015-07-22T17:00:00+00:00", _iso(NOW + timedelta(days=1)))
           .replace(IDENTIFIER, IDENTIFIER[:-3] + suffix)
           .replace(b"<msgType>Alert</msgType>", b"<msgType>" + msg_type + b"</msgType>"))
    if references:
        raw = raw.replace(b"<scope>Public</scope>",
                          b"<scope>Public</scope><references>CAP@dwd.de," + IDENTIFIER + b","
                          + _iso(SENT) + b"</references>")
    return raw


@cache
def inventory_index() -> tuple[CellIndex, str]:
    inventory = synthesize(500, seed=1, bbox=AHRWEILER_BOX, operators=(OPERATOR,))
    # Every cell, UMTS ones with 28-bit ids included: the CBC scope must name them all.
    assert any(r == "UMTS" for r in inventory.radio)
    index = CellIndex.from_inventory(inventory)
    return index, "-".join(str(inventory.cell_ids[0]).split("-")[:2])


def ingest(store: Store, gateways: Sequence[str]) -> Ingest:
    index, plmn = inventory_index()
    op = OperatorPlanInput(name=OPERATOR, plmn=plmn, index=index, languages=("de",),
                           gateways=tuple(GatewayPlanInput(name=g, kind=GatewayKind.CBC_REST,
                                                           dialect=Dialect.CAPCAST)
                                          for g in gateways))
    policy = AuthorityPolicy(sender=SENDER, profile="oasis",
                             allowed_statuses=frozenset({Status.ACTUAL}))
    return Ingest(store=store, authorities={SENDER: policy}, operators=[op],
                  targeting=TargetingPolicy(), clock=lambda: datetime.now(UTC))


async def accept(pipeline: Ingest, raw: bytes) -> int:
    result = await pipeline.submit(raw, source="api:test", token_authority=SENDER)
    assert result.outcome is IngestOutcome.ACCEPTED, result
    return result.alert_id


def client(sim: CbcSimulator) -> CbcClient:
    # No in-client retries: the queue's retry is what is under test.
    return CbcClient(sim.base_url, options=EcbeOptions(dialect=Dialect.CAPCAST),
                     timeout=5.0, connect_timeout=2.0, retries=0, operator=OPERATOR)


@pytest.fixture
async def sim() -> AsyncIterator[CbcSimulator]:
    async with CbcSimulator(dialect=Dialect.CAPCAST) as simulator:
        yield simulator


def worker(queue: Queue, ports: dict[tuple[str, str], GatewayPort], name: str = "w1") -> Worker:
    return Worker(queue=queue, gateways=ports, worker_id=name, lease_seconds=10.0)


async def jobs_of(store: Store, alert_id: int) -> list[Job]:
    return list((await store.get_alert_detail(alert_id)).jobs)


async def test_accepted_alert_job_creates_each_message_once(
        store: Store, queue: Queue, sim: CbcSimulator) -> None:
    alert_id = await accept(ingest(store, ["cbc"]), alert())
    async with client(sim) as cbc:
        ran = await worker(queue, {(OPERATOR, "cbc"): CbcRestPort(cbc)}).run_once()
    [job] = await jobs_of(store, alert_id)
    assert ran == 1
    assert (await queue.get_job(job.id)).state is JobState.SUCCEEDED
    payload = job.payload
    identifiers = payload["message_identifiers"]
    assert identifiers and payload["cells"]
    serial = SerialNumber.from_json(payload["serial_number"]).pack()
    for mid in identifiers:
        [create] = sim.received(operation=Operation.CREATE, message_id=mid)
        assert create.outcome is Outcome.CREATED
        held = sim.messages[mid].message
        assert held.serial_number == serial
        assert held.cells is not None
        assert set(held.cells) == {parse_cell_id(c) for c in payload["cells"]}
    assert len(sim.received(operation=Operation.CREATE)) == len(identifiers)
    subs = await queue.submissions(job.id)
    assert [s.status for s in subs] == [SubmissionStatus.ACKNOWLEDGED] * len(identifiers)


async def test_update_replaces_and_cancel_deletes(store: Store, queue: Queue,
                                                  sim: CbcSimulator) -> None:
    pipeline = ingest(store, ["cbc"])
    async with client(sim) as cbc:
        w = worker(queue, {(OPERATOR, "cbc"): CbcRestPort(cbc)})
        first = await accept(pipeline, alert())
        assert await w.run_once() == 1
        [created] = await jobs_of(store, first)
        mids = created.payload["message_identifiers"]

        update = await accept(pipeline, alert(suffix=b"170", sent=SENT + timedelta(minutes=10),
                                              msg_type=b"Update", references=True))
        assert await w.run_once() >= 1
        replace = [j for j in await jobs_of(store, update) if j.payload["action"] == "replace"]
        assert replace and (await queue.get_job(replace[0].id)).state is JobState.SUCCEEDED
        new_serial = SerialNumber.from_json(replace[0].payload["serial_number"]).pack()
        for mid in mids:
            assert [r.outcome for r in sim.received(operation=Operation.REPLACE,
                                                    message_id=mid)] == [Outcome.REPLACED]
            assert sim.messages[mid].message.serial_number == new_serial

        cancel = await accept(pipeline, alert(suffix=b"999", sent=SENT + timedelta(minutes=20),
                                              msg_type=b"Cancel", references=True))
        assert await w.run_once() >= 1
    stops = await jobs_of(store, cancel)
    assert stops and all(j.payload["action"] == "stop" for j in stops)
    assert [(await queue.get_job(j.id)).state for j in stops] == [JobState.SUCCEEDED] * len(stops)
    for mid in mids:
        assert [r.outcome for r in sim.received(operation=Operation.DELETE,
                                                message_id=mid)] == [Outcome.DELETED]
        assert mid not in sim.messages


async def test_cbc_down_then_back_retries_without_duplicates(store: Store,
                                                             queue: Queue) -> None:
    down = CbcSimulator(dialect=Dialect.CAPCAST)
    await down.start()
    port = down.port
    await down.stop()  # nothing listens there now: connection refused
    alert_id = await accept(ingest(store, ["cbc"]), alert())
    [job] = await jobs_of(store, alert_id)
    back = CbcSimulator(dialect=Dialect.CAPCAST)
    async with CbcClient(f"http://127.0.0.1:{port}",
                         options=EcbeOptions(dialect=Dialect.CAPCAST), timeout=5.0,
                         connect_timeout=2.0, retries=0) as cbc:
        w = worker(queue, {(OPERATOR, "cbc"): CbcRestPort(cbc)})
        assert await w.run_once() == 1
        failed = await queue.get_job(job.id)
        assert failed.state is JobState.QUEUED and failed.attempts == 1
        assert failed.last_error is not None and "CbcUnreachable" in failed.last_error
        assert await w.run_once() == 0  # backing off

        await back.start(port=port)
        try:
            # A 500 on the next attempt: retried again, nothing created by it.
            back.inject(Fault(kind=FaultKind.STATUS, operation=Operation.CREATE, status=500))
            deadline = asyncio.get_running_loop().time() + 10
            while (await queue.get_job(job.id)).state is not JobState.SUCCEEDED:
                assert asyncio.get_running_loop().time() < deadline, "job never completed"
                await w.run_once()
                await asyncio.sleep(0.05)
        finally:
            await back.stop()
    done = await queue.get_job(job.id)
    assert done.attempts == 3
    mids = job.payload["message_identifiers"]
    assert len(back.received(operation=Operation.CREATE, outcome=Outcome.CREATED)) == len(mids)
    assert len(back.received(operation=Operation.CREATE, outcome=Outcome.REFUSED)) == 1
    statuses = [s.status for s in await queue.submissions(job.id)]
    assert statuses.count(SubmissionStatus.FAILED) == 2
    assert statuses.count(SubmissionStatus.ACKNOWLEDGED) == len(mids)


async def test_refused_request_fails_the_job_with_the_reason(
        store: Store, queue: Queue, sim: CbcSimulator) -> None:
    alert_id = await accept(ingest(store, ["cbc"]), alert())
    sim.inject(Fault(kind=FaultKind.STATUS, operation=Operation.CREATE, status=400,
                     body="cell 262-01-1-1 unknown"))
    async with client(sim) as cbc:
        assert await worker(queue, {(OPERATOR, "cbc"): CbcRestPort(cbc)}).run_once() == 1
    [job] = await jobs_of(store, alert_id)
    failed = await queue.get_job(job.id)
    assert failed.state is JobState.FAILED and failed.attempts == 1
    assert failed.last_error is not None and "cell 262-01-1-1 unknown" in failed.last_error
    assert [s.status for s in await queue.submissions(job.id)] == [SubmissionStatus.REJECTED]
    assert not sim.messages


async def test_expired_job_is_never_sent(store: Store, queue: Queue,
                                         sim: CbcSimulator) -> None:
    alert_id = await accept(ingest(store, ["cbc"]), alert())
    later = NOW + timedelta(days=2)  # the worker's clock is past the job's expiry
    async with client(sim) as cbc:
        w = Worker(queue=queue, gateways={(OPERATOR, "cbc"): CbcRestPort(cbc)},
                   worker_id="w1", clock=lambda: later)
        assert await w.run_once() == 1
    [job] = await jobs_of(store, alert_id)
    assert (await queue.get_job(job.id)).state.finished
    assert (await queue.get_job(job.id)).state is not JobState.SUCCEEDED
    assert sim.records == []
    assert await queue.submissions(job.id) == []


async def test_two_workers_never_run_the_same_job(store: Store, queue: Queue) -> None:
    names = [f"cbc{i}" for i in range(4)]
    sims = [CbcSimulator(dialect=Dialect.CAPCAST) for _ in names]
    for s in sims:
        await s.start()
    clients = [client(s) for s in sims]
    try:
        alert_id = await accept(ingest(store, names), alert())
        assert len(await jobs_of(store, alert_id)) == len(names)
        ports: dict[tuple[str, str], GatewayPort] = {
            (OPERATOR, n): CbcRestPort(c) for n, c in zip(names, clients, strict=True)}
        workers = [worker(queue, ports, "a"), worker(queue, ports, "b")]
        for w in workers:
            w.concurrency = 2
        ran = 0
        for _ in range(10):
            counts = await asyncio.gather(*(w.run_once() for w in workers))
            ran += sum(counts)
            if not any(counts):
                break
    finally:
        for c in clients:
            await c.close()
        for s in sims:
            await s.stop()
    jobs = await jobs_of(store, alert_id)
    assert ran == len(names)
    for job in jobs:
        current = await queue.get_job(job.id)
        assert current.state is JobState.SUCCEEDED and current.attempts == 1
        assert len(await queue.submissions(job.id)) == len(job.payload["message_identifiers"])
    for s in sims:
        assert len(s.received(operation=Operation.CREATE)) == len(s.messages) >= 1


async def test_run_is_woken_by_notify_and_stops(store: Store, queue: Queue,
                                                sim: CbcSimulator) -> None:
    async with client(sim) as cbc:
        # Polling far beyond the test's timeout: only NOTIFY can wake the worker in time.
        w = Worker(queue=queue, gateways={(OPERATOR, "cbc"): CbcRestPort(cbc)},
                   worker_id="w1", poll_interval=300.0)
        stop = asyncio.Event()
        running = asyncio.create_task(w.run(stop))
        await asyncio.sleep(0.2)  # listening, nothing to do yet
        alert_id = await accept(ingest(store, ["cbc"]), alert())
        [job] = await jobs_of(store, alert_id)
        deadline = asyncio.get_running_loop().time() + 5
        while (await queue.get_job(job.id)).state is not JobState.SUCCEEDED:
            assert asyncio.get_running_loop().time() < deadline, "the worker was not woken"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(running, 5)
    assert len(sim.received(operation=Operation.CREATE)) == len(job.payload["message_identifiers"])


async def test_heartbeats_keep_a_slow_job(store: Store, queue: Queue) -> None:
    async with CbcSimulator(dialect=Dialect.CAPCAST, create_delay=1.5) as slow, \
            client(slow) as cbc:
        alert_id = await accept(ingest(store, ["cbc"]), alert())
        w = Worker(queue=queue, gateways={(OPERATOR, "cbc"): CbcRestPort(cbc)},
                   worker_id="w1", lease_seconds=0.6)
        running = asyncio.create_task(w.run_once())
        reclaimed: list[int] = []
        while not running.done():
            # Another worker's housekeeping would take the job back if its lease lapsed.
            reclaimed.extend((await queue.housekeeping()).requeued)
            await asyncio.sleep(0.1)
        assert await running == 1
    [job] = await jobs_of(store, alert_id)
    assert reclaimed == []
    current = await queue.get_job(job.id)
    assert current.state is JobState.SUCCEEDED and current.attempts == 1


async def _run_until_finished(w: Worker, queue: Queue, job: Job) -> Job:
    deadline = asyncio.get_running_loop().time() + 15
    while not (current := await queue.get_job(job.id)).state.finished:
        assert asyncio.get_running_loop().time() < deadline, "job never finished"
        if await w.run_once() == 0:
            await asyncio.sleep(0.05)
    return current


async def test_create_whose_answer_was_lost_counts_as_sent_on_retry(
        store: Store, queue: Queue, sim: CbcSimulator) -> None:
    alert_id = await accept(ingest(store, ["cbc"]), alert())
    [job] = await jobs_of(store, alert_id)
    # The CBC creates the first message and closes the connection instead of answering:
    # the attempt fails in doubt; the next one's create is answered 409.
    sim.inject(Fault(kind=FaultKind.DROP, operation=Operation.CREATE))
    async with client(sim) as cbc:
        done = await _run_until_finished(worker(queue, {(OPERATOR, "cbc"): CbcRestPort(cbc)}),
                                         queue, job)
    assert done.state is JobState.SUCCEEDED and done.attempts == 2
    mids = job.payload["message_identifiers"]
    serial = SerialNumber.from_json(job.payload["serial_number"]).pack()
    first, *others = mids
    assert [r.outcome for r in sim.received(operation=Operation.CREATE, message_id=first)] == \
        [Outcome.CREATED, Outcome.REFUSED]
    for mid in others:
        assert [r.outcome for r in sim.received(operation=Operation.CREATE,
                                                message_id=mid)] == [Outcome.CREATED]
    assert {mid: sim.messages[mid].message.serial_number for mid in mids} == \
        dict.fromkeys(mids, serial)
    subs = await queue.submissions(job.id)
    assert [(s.item, s.status) for s in subs] == \
        [(f"create:{first}", SubmissionStatus.IN_DOUBT),
         (f"create:{first}", SubmissionStatus.ACKNOWLEDGED)] + \
        [(f"create:{mid}", SubmissionStatus.ACKNOWLEDGED) for mid in others]
    assert done.result is not None
    assert done.result["details"][0]["confirmation"] == "earlier-attempt"


async def test_lost_answer_then_409_from_another_alert_still_fails(
        store: Store, queue: Queue, sim: CbcSimulator) -> None:
    pipeline = ingest(store, ["cbc"])
    async with client(sim) as cbc:
        w = worker(queue, {(OPERATOR, "cbc"): CbcRestPort(cbc)})
        [on_air] = await jobs_of(store, await accept(pipeline, alert()))
        assert (await _run_until_finished(w, queue, on_air)).state is JobState.SUCCEEDED
        # Another alert (another chain, other serial number) on the same channels: its
        # create is refused 409, and this answer is lost; the retry is refused again.
        [other] = await jobs_of(store, await accept(pipeline, alert(suffix=b"200")))
        assert other.payload["message_identifiers"][0] == \
            on_air.payload["message_identifiers"][0]
        assert other.payload["serial_number"] != on_air.payload["serial_number"]
        sim.inject(Fault(kind=FaultKind.DROP, operation=Operation.CREATE))
        failed = await _run_until_finished(w, queue, other)
    assert failed.state is JobState.FAILED and failed.attempts == 2
    assert failed.last_error is not None and "CbcMessageActive" in failed.last_error
    assert [s.status for s in await queue.submissions(other.id)] == \
        [SubmissionStatus.IN_DOUBT, SubmissionStatus.REJECTED]
    mid = on_air.payload["message_identifiers"][0]
    assert sim.messages[mid].message.serial_number == \
        SerialNumber.from_json(on_air.payload["serial_number"]).pack()


async def test_a_dead_workers_job_is_taken_back_while_this_worker_is_busy(
        store: Store, queue: Queue) -> None:
    # The sweep that takes back expired leases must also run while a worker drains a long
    # backlog, not only once it is idle: else a crashed worker's job waits for the backlog.
    names = [f"g{i}" for i in range(8)]
    sims = [CbcSimulator(dialect=Dialect.CAPCAST, create_delay=0.35) for _ in names]
    dead_sim = CbcSimulator(dialect=Dialect.CAPCAST)
    for s in [*sims, dead_sim]:
        await s.start()
    clients = [client(s) for s in sims]
    dead_client = client(dead_sim)
    try:
        orphan_alert = await accept(ingest(store, ["dead"]), alert(suffix=b"901"))
        [orphan] = await queue.claim("crashed-worker", limit=1, lease_seconds=1.0)
        assert orphan.alert_id == orphan_alert
        backlog_alert = await accept(ingest(store, names), alert(suffix=b"902"))
        ports: dict[tuple[str, str], GatewayPort] = {
            (OPERATOR, n): CbcRestPort(c) for n, c in zip(names, clients, strict=True)}
        ports[(OPERATOR, "dead")] = CbcRestPort(dead_client)
        w = Worker(queue=queue, gateways=ports, worker_id="busy", concurrency=1,
                   poll_interval=0.3, lease_seconds=10.0)
        stop = asyncio.Event()
        running = asyncio.create_task(w.run(stop))
        loop = asyncio.get_running_loop()
        started = loop.time()
        taken_back = None
        while loop.time() - started < 20:
            if taken_back is None and (await queue.get_job(orphan.id)).lease_owner \
                    != "crashed-worker":
                taken_back = loop.time() - started
            backlog = await jobs_of(store, backlog_alert)
            if taken_back is not None and all(j.state.finished for j in backlog):
                break
            await asyncio.sleep(0.05)
        backlog_done = loop.time() - started
        stop.set()
        await asyncio.wait_for(running, 10)
    finally:
        for c in [*clients, dead_client]:
            await c.close()
        for s in [*sims, dead_sim]:
            await s.stop()
    assert taken_back is not None
    # The backlog takes about 8 x 0.35 s; the orphan is taken back soon after its 1 s lease.
    assert taken_back < 2.0 < backlog_done, (taken_back, backlog_done)
