"""Reliability of the service: real processes, real PostgreSQL, real SMPP peer (the simulator).

* A ``capcast worker`` killed with SIGKILL in the middle of a location-based
  SMS job: after a new worker takes over, every present subscriber got the
  message, and only those that were in flight at the kill may have got it
  twice (counted at the SMSC simulator).
* The SMSC drops the link, throttles, or stalls: the job completes once it
  recovers, before the alert expires, and its submissions say what happened.
* PostgreSQL restarts under a running ``capcast serve``: alerts accepted
  before and after are both dispatched; ``/readyz`` follows the database.
* Two identical POSTs at the same moment: one alert, one 201 and one 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dispatcher.app import make_workers, open_service, run_workers
from dispatcher.queue import Queue
from dispatcher.service import Service
from dispatcher.store import (
    Job,
    JobState,
    Store,
    Submission,
    SubmissionStatus,
    create_pool,
)
from gateways.simulators.smsc import SmscConfig, SmscSimulator
from gateways.smpp.codec import SubmitSm
from tests.e2e.service_harness import (
    OPERATOR,
    SENDER,
    RestartablePostgres,
    cap_alert,
    place_subscribers,
    processes,
    split_cells,
    start_serve,
    start_worker,
    wait_until,
    write_deployment,
    write_inventory,
)

#: submit_sm per second: the gateway's own limit, and the SMSC's (above it, so that the
#: SMSC throttles nothing unless the client misbehaves).
CLIENT_TPS = 500.0
SMSC_TPS = 800.0
WINDOW = 32
#: The workers' lease in these tests (seconds): a dead worker's job is free after it.
LEASE = 2.0


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One synthetic inventory for the module (the same cells for every test)."""
    return write_inventory(tmp_path_factory.mktemp("cells"))


@pytest.fixture(scope="module")
def cells(inventory: tuple[Path, str]) -> tuple[list[str], list[str]]:
    """Cells surely targeted by the test area, and cells surely not."""
    inside, outside = split_cells(inventory[0])
    assert len(inside) >= 20 and len(outside) >= 10, (len(inside), len(outside))
    return inside, outside


def msisdn(address: str) -> str:
    """An MSISDN as the simulator sees it and as presence holds it, compared alike."""
    return address.lstrip("+")


def recipients(smsc: SmscSimulator, since: int = 0) -> Counter[str]:
    """submit_sm received per destination (from record number ``since`` of submit_sm)."""
    return Counter(msisdn(pdu.destination_addr) for pdu in smsc.submitted()[since:])


def submission_recipient(submission: Submission) -> str:
    """The subscriber a recorded submission went to."""
    details = submission.details or {}
    for key in ("msisdn", "destination", "destination_addr", "recipient", "to"):
        if key in details:
            return msisdn(str(details[key]))
    # Items name the unit of work; for LB-SMS it starts with the recipient.
    return msisdn(submission.item.split(":")[0].split("/")[0])


async def job_of(store: Store, alert_id: int) -> Job:
    """The one job of an alert."""
    detail = await store.get_alert_detail(alert_id)
    assert len(detail.jobs) == 1, detail.jobs
    return detail.jobs[0]


async def finished(queue: Queue, job_id: int) -> Job | None:
    """The job once it finished, else None."""
    job = await queue.get_job(job_id)
    return job if job.state.finished else None


def by_attempt(submissions: Collection[Submission]) -> dict[int, list[Submission]]:
    """Submissions grouped by the attempt that made them."""
    out: dict[int, list[Submission]] = {}
    for s in submissions:
        out.setdefault(s.attempt, []).append(s)
    return out


async def ingest(service: Service, *, identifier: str, expires: datetime | None = None) -> int:
    """Accept an alert through the real pipeline (as the API would); its id."""
    now = service.clock()
    raw = cap_alert(identifier, sent=now, expires=expires)
    result = await service.ingest.submit(raw, source="api:e2e", token_authority=SENDER)
    assert result.http_status == 201 and result.jobs == 1, result
    return result.alert_id


