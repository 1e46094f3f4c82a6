"""3GPP TS 23.041 cell-broadcast channels: message identifiers and serial numbers for CAP alerts.

* :class:`MessageIdentifier` is the CMAS / EU-Alert table of TS 23.041 §9.4.1.2.2
  (AOSP ``SmsCbConstants``; SPEC-NOTES §3): 4370 presidential / EU-Alert level 1,
  4371-4378 extreme and severe by urgency and certainty, 4379 AMBER, 4380
  required monthly test, 4381 exercise, 4382 operator defined, 4383-4395 the
  same for an additional language, 4396/4397 public safety (EU-Info), 4398/4399
  state/local test.
* :func:`message_identifier` maps a CAP alert (status, event codes, severity,
  urgency, certainty, an optional per-authority override) to one of them.
  Every result passes through :func:`_gate`, the single place that keeps an
  Exercise or Test alert off the public channels.
* :class:`SerialNumber` is the 16-bit serial number of TS 23.041 §9.4.1.2.1:
  geographical scope (2 bits), message code (10 bits), update number (4 bits).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from cap.model import Alert, Certainty, Info, MsgType, Severity, Status, Urgency

__all__ = [
    "ADDITIONAL_LANGUAGE_OFFSET",
    "TEST_CHANNELS",
    "AuthorityChannels",
    "GeographicalScope",
    "MessageIdentifier",
    "SerialNumber",
    "additional_language",
    "chain_root",
    "default_identifier",
    "is_test_channel",
    "message_code_for",
    "message_identifier",
    "serial_number",
]

logger = logging.getLogger(__name__)


class MessageIdentifier(IntEnum):
    """CMAS / EU-Alert message identifiers (TS 23.041 §9.4.1.2.2)."""

    #: Presidential alert / EU-Alert level 1; no opt-out.
    PRESIDENTIAL = 4370
    #: Extreme severity, immediate urgency, observed.
    EXTREME_IMMEDIATE_OBSERVED = 4371
    #: Extreme severity, immediate urgency, likely.
    EXTREME_IMMEDIATE_LIKELY = 4372
    #: Extreme severity, expected urgency, observed.
    EXTREME_EXPECTED_OBSERVED = 4373
    #: Extreme severity, expected urgency, likely.
    EXTREME_EXPECTED_LIKELY = 4374
    #: Severe severity, immediate urgency, observed.
    SEVERE_IMMEDIATE_OBSERVED = 4375
    #: Severe severity, immediate urgency, likely.
    SEVERE_IMMEDIATE_LIKELY = 4376
    #: Severe severity, expected urgency, observed.
    SEVERE_EXPECTED_OBSERVED = 4377
    #: Severe severity, expected urgency, likely.
    SEVERE_EXPECTED_LIKELY = 4378
    #: Child abduction emergency (AMBER) / EU-Amber.
    CHILD_ABDUCTION = 4379
    #: Required monthly test.
    REQUIRED_MONTHLY_TEST = 4380
    #: Exercise.
    EXERCISE = 4381
    #: Operator-defined use.
    OPERATOR_DEFINED = 4382
    #: Presidential alert, additional language.
    PRESIDENTIAL_ADDITIONAL_LANGUAGE = 4383
    #: Extreme, immediate, observed; additional language.
    EXTREME_IMMEDIATE_OBSERVED_ADDITIONAL_LANGUAGE = 4384
    #: Extreme, immediate, likely; additional language.
    EXTREME_IMMEDIATE_LIKELY_ADDITIONAL_LANGUAGE = 4385
    #: Extreme, expected, observed; additional language.
    EXTREME_EXPECTED_OBSERVED_ADDITIONAL_LANGUAGE = 4386
    #: Extreme, expected, likely; additional language.
    EXTREME_EXPECTED_LIKELY_ADDITIONAL_LANGUAGE = 4387
    #: Severe, immediate, observed; additional language.
    SEVERE_IMMEDIATE_OBSERVED_ADDITIONAL_LANGUAGE = 4388
    #: Severe, immediate, likely; additional language.
    SEVERE_IMMEDIATE_LIKELY_ADDITIONAL_LANGUAGE = 4389
    #: Severe, expected, observed; additional language.
    SEVERE_EXPECTED_OBSERVED_ADDITIONAL_LANGUAGE = 4390
    #: Severe, expected, likely; additional language.
    SEVERE_EXPECTED_LIKELY_ADDITIONAL_LANGUAGE = 4391
    #: Child abduction (AMBER); additional language.
    CHILD_ABDUCTION_ADDITIONAL_LANGUAGE = 4392
    #: Required monthly test; additional language.
    REQUIRED_MONTHLY_TEST_ADDITIONAL_LANGUAGE = 4393
    #: Exercise; additional language.
    EXERCISE_ADDITIONAL_LANGUAGE = 4394
    #: Operator-defined use; additional language.
    OPERATOR_DEFINED_ADDITIONAL_LANGUAGE = 4395
    #: Public safety message / EU-Info.
    PUBLIC_SAFETY = 4396
    #: Public safety message / EU-Info; additional language.
    PUBLIC_SAFETY_ADDITIONAL_LANGUAGE = 4397
    #: State/local WEA test.
    STATE_LOCAL_TEST = 4398
    #: State/local WEA test; additional language.
    STATE_LOCAL_TEST_ADDITIONAL_LANGUAGE = 4399


#: 4370-4382 have their additional-language twin 13 higher (4383-4395).
ADDITIONAL_LANGUAGE_OFFSET: Final = 13

#: Channels that carry only tests and exercises: RMT, exercise, state/local test (each in
#: both languages) and the ETWS test channel 4355. Handsets hide them unless the user
#: opted in, which is what makes them safe for Exercise and Test alerts.
TEST_CHANNELS: Final[frozenset[int]] = frozenset({
    MessageIdentifier.REQUIRED_MONTHLY_TEST,
    MessageIdentifier.EXERCISE,
    MessageIdentifier.STATE_LOCAL_TEST,
    MessageIdentifier.REQUIRED_MONTHLY_TEST_ADDITIONAL_LANGUAGE,
    MessageIdentifier.EXERCISE_ADDITIONAL_LANGUAGE,
    MessageIdentifier.STATE_LOCAL_TEST_ADDITIONAL_LANGUAGE,
    4355,  # ETWS test message (0x1103)
})

# The ETWS (4352-4356) and CMAS (4370-4399) identifiers that TS 23.041 assigns.
_PWS_BLOCK: Final = (4352, 4399)

_TABLE: Final[dict[tuple[Severity, Urgency, Certainty], MessageIdentifier]] = {
    (Severity.EXTREME, Urgency.IMMEDIATE, Certainty.OBSERVED):
        MessageIdentifier.EXTREME_IMMEDIATE_OBSERVED,
    (Severity.EXTREME, Urgency.IMMEDIATE, Certainty.LIKELY):
        MessageIdentifier.EXTREME_IMMEDIATE_LIKELY,
    (Severity.EXTREME, Urgency.EXPECTED, Certainty.OBSERVED):
        MessageIdentifier.EXTREME_EXPECTED_OBSERVED,
    (Severity.EXTREME, Urgency.EXPECTED, Certainty.LIKELY):
        MessageIdentifier.EXTREME_EXPECTED_LIKELY,
    (Severity.SEVERE, Urgency.IMMEDIATE, Certainty.OBSERVED):
        MessageIdentifier.SEVERE_IMMEDIATE_OBSERVED,
    (Severity.SEVERE, Urgency.IMMEDIATE, Certainty.LIKELY):
        MessageIdentifier.SEVERE_IMMEDIATE_LIKELY,
    (Severity.SEVERE, Urgency.EXPECTED, Certainty.OBSERVED):
        MessageIdentifier.SEVERE_EXPECTED_OBSERVED,
    (Severity.SEVERE, Urgency.EXPECTED, Certainty.LIKELY):
        MessageIdentifier.SEVERE_EXPECTED_LIKELY,
}

# SAME event codes (47 CFR 11.31) with a fixed channel, whatever the CAP values say.
_SAME_CHANNELS: Final[dict[str, MessageIdentifier]] = {
    "EAN": MessageIdentifier.PRESIDENTIAL,  # Emergency Action Notification
    "CAE": MessageIdentifier.CHILD_ABDUCTION,  # Child Abduction Emergency
    "RMT": MessageIdentifier.REQUIRED_MONTHLY_TEST,
    # Tests and demonstrations sent with status Actual must still stay off public channels.
    "RWT": MessageIdentifier.STATE_LOCAL_TEST,
    "NPT": MessageIdentifier.STATE_LOCAL_TEST,
    "DMO": MessageIdentifier.EXERCISE,
}
# IPAWS WEAHandling parameter values (FEMA IPAWS CAP practice).
_WEA_HANDLING: Final[dict[str, MessageIdentifier | None]] = {
    "presidential": MessageIdentifier.PRESIDENTIAL,
    "child abduction": MessageIdentifier.CHILD_ABDUCTION,
    "public safety": MessageIdentifier.PUBLIC_SAFETY,
    "imminent threat": None,  # by severity, urgency and certainty (see _imminent_threat)
}
_AMBER_EVENT_RE: Final = re.compile(r"\bchild abduction\b|\bamber alert\b", re.IGNORECASE)
# CAP-CP event code list (profile:CAP-CP:Event) value for AMBER alerts.
_CAPCP_AMBER: Final = "amber"


def additional_language(identifier: int) -> int:
    """The additional-language twin of ``identifier`` (4370-4382 → +13, 4396 → 4397, 4398 → 4399).

    Identifiers without a twin (already additional-language ones, national
    channels) are returned unchanged.
    """
    if MessageIdentifier.PRESIDENTIAL <= identifier <= MessageIdentifier.OPERATOR_DEFINED:
        return identifier + ADDITIONAL_LANGUAGE_OFFSET
    if identifier in (MessageIdentifier.PUBLIC_SAFETY, MessageIdentifier.STATE_LOCAL_TEST):
        return identifier + 1
    return identifier


def is_test_channel(identifier: int, extra: Collection[int] = ()) -> bool:
    """Whether ``identifier`` carries only tests/exercises (:data:`TEST_CHANNELS` or ``extra``)."""
    return identifier in TEST_CHANNELS or identifier in extra


def _check_identifier(identifier: int, what: str) -> None:
    if not 0 <= identifier <= 0xFFFF:
        raise ValueError(f"{what}: message identifier {identifier} is outside 0..65535")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorityChannels:
    """One authority's own channel choices, consulted before the default mapping.

    Keyed by the alert's ``sender`` in the ``overrides`` mapping given to
    :func:`message_identifier`. The first match wins: an event code value
    (``"EAN"``, any ``valueName``), then the event name (case-insensitive),
    then ``default``. An override can never put an Exercise or Test alert on a
    public channel: such a choice is ignored and the test channel used (see
    :func:`message_identifier`). ``test_channels`` names extra identifiers this
    authority uses for tests only (e.g. a national test channel below 1000).
    """

    by_event_code: Mapping[str, int] = field(default_factory=dict)
    by_event: Mapping[str, int] = field(default_factory=dict)
    default: int | None = None
    test_channels: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for code, value in self.by_event_code.items():
            _check_identifier(value, f"by_event_code[{code!r}]")
        for event, value in self.by_event.items():
            _check_identifier(value, f"by_event[{event!r}]")
        if self.default is not None:
            _check_identifier(self.default, "default")
        for value in self.test_channels:
            _check_identifier(value, "test_channels")
            # Within the ETWS/CMAS block the standard says which channels are tests; a
            # configuration must not declare a public one (say 4370) a "test channel".
            if _PWS_BLOCK[0] <= value <= _PWS_BLOCK[1] and value not in TEST_CHANNELS:
                raise ValueError(f"test_channels: {value} is a public ETWS/CMAS channel")

    def lookup(self, info: Info | None) -> int | None:
        """The identifier this authority chose for ``info``, or None."""
        if info is not None:
            for pair in info.event_codes:
                if pair.value in self.by_event_code:
                    return self.by_event_code[pair.value]
            wanted = info.event.casefold()
            for event, value in self.by_event.items():
                if event.casefold() == wanted:
                    return value
        return self.default


def _same_codes(info: Info) -> list[str]:
    return [pair.value.strip().upper() for pair in info.event_codes
            if pair.value_name.strip().upper() == "SAME"]


def _is_amber(info: Info) -> bool:
    if any(pair.value_name.startswith("profile:CAP-CP:Event")
           and pair.value.strip().lower() == _CAPCP_AMBER for pair in info.event_codes):
        return True
    return _AMBER_EVENT_RE.search(info.event) is not None


def _imminent_threat(info: Info) -> MessageIdentifier:
    """4371-4378 for an alert its author flagged as an imminent threat.

    Values below the table are raised to its lowest cell (Severe, Expected,
    Likely) since the author asked for an imminent-threat alert.
    """
    severity = info.severity if info.severity is Severity.EXTREME else Severity.SEVERE
    urgency = info.urgency if info.urgency is Urgency.IMMEDIATE else Urgency.EXPECTED
    certainty = info.certainty if info.certainty is Certainty.OBSERVED else Certainty.LIKELY
    return _TABLE[(severity, urgency, certainty)]


def default_identifier(status: Status, info: Info | None) -> int:
    """The channel for an alert without an override (before language and the test gate).

    Order: SAME event codes with a fixed channel (EAN, CAE, RMT, RWT, NPT, DMO);
    status Exercise (4381) or Test (4398); IPAWS ``WEAHandling``; AMBER by the
    CAP-CP event code or the event name; the severity/urgency/certainty table
    (4371-4378); public safety / EU-Info (4396) for everything else.
    """
    if info is not None:
        for code in _same_codes(info):
            if code in _SAME_CHANNELS:
                return _SAME_CHANNELS[code]
    if status is Status.EXERCISE:
        return MessageIdentifier.EXERCISE
    if status is Status.TEST:
        return MessageIdentifier.STATE_LOCAL_TEST
    if info is None:
        return MessageIdentifier.PUBLIC_SAFETY
    handling = (info.parameter("WEAHandling") or "").strip().lower()
    if handling in _WEA_HANDLING:
        chosen = _WEA_HANDLING[handling]
        return chosen if chosen is not None else _imminent_threat(info)
    if _is_amber(info):
        return MessageIdentifier.CHILD_ABDUCTION
    return _TABLE.get((info.severity, info.urgency, info.certainty),
                      MessageIdentifier.PUBLIC_SAFETY)


def _gate(status: Status, identifier: int, *, additional: bool,
          extra_test_channels: Collection[int]) -> int:
    """The one place that keeps Exercise and Test alerts off public channels.

    Every identifier :func:`message_identifier` returns comes through here. For
    an Exercise or Test alert, anything that is not a test channel is replaced
    by the status's own test channel (4381 exercise, 4398 state/local test, or
    their additional-language twins).
    """
    if status not in (Status.EXERCISE, Status.TEST):
        return identifier
    if is_test_channel(identifier, extra_test_channels):
        return identifier
    fallback: int = (MessageIdentifier.EXERCISE if status is Status.EXERCISE
                     else MessageIdentifier.STATE_LOCAL_TEST)
    if additional:
        fallback = additional_language(fallback)
    logger.warning(
        "refused public channel for a non-actual alert",
        extra={"action": "channel_refused", "status": status.value,
               "message_identifier": identifier, "used": fallback},
    )
    return fallback


def message_identifier(alert: Alert, info: Info | None = None, *,
                       additional_language_block: bool = False,
                       overrides: Mapping[str, AuthorityChannels] | None = None) -> int | None:
    """The TS 23.041 message identifier for ``info`` of ``alert``, or None for no broadcast.

    Draft and System alerts, and Ack and Error messages, get None: they are
    never broadcast. ``additional_language_block`` selects the additional-language
    twin (for an info block that is not in the primary language). ``overrides``
    maps an alert ``sender`` to its :class:`AuthorityChannels`.

    An alert with status Exercise or Test never gets a public channel, whatever
    the override says (enforced by :func:`_gate`).
    """
    if alert.status in (Status.DRAFT, Status.SYSTEM):
        return None
    if alert.msg_type in (MsgType.ACK, MsgType.ERROR):
        return None
    authority = (overrides or {}).get(alert.sender)
    chosen = authority.lookup(info) if authority is not None else None
    if chosen is None:
        chosen = default_identifier(alert.status, info)
    if additional_language_block:
        chosen = additional_language(chosen)
    extra = authority.test_channels if authority is not None else frozenset()
    return _gate(alert.status, chosen, additional=additional_language_block,
                 extra_test_channels=extra)


# --- serial numbers -----------------------------------------------------------------------


class GeographicalScope(IntEnum):
    """Serial number bits 15-14: where a message counts as the same message (TS 23.041)."""

    #: Cell wide, immediate display.
    CELL_WIDE_IMMEDIATE = 0
    #: PLMN wide: a handset shows the message once in the whole network.
    PLMN_WIDE = 1
    #: Location / service / tracking area wide.
    LAC_SAC_TAC_WIDE = 2
    #: Cell wide, normal display.
    CELL_WIDE = 3

    @property
    def ecbe_name(self) -> str:
        """The name osmo-cbc's ECBE API uses (``serial_nr_decoded.geo_scope``)."""
        return _ECBE_SCOPE[self]


