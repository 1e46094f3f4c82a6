"""An SMSC / SMPP cell-broadcast centre simulator, for drills, demos, tests and benchmarks.

It speaks SMPP over asyncio with :class:`gateways.smpp.session.Session` in the
SMSC role, so the protocol rules it enforces are the ones capcast's client is
held to:

* binds (transmitter, receiver, transceiver) checked against credentials
  (ESME_RINVSYSID / ESME_RINVPASWD);
* ``submit_sm`` answered with a message id (hex or decimal), and a delivery
  receipt (``deliver_sm``, text form and/or TLVs, the id in the same or the
  other base) after ``dlr_delay`` seconds when registered_delivery asks;
* SMPP 5.0 ``broadcast_sm``, ``query_broadcast_sm`` and ``cancel_broadcast_sm``;
* a throughput limit per bind (a token bucket; ESME_RTHROTTLED beyond it),
  injected throttling and errors at given rates, response delays, and
  disconnects after a number of submissions or on demand;
* a record of every PDU received, queryable in-process
  (:meth:`SmscSimulator.records`) and dumpable as JSON lines.

It answers a large read in slices of 16 responses, so that a client with a
full window works on the first answers while the simulator reads the rest.

Typical use::

    async with SmscSimulator(SmscConfig(port=0, tps=100)) as sim:
        ... connect to sim.port ...
        assert len(sim.records("submit_sm")) == 3
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import IO, Any, Final, cast

from gateways.smpp import codec
from gateways.smpp.codec import (
    Bind,
    BroadcastSm,
    CancelBroadcastSm,
    DataSm,
    DeliverSm,
    MessageState,
    Pdu,
    QueryBroadcastSm,
    QuerySm,
    SubmitSm,
    SubmitSmReceived,
    Tlv,
    TlvTag,
)
from gateways.smpp.session import NEED_DATA, ConnectionClosed, ProtocolViolation, Role, Session

__all__ = ["BroadcastState", "IdBase", "Received", "SmscConfig", "SmscSimulator", "SmscStats"]

logger = logging.getLogger(__name__)

_RINVBNDSTS: Final = 0x04
_RINVMSGID: Final = 0x0C
_RINVPASWD: Final = 0x0E
_RINVSYSID: Final = 0x0F
_RINVDSTADR: Final = 0x0B
_RSUBMITFAIL: Final = 0x45
_RTHROTTLED: Final = 0x58
_RBCASTQUERYFAIL: Final = 0x10E
_RBCASTCANCELFAIL: Final = 0x10F

#: Responses written at a time while a large read is being answered.
_FLUSH_EVERY: Final = 16

_STAT_TEXT: Final[dict[MessageState, str]] = {
    MessageState.DELIVERED: "DELIVRD", MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED", MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD", MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD", MessageState.ENROUTE: "ENROUTE",
}


class IdBase(Enum):
    """How message ids are written."""

    #: Lower-case hexadecimal, as many SMSCs answer submit_sm_resp.
    HEX = "hex"
    #: Decimal digits.
    DECIMAL = "decimal"


@dataclass(frozen=True, slots=True, kw_only=True)
class SmscConfig:
    """What the simulator accepts and how it misbehaves."""

    host: str = "127.0.0.1"
    #: 0 picks a free port (see :attr:`SmscSimulator.port`).
    port: int = 0
    #: system_id -> password; None accepts any bind.
    credentials: Mapping[str, str] | None = None
    #: The system_id in bind responses.
    system_id: str = "capcast-sim"
    #: submit_sm + broadcast_sm per second per bind; beyond it ESME_RTHROTTLED. None: no limit.
    tps: float | None = None
    #: Fraction of submissions answered with ``error_status``.
    error_rate: float = 0.0
    error_status: int = _RSUBMITFAIL
    #: Fraction of submissions answered ESME_RTHROTTLED whatever the rate.
    throttle_rate: float = 0.0
    #: Seconds before a response is sent.
    response_delay: float = 0.0
    #: Seconds from submit_sm to its delivery receipt; None: no receipts.
    dlr_delay: float | None = 1.0
    #: The final state reported in receipts.
    dlr_state: MessageState = MessageState.DELIVERED
    #: "both" (text and TLVs), "text" (SMPP 3.4 Appendix B only) or "tlv".
    dlr_format: str = "both"
    #: Base of the ids in submit_sm_resp.
    id_base: IdBase = IdBase.HEX
    #: Base of the ids in receipts (None: the same as ``id_base``).
    receipt_id_base: IdBase | None = None
    #: Drop each connection after this many submit_sm (None: never).
    disconnect_after: int | None = None
    #: Keep the last this many received PDUs (0: record nothing).
    record_limit: int = 100_000
    #: Seed for the error and throttle injection.
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "throttle_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.tps is not None and self.tps <= 0:
            raise ValueError(f"tps must be positive, not {self.tps}")
        if self.dlr_format not in ("both", "text", "tlv"):
            raise ValueError(f"dlr_format must be both, text or tlv, not {self.dlr_format!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """One PDU the simulator received."""

    at: datetime
    #: The connection, ``host:port`` of the peer.
    peer: str
    #: The bound system_id ("" before the bind).
    system_id: str
    pdu: Pdu

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the PDU's fields (octets in hex; the password masked)."""
        body = _jsonable(self.pdu)
        assert isinstance(body, dict)
        if isinstance(self.pdu, Bind):
            body["password"] = "***"
        return {"at": self.at.isoformat(), "peer": self.peer, "system_id": self.system_id,
                "command": self.pdu.command or codec.command_name(
                    getattr(self.pdu, "raw_command_id", -1)),
                **body}


