"""An asyncio SMPP client (ESME) on the sans-IO :class:`~gateways.smpp.session.Session`.

One :class:`SmppClient` serves one operator over one or more links
(:class:`LinkConfig`), which share one queue of work:

* each link binds (transceiver, transmitter or receiver, with system_type),
  keeps a window of outstanding requests and an optional token bucket of
  submit_sm per second (one token per segment);
* enquire_link keeps an idle link alive; a link that does not answer within
  ``response_timeout`` is dead and is dropped; requests without a response
  within ``response_timeout`` are given up as UNCONFIRMED;
* ESME_RTHROTTLED and ESME_RMSGQFUL pause the link with exponential backoff
  and the segment is queued again; other transient statuses are retried a few
  times; final statuses reject the message;
* a lost link reconnects and rebinds with jittered exponential backoff;
  requests in flight on it are reported UNCONFIRMED and not resent (the SMSC
  may have accepted them: resending would risk a duplicate), unless
  ``resend_unconfirmed`` says otherwise;
* nothing is submitted after a message's expiry (it is reported EXPIRED), and
  the expiry also goes into validity_period;
* delivery receipts (deliver_sm or data_sm, TLV or text form, hex or decimal
  ids) are answered and correlated with the submission, on any link; one that
  overtakes its submit_sm_resp waits ``early_receipt_wait`` seconds for it
  before it is reported (and logged) as a receipt for an unknown id;
* :meth:`SmppClient.close` stops taking work, waits for the responses in
  flight, and unbinds every link.

Every submission ends in exactly one :class:`SubmitOutcome`, and each receipt
gives a :class:`Receipt`; both go to the ``on_outcome`` callback and to the
:class:`BulkJob` or :meth:`SmppClient.send` call that made the message.

Bulk LB-SMS (:meth:`SmppClient.submit_bulk`) streams: recipients are read
lazily from any iterable or async iterable, the submit_sm of each segment is
built once as a :class:`~gateways.smpp.codec.SubmitTemplate` and only the
destination and sequence number are patched in, and a bounded queue and
outcome backlog keep memory flat for any number of recipients.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any, Final, cast

from gateways.errors import (
    ConnectionLost,
    Expired,
    GatewayError,
    GatewayTimeout,
    LocalProtocolError,
)
from gateways.smpp import codec
from gateways.smpp.codec import (
    BroadcastArea,
    BroadcastContentType,
    BroadcastFrequencyInterval,
    BroadcastSm,
    BroadcastSmResp,
    CancelBroadcastSm,
    CommandId,
    EnquireLink,
    GenericNack,
    MessageState,
    Pdu,
    QueryBroadcastSm,
    QueryBroadcastSmResp,
    SubmitSm,
    SubmitSmResp,
    SubmitTemplate,
    Unbind,
)
from gateways.smpp.errors import error_for_status, is_retryable, status_name
from gateways.smpp.session import (
    BIND_CLASSES,
    NEED_DATA,
    ConnectionClosed,
    ProtocolViolation,
    ReceiptReceived,
    ReceiptTracker,
    Role,
    Session,
    receipt_keys,
)
from gateways.text import detect_alphabet, gsm7_encode, sms_segments, ucs2_encode

__all__ = [
    "BindMode",
    "BroadcastOutcome",
    "BulkJob",
    "LinkConfig",
    "LinkStats",
    "OutcomeStatus",
    "Receipt",
    "SmppClient",
    "SmsMessage",
    "SubmitOutcome",
    "address_ton_npi",
]

logger = logging.getLogger(__name__)

_RTHROTTLED: Final = 0x58
_RMSGQFUL: Final = 0x14
_FLOW_CONTROL: Final = frozenset({_RTHROTTLED, _RMSGQFUL})


class BindMode(Enum):
    """How a link binds."""

    #: Submit and receive on one link.
    TRANSCEIVER = "transceiver"
    #: Submit only (receipts come on a receiver link of the same system_id).
    TRANSMITTER = "transmitter"
    #: Receive only (delivery receipts).
    RECEIVER = "receiver"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConfig:
    """One SMPP link (TCP connection and bind) of an operator."""

    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    system_type: str = ""
    bind_mode: BindMode = BindMode.TRANSCEIVER
    #: 0x34 (SMPP 3.4) or 0x50 (SMPP 5.0, for broadcast_sm).
    interface_version: int = 0x34
    #: Requests (submit_sm, broadcast_sm, ...) outstanding at once.
    window: int = 64
    #: submit_sm per second on this link (each segment counts); None: no limit.
    tps: float | None = None
    #: Seconds of idle link before an enquire_link.
    enquire_link_interval: float = 30.0
    #: Seconds to wait for any response (and for enquire_link_resp before the link is dead).
    response_timeout: float = 10.0
    connect_timeout: float = 10.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    #: First pause after ESME_RTHROTTLED / ESME_RMSGQFUL; doubles while it repeats.
    throttle_backoff_initial: float = 0.1
    throttle_backoff_max: float = 10.0
    #: A name for logs and stats; ``system_id@host:port`` by default.
    name: str = ""

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be at least 1, not {self.window}")
        if self.tps is not None and self.tps <= 0:
            raise ValueError(f"tps must be positive, not {self.tps}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsMessage:
    """One SMS to one recipient (cut into segments by :func:`gateways.text.sms_segments`)."""

    reference: str
    source: str
    destination: str
    text: str
    #: Not submitted at or after this time (timezone-aware).
    expires_at: datetime | None = None
    registered_delivery: bool = True

    def __post_init__(self) -> None:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")


class OutcomeStatus(Enum):
    """How a submission ended."""

    #: Every segment was acknowledged with ESME_ROK.
    ACCEPTED = "accepted"
    #: The SMSC refused a segment with a final status (or kept throttling past the retries).
    REJECTED = "rejected"
    #: The expiry passed before every segment was submitted.
    EXPIRED = "expired"
    #: Sent, but no response came (timeout or lost link); not resent, to avoid a duplicate.
    UNCONFIRMED = "unconfirmed"
    #: Never sent: an invalid recipient, or the client closed first.
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOutcome:
    """The end of one message's submission."""

    reference: str
    destination: str
    status: OutcomeStatus
    #: The SMSC's id of each acknowledged segment, in segment order.
    message_ids: tuple[str, ...] = ()
    #: The last non-zero command_status, if any.
    command_status: int | None = None
    error: str | None = None
    segments: int = 1
    #: submit_sm PDUs sent for this message (segments and retries).
    attempts: int = 1
    link: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """A delivery receipt; ``reference`` is None when no submission matched its id."""

    reference: str | None
    message_id: str
    state: MessageState
    recipient: str
    error: str | None = None
    link: str = ""


