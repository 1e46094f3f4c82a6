"""SMPP ``command_status`` codes as a registry of exception classes.

Every status an SMSC can answer with (SMPP 3.4 §5.1.3 and the SMPP 5.0
additions 0x100–0x112, as listed by smpplib, node-smpp and oserl) has a class
below :class:`CommandStatusError`; :func:`error_for_status` returns an
instance of the right one, and :class:`UnknownCommandStatus` for a code that
is not in the table (vendor codes 0x400–0x4FF, or anything else), so callers
can always ``except Throttled`` or look at ``command_status``.

``retryable`` marks statuses worth trying again later on the same link
(flow control and transient failures); everything else is final for that
message.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from gateways.errors import SmppError

__all__ = [
    "STATUS_CLASSES",
    "CommandStatusError",
    "FlowControlError",
    "MessageQueueFull",
    "Throttled",
    "UnknownCommandStatus",
    "error_for_status",
    "is_retryable",
    "status_description",
    "status_name",
]


class CommandStatusError(SmppError):
    """An SMPP response carried a non-zero ``command_status``.

    ``command`` names the request that failed (``"submit_sm"``) and ``sequence``
    its sequence number, when known.
    """

    #: The numeric command_status of this class (-1 on the abstract bases).
    code: ClassVar[int] = -1
    #: The SMPP name, e.g. ``"ESME_RTHROTTLED"``.
    name: ClassVar[str] = ""
    #: The description from the SMPP specification.
    description: ClassVar[str] = ""
    #: True when the same request may succeed if sent again later.
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, command_status: int | None = None,
                 command: str | None = None, sequence: int | None = None,
                 operator: str | None = None, link: str | None = None) -> None:
        status = self.code if command_status is None else command_status
        self.command = command
        self.sequence = sequence
        if message is None:
            what = f"{command} failed: " if command else ""
            message = f"{what}{status_name(status)} (0x{status:08x}) {status_description(status)}"
        super().__init__(message, command_status=status, operator=operator, link=link)


class UnknownCommandStatus(CommandStatusError):
    """A command_status that is not in the SMPP 3.4/5.0 tables (often a vendor code)."""

    description = "unknown command_status"


#: command_status -> class; filled by :func:`_register` below.
STATUS_CLASSES: dict[int, type[CommandStatusError]] = {}

_E = TypeVar("_E", bound=type[CommandStatusError])


def _register(cls: _E) -> _E:
    if cls.code in STATUS_CLASSES:  # pragma: no cover - a mistake in this table
        raise RuntimeError(f"duplicate command_status 0x{cls.code:x}")
    STATUS_CLASSES[cls.code] = cls
    return cls


def error_for_status(command_status: int, *, command: str | None = None,
                     sequence: int | None = None, operator: str | None = None,
                     link: str | None = None) -> CommandStatusError:
    """The exception for ``command_status`` (an :class:`UnknownCommandStatus` when unlisted)."""
    cls = STATUS_CLASSES.get(command_status, UnknownCommandStatus)
    return cls(command_status=command_status, command=command, sequence=sequence,
               operator=operator, link=link)


def status_name(command_status: int) -> str:
    """``"ESME_RTHROTTLED"`` for 0x58; ``"ESME_ROK"`` for 0; ``"0x000004d2"`` when unknown."""
    if command_status == 0:
        return "ESME_ROK"
    cls = STATUS_CLASSES.get(command_status)
    return cls.name if cls is not None else f"0x{command_status:08x}"


def status_description(command_status: int) -> str:
    """The specification's description of ``command_status``."""
    if command_status == 0:
        return "No error"
    cls = STATUS_CLASSES.get(command_status)
    return cls.description if cls is not None else "unknown command_status"


def is_retryable(command_status: int) -> bool:
    """True for statuses after which the same request may be sent again (flow control)."""
    cls = STATUS_CLASSES.get(command_status)
    return cls is not None and cls.retryable


class FlowControlError(CommandStatusError):
    """The SMSC refused the request for now (throttling, full queue): back off and retry.

    SMPP does not specify flow control; SMSCs answer ESME_RTHROTTLED or
    ESME_RMSGQFUL and both are handled alike (vumi PR #636, gosmpp#73).
    """

    retryable = True


# --- SMPP 3.4 §5.1.3 -------------------------------------------------------------------


@_register
class InvalidMessageLength(CommandStatusError):
    """ESME_RINVMSGLEN."""

    code, name, description = 0x01, "ESME_RINVMSGLEN", "Message length is invalid"


@_register
class InvalidCommandLength(CommandStatusError):
    """ESME_RINVCMDLEN."""

    code, name, description = 0x02, "ESME_RINVCMDLEN", "Command length is invalid"