# -- 1. SIGKILL in the middle of a job ------------------------------------------------------


async def test_a_worker_killed_mid_job_loses_nothing_and_resends_at_most_its_window(
        tmp_path: Path, database_url: str, inventory: tuple[Path, str],
        cells: tuple[list[str], list[str]]) -> None:
    inside, outside = cells
    # A short lease: a dead worker's job is taken over within seconds, not 30.
    options = ["--lease-seconds", str(LEASE), "--poll-interval", "0.5"]
    async with SmscSimulator(SmscConfig(port=0, tps=SMSC_TPS)) as smsc:
        deployment = write_deployment(tmp_path, database_url=database_url,
                                      smsc_port=smsc.port, inventory=inventory,
                                      throughput=CLIENT_TPS, window=WINDOW)
        async with open_service(deployment.settings(), gateways=False) as service:
            now = service.clock()
            present = place_subscribers(inside, 2000, prefix="4917100", at=now)
            away = place_subscribers(outside, 100, prefix="4917200", at=now)
            await service.store.upsert_presence(OPERATOR, [*present, *away])
            alert_id = await ingest(service, identifier=f"e2e-kill-{uuid.uuid4().hex}")
            job = await job_of(service.store, alert_id)
            assert set(inside) <= set(job.payload["cells"])
            assert not set(outside) & set(job.payload["cells"])
            wanted = {msisdn(p.msisdn) for p in present}

            with processes() as running:
                first = start_worker(deployment, name="worker-1", extra=options)
                running.append(first)
                await wait_until(lambda: _count_at_least(smsc, 300), timeout=60,
                                 what="300 submit_sm at the SMSC", diagnose=first.describe)
                first.kill()
                # A supervisor restarts it at once; it must wait for the lease to run out.
                second = start_worker(deployment, name="worker-2", extra=options)
                running.append(second)
                killed = await service.queue.get_job(job.id)
                assert killed.state is JobState.RUNNING and killed.attempts == 1, killed
                assert killed.lease_expires_at is not None
                done = await wait_until(lambda: finished(service.queue, job.id), timeout=90,
                                        interval=0.2, what="the job finishing",
                                        diagnose=second.describe)
            record = by_attempt(await service.queue.submissions(job.id))

    assert done.state is JobState.SUCCEEDED, (done.state, done.last_error)
    assert done.attempts == 2, "the second worker ran the job again (a retry)"
    assert done.last_error is not None and "lease" in done.last_error, done.last_error
    assert sorted(record) == [1, 2], sorted(record)
    first_try = {s.item: s for s in record[1]}
    second_try = {s.item: s for s in record[2]}
    acked_first = {i for i, s in first_try.items() if s.status is SubmissionStatus.ACKNOWLEDGED}
    # What the dead worker had recorded and not settled: in doubt once its lease was reclaimed.
    # (The port records a batch of recipients ahead, so most of these were never sent.)
    in_doubt = {i for i, s in first_try.items() if s.status is SubmissionStatus.IN_DOUBT}
    assert in_doubt and acked_first and in_doubt | acked_first == set(first_try)

    # Counted at the SMSC: everyone present got it, nobody away did.
    stats = smsc.stats()
    assert stats.throttled == 0 and stats.errors == 0, stats
    got = recipients(smsc)
    assert set(got) == wanted
    # What the dead worker sent (its connection is the first one's) and never settled:
    # the window in flight at the kill.
    submits = smsc.records("submit_sm")
    by_first = [msisdn(r.pdu.destination_addr) for r in submits
                if isinstance(r.pdu, SubmitSm) and r.peer == submits[0].peer]
    assert 300 <= len(by_first) < len(wanted), "the kill came mid-job"
    window = set(by_first) - {submission_recipient(first_try[i]) for i in acked_first}
    # Only those got it twice; nobody got it three times.
    twice = {r for r, n in got.items() if n > 1}
    assert max(got.values()) <= 2
    assert twice <= window, sorted(twice - window)[:10]
    assert window <= {submission_recipient(first_try[i]) for i in in_doubt}
    assert sum(got.values()) == len(wanted) + len(twice)

    # The record shows the retry: attempt 2 sent what attempt 1 left in doubt or never
    # recorded, none of what it had acknowledged, and it is all acknowledged.
    assert not acked_first & set(second_try), "attempt 2 re-sent acknowledged work"
    assert all(s.status is SubmissionStatus.ACKNOWLEDGED for s in second_try.values()), \
        Counter(s.status for s in second_try.values())
    assert {submission_recipient(s) for s in second_try.values()} == \
        wanted - {submission_recipient(first_try[i]) for i in acked_first}
    # The second worker sent nothing before the dead one's lease had run out.
    assert min(s.sent_at for s in second_try.values()) >= killed.lease_expires_at


