"""The durable job queue in PostgreSQL: claim under a lease, heartbeat, retry, reclaim, listen.

Any number of worker processes on any number of hosts share one database.
A worker *claims* jobs with ``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent
claimers skip each other's rows instead of waiting: each job goes to exactly
one of them) and holds each under a *lease* that it extends with
:meth:`Queue.heartbeat`. A worker that stops heartbeating (crashed, hung,
cut off) loses its jobs when :meth:`Queue.reclaim_expired_leases` (or
:meth:`Queue.housekeeping`) runs: they return to the queue for another worker,
or fail when out of attempts. Failures retry with exponential backoff
(:class:`RetryPolicy`) until the job's ``max_attempts`` or its expiry. Times
are the database's clock, shared by every host.

Every write a worker makes about a job it holds is *fenced* by the pair
(``lease_owner``, ``attempts``) of the claimed :class:`~dispatcher.store.Job`:
once its lease was taken over, or the job was cancelled or expired, the write
changes nothing and raises :class:`~dispatcher.errors.LeaseLost` (or
:class:`~dispatcher.errors.JobStopped`), and the worker must stop.

Workers wait in :meth:`Queue.listen`, woken by ``LISTEN/NOTIFY`` (a trigger on
``jobs`` notifies channel ``capcast_jobs`` when a job becomes claimable, at
commit), by the due time of the earliest retry, and by a polling timer as a
fallback for notifications that were missed (a dropped connection, a job made
claimable by hand).

Submissions and crashes (the idempotency story)
-----------------------------------------------
A job's work is a set of *items* (one recipient's SMS segment, one CBC
request), each named by a stable string. The worker:

1. **records** the requests of one window *before* writing them to the peer
   (:meth:`Queue.record_submissions`: one round trip per window, rows in state
   ``pending``), then sends them;
2. **settles** each as its answer arrives (:meth:`Queue.settle_submissions`:
   ``acknowledged`` with the peer's message id, ``rejected`` for good, or
   ``failed`` to retry), and records the next window only as slots free up.

If the worker dies, reclaiming its lease turns its ``pending`` submissions
into ``in_doubt``: each may or may not have reached the peer. The next worker
asks :meth:`Queue.progress` and sends only the items not acknowledged or
rejected. So a request is never lost (it is recorded before it is sent; one
that was never recorded was never sent) and at most one window (the
requests in flight at the crash) is sent twice. Recording *after* sending
would be worse both ways: a crash between send and record would leave no
trace of a request that went out, and it would be re-sent with nobody able
to tell. A worker that merely lost its lease (paused, partitioned) cannot
record another window (the fence), so it too stops after at most the window
in flight. Late answers are still recorded: an ``in_doubt`` submission
settles to what the peer said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from dispatcher import sql
from dispatcher.errors import JobStopped, LeaseLost, NotFound, StoreError
from dispatcher.store import (
    AlertState,
    Job,
    JobKind,
    JobState,
    PoolClient,
    Submission,
    SubmissionStatus,
    database_errors,
)

if TYPE_CHECKING:
    from types import TracebackType

    from dispatcher.store import Connection, Pool

__all__ = [
    "CHANNEL",
    "Housekeeping",
    "JobProgress",
    "Listener",
    "NewSubmission",
    "Queue",
    "RetryPolicy",
    "SubmissionResult",
    "Wakeup",
]

logger = logging.getLogger(__name__)

#: The NOTIFY channel of the ``jobs`` trigger; the payload is the job's kind.
CHANNEL = "capcast_jobs"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff: ``base_delay * factor ** (attempt - 1)``, capped, with jitter.

    ``jitter`` spreads each delay by up to that fraction either way so that
    jobs failing together do not come back together.
    """

    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.factor < 1 or self.max_delay < self.base_delay:
            raise ValueError(f"RetryPolicy needs base_delay >= 0, factor >= 1 and max_delay >= "
                             f"base_delay; got {self}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"RetryPolicy.jitter must be in [0, 1), got {self.jitter}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        exponent = max(attempt - 1, 0)
        # Compare in log space first: factor ** exponent can overflow for large attempts.
        raw = self.max_delay if exponent > 1024 else min(self.max_delay,
                                                         self.base_delay * self.factor ** exponent)
        if self.jitter and rng is not None:
            raw *= 1 + rng.uniform(-self.jitter, self.jitter)
        return max(raw, 0.0)


class Wakeup(Enum):
    """Why :class:`Listener` woke up (each is a reason to try claiming)."""

    #: The first iteration: claim whatever is already waiting.
    STARTED = "started"
    #: A job of a kind listened for became claimable (NOTIFY).
    NOTIFIED = "notified"
    #: The earliest retry's due time came.
    DUE = "due"
    #: The polling timer ran out (the fallback for missed notifications).
    POLL = "poll"
    #: The listening connection was lost or re-established; notifications may be missed.
    RECONNECTED = "reconnected"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewSubmission:
    """A request about to be sent: ``item`` names the unit of work, stable across attempts.

    ``sequence_number`` is the SMPP sequence number when there is one;
    ``details`` anything worth keeping (recipient, segment, PDU kind).
    """

    item: str
    sequence_number: int | None = None
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionResult:
    """The peer's answer to a recorded submission."""

    id: int
    status: SubmissionStatus
    message_id: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status in (SubmissionStatus.PENDING, SubmissionStatus.IN_DOUBT):
            raise ValueError(f"a submission settles to acknowledged, rejected or failed, "
                             f"not {self.status.value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobProgress:
    """Per item of a job, its best-known status (settled beats later pending rows)."""

    latest: Mapping[str, SubmissionStatus]

    @property
    def done(self) -> frozenset[str]:
        """Items never to send again: acknowledged or rejected for good."""
        return frozenset(item for item, status in self.latest.items()
                         if status in (SubmissionStatus.ACKNOWLEDGED, SubmissionStatus.REJECTED))

    @property
    def in_doubt(self) -> frozenset[str]:
        """Items that were in flight when a worker lost the job (re-sent: the window)."""
        return frozenset(item for item, status in self.latest.items()
                         if status in (SubmissionStatus.IN_DOUBT, SubmissionStatus.PENDING))

    @property
    def failed(self) -> frozenset[str]:
        """Items whose last try failed in a way worth retrying."""
        return frozenset(item for item, status in self.latest.items()
                         if status is SubmissionStatus.FAILED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Housekeeping:
    """What one :meth:`Queue.housekeeping` pass did (job ids)."""

    requeued: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    expired: tuple[int, ...] = ()


def _kinds(kinds: Collection[JobKind] | None) -> list[str] | None:
    return None if kinds is None else [k.value for k in kinds]


@dataclass(slots=True, kw_only=True)
class Queue(PoolClient):
    """The job queue's operations on one pool.

    ``retry`` computes the backoff of :meth:`fail`; ``rng`` its jitter (give
    ``random.Random(seed)`` for repeatable delays). ``url`` only names the
    database in error messages.
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rng: random.Random = field(default_factory=random.Random)


    @staticmethod
    async def _lost(conn: Connection, job: Job, operation: str) -> LeaseLost:
        state = await conn.fetchval(sql.query("job_state"), job.id)
        error = JobStopped if state in (JobState.CANCELLED.value, JobState.EXPIRED.value) \
            else LeaseLost
        return error(job.id, state=state, attempt=job.attempts,
                     worker_id=job.lease_owner or "?", operation=operation)

    @staticmethod
    async def _finish_alerts(conn: Connection, alert_ids: Collection[int]) -> None:
        # Lock the alerts first: of two jobs of one alert finishing at once, the second
        # to get the lock sees the first's commit and finishes the alert.
        ids = sorted(set(alert_ids))
        if ids:
            await conn.execute(sql.query("lock_alerts"), ids)
            await conn.execute(sql.query("finish_alerts"), ids)

    # -- claiming ------------------------------------------------------------------------

    async def claim(self, worker_id: str, kinds: Collection[JobKind] | None = None, *,
                    limit: int = 1, lease_seconds: float = 30.0,
                    operators: Collection[str] | None = None) -> list[Job]:
        """Take up to ``limit`` due jobs (of these kinds and operators) under a lease.

        Highest priority first, then the longest due. Each job is claimed by
        exactly one worker, however many claim at once. Its ``attempts`` goes
        up by one; its alert becomes ``dispatching``. Jobs that share a lock
        key are handed out one at a time, in creation order.
        """
        if limit < 1 or lease_seconds <= 0:
            raise ValueError(f"claim needs limit >= 1 and lease_seconds > 0, got {limit}, "
                             f"{lease_seconds}")
        async with self._connection("claim") as conn:
            rows = await conn.fetch(sql.query("claim_jobs"), worker_id, _kinds(kinds),
                                    None if operators is None else list(operators), limit,
                                    float(lease_seconds))
        return [Job.from_row(r) for r in rows]

    async def heartbeat(self, job: Job, *, lease_seconds: float = 30.0) -> datetime:
        """Extend the lease on a claimed job to ``lease_seconds`` from now; returns its end.

        Raises:
            LeaseLost: the lease was taken over (stop working on the job).
            JobStopped: the job was cancelled or expired (stop broadcasting).

        """
        async with self._connection("heartbeat") as conn:
            until = await conn.fetchval(sql.query("heartbeat"), job.id, job.lease_owner,
                                        job.attempts, float(lease_seconds))
            if until is None:
                raise await self._lost(conn, job, "heartbeat")
        return until  # type: ignore[no-any-return]

    async def complete(self, job: Job, *, result: Mapping[str, Any] | None = None) -> Job:
        """Mark a claimed job succeeded (``result``: a JSON summary to keep with it).

        Raises:
            LeaseLost: this worker no longer holds the job; nothing was changed.
            JobStopped: the job was cancelled or expired meanwhile.

        """
        async with self._transaction("complete") as conn:
            row = await conn.fetchrow(sql.query("complete_job"), job.id, job.lease_owner,
                                      job.attempts, None if result is None else dict(result))
            if row is None:
                raise await self._lost(conn, job, "complete")
            await self._finish_alerts(conn, [job.alert_id])
        return Job.from_row(row)

    async def fail(self, job: Job, error: str, *, retry: bool = True,
                   delay: float | None = None) -> Job:
        """Give a claimed job back after a failure; returns it as it is now.

        With ``retry`` it is queued again after ``delay`` seconds (default: the
        :class:`RetryPolicy` for this attempt), unless it is out of attempts
        (then ``failed``) or the next attempt would come after its expiry
        (then ``expired``). Without, it fails for good. Its submissions still
        pending become in doubt.

        Raises:
            LeaseLost: this worker no longer holds the job; nothing was changed.
            JobStopped: the job was cancelled or expired meanwhile.

        """
        wait = self.retry.delay(job.attempts, self.rng) if delay is None else delay
        if wait < 0:
            raise ValueError(f"delay must not be negative, got {wait}")
        async with self._transaction("fail") as conn:
            row = await conn.fetchrow(sql.query("fail_job"), job.id, job.lease_owner,
                                      job.attempts, error, float(wait), retry)
            if row is None:
                raise await self._lost(conn, job, "fail")
            failed = Job.from_row(row)
            if failed.state.finished:
                await self._finish_alerts(conn, [job.alert_id])
        logger.info("job %s attempt %s failed: %s", job.id, job.attempts, error,
                    extra={"action": "job_failed", "job_id": job.id, "alert_id": job.alert_id,
                           "state": failed.state.value, "retry_in_s": wait})
        return failed

    # -- stopping ------------------------------------------------------------------------

    async def _stop(self, operation: str, alert_id: int, reason: str, job_state: JobState,
                    alert_state: AlertState, actor: str) -> list[int]:
        async with self._transaction(operation) as conn:
            if await conn.fetchval(sql.query("alert_state"), alert_id) is None:
                raise NotFound("alert", alert_id, operation=operation)
            stopped = await conn.fetch(sql.query("stop_jobs_of_alerts"), [alert_id],
                                       job_state.value, reason)
            await conn.execute(sql.query("stop_alerts"), [alert_id], alert_state.value, None)
            ids = [r["id"] for r in stopped]
            await conn.execute(sql.query("append_audit"), actor, f"alert.{job_state.value}",
                               f"alert:{alert_id}", {"reason": reason, "jobs": ids})
        return ids

    async def cancel_alert_jobs(self, alert_id: int, *, reason: str,
                                actor: str = "system") -> list[int]:
        """Cancel every unfinished job of an alert (and the alert); returns the job ids.

        Workers holding one learn it at their next heartbeat or submission.
        """
        return await self._stop("cancel_alert_jobs", alert_id, reason, JobState.CANCELLED,
                                AlertState.CANCELLED, actor)

    async def expire_alert_jobs(self, alert_id: int, *, reason: str,
                                actor: str = "system") -> list[int]:
        """Expire every unfinished job of an alert (and the alert); returns the job ids."""
        return await self._stop("expire_alert_jobs", alert_id, reason, JobState.EXPIRED,
                                AlertState.EXPIRED, actor)

    async def reclaim_expired_leases(self) -> Housekeeping:
        """Take jobs back from workers whose lease ran out (their worker died or hung).

        Each goes back to the queue (due now), or fails when out of attempts,
        or expires; what its worker had in flight becomes in doubt.
        """
        async with self._transaction("reclaim_expired_leases") as conn:
            rows = await conn.fetch(sql.query("reclaim_expired_leases"))
            await self._finish_alerts(conn, [r["alert_id"] for r in rows
                                             if r["state"] != JobState.QUEUED.value])
        by_state: dict[str, list[int]] = {}
        for r in rows:
            by_state.setdefault(r["state"], []).append(r["id"])
        if rows:
            logger.warning("reclaimed %d jobs from expired leases", len(rows),
                           extra={"action": "lease_reclaim", "jobs": [r["id"] for r in rows]})
        return Housekeeping(requeued=tuple(by_state.get(JobState.QUEUED.value, ())),
                            failed=tuple(by_state.get(JobState.FAILED.value, ())),
                            expired=tuple(by_state.get(JobState.EXPIRED.value, ())))

    async def expire_due(self) -> list[int]:
        """Expire queued and running jobs whose expiry passed; returns their ids."""
        async with self._transaction("expire_due") as conn:
            rows = await conn.fetch(sql.query("expire_due_jobs"))
            await self._finish_alerts(conn, [r["alert_id"] for r in rows])
        return [r["id"] for r in rows]

    async def housekeeping(self) -> Housekeeping:
        """Reclaim expired leases, then expire what is past its expiry (run it every poll)."""
        reclaimed = await self.reclaim_expired_leases()
        expired = await self.expire_due()
        return Housekeeping(requeued=reclaimed.requeued, failed=reclaimed.failed,
                            expired=reclaimed.expired + tuple(expired))

    # -- submissions ---------------------------------------------------------------------

    async def record_submissions(self, job: Job, items: Sequence[NewSubmission]) -> list[int]:
        """Record requests about to be sent for a claimed job; returns their ids, in order.

        Call it *before* writing them to the peer (see the module docstring).

        Raises:
            LeaseLost: this worker no longer holds the job: send nothing.
            JobStopped: the job was cancelled or expired: send nothing.

        """
        if not items:
            return []
        payload = [{"item": s.item, "sequence_number": s.sequence_number,
                    "details": None if s.details is None else dict(s.details)} for s in items]
        async with self._connection("record_submissions") as conn:
            rows = await conn.fetch(sql.query("record_submissions"), job.id, job.lease_owner,
                                    job.attempts, payload)
            if not rows:
                raise await self._lost(conn, job, "record_submissions")
        # Identity values follow the insertion order, which follows the items' order.
        return sorted(r["id"] for r in rows)

    async def settle_submissions(self, results: Sequence[SubmissionResult]) -> int:
        """Record the peer's answers; returns how many submissions changed.

        Not fenced by the lease: an answer is a fact even when it arrives after
        the job was taken over. Receipts that came before the answer are
        matched to their submission here.
        """
        if not results:
            return 0
        payload = [{"id": r.id, "status": r.status.value, "message_id": r.message_id,
                    "error": r.error} for r in results]
        async with self._transaction("settle_submissions") as conn:
            rows = await conn.fetch(sql.query("settle_submissions"), payload)
            with_ids = [r["id"] for r in rows if r["message_id"] is not None]
            if with_ids:
                await conn.execute(sql.query("link_receipts"), with_ids)
        return len(rows)

    async def progress(self, job_id: int) -> JobProgress:
        """What a (resuming) worker must not send again, per item."""
        async with self._connection("progress") as conn:
            rows = await conn.fetch(sql.query("job_progress"), job_id)
        return JobProgress(latest={r["item"]: SubmissionStatus(r["status"]) for r in rows})

    async def submissions(self, job_id: int) -> list[Submission]:
        """Every submission of a job, oldest first."""
        async with self._connection("submissions") as conn:
            rows = await conn.fetch(sql.query("submissions_of_job"), job_id)
        return [Submission.from_row(r) for r in rows]

    async def get_job(self, job_id: int) -> Job:
        """One job as it is now.

        Raises:
            NotFound: no such job.

        """
        async with self._connection("get_job") as conn:
            row = await conn.fetchrow(sql.query("get_job"), job_id)
        if row is None:
            raise NotFound("job", job_id, operation="get_job")
        return Job.from_row(row)

    async def counts(self, alert_id: int | None = None) -> dict[tuple[JobKind, JobState], int]:
        """How many jobs per (kind, state), of one alert or of all."""
        async with self._connection("counts") as conn:
            rows = await conn.fetch(sql.query("queue_counts"), alert_id)
        return {(JobKind(r["kind"]), JobState(r["state"])): r["count"] for r in rows}

    # -- waiting -------------------------------------------------------------------------

    def listen(self, kinds: Collection[JobKind] | None = None, *,
               operators: Collection[str] | None = None,
               poll_interval: float = 5.0) -> Listener:
        """An async iterator of :class:`Wakeup`: each one is a reason to try :meth:`claim`.

        Use it as ``async with queue.listen(kinds) as wakeups: async for why in
        wakeups: ...`` so that its connection is released when done. It holds
        one pool connection while it listens.
        """
        return Listener(pool=self.pool, kinds=_kinds(kinds),
                        operators=None if operators is None else list(operators),
                        poll_interval=poll_interval, url=self._redacted)

    # -- broadcasts on the air -----------------------------------------------------------

    async def latest_broadcast_submission(self, *, operator: str, gateway: str,
                                          message_identifier: int,
                                          message_code: int | None = None,
                                          serial_number: int | None = None,
                                          exclude_job: int | None = None) -> Submission | None:
        """The latest acknowledged request about one broadcast channel of a gateway, or None.

        Among the submissions of ``operator``'s ``gateway`` whose item is
        ``create:``, ``replace:``, ``cancel:`` or ``stop:`` + ``message_identifier``
        (the items of :class:`~dispatcher.worker.CbcRestPort` and the SMPP
        broadcast port, which may add ``#<part>`` and ``@<id>``), the one sent
        last. When its ``details["operation"]`` is ``create`` or ``replace``
        that broadcast is on the air and its ``message_id`` is the peer's id of
        it (the SMSC message id of a ``broadcast_sm``); a ``cancel`` or ``stop``
        means nothing is. An SMPP broadcast may be on the air in several parts
        (several ``broadcast_sm``): this is one of them, see
        :meth:`broadcast_parts_on_air` for all. ``message_code`` (bits 4-13 of
        the serial number) keeps to one alert chain, ``serial_number`` to one
        version of it; ``exclude_job`` leaves a job's own submissions out.
        """
        async with self._connection("latest_broadcast_submission") as conn:
            row = await conn.fetchrow(sql.query("latest_broadcast_submission"), operator,
                                      gateway, message_identifier, message_code, serial_number,
                                      exclude_job)
        return Submission.from_row(row) if row is not None else None

    async def broadcast_parts_on_air(self, *, operator: str, gateway: str,
                                     message_identifier: int, message_code: int | None = None,
                                     serial_number: int | None = None,
                                     exclude_job: int | None = None,
                                     ) -> tuple[Submission, ...] | None:
        """Every part of one SMPP broadcast version still on the air, in the order sent.

        Among the acknowledged submissions of ``operator``'s ``smpp-broadcast``
        ``gateway`` about ``message_identifier`` (items ``create:``,
        ``replace:``, ``cancel:``, ``stop:`` + the identifier, with or without a
        ``#<part>`` / ``@<id>`` suffix) that pass the filters, the *version* is
        the job of the latest ``create`` or ``replace``. Its parts on the air are
        its acknowledged ``create`` / ``replace`` submissions of the identifier
        (``message_id``: the SMSC message id of each ``broadcast_sm``) that no
        acknowledged ``cancel`` or ``stop`` sent later names (those settle with
        the id of the broadcast they stopped). Only the latest version counts:
        a replace cancels all of the one before it before it broadcasts.

        Filters, as for :meth:`latest_broadcast_submission`: ``message_code``
        one alert chain, ``serial_number`` one version of it; ``exclude_job``
        leaves a job's own submissions out, its cancels and stops included (so
        that a retry of that job gets the same parts again).

        Returns:
            None when no acknowledged request passes the filters at all (nothing
            to go by); an empty tuple when some do but no part is on the air
            (all cancelled or stopped, or no create or replace among them).

        """
        async with self._connection("broadcast_parts_on_air") as conn:
            rows = await conn.fetch(sql.query("broadcast_parts_on_air"), operator, gateway,
                                    message_identifier, message_code, serial_number,
                                    exclude_job)
        if not rows:
            return None
        # One row of NULLs stands for "requests matched, no part on the air".
        return tuple(Submission.from_row(r) for r in rows if r["id"] is not None)


class Listener:
    """Wakes a worker when there may be work: NOTIFY, the next retry's due time, polling.

    The polling timer (``poll_interval``) is the fallback: work whose
    notification was missed is found within one interval. When the listening
    connection breaks, the listener keeps waking on the timer and reconnects
    on the next iteration (answering :attr:`Wakeup.RECONNECTED`).
    """

    def __init__(self, *, pool: Pool, kinds: list[str] | None, operators: list[str] | None,
                 poll_interval: float, url: str | None = None) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        self._pool = pool
        self._kinds = kinds
        self._operators = operators
        self.poll_interval = poll_interval
        self._url = url
        self._event = asyncio.Event()
        self._connection: Connection | None = None
        self._started = False
        self._closed = False
        self._broken = False
        #: Notifications received for the kinds listened for (for metrics and tests).
        self.notifications = 0

    # asyncpg calls these on its protocol's callbacks, in the event loop.
    def _on_notify(self, connection: object, pid: int, channel: str, payload: object) -> None:
        if self._kinds is None or payload in self._kinds:
            self.notifications += 1
            self._event.set()

    def _on_terminate(self, connection: object) -> None:
        self._broken = True
        self._event.set()

    async def _connect(self) -> None:
        async with database_errors("listen", self._url):
            connection = await self._pool.acquire()
            try:
                await connection.add_listener(CHANNEL, self._on_notify)
                connection.add_termination_listener(self._on_terminate)
            except BaseException:
                await self._pool.release(connection)
                raise
        self._connection = connection
        self._broken = False

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            connection.remove_termination_listener(self._on_terminate)
            if not connection.is_closed():
                await connection.remove_listener(CHANNEL, self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool.release(connection)

    async def _next_due(self) -> float | None:
        if self._connection is None:
            return None
        try:
            async with database_errors("listen", self._url):
                due = await self._connection.fetchval(sql.query("next_due"), self._kinds,
                                                      self._operators)
        except StoreError:
            return None
        return None if due is None else float(due)

    async def __aenter__(self) -> Listener:
        if self._connection is None and not self._closed:
            await self._connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and give the connection back to the pool."""
        self._closed = True
        await self._disconnect()

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> Wakeup:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            self._started = True
            if self._connection is None:
                await self._connect()
            return Wakeup.STARTED
        if self._broken or self._connection is None:
            await self._disconnect()
            try:
                await self._connect()
            except StoreError as exc:
                logger.warning("cannot listen for jobs, polling: %s", exc,
                               extra={"action": "listen_lost"})
                await asyncio.sleep(self.poll_interval)
                return Wakeup.POLL
            return Wakeup.RECONNECTED
        timeout, reason = self.poll_interval, Wakeup.POLL
        due = await self._next_due()
        if due is not None and due < timeout:
            timeout, reason = max(due, 0.001), Wakeup.DUE
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return reason
        self._event.clear()
        if self._broken:
            return Wakeup.POLL
        return Wakeup.NOTIFIED