@_register
class InvalidCommandId(CommandStatusError):
    """ESME_RINVCMDID."""

    code, name, description = 0x03, "ESME_RINVCMDID", "Invalid command ID"


@_register
class InvalidBindStatus(CommandStatusError):
    """ESME_RINVBNDSTS."""

    code, name, description = 0x04, "ESME_RINVBNDSTS", "Incorrect bind status for given command"


@_register
class AlreadyBound(CommandStatusError):
    """ESME_RALYBND."""

    code, name, description = 0x05, "ESME_RALYBND", "ESME already in bound state"


@_register
class InvalidPriorityFlag(CommandStatusError):
    """ESME_RINVPRTFLG."""

    code, name, description = 0x06, "ESME_RINVPRTFLG", "Invalid priority flag"


@_register
class InvalidRegisteredDelivery(CommandStatusError):
    """ESME_RINVREGDLVFLG."""

    code, name, description = 0x07, "ESME_RINVREGDLVFLG", "Invalid registered delivery flag"


@_register
class SmscSystemError(CommandStatusError):
    """ESME_RSYSERR: transient on most SMSCs."""

    code, name, description = 0x08, "ESME_RSYSERR", "System error"
    retryable = True


@_register
class InvalidSourceAddress(CommandStatusError):
    """ESME_RINVSRCADR."""

    code, name, description = 0x0A, "ESME_RINVSRCADR", "Invalid source address"


@_register
class InvalidDestinationAddress(CommandStatusError):
    """ESME_RINVDSTADR."""

    code, name, description = 0x0B, "ESME_RINVDSTADR", "Invalid destination address"


@_register
class InvalidMessageId(CommandStatusError):
    """ESME_RINVMSGID."""

    code, name, description = 0x0C, "ESME_RINVMSGID", "Message ID is invalid"


@_register
class BindFailed(CommandStatusError):
    """ESME_RBINDFAIL."""

    code, name, description = 0x0D, "ESME_RBINDFAIL", "Bind failed"


@_register
class InvalidPassword(CommandStatusError):
    """ESME_RINVPASWD."""

    code, name, description = 0x0E, "ESME_RINVPASWD", "Invalid password"


@_register
class InvalidSystemId(CommandStatusError):
    """ESME_RINVSYSID."""

    code, name, description = 0x0F, "ESME_RINVSYSID", "Invalid system ID"


@_register
class CancelFailed(CommandStatusError):
    """ESME_RCANCELFAIL."""

    code, name, description = 0x11, "ESME_RCANCELFAIL", "cancel_sm failed"


@_register
class ReplaceFailed(CommandStatusError):
    """ESME_RREPLACEFAIL."""

    code, name, description = 0x13, "ESME_RREPLACEFAIL", "replace_sm failed"


@_register
class MessageQueueFull(FlowControlError):
    """ESME_RMSGQFUL: treated like throttling."""

    code, name, description = 0x14, "ESME_RMSGQFUL", "Message queue full"


@_register
class InvalidServiceType(CommandStatusError):
    """ESME_RINVSERTYP."""

    code, name, description = 0x15, "ESME_RINVSERTYP", "Invalid service type"


@_register
class InvalidNumberOfDestinations(CommandStatusError):
    """ESME_RINVNUMDESTS."""

    code, name, description = 0x33, "ESME_RINVNUMDESTS", "Invalid number of destinations"


@_register
class InvalidDistributionListName(CommandStatusError):
    """ESME_RINVDLNAME."""

    code, name, description = 0x34, "ESME_RINVDLNAME", "Invalid distribution list name"


@_register
class InvalidDestinationFlag(CommandStatusError):
    """ESME_RINVDESTFLAG."""

    code, name, description = 0x40, "ESME_RINVDESTFLAG", "Destination flag is invalid"


@_register
class InvalidSubmitWithReplace(CommandStatusError):
    """ESME_RINVSUBREP."""

    code, name, description = 0x42, "ESME_RINVSUBREP", "Invalid submit with replace request"


@_register
class InvalidEsmClass(CommandStatusError):
    """ESME_RINVESMCLASS."""

    code, name, description = 0x43, "ESME_RINVESMCLASS", "Invalid esm_class field data"


@_register
class CannotSubmitToDistributionList(CommandStatusError):
    """ESME_RCNTSUBDL."""

    code, name, description = 0x44, "ESME_RCNTSUBDL", "Cannot submit to distribution list"


@_register
class SubmitFailed(CommandStatusError):
    """ESME_RSUBMITFAIL."""

    code, name, description = 0x45, "ESME_RSUBMITFAIL", "submit_sm or submit_multi failed"


