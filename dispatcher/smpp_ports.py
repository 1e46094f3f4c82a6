"""The worker's SMPP gateway ports: cell broadcast (SMPP 5.0) and location-based SMS (SMPP 3.4).

Both implement :class:`dispatcher.worker.GatewayPort` on a running
:class:`~gateways.smpp.client.SmppClient`, with the worker's rule for every
request: recorded as a submission *before* it is sent, settled with the
SMSC's answer afterwards, never sent again once acknowledged or rejected
(:attr:`~dispatcher.worker.Submissions.done`). A crash, a lost link or a lost
lease therefore re-sends at most the requests that were in flight.

:class:`SmppBroadcastPort` (``smpp-broadcast`` jobs)
    create: ``broadcast_sm`` per message identifier to the job's cells
    (alias-format broadcast areas), the identifier in ``broadcast_content_type``
    (network GSM), the repetition as ``broadcast_rep_num`` /
    ``broadcast_frequency_interval`` and the job's expiry as validity period.
    Each broadcast_area_identifier TLV takes about twenty octets, and SMSCs
    refuse PDUs over 64 KiB (ESME_RINVCMDLEN, and the link is dropped): the
    cells of one identifier are split, in the job's order, into as many
    ``broadcast_sm`` *parts* as needed to keep each PDU within
    ``max_pdu_bytes``. One part is item ``create:<identifier>``, as it always
    was; several are items ``create:<identifier>#<part>`` (``#1`` …), each its
    own submission recorded before it is sent and settled with its SMSC message
    id, so a retry sends only the parts not acknowledged. The split depends
    only on the job and ``max_pdu_bytes`` (keep that setting between the
    attempts of a job). SMPP 5.0 has no replace: a replace cancels every part
    of the chain's version on the air (the parts acknowledged for the latest
    create or replace with the same message identifier and message code on this
    gateway and not cancelled since, see
    :meth:`dispatcher.queue.Queue.broadcast_parts_on_air`; one item
    ``cancel:<identifier>`` per part, with the part's ``#<part>`` suffix) and
    then broadcasts the new version's parts (items ``replace:<identifier>``,
    ``replace:<identifier>#<part>``). A stop cancels every part on the air of
    the version with the job's serial number (items ``stop:<identifier>``, with
    the part's suffix), or, when nothing was ever acknowledged with that serial
    number, of the chain's latest version. A cancel or stop of a part that was
    acknowledged twice (a late answer to an attempt in doubt) names the second
    broadcast ``@<SMSC message id>`` too. An id the SMSC does not know (any
    more) counts as stopped. SMPP cancels a broadcast whole: a stop for some
    cells of a broadcast stops all its parts everywhere, which is harmless for
    an Update (its replace has already cancelled that version, or will; the
    stop never reaches the new version, which has another serial number) and
    is the only thing SMPP can do otherwise.

:class:`SmppSmsPort` (``smpp-sms`` jobs)
    The recipients are the subscribers the operator reports present in the
    job's cells, looked up when the job runs (per chunk of cells); one SMS per
    text (language) per recipient (item ``sms:<language>:<msisdn>``), streamed
    through :meth:`~gateways.smpp.client.SmppClient.submit_bulk`, recorded and
    settled in batches (one round trip per batch, not per message). Delivery
    receipts that arrive while the job runs are recorded with
    :meth:`dispatcher.store.Store.record_receipt`. A recipient the SMSC refused
    for good is rejected and not retried; messages that were in flight on a
    lost link, or that the SMSC kept throttling, fail the attempt with a
    retryable error and only they are sent by the next one.

Submission details, as :class:`~dispatcher.worker.CbcRestPort` keeps them:
``operation``, ``message_id`` (the CBS message identifier), ``serial_number``
(packed), ``cells`` (how many), ``endpoint`` (the SMSC's ``host:port``); the
SMSC's own message id goes into the submission's ``message_id`` when it is
settled. A broadcast part adds ``part`` and ``parts`` (``cells`` counts the
part's cells); a cancel or stop adds ``smsc_message_id`` (the broadcast it
stops) and ``part``. SMS submissions keep ``operation``, ``language``,
``recipient``, ``cell``, ``segments`` and ``endpoint``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from dispatcher.planner import Action, GatewayKind, PlannedJob
from dispatcher.queue import NewSubmission, Queue, SubmissionResult
from dispatcher.store import Store, Submission, SubmissionStatus
from dispatcher.worker import DEFAULT_REPETITION_SECONDS, JobOutcome, Submissions
from gateways.compose import BroadcastText, SmsText
from gateways.errors import (
    ConnectionLost,
    Expired,
    GatewayError,
    GatewayTimeout,
    LocalProtocolError,
)
from gateways.smpp import codec
from gateways.smpp.client import (
    OutcomeStatus,
    Receipt,
    SmppClient,
    SubmitOutcome,
    address_ton_npi,
)
from gateways.smpp.codec import (
    BroadcastArea,
    BroadcastContentType,
    BroadcastFrequencyInterval,
    MessageState,
)
from gateways.smpp.errors import (
    BroadcastCancelFailed,
    BroadcastQueryFailed,
    InvalidMessageId,
    error_for_status,
)
from gateways.smpp.errors import is_retryable as status_retryable
from gateways.text import ucs2_encode

__all__ = ["SmppBroadcastPort", "SmppSmsPort"]

logger = logging.getLogger(__name__)

#: broadcast_content_type network type of GSM/UMTS/LTE cell broadcast (SMPP 5.0 §4.8.4.5).
GSM_NETWORK: Final = 1

#: The SMPP 3.4 Appendix B ``stat:`` words, the usual vocabulary of delivery receipts.
_RECEIPT_STATES: Final[dict[MessageState, str]] = {
    MessageState.SCHEDULED: "SCHEDULED", MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD", MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED", MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD", MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD", MessageState.SKIPPED: "SKIPPED",
}

#: Octets kept free in each broadcast_sm beyond the fields the port counts, for TLVs the
#: client may add on its own (broadcast_channel_indicator, broadcast_message_class: 5 each).
_PDU_SLACK: Final = 64

# cancel_broadcast_sm answers meaning "no such broadcast (any more)": it is stopped already.
_NOT_ON_AIR: Final = (BroadcastCancelFailed, BroadcastQueryFailed, InvalidMessageId)

_T = TypeVar("_T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _endpoint(client: SmppClient) -> str:
    """``host:port`` of the client's SMSC (several, comma-separated, for several SMSCs)."""
    # The link configurations are the client's own; it exposes no accessor for them.
    hosts = dict.fromkeys(f"{c.host}:{c.port}" for c in client._configs)
    return ", ".join(hosts)


