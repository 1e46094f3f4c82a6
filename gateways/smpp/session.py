"""The SMPP session as a sans-IO state machine, for both the ESME and the SMSC role.

Modelled on h11's ``Connection``: the caller owns the socket and the clock,
feeds received bytes in and writes out what the session returns::

    session = Session(role=Role.ESME, window=64)
    transport.write(session.send(BindTransceiver(system_id="capcast", password=pw)))
    session.receive_data(data)                 # b"" when the peer closed the stream
    while (event := session.next_event()) is not NEED_DATA:
        ...                                    # a PDU record, a ReceiptReceived, ...
    transport.write(session.data_to_send())    # automatic replies, see below

What the session does by itself, so that every adapter complies:

* answers ``enquire_link`` and ``unbind``, and answers every bad request (an
  unknown command_id, a malformed body, a command not allowed in the current
  bind state) with the error response SMPP asks for (``generic_nack`` or the
  command's ``_resp`` with the error status). These replies queue up in
  :meth:`Session.data_to_send`.
* keeps the window: the sequence numbers of the requests sent and not yet
  answered (:attr:`Session.outstanding`); :meth:`Session.send` refuses a
  windowed request when the window is full.
* correlates delivery receipts with submissions: the caller registers a
  message id with :meth:`Session.expect_receipt` and receipts come back as
  :class:`ReceiptReceived` with the caller's reference, the id matched in its
  own base or the other (hex ↔ decimal), as SMSCs differ there.

Bad input from the peer never raises: it becomes a :class:`ProtocolViolation`
event (logged), and a stream that cannot be resynchronised (a command_length
out of range) closes the session (``fatal=True``). Misuse by the caller
raises :class:`gateways.errors.LocalProtocolError`.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from enum import Enum
from typing import Final

from gateways.errors import LocalProtocolError
from gateways.smpp import codec
from gateways.smpp.codec import (
    HEADER,
    MAX_PDU_SIZE,
    RESPONSE_BIT,
    Bind,
    BindReceiver,
    BindResp,
    BindTransceiver,
    BindTransmitter,
    CommandId,
    DataSm,
    DeliverSm,
    DeliveryReceipt,
    GenericNack,
    Pdu,
    PduDecodeError,
    SequenceGenerator,
    SubmitSmReceived,
    SubmitSmResp,
    SubmitTemplate,
    Unbind,
    UnbindResp,
    UnknownPdu,
)

__all__ = [
    "BIND_CLASSES",
    "NEED_DATA",
    "ConnectionClosed",
    "Event",
    "NeedData",
    "ProtocolViolation",
    "ReceiptReceived",
    "ReceiptTracker",
    "Role",
    "Session",
    "State",
    "receipt_keys",
]

logger = logging.getLogger(__name__)


class Role(Enum):
    """Which side of the link this session plays."""

    #: The client (capcast sending messages).
    ESME = "esme"
    #: The server (the simulator, or a test peer).
    SMSC = "smsc"


class State(Enum):
    """Bind state of a session (SMPP 3.4 §2.2)."""

    #: Connected, not bound.
    OPEN = "open"
    #: A bind request is waiting for its response.
    BINDING = "binding"
    #: Bound as a transmitter (ESME → SMSC only).
    BOUND_TX = "bound_tx"
    #: Bound as a receiver (SMSC → ESME only).
    BOUND_RX = "bound_rx"
    #: Bound as a transceiver (both directions).
    BOUND_TRX = "bound_trx"
    #: An unbind was sent and waits for its response.
    UNBINDING = "unbinding"
    #: Unbound, closed by the peer, or broken by a fatal protocol error.
    CLOSED = "closed"


class NeedData(Enum):
    """The type of :data:`NEED_DATA` (a one-member enum, so type checkers can narrow it)."""

    #: Returned by :meth:`Session.next_event` when more bytes are needed.
    NEED_DATA = "need_data"


#: Returned by :meth:`Session.next_event` when more bytes are needed.
NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolViolation:
    """The peer sent something invalid; the session logged it and answered if SMPP asks.

    ``status`` is the command_status of the reply sent (or, for a broken
    response, ESME_RSYSERR). ``fatal`` means the session is now CLOSED and
    the link must be dropped.
    """

    reason: str
    command_id: int | None = None
    sequence: int | None = None
    status: int = 0
    fatal: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """The peer closed the byte stream."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptReceived:
    """A delivery receipt (in a deliver_sm or data_sm), correlated when possible.

    ``reference`` is what the caller registered with
    :meth:`Session.expect_receipt` for that message id, or None for an unknown
    id. Answer ``pdu`` with a ``deliver_sm_resp`` (or ``data_sm_resp``).
    """

    receipt: DeliveryReceipt
    reference: str | None
    pdu: DeliverSm | DataSm