@_register
class InvalidSourceTon(CommandStatusError):
    """ESME_RINVSRCTON."""

    code, name, description = 0x48, "ESME_RINVSRCTON", "Invalid source address TON"


@_register
class InvalidSourceNpi(CommandStatusError):
    """ESME_RINVSRCNPI."""

    code, name, description = 0x49, "ESME_RINVSRCNPI", "Invalid source address NPI"


@_register
class InvalidDestinationTon(CommandStatusError):
    """ESME_RINVDSTTON."""

    code, name, description = 0x50, "ESME_RINVDSTTON", "Invalid destination address TON"


@_register
class InvalidDestinationNpi(CommandStatusError):
    """ESME_RINVDSTNPI."""

    code, name, description = 0x51, "ESME_RINVDSTNPI", "Invalid destination address NPI"


@_register
class InvalidSystemType(CommandStatusError):
    """ESME_RINVSYSTYP."""

    code, name, description = 0x53, "ESME_RINVSYSTYP", "Invalid system_type field"


@_register
class InvalidReplaceFlag(CommandStatusError):
    """ESME_RINVREPFLAG."""

    code, name, description = 0x54, "ESME_RINVREPFLAG", "Invalid replace_if_present flag"


@_register
class InvalidNumberOfMessages(CommandStatusError):
    """ESME_RINVNUMMSGS."""

    code, name, description = 0x55, "ESME_RINVNUMMSGS", "Invalid number of messages"


@_register
class Throttled(FlowControlError):
    """ESME_RTHROTTLED: the ESME exceeded the allowed message rate."""

    code, name, description = 0x58, "ESME_RTHROTTLED", "Throttling error"


@_register
class InvalidScheduledDeliveryTime(CommandStatusError):
    """ESME_RINVSCHED."""

    code, name, description = 0x61, "ESME_RINVSCHED", "Invalid scheduled delivery time"


@_register
class InvalidExpiry(CommandStatusError):
    """ESME_RINVEXPIRY."""

    code, name, description = 0x62, "ESME_RINVEXPIRY", "Invalid message validity period"


@_register
class InvalidDefaultMessageId(CommandStatusError):
    """ESME_RINVDFTMSGID."""

    code, name, description = 0x63, "ESME_RINVDFTMSGID", "Predefined message invalid or not found"


@_register
class TemporaryAppError(CommandStatusError):
    """ESME_RX_T_APPN."""

    code, name, description = 0x64, "ESME_RX_T_APPN", "ESME receiver temporary app error code"
    retryable = True


@_register
class PermanentAppError(CommandStatusError):
    """ESME_RX_P_APPN."""

    code, name, description = 0x65, "ESME_RX_P_APPN", "ESME receiver permanent app error code"


@_register
class RejectMessageAppError(CommandStatusError):
    """ESME_RX_R_APPN."""

    code, name, description = 0x66, "ESME_RX_R_APPN", "ESME receiver reject message error code"


@_register
class QueryFailed(CommandStatusError):
    """ESME_RQUERYFAIL."""

    code, name, description = 0x67, "ESME_RQUERYFAIL", "query_sm request failed"


@_register
class InvalidTlvStream(CommandStatusError):
    """ESME_RINVOPTPARSTREAM (ESME_RINVTLVSTREAM in SMPP 5.0)."""

    code, name, description = 0xC0, "ESME_RINVOPTPARSTREAM", "Error in the optional part of the PDU"


@_register
class TlvNotAllowed(CommandStatusError):
    """ESME_ROPTPARNOTALLWD (ESME_RTLVNOTALLWD in SMPP 5.0)."""

    code, name, description = 0xC1, "ESME_ROPTPARNOTALLWD", "Optional parameter not allowed"


@_register
class InvalidTlvLength(CommandStatusError):
    """ESME_RINVPARLEN (ESME_RINVTLVLEN in SMPP 5.0)."""

    code, name, description = 0xC2, "ESME_RINVPARLEN", "Invalid parameter length"


@_register
class MissingTlv(CommandStatusError):
    """ESME_RMISSINGOPTPARAM (ESME_RMISSINGTLV in SMPP 5.0)."""

    code, name, description = 0xC3, "ESME_RMISSINGOPTPARAM", "Expected optional parameter missing"


@_register
class InvalidTlvValue(CommandStatusError):
    """ESME_RINVOPTPARAMVAL (ESME_RINVTLVVAL in SMPP 5.0)."""

    code, name, description = 0xC4, "ESME_RINVOPTPARAMVAL", "Invalid optional parameter value"


@_register
class DeliveryFailure(CommandStatusError):
    """ESME_RDELIVERYFAILURE."""

    code, name, description = 0xFE, "ESME_RDELIVERYFAILURE", "Delivery failure (data_sm_resp)"