def _detail(submission: Submission, key: str) -> Any:
    return (submission.details or {}).get(key)


def _check_expiry(job: PlannedJob, now: datetime, what: str, link: str) -> None:
    if now >= job.expires_at:
        raise Expired(f"job {job.key} expired at {job.expires_at.isoformat()} before {what}",
                      operator=job.operator, link=link)


async def _wait_bound(client: SmppClient, job: PlannedJob, timeout: float, link: str) -> None:
    """Wait for a bound link: a down SMSC fails the attempt (retried later), it does not hang."""
    try:
        await client.wait_bound(timeout)
    except GatewayTimeout as exc:
        raise GatewayTimeout(f"job {job.key}: no SMPP link to {link} bound within {timeout} s; "
                             "nothing was sent", operator=job.operator, link=link) from exc


# -- cell broadcast ---------------------------------------------------------------------------


class SmppBroadcastPort:
    """Runs ``smpp-broadcast`` jobs through an :class:`SmppClient` bound with SMPP 5.0.

    Args:
        client: The operator's SMPP client, bound with SMPP 5.0.
        queue: Finds the parts on the air that a replace or stop cancels.
        source: The ``source_addr`` (empty: the SMSC chooses).
        clock: Checked against the job's expiry before each request.
        bind_timeout: Seconds a job waits for a bound link before giving the attempt up.
        max_pdu_bytes: The largest ``broadcast_sm`` (command_length, header
            included) the port sends; the cells of a message identifier are
            split into as many PDUs as needed to stay within it. SMPP sets no
            limit, but SMSCs commonly refuse PDUs over 64 KiB (ESME_RINVCMDLEN,
            and drop the link); the default keeps a margin of about 5 KiB below
            that. Keep it between the attempts of a job: another value splits
            the cells differently, and a retry sends them again in new parts.

    """

    def __init__(self, client: SmppClient, *, queue: Queue, source: str = "",
                 clock: Callable[[], datetime] = _utcnow, bind_timeout: float = 10.0,
                 max_pdu_bytes: int = 60_000) -> None:
        if max_pdu_bytes <= codec.HEADER.size:
            raise ValueError(f"max_pdu_bytes must exceed the {codec.HEADER.size}-octet PDU "
                             f"header, got {max_pdu_bytes}")
        self.client = client
        self.queue = queue
        self.source = source
        self.clock = clock
        self.bind_timeout = bind_timeout
        self.max_pdu_bytes = max_pdu_bytes
        self.endpoint = _endpoint(client)

    async def execute(self, job: PlannedJob, *, record: Submissions) -> JobOutcome:
        """Broadcast, replace or stop the job's messages (see the module docstring)."""
        if job.kind is not GatewayKind.SMPP_BROADCAST:
            raise GatewayError(f"job {job.key} is {job.kind.value}, not smpp-broadcast")
        if job.serial_number is None:
            raise GatewayError(f"job {job.key}: a {job.action.value} needs a serial number")
        if job.action is Action.STOP:
            work: list[tuple[int, BroadcastText | None]] = \
                [(mid, None) for mid in job.message_identifiers]
        else:
            texts = [t for t in job.texts if isinstance(t, BroadcastText)]
            if len(texts) != len(job.texts) or len(texts) != len(job.message_identifiers):
                raise GatewayError(f"job {job.key}: {len(job.message_identifiers)} message "
                                   f"identifiers need as many broadcast texts, got "
                                   f"{[type(t).__name__ for t in job.texts]}")
            work = list(zip(job.message_identifiers, texts, strict=True))
        _check_expiry(job, self.clock(), "anything was sent", self.endpoint)
        run = _BroadcastRun(port=self, job=job, record=record)
        for mid, text in work:
            if text is None:
                await run.stop(mid)
            elif job.action is Action.CREATE:
                await run.create(mid, text)
            else:
                await run.replace(mid, text)
        return JobOutcome(sent=run.sent, skipped=run.skipped, details=tuple(run.details))

    def split(self, job: PlannedJob, mid: int, text: BroadcastText) -> list[tuple[str, ...]]:
        """The job's cells for message identifier ``mid``, in parts that each fit one PDU.

        The cells keep the job's order; each part holds as many as fit in
        ``max_pdu_bytes`` with the PDU's other fields (an upper bound of them:
        the text counted in UCS-2, room for a few more TLVs).

        Raises:
            LocalProtocolError: no cells, not even one cell fits (``max_pdu_bytes``
                too small), or a cell id is no valid area alias.

        """
        if not job.cells:
            raise LocalProtocolError(f"job {job.key}: a broadcast needs at least one cell")
        room = self.max_pdu_bytes - self._overhead(job, mid, text)
        parts: list[tuple[str, ...]] = []
        part: list[str] = []
        used = 0
        for cell in job.cells:
            size = len(codec.encode_tlvs((BroadcastArea.alias(cell).to_tlv(),)))
            if size > room:
                raise LocalProtocolError(
                    f"job {job.key}: a broadcast_sm for cell {cell!r} needs "
                    f"{self.max_pdu_bytes - room + size} octets, more than max_pdu_bytes "
                    f"{self.max_pdu_bytes}")
            if used + size > room:
                parts.append(tuple(part))
                part, used = [], 0
            part.append(cell)
            used += size
        if part:
            parts.append(tuple(part))
        return parts

    def _overhead(self, job: PlannedJob, mid: int, text: BroadcastText) -> int:
        """Octets of the job's broadcast_sm without its broadcast_area_identifier TLVs."""
        # The PDU as SmppClient.broadcast builds it, with one area (a PDU needs one) that is
        # then taken off again.
        ton, npi, addr = address_ton_npi(self.source) if self.source else (0, 0, "")
        repetitions, interval = _repetition(job)
        area = BroadcastArea.alias(job.cells[0])
        probe = codec.BroadcastSm(
            source_addr_ton=ton, source_addr_npi=npi, source_addr=addr,
            validity_period=codec.smpp_time(job.expires_at.timestamp()), data_coding=0x08,
            areas=(area,),
            content_type=BroadcastContentType(network_type=GSM_NETWORK, content_type=mid),
            rep_num=repetitions, frequency_interval=BroadcastFrequencyInterval.seconds(interval),
            # UCS-2 is never shorter than the GSM 7-bit alphabet the client may choose.
            message_payload=ucs2_encode(text.text))
        return len(codec.encode(probe)) - len(codec.encode_tlvs((area.to_tlv(),))) \
            + _PDU_SLACK