Outcome = SubmitOutcome | Receipt
# The hot path builds one SubmitOutcome per message: skip __init__'s keyword parsing.
_new_outcome: Final = codec.fast_constructor(SubmitOutcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastOutcome:
    """The answer to a broadcast_sm."""

    message_id: str
    failed_areas: tuple[BroadcastArea, ...] = ()
    link: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkStats:
    """Counters of one link (a snapshot)."""

    name: str
    connected: bool
    bound: bool
    submitted: int
    acknowledged: int
    rejected: int
    throttled: int
    unconfirmed: int
    errors: int
    receipts: int
    reconnects: int
    outstanding: int
    #: Mean seconds from submit_sm to submit_sm_resp.
    mean_latency: float | None


def address_ton_npi(address: str) -> tuple[int, int, str]:
    """(ton, npi, address) for a source or destination as people write it.

    ``+4915...`` and long digit strings are international ISDN (1, 1); short
    digit strings (up to 8) are network-specific short codes (3, 0); anything
    with letters is alphanumeric (5, 0).
    """
    text = address.strip()
    digits = text[1:] if text.startswith("+") else text
    if digits.isdigit():
        if text.startswith("+") or len(digits) > 8:
            return 1, 1, digits
        return 3, 0, digits
    return 5, 0, text


class _Message:
    """One message in flight (internal, mutable)."""

    __slots__ = ("attempts", "command_status", "destination", "done", "error", "expires_at",
                 "job", "message_ids", "pending", "reference", "retries", "templates",
                 "waiter", "want_receipt")

    def __init__(self, reference: str, destination: bytes,
                 templates: Sequence[SubmitTemplate], expires_at: float | None,
                 want_receipt: bool, job: BulkJob | None,
                 waiter: asyncio.Future[SubmitOutcome] | None) -> None:
        self.reference = reference
        self.destination = destination
        self.templates = templates
        self.expires_at = expires_at
        self.want_receipt = want_receipt
        self.job = job
        self.waiter = waiter
        self.pending = len(templates)
        self.message_ids: list[str] = [""] * len(templates)
        self.attempts = 0
        self.retries = 0
        self.done = False
        self.command_status: int | None = None
        self.error: str | None = None


_Work = tuple[_Message, int]


class BulkJob:
    """The outcomes of one bulk submission, as an async iterator.

    Yields a :class:`SubmitOutcome` per recipient, and then (when
    ``receipt_timeout`` is set) the :class:`Receipt` of each accepted segment
    until all came or the timeout passed. Counters are kept as it goes.
    """

    def __init__(self, reference: str, *, receipt_timeout: float, max_backlog: int,
                 on_done: Callable[[], None] | None = None) -> None:
        self.reference = reference
        self._on_done = on_done
        self.receipt_timeout = receipt_timeout
        self.max_backlog = max_backlog
        self.messages = 0
        self._counts: dict[str, int] = {status.value: 0 for status in OutcomeStatus}
        self.receipts = 0
        self.receipts_expected = 0
        self.produced = False
        self.error: BaseException | None = None
        self._done = 0
        self.started = time.monotonic()
        self.finished: float | None = None
        self._outcomes: deque[Outcome] = deque()
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def counts(self) -> dict[OutcomeStatus, int]:
        """Messages per outcome status so far."""
        return {status: self._counts[status.value] for status in OutcomeStatus}

    @property
    def outcomes_done(self) -> int:
        """How many messages have their submit outcome."""
        return self._done

    @property
    def submissions_done(self) -> bool:
        """True when every recipient was read and has its submit outcome."""
        return self.produced and self.outcomes_done >= self.messages

    def _push(self, outcome: Outcome) -> None:
        if type(outcome) is SubmitOutcome:
            self._counts[outcome.status._value_] += 1
            self._done += 1
            if self.produced and self._done >= self.messages:
                self.finished = time.monotonic()
        else:
            self.receipts += 1
        self._outcomes.append(outcome)
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[Outcome]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Outcome]:
        async for batch in self.batches():
            for outcome in batch:
                yield outcome

    async def batches(self) -> AsyncIterator[list[Outcome]]:
        """The outcomes in lists, as they come: cheaper than one at a time for big jobs."""
        outcomes = self._outcomes
        deadline: float | None = None
        try:
            while True:
                if outcomes:
                    batch = list(outcomes)
                    outcomes.clear()
                    self._space.set()
                    yield batch
                    continue
                self._space.set()
                if self.error is not None:
                    raise self.error
                if self.submissions_done:
                    if self.receipts >= self.receipts_expected or self.receipt_timeout <= 0:
                        return
                    loop = asyncio.get_running_loop()
                    if deadline is None:
                        deadline = loop.time() + self.receipt_timeout
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    continue
                self._wakeup.clear()
                await self._wakeup.wait()
        finally:
            if self._on_done is not None and self.submissions_done:
                self._on_done()  # late receipts now go to on_outcome only

    async def wait(self) -> dict[str, int]:
        """Consume the outcomes and return the counters (for callers that only count)."""
        async for _ in self.batches():
            pass
        return self.summary()

    def summary(self) -> dict[str, int]:
        """The counters: messages, one per outcome status, receipts."""
        return {"messages": self.messages, "receipts": self.receipts, **self._counts}