async def _count_at_least(smsc: SmscSimulator, n: int) -> bool:
    return smsc.stats().submitted >= n


# -- 2. The SMSC drops the link, throttles, stalls ------------------------------------------


async def _drop_links(smsc: SmscSimulator) -> str:
    # Twice, mid-job, with requests in flight (answers take 50 ms): a network failure.
    for at in (120, 260):
        await wait_until(functools.partial(_count_at_least, smsc, at), timeout=30,
                         what=f"{at} submit_sm before the drop")
        assert smsc.drop_connections() >= 1
    return "dropped every link at 120 and 260 submit_sm"


async def _throttle(smsc: SmscSimulator) -> str:
    # The SMSC refuses everything with ESME_RTHROTTLED for 2 s, then takes all.
    await wait_until(lambda: _count_at_least(smsc, 100), timeout=30,
                     what="100 submit_sm before throttling")
    smsc.configure(throttle_rate=1.0)
    await asyncio.sleep(2.0)
    smsc.configure(throttle_rate=0.0)
    return "throttled everything for 2 s"


async def _stall(smsc: SmscSimulator) -> str:
    # Answers (enquire_link and bind included) come after 2.5 s, longer than the 1 s
    # response timeout; after 3 s it answers at once again.
    await wait_until(lambda: _count_at_least(smsc, 100), timeout=30,
                     what="100 submit_sm before the stall")
    smsc.configure(response_delay=2.5)
    await asyncio.sleep(3.0)
    smsc.configure(response_delay=0.0)
    return "stalled for 3 s"


