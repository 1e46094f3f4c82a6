"""A cell broadcast centre speaking the ECBE REST interface, for drills, demos and tests.

It behaves like osmo-cbc 0.4 without peers (``osmo-cbc`` dialect), or like a
CBC of capcast's extension (``capcast`` dialect, ``docs/cbc-rest.md``):

* ``POST /api/ecbe/v1/message``: the body is read exactly as osmo-cbc reads it
  (:func:`gateways.cbc.ecbe.parse_message`, same 400 texts). The message
  identifier is taken at once (a second create gets 409 ``Could not
  allocate``); the answer, 200 with an empty body, comes after
  ``create_delay`` seconds (osmo-cbc takes ~15 s: its state machine waits for
  its peers; the default here is 0 for tests).
* ``DELETE /api/ecbe/v1/message/:message_id``: 200 after ``delete_delay``;
  404 ``Unknown message ID``; the id is read like C ``atoi`` (``abc`` is 0),
  and one outside 0..65535 gets 400.
* capcast dialect only: ``scope_cell_list`` in the scope, and
  ``PUT /api/ecbe/v1/message/:message_id`` to replace an active message.
* An operation on a message whose create, replace or delete is still pending
  gets 500 ``Illegal FSM event``, as osmo-cbc's state machine answers.
* Anything else (``GET``, other paths) gets 404: there is no read endpoint.

Everything received is recorded (:attr:`CbcSimulator.records`, and one JSON
object per line in ``record_path``), with what the simulator did. Faults can be
injected one by one (:meth:`CbcSimulator.inject`) or at random
(``error_rate``).

The state machine (:class:`CbcModel`) is plain code; :class:`CbcSimulator`
is the aiohttp adapter that owns the sockets and the timers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from aiohttp import web

from gateways.cbc.ecbe import (
    MESSAGE_PATH,
    CbcMessage,
    Dialect,
    EcbeRequestError,
    Operation,
    parse_body,
    parse_message,
    parse_message_id,
)

__all__ = [
    "MAX_BODY",
    "CbcModel",
    "CbcSimulator",
    "Decision",
    "Fault",
    "FaultKind",
    "MessageState",
    "Outcome",
    "Received",
    "SimulatedMessage",
]

logger = logging.getLogger(__name__)

#: Request bodies up to this size are read (a cell list of a national alert is large).
MAX_BODY: Final = 64 << 20
_ILLEGAL: Final = "Illegal FSM event"
_PUT_ID_RE: Final = re.compile(r"[0-9]{1,5}")


class MessageState(Enum):
    """Where a simulated message is in its life (osmo-cbc's message FSM, simplified)."""

    #: Create received; the answer is pending (osmo-cbc: WAIT_WRITE_ACK).
    CREATING = "creating"
    #: On the air.
    ACTIVE = "active"
    #: Replace received (capcast dialect); the answer is pending.
    REPLACING = "replacing"
    #: Delete received; the answer is pending (osmo-cbc: WAIT_DELETE_ACK).
    DELETING = "deleting"


class Outcome(Enum):
    """What the simulator did with a request."""

    #: A message was created.
    CREATED = "created"
    #: An active message was replaced by a new version.
    REPLACED = "replaced"
    #: A replace with exactly the active message (a retried PUT): nothing changed.
    UNCHANGED = "unchanged"
    #: A message was deleted.
    DELETED = "deleted"
    #: The request was refused (4xx/5xx); nothing changed.
    REFUSED = "refused"


class FaultKind(Enum):
    """A fault to inject."""

    #: Answer with ``status`` and ``body`` and do nothing.
    STATUS = "status"
    #: Do the operation, but answer ``delay`` seconds later than usual.
    DELAY = "delay"
    #: Do the operation, then close the connection without answering (a lost answer).
    DROP = "drop"


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A fault for the next request of ``operation`` (any operation when None)."""

    kind: FaultKind
    operation: Operation | None = None
    status: int = 500
    body: str = "Internal Server Error"
    delay: float = 0.0


@dataclass(slots=True, kw_only=True)
class SimulatedMessage:
    """A message the simulated CBC holds."""

    cbe_name: str
    message: CbcMessage
    state: MessageState
    created: datetime
    updated: datetime
    #: The JSON body it was created (or last replaced) with.
    document: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The model's answer to a request, and the state change to make when it is due."""

    status: int
    body: str
    outcome: Outcome
    operation: Operation | None
    message_id: int | None
    #: Seconds until the answer (and ``complete``) are due.
    delay: float = 0.0
    #: Finishes the state change (e.g. CREATING -> ACTIVE); idempotent.
    complete: Callable[[], None] | None = None
    #: The parsed JSON body, when there was one.
    document: object = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """One request as recorded: what came in and what the simulator did."""

    #: 1, 2, ... in arrival order.
    seq: int
    time: datetime
    method: str
    path: str
    content_type: str | None
    #: The body as text (UTF-8, invalid bytes replaced).
    body: str
    #: The parsed JSON body, or None.
    document: object
    operation: Operation | None
    message_id: int | None
    #: The status answered (or that would have been, for a dropped answer).
    status: int
    response: str
    outcome: Outcome
    #: The injected fault, if any: ``status``, ``delay`` or ``drop`` (``random-...`` for
    #: one injected by ``error_rate``).
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON object for the record file."""
        return {"seq": self.seq, "time": self.time.isoformat(), "method": self.method,
                "path": self.path, "content_type": self.content_type,
                "document": self.document,
                "body": self.body if self.document is None else None,
                "operation": self.operation.value if self.operation else None,
                "message_id": self.message_id, "status": self.status,
                "response": self.response, "outcome": self.outcome.value, "fault": self.fault}


def _now() -> datetime:
    return datetime.now(UTC)


class CbcModel:
    """The simulated CBC's state machine: requests in, decisions out; no I/O, no clock.

    Args:
        dialect: ``osmo-cbc`` or ``capcast``.
        create_delay: Seconds before a create (and a capcast replace) is answered.
        delete_delay: Seconds before a delete is answered.

    """

    def __init__(self, *, dialect: Dialect, create_delay: float = 0.0,
                 delete_delay: float = 0.0) -> None:
        self.dialect = dialect
        self.create_delay = create_delay
        self.delete_delay = delete_delay
        #: The messages held, by message identifier.
        self.messages: dict[int, SimulatedMessage] = {}

    def handle(self, method: str, path: str, content_type: str | None,
               body: bytes) -> Decision:
        """Decide what to answer to one request, taking the message identifier at once."""
        if path == MESSAGE_PATH and method == "POST":
            return self._create(content_type, body)
        if path.startswith(MESSAGE_PATH + "/") and "/" not in path[len(MESSAGE_PATH) + 1:] \
                and path != MESSAGE_PATH + "/":
            tail = path[len(MESSAGE_PATH) + 1:]
            if method == "DELETE":
                return self._delete(tail)
            if method == "PUT" and self.dialect is Dialect.CAPCAST:
                return self._replace(tail, content_type, body)
        return Decision(status=404, body="", outcome=Outcome.REFUSED, operation=None,
                        message_id=None)

    # -- operations -----------------------------------------------------------------------

    def _refuse(self, status: int, text: str, operation: Operation, message_id: int | None,
                document: object = None) -> Decision:
        return Decision(status=status, body=text, outcome=Outcome.REFUSED, operation=operation,
                        message_id=message_id, document=document)

    def _read(self, operation: Operation, content_type: str | None,
              body: bytes) -> tuple[object, Decision | None, Any]:
        """The JSON document and parsed message, or the 400 decision refusing it."""
        document: object = None
        try:
            document = parse_body(content_type, body)
            parsed = parse_message(document, dialect=self.dialect)
        except EcbeRequestError as exc:
            return document, self._refuse(400, exc.reason, operation, None, document), None
        return document, None, parsed

    def _create(self, content_type: str | None, body: bytes) -> Decision:
        document, refusal, parsed = self._read(Operation.CREATE, content_type, body)
        if refusal is not None:
            return refusal
        message: CbcMessage = parsed.message
        if message.message_id in self.messages:
            return self._refuse(409, "Could not allocate", Operation.CREATE,
                                message.message_id, document)
        now = _now()
        assert isinstance(document, dict)
        held = SimulatedMessage(cbe_name=parsed.cbe_name, message=message,
                                state=MessageState.CREATING, created=now, updated=now,
                                document=document)
        self.messages[message.message_id] = held

        def complete() -> None:
            if held.state is MessageState.CREATING:
                held.state = MessageState.ACTIVE

        return Decision(status=200, body="", outcome=Outcome.CREATED, operation=Operation.CREATE,
                        message_id=message.message_id, delay=self.create_delay,
                        complete=complete, document=document)

    def _delete(self, tail: str) -> Decision:
        message_id = parse_message_id(tail)
        if message_id is None:
            return self._refuse(400, "", Operation.DELETE, None)
        held = self.messages.get(message_id)
        if held is None:
            return self._refuse(404, "Unknown message ID", Operation.DELETE, message_id)
        if held.state is not MessageState.ACTIVE:
            return self._refuse(500, _ILLEGAL, Operation.DELETE, message_id)
        held.state = MessageState.DELETING

        def complete() -> None:
            if self.messages.get(message_id) is held:
                del self.messages[message_id]

        return Decision(status=200, body="", outcome=Outcome.DELETED, operation=Operation.DELETE,
                        message_id=message_id, delay=self.delete_delay, complete=complete)

    def _replace(self, tail: str, content_type: str | None, body: bytes) -> Decision:
        if not _PUT_ID_RE.fullmatch(tail) or int(tail) > 0xFFFF:
            return self._refuse(400, "message id in the path must be a decimal number "
                                     "0..65535", Operation.REPLACE, None)
        path_id = int(tail)
        document, refusal, parsed = self._read(Operation.REPLACE, content_type, body)
        if refusal is not None:
            return refusal
        message: CbcMessage = parsed.message
        if message.message_id != path_id:
            return self._refuse(400, f"message_id in the body ({message.message_id}) differs "
                                     f"from the one in the path ({path_id})",
                                Operation.REPLACE, path_id, document)
        held = self.messages.get(path_id)
        if held is None:
            return self._refuse(404, "Unknown message ID", Operation.REPLACE, path_id, document)
        if held.state is not MessageState.ACTIVE:
            return self._refuse(500, _ILLEGAL, Operation.REPLACE, path_id, document)
        if held.message == message and held.cbe_name == parsed.cbe_name:
            return Decision(status=200, body="", outcome=Outcome.UNCHANGED,
                            operation=Operation.REPLACE, message_id=path_id, document=document)
        if held.message.serial_number == message.serial_number:
            return self._refuse(409, "Serial number unchanged", Operation.REPLACE, path_id,
                                document)
        assert isinstance(document, dict)
        held.state = MessageState.REPLACING
        held.message, held.cbe_name, held.document = message, parsed.cbe_name, document
        held.updated = _now()

        def complete() -> None:
            if held.state is MessageState.REPLACING:
                held.state = MessageState.ACTIVE

        return Decision(status=200, body="", outcome=Outcome.REPLACED,
                        operation=Operation.REPLACE, message_id=path_id,
                        delay=self.create_delay, complete=complete, document=document)


def _operation_of(method: str, path: str) -> Operation | None:
    if path == MESSAGE_PATH and method == "POST":
        return Operation.CREATE
    if path.startswith(MESSAGE_PATH + "/"):
        return {"DELETE": Operation.DELETE, "PUT": Operation.REPLACE}.get(method)
    return None


class CbcSimulator:
    """The simulated CBC on aiohttp.web.

    Args:
        dialect: ``osmo-cbc`` (default) or ``capcast``.
        create_delay: Seconds before a create or replace is answered (osmo-cbc: ~15).
        delete_delay: Seconds before a delete is answered (default: ``create_delay``).
        error_rate: Fraction (0..1) of message requests that get a random fault:
            half a 500 ``Internal Server Error`` with nothing done, half the
            operation done and the connection closed without an answer.
        record_path: A file to append one JSON object per request to.
        seed: Seed of the random faults.

    """

    def __init__(self, *, dialect: Dialect = Dialect.OSMO_CBC, create_delay: float = 0.0,
                 delete_delay: float | None = None, error_rate: float = 0.0,
                 record_path: str | Path | None = None, seed: int | None = None) -> None:
        if create_delay < 0 or (delete_delay is not None and delete_delay < 0):
            raise ValueError("delays must not be negative")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, not {error_rate}")
        self.model = CbcModel(dialect=dialect, create_delay=create_delay,
                              delete_delay=create_delay if delete_delay is None else delete_delay)
        self.error_rate = error_rate
        self._random = random.Random(seed)
        self.record_path = Path(record_path) if record_path is not None else None
        #: Every request received, in order.
        self.records: list[Received] = []
        self._faults: list[Fault] = []
        self._record_file: IO[str] | None = None
        self._runner: web.AppRunner | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self.host = ""
        self.port = 0

    @property
    def dialect(self) -> Dialect:
        """The dialect spoken."""
        return self.model.dialect

    @property
    def messages(self) -> dict[int, SimulatedMessage]:
        """The messages held, by message identifier."""
        return self.model.messages

    @property
    def base_url(self) -> str:
        """``http://host:port`` once started."""
        return f"http://{self.host}:{self.port}"

    def inject(self, fault: Fault) -> None:
        """Apply ``fault`` to the next request of its operation (once)."""
        self._faults.append(fault)

    def received(self, *, operation: Operation | None = None, outcome: Outcome | None = None,
                 message_id: int | None = None) -> list[Received]:
        """The records matching every given criterion."""
        return [r for r in self.records
                if (operation is None or r.operation is operation)
                and (outcome is None or r.outcome is outcome)
                and (message_id is None or r.message_id == message_id)]

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0: any free port; see :attr:`port`)."""
        if self.record_path is not None:
            self._record_file = self.record_path.open("a", encoding="utf-8")
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        address = self._runner.addresses[0]
        self.host, self.port = str(address[0]), int(address[1])
        logger.info("CBC simulator (%s) listening on %s", self.dialect.value, self.base_url,
                    extra={"action": "cbc_sim_start", "dialect": self.dialect.value,
                           "url": self.base_url})

    async def stop(self) -> None:
        """Stop listening, cancel pending state changes and close the record file."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._record_file is not None:
            self._record_file.close()
            self._record_file = None

    async def __aenter__(self) -> CbcSimulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    # -- requests -------------------------------------------------------------------------

    def _take_fault(self, operation: Operation | None) -> tuple[Fault | None, str | None]:
        if operation is None:
            return None, None
        for index, fault in enumerate(self._faults):
            if fault.operation is None or fault.operation is operation:
                del self._faults[index]
                return fault, fault.kind.value
        if self.error_rate and self._random.random() < self.error_rate:
            kind = FaultKind.STATUS if self._random.random() < 0.5 else FaultKind.DROP
            return Fault(kind=kind), f"random-{kind.value}"
        return None, None

    def _record(self, request: web.Request, body: bytes, decision: Decision,
                fault: str | None) -> Received:
        entry = Received(seq=len(self.records) + 1, time=_now(), method=request.method,
                         path=request.path, content_type=request.headers.get("Content-Type"),
                         body=body.decode("utf-8", "replace"), document=decision.document,
                         operation=decision.operation, message_id=decision.message_id,
                         status=decision.status, response=decision.body,
                         outcome=decision.outcome, fault=fault)
        self.records.append(entry)
        if self._record_file is not None:
            self._record_file.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
            self._record_file.flush()
        logger.info("%s %s -> %d %s", request.method, request.path, decision.status,
                    decision.outcome.value,
                    extra={"action": "cbc_sim_request", "method": request.method,
                           "path": request.path, "status": decision.status,
                           "outcome": decision.outcome.value, "message_id": decision.message_id,
                           "fault": fault})
        return entry

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        operation = _operation_of(request.method, request.path)
        fault, fault_name = self._take_fault(operation)
        if fault is not None and fault.kind is FaultKind.STATUS:
            decision = Decision(status=fault.status, body=fault.body, outcome=Outcome.REFUSED,
                                operation=operation, message_id=None)
        else:
            decision = self.model.handle(request.method, request.path,
                                         request.headers.get("Content-Type"), body)
        self._record(request, body, decision, fault_name)
        delay = decision.delay
        if decision.complete is not None:
            # The state change runs on its own timer, like osmo-cbc's FSM timers, so it
            # happens even when the client gives up and the connection closes.
            self._schedule(delay, decision.complete)
        if fault is not None and fault.kind is FaultKind.DELAY:
            delay += fault.delay
        if delay > 0:
            await asyncio.sleep(delay)
        if decision.complete is not None:
            decision.complete()
        if fault is not None and fault.kind is FaultKind.DROP:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more to send on an aborted connection
        response = web.Response(status=decision.status)
        if decision.body:
            response.text = decision.body
        return response

    def _schedule(self, delay: float, complete: Callable[[], None]) -> None:
        def fire() -> None:
            self._timers.discard(timer)
            complete()

        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(timer)

