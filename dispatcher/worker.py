"""Workers: claim jobs from the queue, run them through a gateway port, record every request.

A :class:`Worker` claims jobs (``FOR UPDATE SKIP LOCKED`` under a lease, see
:mod:`dispatcher.queue`), heartbeats while it runs each one and hands it to
the :class:`GatewayPort` configured for the job's (operator, gateway). A port
records each request as a submission *before* sending it and settles it with
the peer's answer afterwards (:class:`Submissions`), so a crash re-sends at
most the request that was in flight, and a retried job skips what the peer
already acknowledged.

Errors: a retryable gateway error (unreachable, timeout, a 5xx, SMPP flow
control) gives the job back for a later attempt (``queue.fail(..., retry=True)``);
a refusal (400, a scope the CBC cannot express, a local protocol error) fails it
for good. A job past its ``expires_at`` is never sent. A request whose answer
never came (a timeout) is left ``pending``, so that the failed attempt turns it
``in_doubt``: the peer may have carried it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from dispatcher.errors import JobStopped, LeaseLost
from dispatcher.planner import Action, BroadcastScope, GatewayKind, PlannedJob
from dispatcher.queue import NewSubmission, Queue, SubmissionResult, Wakeup
from dispatcher.store import Job, JobKind, Submission, SubmissionStatus
from gateways.cbc.client import CbcClient, CbcResult
from gateways.cbc.ecbe import (
    CbcIllegalState,
    CbcMessage,
    CbcMessageActive,
    CbcNotImplemented,
    CbcUnknownMessage,
    Confirmation,
    EncodedPayload,
    ReplaceIncomplete,
    parse_cell_id,
    repetition_units,
)
from gateways.compose import BroadcastText
from gateways.errors import (
    CbcError,
    ConnectionLost,
    Expired,
    GatewayError,
    GatewayTimeout,
    LocalProtocolError,
    SmppError,
)
from gateways.smpp.errors import is_retryable as smpp_status_retryable

__all__ = [
    "CbcRestPort",
    "GatewayPort",
    "JobOutcome",
    "Submissions",
    "Worker",
    "is_retryable",
]

logger = logging.getLogger(__name__)

#: Repetition period used when a broadcast job names none (the planner's default).
DEFAULT_REPETITION_SECONDS = 60


def _utcnow() -> datetime:
    return datetime.now(UTC)


def is_retryable(exc: BaseException) -> bool:
    """True when a gateway error is worth another attempt later (the peer may recover).

    Lost connections, timeouts, 5xx answers (other than 501) and the SMPP
    statuses marked retryable (ESME_RTHROTTLED, ESME_RMSGQFUL, system errors)
    are; refusals (400, 404, 409, 501, a scope the CBC cannot express, any other
    SMPP command_status) are not.
    """
    if isinstance(exc, ConnectionLost | GatewayTimeout | CbcIllegalState | ReplaceIncomplete):
        return True
    if isinstance(exc, CbcNotImplemented):
        return False
    if isinstance(exc, SmppError):
        return smpp_status_retryable(exc.command_status)
    return isinstance(exc, CbcError) and exc.status is not None and exc.status >= 500


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOutcome:
    """What a port did with one job: requests acknowledged, skipped (done earlier), details."""

    sent: int
    skipped: int = 0
    details: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary, kept as the job's result."""
        return {"sent": self.sent, "skipped": self.skipped,
                "details": [dict(d) for d in self.details]}