FAULTS = {"link-drop": _drop_links, "throttling": _throttle, "stall": _stall}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_job_completes_when_the_smsc_recovers(
        tmp_path: Path, database_url: str, inventory: tuple[Path, str],
        cells: tuple[list[str], list[str]], fault: str) -> None:
    inside, _ = cells
    config = SmscConfig(port=0, response_delay=0.05 if fault == "link-drop" else 0.0)
    async with SmscSimulator(config) as smsc:
        deployment = write_deployment(tmp_path, database_url=database_url,
                                      smsc_port=smsc.port, inventory=inventory,
                                      throughput=200.0, window=WINDOW, response_timeout=1.0,
                                      enquire_link=1.0)
        async with open_service(deployment.settings()) as service:
            present = place_subscribers(inside, 400, prefix="4917300", at=service.clock())
            await service.store.upsert_presence(OPERATOR, present)
            wanted = {msisdn(p.msisdn) for p in present}
            expires = service.clock() + timedelta(minutes=2)
            alert_id = await ingest(service, identifier=f"e2e-{fault}-{uuid.uuid4().hex}",
                                    expires=expires)
            job = await job_of(service.store, alert_id)
            stop = asyncio.Event()
            workers = asyncio.create_task(run_workers(
                make_workers(service, 1, lease_seconds=LEASE, poll_interval=0.5), stop))

            async def diagnose() -> str:
                statuses = Counter((s.attempt, s.status.value)
                                   for s in await service.queue.submissions(job.id))
                now = await service.queue.get_job(job.id)
                return (f"job: {now.state.value}, attempt {now.attempts}, last error "
                        f"{now.last_error!r}; submissions (attempt, status): {dict(statuses)}; "
                        f"SMSC: {smsc.stats()}; SMPP links: "
                        f"{[c.stats() for c in service.smpp_clients.values()]}")

            try:
                what = await FAULTS[fault](smsc)
                done = await wait_until(lambda: finished(service.queue, job.id), timeout=30,
                                        interval=0.2, what=f"the job finishing ({what})",
                                        diagnose_async=diagnose)
            except BaseException:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(workers, 5)
                raise
            stop.set()
            await asyncio.wait_for(workers, 15)  # a worker with nothing running stops at once
            record = await service.queue.submissions(job.id)

    # It completed, before the alert expired.
    assert done.state is JobState.SUCCEEDED, (done.state, done.last_error)
    assert done.finished_at is not None and done.expires_at is not None
    assert done.finished_at < done.expires_at
    stats = smsc.stats()

    # Everyone got it; each recipient is acknowledged once in the record, with the SMSC's id.
    acknowledged = [s for s in record if s.status is SubmissionStatus.ACKNOWLEDGED]
    assert Counter(submission_recipient(s) for s in acknowledged) == dict.fromkeys(wanted, 1)
    assert all(s.message_id for s in acknowledged)
    assert len({s.message_id for s in acknowledged}) == len(wanted)
    got = recipients(smsc)
    assert set(got) == wanted
    # What was not acknowledged stays in the record as it ended: in doubt (sent, no
    # answer) or failed (refused for now); each such item was sent again later.
    unsure = [s for s in record if s.status is not SubmissionStatus.ACKNOWLEDGED]
    assert {s.status for s in unsure} <= {SubmissionStatus.IN_DOUBT, SubmissionStatus.FAILED}
    ack_attempt = {s.item: s.attempt for s in acknowledged}
    assert all(s.attempt < ack_attempt[s.item] for s in unsure), "a retry came first"
    # The SMSC accepted each message once, plus at most the ones in doubt (sent twice).
    in_doubt = {s.item for s in unsure if s.status is SubmissionStatus.IN_DOUBT}
    assert len(wanted) <= stats.accepted <= len(wanted) + len(in_doubt), stats

    if fault == "link-drop":
        assert stats.connections >= 3, stats  # two drops, two reconnections
        assert in_doubt, "answers in flight on a dropped link are in doubt"
        assert done.attempts >= 2 and done.last_error is not None
        assert "without an answer" in done.last_error, done.last_error
    elif fault == "throttling":
        assert stats.throttled > 0, stats
        assert stats.accepted == len(wanted), "a throttled message is not a duplicate"
        assert not in_doubt
    else:
        assert in_doubt, "requests that timed out are in doubt"
        assert done.attempts >= 2 and done.last_error is not None
        twice = {r for r, n in got.items() if n > 1}
        assert twice <= {submission_recipient(s) for s in unsure if s.item in in_doubt}


# -- HTTP helpers -----------------------------------------------------------------------------


