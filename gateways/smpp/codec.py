"""SMPP PDUs as frozen records, and their bytes (SMPP 3.4, plus the SMPP 5.0 broadcast PDUs).

This module is the only place that knows the wire format. It is sans-IO: every
function takes and returns bytes and records.

Who encodes what:

* The SMPP 3.4 PDUs that smpplib implements (binds, submit_sm, deliver_sm,
  query_sm, data_sm, alert_notification, enquire_link, unbind, generic_nack and
  their responses) are encoded by smpplib (``smpplib.smpp.make_pdu(...)
  .generate()``), fed by :class:`SequenceGenerator`, which we own. The cold ones
  (binds, query_sm, data_sm, alert_notification) are also decoded by smpplib
  (``smpplib.smpp.parse_pdu``).
* smpplib trusts its input: a C-string without its NUL, a short_message longer
  than the body or a truncated TLV yields garbage or an exception, and it drops
  unknown TLVs. So framing, field boundaries and TLVs are always checked here
  first (:func:`decode` raises only :class:`PduDecodeError`), smpplib is handed
  only the mandatory part it can parse, and TLVs are kept verbatim, in order,
  repeatable.
* SMPP 5.0 ``broadcast_sm`` / ``query_broadcast_sm`` / ``cancel_broadcast_sm``
  and their responses, which smpplib lacks, are ours.
* The hot path has its own encoders and decoders, byte-for-byte equal to
  smpplib's (checked by property tests): smpplib spends about 70 µs to build or
  parse one submit_sm, which alone would cap a link near 14,000 PDU/s.
  ``submit_sm`` is built once per text as a :class:`SubmitTemplate` (by
  smpplib) and only the sequence number and destination are patched in per
  recipient; submit_sm, deliver_sm and the responses are decoded here.

References: SMPP 3.4 §4 (PDU definitions), §5.3 (TLVs), Appendix B (delivery
receipts); SMPP 5.0 §4.4 (broadcast operations), §4.8.4 (broadcast TLVs);
``/work/shared/SPEC-NOTES.md`` section 4.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from enum import IntEnum
from typing import Any, ClassVar, Final, TypeVar

import smpplib.smpp

from gateways.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "HEADER",
    "MAX_PDU_SIZE",
    "RESPONSE_BIT",
    "AlertNotification",
    "Bind",
    "BindReceiver",
    "BindReceiverResp",
    "BindResp",
    "BindTransceiver",
    "BindTransceiverResp",
    "BindTransmitter",
    "BindTransmitterResp",
    "BroadcastArea",
    "BroadcastAreaFormat",
    "BroadcastContentType",
    "BroadcastFrequencyInterval",
    "BroadcastSm",
    "BroadcastSmResp",
    "CancelBroadcastSm",
    "CancelBroadcastSmResp",
    "CommandId",
    "DataSm",
    "DataSmResp",
    "DeliverSm",
    "DeliverSmResp",
    "DeliveryReceipt",
    "EnquireLink",
    "EnquireLinkResp",
    "FrequencyUnit",
    "GenericNack",
    "MessageState",
    "Pdu",
    "PduDecodeError",
    "QueryBroadcastSm",
    "QueryBroadcastSmResp",
    "QuerySm",
    "QuerySmResp",
    "SequenceGenerator",
    "SubmitSm",
    "SubmitSmReceived",
    "SubmitSmResp",
    "SubmitTemplate",
    "Tlv",
    "TlvTag",
    "Unbind",
    "UnbindResp",
    "UnknownPdu",
    "command_name",
    "decode",
    "decode_tlvs",
    "encode",
    "encode_tlvs",
    "fast_constructor",
    "is_receipt",
    "parse_receipt",
    "response_for",
    "scan_submit_sm",
    "smpp_time",
    "tlv_value",
]

#: command_length, command_id, command_status, sequence_number (SMPP 3.4 §3.2).
HEADER: Final = struct.Struct(">IIII")
#: Set in the command_id of every response.
RESPONSE_BIT: Final = 0x80000000
#: The largest PDU accepted by default. SMPP sets no limit; 64 KiB holds a
#: message_payload of any size a peer sends in practice (node-smpp stops at 16 KiB).
MAX_PDU_SIZE: Final = 65536

_TLV_HEAD: Final = struct.Struct(">HH")
_U16: Final = struct.Struct(">H")
_R = TypeVar("_R")


class CommandId(IntEnum):
    """SMPP command_id values (SMPP 3.4 §5.1.2.1, SMPP 5.0 §4.7.5)."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103
    BROADCAST_SM = 0x00000111
    BROADCAST_SM_RESP = 0x80000111
    QUERY_BROADCAST_SM = 0x00000112
    QUERY_BROADCAST_SM_RESP = 0x80000112
    CANCEL_BROADCAST_SM = 0x00000113
    CANCEL_BROADCAST_SM_RESP = 0x80000113


def command_name(command_id: int) -> str:
    """``"submit_sm"`` for 4; ``"0x00000abc"`` for an unknown command_id."""
    try:
        return CommandId(command_id).name.lower()
    except ValueError:
        return f"0x{command_id:08x}"


class TlvTag(IntEnum):
    """TLV tags used by capcast (SMPP 3.4 §5.3.2, SMPP 5.0 §4.8.4)."""

    DEST_ADDR_SUBUNIT = 0x0005
    SOURCE_ADDR_SUBUNIT = 0x000D
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    USER_MESSAGE_REFERENCE = 0x0204
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MESSAGE_STATE = 0x0427
    CONGESTION_STATE = 0x0428
    BROADCAST_CHANNEL_INDICATOR = 0x0600
    BROADCAST_CONTENT_TYPE = 0x0601
    BROADCAST_CONTENT_TYPE_INFO = 0x0602
    BROADCAST_MESSAGE_CLASS = 0x0603
    BROADCAST_REP_NUM = 0x0604
    BROADCAST_FREQUENCY_INTERVAL = 0x0605
    BROADCAST_AREA_IDENTIFIER = 0x0606
    BROADCAST_ERROR_STATUS = 0x0607
    BROADCAST_AREA_SUCCESS = 0x0608
    BROADCAST_END_TIME = 0x0609
    BROADCAST_SERVICE_GROUP = 0x060A


class MessageState(IntEnum):
    """message_state values (SMPP 3.4 §5.2.28, SMPP 5.0 §4.7.15)."""

    SCHEDULED = 0
    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8
    SKIPPED = 9

    @property
    def is_final(self) -> bool:
        """True when the message will not change state again."""
        return self not in (MessageState.SCHEDULED, MessageState.ENROUTE,
                            MessageState.ACCEPTED, MessageState.UNKNOWN)


class BroadcastAreaFormat(IntEnum):
    """The first octet of a broadcast_area_identifier (SMPP 5.0 §4.8.4.4)."""

    #: An alias or name the SMSC/CBC knows (e.g. a cell id or a named area).
    ALIAS = 0x00
    ELLIPSOID_ARC = 0x01
    POLYGON = 0x02