@dataclass(slots=True, kw_only=True)
class Submissions:
    """The submission log of one claimed job, as a port sees it.

    Calling it records requests about to be sent (fenced by the lease: raises
    :class:`LeaseLost` / :class:`JobStopped` when the job is no longer this
    worker's); :meth:`settle` records the answers; :attr:`done` names the
    items acknowledged or rejected by an earlier attempt (never sent again).
    """

    queue: Queue
    job: Job
    done: frozenset[str] = frozenset()

    async def __call__(self, items: Sequence[NewSubmission]) -> list[int]:
        """Record ``items`` before sending them; returns their submission ids."""
        return await self.queue.record_submissions(self.job, items)

    async def settle(self, results: Sequence[SubmissionResult]) -> int:
        """Record the peer's answers."""
        return await self.queue.settle_submissions(results)

    async def settle_error(self, submission_id: int, exc: GatewayError, *,
                           outcome_unknown: bool | None = None) -> None:
        """Record that the request ``submission_id`` failed with ``exc``.

        ``failed`` when :func:`is_retryable` says so, else ``rejected``. A
        request whose outcome is unknown (by default: a timeout, the answer
        never came) is left ``pending`` instead: the attempt's end (the port
        raises, the job fails or is reclaimed) turns it ``in_doubt``, which is
        what it is: the peer may have carried it out.
        """
        unknown = isinstance(exc, GatewayTimeout) if outcome_unknown is None else outcome_unknown
        if unknown:
            return
        status = SubmissionStatus.FAILED if is_retryable(exc) else SubmissionStatus.REJECTED
        await self.settle([SubmissionResult(id=submission_id, status=status, error=str(exc))])


class GatewayPort(Protocol):
    """Executes a planned job on one operator's gateway."""

    async def execute(self, job: PlannedJob, *, record: Submissions) -> JobOutcome:
        """Send the job's requests, each recorded before and settled after it is sent.

        Raises:
            GatewayError: the job could not be done (see :func:`is_retryable`).
            Expired: the job's expiry passed before everything was sent.
            LeaseLost, JobStopped: the job is no longer this worker's to run.

        """
        ...


def _detail(submission: Submission, key: str) -> Any:
    """One value of a submission's details (None when absent)."""
    return (submission.details or {}).get(key)


def _payload(text: BroadcastText | object) -> EncodedPayload:
    if not isinstance(text, BroadcastText):
        raise GatewayError(f"a broadcast job needs broadcast texts, got {type(text).__name__}")
    # The pages as planned (composed, shortened, encoded): exactly what was reported.
    return EncodedPayload.from_pages(text.pages)