def _repetition(job: PlannedJob) -> tuple[int, float]:
    """broadcast_rep_num (0: until expiry) and the interval in seconds of the job's broadcast."""
    period = job.repetition.period_seconds if job.repetition else DEFAULT_REPETITION_SECONDS
    return (job.repetition.count if job.repetition else 0,
            period or DEFAULT_REPETITION_SECONDS)


def _suffix(item: str) -> str:
    """The part of a broadcast item: ``#3`` of ``create:4370#3``, empty for a single part."""
    _, sep, part = item.partition("#")
    return sep + part


def _target_items(operation: str, mid: int,
                   targets: Sequence[Submission]) -> list[tuple[str, Submission]]:
    """The cancel or stop item of each part on the air, stable across attempts.

    ``<operation>:<mid>`` + the part's suffix; a part acknowledged twice (a late answer
    to an attempt in doubt put a second copy on the air) adds ``@<its SMSC id>``
    for the copies after the first, so that each has its own item.
    """
    out: list[tuple[str, Submission]] = []
    seen: set[str] = set()
    for target in targets:
        item = f"{operation}:{mid}{_suffix(target.item)}"
        if item in seen:
            item = f"{item}@{target.message_id}"
        seen.add(item)
        out.append((item, target))
    return out


@dataclass(slots=True, kw_only=True)
class _BroadcastRun:
    """One attempt of one broadcast job (internal)."""

    port: SmppBroadcastPort
    job: PlannedJob
    record: Submissions
    sent: int = 0
    skipped: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)
    bound: bool = False

    @property
    def serial(self) -> int:
        assert self.job.serial_number is not None
        return self.job.serial_number.pack()

    @property
    def message_code(self) -> int:
        assert self.job.serial_number is not None
        return self.job.serial_number.message_code

    def _check_expiry(self, item: str) -> None:
        _check_expiry(self.job, self.port.clock(), f"{item} was sent", self.port.endpoint)

    async def _wait_bound(self) -> None:
        # Only before the first request: an attempt with nothing left to send completes
        # while the SMSC is down.
        if not self.bound:
            await _wait_bound(self.port.client, self.job, self.port.bind_timeout,
                              self.port.endpoint)
            self.bound = True

    async def _on_air(self, mid: int, *, serial_number: int | None = None,
                      message_code: int | None = None) -> tuple[Submission, ...] | None:
        # This job's own cancels are left out too: on a retry the same parts come back,
        # under the same items, and those done are skipped.
        return await self.port.queue.broadcast_parts_on_air(
            operator=self.job.operator, gateway=self.job.gateway, message_identifier=mid,
            serial_number=serial_number, message_code=message_code,
            exclude_job=self.record.job.id)

    def _parts(self, mid: int, text: BroadcastText) -> list[tuple[str, tuple[str, ...]]]:
        """(item, cells) of each broadcast_sm of ``mid``."""
        parts = self.port.split(self.job, mid, text)
        operation = self.job.action.value
        if len(parts) == 1:
            return [(f"{operation}:{mid}", parts[0])]
        return [(f"{operation}:{mid}#{n}", cells) for n, cells in enumerate(parts, 1)]

    async def create(self, mid: int, text: BroadcastText) -> None:
        await self._broadcast_parts(mid, text, self._parts(mid, text))

    async def replace(self, mid: int, text: BroadcastText) -> None:
        parts = self._parts(mid, text)
        if all(item in self.record.done for item, _ in parts):
            # The new version is on the air: the old one was cancelled before it.
            self.skipped += len(parts)
            return
        targets = await self._on_air(mid, message_code=self.message_code)
        if targets:
            for item, target in _target_items("cancel", mid, targets):
                if item in self.record.done:
                    self.skipped += 1
                else:
                    await self._cancel(item, mid, target, "cancel")
        else:
            self.details.append({"item": f"cancel:{mid}", "confirmation": "nothing-on-air"})
        await self._broadcast_parts(mid, text, parts)

    async def stop(self, mid: int) -> None:
        targets = await self._on_air(mid, serial_number=self.serial)
        if targets is None:
            # Nothing was ever acknowledged with this serial number (the replace that was to
            # put it on the air did not happen): stop what the chain has on the air.
            targets = await self._on_air(mid, message_code=self.message_code)
        if not targets:
            self.details.append({"item": f"stop:{mid}", "confirmation": "nothing-on-air"})
            return
        for item, target in _target_items("stop", mid, targets):
            if item in self.record.done:
                self.skipped += 1
            else:
                await self._cancel(item, mid, target, "stop")

    async def _broadcast_parts(self, mid: int, text: BroadcastText,
                               parts: Sequence[tuple[str, tuple[str, ...]]]) -> None:
        for n, (item, cells) in enumerate(parts, 1):
            if item in self.record.done:
                self.skipped += 1
            else:
                await self._broadcast(item, mid, text, cells, part=n, parts=len(parts))

    async def _broadcast(self, item: str, mid: int, text: BroadcastText,
                         cells: tuple[str, ...], *, part: int, parts: int) -> None:
        job, port = self.job, self.port
        self._check_expiry(item)
        await self._wait_bound()
        [sub_id] = await self.record([NewSubmission(item=item, details={
            "operation": job.action.value, "message_id": mid, "serial_number": self.serial,
            "cells": len(cells), "part": part, "parts": parts, "endpoint": port.endpoint})])
        repetitions, interval = _repetition(job)
        try:
            outcome = await port.client.broadcast(
                areas=cells, text=text.text, source=port.source,
                content_type=BroadcastContentType(network_type=GSM_NETWORK, content_type=mid),
                repetitions=repetitions, interval=interval, expires_at=job.expires_at)
        except GatewayError as exc:
            # A lost link may have taken the broadcast_sm with it: its outcome is unknown.
            await self.record.settle_error(
                sub_id, exc, outcome_unknown=isinstance(exc, GatewayTimeout | ConnectionLost))
            raise
        await self.record.settle([SubmissionResult(
            id=sub_id, status=SubmissionStatus.ACKNOWLEDGED, message_id=outcome.message_id)])
        self.sent += 1
        failed = [a.name or a.details.hex() for a in outcome.failed_areas]
        if failed:
            logger.warning("job %s: %s refused for %d of %d areas", job.key, item, len(failed),
                           len(cells), extra={"action": "smpp_broadcast_failed_areas",
                                              "job": job.key, "areas": failed[:50]})
        self.details.append({"item": item, "smsc_message_id": outcome.message_id,
                             "failed_areas": failed})

    async def _cancel(self, item: str, mid: int, target: Submission, operation: str) -> None:
        job, port = self.job, self.port
        smsc_id = target.message_id
        assert smsc_id is not None
        self._check_expiry(item)
        await self._wait_bound()
        [sub_id] = await self.record([NewSubmission(item=item, details={
            "operation": operation, "message_id": mid,
            "serial_number": _detail(target, "serial_number"),
            "cells": _detail(target, "cells"), "part": _detail(target, "part"),
            "endpoint": port.endpoint, "smsc_message_id": smsc_id})])
        confirmation = "cancelled"
        try:
            await port.client.cancel_broadcast(smsc_id, source=port.source)
        except _NOT_ON_AIR as exc:
            confirmation = "already-stopped"
            logger.info("job %s: %s: broadcast %s is not on the air any more (%s)", job.key,
                        item, smsc_id, exc, extra={"action": "smpp_broadcast_gone",
                                                  "job": job.key, "smsc_message_id": smsc_id})
        except GatewayError as exc:
            await self.record.settle_error(
                sub_id, exc, outcome_unknown=isinstance(exc, GatewayTimeout | ConnectionLost))
            raise
        # The cancelled broadcast's id: broadcast_parts_on_air then sees that part stopped.
        await self.record.settle([SubmissionResult(
            id=sub_id, status=SubmissionStatus.ACKNOWLEDGED, message_id=smsc_id)])
        self.sent += 1
        self.details.append({"item": item, "smsc_message_id": smsc_id,
                             "confirmation": confirmation})


