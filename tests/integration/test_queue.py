"""The job queue on a real PostgreSQL: claims, leases, retries, expiry, submissions, wake-ups."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from dispatcher.errors import JobStopped, LeaseLost
from dispatcher.queue import (
    JobProgress,
    NewSubmission,
    Queue,
    RetryPolicy,
    SubmissionResult,
    Wakeup,
)
from dispatcher.store import (
    AlertState,
    Job,
    JobKind,
    JobState,
    NewJob,
    Outcome,
    Store,
    SubmissionStatus,
)

from .test_store import cap_xml, ingest

CBC, SMS = JobKind.CBC_REST, JobKind.SMPP_SMS


def new_job(operator: str = "Telco", kind: JobKind = CBC, **kwargs: Any) -> NewJob:
    return NewJob(operator=operator, gateway=f"{operator}-gw", kind=kind,
                  payload={"n": kwargs.pop("n", 0)}, **kwargs)


_serial = iter(range(10**6))


async def plan(store: Store, jobs: list[NewJob]) -> tuple[int, tuple[Job, ...]]:
    result = await ingest(store, cap_xml(f"Q-{next(_serial)}"))
    assert result.outcome is Outcome.NEW
    done = await store.accept_alert_with_jobs(result.alert.id, jobs)
    return result.alert.id, done.jobs


async def db_now(queue: Queue) -> datetime:
    async with queue.pool.acquire() as conn:
        now: datetime = await conn.fetchval("SELECT now()")
    return now


# -- claiming -------------------------------------------------------------------------------


async def test_claim_complete_and_the_alert_follows(store: Store, queue: Queue) -> None:
    alert_id, (first, _) = await plan(store, [new_job("A"), new_job("B")])
    (claimed,) = await queue.claim("worker-1", [CBC], lease_seconds=30)
    assert claimed.id == first.id and claimed.state is JobState.RUNNING
    assert claimed.attempts == 1 and claimed.lease_owner == "worker-1"
    assert claimed.lease_expires_at is not None and claimed.started_at is not None
    assert claimed.lease_expires_at - claimed.heartbeat_at == timedelta(seconds=30)  # type: ignore[operator]
    assert (await store.get_alert(alert_id)).state is AlertState.DISPATCHING
    assert await queue.claim("worker-1", [SMS]) == []

    done = await queue.complete(claimed, result={"cells": 1})
    assert done.state is JobState.SUCCEEDED and done.result == {"cells": 1}
    assert done.lease_owner is None and done.finished_at is not None
    assert (await store.get_alert(alert_id)).state is AlertState.DISPATCHING
    (other,) = await queue.claim("worker-2")
    await queue.complete(other)
    alert = await store.get_alert(alert_id)
    assert alert.state is AlertState.DONE and alert.finished_at is not None
    with pytest.raises(LeaseLost, match="succeeded"):
        await queue.complete(claimed)


async def test_claim_order_filters_and_limit(store: Store, queue: Queue) -> None:
    await plan(store, [new_job("A", n=0), new_job("B", SMS, n=1),
                                 new_job("C", n=2, priority=9), new_job("A", n=3)])
    got = await queue.claim("w", [CBC], limit=2)
    assert [j.payload["n"] for j in got] == [2, 0]  # priority first, then age
    assert [j.payload["n"] for j in await queue.claim("w", operators=["A"], limit=5)] == [3]
    assert [j.payload["n"] for j in await queue.claim("w", limit=5)] == [1]


async def test_each_job_is_claimed_exactly_once_by_concurrent_workers(
        store: Store, queue: Queue) -> None:
    total, workers = 400, 8
    for _ in range(4):
        await plan(store, [new_job(f"Op{i % 7}", CBC if i % 3 else SMS, n=i)
                           for i in range(total // 4)])
    claimed_by: dict[int, list[str]] = {}

    async def worker(name: str) -> None:
        while jobs := await queue.claim(name, limit=3, lease_seconds=60):
            for j in jobs:
                claimed_by.setdefault(j.id, []).append(name)
            for j in jobs:
                await queue.complete(j)

    started = time.perf_counter()
    await asyncio.gather(*(worker(f"w{i}") for i in range(workers)))
    elapsed = time.perf_counter() - started
    assert len(claimed_by) == total
    assert all(len(names) == 1 for names in claimed_by.values())
    assert len({names[0] for names in claimed_by.values()}) > 1  # the work was shared
    counts = await queue.counts()
    assert sum(counts.values()) == total
    assert {state for _, state in counts} == {JobState.SUCCEEDED}
    alerts = await store.list_alerts()
    assert {a.state for a in alerts} == {AlertState.DONE}
    print(f"\nclaim+complete: {total} jobs, {workers} workers: {total / elapsed:.0f} jobs/s")


async def test_jobs_sharing_a_lock_key_run_one_at_a_time_in_order(store: Store,
                                                                  queue: Queue) -> None:
    _, (create, replace, other) = await plan(store, [
        new_job("A", lock_key="A:4370", n=0), new_job("A", lock_key="A:4370", n=1),
        new_job("A", lock_key="A:4371", n=2)])
    first = await queue.claim("w1", limit=10)
    assert sorted(j.id for j in first) == [create.id, other.id]
    assert await queue.claim("w2", limit=10) == []
    await queue.fail(first[0] if first[0].id == create.id else first[1], "throttled", delay=0)
    # Retried, the earlier job still goes before the later one.
    (again,) = await queue.claim("w2", limit=10)
    assert again.id == create.id and again.attempts == 2
    await queue.complete(again)
    (then,) = await queue.claim("w2", limit=10)
    assert then.id == replace.id


# -- leases ---------------------------------------------------------------------------------


async def test_a_crashed_workers_jobs_come_back_and_its_window_is_in_doubt(
        store: Store, queue: Queue) -> None:
    _, (queued,) = await plan(store, [new_job("A", SMS)])
    (crashed,) = await queue.claim("worker-crashed", lease_seconds=0.3)
    items = [f"+49151000000{i}#1" for i in range(5)]
    first = await queue.record_submissions(crashed, [NewSubmission(item=i) for i in items[:2]])
    await queue.settle_submissions([SubmissionResult(id=first[0],
                                                     status=SubmissionStatus.ACKNOWLEDGED,
                                                     message_id="m0"),
                                    SubmissionResult(id=first[1],
                                                     status=SubmissionStatus.REJECTED,
                                                     error="invalid destination")])
    window = await queue.record_submissions(crashed, [NewSubmission(item=i) for i in items[2:4]])
    # ... and the worker dies here, its window of two in flight.
    assert (await queue.reclaim_expired_leases()).requeued == ()  # lease not over yet
    await asyncio.sleep(0.4)
    reclaimed = await queue.reclaim_expired_leases()
    assert reclaimed.requeued == (queued.id,)
    back = await queue.get_job(queued.id)
    assert back.state is JobState.QUEUED and back.lease_owner is None
    assert back.last_error == "lease of worker worker-crashed expired (attempt 1)"

    (resumed,) = await queue.claim("worker-2", lease_seconds=30)
    assert resumed.id == queued.id and resumed.attempts == 2
    progress = await queue.progress(resumed.id)
    assert progress.done == frozenset(items[:2])
    assert progress.in_doubt == frozenset(items[2:4])
    to_send = [i for i in items if i not in progress.done]
    assert to_send == items[2:]  # the window is re-sent, nothing else twice
    # The old worker wakes up: it cannot heartbeat, record or finish any more.
    for attempt in (queue.heartbeat(crashed), queue.complete(crashed),
                    queue.record_submissions(crashed, [NewSubmission(item="x")]),
                    queue.fail(crashed, "late")):
        with pytest.raises(LeaseLost, match=r"worker-crashed.*attempt 1.*running") as caught:
            await attempt
        assert not isinstance(caught.value, JobStopped)
    # Its late answers are still facts worth keeping.
    await queue.settle_submissions([SubmissionResult(id=window[0],
                                                     status=SubmissionStatus.ACKNOWLEDGED,
                                                     message_id="m2")])
    assert items[2] in (await queue.progress(resumed.id)).done
    subs = await queue.submissions(resumed.id)
    assert [(s.item, s.attempt, s.status) for s in subs] == [
        (items[0], 1, SubmissionStatus.ACKNOWLEDGED), (items[1], 1, SubmissionStatus.REJECTED),
        (items[2], 1, SubmissionStatus.ACKNOWLEDGED), (items[3], 1, SubmissionStatus.IN_DOUBT)]


async def test_heartbeats_keep_the_lease(store: Store, queue: Queue) -> None:
    await plan(store, [new_job()])
    (held,) = await queue.claim("w", lease_seconds=0.3)
    for _ in range(4):
        await asyncio.sleep(0.15)
        until = await queue.heartbeat(held, lease_seconds=0.3)
        assert until > await db_now(queue)
        assert (await queue.reclaim_expired_leases()).requeued == ()
    assert (await queue.complete(held)).state is JobState.SUCCEEDED


async def test_a_job_that_keeps_killing_workers_fails_in_the_end(store: Store,
                                                                 queue: Queue) -> None:
    alert_id, (queued,) = await plan(store, [new_job(max_attempts=2)])
    for attempt in (1, 2):
        (held,) = await queue.claim("w", lease_seconds=0.05)
        assert held.attempts == attempt
        await asyncio.sleep(0.1)
        result = await queue.housekeeping()
    assert result.failed == (queued.id,)
    job = await queue.get_job(queued.id)
    assert job.state is JobState.FAILED and job.finished_at is not None
    assert (await store.get_alert(alert_id)).state is AlertState.DONE


# -- retries and expiry ---------------------------------------------------------------------


def test_retry_policy_backs_off_exponentially() -> None:
    policy = RetryPolicy(base_delay=1.0, factor=2.0, max_delay=60.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay(10_000) == 60
    jittery = RetryPolicy(base_delay=10.0, jitter=0.2)
    delays = [jittery.delay(1, random.Random(seed)) for seed in range(200)]
    assert min(delays) >= 8.0 and max(delays) <= 12.0 and len(set(delays)) > 100
    for bad in ({"factor": 0.5}, {"jitter": 1.0}, {"base_delay": -1.0},
                {"base_delay": 10.0, "max_delay": 1.0}):
        with pytest.raises(ValueError, match="RetryPolicy"):
            RetryPolicy(**bad)


async def test_failures_retry_with_backoff_until_out_of_attempts(store: Store,
                                                                 queue: Queue) -> None:
    alert_id, _ = await plan(store, [new_job(max_attempts=3)])
    expected = [0.2, 0.4]  # the fixture's policy: 0.2 s doubling, no jitter
    for attempt, delay in enumerate(expected, start=1):
        (held,) = await queue.claim("w")
        assert held.attempts == attempt
        failed = await queue.fail(held, f"ESME_RTHROTTLED on attempt {attempt}")
        assert failed.state is JobState.QUEUED and failed.finished_at is None
        wait = (failed.next_attempt_at - await db_now(queue)).total_seconds()
        assert delay - 0.1 < wait <= delay
        assert await queue.claim("w") == []  # not due yet
        await asyncio.sleep(delay + 0.05)
    (last,) = await queue.claim("w")
    failed = await queue.fail(last, "ESME_RSYSERR")
    assert failed.state is JobState.FAILED and failed.last_error == "ESME_RSYSERR"
    assert failed.attempts == 3 and failed.finished_at is not None
    assert (await store.get_alert(alert_id)).state is AlertState.DONE


async def test_a_permanent_failure_does_not_retry(store: Store, queue: Queue) -> None:
    await plan(store, [new_job()])
    (held,) = await queue.claim("w")
    await queue.record_submissions(held, [NewSubmission(item="create")])
    failed = await queue.fail(held, "400 Bad Request: scope not supported", retry=False)
    assert failed.state is JobState.FAILED and failed.attempts == 1
    assert (await queue.progress(held.id)).in_doubt == {"create"}


async def test_a_retry_after_the_expiry_expires_the_job(store: Store, queue: Queue) -> None:
    now = await db_now(queue)
    alert_id, _ = await plan(store, [new_job(expires_at=now + timedelta(seconds=30))])
    (held,) = await queue.claim("w")
    failed = await queue.fail(held, "link down", delay=60)
    assert failed.state is JobState.EXPIRED and failed.finished_at is not None
    assert (await store.get_alert(alert_id)).state is AlertState.EXPIRED


async def test_expiry_drops_queued_and_stops_running_jobs(store: Store, queue: Queue) -> None:
    now = await db_now(queue)
    soon = now + timedelta(seconds=0.4)
    alert_id, jobs = await plan(store, [new_job("A", expires_at=soon),
                                        new_job("B", expires_at=soon)])
    (running,) = await queue.claim("w", operators=["A"])
    assert await queue.expire_due() == []
    await asyncio.sleep(0.5)
    assert await queue.claim("w") == []  # an expired job is never handed out
    assert sorted(await queue.expire_due()) == sorted(j.id for j in jobs)
    with pytest.raises(JobStopped, match="expired"):
        await queue.heartbeat(running)
    alert = await store.get_alert(alert_id)
    assert alert.state is AlertState.EXPIRED
    assert {j.state for j in (await store.get_alert_detail(alert_id)).jobs} == {JobState.EXPIRED}


async def test_cancelling_an_alert_stops_its_jobs(store: Store, queue: Queue) -> None:
    alert_id, jobs = await plan(store, [new_job("A"), new_job("B"), new_job("C")])
    (running,) = await queue.claim("w", operators=["A"])
    await queue.record_submissions(running, [NewSubmission(item="create")])
    await queue.complete((await queue.claim("w", operators=["B"]))[0])
    stopped = await queue.cancel_alert_jobs(alert_id, reason="cancelled by manager",
                                            actor="manager:ops")
    assert sorted(stopped) == sorted([jobs[0].id, jobs[2].id])
    with pytest.raises(JobStopped, match="was cancelled while worker 'w' held it"):
        await queue.record_submissions(running, [NewSubmission(item="more")])
    assert (await queue.progress(running.id)).in_doubt == {"create"}
    alert = await store.get_alert(alert_id)
    assert alert.state is AlertState.CANCELLED
    states = {j.operator: j.state for j in (await store.get_alert_detail(alert_id)).jobs}
    assert states == {"A": JobState.CANCELLED, "B": JobState.SUCCEEDED, "C": JobState.CANCELLED}
    (entry,) = await store.audit_entries(action="alert.cancelled")
    assert entry.actor == "manager:ops" and entry.details["reason"] == "cancelled by manager"


async def test_the_last_two_jobs_finishing_together_finish_the_alert(
        store: Store, queue: Queue) -> None:
    for _ in range(10):
        alert_id, _ = await plan(store, [new_job("A"), new_job("B")])
        a, b = await queue.claim("w", limit=2)
        await asyncio.gather(queue.complete(a), queue.complete(b))
        assert (await store.get_alert(alert_id)).state is AlertState.DONE


# -- submissions ----------------------------------------------------------------------------


async def test_submissions_are_recorded_in_order_and_settled(store: Store,
                                                             queue: Queue) -> None:
    await plan(store, [new_job(kind=SMS)])
    (held,) = await queue.claim("w")
    items = [NewSubmission(item=f"+4915100{i:04d}#1", sequence_number=100 + i,
                           details={"segment": 1}) for i in range(50)]
    ids = await queue.record_submissions(held, items)
    assert len(ids) == 50 and ids == sorted(ids)
    subs = await queue.submissions(held.id)
    assert [(s.id, s.item, s.sequence_number) for s in subs] == \
        [(i, s.item, s.sequence_number) for i, s in zip(ids, items, strict=True)]
    assert {s.status for s in subs} == {SubmissionStatus.PENDING}
    changed = await queue.settle_submissions(
        [SubmissionResult(id=i, status=SubmissionStatus.ACKNOWLEDGED, message_id=f"m{i}")
         for i in ids[:40]]
        + [SubmissionResult(id=i, status=SubmissionStatus.FAILED, error="ESME_RTHROTTLED")
           for i in ids[40:]])
    assert changed == 50
    assert await queue.settle_submissions([SubmissionResult(
        id=ids[0], status=SubmissionStatus.REJECTED)]) == 0  # settled answers stay
    progress = await queue.progress(held.id)
    assert len(progress.done) == 40 and len(progress.failed) == 10 and not progress.in_doubt
    # The throttled ones go again in the same attempt; the newest answer counts.
    retry = await queue.record_submissions(held, items[40:])
    await queue.settle_submissions([SubmissionResult(id=i, status=SubmissionStatus.ACKNOWLEDGED)
                                    for i in retry])
    assert len((await queue.progress(held.id)).done) == 50
    with pytest.raises(ValueError, match="not pending"):
        SubmissionResult(id=1, status=SubmissionStatus.PENDING)


def test_job_progress_sets() -> None:
    progress = JobProgress(latest={"a": SubmissionStatus.ACKNOWLEDGED,
                                   "b": SubmissionStatus.REJECTED,
                                   "c": SubmissionStatus.IN_DOUBT,
                                   "d": SubmissionStatus.PENDING,
                                   "e": SubmissionStatus.FAILED})
    assert (progress.done, progress.in_doubt, progress.failed) == \
        (frozenset("ab"), frozenset("cd"), frozenset("e"))


# -- waking up ------------------------------------------------------------------------------


async def test_notify_wakes_a_listener_at_commit(store: Store, queue: Queue) -> None:
    latencies = []
    async with queue.listen([CBC], poll_interval=30) as wakeups:
        assert await anext(wakeups) is Wakeup.STARTED
        for n in range(10):
            waiting = asyncio.create_task(anext(wakeups))
            await asyncio.sleep(0.02)  # the listener is waiting now
            started = time.perf_counter()
            await plan(store, [new_job(n=n)])
            reason = await asyncio.wait_for(waiting, 5)
            latencies.append(time.perf_counter() - started)
            assert reason is Wakeup.NOTIFIED
            assert len(await queue.claim("w", [CBC])) == 1
        assert wakeups.notifications >= 10
    print(f"\nnotify: ingest+accept to wake-up median {statistics.median(latencies) * 1e3:.1f} ms, "
          f"max {max(latencies) * 1e3:.1f} ms")


async def test_a_listener_ignores_other_kinds(store: Store, queue: Queue) -> None:
    async with queue.listen([SMS], poll_interval=0.5) as wakeups:
        assert await anext(wakeups) is Wakeup.STARTED
        waiting = asyncio.create_task(anext(wakeups))
        await asyncio.sleep(0.02)
        await plan(store, [new_job(kind=CBC)])
        assert await asyncio.wait_for(waiting, 5) is Wakeup.POLL
        assert wakeups.notifications == 0


async def test_polling_finds_jobs_whose_notification_was_missed(
        store: Store, queue: Queue, database_url: str) -> None:
    alert_id, _ = await plan(store, [])
    poll = 0.6
    async with queue.listen([CBC], poll_interval=poll) as wakeups:
        assert await anext(wakeups) is Wakeup.STARTED
        waiting = asyncio.create_task(anext(wakeups))
        await asyncio.sleep(0.02)
        # A job made claimable without its trigger firing (as a restore or a hand edit would):
        # no NOTIFY is sent.
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("SET session_replication_role = replica")
            started = time.perf_counter()
            await conn.execute("INSERT INTO jobs (alert_id, operator, gateway, kind, payload) "
                               "VALUES ($1, 'A', 'a-gw', 'cbc-rest', '{}')", alert_id)
        finally:
            await conn.close()
        assert await asyncio.wait_for(waiting, 5) is Wakeup.POLL
        assert time.perf_counter() - started > poll * 0.5
        assert wakeups.notifications == 0
        assert len(await queue.claim("w")) == 1


async def test_a_listener_wakes_when_a_retry_is_due(store: Store, queue: Queue) -> None:
    await plan(store, [new_job()])
    (held,) = await queue.claim("w")
    async with queue.listen(poll_interval=30) as wakeups:
        assert await anext(wakeups) is Wakeup.STARTED
        await queue.fail(held, "throttled", delay=0.3)
        # The requeue notifies at once (nothing is due yet), then the due time wakes it.
        assert await asyncio.wait_for(anext(wakeups), 5) is Wakeup.NOTIFIED
        assert await queue.claim("w") == []
        started = time.perf_counter()
        assert await asyncio.wait_for(anext(wakeups), 5) is Wakeup.DUE
        assert time.perf_counter() - started < 5
        assert len(await queue.claim("w")) == 1


async def test_a_listener_survives_losing_its_connection(store: Store, queue: Queue,
                                                         database_url: str) -> None:
    async with queue.listen([CBC], poll_interval=30) as wakeups:
        assert await anext(wakeups) is Wakeup.STARTED
        waiting = asyncio.create_task(anext(wakeups))
        await asyncio.sleep(0.02)
        conn = await asyncpg.connect(database_url)
        try:
            # The listener's connection is the one that last asked when the next job is due.
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE '%min(next_attempt_at)%' "
                "AND pid <> pg_backend_pid()")
            assert killed == 1
        finally:
            await conn.close()
        assert await asyncio.wait_for(waiting, 5) is Wakeup.POLL
        assert await asyncio.wait_for(anext(wakeups), 5) is Wakeup.RECONNECTED
        waiting = asyncio.create_task(anext(wakeups))
        await asyncio.sleep(0.02)
        await plan(store, [new_job()])
        assert await asyncio.wait_for(waiting, 5) is Wakeup.NOTIFIED


async def test_a_worker_loop(store: Store, queue: Queue) -> None:
    """The shape a worker takes: listen, claim until empty, housekeeping on the timer."""
    done: Counter[str] = Counter()

    async def worker(name: str, stop: asyncio.Event) -> None:
        async with queue.listen(poll_interval=0.2) as wakeups:
            async for reason in wakeups:
                if reason is Wakeup.POLL:
                    await queue.housekeeping()
                while jobs := await queue.claim(name, limit=4):
                    for j in jobs:
                        await queue.complete(j)
                        done[name] += 1
                if stop.is_set():
                    return

    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker(f"w{i}", stop)) for i in range(3)]
    for batch in range(5):
        await plan(store, [new_job(f"Op{i}", n=batch * 10 + i) for i in range(10)])
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + 10
    while sum(done.values()) < 50 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sum(done.values()) == 50
    assert {a.state for a in await store.list_alerts()} == {AlertState.DONE}