@_register
class UnknownError(CommandStatusError):
    """ESME_RUNKNOWNERR."""

    code, name, description = 0xFF, "ESME_RUNKNOWNERR", "Unknown error"


# --- SMPP 5.0 §4.7.6 -------------------------------------------------------------------


@_register
class ServiceTypeUnauthorised(CommandStatusError):
    """ESME_RSERTYPUNAUTH."""

    code, name, description = 0x100, "ESME_RSERTYPUNAUTH", "Not authorised to use service_type"


@_register
class Prohibited(CommandStatusError):
    """ESME_RPROHIBITED."""

    code, name, description = 0x101, "ESME_RPROHIBITED", "Prohibited from using this operation"


@_register
class ServiceTypeUnavailable(CommandStatusError):
    """ESME_RSERTYPUNAVAIL."""

    code, name, description = 0x102, "ESME_RSERTYPUNAVAIL", "Specified service_type is unavailable"
    retryable = True


@_register
class ServiceTypeDenied(CommandStatusError):
    """ESME_RSERTYPDENIED."""

    code, name, description = 0x103, "ESME_RSERTYPDENIED", "Specified service_type is denied"


@_register
class InvalidDataCoding(CommandStatusError):
    """ESME_RINVDCS."""

    code, name, description = 0x104, "ESME_RINVDCS", "Invalid data coding scheme"


@_register
class InvalidSourceSubunit(CommandStatusError):
    """ESME_RINVSRCADDRSUBUNIT."""

    code, name, description = 0x105, "ESME_RINVSRCADDRSUBUNIT", "Source address subunit invalid"


@_register
class InvalidDestinationSubunit(CommandStatusError):
    """ESME_RINVDSTADDRSUBUNIT."""

    code, name, description = 0x106, "ESME_RINVDSTADDRSUBUNIT", "Destination subunit invalid"


@_register
class InvalidBroadcastFrequencyInterval(CommandStatusError):
    """ESME_RINVBCASTFREQINT."""

    code, name, description = 0x107, "ESME_RINVBCASTFREQINT", "Broadcast frequency interval invalid"


@_register
class InvalidBroadcastAliasName(CommandStatusError):
    """ESME_RINVBCASTALIAS_NAME."""

    code, name, description = 0x108, "ESME_RINVBCASTALIAS_NAME", "Broadcast alias name invalid"


@_register
class InvalidBroadcastAreaFormat(CommandStatusError):
    """ESME_RINVBCASTAREAFMT."""

    code, name, description = 0x109, "ESME_RINVBCASTAREAFMT", "Broadcast area format invalid"


@_register
class InvalidNumberOfBroadcastAreas(CommandStatusError):
    """ESME_RINVNUMBCAST_AREAS."""

    code, name, description = 0x10A, "ESME_RINVNUMBCAST_AREAS", "Number of broadcast areas invalid"


@_register
class InvalidBroadcastContentType(CommandStatusError):
    """ESME_RINVBCASTCNTTYPE."""

    code, name, description = 0x10B, "ESME_RINVBCASTCNTTYPE", "Broadcast content type invalid"


@_register
class InvalidBroadcastMessageClass(CommandStatusError):
    """ESME_RINVBCASTMSGCLASS."""

    code, name, description = 0x10C, "ESME_RINVBCASTMSGCLASS", "Broadcast message class invalid"


@_register
class BroadcastFailed(CommandStatusError):
    """ESME_RBCASTFAIL."""

    code, name, description = 0x10D, "ESME_RBCASTFAIL", "broadcast_sm operation failed"


@_register
class BroadcastQueryFailed(CommandStatusError):
    """ESME_RBCASTQUERYFAIL."""

    code, name, description = 0x10E, "ESME_RBCASTQUERYFAIL", "query_broadcast_sm operation failed"


@_register
class BroadcastCancelFailed(CommandStatusError):
    """ESME_RBCASTCANCELFAIL."""

    code, name, description = 0x10F, "ESME_RBCASTCANCELFAIL", "cancel_broadcast_sm operation failed"


@_register
class InvalidBroadcastRepetitions(CommandStatusError):
    """ESME_RINVBCAST_REP."""

    code, name, description = 0x110, "ESME_RINVBCAST_REP", "Number of repeated broadcasts invalid"


@_register
class InvalidBroadcastServiceGroup(CommandStatusError):
    """ESME_RINVBCASTSRVGRP."""

    code, name, description = 0x111, "ESME_RINVBCASTSRVGRP", "Broadcast service group invalid"


@_register
class InvalidBroadcastChannelIndicator(CommandStatusError):
    """ESME_RINVBCASTCHANIND."""

    code, name, description = 0x112, "ESME_RINVBCASTCHANIND", "Broadcast channel indicator invalid"