_ECBE_SCOPE: Final = {
    GeographicalScope.CELL_WIDE_IMMEDIATE: "cell_wide_immediate",
    GeographicalScope.PLMN_WIDE: "plmn_wide",
    GeographicalScope.LAC_SAC_TAC_WIDE: "lac_sac_tac_wide",
    GeographicalScope.CELL_WIDE: "cell_wide",
}
_SCOPE_BY_NAME: Final = {name: scope for scope, name in _ECBE_SCOPE.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialNumber:
    """A CBS serial number (TS 23.041 §9.4.1.2.1), 16 bits.

    A handset treats a message with the same message identifier and serial
    number (within the geographical scope) as a duplicate, so the update number
    must change when the content changes, and the message code must stay the
    same across an alert's Update chain.
    """

    geo_scope: GeographicalScope
    #: 10 bits; the same for every message of one alert's Update chain.
    message_code: int
    #: 4 bits; incremented (mod 16) by each Update.
    update_number: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.message_code <= 0x3FF:
            raise ValueError(f"message_code {self.message_code} is outside 0..1023")
        if not 0 <= self.update_number <= 0xF:
            raise ValueError(f"update_number {self.update_number} is outside 0..15")

    def pack(self) -> int:
        """The 16-bit value: ``scope << 14 | code << 4 | update``."""
        return (int(self.geo_scope) << 14) | (self.message_code << 4) | self.update_number

    @classmethod
    def unpack(cls, value: int) -> SerialNumber:
        """Split a 16-bit serial number into its fields."""
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"serial number {value} is outside 0..65535")
        return cls(geo_scope=GeographicalScope(value >> 14),
                   message_code=(value >> 4) & 0x3FF, update_number=value & 0xF)

    def next_update(self) -> SerialNumber:
        """The serial number of the next Update: same scope and code, update number + 1 mod 16."""
        return SerialNumber(geo_scope=self.geo_scope, message_code=self.message_code,
                            update_number=(self.update_number + 1) % 16)

    def to_json(self) -> dict[str, Any]:
        """A JSON object with the encoded value and the fields (osmo-cbc ECBE names)."""
        return {"encoded": self.pack(), "geo_scope": self.geo_scope.ecbe_name,
                "msg_code": self.message_code, "update_nr": self.update_number}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SerialNumber:
        """The inverse of :meth:`to_json` (the ``encoded`` value wins when present)."""
        if "encoded" in data:
            return cls.unpack(int(data["encoded"]))
        return cls(geo_scope=_SCOPE_BY_NAME[data["geo_scope"]],
                   message_code=int(data["msg_code"]), update_number=int(data["update_nr"]))