# -- location-based SMS -----------------------------------------------------------------------


@dataclass(slots=True)
class _SmsPass:
    """Counters of one text's bulk submission (internal)."""

    language: str
    recipients: int = 0
    skipped: int = 0
    accepted: int = 0
    rejected: int = 0
    unconfirmed: int = 0
    retry: int = 0
    expired: int = 0
    receipts: int = 0
    #: submit_sm PDUs sent again for this pass's messages (throttling, lost answers).
    resubmitted: int = 0
    #: ESME_RTHROTTLED / ESME_RMSGQFUL answers on the operator's links during the pass
    #: (the links are shared, so other jobs running at once are counted too).
    link_throttled: int = 0
    #: Stopped recording new recipients: the job's expiry passed.
    expired_early: bool = False
    last_status: int | None = None
    errors: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"language": self.language, "recipients": self.recipients,
                "skipped": self.skipped, "accepted": self.accepted, "rejected": self.rejected,
                "unconfirmed": self.unconfirmed, "failed": self.retry,
                "expired": self.expired, "receipts": self.receipts,
                "resubmitted": self.resubmitted, "link_throttled": self.link_throttled,
                "errors": dict(sorted(self.errors.items(), key=lambda kv: -kv[1])[:10])}


class SmppSmsPort:
    """Runs ``smpp-sms`` jobs: one SMS per language to each subscriber present in the cells.

    Args:
        client: The operator's SMPP client (SMPP 3.4 is enough).
        store: Where the presence is read and delivery receipts are recorded.
        queue: The job queue (kept for symmetry with the broadcast port).
        source: The ``source_addr`` of the messages.
        clock: Checked against the job's expiry before each batch.
        presence_max_age: Only subscribers reported at most this long ago.
        registered_delivery: Ask for delivery receipts.
        receipt_timeout: Seconds to wait for outstanding receipts after the last
            submission; receipts later than that reach only the client's
            ``on_outcome`` callback.
        batch_size: Submissions recorded (and settled) per database round trip; also
            how far recording runs ahead of sending, so it bounds what a database
            outage can leave in doubt (and send twice on the retry).
        cell_chunk: Cells per presence look-up (bounds what one look-up holds).
        bind_timeout: Seconds to wait for a bound link before giving the attempt up.
        max_tracked_receipts: Messages remembered, while their receipts are due, to
            record each receipt under its submission's message id.

    """

    def __init__(self, client: SmppClient, *, store: Store, queue: Queue, source: str,
                 clock: Callable[[], datetime] = _utcnow,
                 presence_max_age: timedelta | None = None, registered_delivery: bool = True,
                 receipt_timeout: float = 5.0, batch_size: int = 256, cell_chunk: int = 1000,
                 bind_timeout: float = 10.0, max_tracked_receipts: int = 250_000) -> None:
        if batch_size < 1 or cell_chunk < 1:
            raise ValueError("batch_size and cell_chunk must be at least 1")
        self.client = client
        self.store = store
        self.queue = queue
        self.source = source
        self.clock = clock
        self.presence_max_age = presence_max_age
        self.registered_delivery = registered_delivery
        self.receipt_timeout = receipt_timeout
        self.batch_size = batch_size
        self.cell_chunk = cell_chunk
        self.bind_timeout = bind_timeout
        self.max_tracked_receipts = max_tracked_receipts
        self.endpoint = _endpoint(client)

    async def execute(self, job: PlannedJob, *, record: Submissions) -> JobOutcome:
        """Send the job's texts to the subscribers present in its cells (module docstring)."""
        if job.kind is not GatewayKind.SMPP_SMS:
            raise GatewayError(f"job {job.key} is {job.kind.value}, not smpp-sms")
        if job.action is Action.STOP:
            # An SMS cannot be recalled; what earlier jobs had not sent was stopped with them.
            return JobOutcome(sent=0, details=({"note": "an SMS cannot be recalled: nothing to "
                                                        "send for a stop"},))
        texts = [t for t in job.texts if isinstance(t, SmsText)]
        if not texts or len(texts) != len(job.texts):
            raise GatewayError(f"job {job.key}: an SMS job needs SMS texts, got "
                               f"{[type(t).__name__ for t in job.texts]}")
        _check_expiry(job, self.clock(), "anything was sent", self.endpoint)
        since = (self.clock() - self.presence_max_age
                 if self.presence_max_age is not None else None)
        passes = [await self._send_text(job, text, record, since) for text in texts]
        outcome = JobOutcome(sent=sum(p.accepted for p in passes),
                             skipped=sum(p.skipped for p in passes),
                             details=tuple(p.to_json() for p in passes))
        if not any(p.recipients for p in passes):
            return JobOutcome(sent=0, details=({
                "recipients": 0, "cells": len(job.cells),
                "note": f"no subscriber present in the {len(job.cells)} targeted cell(s)"},))
        self._raise_for_leftovers(job, passes)
        return outcome

    def _raise_for_leftovers(self, job: PlannedJob, passes: Sequence[_SmsPass]) -> None:
        """After every text was tried: the attempt fails when something is left to send."""
        expired = sum(p.expired for p in passes)
        if expired or any(p.expired_early for p in passes):
            raise Expired(f"job {job.key} expired at {job.expires_at.isoformat()} with "
                          f"{expired} message(s) unsent ({self._summary(passes)})",
                          operator=job.operator, link=self.endpoint)
        unconfirmed = sum(p.unconfirmed for p in passes)
        retry = sum(p.retry for p in passes)
        if not unconfirmed and not retry:
            return
        what = (f"job {job.key}: {unconfirmed} message(s) without an answer (in flight on a "
                f"lost link or timed out) and {retry} failed for now; the next attempt sends "
                f"them again ({self._summary(passes)})")
        statuses = [p.last_status for p in passes if p.last_status is not None]
        if statuses and not unconfirmed:
            # Flow control (the SMSC kept throttling): retryable by its command_status.
            kind = type(error_for_status(statuses[-1]))
            raise kind(what, command_status=statuses[-1], command="submit_sm",
                       operator=job.operator, link=self.endpoint)
        if unconfirmed:
            raise GatewayTimeout(what, operator=job.operator, link=self.endpoint)
        raise ConnectionLost(what, operator=job.operator, link=self.endpoint)

    @staticmethod
    def _summary(passes: Sequence[_SmsPass]) -> str:
        return "; ".join(f"{p.language}: {p.accepted} accepted, {p.rejected} rejected, "
                         f"{p.skipped} done before" for p in passes)

    async def _send_text(self, job: PlannedJob, text: SmsText, record: Submissions,
                         since: datetime | None) -> _SmsPass:
        """One text to every recipient not done yet: record, submit, settle, in batches."""
        run = _SmsPass(language=text.language)
        throttled_before = sum(link.throttled for link in self.client.stats())
        prefix = f"sms:{text.language}:"
        segments = text.segments_preview.count
        # Message n of the bulk job is the n-th recipient yielded: its submission id.
        in_flight: dict[int, int] = {}
        counter = itertools.count()
        bound = False

        async def recipients() -> AsyncIterator[str]:
            nonlocal bound
            for cells in _chunks(job.cells, self.cell_chunk):
                entries = await self.store.presence_in_cells(job.operator, cells, since=since)
                for batch in _chunks(entries, self.batch_size):
                    run.recipients += len(batch)
                    fresh = [e for e in batch if prefix + e.msisdn not in record.done]
                    run.skipped += len(batch) - len(fresh)
                    if not fresh:
                        continue
                    if self.clock() >= job.expires_at:
                        run.expired_early = True
                        return
                    if not bound:
                        # Only now, with someone to send to: a job without recipients
                        # completes even while the SMSC is down.
                        await _wait_bound(self.client, job, self.bind_timeout, self.endpoint)
                        bound = True
                    ids = await record([NewSubmission(item=prefix + e.msisdn, details={
                        "operation": job.action.value, "language": text.language,
                        "recipient": e.msisdn, "cell": e.cell_id, "segments": segments,
                        "endpoint": self.endpoint}) for e in fresh])
                    for sub_id, entry in zip(ids, fresh, strict=True):
                        in_flight[next(counter)] = sub_id
                        yield entry.msisdn

        reference = f"capcast-job{record.job.id}-a{record.job.attempts}-{text.language}"
        bulk = self.client.submit_bulk(
            text=text.text, source=self.source, recipients=recipients(),
            expires_at=job.expires_at, registered_delivery=self.registered_delivery,
            reference=reference, receipt_timeout=self.receipt_timeout,
            max_backlog=max(self.batch_size * 4, 1024))
        # Message n -> [its submission's message id, final receipts still expected]: each
        # segment's receipt is recorded under the id the submission was settled with (the
        # first segment's, in the base of submit_sm_resp), so that every receipt is linked.
        awaiting: dict[int, list[Any]] = {}
        try:
            async for batch in bulk.batches():
                results: list[SubmissionResult] = []
                receipts: list[tuple[str, Receipt]] = []
                for outcome in batch:
                    if isinstance(outcome, SubmitOutcome):
                        run.resubmitted += max(0, outcome.attempts - outcome.segments)
                        n = int(outcome.reference.rpartition("/")[2])
                        result = self._settlement(in_flight.pop(n), outcome, run)
                        if result is not None:
                            results.append(result)
                            if result.message_id is not None and self.registered_delivery \
                                    and len(awaiting) < self.max_tracked_receipts:
                                awaiting[n] = [result.message_id, len(outcome.message_ids)]
                    else:
                        receipts.append((self._receipt_id(outcome, awaiting), outcome))
                for chunk in _chunks(results, self.batch_size):
                    await record.settle(chunk)
                if receipts:
                    await self._record_receipts(job, receipts)
                    run.receipts += len(receipts)
        except BaseException:
            # An error (the database gone while settling) or a cancellation (lease lost):
            # read no further recipients and drop what is queued but not sent, so a retry
            # re-sends only what was really in flight, not the whole recorded batch.
            dropped = self.client.cancel_bulk(bulk)
            if dropped:
                logger.warning("job %s: %d queued message(s) dropped, not sent; a retry "
                               "sends them", job.key, dropped,
                               extra={"action": "smpp_sms_dropped", "job": job.key,
                                      "dropped": dropped})
            raise
        run.link_throttled = sum(link.throttled for link in self.client.stats()) \
            - throttled_before
        logger.info("job %s: %s sent to %d of %d recipient(s)", job.key, text.language,
                    run.accepted, run.recipients,
                    extra={"action": "smpp_sms_pass", "job": job.key, **run.to_json()})
        return run

    @staticmethod
    def _settlement(sub_id: int, outcome: SubmitOutcome, run: _SmsPass) -> SubmissionResult | None:
        status = outcome.status
        if status is OutcomeStatus.ACCEPTED:
            run.accepted += 1
            return SubmissionResult(id=sub_id, status=SubmissionStatus.ACKNOWLEDGED,
                                    message_id=outcome.message_ids[0]
                                    if outcome.message_ids else None)
        error = outcome.error or status.value
        run.errors[error] = run.errors.get(error, 0) + 1
        if status is OutcomeStatus.UNCONFIRMED:
            # Sent, but its answer never came: left pending, the attempt's end makes it
            # in doubt and the next attempt sends it again (the window in flight).
            run.unconfirmed += 1
            return None
        if status is OutcomeStatus.EXPIRED:
            run.expired += 1
            return SubmissionResult(id=sub_id, status=SubmissionStatus.FAILED,
                                    error=f"expired before submission: {error}")
        command_status = outcome.command_status
        retryable = (status_retryable(command_status) if command_status is not None
                     else status is OutcomeStatus.FAILED
                     and not error.startswith("invalid destination"))
        if retryable:
            run.retry += 1
            if command_status is not None:
                run.last_status = command_status
            return SubmissionResult(id=sub_id, status=SubmissionStatus.FAILED, error=error)
        run.rejected += 1
        return SubmissionResult(id=sub_id, status=SubmissionStatus.REJECTED, error=error)

    @staticmethod
    def _receipt_id(receipt: Receipt, awaiting: dict[int, list[Any]]) -> str:
        """The message id to record ``receipt`` under: its submission's, when known."""
        if receipt.reference is None:
            return receipt.message_id
        entry = awaiting.get(int(receipt.reference.rpartition("/")[2]))
        if entry is None:
            return receipt.message_id
        if receipt.state.is_final:
            entry[1] -= 1
            if entry[1] <= 0:
                del awaiting[int(receipt.reference.rpartition("/")[2])]
        return str(entry[0])

    async def _record_receipts(self, job: PlannedJob,
                               receipts: Sequence[tuple[str, Receipt]]) -> None:
        # One statement per receipt (Store.record_receipt), a few at a time over the pool.
        gate = asyncio.Semaphore(4)

        async def one(message_id: str, receipt: Receipt) -> None:
            raw = {"recipient": receipt.recipient, "error": receipt.error,
                   "link": receipt.link, "state": int(receipt.state)}
            if message_id != receipt.message_id:
                raw["receipted_message_id"] = receipt.message_id
            async with gate:
                await self.store.record_receipt(
                    operator=job.operator, gateway=job.gateway, message_id=message_id,
                    state=_RECEIPT_STATES.get(receipt.state, receipt.state.name), raw=raw)

        await asyncio.gather(*(one(message_id, r) for message_id, r in receipts))