class _Link(asyncio.Protocol):
    """One connection: the asyncio side of a :class:`Session` (internal)."""

    def __init__(self, client: SmppClient, config: LinkConfig, name: str) -> None:
        self.client = client
        self.config = config
        self.name = name
        self.session = Session(role=Role.ESME, window=config.window, name=name,
                               receipts=client.receipts)
        self.transport: asyncio.Transport | None = None
        self.bound = False
        self._lost: asyncio.Event = asyncio.Event()
        self._window_open = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._inflight: dict[int, tuple[_Message, int, float]] = {}
        self._waiters: dict[int, asyncio.Future[Pdu]] = {}
        self._last_rx = 0.0
        self._enquire_sent: float | None = None
        self._paused_until = 0.0
        self._backoff = 0.0
        self._acked_since_pause = True
        self._tokens = 0.0
        self._token_time = 0.0
        self._task: asyncio.Task[None] | None = None
        self.stats = {"submitted": 0, "acknowledged": 0, "rejected": 0, "throttled": 0,
                      "unconfirmed": 0, "errors": 0, "receipts": 0, "reconnects": 0}
        self._latency_sum = 0.0
        self._latency_n = 0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        # An enquire_link left unanswered on the previous connection must not make the
        # first keepalive check of this one declare it dead.
        self._enquire_sent = None
        self._lost.clear()
        self._writable.set()
        self._last_rx = asyncio.get_running_loop().time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.bound = False
        self._lost.set()
        self._window_open.set()
        self._writable.set()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost("link lost", link=self.name))
        self._waiters.clear()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        session = self.session
        session.receive_data(data)
        loop_time = asyncio.get_running_loop().time()
        self._last_rx = loop_time
        inflight_pop = self._inflight.pop
        next_event = session.next_event
        finish = self.client._finish
        accepted = OutcomeStatus.ACCEPTED
        name = self.name
        acknowledged = responses = 0
        latency = 0.0
        freed = False
        replies: list[bytes] = []
        while True:
            event = next_event()
            if event is NEED_DATA:
                break
            if type(event) is SubmitSmResp:
                item = inflight_pop(event.sequence, None)
                if item is None:
                    continue  # given up after the response timeout
                freed = True
                responses += 1
                latency += loop_time - item[2]
                msg = item[0]
                if event.status or msg.want_receipt or msg.done:
                    self._on_submit_response(msg, item[1], event.status, event.message_id)
                    continue
                # The hot path: a plain acknowledgement, no receipt asked for.
                acknowledged += 1
                msg.message_ids[item[1]] = event.message_id
                msg.pending -= 1
                if msg.pending == 0:
                    finish(msg, accepted, name)
            elif isinstance(event, ReceiptReceived):
                replies.append(self._on_receipt(event))
            elif isinstance(event, ProtocolViolation):
                self._on_violation(event)
            elif isinstance(event, ConnectionClosed):
                break
            elif isinstance(event, Pdu):
                freed = self._on_pdu(event) or freed
        if freed:
            self._latency_sum += latency
            self._latency_n += responses
            self.stats["acknowledged"] += acknowledged
            if acknowledged:
                self._acked_since_pause = True
        auto = session.data_to_send()
        transport = self.transport
        if transport is not None:
            if replies:
                transport.write(b"".join(replies) + auto)
            elif auto:
                transport.write(auto)
            if session.state.value == "closed":
                transport.close()
        if freed:
            self._window_open.set()

    # -- responses -----------------------------------------------------------------------

    def _on_submit_response(self, msg: _Message, index: int, status: int, message_id: str) -> None:
        client = self.client
        if msg.done:
            return
        if status == 0:
            self.stats["acknowledged"] += 1
            self._acked_since_pause = True
            msg.message_ids[index] = message_id
            if msg.want_receipt and message_id:
                if msg.job is not None:
                    msg.job.receipts_expected += 1
                early = client._early_receipt(message_id, msg.reference)
                if early is None or not early.state.is_final:
                    self.session.expect_receipt(message_id, msg.reference)
            msg.pending -= 1
            if msg.pending == 0:
                client._finish(msg, OutcomeStatus.ACCEPTED, self.name)
            return
        msg.command_status = status
        if status in _FLOW_CONTROL:
            self.stats["throttled"] += 1
            now = asyncio.get_running_loop().time()
            if self._paused_until <= now:
                # Pause; twice as long as last time if nothing was acknowledged since that
                # pause (the SMSC still refuses everything), else from the start again.
                # Throttles answering PDUs sent before a pause do not lengthen it.
                cfg = self.config
                self._backoff = cfg.throttle_backoff_initial if self._acked_since_pause \
                    else min(cfg.throttle_backoff_max,
                             max(cfg.throttle_backoff_initial, self._backoff * 2))
                self._acked_since_pause = False
                self._paused_until = now + self._backoff
            client._retry(msg, index, front=True)
            return
        if is_retryable(status) and msg.retries + 1 < client.max_attempts:
            self.stats["errors"] += 1
            client._retry(msg, index, front=False)
            return
        self.stats["rejected"] += 1
        msg.error = str(error_for_status(status, command="submit_sm", link=self.name))
        client._finish(msg, OutcomeStatus.REJECTED, self.name)

    def _on_receipt(self, event: ReceiptReceived) -> bytes:
        self.stats["receipts"] += 1
        receipt = event.receipt
        report = Receipt(reference=event.reference, message_id=receipt.message_id,
                         state=receipt.state, recipient=receipt.recipient, error=receipt.error,
                         link=self.name)
        if event.reference is None:
            # Perhaps it overtook its submit_sm_resp (another link, or a busy loop): hold it
            # for a moment before calling it unknown.
            self.client._park_receipt(report)
        else:
            self.client._receipt(report)
        if event.pdu.command_id == CommandId.DATA_SM:
            return self.session.send(codec.DataSmResp(sequence=event.pdu.sequence))
        return codec.encode_deliver_sm_resp(event.pdu.sequence)

    def _on_violation(self, event: ProtocolViolation) -> None:
        self.stats["errors"] += 1
        if event.sequence is not None and event.command_id is not None \
                and event.command_id & codec.RESPONSE_BIT:
            item = self._inflight.pop(event.sequence, None)
            if item is not None:
                item[0].error = f"unreadable response: {event.reason}"
                self.client._unconfirmed(item[0], self.name)
            waiter = self._waiters.pop(event.sequence, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(GatewayError(event.reason, link=self.name))
        if event.fatal and self.transport is not None:
            self.transport.write(self.session.data_to_send())
            self.transport.close()

    def _on_pdu(self, pdu: Pdu) -> bool:
        """Non-hot PDUs; True when a window slot was freed."""
        if not pdu.is_response:
            if isinstance(pdu, codec.DeliverSm):
                # A mobile-originated message: capcast does not take replies; acknowledge it.
                logger.info("ignoring a mobile-originated deliver_sm",
                            extra={"action": "smpp_mo_ignored", "link": self.name,
                                   "source": pdu.source_addr})
                if self.transport is not None:
                    self.transport.write(codec.encode_deliver_sm_resp(pdu.sequence))
            elif isinstance(pdu, codec.DataSm) and self.transport is not None:
                self.transport.write(self.session.send(codec.DataSmResp(sequence=pdu.sequence)))
            elif isinstance(pdu, codec.Unbind):
                logger.info("SMSC unbound the link", extra={"action": "smpp_unbound_by_peer",
                                                           "link": self.name})
            return False
        if isinstance(pdu, codec.EnquireLinkResp):
            self._enquire_sent = None
            return False
        if isinstance(pdu, GenericNack):
            item = self._inflight.pop(pdu.sequence, None)
            if item is not None:
                self._on_submit_response(item[0], item[1], pdu.status or 0x08, "")
                return True
        waiter = self._waiters.pop(pdu.sequence, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(pdu)
        return True

    # -- connection lifecycle -----------------------------------------------------------

    async def run(self) -> None:
        """Connect, bind and serve; reconnect with jittered backoff until the client closes."""
        client = self.client
        cfg = self.config
        failures = 0
        first = True
        while not client.closing:
            if not first:
                self.stats["reconnects"] += 1
            first = False
            try:
                await self._connect_and_bind()
                failures = 0
                client._link_up(self)
                await self._serve()
            except (OSError, TimeoutError, GatewayError) as exc:
                logger.warning("SMPP link failed: %s", exc,
                               extra={"action": "smpp_link_failed", "link": self.name,
                                      "error": repr(exc)})
            except Exception:  # a bug must not end the link for good: log it, reconnect
                logger.exception("SMPP link failed unexpectedly",
                                 extra={"action": "smpp_link_failed", "link": self.name})
            finally:
                self.bound = False
                self._fail_inflight("link lost before the response")
                if self.transport is not None:
                    self.transport.abort()
            if client.closing:
                break
            delay = min(cfg.reconnect_max, cfg.reconnect_initial * (2 ** min(failures, 16)))
            delay *= random.uniform(0.5, 1.0)  # jitter, so that many links do not stampede
            failures += 1
            logger.info("SMPP link reconnecting in %.2f s", delay,
                        extra={"action": "smpp_reconnect", "link": self.name, "delay": delay})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client._closing_event.wait(), delay)

    async def _connect_and_bind(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        self.session = Session(role=Role.ESME, window=cfg.window, name=self.name,
                               receipts=self.client.receipts)
        await asyncio.wait_for(loop.create_connection(lambda: self, cfg.host, cfg.port),
                               cfg.connect_timeout)
        bind = BIND_CLASSES[cfg.bind_mode.value](
            system_id=cfg.system_id, password=cfg.password, system_type=cfg.system_type,
            interface_version=cfg.interface_version)
        response = await self.request(bind, windowed=False)
        if response.status != 0:
            raise error_for_status(response.status, command=bind.command, link=self.name)
        self.bound = True
        self._backoff = 0.0
        self._paused_until = 0.0
        self._tokens = 1.0
        self._token_time = loop.time()
        logger.info("SMPP link bound", extra={"action": "smpp_bound", "link": self.name,
                                              "mode": cfg.bind_mode.value})

    async def request(self, pdu: Pdu, *, windowed: bool = True) -> Pdu:
        """Send one request and wait for its response (generic_nack included)."""
        transport = self.transport
        if transport is None:
            raise ConnectionLost("link is down", link=self.name)
        while windowed and self.session.window_free == 0:
            self._window_open.clear()
            await self._window_open.wait()
            transport = self.transport
            if transport is None:
                raise ConnectionLost("link is down", link=self.name)
        seq = self.session.next_sequence()
        data = self.session.send(_with_sequence(pdu, seq))
        waiter: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._waiters[seq] = waiter
        transport.write(data)
        try:
            return await asyncio.wait_for(waiter, self.config.response_timeout)
        except TimeoutError:
            self._waiters.pop(seq, None)
            self.session.forget_outstanding(seq)
            raise GatewayTimeout(f"no response to {pdu.command} in "
                                 f"{self.config.response_timeout} s", link=self.name) from None

    async def _serve(self) -> None:
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self._keepalive()),
                                             asyncio.create_task(self._lost.wait())]
        if self.config.bind_mode is not BindMode.RECEIVER:
            tasks.append(asyncio.create_task(self._send_loop()))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done() and not task.cancelled():
                    error = task.exception()
                    if error is not None:
                        raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keepalive(self) -> None:
        """enquire_link when idle, dead-link detection, response timeouts."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        tick = max(0.05, min(1.0, cfg.enquire_link_interval / 4, cfg.response_timeout / 4))
        while self.transport is not None:
            await asyncio.sleep(tick)
            now = loop.time()
            transport = self.transport
            if transport is None:
                return
            if self._enquire_sent is not None:
                if now - self._enquire_sent > cfg.response_timeout:
                    logger.warning("SMPP link is dead: no enquire_link_resp",
                                   extra={"action": "smpp_dead_link", "link": self.name})
                    transport.abort()
                    return
            elif now - self._last_rx >= cfg.enquire_link_interval:
                self._enquire_sent = now
                transport.write(self.session.send(EnquireLink()))
            self._expire_inflight(now - cfg.response_timeout)

    def _expire_inflight(self, sent_before: float) -> None:
        inflight = self._inflight
        expired = []
        for seq, item in inflight.items():  # insertion order: oldest first
            if item[2] > sent_before:
                break
            expired.append(seq)
        for seq in expired:
            msg = inflight.pop(seq)[0]
            self.session.forget_outstanding(seq)
            msg.error = "no submit_sm_resp within the response timeout"
            self.client._unconfirmed(msg, self.name)
        if expired:
            self._window_open.set()

    def _fail_inflight(self, reason: str) -> None:
        inflight, self._inflight = self._inflight, {}
        for msg, index, _ in inflight.values():
            if self.client.resend_unconfirmed and not msg.done:
                self.client._retry(msg, index, front=True)
            else:
                msg.error = reason
                self.client._unconfirmed(msg, self.name)

    async def _send_loop(self) -> None:
        """Take segments from the shared queue and submit them (the hot path).

        Each turn fills what the window, the token bucket and the flush size
        allow with one ``transport.write``, so that a busy link costs one
        system call per batch, not per PDU.
        """
        client = self.client
        session = self.session
        send_submit = session.send_submit
        inflight = self._inflight
        work = client._work
        loop = asyncio.get_running_loop()
        clock = client.clock
        rate = self.config.tps
        window = session.window
        burst = max(1.0, rate / 20) if rate else 0.0
        flush_at = client.flush_size or window
        stats = self.stats
        expired = OutcomeStatus.EXPIRED
        while True:
            transport = self.transport
            if transport is None:
                return
            if not self._writable.is_set():
                await self._writable.wait()
                continue
            now = loop.time()
            if self._paused_until > now:
                await asyncio.sleep(self._paused_until - now)
                continue
            room = window - len(inflight)
            if room <= 0:
                self._window_open.clear()
                await self._window_open.wait()
                continue
            if not work:
                await client._wait_for_work()
                continue
            tokens = 0.0
            if rate:
                tokens = min(burst, self._tokens + (now - self._token_time) * rate)
                self._token_time = now
                if tokens < 1.0:
                    self._tokens = tokens
                    await asyncio.sleep((1.0 - tokens) / rate)
                    continue
                room = min(room, int(tokens))
            room = min(room, flush_at)
            batch: list[bytes] = []
            blocked = False
            wall = clock()
            while len(batch) < room and work:
                msg, index = work.popleft()
                if msg.done:
                    continue
                if msg.expires_at is not None and wall >= msg.expires_at:
                    msg.error = "expired before submission"
                    client._finish(msg, expired, self.name)
                    continue
                msg.attempts += 1
                try:
                    seq, data = send_submit(msg.templates[index], msg.destination)
                except LocalProtocolError:
                    # The session refuses it (its window shared with broadcast requests is
                    # full, or the link is unbinding): the segment goes back to the front
                    # of the queue for this or another link, never lost.
                    msg.attempts -= 1
                    work.appendleft((msg, index))
                    blocked = True
                    break
                inflight[seq] = (msg, index, now)
                batch.append(data)
            if rate:
                self._tokens = tokens - len(batch)
            if batch:
                transport.write(b"".join(batch))
                stats["submitted"] += len(batch)
            client._taken()
            if blocked and not batch:
                await asyncio.sleep(0.01)

    async def unbind(self, timeout: float) -> None:
        """Unbind gracefully (waiting up to ``timeout`` for unbind_resp), then close."""
        transport = self.transport
        if transport is None:
            return
        if self.session.is_bound:
            with contextlib.suppress(GatewayError, TimeoutError, OSError):
                await asyncio.wait_for(self.request(Unbind(), windowed=False), timeout)
        if self.transport is not None:
            self.transport.close()

    def snapshot(self) -> LinkStats:
        """The link's counters now."""
        s = self.stats
        return LinkStats(name=self.name, connected=self.transport is not None, bound=self.bound,
                         submitted=s["submitted"], acknowledged=s["acknowledged"],
                         rejected=s["rejected"], throttled=s["throttled"],
                         unconfirmed=s["unconfirmed"], errors=s["errors"],
                         receipts=s["receipts"], reconnects=s["reconnects"],
                         outstanding=self.session.outstanding,
                         mean_latency=(self._latency_sum / self._latency_n
                                       if self._latency_n else None))