def message_code_for(sender: str, identifier: str, *, in_use: Collection[int] = ()) -> int:
    """A 10-bit message code derived from an alert chain's root (sender, identifier).

    A stable hash (BLAKE2b, not Python's salted ``hash``), so every process and
    every restart gives the same code. With only 1024 codes, two live chains can
    collide; pass the codes of the messages still on the air as ``in_use`` and
    the next free code is taken.

    Raises:
        ValueError: all 1024 codes are in use.

    """
    digest = hashlib.blake2b(f"{sender}\x00{identifier}".encode(), digest_size=8).digest()
    code = int.from_bytes(digest, "big") % 1024
    for step in range(1024):
        candidate = (code + step) % 1024
        if candidate not in in_use:
            return candidate
    raise ValueError("all 1024 message codes are in use")


def chain_root(alert: Alert) -> tuple[str, str]:
    """The (sender, identifier) of the first alert of ``alert``'s Update chain, as far as known.

    An Alert is its own root. An Update or Cancel names its predecessors in
    ``references``; the earliest one (by ``sent``) is taken as the root. IPAWS
    requires an Update to reference all related messages, so this is the chain's
    first alert there; elsewhere the caller should pass the root it recorded.
    """
    if alert.msg_type in (MsgType.UPDATE, MsgType.CANCEL) and alert.references:
        first = min(alert.references, key=lambda ref: ref.sent)
        return first.key
    return (alert.sender, alert.identifier)