class CbcRestPort:
    """Runs ``cbc-rest`` jobs through a :class:`~gateways.cbc.client.CbcClient`.

    One CBC request per message identifier (and its text): create and replace
    send the planned cells (or the whole network for a PLMN scope) with the
    planned serial number; stop deletes the message. ``clock`` is checked
    against the job's ``expires_at`` before each request.

    A create whose answer was lost (left in doubt) and whose retry, in a later
    attempt of the job, is answered 409 (the identifier is taken) counts as
    acknowledged (confirmation ``earlier-attempt``) when the message holding
    the identifier carries this job's serial number as far as capcast can
    tell: ECBE has no read endpoint, so the record decides (the last
    acknowledged request of capcast on that channel must not be another
    version's create or replace). Otherwise the 409 is a refusal, as before.
    """

    def __init__(self, client: CbcClient, *,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.client = client
        self.clock = clock

    def _message(self, job: PlannedJob, message_id: int, text: BroadcastText | object
                 ) -> CbcMessage:
        if job.serial_number is None:
            raise GatewayError(f"job {job.key}: a {job.action.value} needs a serial number")
        try:
            cells = (None if job.scope is BroadcastScope.PLMN
                     else tuple(parse_cell_id(c) for c in job.cells))
        except ValueError as exc:
            # A cell the ECBE cannot name (e.g. a 28-bit UMTS cell id): no retry helps.
            raise LocalProtocolError(f"job {job.key}: {exc}", operator=job.operator,
                                     link=self.client.endpoint) from exc
        period = job.repetition.period_seconds if job.repetition else DEFAULT_REPETITION_SECONDS
        return CbcMessage(
            message_id=message_id, serial_number=job.serial_number.pack(),
            payload=_payload(text),
            repetition_period=repetition_units(period or DEFAULT_REPETITION_SECONDS),
            num_broadcasts=job.repetition.count if job.repetition else 0,
            cells=cells)

    async def _send(self, job: PlannedJob, message_id: int,
                    text: BroadcastText | object | None) -> CbcResult | None:
        if job.action is Action.STOP:
            try:
                return await self.client.delete(message_id)
            except CbcUnknownMessage:
                return None  # nothing on the air with it: the stop is done already
        message = self._message(job, message_id, text)
        if job.action is Action.REPLACE:
            return await self.client.replace(message)
        return await self.client.create(message)

    async def execute(self, job: PlannedJob, *, record: Submissions) -> JobOutcome:
        """Create, replace or stop the job's messages on the CBC (see the class docstring)."""
        if job.kind is not GatewayKind.CBC_REST:
            raise GatewayError(f"job {job.key} is {job.kind.value}, not cbc-rest")
        if job.action is Action.STOP:
            work: list[tuple[int, BroadcastText | object | None]] = \
                [(mid, None) for mid in job.message_identifiers]
        else:
            if len(job.texts) != len(job.message_identifiers):
                raise GatewayError(f"job {job.key}: {len(job.texts)} texts for "
                                   f"{len(job.message_identifiers)} message identifiers")
            work = list(zip(job.message_identifiers, job.texts, strict=True))
        sent, skipped, details = 0, 0, []
        for message_id, text in work:
            item = f"{job.action.value}:{message_id}"
            if item in record.done:
                skipped += 1
                continue
            if self.clock() >= job.expires_at:
                raise Expired(f"job {job.key} expired at {job.expires_at.isoformat()} before "
                              f"{item} was sent", operator=job.operator,
                              link=self.client.endpoint)
            serial = job.serial_number.pack() if job.serial_number else None
            [sub_id] = await record([NewSubmission(
                item=item, details={"operation": job.action.value, "message_id": message_id,
                                    "serial_number": serial, "cells": len(job.cells),
                                    "endpoint": self.client.endpoint})])
            try:
                result = await self._send(job, message_id, text)
            except CbcMessageActive as exc:
                if not await self._earlier_create_landed(job, item, message_id, serial,
                                                         record, sub_id):
                    await record.settle_error(sub_id, exc)
                    raise
                logger.warning("job %s: %s answered 409 after an attempt whose answer was "
                               "lost; the message carries our serial number %s: counted as "
                               "sent", job.key, item, serial,
                               extra={"action": "cbc_earlier_attempt", "job": job.key,
                                      "item": item, "serial_number": serial})
                confirmation, attempts = Confirmation.EARLIER_ATTEMPT.value, 1
            except GatewayError as exc:
                await record.settle_error(sub_id, exc)
                raise
            else:
                confirmation = result.confirmation.value if result else "already-stopped"
                attempts = result.attempts if result else 0
            await record.settle([SubmissionResult(
                id=sub_id, status=SubmissionStatus.ACKNOWLEDGED,
                message_id=f"{message_id}/{serial}" if serial is not None else str(message_id))])
            sent += 1
            details.append({"item": item, "confirmation": confirmation, "attempts": attempts})
        return JobOutcome(sent=sent, skipped=skipped, details=tuple(details))

    async def _earlier_create_landed(self, job: PlannedJob, item: str, message_id: int,
                                     serial: int | None, record: Submissions,
                                     current: int) -> bool:
        """After a 409 to a create: True when the message there is this job's own create.

        Only an earlier attempt of this item whose outcome is unknown (in doubt),
        sent with the same serial number, can have put it there; and capcast's
        record must not show another version (another serial number) on the
        air on this channel since.
        """
        if job.action is not Action.CREATE or serial is None:
            return False
        earlier = [s for s in await record.queue.submissions(record.job.id)
                   if s.item == item and s.id != current
                   and s.status in (SubmissionStatus.IN_DOUBT, SubmissionStatus.PENDING)
                   and _detail(s, "serial_number") == serial]
        if not earlier:
            return False  # none of our requests can have landed: another message holds it
        latest = await record.queue.latest_broadcast_submission(
            operator=job.operator, gateway=job.gateway, message_identifier=message_id,
            exclude_job=record.job.id)
        if latest is None:
            return True
        on_air = _detail(latest, "operation") in (Action.CREATE.value, Action.REPLACE.value)
        return not on_air or _detail(latest, "serial_number") == serial


@dataclass(slots=True, kw_only=True)
class Worker:
    """Claims jobs and runs them through the configured gateway ports.

    ``gateways`` maps (operator, gateway name) to its port; ``clock`` is the
    wall clock for expiry checks; ``concurrency`` how many jobs one
    :meth:`run_once` claims and runs at once; ``poll_interval`` the listener's
    fallback polling period (each poll also runs the queue's housekeeping).
    """

    queue: Queue
    gateways: Mapping[tuple[str, str], GatewayPort]
    worker_id: str
    clock: Callable[[], datetime] = _utcnow
    lease_seconds: float = 30.0
    concurrency: int = 4
    poll_interval: float = 5.0
    kinds: Collection[JobKind] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def run_once(self, kinds: Collection[JobKind] | None = None) -> int:
        """Claim up to ``concurrency`` due jobs, run them; returns how many were claimed."""
        jobs = await self.queue.claim(self.worker_id, kinds if kinds is not None else self.kinds,
                                      limit=self.concurrency, lease_seconds=self.lease_seconds)
        if jobs:
            await asyncio.gather(*(self._run_job(job) for job in jobs))
        return len(jobs)

    async def run(self, stop: asyncio.Event) -> None:
        """Run jobs until ``stop`` is set: woken by NOTIFY, due retries and polling."""
        async with self.queue.listen(self.kinds, poll_interval=self.poll_interval) as wakeups:
            stopping = asyncio.create_task(stop.wait())
            swept = time.monotonic()
            try:
                while not stop.is_set():
                    woke = asyncio.ensure_future(anext(wakeups))
                    done, _ = await asyncio.wait({woke, stopping},
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if woke not in done:
                        woke.cancel()
                        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                            await woke
                        break
                    why = woke.result()
                    if why in (Wakeup.STARTED, Wakeup.POLL, Wakeup.RECONNECTED):
                        await self.queue.housekeeping()
                        swept = time.monotonic()
                    # Drain: keep claiming while there is work, and keep sweeping while
                    # draining, so a dead worker's job is not left until this one is idle.
                    while not stop.is_set() and await self.run_once() > 0:
                        if time.monotonic() - swept >= self.poll_interval:
                            await self.queue.housekeeping()
                            swept = time.monotonic()
            finally:
                stopping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stopping

    async def _heartbeat(self, job: Job, work: asyncio.Task[JobOutcome]) -> None:
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.queue.heartbeat(job, lease_seconds=self.lease_seconds)
            except (LeaseLost, JobStopped) as exc:
                logger.warning("job %s: %s; stopping it", job.id, exc,
                               extra={"action": "job_lost", "job_id": job.id})
                work.cancel()
                return

    async def _run_job(self, job: Job) -> None:
        try:
            await self._execute(job)
        except (LeaseLost, JobStopped) as exc:
            # Somebody else holds (or stopped) the job now: nothing more to write.
            logger.info("job %s no longer ours: %s", job.id, exc,
                        extra={"action": "job_lost", "job_id": job.id})

    async def _execute(self, job: Job) -> None:
        port = self.gateways.get((job.operator, job.gateway))
        if port is None:
            await self.queue.fail(job, f"no gateway {job.gateway!r} configured for operator "
                                       f"{job.operator!r} on worker {self.worker_id}",
                                  retry=False)
            return
        try:
            planned = PlannedJob.from_json(job.payload)
        except (KeyError, TypeError, ValueError) as exc:
            await self.queue.fail(job, f"unreadable job payload: {exc}", retry=False)
            return
        if self.clock() >= planned.expires_at:
            await self._expired(job, f"expired at {planned.expires_at.isoformat()}, not sent")
            return
        progress = await self.queue.progress(job.id)
        record = Submissions(queue=self.queue, job=job, done=progress.done)
        work = asyncio.create_task(port.execute(planned, record=record))
        beat = asyncio.create_task(self._heartbeat(job, work))
        try:
            outcome = await work
        except asyncio.CancelledError:
            if work.cancelled() and not beat.done():
                raise  # we were cancelled ourselves
            # The heartbeat found the lease lost or the job stopped: raise it here.
            await self.queue.heartbeat(job, lease_seconds=self.lease_seconds)
            raise
        except Expired as exc:
            await self._expired(job, str(exc))
            return
        except GatewayError as exc:
            retry = is_retryable(exc)
            await self.queue.fail(job, f"{type(exc).__name__}: {exc}", retry=retry)
            return
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        await self.queue.complete(job, result=outcome.to_json())

    async def _expired(self, job: Job, reason: str) -> None:
        # The queue expires jobs by the database's clock; when ours says expired first,
        # the job fails for good: nothing is sent after the expiry either way.
        await self.queue.expire_due()
        await self.queue.fail(job, reason, retry=False)