def _with_sequence(pdu: Pdu, sequence: int) -> Pdu:
    return replace(pdu, sequence=sequence)


class SmppClient:
    """The SMPP links of one operator, sharing one queue. See the module docstring.

    Use as ``async with SmppClient([LinkConfig(...)]) as client: ...``; entering
    starts the links and waits until one is bound.
    """

    def __init__(self, links: Sequence[LinkConfig], *, operator: str = "",
                 on_outcome: Callable[[Outcome], None] | None = None,
                 clock: Callable[[], float] = time.time, max_queued: int = 8192,
                 max_attempts: int = 10, resend_unconfirmed: bool = False,
                 max_tracked_receipts: int = 250_000, flush_size: int | None = None) -> None:
        """Configure the client (nothing connects before :meth:`start`).

        Args:
            links: one entry per link; several links to the same SMSC share the work.
            operator: the operator's name, for logs.
            on_outcome: called with every :class:`SubmitOutcome` and :class:`Receipt`.
            clock: wall-clock time in epoch seconds (for expiries).
            max_queued: segments queued ahead of the links; bulk producers wait beyond.
            max_attempts: tries of one message (throttling included) before it is
                rejected.
            resend_unconfirmed: resend what was in flight on a lost link (may duplicate).
            max_tracked_receipts: message ids remembered for receipt correlation.
            flush_size: the most PDUs per write (default: the window).

        """
        if not links:
            raise ValueError("at least one link is needed")
        self.operator = operator
        self.on_outcome = on_outcome
        self.clock = clock
        self.max_queued = max_queued
        self.max_attempts = max_attempts
        self.resend_unconfirmed = resend_unconfirmed
        self.flush_size = flush_size
        self.receipts = ReceiptTracker(max_tracked_receipts)
        self.closing = False
        self._configs = list(links)
        self._links: list[_Link] = []
        self._work: deque[_Work] = deque()
        self._work_event = asyncio.Event()
        self._space_event = asyncio.Event()
        self._bound_event = asyncio.Event()
        self._closing_event = asyncio.Event()
        self._jobs: dict[str, BulkJob] = {}
        self._job_ids = itertools.count(1)
        self._concat_ref = random.randrange(256)
        #: Seconds an unmatched receipt waits for its submit_sm_resp.
        self.early_receipt_wait = 2.0
        self._early: dict[str, tuple[float, list[str], Receipt]] = {}
        self._early_order: deque[tuple[float, list[str], Receipt]] = deque()
        self._early_task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, *, wait_bound: float | None = 30.0) -> None:
        """Start every link; wait until one is bound (``wait_bound`` seconds; None: don't).

        Raises:
            GatewayTimeout: no link bound in time (the links keep trying).

        """
        for i, cfg in enumerate(self._configs):
            name = cfg.name or f"{cfg.system_id}@{cfg.host}:{cfg.port}"
            if len(self._configs) > 1 and not cfg.name:
                name += f"#{i}"
            link = _Link(self, cfg, name)
            link._task = asyncio.create_task(link.run(), name=f"smpp-link {name}")
            self._links.append(link)
        if wait_bound is not None:
            await self.wait_bound(wait_bound)

    async def wait_bound(self, timeout: float) -> None:
        """Wait until at least one link can submit."""
        try:
            await asyncio.wait_for(self._bound_event.wait(), timeout)
        except TimeoutError:
            raise GatewayTimeout(f"no SMPP link bound within {timeout} s",
                                 operator=self.operator) from None

    async def __aenter__(self) -> SmppClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or in flight; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._work or any(link._inflight for link in self._links):
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self, *, drain_timeout: float = 10.0, unbind_timeout: float = 5.0) -> None:
        """Stop taking work, fail what is queued, wait for responses in flight, unbind."""
        if self.closing:
            return
        self.closing = True
        self._closing_event.set()
        for job in self._jobs.values():
            if job._task is not None:
                job._task.cancel()
        while self._work:
            msg, _ = self._work.popleft()
            if not msg.done:
                msg.error = "client closed before submission"
                self._finish(msg, OutcomeStatus.FAILED, "")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while any(link._inflight for link in self._links) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.gather(*(link.unbind(unbind_timeout) for link in self._links),
                             return_exceptions=True)
        for link in self._links:
            if link._task is not None:
                link._task.cancel()
        await asyncio.gather(*(link._task for link in self._links if link._task),
                             return_exceptions=True)
        for link in self._links:
            link._fail_inflight("client closed before the response")
        if self._early_task is not None:
            self._early_task.cancel()
        for _, keys, receipt in list(self._early_order):
            if self._early.get(keys[0]) is not None:
                self._unknown_receipt(receipt)
        self._early.clear()
        self._early_order.clear()

    def stats(self) -> list[LinkStats]:
        """A snapshot of every link's counters."""
        return [link.snapshot() for link in self._links]

    # -- internal hooks used by the links -------------------------------------------------

    def _link_up(self, link: _Link) -> None:
        if link.config.bind_mode is not BindMode.RECEIVER:
            self._bound_event.set()

    async def _wait_for_work(self) -> None:
        self._work_event.clear()
        await self._work_event.wait()

    def _taken(self) -> None:
        if len(self._work) < self.max_queued // 2:
            self._space_event.set()

    def _enqueue(self, msg: _Message) -> None:
        work = self._work
        for index in range(len(msg.templates)):
            work.append((msg, index))
        self._work_event.set()

    def _retry(self, msg: _Message, index: int, *, front: bool) -> None:
        msg.retries += 1
        if msg.retries >= self.max_attempts:
            last = status_name(msg.command_status or 0)
            msg.error = f"gave up after {msg.attempts} attempts ({last})"
            self._finish(msg, OutcomeStatus.REJECTED, "")
            return
        if front:
            self._work.appendleft((msg, index))
        else:
            self._work.append((msg, index))
        self._work_event.set()

    def _unconfirmed(self, msg: _Message, link: str) -> None:
        for each in self._links:
            if each.name == link:
                each.stats["unconfirmed"] += 1
        self._finish(msg, OutcomeStatus.UNCONFIRMED, link)

    def _finish(self, msg: _Message, status: OutcomeStatus, link: str) -> None:
        if msg.done:
            return
        msg.done = True
        ids = msg.message_ids
        outcome = _new_outcome(
            msg.reference, msg.destination.decode("ascii"), status,
            (ids[0],) if len(ids) == 1 and ids[0] else tuple(i for i in ids if i),
            msg.command_status, msg.error, len(msg.templates), msg.attempts, link)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        if msg.job is not None:
            msg.job._push(outcome)
        if msg.waiter is not None and not msg.waiter.done():
            msg.waiter.set_result(outcome)

    def _park_receipt(self, receipt: Receipt) -> None:
        early = self._early
        if len(early) >= 10_000:
            self._unknown_receipt(receipt)
            return
        now = time.monotonic()
        keys = receipt_keys(receipt.message_id)
        entry = (now + self.early_receipt_wait, keys, receipt)
        for key in keys:
            early[key] = entry
        self._early_order.append(entry)
        if self._early_task is None or self._early_task.done():
            self._early_task = asyncio.create_task(self._expire_early())

    def _early_receipt(self, message_id: str, reference: str) -> Receipt | None:
        """Deliver the receipt parked for ``message_id``, if one came early."""
        if not self._early:
            return None
        entry = self._early.get(receipt_keys(message_id)[0])
        if entry is None:
            return None
        for key in entry[1]:
            self._early.pop(key, None)
        receipt = replace(entry[2], reference=reference)
        self._receipt(receipt)
        return receipt

    async def _expire_early(self) -> None:
        order = self._early_order
        while order:
            deadline, keys, receipt = order[0]
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            order.popleft()
            if self._early.get(keys[0]) is not None and self._early[keys[0]][2] is receipt:
                for key in keys:
                    self._early.pop(key, None)
                self._unknown_receipt(receipt)

    def _unknown_receipt(self, receipt: Receipt) -> None:
        logger.warning("delivery receipt for an unknown message id",
                       extra={"action": "smpp_receipt_unknown", "link": receipt.link,
                              "message_id": receipt.message_id, "state": receipt.state.name})
        self._receipt(receipt)

    def _receipt(self, receipt: Receipt) -> None:
        if self.on_outcome is not None:
            self.on_outcome(receipt)
        if receipt.reference is not None:
            job = self._jobs.get(receipt.reference.rpartition("/")[0])
            if job is not None:
                job._push(receipt)

    # -- building messages ---------------------------------------------------------------

    def _templates(self, *, text: str, source: str, expires_at: float | None,
                   registered_delivery: bool) -> list[SubmitTemplate]:
        self._concat_ref = (self._concat_ref + 1) % 256
        segments = sms_segments(text, reference=self._concat_ref)
        ton, npi, addr = address_ton_npi(source)
        validity = codec.smpp_time(expires_at) if expires_at is not None else ""
        return [SubmitTemplate(SubmitSm(
            source_addr_ton=ton, source_addr_npi=npi, source_addr=addr,
            dest_addr_ton=1, dest_addr_npi=1, esm_class=segments.esm_class,
            validity_period=validity, registered_delivery=1 if registered_delivery else 0,
            data_coding=segments.data_coding, short_message=part), segments=segments.count)
            for part in segments.parts]

    @staticmethod
    def _destination(recipient: str) -> bytes | None:
        digits = recipient.strip().removeprefix("+")
        if not digits.isdigit() or not 1 <= len(digits) <= 20 or not digits.isascii():
            return None
        return digits.encode("ascii")

    # -- submitting ----------------------------------------------------------------------

    async def send(self, message: SmsMessage) -> SubmitOutcome:
        """Submit one message and wait for its outcome."""
        expires = message.expires_at.timestamp() if message.expires_at is not None else None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[SubmitOutcome] = loop.create_future()
        destination = self._destination(message.destination)
        templates = self._templates(text=message.text, source=message.source,
                                    expires_at=expires,
                                    registered_delivery=message.registered_delivery)
        msg = _Message(message.reference, destination or b"", templates, expires,
                       message.registered_delivery, None, waiter)
        if destination is None:
            msg.error = f"invalid destination {message.destination!r}"
            self._finish(msg, OutcomeStatus.FAILED, "")
        elif self.closing:
            msg.error = "client is closed"
            self._finish(msg, OutcomeStatus.FAILED, "")
        else:
            self._enqueue(msg)
        return await waiter

    def submit_bulk(self, *, text: str, source: str,
                    recipients: Iterable[str] | AsyncIterable[str],
                    expires_at: datetime | None = None, registered_delivery: bool = True,
                    reference: str | None = None, receipt_timeout: float = 0.0,
                    max_backlog: int = 65536) -> BulkJob:
        """Submit ``text`` to every recipient, streaming; iterate the job for the outcomes.

        The text is cut into segments and each segment's submit_sm built once.
        Recipient ``n`` gets the reference ``"{reference}/{n}"``. Recipients
        that are not 1–20 digits (an optional leading "+") fail without being
        sent. With ``receipt_timeout`` the job also yields the receipts that
        arrive within that many seconds after the last submission ended.
        """
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        if self.closing:
            raise ConnectionLost("client is closed", operator=self.operator)
        expires = expires_at.timestamp() if expires_at is not None else None
        ref = reference or f"job{next(self._job_ids)}"
        templates = self._templates(text=text, source=source, expires_at=expires,
                                    registered_delivery=registered_delivery)
        job = BulkJob(ref, receipt_timeout=receipt_timeout if registered_delivery else 0.0,
                      max_backlog=max_backlog, on_done=functools.partial(self._forget_job, ref))
        self._jobs[ref] = job
        job._task = asyncio.create_task(
            self._produce(job, recipients, templates, expires, registered_delivery))
        return job

    def cancel_bulk(self, job: BulkJob) -> int:
        """Stop ``job``: read no more recipients and drop its messages not yet sent.

        A message with a segment already submitted is left to finish (half a
        concatenated SMS is worse than a whole one). Returns how many messages
        were dropped; they get no outcome. Their caller, which stops reading
        the job, can send them again later without a duplicate.
        """
        if job._task is not None:
            job._task.cancel()
        dropped = 0
        kept: deque[_Work] = deque()
        for msg, index in self._work:
            if msg.job is job and not msg.done and msg.attempts == 0 \
                    and msg.pending == len(msg.templates):
                msg.done = True
                dropped += 1
                continue
            kept.append((msg, index))
        self._work.clear()
        self._work.extend(kept)
        self._space_event.set()
        return dropped

    def _forget_job(self, reference: str) -> None:
        self._jobs.pop(reference, None)

    async def _produce(self, job: BulkJob, recipients: Iterable[str] | AsyncIterable[str],
                       templates: list[SubmitTemplate], expires: float | None,
                       want_receipt: bool) -> None:
        try:
            if isinstance(recipients, AsyncIterable):
                async for recipient in recipients:
                    await self._wait_for_space(job)
                    self._add(job, recipient, templates, expires, want_receipt)
                    self._work_event.set()
            else:
                # In chunks: the queue's free room at a time, without a switch per recipient.
                source = iter(recipients)
                per_message = len(templates)
                while True:
                    await self._wait_for_space(job)
                    room = max(1, (self.max_queued - len(self._work)) // per_message)
                    chunk = list(itertools.islice(source, room))
                    if not chunk:
                        break
                    self._add_chunk(job, chunk, templates, expires, want_receipt)
                    self._work_event.set()
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the recipients' iterator failed: end the job with it
            logger.exception("bulk job recipients failed",
                             extra={"action": "smpp_bulk_failed", "job": job.reference})
            job.error = exc
        finally:
            job.produced = True
            if job.submissions_done:
                job.finished = time.monotonic()
            job._wakeup.set()

    async def _wait_for_space(self, job: BulkJob) -> None:
        """Wait while the queue or the job's unread outcomes are full (flat memory)."""
        if len(self._work) < self.max_queued and len(job._outcomes) < job.max_backlog:
            return
        while len(self._work) >= self.max_queued // 2 or len(job._outcomes) >= job.max_backlog:
            if self.closing:
                raise asyncio.CancelledError
            self._space_event.clear()
            job._space.clear()
            space = asyncio.ensure_future(self._space_event.wait())
            backlog = asyncio.ensure_future(job._space.wait())
            await asyncio.wait([space, backlog], return_when=asyncio.FIRST_COMPLETED)
            space.cancel()
            backlog.cancel()

    def _add(self, job: BulkJob, recipient: str, templates: list[SubmitTemplate],
             expires: float | None, want_receipt: bool) -> None:
        if recipient.isdigit() and len(recipient) <= 20 and recipient.isascii():
            destination: bytes | None = recipient.encode("ascii")
        else:
            destination = self._destination(recipient)
        msg = _Message(f"{job.reference}/{job.messages}",
                       destination or recipient.encode("ascii", "replace")[:40],
                       templates, expires, want_receipt, job, None)
        job.messages += 1
        if destination is None:
            msg.error = f"invalid destination {recipient!r}"
            self._finish(msg, OutcomeStatus.FAILED, "")
            return
        work = self._work
        for index in range(msg.pending):
            work.append((msg, index))

    def _add_chunk(self, job: BulkJob, chunk: list[str], templates: list[SubmitTemplate],
                   expires: float | None, want_receipt: bool) -> None:
        """:meth:`_add` for many recipients at once (the bulk hot path, kept tight)."""
        if len(templates) != 1:
            for recipient in chunk:
                self._add(job, recipient, templates, expires, want_receipt)
            return
        append = self._work.append
        prefix = job.reference + "/"
        n = job.messages
        for recipient in chunk:
            if recipient.isdigit() and len(recipient) <= 20 and recipient.isascii():
                append((_Message(prefix + str(n), recipient.encode("ascii"), templates, expires,
                                 want_receipt, job, None), 0))
                n += 1
                job.messages = n
            else:
                job.messages = n
                self._add(job, recipient, templates, expires, want_receipt)
                n = job.messages

    # -- broadcast (SMPP 5.0) -------------------------------------------------------------

    def _transmit_link(self) -> _Link:
        for link in self._links:
            if link.bound and link.transport is not None \
                    and link.config.bind_mode is not BindMode.RECEIVER:
                return link
        raise ConnectionLost("no bound SMPP link", operator=self.operator)

    async def broadcast(self, *, areas: Sequence[str | BroadcastArea], text: str,
                        source: str = "", message_id: str = "",
                        content_type: BroadcastContentType | None = None,
                        repetitions: int | None = None, interval: float | None = None,
                        expires_at: datetime | None = None, priority_flag: int = 0,
                        channel_indicator: int | None = None,
                        message_class: int | None = None) -> BroadcastOutcome:
        """Send one broadcast_sm (cell broadcast through an SMSC/CBC speaking SMPP 5.0).

        ``areas`` are cell ids or area names (sent as alias-format
        broadcast_area_identifier) or ready :class:`BroadcastArea` values.
        ``repetitions`` (broadcast_rep_num, 0 = until expiry) and ``interval``
        seconds (broadcast_frequency_interval) ask the centre to repeat it.
        ESME_RTHROTTLED / ESME_RMSGQFUL are retried with backoff until the
        expiry.

        Raises:
            Expired: the expiry passed before the broadcast was accepted.
            CommandStatusError: the centre refused it (a subclass per status).
            GatewayTimeout, ConnectionLost: no answer; the outcome is unknown.

        """
        if not areas:
            raise ValueError("a broadcast needs at least one area")
        expires = expires_at.timestamp() if expires_at is not None else None
        if detect_alphabet(text).value == "gsm7":
            payload, coding = gsm7_encode(text), 0x00
        else:
            payload, coding = ucs2_encode(text), 0x08
        ton, npi, addr = address_ton_npi(source) if source else (0, 0, "")
        extra = []
        if channel_indicator is not None:
            extra.append(codec.Tlv.u8(codec.TlvTag.BROADCAST_CHANNEL_INDICATOR, channel_indicator))
        if message_class is not None:
            extra.append(codec.Tlv.u8(codec.TlvTag.BROADCAST_MESSAGE_CLASS, message_class))
        pdu = BroadcastSm(
            source_addr_ton=ton, source_addr_npi=npi, source_addr=addr, message_id=message_id,
            priority_flag=priority_flag,
            validity_period=codec.smpp_time(expires) if expires is not None else "",
            data_coding=coding,
            areas=tuple(a if isinstance(a, BroadcastArea) else BroadcastArea.alias(a)
                        for a in areas),
            content_type=content_type or BroadcastContentType(),
            rep_num=repetitions,
            frequency_interval=BroadcastFrequencyInterval.seconds(interval or 0)
            if interval else BroadcastFrequencyInterval(unit=0, count=0),
            message_payload=payload, tlvs=tuple(extra))
        response, link = await self._request_with_retry(pdu, expires)
        assert isinstance(response, BroadcastSmResp)
        return BroadcastOutcome(message_id=response.message_id,
                                failed_areas=response.failed_areas, link=link)

    async def query_broadcast(self, message_id: str, *, source: str = "") -> QueryBroadcastSmResp:
        """query_broadcast_sm: the state of a broadcast (message_state, areas, success %)."""
        ton, npi, addr = address_ton_npi(source) if source else (0, 0, "")
        response, _ = await self._request_with_retry(QueryBroadcastSm(
            message_id=message_id, source_addr_ton=ton, source_addr_npi=npi,
            source_addr=addr), None)
        assert isinstance(response, QueryBroadcastSmResp)
        return response

    async def cancel_broadcast(self, message_id: str, *, source: str = "") -> None:
        """cancel_broadcast_sm: stop a broadcast."""
        ton, npi, addr = address_ton_npi(source) if source else (0, 0, "")
        await self._request_with_retry(CancelBroadcastSm(
            message_id=message_id, source_addr_ton=ton, source_addr_npi=npi,
            source_addr=addr), None)

    async def _request_with_retry(self, pdu: Pdu, expires: float | None) -> tuple[Pdu, str]:
        backoff = 0.1
        for attempt in itertools.count(1):
            if expires is not None and self.clock() >= expires:
                raise Expired(f"{pdu.command} not sent: its expiry passed",
                              operator=self.operator)
            link = self._transmit_link()
            response = await link.request(pdu)
            if response.status == 0:
                return response, link.name
            if response.status in _FLOW_CONTROL and attempt < self.max_attempts:
                link.stats["throttled"] += 1
                await asyncio.sleep(backoff * random.uniform(0.75, 1.25))
                backoff = min(10.0, backoff * 2)
                continue
            raise error_for_status(response.status, command=pdu.command, sequence=pdu.sequence,
                                   operator=self.operator, link=link.name)
        raise AssertionError("unreachable")  # pragma: no cover
