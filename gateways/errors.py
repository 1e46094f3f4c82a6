"""The exception hierarchy of capcast's gateways package.

Every error a gateway raises on purpose derives from :class:`GatewayError`,
itself a :class:`cap.errors.CapcastError`. Errors carry structured fields (the
operator, the link, the SMPP ``command_status``) so that the dispatcher can
log and decide without parsing messages.

The split between :class:`LocalProtocolError` and :class:`RemoteProtocolError`
follows h11: *local* means our own code tried to do something the protocol
forbids (a bug or misuse on this side); *remote* means the peer sent something
invalid or unexpected.
"""

from __future__ import annotations

from cap.errors import CapcastError

__all__ = [
    "CbcError",
    "ChannelRefused",
    "CompositionError",
    "ConnectionLost",
    "Expired",
    "GatewayError",
    "GatewayTimeout",
    "LocalProtocolError",
    "RemoteProtocolError",
    "SmppError",
    "TextEncodingError",
    "TextTooLong",
]


class GatewayError(CapcastError):
    """Base of every error raised on purpose by a gateway (SMPP, CBC, text, composition).

    ``operator`` and ``link`` name the operator and link concerned when known.
    """

    def __init__(self, message: str, *, operator: str | None = None,
                 link: str | None = None) -> None:
        self.message = message
        self.operator = operator
        self.link = link
        super().__init__(message)


class LocalProtocolError(GatewayError):
    """Our side tried to do something the protocol does not allow in the current state."""


class RemoteProtocolError(GatewayError):
    """The peer sent something invalid, malformed or unexpected for the current state."""


class ConnectionLost(GatewayError):
    """The link to the peer was closed or broke."""


class GatewayTimeout(GatewayError):
    """The peer did not answer in time.

    The outcome of the request is unknown: callers must not assume it failed.
    """


class Expired(GatewayError):
    """The message's expiry passed; it was not (or no longer) submitted."""


class SmppError(GatewayError):
    """An SMPP peer answered with a non-zero ``command_status``.

    The SMPP package may register subclasses per status code; ``command_status``
    always holds the numeric value, also for codes it does not know.
    """

    def __init__(self, message: str, *, command_status: int, operator: str | None = None,
                 link: str | None = None) -> None:
        self.command_status = command_status
        super().__init__(message, operator=operator, link=link)


class CbcError(GatewayError):
    """A cell broadcast centre refused a request or answered with an error.

    ``status`` is the HTTP status when there was one; ``body`` the response body.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None,
                 operator: str | None = None, link: str | None = None) -> None:
        self.status = status
        self.body = body
        super().__init__(message, operator=operator, link=link)


class TextEncodingError(GatewayError, ValueError):
    """A text cannot be encoded in the requested alphabet.

    ``char`` is the first character that cannot be encoded and ``index`` its
    position in the text. Also a :class:`ValueError`, so callers of the codec
    functions can catch the standard exception.
    """

    def __init__(self, message: str, *, char: str, index: int) -> None:
        self.char = char
        self.index = index
        super().__init__(message)


class TextTooLong(GatewayError):
    """A text needs more SMS segments or cell-broadcast pages than allowed.

    ``needed`` is the number of segments/pages the text would need (at least
    ``limit + 1``; the count may stop early), ``limit`` the maximum allowed and
    ``unit`` either ``"segments"`` or ``"pages"``.
    """

    def __init__(self, message: str, *, needed: int, limit: int, unit: str) -> None:
        self.needed = needed
        self.limit = limit
        self.unit = unit
        super().__init__(message)


class CompositionError(GatewayError):
    """An alert cannot be composed into channel texts (e.g. no usable info block)."""


class ChannelRefused(CompositionError):
    """A message identifier was refused for an alert.

    Raised when an override would put an Exercise or Test alert on a public
    (non-test) cell-broadcast channel, or names an identifier outside the range.
    """

    def __init__(self, message: str, *, message_identifier: int, status: str) -> None:
        self.message_identifier = message_identifier
        self.status = status
        super().__init__(message)