def serial_number(alert: Alert, *, previous: SerialNumber | int | None = None,
                  root: tuple[str, str] | None = None, message_code: int | None = None,
                  geo_scope: GeographicalScope | None = None,
                  in_use: Collection[int] = ()) -> SerialNumber:
    """The serial number for ``alert``.

    * With ``previous`` (the serial number the chain's last message went out
      with): an Update or Cancel gets the next update number (mod 16) and the
      same message code; an Alert (a repeat of the same message) keeps it.
    * Without it: the message code comes from ``message_code`` or the chain's
      root (``root``, else :func:`chain_root`) through :func:`message_code_for`;
      the update number is 0 for an Alert and, for an Update or Cancel, the number
      of messages it references (mod 16), since IPAWS-style Updates reference
      every earlier message of the chain.

    ``geo_scope`` defaults to the previous serial's scope, else PLMN wide.
    """
    if isinstance(previous, int):
        previous = SerialNumber.unpack(previous)
    if previous is not None:
        scope = geo_scope if geo_scope is not None else previous.geo_scope
        update = previous.update_number
        if alert.msg_type in (MsgType.UPDATE, MsgType.CANCEL):
            update = (update + 1) % 16
        return SerialNumber(geo_scope=scope, message_code=previous.message_code,
                            update_number=update)
    scope = geo_scope if geo_scope is not None else GeographicalScope.PLMN_WIDE
    if message_code is None:
        sender, identifier = root if root is not None else chain_root(alert)
        message_code = message_code_for(sender, identifier, in_use=in_use)
    update = 0
    if alert.msg_type in (MsgType.UPDATE, MsgType.CANCEL):
        update = len(alert.references) % 16
    return SerialNumber(geo_scope=scope, message_code=message_code, update_number=update)