Event = Pdu | ProtocolViolation | ConnectionClosed | ReceiptReceived | SubmitSmReceived

_BOUND: Final = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})
_CAN_TRANSMIT: Final = frozenset({State.BOUND_TX, State.BOUND_TRX})
_CAN_RECEIVE: Final = frozenset({State.BOUND_RX, State.BOUND_TRX, State.UNBINDING})
_BIND_STATE: Final[dict[int, State]] = {
    CommandId.BIND_TRANSMITTER: State.BOUND_TX,
    CommandId.BIND_RECEIVER: State.BOUND_RX,
    CommandId.BIND_TRANSCEIVER: State.BOUND_TRX,
}
# Requests an ESME sends to the SMSC (and the SMSC receives) once bound for transmission.
_ESME_REQUESTS: Final = frozenset({
    CommandId.SUBMIT_SM, CommandId.QUERY_SM, CommandId.DATA_SM, CommandId.BROADCAST_SM,
    CommandId.QUERY_BROADCAST_SM, CommandId.CANCEL_BROADCAST_SM, CommandId.REPLACE_SM,
    CommandId.CANCEL_SM, CommandId.SUBMIT_MULTI,
})
# Requests an SMSC sends to a receiver (and the ESME receives).
_SMSC_REQUESTS: Final = frozenset({CommandId.DELIVER_SM, CommandId.DATA_SM,
                                   CommandId.ALERT_NOTIFICATION})
# Requests that do not count against the window (keepalive and session management).
_UNWINDOWED: Final = frozenset({CommandId.ENQUIRE_LINK, CommandId.UNBIND,
                                CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER,
                                CommandId.BIND_TRANSCEIVER})

_SUBMIT_SM_RESP: Final = int(CommandId.SUBMIT_SM_RESP)
_SUBMIT_SM: Final = int(CommandId.SUBMIT_SM)
_unpack_header: Final = HEADER.unpack_from
_new_submit_sm_resp: Final = codec.fast_constructor(SubmitSmResp)
_GENERIC_NACK: Final = int(CommandId.GENERIC_NACK)
_RINVCMDLEN: Final = 0x02
_RINVCMDID: Final = 0x03
_RINVBNDSTS: Final = 0x04
_RALYBND: Final = 0x05
_RSYSERR: Final = 0x08
_HEX: Final = frozenset("0123456789abcdef")


def _normal(message_id: str) -> str:
    key = message_id.strip().lower().lstrip("0")
    return key or "0"


def receipt_keys(message_id: str) -> list[str]:
    """The keys a receipt's message id may match, best first.

    The id as sent (case and leading zeros ignored), then its reading in the
    other base: SMSCs may answer submit_sm_resp in hex and put the same id in
    decimal in the receipt, or the other way round.
    """
    key = _normal(message_id)
    keys = [key]
    if key.isdigit() and len(key) < 40:
        keys.append(format(int(key), "x"))
    if set(key) <= _HEX and len(key) < 32:
        keys.append(str(int(key, 16)))
    return keys