class FrequencyUnit(IntEnum):
    """The unit octet of broadcast_frequency_interval (SMPP 5.0 §4.8.4.8)."""

    AS_FREQUENTLY_AS_POSSIBLE = 0x00
    SECONDS = 0x08
    MINUTES = 0x09
    HOURS = 0x0A
    DAYS = 0x0B
    WEEKS = 0x0C
    MONTHS = 0x0D
    YEARS = 0x0E


class PduDecodeError(RemoteProtocolError):
    """Bytes from the peer are not a valid PDU.

    ``command_id`` and ``sequence`` are taken from the header when there is
    one; ``status`` is the command_status to answer with (ESME_RINVCMDLEN,
    ESME_RINVCMDID, ESME_RINVOPTPARSTREAM, ...). ``fatal`` means the byte
    stream cannot be resynchronised (a command_length out of range) and the
    link must be closed.
    """

    def __init__(self, message: str, *, status: int, command_id: int | None = None,
                 sequence: int | None = None, fatal: bool = False) -> None:
        self.status = status
        self.command_id = command_id
        self.sequence = sequence
        self.fatal = fatal
        super().__init__(message)


# command_status values the decoder answers with (see gateways.smpp.errors for the registry).
_RINVMSGLEN: Final = 0x01
_RINVCMDLEN: Final = 0x02
_RINVCMDID: Final = 0x03
_RINVOPTPARSTREAM: Final = 0xC0
_RINVPARLEN: Final = 0xC2
_RMISSINGOPTPARAM: Final = 0xC3


class SequenceGenerator:
    """Sequence numbers 1 … 0x7FFFFFFF, wrapping (SMPP 3.4 §5.1.4).

    It has smpplib's generator interface (``sequence``, ``next_sequence()``) so
    that it can be handed to ``smpplib.smpp.make_pdu(..., client=generator)``.
    """

    MIN_SEQUENCE: Final = 0x00000001
    MAX_SEQUENCE: Final = 0x7FFFFFFF

    __slots__ = ("_sequence",)

    def __init__(self, start: int = MIN_SEQUENCE) -> None:
        if not self.MIN_SEQUENCE <= start <= self.MAX_SEQUENCE:
            raise ValueError(f"sequence must be in 1..0x7FFFFFFF, not {start}")
        # The next call to next_sequence() returns `start`.
        self._sequence = start - 1

    @property
    def sequence(self) -> int:
        """The last sequence number handed out (0 before the first)."""
        return self._sequence

    def next_sequence(self) -> int:
        """The next sequence number."""
        seq = self._sequence + 1
        if seq > self.MAX_SEQUENCE:
            seq = self.MIN_SEQUENCE
        self._sequence = seq
        return seq


# --- TLVs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Tlv:
    """One tag-length-value parameter, kept verbatim (unknown tags too)."""

    tag: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 0xFFFF:
            raise LocalProtocolError(f"TLV tag {self.tag} out of range")
        if len(self.value) > 0xFFFF:
            raise LocalProtocolError(f"TLV 0x{self.tag:04x} longer than 65535 octets")

    @classmethod
    def u8(cls, tag: int, value: int) -> Tlv:
        """A one-octet integer TLV."""
        return cls(tag=tag, value=_pack_int(value, 1, f"TLV 0x{tag:04x}"))

    @classmethod
    def u16(cls, tag: int, value: int) -> Tlv:
        """A two-octet integer TLV."""
        return cls(tag=tag, value=_pack_int(value, 2, f"TLV 0x{tag:04x}"))

    @classmethod
    def cstring(cls, tag: int, value: str) -> Tlv:
        """A C-octet string TLV (NUL included in the length, SMPP 3.4 §5.3.2)."""
        return cls(tag=tag, value=_cstr(value, "TLV") + b"\0")

    def as_int(self) -> int:
        """The value as a big-endian unsigned integer."""
        return int.from_bytes(self.value, "big")

    def as_str(self) -> str:
        """The value as a (possibly NUL-terminated) string."""
        end = self.value.find(b"\0")
        return (self.value if end < 0 else self.value[:end]).decode("latin-1")


def _pack_int(value: int, size: int, what: str) -> bytes:
    if not 0 <= value < (1 << (8 * size)):
        raise LocalProtocolError(f"{what}: {value} does not fit in {size} octet(s)")
    return value.to_bytes(size, "big")


def encode_tlvs(tlvs: Iterable[Tlv]) -> bytes:
    """The TLVs' bytes, in order."""
    return b"".join(_TLV_HEAD.pack(t.tag, len(t.value)) + t.value for t in tlvs)


def decode_tlvs(data: bytes | bytearray, start: int = 0, end: int | None = None) -> tuple[Tlv, ...]:
    """Split ``data[start:end]`` into TLVs.

    Raises:
        PduDecodeError: a TLV header or value runs past the end (ESME_RINVOPTPARSTREAM).

    """
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos < end:
        if pos + 4 > end:
            raise PduDecodeError(f"truncated TLV header at offset {pos}", status=_RINVOPTPARSTREAM)
        tag, length = _TLV_HEAD.unpack_from(data, pos)
        pos += 4
        if pos + length > end:
            raise PduDecodeError(f"TLV 0x{tag:04x} of length {length} runs past the PDU",
                                 status=_RINVOPTPARSTREAM)
        out.append(Tlv(tag=tag, value=bytes(data[pos:pos + length])))
        pos += length
    return tuple(out)


