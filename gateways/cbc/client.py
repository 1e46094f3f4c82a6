"""An asyncio client for a CBC's ECBE REST interface (aiohttp).

A thin adapter: :mod:`gateways.cbc.ecbe` builds every request and interprets
every answer; this module sends them, times them out and retries them so that
a retry can never put a second message on the air:

* The default timeout (60 s) is well above the ~15 s osmo-cbc takes to answer
  a create or a delete (its message state machine waits for its peers).
* A request whose answer was lost (timeout, dropped connection) is retried
  knowing that its outcome is unknown: a 409 to the retried create means the
  first create landed (the CBC keys messages by message identifier, so it
  cannot make a second one), a 404 to a retried delete that the first delete
  did. Either is reported as :attr:`Confirmation.EARLIER_ATTEMPT`.
* Operations on one message identifier are serialized: a delete waits for a
  create of the same identifier still in flight.
* A request that never reached the CBC (connection refused, connect timeout)
  is simply retried, then reported with the endpoint named.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp

from gateways.cbc.ecbe import (
    PREFIX,
    CbcIllegalState,
    CbcMessage,
    CbcTimeout,
    CbcUnknownMessage,
    CbcUnreachable,
    Confirmation,
    Dialect,
    EcbeOptions,
    HttpRequest,
    Operation,
    ReplaceIncomplete,
    create_request,
    delete_request,
    interpret_response,
    replace_request,
)
from gateways.errors import CbcError

__all__ = ["DEFAULT_TIMEOUT", "CbcClient", "CbcResult"]

logger = logging.getLogger(__name__)

#: Seconds to wait for an answer: osmo-cbc answers creates and deletes after ~15 s.
DEFAULT_TIMEOUT = 60.0


class _NotResent(Exception):
    """aiohttp wanted to send a request again after its connection closed; we did not let it."""


class _SendOnce:
    """A per-request aiohttp client middleware that lets a request go out once only.

    aiohttp silently resends an idempotent request (PUT, DELETE) when the
    connection closes before the answer. A resent DELETE whose first copy
    landed is answered 404, which would read as "no such message": the client
    must know the first copy may have landed, so it does its own retrying.
    """

    def __init__(self) -> None:
        self.sent = False

    async def __call__(self, request: aiohttp.ClientRequest,
                       handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        if self.sent:
            raise _NotResent("the connection closed before the answer")
        self.sent = True
        return await handler(request)


# Errors raised before the request could be sent: nothing happened on the CBC.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL)
# Errors after the request may have been sent: the outcome is unknown.
_UNKNOWN = (TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
            aiohttp.ClientPayloadError, _NotResent)


@dataclass(frozen=True, slots=True, kw_only=True)
class CbcResult:
    """The outcome of one operation on the CBC."""

    #: What was done.
    operation: Operation
    #: The message identifier.
    message_id: int
    #: The serial number now on the air (create, replace), None for a delete.
    serial_number: int | None
    #: How the CBC confirmed it.
    confirmation: Confirmation
    #: HTTP requests sent, retries and both steps of an osmo-cbc replace included.
    attempts: int
    #: True when a request had to be retried (lost answer, failed connection, 500).
    retried: bool
    #: Seconds from the first request to the last answer.
    elapsed: float
    #: The CBC's ECBE endpoint.
    endpoint: str
    #: For a replace: whether an active message was replaced (False: none was
    #: active, the new version was created). None for other operations.
    replaced_active: bool | None = None

@dataclass(slots=True)
class _Tally:
    """Requests sent for one operation (all its steps), for the result."""

    requests: int = 0
    retried: bool = False
    started: float = field(default_factory=time.monotonic)


class CbcClient:
    """ECBE client for one operator's cell broadcast centre.

    Args:
        base_url: Where the CBC listens, e.g. ``http://10.0.0.5:12345``; the
            requests go to ``base_url + /api/ecbe/v1/...``.
        options: Dialect, CBE name and serial number form for this operator.
        session: An aiohttp session to use (the caller closes it); by default
            the client opens its own and :meth:`close` closes it. Its client
            middlewares are not applied: each request carries the client's own.
        timeout: Seconds to wait for each answer (default 60).
        connect_timeout: Seconds to wait for a connection.
        retries: How many times a request is retried after a lost answer, a
            failed connection or a 500 (so ``retries + 1`` attempts at most).
        retry_delay: Seconds before the first retry; doubled for each further one.
        operator: The operator's name, for errors and logs.
        headers: Extra headers for every request (e.g. a reverse proxy's
            ``Authorization``; osmo-cbc itself has no authentication).

    """

    def __init__(self, base_url: str, *, options: EcbeOptions,
                 session: aiohttp.ClientSession | None = None,
                 timeout: float = DEFAULT_TIMEOUT, connect_timeout: float = 10.0,
                 retries: int = 2, retry_delay: float = 1.0, operator: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if retries < 0 or retry_delay < 0:
            raise ValueError("retries and retry_delay must not be negative")
        self._base = base_url.rstrip("/")
        self.options = options
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._retries = retries
        self._retry_delay = retry_delay
        self.operator = operator
        self._headers = dict(headers or {})
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = \
            weakref.WeakValueDictionary()

    @property
    def endpoint(self) -> str:
        """The ECBE base URL, as named in errors."""
        return self._base + PREFIX

    async def __aenter__(self) -> CbcClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if the client opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _lock(self, message_id: int) -> asyncio.Lock:
        lock = self._locks.get(message_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[message_id] = lock
        return lock

    # -- operations -----------------------------------------------------------------------

    async def create(self, message: CbcMessage) -> CbcResult:
        """Create ``message`` on the CBC (POST).

        Raises:
            ScopeNotSupported: a cell list for a CBC of the osmo-cbc dialect
                (nothing is sent).
            CbcMessageActive: the identifier is already active (another alert
                on the same channel).
            CbcRequestRefused: the CBC refused the body (400, with its reason).
            CbcTimeout: no answer after every retry; the outcome is unknown.
            CbcUnreachable: no connection could be made.
            CbcError: any other refusal.

        """
        request = create_request(message, self.options)
        tally = _Tally()
        async with self._lock(message.message_id):
            confirmation = await self._perform(request, tally)
        return self._result(Operation.CREATE, message.message_id, message.serial_number,
                            confirmation, tally)

    async def delete(self, message_id: int) -> CbcResult:
        """Delete the message with this identifier (DELETE).

        Raises:
            CbcUnknownMessage: no such message is active.
            CbcTimeout, CbcUnreachable, CbcError: as for :meth:`create`.

        """
        request = delete_request(message_id)
        tally = _Tally()
        async with self._lock(message_id):
            confirmation = await self._perform(request, tally)
        return self._result(Operation.DELETE, message_id, None, confirmation, tally)

    async def replace(self, message: CbcMessage) -> CbcResult:
        """Put a new version of a message (same identifier, new serial number) on the air.

        capcast dialect: ``PUT /message/:id``. osmo-cbc has no replace, so it is a
        DELETE followed by a create; the channel is silent in between (about
        30 s with a real osmo-cbc, whose answers take ~15 s each). In both
        dialects, when no message with the identifier is active, the new
        version is created (``replaced_active`` False), so retrying a replace
        is safe.

        Raises:
            ReplaceIncomplete: osmo-cbc dialect: the old message was deleted but
                the create failed; the channel is silent until retried.
            CbcError: as for :meth:`create`.

        """
        create = create_request(message, self.options)  # refuses a bad scope before anything
        tally = _Tally()
        async with self._lock(message.message_id):
            if self.options.dialect is Dialect.CAPCAST:
                try:
                    confirmation = await self._perform(replace_request(message, self.options),
                                                       tally)
                    replaced = True
                except CbcUnknownMessage:
                    confirmation = await self._perform(create, tally)
                    replaced = False
            else:
                try:
                    await self._perform(delete_request(message.message_id), tally)
                    replaced = True
                except CbcUnknownMessage:
                    replaced = False
                try:
                    confirmation = await self._perform(create, tally)
                except CbcError as exc:
                    if not replaced:
                        raise
                    raise ReplaceIncomplete(
                        f"replace of message {message.message_id} on CBC {self.endpoint}: the "
                        f"old message was deleted but the new one was not created ({exc}); "
                        "the channel is silent until the replace is retried",
                        message_id=message.message_id, cause=exc, operator=self.operator,
                        link=self.endpoint) from exc
        return self._result(Operation.REPLACE, message.message_id, message.serial_number,
                            confirmation, tally, replaced_active=replaced)

    # -- the request loop -----------------------------------------------------------------

    def _result(self, operation: Operation, message_id: int, serial: int | None,
                confirmation: Confirmation, tally: _Tally, *,
                replaced_active: bool | None = None) -> CbcResult:
        result = CbcResult(operation=operation, message_id=message_id, serial_number=serial,
                           confirmation=confirmation, attempts=tally.requests,
                           retried=tally.retried, elapsed=time.monotonic() - tally.started,
                           endpoint=self.endpoint, replaced_active=replaced_active)
        logger.info("cbc %s of message %d: %s after %d request(s)", operation.value,
                    message_id, confirmation.value, tally.requests,
                    extra={"action": f"cbc_{operation.value}", "operator": self.operator,
                           "endpoint": self.endpoint, "message_id": message_id,
                           "serial_number": serial, "confirmation": confirmation.value,
                           "attempts": tally.requests, "elapsed": result.elapsed})
        return result

    async def _send(self, request: HttpRequest) -> tuple[int, bytes]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = dict(self._headers)
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        async with self._session.request(request.method, self._base + request.path,
                                         data=request.body, headers=headers,
                                         timeout=self._timeout, allow_redirects=False,
                                         middlewares=(_SendOnce(),)) as response:
            return response.status, await response.read()

    async def _perform(self, request: HttpRequest, tally: _Tally) -> Confirmation:
        """Send ``request`` until it is answered, retrying as the module docstring says."""
        unknown = False
        attempt = 0
        what = f"{request.operation.value} of message {request.message_id}"
        while True:
            attempt += 1
            tally.requests += 1
            tally.retried |= attempt > 1
            last = attempt > self._retries
            try:
                status, body = await self._send(request)
            except _NOT_SENT as exc:
                if last:
                    raise CbcUnreachable(
                        f"cannot connect to CBC {self.endpoint}{self._who()} for the {what}: "
                        f"{_describe(exc)}", message_id=request.message_id,
                        operator=self.operator, link=self.endpoint) from exc
                reason = _describe(exc)
            except _UNKNOWN as exc:
                # The request may have been processed: from now on a 409 (create) or
                # 404 (delete) means that an earlier attempt landed.
                unknown = True
                if last:
                    raise CbcTimeout(
                        f"CBC {self.endpoint}{self._who()} did not answer the {what} "
                        f"after {attempt} attempt(s) ({_describe(exc)}); the outcome is "
                        "unknown", message_id=request.message_id, operator=self.operator,
                        link=self.endpoint) from exc
                reason = f"outcome unknown: {_describe(exc)}"
            else:
                try:
                    confirmation = interpret_response(
                        request.operation, status, body, message_id=request.message_id,
                        after_unknown=unknown, endpoint=self.endpoint, operator=self.operator)
                except CbcIllegalState as exc:
                    if last:
                        raise
                    reason = str(exc)
                else:
                    if confirmation is Confirmation.EARLIER_ATTEMPT:
                        logger.warning(
                            "cbc %s: answered %d after a lost answer: the earlier attempt "
                            "took effect", what, status,
                            extra={"action": "cbc_earlier_attempt", "operator": self.operator,
                                   "endpoint": self.endpoint,
                                   "message_id": request.message_id, "status": status})
                    return confirmation
            delay = self._retry_delay * 2 ** (attempt - 1)
            logger.warning("cbc %s: retrying in %.1f s (%s)", what, delay, reason,
                           extra={"action": "cbc_retry", "operator": self.operator,
                                  "endpoint": self.endpoint, "message_id": request.message_id,
                                  "attempt": attempt, "unknown_outcome": unknown})
            await asyncio.sleep(delay)

    def _who(self) -> str:
        return f" (operator {self.operator})" if self.operator else ""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error.strerror or str(exc.os_error) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