class ReceiptTracker:
    """Message ids waiting for a delivery receipt, shared by the sessions of one operator.

    An SMSC may deliver a receipt on any receiver or transceiver bound with the
    same system_id, not only on the link the message went out on, so the
    sessions of one client share one tracker. At most ``capacity`` ids are
    kept; beyond that the oldest is forgotten (its receipt, if it ever comes,
    is then reported as unknown), so memory stays flat however many messages
    a job sends.
    """

    def __init__(self, capacity: int = 250_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._ids: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def expect(self, message_id: str, reference: str) -> None:
        """Remember that a receipt for ``message_id`` belongs to ``reference``."""
        ids = self._ids
        if len(ids) >= self.capacity:
            oldest = next(iter(ids))
            del ids[oldest]
            logger.debug("receipt tracking full; forgetting the oldest message id",
                         extra={"action": "smpp_receipt_evict", "message_id": oldest})
        ids[_normal(message_id)] = reference

    def match(self, message_id: str, *, final: bool) -> str | None:
        """The reference for a receipt's ``message_id``; forgotten when ``final``."""
        ids = self._ids
        for key in receipt_keys(message_id):
            reference = ids.get(key)
            if reference is not None:
                if final:
                    del ids[key]
                return reference
        return None


class Session:
    """One SMPP session (one TCP link), without I/O. See the module docstring."""

    def __init__(self, *, role: Role, window: int = 64, max_pdu_size: int = MAX_PDU_SIZE,
                 sequence: SequenceGenerator | None = None,
                 receipts: ReceiptTracker | None = None, name: str = "",
                 lazy_submit: bool = False) -> None:
        """Create a session in state OPEN.

        Args:
            role: ESME (client) or SMSC (server).
            window: the most windowed requests (submit_sm, broadcast_sm, ...)
                outstanding at once.
            max_pdu_size: a peer's command_length above this is fatal.
            sequence: the generator of sequence numbers (a new one by default).
            receipts: the tracker of message ids awaiting receipts (shared by
                the sessions of one operator; a new one by default).
            name: the link's name, for log records.
            lazy_submit: SMSC role only: emit a :class:`~gateways.smpp.codec.SubmitSmReceived`
                (checked, decoded on demand) for each well-formed submit_sm instead of a
                full :class:`~gateways.smpp.codec.SubmitSm` (several times cheaper).

        """
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        self.role = role
        self.window = window
        self.name = name
        self._state = State.OPEN
        # The hot paths test this flag: an Enum's hash is computed in Python.
        self._can_transmit = False
        self._max_pdu_size = max_pdu_size
        self._lazy_submit = lazy_submit and role is Role.SMSC
        self._sequence = sequence or SequenceGenerator()
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._closed_reported = False
        self._out = bytearray()
        self._queued: deque[Event] = deque()
        #: sequence -> command_id of the requests sent and not yet answered.
        self._outstanding: dict[int, int] = {}
        #: How many of them are unwindowed (enquire_link, bind, unbind): they never count
        #: against the window, or a full window plus a keepalive would refuse a submit.
        self._unwindowed = 0
        self._pending_bind: tuple[int, int] | None = None  # SMSC: (command_id, sequence)
        self.receipts = receipts if receipts is not None else ReceiptTracker()

    # -- introspection -------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The bind state."""
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        self._state = state
        self._can_transmit = state is State.BOUND_TX or state is State.BOUND_TRX

    @property
    def outstanding(self) -> int:
        """The number of requests sent and not yet answered."""
        return len(self._outstanding)

    @property
    def window_free(self) -> int:
        """How many windowed requests may be sent now."""
        return max(0, self.window - (len(self._outstanding) - self._unwindowed))

    @property
    def is_bound(self) -> bool:
        """True in a BOUND_* state."""
        return self.state in _BOUND

    def outstanding_sequences(self) -> dict[int, int]:
        """A copy of sequence -> command_id of the unanswered requests."""
        return dict(self._outstanding)

    def next_sequence(self) -> int:
        """Draw the next sequence number (to give a request before :meth:`send`)."""
        return self._sequence.next_sequence()

    def forget_outstanding(self, sequence: int) -> bool:
        """Stop waiting for the response to ``sequence`` (a response timeout); True if known."""
        return self._pop_outstanding(sequence) is not None

    def _pop_outstanding(self, sequence: int) -> int | None:
        command_id = self._outstanding.pop(sequence, None)
        if command_id in _UNWINDOWED:
            self._unwindowed -= 1
        return command_id

    def _put_outstanding(self, sequence: int, command_id: int) -> None:
        if command_id in _UNWINDOWED:
            self._unwindowed += 1
        self._outstanding[sequence] = command_id

    # -- sending -------------------------------------------------------------------------

    def send(self, pdu: Pdu) -> bytes:
        """The bytes to write for ``pdu``, after checking it is allowed now.

        A request with ``sequence == 0`` gets the next sequence number.

        Raises:
            LocalProtocolError: the PDU is not allowed in this role or state, the
                window is full, or a field does not fit.

        """
        state = self.state
        if state is State.CLOSED:
            raise LocalProtocolError(f"session is closed; cannot send {pdu.command}",
                                     link=self.name)
        command_id = pdu.raw_command_id if isinstance(pdu, UnknownPdu) else pdu.command_id
        if command_id & RESPONSE_BIT:
            self._before_response(pdu, command_id)
            data = codec.encode_fast(pdu)
            if isinstance(pdu, UnbindResp):
                self.state = State.CLOSED
            return data
        self._check_request(command_id, pdu)
        if pdu.sequence == 0:
            pdu = replace(pdu, sequence=self._sequence.next_sequence())
        data = codec.encode(pdu)
        self._put_outstanding(pdu.sequence, command_id)
        if isinstance(pdu, Bind):
            self.state = State.BINDING
        elif isinstance(pdu, Unbind):
            self.state = State.UNBINDING
        return data

    def _check_request(self, command_id: int, pdu: Pdu) -> None:
        state = self.state
        if isinstance(pdu, Bind):
            if self.role is not Role.ESME or state is not State.OPEN:
                raise LocalProtocolError(f"cannot send {pdu.command} in state {state.value} "
                                         f"as {self.role.value}", link=self.name)
        elif command_id == CommandId.UNBIND:
            if state not in _BOUND:
                raise LocalProtocolError("unbind needs a bound session", link=self.name)
        elif command_id != CommandId.ENQUIRE_LINK:
            allowed = _ESME_REQUESTS if self.role is Role.ESME else _SMSC_REQUESTS
            needed = _CAN_TRANSMIT if self.role is Role.ESME else _CAN_RECEIVE - {State.UNBINDING}
            if command_id not in allowed and not isinstance(pdu, UnknownPdu):
                raise LocalProtocolError(f"an {self.role.value} does not send {pdu.command}",
                                         link=self.name)
            if state not in needed:
                raise LocalProtocolError(f"cannot send {pdu.command} in state {state.value}",
                                         link=self.name)
        if (command_id not in _UNWINDOWED
                and len(self._outstanding) - self._unwindowed >= self.window):
            raise LocalProtocolError(f"window of {self.window} is full", link=self.name)

    def _before_response(self, pdu: Pdu, command_id: int) -> None:
        if isinstance(pdu, BindResp):
            pending = self._pending_bind
            if pending is None or pending[0] | RESPONSE_BIT != command_id:
                raise LocalProtocolError(f"{pdu.command} answers no pending bind",
                                         link=self.name)
            self._pending_bind = None
            self.state = _BIND_STATE[pending[0]] if pdu.status == 0 else State.OPEN

    def send_submit(self, template: SubmitTemplate, destination: bytes) -> tuple[int, bytes]:
        """The hot path: a submit_sm from ``template`` for ``destination``.

        Returns the sequence number given and the PDU's bytes.

        Raises:
            LocalProtocolError: not bound for transmission, or the window is full.

        """
        if not self._can_transmit:
            raise LocalProtocolError(f"cannot submit in state {self.state.value}", link=self.name)
        outstanding = self._outstanding
        if len(outstanding) - self._unwindowed >= self.window:
            raise LocalProtocolError(f"window of {self.window} is full", link=self.name)
        seq = self._sequence.next_sequence()
        outstanding[seq] = _SUBMIT_SM
        return seq, template.render(seq, destination)

    def data_to_send(self) -> bytes:
        """The automatic replies queued while reading (and clear them)."""
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out.clear()
        return data

    # -- receipt correlation ------------------------------------------------------------

    def expect_receipt(self, message_id: str, reference: str) -> None:
        """Remember that a receipt for ``message_id`` belongs to ``reference``."""
        self.receipts.expect(message_id, reference)

    # -- receiving -----------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed the stream."""
        if not data:
            self._eof = True
            return
        if self._closed_reported:
            return
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def next_event(self) -> Event | NeedData:
        """The next event, or :data:`NEED_DATA`. Never raises on bad input from the peer."""
        while True:
            if self._queued:
                return self._queued.popleft()
            buf = self._buf
            pos = self._pos
            avail = len(buf) - pos
            if self._closed_reported or avail < 16:
                if avail >= 4 and not self._closed_reported:
                    length = int.from_bytes(buf[pos:pos + 4], "big")
                    if length < 16 or length > self._max_pdu_size:
                        return self._fatal(f"command_length {length} out of range "
                                           f"(16..{self._max_pdu_size})", 0, 0)
                return self._end_of_data()
            length, command_id, status, sequence = _unpack_header(buf, pos)
            if length < 16 or length > self._max_pdu_size:
                return self._fatal(f"command_length {length} out of range "
                                   f"(16..{self._max_pdu_size})", command_id, sequence)
            if avail < length:
                return self._end_of_data()
            end = pos + length
            self._pos = end
            if command_id == _SUBMIT_SM_RESP:
                # The ESME's hot path, inline: an outstanding submit_sm answered with a
                # message_id and no TLVs. Anything else takes the careful path.
                outstanding = self._outstanding
                if outstanding.get(sequence) == _SUBMIT_SM and pos + 16 < end:
                    nul = buf.find(b"\0", pos + 16, end)
                    if nul + 1 == end:
                        del outstanding[sequence]
                        return _new_submit_sm_resp(sequence, status, (),
                                                   buf[pos + 16:nul].decode("latin-1"))
                event = self._submit_sm_resp(buf, pos, end, status, sequence)
            elif command_id == _SUBMIT_SM and self._lazy_submit:
                event = self._submit_sm_lazy(buf, pos, end, sequence)
            else:
                event = self._pdu(buf, pos, end, command_id, sequence)
            if event is not None:
                return event

    def _end_of_data(self) -> Event | NeedData:
        if self._eof and not self._closed_reported:
            self._closed_reported = True
            leftover = len(self._buf) - self._pos
            if leftover and self.state is not State.CLOSED:
                logger.info("peer closed the link in the middle of a PDU",
                            extra={"action": "smpp_truncated_close", "link": self.name,
                                   "octets": leftover})
            self.state = State.CLOSED
            return ConnectionClosed()
        return NEED_DATA

    def _fatal(self, reason: str, command_id: int, sequence: int) -> ProtocolViolation:
        logger.warning("SMPP peer sent an unreadable stream; closing: %s", reason,
                       extra={"action": "smpp_protocol_violation", "link": self.name,
                              "command_id": command_id, "sequence": sequence, "fatal": True})
        self._out += codec.encode(GenericNack(sequence=sequence, status=_RINVCMDLEN))
        self.state = State.CLOSED
        self._closed_reported = True
        self._buf.clear()
        self._pos = 0
        return ProtocolViolation(reason=reason, command_id=command_id, sequence=sequence,
                                 status=_RINVCMDLEN, fatal=True)

    def _violation(self, reason: str, *, command_id: int | None, sequence: int | None,
                   status: int, reply: Pdu | None) -> ProtocolViolation:
        logger.warning("SMPP peer sent a bad PDU: %s", reason,
                       extra={"action": "smpp_protocol_violation", "link": self.name,
                              "command_id": command_id, "sequence": sequence,
                              "status": status, "fatal": False})
        if reply is not None:
            self._out += codec.encode_fast(reply)
        return ProtocolViolation(reason=reason, command_id=command_id, sequence=sequence,
                                 status=status)

    def _submit_sm_resp(self, buf: bytearray, start: int, end: int, status: int,
                        sequence: int) -> Event | None:
        """The hot path of an ESME: one submit_sm_resp, without the general decoder."""
        expected = self._pop_outstanding(sequence)
        if expected != _SUBMIT_SM:
            if expected is not None:
                self._put_outstanding(sequence, expected)
            return self._violation(f"submit_sm_resp for sequence {sequence}, which is not an "
                                   "outstanding submit_sm", command_id=_SUBMIT_SM_RESP,
                                   sequence=sequence, status=status, reply=None)
        pos = start + 16
        if pos < end:
            nul = buf.find(b"\0", pos, end)
            if nul + 1 == end:  # the usual shape: a message_id and no TLVs
                return _new_submit_sm_resp(sequence, status, (), buf[pos:nul].decode("latin-1"))
        try:
            return codec.decode_submit_sm_resp(buf, start, end)
        except PduDecodeError as exc:
            return self._violation(str(exc), command_id=_SUBMIT_SM_RESP, sequence=sequence,
                                   status=_RSYSERR, reply=None)

    def _submit_sm_lazy(self, buf: bytearray, start: int, end: int,
                        sequence: int) -> Event | None:
        """The hot path of an SMSC: check a submit_sm, decode only what it acts on."""
        if not self._can_transmit:
            return self._pdu(buf, start, end, _SUBMIT_SM, sequence)  # refused there
        raw = bytes(buf[start:end])
        try:
            return codec.scan_submit_sm(raw)
        except PduDecodeError:
            # Let the general decoder answer it (or accept a body short of trailing fields).
            return self._pdu(buf, start, end, _SUBMIT_SM, sequence)

    def _pdu(self, buf: bytearray, start: int, end: int, command_id: int,
             sequence: int) -> Event | None:
        try:
            pdu = codec.decode(buf[start:end])
        except PduDecodeError as exc:
            if command_id & RESPONSE_BIT:
                # A broken response still answers its request: free the window slot.
                self._pop_outstanding(sequence)
                return self._violation(str(exc), command_id=command_id, sequence=sequence,
                                       status=_RSYSERR, reply=None)
            reply = codec.response_for(command_id, sequence=sequence, status=exc.status)
            return self._violation(str(exc), command_id=command_id, sequence=sequence,
                                   status=exc.status, reply=reply)
        if command_id & RESPONSE_BIT:
            return self._response(pdu, command_id, sequence)
        return self._request(pdu, command_id, sequence)

    def _response(self, pdu: Pdu, command_id: int, sequence: int) -> Event | None:
        expected = self._pop_outstanding(sequence)
        if expected is None or (command_id != expected | RESPONSE_BIT
                                and command_id != _GENERIC_NACK):
            if expected is not None:
                self._put_outstanding(sequence, expected)
            return self._violation(
                f"{codec.command_name(command_id)} for sequence {sequence}, which has no "
                "outstanding request of that kind", command_id=command_id, sequence=sequence,
                status=pdu.status, reply=None)
        if expected in _BIND_STATE:
            self.state = _BIND_STATE[expected] if pdu.status == 0 else State.OPEN
        elif expected == CommandId.UNBIND:
            self.state = State.CLOSED
        return pdu

    def _request(self, pdu: Pdu, command_id: int, sequence: int) -> Event | None:
        state = self.state
        if isinstance(pdu, UnknownPdu):
            return self._violation(f"unknown command_id 0x{command_id:08x}",
                                   command_id=command_id, sequence=sequence,
                                   status=_RINVCMDID,
                                   reply=GenericNack(sequence=sequence, status=_RINVCMDID))
        if command_id == CommandId.ENQUIRE_LINK:
            self._out += codec.encode(codec.EnquireLinkResp(sequence=sequence))
            return pdu
        if command_id == CommandId.UNBIND:
            self._out += codec.encode(UnbindResp(sequence=sequence))
            self.state = State.CLOSED
            return pdu
        if isinstance(pdu, Bind):
            if self.role is Role.ESME:
                return self._refuse(pdu, command_id, sequence, "an SMSC sent a bind",
                                    _RINVBNDSTS)
            if state is not State.OPEN:
                return self._refuse(pdu, command_id, sequence, "bind on a bound session",
                                    _RALYBND)
            self._pending_bind = (command_id, sequence)
            self.state = State.BINDING
            return pdu
        if self.role is Role.SMSC:
            if command_id not in _ESME_REQUESTS:
                return self._refuse(pdu, command_id, sequence,
                                    f"an ESME does not send {pdu.command}", _RINVBNDSTS)
            if state not in _CAN_TRANSMIT:
                return self._refuse(pdu, command_id, sequence,
                                    f"{pdu.command} in state {state.value}", _RINVBNDSTS)
            return pdu
        if command_id not in _SMSC_REQUESTS:
            return self._refuse(pdu, command_id, sequence,
                                f"an SMSC does not send {pdu.command}", _RINVBNDSTS)
        if state not in _CAN_RECEIVE:
            return self._refuse(pdu, command_id, sequence,
                                f"{pdu.command} in state {state.value}", _RINVBNDSTS)
        if isinstance(pdu, DeliverSm | DataSm):
            receipt = codec.parse_receipt(pdu)
            if receipt is not None:
                reference = self.receipts.match(receipt.message_id,
                                                final=receipt.state.is_final)
                if reference is None:
                    # Not necessarily an error yet: the receipt may have overtaken its
                    # submit_sm_resp. The client decides after a grace period.
                    logger.info("delivery receipt for a message id not (yet) known",
                                extra={"action": "smpp_receipt_unmatched", "link": self.name,
                                       "message_id": receipt.message_id,
                                       "state": receipt.state.name})
                return ReceiptReceived(receipt=receipt, reference=reference, pdu=pdu)
        return pdu

    def _refuse(self, pdu: Pdu, command_id: int, sequence: int, reason: str,
                status: int) -> ProtocolViolation:
        reply = codec.response_for(command_id, sequence=sequence, status=status)
        return self._violation(reason, command_id=command_id, sequence=sequence, status=status,
                               reply=reply)


#: The bind request for each mode name.
BIND_CLASSES: Final[dict[str, type[Bind]]] = {
    "transmitter": BindTransmitter, "receiver": BindReceiver, "transceiver": BindTransceiver,
}