def tlv_value(tlvs: Sequence[Tlv], tag: int) -> bytes | None:
    """The value of the first TLV with ``tag``, or None."""
    for t in tlvs:
        if t.tag == tag:
            return t.value
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastArea:
    """A broadcast_area_identifier: a format octet and up to 100 octets of details."""

    format: int = BroadcastAreaFormat.ALIAS
    details: bytes

    @classmethod
    def alias(cls, name: str) -> BroadcastArea:
        """An area given by a name or alias the SMSC/CBC knows (e.g. a cell id)."""
        return cls(format=BroadcastAreaFormat.ALIAS, details=_cstr(name, "area alias"))

    @property
    def name(self) -> str | None:
        """The alias as text for format 0, else None."""
        if self.format != BroadcastAreaFormat.ALIAS:
            return None
        return self.details.rstrip(b"\0").decode("latin-1")

    def to_tlv(self) -> Tlv:
        """The TLV (tag 0x0606)."""
        if len(self.details) > 100:
            raise LocalProtocolError("broadcast_area_identifier details exceed 100 octets")
        fmt = _pack_int(self.format, 1, "broadcast area format")
        return Tlv(tag=TlvTag.BROADCAST_AREA_IDENTIFIER, value=fmt + self.details)

    @classmethod
    def from_value(cls, value: bytes) -> BroadcastArea:
        """Parse a TLV value."""
        if not value:
            raise PduDecodeError("empty broadcast_area_identifier", status=_RINVPARLEN)
        return cls(format=value[0], details=value[1:])


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastContentType:
    """broadcast_content_type: network type (0 generic, 1 GSM, 2 TDMA, 3 CDMA) + service."""

    network_type: int = 1
    #: 0x0001 emergency broadcasts, 0x0033 weather, ... (SMPP 5.0 §4.8.4.5).
    content_type: int = 0x0001

    def to_tlv(self) -> Tlv:
        """The three-octet TLV (tag 0x0601)."""
        value = (_pack_int(self.network_type, 1, "broadcast network type")
                 + _pack_int(self.content_type, 2, "broadcast content type"))
        return Tlv(tag=TlvTag.BROADCAST_CONTENT_TYPE, value=value)

    @classmethod
    def from_value(cls, value: bytes) -> BroadcastContentType:
        """Parse a TLV value (exactly 3 octets)."""
        if len(value) != 3:
            raise PduDecodeError(f"broadcast_content_type has {len(value)} octets, not 3",
                                 status=_RINVPARLEN)
        return cls(network_type=value[0], content_type=_U16.unpack_from(value, 1)[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastFrequencyInterval:
    """broadcast_frequency_interval: a unit octet and a two-octet count."""

    unit: int = FrequencyUnit.SECONDS
    count: int

    @classmethod
    def seconds(cls, seconds: float) -> BroadcastFrequencyInterval:
        """The interval in whole seconds, or minutes when it does not fit in 16 bits."""
        whole = max(0, round(seconds))
        if whole <= 0xFFFF:
            return cls(unit=FrequencyUnit.SECONDS, count=whole)
        return cls(unit=FrequencyUnit.MINUTES, count=min(0xFFFF, round(whole / 60)))

    @property
    def total_seconds(self) -> float | None:
        """The interval in seconds (None for months, years, or "as often as possible")."""
        factor = _UNIT_SECONDS.get(self.unit)
        return None if factor is None else float(self.count * factor)

    def to_tlv(self) -> Tlv:
        """The three-octet TLV (tag 0x0605)."""
        value = (_pack_int(self.unit, 1, "frequency unit")
                 + _pack_int(self.count, 2, "frequency count"))
        return Tlv(tag=TlvTag.BROADCAST_FREQUENCY_INTERVAL, value=value)

    @classmethod
    def from_value(cls, value: bytes) -> BroadcastFrequencyInterval:
        """Parse a TLV value (exactly 3 octets)."""
        if len(value) != 3:
            raise PduDecodeError(f"broadcast_frequency_interval has {len(value)} octets, not 3",
                                 status=_RINVPARLEN)
        return cls(unit=value[0], count=_U16.unpack_from(value, 1)[0])


_UNIT_SECONDS: Final[dict[int, int]] = {
    FrequencyUnit.SECONDS: 1, FrequencyUnit.MINUTES: 60, FrequencyUnit.HOURS: 3600,
    FrequencyUnit.DAYS: 86400, FrequencyUnit.WEEKS: 604800}


# --- PDU records -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu:
    """Base of every PDU record: the header fields and the TLVs not modelled as fields."""

    command_id: ClassVar[int] = -1
    #: smpplib's name for the command, e.g. ``"submit_sm"``.
    command: ClassVar[str] = ""
    sequence: int = 0
    status: int = 0
    tlvs: tuple[Tlv, ...] = ()

    @property
    def is_response(self) -> bool:
        """True for responses (and generic_nack)."""
        return bool(self.command_id & RESPONSE_BIT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bind(Pdu):
    """The body shared by bind_transmitter, bind_receiver and bind_transceiver."""

    system_id: str = ""
    password: str = ""
    system_type: str = ""
    #: 0x34 for SMPP 3.4, 0x50 for SMPP 5.0.
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitter(Bind):
    """bind_transmitter: submit only."""

    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER
    command: ClassVar[str] = "bind_transmitter"


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiver(Bind):
    """bind_receiver: receive deliver_sm only."""

    command_id: ClassVar[int] = CommandId.BIND_RECEIVER
    command: ClassVar[str] = "bind_receiver"


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(Bind):
    """bind_transceiver: both directions on one link."""

    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER
    command: ClassVar[str] = "bind_transceiver"


@dataclass(frozen=True, slots=True, kw_only=True)
class BindResp(Pdu):
    """The body shared by the three bind responses."""

    system_id: str = ""

    @property
    def sc_interface_version(self) -> int | None:
        """The SMSC's SMPP version from the sc_interface_version TLV, if sent."""
        value = tlv_value(self.tlvs, TlvTag.SC_INTERFACE_VERSION)
        return value[0] if value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(BindResp):
    """bind_transmitter_resp."""

    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER_RESP
    command: ClassVar[str] = "bind_transmitter_resp"


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(BindResp):
    """bind_receiver_resp."""

    command_id: ClassVar[int] = CommandId.BIND_RECEIVER_RESP
    command: ClassVar[str] = "bind_receiver_resp"


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(BindResp):
    """bind_transceiver_resp."""

    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER_RESP
    command: ClassVar[str] = "bind_transceiver_resp"


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShortMessage(Pdu):
    """The body shared by submit_sm and deliver_sm (SMPP 3.4 §4.4.1, §4.6.1)."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""

    @property
    def payload(self) -> bytes:
        """The user data: short_message, or the message_payload TLV when that is used."""
        if self.short_message:
            return self.short_message
        return tlv_value(self.tlvs, TlvTag.MESSAGE_PAYLOAD) or b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(_ShortMessage):
    """submit_sm: an ESME submits a short message."""

    command_id: ClassVar[int] = CommandId.SUBMIT_SM
    command: ClassVar[str] = "submit_sm"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(_ShortMessage):
    """deliver_sm: the SMSC delivers a message or a delivery receipt."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM
    command: ClassVar[str] = "deliver_sm"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(Pdu):
    """submit_sm_resp: the SMSC's message id (empty on error)."""

    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP
    command: ClassVar[str] = "submit_sm_resp"
    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(Pdu):
    """deliver_sm_resp (message_id is unused and normally empty)."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP
    command: ClassVar[str] = "deliver_sm_resp"
    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSm(Pdu):
    """data_sm (SMPP 3.4 §4.7.1); some SMSCs send delivery receipts this way."""

    command_id: ClassVar[int] = CommandId.DATA_SM
    command: ClassVar[str] = "data_sm"
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0

    @property
    def payload(self) -> bytes:
        """The message_payload TLV."""
        return tlv_value(self.tlvs, TlvTag.MESSAGE_PAYLOAD) or b""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSmResp(Pdu):
    """data_sm_resp."""

    command_id: ClassVar[int] = CommandId.DATA_SM_RESP
    command: ClassVar[str] = "data_sm_resp"
    message_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySm(Pdu):
    """query_sm."""

    command_id: ClassVar[int] = CommandId.QUERY_SM
    command: ClassVar[str] = "query_sm"
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySmResp(Pdu):
    """query_sm_resp."""

    command_id: ClassVar[int] = CommandId.QUERY_SM_RESP
    command: ClassVar[str] = "query_sm_resp"
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertNotification(Pdu):
    """alert_notification (no response)."""

    command_id: ClassVar[int] = CommandId.ALERT_NOTIFICATION
    command: ClassVar[str] = "alert_notification"
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(Pdu):
    """enquire_link: keepalive."""

    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK
    command: ClassVar[str] = "enquire_link"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    """enquire_link_resp."""

    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP
    command: ClassVar[str] = "enquire_link_resp"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(Pdu):
    """unbind."""

    command_id: ClassVar[int] = CommandId.UNBIND
    command: ClassVar[str] = "unbind"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(Pdu):
    """unbind_resp."""

    command_id: ClassVar[int] = CommandId.UNBIND_RESP
    command: ClassVar[str] = "unbind_resp"


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(Pdu):
    """generic_nack: the peer could not even read our PDU's header or command."""

    command_id: ClassVar[int] = CommandId.GENERIC_NACK
    command: ClassVar[str] = "generic_nack"


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastSm(Pdu):
    """SMPP 5.0 broadcast_sm (§4.4.1): a cell broadcast through an SMSC/CBC.

    The mandatory TLVs are fields: ``areas`` (one or more
    broadcast_area_identifier), ``content_type``, ``rep_num`` (two octets; 0 =
    repeat until validity_period ends; omitted when ``priority_flag`` asks for
    immediate broadcast) and ``frequency_interval``. ``message_payload`` holds
    the text in ``data_coding``. Other TLVs go in ``tlvs``.
    """

    command_id: ClassVar[int] = CommandId.BROADCAST_SM
    command: ClassVar[str] = "broadcast_sm"
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    #: Empty in a new broadcast; the id of the broadcast to replace otherwise.
    message_id: str = ""
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    areas: tuple[BroadcastArea, ...] = ()
    content_type: BroadcastContentType | None = None
    rep_num: int | None = None
    frequency_interval: BroadcastFrequencyInterval | None = None
    message_payload: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastSmResp(Pdu):
    """broadcast_sm_resp; ``failed_areas`` lists failed_broadcast_area_identifier TLVs."""

    command_id: ClassVar[int] = CommandId.BROADCAST_SM_RESP
    command: ClassVar[str] = "broadcast_sm_resp"
    message_id: str = ""
    failed_areas: tuple[BroadcastArea, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryBroadcastSm(Pdu):
    """query_broadcast_sm (SMPP 5.0 §4.4.2)."""

    command_id: ClassVar[int] = CommandId.QUERY_BROADCAST_SM
    command: ClassVar[str] = "query_broadcast_sm"
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryBroadcastSmResp(Pdu):
    """query_broadcast_sm_resp with its TLVs message_state, areas and area success."""

    command_id: ClassVar[int] = CommandId.QUERY_BROADCAST_SM_RESP
    command: ClassVar[str] = "query_broadcast_sm_resp"
    message_id: str = ""
    message_state: int | None = None
    areas: tuple[BroadcastArea, ...] = ()
    #: 0–100 %, 255 = not available.
    area_success: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelBroadcastSm(Pdu):
    """cancel_broadcast_sm (SMPP 5.0 §4.4.3)."""

    command_id: ClassVar[int] = CommandId.CANCEL_BROADCAST_SM
    command: ClassVar[str] = "cancel_broadcast_sm"
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelBroadcastSmResp(Pdu):
    """cancel_broadcast_sm_resp."""

    command_id: ClassVar[int] = CommandId.CANCEL_BROADCAST_SM_RESP
    command: ClassVar[str] = "cancel_broadcast_sm_resp"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownPdu(Pdu):
    """A PDU with a command_id capcast does not implement (replace_sm, outbind, vendor ...)."""

    raw_command_id: int
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        """True when the command_id has the response bit."""
        return bool(self.raw_command_id & RESPONSE_BIT)


def fast_constructor(cls: type[_R]) -> Callable[..., _R]:
    """A positional constructor for a frozen slotted record, for the hot paths.

    It fills the slots in field order through their descriptors, skipping the
    keyword parsing and ``object.__setattr__`` calls of the generated
    ``__init__`` (about a fifth of its cost). Like :mod:`dataclasses`, it
    compiles the function from a template (built only from the field count,
    never from input). Only for records without ``__post_init__`` checks;
    every field must be given, in declaration order.
    """
    count = len(fields(cls))  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    for i, f in enumerate(fields(cls)):  # type: ignore[arg-type]
        namespace[f"set{i}"] = getattr(cls, f.name).__set__
    params = ", ".join(f"v{i}" for i in range(count))
    body = "".join(f"    set{i}(obj, v{i})\n" for i in range(count))
    exec(f"def make({params}):\n    obj = new(cls)\n{body}    return obj\n", namespace)
    make: Callable[..., _R] = namespace["make"]
    return make


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmReceived:
    """An SMSC's view of a submit_sm, decoded only as far as an SMSC must act on it.

    Sessions in the SMSC role emit this instead of :class:`SubmitSm` when made
    with ``lazy_submit=True`` (the simulator's hot path): the PDU was checked
    to be well-formed, ``raw`` holds its bytes, and :meth:`decode` gives the
    full record when wanted.
    """

    sequence: int
    destination_addr: str
    registered_delivery: int
    raw: bytes

    command: ClassVar[str] = "submit_sm"

    def decode(self) -> SubmitSm:
        """The full submit_sm record."""
        pdu = decode(self.raw)
        assert isinstance(pdu, SubmitSm)
        return pdu


# --- field layouts ---------------------------------------------------------------------

# Kinds: "c" C-octet string (max length including the NUL), "1" one-octet integer,
# "sm" sm_length + short_message.
_Spec = tuple[tuple[str, str, int], ...]

_BIND: Final[_Spec] = (("system_id", "c", 16), ("password", "c", 9), ("system_type", "c", 13),
                       ("interface_version", "1", 0), ("addr_ton", "1", 0),
                       ("addr_npi", "1", 0), ("address_range", "c", 41))
_SHORT_MESSAGE: Final[_Spec] = (
    ("service_type", "c", 6), ("source_addr_ton", "1", 0), ("source_addr_npi", "1", 0),
    ("source_addr", "c", 21), ("dest_addr_ton", "1", 0), ("dest_addr_npi", "1", 0),
    ("destination_addr", "c", 21), ("esm_class", "1", 0), ("protocol_id", "1", 0),
    ("priority_flag", "1", 0), ("schedule_delivery_time", "c", 17),
    ("validity_period", "c", 17), ("registered_delivery", "1", 0),
    ("replace_if_present_flag", "1", 0), ("data_coding", "1", 0),
    ("sm_default_msg_id", "1", 0), ("short_message", "sm", 254))
_MESSAGE_ID: Final[_Spec] = (("message_id", "c", 65),)
_SPECS: Final[dict[type[Pdu], _Spec]] = {
    BindTransmitter: _BIND, BindReceiver: _BIND, BindTransceiver: _BIND,
    BindTransmitterResp: (("system_id", "c", 16),),
    BindReceiverResp: (("system_id", "c", 16),),
    BindTransceiverResp: (("system_id", "c", 16),),
    SubmitSm: _SHORT_MESSAGE, DeliverSm: _SHORT_MESSAGE,
    SubmitSmResp: _MESSAGE_ID, DeliverSmResp: _MESSAGE_ID, DataSmResp: _MESSAGE_ID,
    DataSm: (("service_type", "c", 6), ("source_addr_ton", "1", 0),
             ("source_addr_npi", "1", 0), ("source_addr", "c", 65),
             ("dest_addr_ton", "1", 0), ("dest_addr_npi", "1", 0),
             ("destination_addr", "c", 65), ("esm_class", "1", 0),
             ("registered_delivery", "1", 0), ("data_coding", "1", 0)),
    QuerySm: (("message_id", "c", 65), ("source_addr_ton", "1", 0),
              ("source_addr_npi", "1", 0), ("source_addr", "c", 21)),
    QuerySmResp: (("message_id", "c", 65), ("final_date", "c", 17),
                  ("message_state", "1", 0), ("error_code", "1", 0)),
    AlertNotification: (("source_addr_ton", "1", 0), ("source_addr_npi", "1", 0),
                        ("source_addr", "c", 65), ("esme_addr_ton", "1", 0),
                        ("esme_addr_npi", "1", 0), ("esme_addr", "c", 65)),
    EnquireLink: (), EnquireLinkResp: (), Unbind: (), UnbindResp: (), GenericNack: (),
    BroadcastSm: (("service_type", "c", 6), ("source_addr_ton", "1", 0),
                  ("source_addr_npi", "1", 0), ("source_addr", "c", 21),
                  ("message_id", "c", 65), ("priority_flag", "1", 0),
                  ("schedule_delivery_time", "c", 17), ("validity_period", "c", 17),
                  ("replace_if_present_flag", "1", 0), ("data_coding", "1", 0),
                  ("sm_default_msg_id", "1", 0)),
    BroadcastSmResp: _MESSAGE_ID,
    QueryBroadcastSm: (("message_id", "c", 65), ("source_addr_ton", "1", 0),
                       ("source_addr_npi", "1", 0), ("source_addr", "c", 21)),
    QueryBroadcastSmResp: _MESSAGE_ID,
    CancelBroadcastSm: (("service_type", "c", 6), ("message_id", "c", 65),
                        ("source_addr_ton", "1", 0), ("source_addr_npi", "1", 0),
                        ("source_addr", "c", 21)),
    CancelBroadcastSmResp: (),
}

#: command_id -> record class, for every command this codec implements.
_CLASSES: Final[dict[int, type[Pdu]]] = {cls.command_id: cls for cls in _SPECS}

# The SMPP 3.4 commands whose mandatory part smpplib decodes (cold path: binds, queries).
_SMPPLIB_DECODED: Final[frozenset[type[Pdu]]] = frozenset({
    BindTransmitter, BindReceiver, BindTransceiver, BindTransmitterResp, BindReceiverResp,
    BindTransceiverResp, DataSm, DataSmResp, QuerySm, QuerySmResp, AlertNotification,
})
# ... and those smpplib encodes (all SMPP 3.4 commands it has, except the hot responses).
_SMPPLIB_ENCODED: Final[frozenset[type[Pdu]]] = _SMPPLIB_DECODED | frozenset({
    SubmitSm, DeliverSm, EnquireLink, EnquireLinkResp, Unbind, UnbindResp, GenericNack,
})


def _cstr(value: str, what: str, limit: int | None = None) -> bytes:
    """Encode a C-octet string's text (without the NUL), checking it fits."""
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{what} must be ASCII: {value!r}") from None
    if b"\0" in raw:
        raise LocalProtocolError(f"{what} must not contain NUL")
    if limit is not None and len(raw) >= limit:
        raise LocalProtocolError(f"{what} is {len(raw)} octets, at most {limit - 1} allowed")
    return raw


def _check_fields(pdu: Pdu, spec: _Spec) -> None:
    """Refuse values smpplib would silently truncate or fail on."""
    for name, kind, limit in spec:
        value = getattr(pdu, name)
        if kind == "c":
            _cstr(value, name, limit)
        elif kind == "1":
            _pack_int(value, 1, name)
        elif len(value) > limit:
            raise LocalProtocolError(
                f"short_message is {len(value)} octets, at most {limit} allowed; "
                "use the message_payload TLV for longer user data")


# --- encoding --------------------------------------------------------------------------


def _finish(command_id: int, status: int, sequence: int, body: bytes) -> bytes:
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def _encode_with_smpplib(pdu: Pdu, spec: _Spec) -> bytes:
    kwargs: dict[str, Any] = {name: getattr(pdu, name) for name, _, _ in spec}
    # A sequence is always given, so smpplib never draws one from the generator.
    made = smpplib.smpp.make_pdu(pdu.command, client=_SMPPLIB_SEQUENCE,
                                 sequence=pdu.sequence, status=pdu.status, **kwargs)
    # smpplib ignores a `sequence` keyword when its client already has one, and forces
    # interface_version to 0x34 in the bind constructors: set both afterwards.
    made.sequence = pdu.sequence
    if isinstance(pdu, Bind):
        made.interface_version = pdu.interface_version
    raw: bytes = made.generate()
    if pdu.tlvs:
        raw = HEADER.pack(len(raw) + sum(4 + len(t.value) for t in pdu.tlvs),
                          pdu.command_id, pdu.status, pdu.sequence) + raw[16:] \
            + encode_tlvs(pdu.tlvs)
    return raw


_SMPPLIB_SEQUENCE: Final = SequenceGenerator()


def _encode_fields(pdu: Pdu, spec: _Spec) -> bytes:
    parts = []
    for name, kind, _ in spec:
        value = getattr(pdu, name)
        if kind == "c":
            parts.append(value.encode("ascii") + b"\0")
        elif kind == "1":
            parts.append(bytes((value,)))
        else:
            parts.append(bytes((len(value),)) + value)
    return b"".join(parts)


def _extra_tlvs(pdu: Pdu) -> list[Tlv]:
    """The typed TLV fields of the SMPP 5.0 records, in the order SMPP 5.0 lists them."""
    out: list[Tlv] = []
    if isinstance(pdu, BroadcastSm):
        if not pdu.areas:
            raise LocalProtocolError("broadcast_sm needs at least one broadcast_area_identifier")
        out.extend(area.to_tlv() for area in pdu.areas)
        if pdu.content_type is None:
            raise LocalProtocolError("broadcast_sm needs broadcast_content_type")
        out.append(pdu.content_type.to_tlv())
        if pdu.rep_num is not None:
            out.append(Tlv.u16(TlvTag.BROADCAST_REP_NUM, pdu.rep_num))
        if pdu.frequency_interval is None:
            raise LocalProtocolError("broadcast_sm needs broadcast_frequency_interval")
        out.append(pdu.frequency_interval.to_tlv())
        if pdu.message_payload is not None:
            out.append(Tlv(tag=TlvTag.MESSAGE_PAYLOAD, value=pdu.message_payload))
    elif isinstance(pdu, BroadcastSmResp):
        out.extend(area.to_tlv() for area in pdu.failed_areas)
    elif isinstance(pdu, QueryBroadcastSmResp):
        if pdu.message_state is not None:
            out.append(Tlv.u8(TlvTag.MESSAGE_STATE, pdu.message_state))
        out.extend(area.to_tlv() for area in pdu.areas)
        if pdu.area_success is not None:
            out.append(Tlv.u8(TlvTag.BROADCAST_AREA_SUCCESS, pdu.area_success))
    return out


def encode(pdu: Pdu) -> bytes:
    """The bytes of ``pdu``.

    Raises:
        LocalProtocolError: a field does not fit (too long, not ASCII, out of
            range) or a mandatory broadcast TLV is missing. Nothing is
            truncated silently.

    """
    if not 0 <= pdu.sequence <= 0xFFFFFFFF or not 0 <= pdu.status <= 0xFFFFFFFF:
        raise LocalProtocolError("sequence and status must fit in 32 bits")
    if isinstance(pdu, UnknownPdu):
        return _finish(pdu.raw_command_id, pdu.status, pdu.sequence,
                       pdu.body + encode_tlvs(pdu.tlvs))
    cls = type(pdu)
    spec = _SPECS[cls]
    _check_fields(pdu, spec)
    if cls in _SMPPLIB_ENCODED:
        return _encode_with_smpplib(pdu, spec)
    body = _encode_fields(pdu, spec)
    tlvs = [*_extra_tlvs(pdu), *pdu.tlvs]
    return _finish(pdu.command_id, pdu.status, pdu.sequence, body + encode_tlvs(tlvs))


def encode_submit_sm_resp(sequence: int, message_id: str, status: int = 0) -> bytes:
    """A submit_sm_resp, fast (the simulator's hot path); equals ``encode(SubmitSmResp(...))``."""
    raw = message_id.encode("latin-1")
    return HEADER.pack(17 + len(raw), CommandId.SUBMIT_SM_RESP, status, sequence) + raw + b"\0"


def encode_deliver_sm_resp(sequence: int, status: int = 0) -> bytes:
    """A deliver_sm_resp with an empty message_id (the client's receipt hot path)."""
    return HEADER.pack(17, CommandId.DELIVER_SM_RESP, status, sequence) + b"\0"


_ENCODERS_FAST: Final[dict[type[Pdu], Callable[[Any], bytes]]] = {
    SubmitSmResp: lambda p: encode_submit_sm_resp(p.sequence, p.message_id, p.status)
    if not p.tlvs else _finish(p.command_id, p.status, p.sequence,
                               _encode_fields(p, _MESSAGE_ID) + encode_tlvs(p.tlvs)),
    DeliverSmResp: lambda p: _finish(p.command_id, p.status, p.sequence,
                                     _encode_fields(p, _MESSAGE_ID) + encode_tlvs(p.tlvs)),
}


def encode_fast(pdu: Pdu) -> bytes:
    """:func:`encode`, with the hand-written encoders for the hot responses."""
    fast = _ENCODERS_FAST.get(type(pdu))
    if fast is not None:
        _check_fields(pdu, _MESSAGE_ID)
        return fast(pdu)
    return encode(pdu)


def response_for(command_id: int, *, sequence: int, status: int) -> Pdu | None:
    """The (empty) response record to a request ``command_id``.

    A generic_nack for a command this codec does not know; None for
    alert_notification, which has no response, and for responses.
    """
    if command_id & RESPONSE_BIT:
        return None
    if command_id not in _CLASSES:
        return GenericNack(sequence=sequence, status=status)
    cls = _CLASSES.get(command_id | RESPONSE_BIT)
    return None if cls is None else cls(sequence=sequence, status=status)


class SubmitTemplate:
    """A submit_sm built once and stamped out per recipient.

    The bytes come from smpplib (via :func:`encode`), with an empty
    destination_addr; :meth:`render` patches in the sequence number and the
    destination, so a bulk job never rebuilds the PDU field by field.
    """

    __slots__ = ("_fixed", "_prefix", "_suffix", "sample", "segments")

    def __init__(self, sample: SubmitSm, *, segments: int = 1) -> None:
        """``sample``'s destination_addr and sequence are ignored."""
        raw = encode(replace(sample, destination_addr="", sequence=0, status=0))
        # Skip service_type, source ton/npi, source_addr and dest ton/npi to reach the
        # (empty) destination_addr, whose NUL starts the suffix.
        pos = raw.index(b"\0", 16) + 1 + 2
        pos = raw.index(b"\0", pos) + 1 + 2
        if raw[pos] != 0:  # pragma: no cover - the layout is fixed by SMPP
            raise AssertionError("unexpected submit_sm layout")
        self._prefix = raw[16:pos]
        self._suffix = raw[pos:]  # starts with destination_addr's NUL
        self._fixed = len(raw)
        #: The submit_sm this template was built from (destination empty).
        self.sample = sample
        #: How many segments (submit_sm PDUs) one message of this template family has.
        self.segments = segments

    def render(self, sequence: int, destination: bytes) -> bytes:
        """The submit_sm for ``destination`` (ASCII, at most 20 octets) with ``sequence``."""
        return (HEADER.pack(self._fixed + len(destination), 4, 0, sequence)
                + self._prefix + destination + self._suffix)


# --- decoding --------------------------------------------------------------------------

_P = TypeVar("_P", bound=Pdu)
_new_submit_sm_resp: Final = fast_constructor(SubmitSmResp)
_new_submit_received: Final = fast_constructor(SubmitSmReceived)


def _walk(data: bytes | bytearray, pos: int, end: int, spec: _Spec,
          values: dict[str, Any]) -> int:
    """Read the mandatory fields of ``spec`` into ``values``; return the offset after them.

    A body that stops exactly at a field boundary leaves the remaining fields
    at their defaults (responses with an error status often carry no body, and
    node-smpp and smpplib read such PDUs the same way). A field cut in the
    middle is an error.
    """
    for name, kind, _ in spec:
        if pos >= end:
            break
        if kind == "c":
            nul = data.find(b"\0", pos, end)
            if nul < 0:
                raise PduDecodeError(f"{name} is not NUL-terminated", status=_RINVCMDLEN)
            values[name] = data[pos:nul].decode("latin-1")
            pos = nul + 1
        elif kind == "1":
            values[name] = data[pos]
            pos += 1
        else:
            length = data[pos]
            pos += 1
            if pos + length > end:
                raise PduDecodeError(f"sm_length {length} runs past the PDU", status=_RINVMSGLEN)
            values[name] = bytes(data[pos:pos + length])
            pos += length
    return pos


def _decode_with_smpplib(cls: type[Pdu], data: bytes | bytearray, mandatory_end: int,
                         spec: _Spec) -> dict[str, Any]:
    """Parse the (already validated) mandatory part with smpplib."""
    head = HEADER.pack(mandatory_end, *HEADER.unpack_from(data, 0)[1:])
    parsed = smpplib.smpp.parse_pdu(head + bytes(data[16:mandatory_end]),
                                    client=_SMPPLIB_SEQUENCE, allow_unknown_opt_params=True)
    values: dict[str, Any] = {}
    for name, kind, _ in spec:
        value = getattr(parsed, name, None)
        if value is None:
            continue
        values[name] = value.decode("latin-1") if kind == "c" else value
    return values


def _typed_tlvs(cls: type[Pdu], tlvs: tuple[Tlv, ...], values: dict[str, Any]) -> tuple[Tlv, ...]:
    """Move the SMPP 5.0 TLVs that are record fields out of ``tlvs`` into ``values``."""
    rest = []
    areas = []
    for t in tlvs:
        tag = t.tag
        if tag == TlvTag.BROADCAST_AREA_IDENTIFIER:
            areas.append(BroadcastArea.from_value(t.value))
        elif cls is BroadcastSm and tag == TlvTag.BROADCAST_CONTENT_TYPE:
            values["content_type"] = BroadcastContentType.from_value(t.value)
        elif cls is BroadcastSm and tag == TlvTag.BROADCAST_REP_NUM:
            if len(t.value) != 2:  # SMPP 5.0: Integer(2); Rusmpp's u8 is wrong
                raise PduDecodeError(f"broadcast_rep_num has {len(t.value)} octets, not 2",
                                     status=_RINVPARLEN)
            values["rep_num"] = _U16.unpack(t.value)[0]
        elif cls is BroadcastSm and tag == TlvTag.BROADCAST_FREQUENCY_INTERVAL:
            values["frequency_interval"] = BroadcastFrequencyInterval.from_value(t.value)
        elif cls is BroadcastSm and tag == TlvTag.MESSAGE_PAYLOAD:
            values["message_payload"] = t.value
        elif cls is QueryBroadcastSmResp and tag == TlvTag.MESSAGE_STATE and len(t.value) == 1:
            values["message_state"] = t.value[0]
        elif (cls is QueryBroadcastSmResp and tag == TlvTag.BROADCAST_AREA_SUCCESS
              and len(t.value) == 1):
            values["area_success"] = t.value[0]
        else:
            rest.append(t)
    if cls is BroadcastSm:
        values["areas"] = tuple(areas)
        for name in ("content_type", "frequency_interval"):
            if name not in values:
                raise PduDecodeError(f"broadcast_sm without its mandatory {name} TLV",
                                     status=_RMISSINGOPTPARAM)
        if not areas:
            raise PduDecodeError("broadcast_sm without a broadcast_area_identifier TLV",
                                 status=_RMISSINGOPTPARAM)
    elif cls is BroadcastSmResp:
        values["failed_areas"] = tuple(areas)
    elif cls is QueryBroadcastSmResp:
        values["areas"] = tuple(areas)
    else:
        return tlvs
    return tuple(rest)


def decode(data: bytes | bytearray) -> Pdu:
    """The record for one complete PDU (``data`` is exactly command_length octets).

    Unknown command_ids give an :class:`UnknownPdu`; unknown TLVs are kept in
    ``tlvs``.

    Raises:
        PduDecodeError: the only exception, for anything malformed.

    """
    if len(data) < 16:
        raise PduDecodeError(f"PDU of {len(data)} octets is shorter than its header",
                             status=_RINVCMDLEN, fatal=True)
    length, command_id, status, sequence = HEADER.unpack_from(data, 0)
    if length != len(data):
        raise PduDecodeError(f"command_length {length} but {len(data)} octets",
                             status=_RINVCMDLEN, command_id=command_id, sequence=sequence,
                             fatal=True)
    cls = _CLASSES.get(command_id)
    try:
        if cls is SubmitSm or cls is DeliverSm:
            fast = _decode_short_message(cls, data, status, sequence)
            if fast is not None:
                return fast
        if cls is None:
            return UnknownPdu(raw_command_id=command_id, status=status, sequence=sequence,
                              body=bytes(data[16:]))
        return _decode_known(cls, data, status, sequence)
    except PduDecodeError as exc:
        exc.command_id, exc.sequence = command_id, sequence
        raise
    except Exception as exc:  # any surprise in a decoder means a bad PDU from the peer
        raise PduDecodeError(f"cannot decode {command_name(command_id)}: {exc!r}",
                             status=0x08, command_id=command_id, sequence=sequence) from exc


def _decode_known(cls: type[_P], data: bytes | bytearray, status: int, sequence: int) -> _P:
    spec = _SPECS[cls]
    end = len(data)
    values: dict[str, Any] = {}
    pos = _walk(data, 16, end, spec, values)
    if cls in _SMPPLIB_DECODED:
        values = _decode_with_smpplib(cls, data, pos, spec)
    tlvs = decode_tlvs(data, pos, end) if pos < end else ()
    if tlvs or cls in (BroadcastSm, BroadcastSmResp, QueryBroadcastSmResp):
        tlvs = _typed_tlvs(cls, tlvs, values)
    return cls(sequence=sequence, status=status, tlvs=tlvs, **values)


def _decode_short_message(cls: type[_ShortMessage], data: bytes | bytearray, status: int,
                          sequence: int) -> _ShortMessage | None:
    """submit_sm / deliver_sm with every mandatory field present, unrolled for speed.

    None when the body is not complete (the general decoder then reports
    exactly what is wrong, or fills in the defaults of missing trailing fields).
    """
    find = data.find
    end = len(data)
    try:
        n = find(b"\0", 16, end)
        if n < 0:
            return None
        service_type = data[16:n].decode("latin-1")
        src_ton, src_npi = data[n + 1], data[n + 2]
        p = n + 3
        n = find(b"\0", p, end)
        if n < 0:
            return None
        source = data[p:n].decode("latin-1")
        dst_ton, dst_npi = data[n + 1], data[n + 2]
        p = n + 3
        n = find(b"\0", p, end)
        if n < 0:
            return None
        destination = data[p:n].decode("latin-1")
        esm_class, protocol_id, priority = data[n + 1], data[n + 2], data[n + 3]
        p = n + 4
        n = find(b"\0", p, end)
        if n < 0:
            return None
        schedule = data[p:n].decode("latin-1")
        p = n + 1
        n = find(b"\0", p, end)
        if n < 0:
            return None
        validity = data[p:n].decode("latin-1")
        registered, replace_flag, coding, default_id, sm_length = data[n + 1:n + 6]
        p = n + 6
    except (IndexError, ValueError):
        return None
    if p + sm_length > end:
        return None
    short_message = bytes(data[p:p + sm_length])
    p += sm_length
    tlvs = decode_tlvs(data, p, end) if p < end else ()
    return cls(sequence=sequence, status=status, tlvs=tlvs, service_type=service_type,
               source_addr_ton=src_ton, source_addr_npi=src_npi, source_addr=source,
               dest_addr_ton=dst_ton, dest_addr_npi=dst_npi, destination_addr=destination,
               esm_class=esm_class, protocol_id=protocol_id, priority_flag=priority,
               schedule_delivery_time=schedule, validity_period=validity,
               registered_delivery=registered, replace_if_present_flag=replace_flag,
               data_coding=coding, sm_default_msg_id=default_id, short_message=short_message)


def decode_submit_sm_resp(data: bytes | bytearray, start: int, end: int) -> SubmitSmResp:
    """The submit_sm_resp at ``data[start:end]``, fast (the client's hot path).

    TLVs, if any, are checked and kept. Raises :class:`PduDecodeError` when
    the message_id is not NUL-terminated or a TLV is broken.
    """
    _, _, status, sequence = HEADER.unpack_from(data, start)
    pos = start + 16
    if pos >= end:
        return _new_submit_sm_resp(sequence, status, (), "")
    nul = data.find(b"\0", pos, end)
    if nul < 0:
        raise PduDecodeError("message_id is not NUL-terminated", status=_RINVCMDLEN,
                             command_id=CommandId.SUBMIT_SM_RESP, sequence=sequence)
    tlvs = decode_tlvs(data, nul + 1, end) if nul + 1 < end else ()
    return _new_submit_sm_resp(sequence, status, tlvs, data[pos:nul].decode("latin-1"))


def scan_submit_sm(data: bytes) -> SubmitSmReceived:
    """Check a submit_sm and read what an SMSC acts on, without decoding the rest.

    Raises :class:`PduDecodeError` for anything :func:`decode` would refuse
    (and for a body missing trailing fields, which :func:`decode` fills in:
    use it for such PDUs).
    """
    find = data.find
    end = len(data)
    sequence = int.from_bytes(data[12:16], "big")
    try:
        n = find(b"\0", 16, end)          # service_type
        n = find(b"\0", n + 3, end) if n >= 0 else -1   # source_addr after ton, npi
        p = n + 3
        d = find(b"\0", p, end) if n >= 0 else -1       # destination_addr after ton, npi
        n = find(b"\0", d + 4, end) if d >= 0 else -1   # schedule after esm, pid, priority
        n = find(b"\0", n + 1, end) if n >= 0 else -1   # validity_period
        if n < 0:
            raise PduDecodeError("submit_sm field not NUL-terminated", status=_RINVCMDLEN,
                                 command_id=CommandId.SUBMIT_SM, sequence=sequence)
        registered = data[n + 1]
        pos = n + 6 + data[n + 5]
    except IndexError:
        raise PduDecodeError("submit_sm body is truncated", status=_RINVCMDLEN,
                             command_id=CommandId.SUBMIT_SM, sequence=sequence) from None
    if pos > end:
        raise PduDecodeError("sm_length runs past the PDU", status=_RINVMSGLEN,
                             command_id=CommandId.SUBMIT_SM, sequence=sequence)
    unpack = _TLV_HEAD.unpack_from
    while pos < end:  # check the TLV stream without building Tlv records
        if pos + 4 > end:
            raise PduDecodeError("truncated TLV header", status=_RINVOPTPARSTREAM,
                                 command_id=CommandId.SUBMIT_SM, sequence=sequence)
        pos += 4 + unpack(data, pos)[1]
        if pos > end:
            raise PduDecodeError("TLV runs past the PDU", status=_RINVOPTPARSTREAM,
                                 command_id=CommandId.SUBMIT_SM, sequence=sequence)
    return _new_submit_received(sequence, data[p:d].decode("latin-1"), registered, data)


# --- delivery receipts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReceipt:
    """A delivery receipt (SMSC → ESME deliver_sm or data_sm, esm_class 0x04).

    ``message_id`` is the id as the receipt carries it: the receipted_message_id
    TLV when present, else the ``id:`` of the text form (SMPP 3.4 Appendix B).
    ``state`` comes from the message_state TLV or ``stat:``. Dates are kept as
    sent (``YYMMDDhhmm[ss]`` in the SMSC's local time, with no zone).
    """

    message_id: str
    state: MessageState
    #: The ``err:`` field, or the network_error_code TLV as hex.
    error: str | None = None
    submit_date: str | None = None
    done_date: str | None = None
    #: The receipt's source_addr: the handset the message was for.
    recipient: str = ""
    text: str | None = None
    #: The receipt's own sequence number (answer it with a deliver_sm_resp).
    sequence: int = 0


_STATES: Final[dict[str, MessageState]] = {
    "DELIVRD": MessageState.DELIVERED, "DELIVERED": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED, "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE, "UNDELIVERABLE": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED, "ACCEPTED": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN, "REJECTD": MessageState.REJECTED,
    "REJECTED": MessageState.REJECTED, "ENROUTE": MessageState.ENROUTE,
    "SCHEDULED": MessageState.SCHEDULED, "SKIPPED": MessageState.SKIPPED,
}
_RECEIPT_KEYS: Final = re.compile(
    r"(?i)(?:^|\s)(id|sub|dlvrd|submit date|done date|stat|err|text):")


def is_receipt(pdu: DeliverSm | DataSm) -> bool:
    """True for an SMSC delivery receipt (or intermediate notification)."""
    kind = pdu.esm_class & 0x3C
    return kind in (0x04, 0x20) or tlv_value(pdu.tlvs, TlvTag.RECEIPTED_MESSAGE_ID) is not None


def _receipt_fields(text: str) -> dict[str, str]:
    found = list(_RECEIPT_KEYS.finditer(text))
    fields = {}
    for i, match in enumerate(found):
        stop = found[i + 1].start() if i + 1 < len(found) else len(text)
        key = match.group(1).lower()
        value = text[match.end():stop]
        fields[key] = value if key == "text" else value.strip()
    return fields


def parse_receipt(pdu: DeliverSm | DataSm) -> DeliveryReceipt | None:
    """The delivery receipt carried by ``pdu``, or None if it is not one (or has no id)."""
    if not is_receipt(pdu):
        return None
    body = pdu.payload
    fields = _receipt_fields(body.decode("latin-1")) if body else {}
    raw_id = tlv_value(pdu.tlvs, TlvTag.RECEIPTED_MESSAGE_ID)
    message_id = (raw_id.split(b"\0", 1)[0].decode("latin-1") if raw_id is not None
                  else fields.get("id", ""))
    if not message_id:
        return None
    state_tlv = tlv_value(pdu.tlvs, TlvTag.MESSAGE_STATE)
    if state_tlv is not None and len(state_tlv) == 1 and state_tlv[0] in _STATE_VALUES:
        state = MessageState(state_tlv[0])
    else:
        state = _STATES.get(fields.get("stat", "").upper(), MessageState.UNKNOWN)
    error = fields.get("err")
    network_error = tlv_value(pdu.tlvs, TlvTag.NETWORK_ERROR_CODE)
    if error is None and network_error:
        error = network_error.hex()
    return DeliveryReceipt(message_id=message_id, state=state, error=error,
                           submit_date=fields.get("submit date"),
                           done_date=fields.get("done date"), recipient=pdu.source_addr,
                           text=fields.get("text"), sequence=pdu.sequence)


_STATE_VALUES: Final = frozenset(int(s) for s in MessageState)


def smpp_time(epoch_seconds: float) -> str:
    """An SMPP absolute time in UTC, ``YYMMDDhhmmsst00+`` (SMPP 3.4 §7.1.1)."""
    whole = int(epoch_seconds)
    tenths = int((epoch_seconds - whole) * 10) % 10
    return time.strftime("%y%m%d%H%M%S", time.gmtime(whole)) + f"{tenths}00+"