def _full(pdu: Pdu | SubmitSmReceived) -> Pdu:
    return pdu.decode() if isinstance(pdu, SubmitSmReceived) else pdu


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastState:
    """A broadcast the simulator accepted."""

    message_id: str
    request: BroadcastSm
    state: MessageState = MessageState.ENROUTE


@dataclass(frozen=True, slots=True, kw_only=True)
class SmscStats:
    """Counters since start."""

    connections: int
    binds: int
    bind_failures: int
    submitted: int
    accepted: int
    throttled: int
    errors: int
    receipts_sent: int
    broadcasts: int
    violations: int


class _Connection(asyncio.Protocol):
    """One ESME connection (internal)."""

    def __init__(self, sim: SmscSimulator) -> None:
        self.sim = sim
        self.session = Session(role=Role.SMSC, window=1 << 20, lazy_submit=True)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.system_id = ""
        self.submits = 0
        self._tokens = 0.0
        self._token_time = 0.0

    @property
    def can_receive(self) -> bool:
        return self.session.state.value in ("bound_rx", "bound_trx")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{host}:{port}"
        self.session.name = f"sim<-{self.peer}"
        self.sim._connections.add(self)
        self.sim._counts["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.sim._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        session = self.session
        session.receive_data(data)
        sim = self.sim
        record = sim._record
        out: list[bytes] = []
        now = time.time()
        cfg = sim.config
        # Without limits, injection or receipts, a submit_sm needs only an id: the fast path.
        plain = cfg.tps is None and not cfg.throttle_rate and not cfg.error_rate
        dlr = cfg.dlr_delay is not None
        new_id = sim._new_id
        respond = codec.encode_submit_sm_resp
        next_event = session.next_event
        fast = 0
        while True:
            event = next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, ProtocolViolation):
                sim._counts["violations"] += 1
                if event.fatal:
                    break
                continue
            if type(event) is SubmitSmReceived:
                if record is not None:
                    record.append((now, self.peer, self.system_id, event))
                if plain and event.destination_addr and not (dlr and event.registered_delivery & 3):
                    fast += 1
                    out.append(respond(event.sequence, new_id()))
                else:
                    out.append(self._submit(event, now))
                if len(out) >= _FLUSH_EVERY and not cfg.response_delay \
                        and self.transport is not None:
                    # Answer in slices, so that the ESME can work on the first responses
                    # while this side reads the rest: both sides busy at once.
                    self.transport.write(b"".join(out))
                    out.clear()
                continue
            if isinstance(event, ConnectionClosed):
                break
            if not isinstance(event, Pdu):
                continue
            if record is not None:
                record.append((now, self.peer, self.system_id, event))
            reply = self._handle(event, now)
            if reply:
                out.append(reply)
        if fast:
            counts = sim._counts
            counts["submitted"] += fast
            counts["accepted"] += fast
            self.submits += fast
        auto = session.data_to_send()
        if auto:
            out.append(auto)
        if out and self.transport is not None:
            payload = b"".join(out)
            if sim.config.response_delay > 0:
                asyncio.get_running_loop().call_later(sim.config.response_delay,
                                                      self._write, payload)
            else:
                self.transport.write(payload)
        if self.transport is not None and session.state.value == "closed":
            self.transport.close()
        limit = sim.config.disconnect_after
        if limit is not None and self.submits >= limit and self.transport is not None:
            logger.info("simulator drops the connection after %d submissions", self.submits,
                        extra={"action": "sim_disconnect", "peer": self.peer})
            self.transport.abort()

    def _write(self, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.write(payload)

    # -- requests ------------------------------------------------------------------------

    def _handle(self, pdu: Pdu, now: float) -> bytes:
        if isinstance(pdu, SubmitSm):  # one the lazy path left to the general decoder
            return self._submit(pdu, now)
        if isinstance(pdu, Bind):
            return self._bind(pdu)
        if isinstance(pdu, BroadcastSm):
            return self._broadcast(pdu, now)
        if isinstance(pdu, QueryBroadcastSm):
            return self._query_broadcast(pdu)
        if isinstance(pdu, CancelBroadcastSm):
            return self._cancel_broadcast(pdu)
        if isinstance(pdu, QuerySm):
            state = self.sim._states.get(pdu.message_id)
            if state is None:
                return self.session.send(codec.QuerySmResp(sequence=pdu.sequence,
                                                           status=_RINVMSGID))
            return self.session.send(codec.QuerySmResp(
                sequence=pdu.sequence, message_id=pdu.message_id, message_state=state))
        if isinstance(pdu, DataSm):
            return self.session.send(codec.DataSmResp(sequence=pdu.sequence,
                                                      message_id=self.sim._new_id()))
        return b""

    def _bind(self, pdu: Bind) -> bytes:
        sim = self.sim
        creds = sim.config.credentials
        status = 0
        if creds is not None:
            if pdu.system_id not in creds:
                status = _RINVSYSID
            elif creds[pdu.system_id] != pdu.password:
                status = _RINVPASWD
        response = codec.response_for(pdu.command_id, sequence=pdu.sequence, status=status)
        assert response is not None
        if status == 0:
            response = replace(response, system_id=sim.config.system_id,  # type: ignore[call-arg]
                               tlvs=(Tlv.u8(TlvTag.SC_INTERFACE_VERSION, 0x50),))
            self.system_id = pdu.system_id
            self._tokens = 1.0
            self._token_time = time.monotonic()
            sim._counts["binds"] += 1
        else:
            sim._counts["bind_failures"] += 1
            logger.info("simulator refused a bind", extra={
                "action": "sim_bind_refused", "peer": self.peer, "system_id": pdu.system_id,
                "status": status})
        return self.session.send(response)

    def _admit(self) -> int:
        """0, or the status refusing one more submission (throttling, injected errors)."""
        sim = self.sim
        cfg = sim.config
        rate = cfg.tps
        if rate is not None:
            now = time.monotonic()
            burst = max(1.0, rate / 10)
            tokens = min(burst, self._tokens + (now - self._token_time) * rate)
            self._token_time = now
            if tokens < 1.0:
                self._tokens = tokens
                return _RTHROTTLED
            self._tokens = tokens - 1.0
        if cfg.throttle_rate and sim._random.random() < cfg.throttle_rate:
            return _RTHROTTLED
        if cfg.error_rate and sim._random.random() < cfg.error_rate:
            return cfg.error_status
        return 0

    def _submit(self, pdu: SubmitSm | SubmitSmReceived, now: float) -> bytes:
        sim = self.sim
        counts = sim._counts
        counts["submitted"] += 1
        self.submits += 1
        status = self._admit() if pdu.destination_addr else _RINVDSTADR
        if status:
            counts["throttled" if status == _RTHROTTLED else "errors"] += 1
            return codec.encode_submit_sm_resp(pdu.sequence, "", status)
        counts["accepted"] += 1
        message_id = sim._new_id()
        if pdu.registered_delivery & 0x03 and sim.config.dlr_delay is not None:
            sim._schedule_receipt(self.system_id, message_id, pdu, now)
        return codec.encode_submit_sm_resp(pdu.sequence, message_id)

    def _broadcast(self, pdu: BroadcastSm, now: float) -> bytes:
        sim = self.sim
        status = self._admit()
        if status:
            sim._counts["throttled" if status == _RTHROTTLED else "errors"] += 1
            return self.session.send(codec.BroadcastSmResp(sequence=pdu.sequence, status=status))
        sim._counts["broadcasts"] += 1
        message_id = pdu.message_id or sim._new_id()
        sim.broadcasts[message_id] = BroadcastState(message_id=message_id, request=pdu)
        return self.session.send(codec.BroadcastSmResp(sequence=pdu.sequence,
                                                       message_id=message_id))

    def _query_broadcast(self, pdu: QueryBroadcastSm) -> bytes:
        state = self.sim.broadcasts.get(pdu.message_id)
        if state is None:
            return self.session.send(codec.QueryBroadcastSmResp(sequence=pdu.sequence,
                                                                status=_RBCASTQUERYFAIL))
        return self.session.send(codec.QueryBroadcastSmResp(
            sequence=pdu.sequence, message_id=pdu.message_id, message_state=state.state,
            areas=state.request.areas, area_success=100))

    def _cancel_broadcast(self, pdu: CancelBroadcastSm) -> bytes:
        sim = self.sim
        state = sim.broadcasts.get(pdu.message_id)
        if state is None or state.state is MessageState.DELETED:
            return self.session.send(codec.CancelBroadcastSmResp(sequence=pdu.sequence,
                                                                 status=_RBCASTCANCELFAIL))
        sim.broadcasts[pdu.message_id] = replace(state, state=MessageState.DELETED)
        return self.session.send(codec.CancelBroadcastSmResp(sequence=pdu.sequence))

    def send_receipt(self, deliver: DeliverSm) -> bool:
        """Write a receipt on this connection (False if it cannot receive now)."""
        if self.transport is None or not self.can_receive:
            return False
        self.transport.write(self.session.send(deliver))
        return True


class SmscSimulator:
    """The simulator: a TCP server of :class:`_Connection` s. See the module docstring."""

    def __init__(self, config: SmscConfig | None = None) -> None:
        self.config = config or SmscConfig()
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._record: deque[tuple[float, str, str, Pdu | SubmitSmReceived]] | None = (
            deque(maxlen=self.config.record_limit) if self.config.record_limit else None)
        self._ids = itertools.count(random.Random(self.config.seed).randrange(1, 1 << 20))
        self._random = random.Random(self.config.seed)
        self._states: dict[str, MessageState] = {}
        self._receipts: deque[tuple[float, str, str, SubmitSm | SubmitSmReceived]] = deque()
        self._receipt_task: asyncio.Task[None] | None = None
        self._receipt_wakeup = asyncio.Event()
        self._counts: dict[str, int] = dict.fromkeys(
            ("connections", "binds", "bind_failures", "submitted", "accepted", "throttled",
             "errors", "receipts_sent", "broadcasts", "violations"), 0)
        #: Broadcasts accepted, by message id.
        self.broadcasts: dict[str, BroadcastState] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (on :attr:`port`)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.config.host,
                                                self.config.port)
        self._receipt_task = asyncio.create_task(self._deliver_receipts())
        logger.info("SMSC simulator listening on %s:%d", self.config.host, self.port,
                    extra={"action": "sim_listening", "port": self.port})

    @property
    def port(self) -> int:
        """The port listened on."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the simulator is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._receipt_task is not None:
            self._receipt_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receipt_task
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def configure(self, **changes: Any) -> None:
        """Change the configuration while running (e.g. ``tps=10``, ``throttle_rate=0.5``)."""
        self.config = replace(self.config, **changes)

    def drop_connections(self) -> int:
        """Abort every connection now (a network failure); the number dropped."""
        dropped = 0
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()
                dropped += 1
        return dropped

    @property
    def bound_connections(self) -> int:
        """How many connections are bound now."""
        return sum(1 for c in self._connections if c.session.is_bound)

    def stats(self) -> SmscStats:
        """Counters since start."""
        return SmscStats(**self._counts)

    # -- the record ----------------------------------------------------------------------

    def records(self, command: str | None = None) -> list[Received]:
        """What was received (the last ``record_limit`` PDUs), optionally of one command."""
        if self._record is None:
            return []
        return [Received(at=datetime.fromtimestamp(at, UTC), peer=peer, system_id=system_id,
                         pdu=_full(pdu))
                for at, peer, system_id, pdu in self._record
                if command is None or pdu.command == command]

    def drain_records(self) -> list[Received]:
        """Take the records out (for a writer that streams them to a file)."""
        if self._record is None:
            return []
        taken = [Received(at=datetime.fromtimestamp(at, UTC), peer=peer, system_id=system_id,
                          pdu=_full(pdu)) for at, peer, system_id, pdu in self._record]
        self._record.clear()
        return taken

    def submitted(self) -> list[SubmitSm]:
        """The submit_sm PDUs received."""
        return [r.pdu for r in self.records("submit_sm") if isinstance(r.pdu, SubmitSm)]

    def iter_json(self, start: int = 0) -> Iterator[str]:
        """JSON lines of the records from index ``start`` (of those still kept)."""
        for item in itertools.islice(self.records(), start, None):
            yield json.dumps(item.to_json(), sort_keys=True)

    def dump(self, stream: IO[str], start: int = 0) -> int:
        """Write the records from ``start`` as JSON lines; the number written."""
        n = 0
        for line in self.iter_json(start):
            stream.write(line + "\n")
            n += 1
        return n

    @property
    def record_count(self) -> int:
        """How many PDUs the record holds."""
        return len(self._record) if self._record is not None else 0

    # -- ids and receipts ----------------------------------------------------------------

    def _new_id(self) -> str:
        n = next(self._ids)
        return format(n, "x") if self.config.id_base is IdBase.HEX else str(n)

    def _schedule_receipt(self, system_id: str, message_id: str,
                          pdu: SubmitSm | SubmitSmReceived, now: float) -> None:
        delay = self.config.dlr_delay or 0.0
        self._states[message_id] = MessageState.ENROUTE
        self._receipts.append((now + delay, system_id, message_id, pdu))
        self._receipt_wakeup.set()

    def _receipt_pdu(self, message_id: str, pdu: SubmitSm, submitted: float) -> DeliverSm:
        cfg = self.config
        base = cfg.receipt_id_base or cfg.id_base
        shown = message_id
        if base is not cfg.id_base:
            number = int(message_id, 16) if cfg.id_base is IdBase.HEX else int(message_id)
            shown = format(number, "x") if base is IdBase.HEX else str(number)
        state = cfg.dlr_state
        stamp = time.strftime("%y%m%d%H%M", time.gmtime(submitted))
        done = time.strftime("%y%m%d%H%M", time.gmtime())
        delivered = "001" if state is MessageState.DELIVERED else "000"
        text = b""
        if cfg.dlr_format in ("both", "text"):
            snippet = pdu.short_message[:20].decode("latin-1") if pdu.data_coding == 0 else ""
            text = (f"id:{shown} sub:001 dlvrd:{delivered} submit date:{stamp} done date:{done} "
                    f"stat:{_STAT_TEXT.get(state, 'UNKNOWN')} err:000 text:{snippet}"
                    ).encode("latin-1")[:254]
        tlvs: tuple[Tlv, ...] = ()
        if cfg.dlr_format in ("both", "tlv"):
            tlvs = (Tlv.cstring(TlvTag.RECEIPTED_MESSAGE_ID, shown),
                    Tlv.u8(TlvTag.MESSAGE_STATE, state))
        return DeliverSm(source_addr_ton=pdu.dest_addr_ton, source_addr_npi=pdu.dest_addr_npi,
                         source_addr=pdu.destination_addr, dest_addr_ton=pdu.source_addr_ton,
                         dest_addr_npi=pdu.source_addr_npi, destination_addr=pdu.source_addr,
                         esm_class=0x04, short_message=text, tlvs=tlvs)

    async def _deliver_receipts(self) -> None:
        queue = self._receipts
        loop_sleep = asyncio.sleep
        while True:
            if not queue:
                self._receipt_wakeup.clear()
                await self._receipt_wakeup.wait()
                continue
            due = queue[0][0] - time.time()
            if due > 0:
                await loop_sleep(min(due, 0.05))
                continue
            now = time.time()
            while queue and queue[0][0] <= now:
                at, system_id, message_id, received = queue.popleft()
                pdu = received.decode() if isinstance(received, SubmitSmReceived) else received
                self._states[message_id] = self.config.dlr_state
                self._send_receipt(system_id, self._receipt_pdu(
                    message_id, pdu, at - (self.config.dlr_delay or 0.0)))
            await loop_sleep(0)

    def _send_receipt(self, system_id: str, deliver: DeliverSm) -> None:
        for conn in self._connections:
            if conn.system_id == system_id and conn.send_receipt(deliver):
                self._counts["receipts_sent"] += 1
                return
        logger.info("no bound receiver for a delivery receipt; dropped",
                    extra={"action": "sim_receipt_dropped", "system_id": system_id})