async def post_alert(http: aiohttp.ClientSession, base: str, token: str,
                     raw: bytes) -> tuple[int, dict[str, Any]]:
    """POST a CAP document; the status and the JSON answer."""
    async with http.post(f"{base}/api/v1/alerts", data=raw,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/cap+xml"}) as response:
        return response.status, await response.json()


async def get_json(http: aiohttp.ClientSession, url: str,
                   token: str | None = None) -> tuple[int, dict[str, Any]]:
    """GET a JSON resource; the status and the body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json()


async def alert_finished(http: aiohttp.ClientSession, base: str, token: str,
                         alert_id: int) -> dict[str, Any] | None:
    """The alert (GET /api/v1/alerts/{id}) once all its jobs finished, else None."""
    status, body = await get_json(http, f"{base}/api/v1/alerts/{alert_id}", token)
    if status != 200 or not body["jobs"]:
        return None
    if any(job["state"] in ("queued", "running") for job in body["jobs"]):
        return None
    return body


@contextlib.asynccontextmanager
async def open_store(url: str) -> AsyncIterator[Store]:
    """A store on ``url`` for the test's own reads and writes."""
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        yield Store(pool=pool, url=url)
    finally:
        await pool.close()


# -- 3. PostgreSQL restarts under a running service ----------------------------------------


async def test_the_service_reconnects_after_a_postgresql_restart(
        tmp_path: Path, inventory: tuple[Path, str],
        cells: tuple[list[str], list[str]]) -> None:
    inside, _ = cells
    server = RestartablePostgres(tmp_path / "pg")
    url = await server.open()
    try:
        async with SmscSimulator(SmscConfig(port=0)) as smsc:
            # 300 subscribers at 100 SMS/s: the first alert's job runs across the restart.
            deployment = write_deployment(tmp_path, database_url=url, smsc_port=smsc.port,
                                          inventory=inventory, window=WINDOW, throughput=100.0)
            with processes() as running:
                serve, base = await start_serve(deployment, workers=1, extra=[
                    "--lease-seconds", str(LEASE), "--poll-interval", "0.5"])
                running.append(serve)
                async with open_store(url) as store:  # serve has migrated the database
                    present = place_subscribers(inside, 300, prefix="4917400",
                                                at=datetime.now(UTC))
                    await store.upsert_presence(OPERATOR, present)
                wanted = {msisdn(p.msisdn) for p in present}
                timeout = aiohttp.ClientTimeout(total=20)
                async with aiohttp.ClientSession(timeout=timeout) as http:
                    status, ready = await get_json(http, f"{base}/readyz")
                    assert status == 200, ready
                    status, first = await post_alert(http, base, deployment.token, cap_alert(
                        f"e2e-restart-1-{uuid.uuid4().hex}", sent=datetime.now(UTC),
                        headline="Flood warning one"))
                    assert status == 201, first
                    await wait_until(lambda: _count_at_least(smsc, 60), timeout=30,
                                     what="60 submit_sm of the first alert",
                                     diagnose=serve.describe)
                    at_stop = smsc.stats().submitted

                    server.stop()
                    status, down = await wait_until(
                        lambda: _readyz_is(http, base, 503), timeout=15,
                        what="/readyz answering 503 while PostgreSQL is down",
                        diagnose=serve.describe)
                    assert down["error"]["code"] == "database-unavailable", down
                    # Refused with 503 while the database is down: nothing is accepted,
                    # so nothing can be lost; the sender tries again.
                    second_raw = cap_alert(f"e2e-restart-2-{uuid.uuid4().hex}",
                                           sent=datetime.now(UTC), headline="Flood warning two")
                    status, refused = await post_alert(http, base, deployment.token,
                                                       second_raw)
                    assert status == 503, (status, refused)
                    assert serve.running

                    server.start()
                    await wait_until(lambda: _readyz_is(http, base, 200), timeout=30,
                                     what="/readyz answering 200 after the restart",
                                     diagnose=serve.describe)
                    status, second = await post_alert(http, base, deployment.token,
                                                      second_raw)
                    assert status == 201, second
                    alerts = [await wait_until(
                        functools.partial(alert_finished, http, base, deployment.token, alert_id),
                        timeout=45, what=f"the jobs of alert {alert_id} finishing",
                        diagnose=serve.describe) for alert_id in (first["id"], second["id"])]
                assert serve.running
    finally:
        await server.close()

    for alert in alerts:
        assert [job["state"] for job in alert["jobs"]] == ["succeeded"], alert["jobs"]
        assert alert["state"] == "done", alert["state"]
    before = alerts[0]
    assert at_stop < len(wanted), "the first job was still running when PostgreSQL stopped"
    # Counted at the SMSC: each alert reached everyone present; the second once, the first
    # at most twice, and twice only where the record says "in doubt".
    got = {name: Counter(msisdn(p.destination_addr) for p in smsc.submitted()
                         if f"Flood warning {name}".encode() in p.short_message)
           for name in ("one", "two")}
    assert set(got["two"]) == wanted and set(got["two"].values()) == {1}
    assert set(got["one"]) == wanted and max(got["one"].values()) <= 2
    in_doubt = {submission_recipient(Submission(**_parsed(s))) for s in before["submissions"]
                if s["status"] == "in_doubt"}
    assert {r for r, n in got["one"].items() if n > 1} <= in_doubt


def _parsed(submission: dict[str, Any]) -> dict[str, Any]:
    """A submission from the API's JSON, as the store's record type takes it."""
    out = dict(submission)
    out["status"] = SubmissionStatus(out["status"])
    return out


async def _readyz_is(http: aiohttp.ClientSession, base: str,
                     expected: int) -> tuple[int, dict[str, Any]] | None:
    try:
        status, body = await get_json(http, f"{base}/readyz")
    except (aiohttp.ClientError, TimeoutError):
        return None
    return (status, body) if status == expected else None


# -- 4. Two identical POSTs at the same moment ----------------------------------------------


async def test_two_identical_posts_at_the_same_moment_make_one_alert(
        tmp_path: Path, database_url: str, inventory: tuple[Path, str]) -> None:
    async with SmscSimulator(SmscConfig(port=0)) as smsc:
        deployment = write_deployment(tmp_path, database_url=database_url,
                                      smsc_port=smsc.port, inventory=inventory)
        with processes() as running:
            serve, base = await start_serve(deployment, workers=0)
            running.append(serve)
            answers: list[tuple[str, list[tuple[int, dict[str, Any]]]]] = []
            connector = aiohttp.TCPConnector(limit=0, force_close=True)
            async with aiohttp.ClientSession(connector=connector) as http:
                # Several rounds: each a race of two identical documents.
                for n in range(5):
                    identifier = f"e2e-twice-{n}-{uuid.uuid4().hex}"
                    raw = cap_alert(identifier, sent=datetime.now(UTC))
                    pair = await asyncio.gather(
                        post_alert(http, base, deployment.token, raw),
                        post_alert(http, base, deployment.token, raw))
                    answers.append((identifier, list(pair)))
    overlapped = 0
    async with open_store(database_url) as store, store.pool.acquire() as conn:
        for identifier, both in answers:
            assert sorted(status for status, _ in both) == [200, 201], both
            (_, created), = [a for a in both if a[0] == 201]
            (_, repeat), = [a for a in both if a[0] == 200]
            assert created["id"] == repeat["id"], both
            assert created["outcome"] == "accepted" and repeat["outcome"] == "repeat"
            assert created["jobs"] == 1
            # Both documents are stored (raw first); one is the alert, the other its duplicate.
            rows = await conn.fetch("SELECT id, state::text AS state, duplicate_of, received_at, "
                                    "accepted_at FROM alerts WHERE identifier = $1 ORDER BY id",
                                    identifier)
            states = {r["id"]: (r["state"], r["duplicate_of"]) for r in rows}
            assert len(rows) == 2, rows
            at = {r["id"]: r for r in rows}
            overlapped += at[repeat["stored_id"]]["received_at"] < at[created["id"]]["accepted_at"]
            assert states[created["id"]] == ("planned", None)
            assert states[repeat["stored_id"]] == ("duplicate", created["id"])
            jobs = await conn.fetch("SELECT alert_id FROM jobs WHERE alert_id = ANY($1::bigint[])",
                                    list(states))
            assert [j["alert_id"] for j in jobs] == [created["id"]]
    # The race was run: a repeat arrived while its first was still being accepted.
    assert overlapped, "the two POSTs never overlapped"
