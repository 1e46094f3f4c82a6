"""The dispatch plan of a CAP alert: which operator gets which job on which gateway, and why.

:func:`plan` is a pure function (no I/O, no clock: ``now`` is passed, same
inputs give the same plan and the same JSON). It runs between ingest and the
jobs table, inside the transaction that stores the alert's state (outbox):

1. **Areas to geometry** with :func:`geo.areas.alert_geometry` (geocodes per
   :attr:`TargetingPolicy.geocodes`); the area notes become :attr:`Plan.notes`.
2. **Cells per operator** through each operator's :class:`geo.CellIndex`
   (its own index, or one index shared by several operators) with the
   operator's ``min_overlap``; counts and overlap statistics go to
   :attr:`Plan.targeting`.
3. **Texts per language and channel** through :func:`gateways.compose.compose`,
   with each gateway's limits (SMS segments, CBS pages) and the operator's
   languages.
4. **Jobs per operator and gateway** (:class:`PlannedJob`): create, replace or
   stop, with cells, message identifiers, serial number, texts, repetition and
   expiry; :meth:`PlannedJob.to_json` is the ``payload`` of a jobs-table row.
   Every operator/gateway pair considered gets a :class:`Decision` saying why
   it got jobs or not.

Rules:

* Draft and System alerts, Ack and Error messages, and alerts whose scope is
  not Public are never sent: no jobs, one skipped decision per gateway.
* Exercise and Test alerts go only to the gateways, channels and cells an
  operator lists for that status (:class:`StatusPolicy`); with none listed the
  operator gets no job. :func:`plan` checks the result before returning it and
  raises :class:`ExerciseLeak` if any sending job of such an alert would use a
  public channel, a gateway or a cell outside the operator's lists: an
  Exercise can never be sent as Actual.
* A ``cbc-rest`` gateway of the osmo-cbc dialect can only broadcast to the
  operator's whole network (``scope_plmn``): it gets a job only when the
  alert targets every cell of the network.
* Update: what the chain has on the air (folded from the jobs of the
  referenced alerts in :class:`AlertHistory`) is replaced (same message
  identifier and message code, update number + 1) and cells that left the
  area get a stop job. Cancel stops everything the referenced alerts put on
  the air. References the history does not know are flagged
  (``references-unknown``) and the alert is planned as a new one.
* An alert whose every info block has expired at ``now`` plans no sending job
  (decision ``expired``); what its chain has on the air is stopped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from cap.errors import CapcastError
from cap.model import Alert, Info, MsgType, Reference, Scope, Status
from gateways.cbc.ecbe import Dialect
from gateways.channels import (
    TEST_CHANNELS,
    AuthorityChannels,
    GeographicalScope,
    SerialNumber,
    chain_root,
    is_test_channel,
    message_code_for,
)
from gateways.compose import BroadcastText, ComposedAlert, ComposeOptions, SmsText, compose
from gateways.errors import CompositionError
from gateways.text import CBS_MAX_PAGES, normalize_language
from geo.areas import AreaGeometry, GeocodeUse, alert_geometry

if TYPE_CHECKING:
    from geo.geocodes import GeocodeRegistry
    from geo.index import CellIndex, TargetResult

__all__ = [
    "JOB_PAYLOAD_VERSION",
    "Action",
    "AlertHistory",
    "BroadcastScope",
    "Decision",
    "ExerciseLeak",
    "GatewayKind",
    "GatewayPlanInput",
    "OperatorPlanInput",
    "OperatorTargeting",
    "Outcome",
    "Plan",
    "PlanError",
    "PlanNote",
    "PlanOptions",
    "PlannedJob",
    "PriorAlert",
    "Reason",
    "Repetition",
    "StatusPolicy",
    "TargetingPolicy",
    "plan",
]

#: Version of the :meth:`PlannedJob.to_json` layout (stored in every payload).
JOB_PAYLOAD_VERSION: Final = 1

# The ETWS/CMAS identifiers TS 23.041 assigns; inside it only TEST_CHANNELS are for tests.
_PWS_BLOCK: Final = (4352, 4399)
_RESTRICTED: Final = (Status.EXERCISE, Status.TEST)


class PlanError(CapcastError):
    """The plan cannot be made from these inputs (a configuration or history problem)."""


class ExerciseLeak(PlanError):
    """A job of an Exercise or Test alert would reach a public channel or a cell not allowed.

    Never raised for a correct planner: it is the last check before a plan
    leaves :func:`plan`, so that a bug can never put a drill on the air as a
    real warning.
    """

    def __init__(self, message: str, *, operator: str, gateway: str) -> None:
        self.operator = operator
        self.gateway = gateway
        super().__init__(f"{operator}/{gateway}: {message}")


def _require_aware(owner: str, name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{owner}.{name} must be timezone-aware, got {value!r}")


# --- enums ---------------------------------------------------------------------------------


class GatewayKind(Enum):
    """How an operator's gateway delivers (DESIGN.md, the gateways table)."""

    #: HTTP JSON to a cell broadcast centre (ECBE).
    CBC_REST = "cbc-rest"
    #: SMPP 5.0 broadcast_sm through an SMSC/CBC.
    SMPP_BROADCAST = "smpp-broadcast"
    #: SMPP 3.4 submit_sm to the subscribers present in the targeted cells.
    SMPP_SMS = "smpp-sms"

    @property
    def is_broadcast(self) -> bool:
        """True for cell broadcast (message identifiers, pages, repetition)."""
        return self is not GatewayKind.SMPP_SMS


class Action(Enum):
    """What a job does."""

    #: Put a new message on the air (or send the SMS).
    CREATE = "create"
    #: Put a new version of the chain's message on the air (same identifier, next serial);
    #: for SMS: send the update and drop what is still unsent of the earlier jobs.
    REPLACE = "replace"
    #: Stop the broadcast in these cells (for SMS: drop unsent messages to them).
    STOP = "stop"


class BroadcastScope(Enum):
    """Where a job's message goes."""

    #: The listed cells.
    CELLS = "cells"
    #: The operator's whole network (osmo-cbc ``scope_plmn``); the cells are then all of it.
    PLMN = "plmn"


class Outcome(Enum):
    """Whether an operator/gateway pair got jobs."""

    #: At least one job was planned.
    PLANNED = "planned"
    #: No job.
    SKIPPED = "skipped"


class Reason(Enum):
    """Why an operator/gateway pair got the jobs it got (or none)."""

    #: Sending jobs planned (and stops for cells that left, on an Update).
    PLANNED = "planned"
    #: Cancel: the chain's broadcasts on this gateway are stopped.
    CANCELLED = "cancelled"
    #: Cancel (or a skipped Update): nothing of the chain is on the air here.
    NOTHING_TO_STOP = "nothing-to-stop"
    #: Status Draft or System: stored, never sent.
    STATUS_NEVER_SENT = "status-never-sent"
    #: msgType Ack or Error: never sent.
    MSGTYPE_NEVER_SENT = "msgtype-never-sent"
    #: Scope Restricted or Private: not for the public, never broadcast.
    SCOPE_NOT_PUBLIC = "scope-not-public"
    #: Exercise or Test: the operator does not allow this gateway (or any cell) for it.
    NOT_ALLOWED_FOR_STATUS = "not-allowed-for-status"
    #: Exercise or Test: none of the targeted cells is on the operator's list for it.
    NO_ALLOWED_CELLS = "no-allowed-cells"
    #: Exercise or Test: none of the alert's channels is allowed (or a test channel).
    NO_ALLOWED_CHANNEL = "no-allowed-channel"
    #: The area targets no cell of this operator.
    NO_CELLS = "no-cells-targeted"
    #: The gateway is disabled in the configuration: nothing is planned on it.
    GATEWAY_DISABLED = "gateway-disabled"
    #: osmo-cbc dialect: only PLMN-wide messages, and the alert does not cover the network.
    NEEDS_WHOLE_NETWORK = "needs-whole-network"
    #: Every info block has expired at ``now``.
    EXPIRED = "expired"
    #: The alert has no info block: no text to send.
    NO_TEXT = "no-text"
    #: No text fits the gateway's limits (a limit too small for marker and expiry).
    TEXT_DOES_NOT_FIT = "text-does-not-fit"
    #: The history has broadcasts for an operator or gateway that is no longer configured.
    NOT_CONFIGURED = "not-configured"
    #: The operator has no gateway.
    NO_GATEWAYS = "no-gateways"


# --- inputs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayPlanInput:
    """One gateway of an operator, as far as planning needs it."""

    #: Unique within the operator; the jobs table's gateway name.
    name: str
    kind: GatewayKind
    #: A disabled gateway gets no job at all (not even stops).
    enabled: bool = True
    #: ECBE dialect of a ``cbc-rest`` gateway (osmo-cbc: PLMN-wide only); ignored otherwise.
    dialect: Dialect = Dialect.CAPCAST
    #: At most this many SMS segments (``smpp-sms``).
    max_sms_segments: int = 3
    #: At most this many cell-broadcast pages (broadcast kinds).
    max_cbs_pages: int = CBS_MAX_PAGES
    #: Seconds between repetitions of a broadcast.
    repetition_seconds: int = 60
    #: Broadcasts requested; 0 repeats until stopped or expired.
    num_broadcasts: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("gateway name must not be empty")
        if not isinstance(self.kind, GatewayKind):
            valid = ", ".join(k.value for k in GatewayKind)
            raise ValueError(f"gateway {self.name!r}: kind must be a GatewayKind ({valid})")
        if not 1 <= self.max_sms_segments <= 255:
            raise ValueError(f"gateway {self.name!r}: max_sms_segments must be 1..255")
        if not 1 <= self.max_cbs_pages <= CBS_MAX_PAGES:
            raise ValueError(f"gateway {self.name!r}: max_cbs_pages must be 1..{CBS_MAX_PAGES}")
        if self.repetition_seconds < 0 or self.num_broadcasts < 0:
            raise ValueError(f"gateway {self.name!r}: repetition must not be negative")

    @property
    def plmn_wide_only(self) -> bool:
        """True for an osmo-cbc CBC, which only takes ``scope_plmn`` messages."""
        return self.kind is GatewayKind.CBC_REST and self.dialect is Dialect.OSMO_CBC


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusPolicy:
    """Where an operator lets Exercise (or Test) alerts go; the default allows nothing.

    A job is planned only on a gateway named in ``gateways``, only to the
    targeted cells that are in ``cells``, and only on message identifiers that
    are test channels (:func:`gateways.channels.is_test_channel`) and, when
    ``channels`` is not empty, in ``channels``.
    """

    gateways: frozenset[str] = frozenset()
    #: Allowed message identifiers; empty means every test channel.
    channels: frozenset[int] = frozenset()
    #: The allow-list of cell ids; empty means no cell (so no job).
    cells: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for channel in self.channels:
            if not 0 <= channel <= 0xFFFF:
                raise ValueError(f"channel {channel} is outside 0..65535")
            # In the ETWS/CMAS block the standard says which channels are tests.
            if _PWS_BLOCK[0] <= channel <= _PWS_BLOCK[1] and channel not in TEST_CHANNELS:
                raise ValueError(f"channel {channel} is a public ETWS/CMAS channel, "
                                 "not allowed for Exercise or Test alerts")


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorPlanInput:
    """One mobile operator as the planner sees it (the service maps its settings into this)."""

    name: str
    #: MCC-MNC, e.g. ``"262-01"``.
    plmn: str
    #: A CellIndex over this operator's cells, or one shared by several operators.
    index: CellIndex
    #: This operator's name in a shared ``index``; None when the index holds only its cells.
    index_operator: str | None = None
    #: Cells in the operator's whole network; None: ``len(index)`` for an own index,
    #: unknown for a shared one (then an osmo-cbc gateway never gets a job).
    network_cells: int | None = None
    #: False when the inventory lacks some of the network's cells (e.g. crowd-sourced):
    #: then no alert provably covers the whole network, and osmo-cbc gets no job.
    inventory_complete: bool = True
    #: ISO 639-1 languages to send, in order of preference; empty: every language.
    languages: tuple[str, ...] = ()
    gateways: tuple[GatewayPlanInput, ...] = ()
    exercise: StatusPolicy = StatusPolicy()
    test: StatusPolicy = StatusPolicy()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("operator name must not be empty")
        names = [g.name for g in self.gateways]
        if len(set(names)) != len(names):
            raise ValueError(f"operator {self.name!r}: gateway names must be unique: {names}")
        if self.index_operator is not None and self.index_operator not in self.index.operators:
            raise ValueError(f"operator {self.name!r}: index_operator {self.index_operator!r} "
                             f"is not in the index (it has {list(self.index.operators)})")
        if self.network_cells is not None and self.network_cells < 0:
            raise ValueError(f"operator {self.name!r}: network_cells must not be negative")

    @property
    def whole_network(self) -> int | None:
        """The number of cells in the whole network, or None when unknown."""
        if not self.inventory_complete:
            return None
        if self.network_cells is not None:
            return self.network_cells
        return len(self.index) if self.index_operator is None else None

    def policy_for(self, status: Status) -> StatusPolicy | None:
        """The restriction for ``status`` (Exercise, Test), None for Actual."""
        if status is Status.EXERCISE:
            return self.exercise
        if status is Status.TEST:
            return self.test
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetingPolicy:
    """How areas become cells."""

    #: 0: every cell that touches the area; f > 0: cells with at least f of their coverage in it.
    min_overlap: float = 0.0
    #: Per operator name, a min_overlap that replaces the default.
    overrides: Mapping[str, float] = field(default_factory=dict)
    #: How geocodes combine with polygons and circles.
    geocodes: GeocodeUse = GeocodeUse.UNION
    #: Compute overlap statistics for :attr:`Plan.targeting` (costs a clip per cell at 0).
    overlap_stats: bool = True

    def __post_init__(self) -> None:
        for name, value in {"default": self.min_overlap, **self.overrides}.items():
            if not 0.0 <= value <= 1.0 or math.isnan(value):
                raise ValueError(f"min_overlap for {name!r} must be within 0..1, not {value}")

    def min_overlap_for(self, operator: str) -> float:
        """The threshold for ``operator``."""
        return float(self.overrides.get(operator, self.min_overlap))


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOptions:
    """Service-wide choices (from the configuration)."""

    #: Expiry of an info block without ``expires``: from its ``effective`` (else ``sent``).
    default_expiry: timedelta = timedelta(hours=6)
    #: How long a stop job may be retried before it is given up (from ``now``).
    stop_window: timedelta = timedelta(hours=24)
    #: ISO 639-1 language of the base channels; None: each operator's first language.
    primary_language: str | None = None
    #: Per alert sender, its own channel choices (never public ones for drills).
    channel_overrides: Mapping[str, AuthorityChannels] = field(default_factory=dict)
    #: Geographical scope of the serial numbers.
    geo_scope: GeographicalScope = GeographicalScope.PLMN_WIDE
    sms_description: bool = True
    cb_description: bool = True
    show_offset: bool = False

    def __post_init__(self) -> None:
        if self.default_expiry <= timedelta(0) or self.stop_window <= timedelta(0):
            raise ValueError("default_expiry and stop_window must be positive")


# --- jobs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Repetition:
    """How a broadcast repeats."""

    period_seconds: int
    #: Broadcasts requested; 0 repeats until the job is stopped or expires.
    count: int = 0

    def to_json(self) -> dict[str, int]:
        """A JSON-ready dict."""
        return {"period_seconds": self.period_seconds, "count": self.count}


def _ref_json(ref: Reference) -> dict[str, str]:
    return {"sender": ref.sender, "identifier": ref.identifier, "sent": ref.sent.isoformat()}


def _ref_from_json(data: Mapping[str, Any]) -> Reference:
    return Reference(sender=str(data["sender"]), identifier=str(data["identifier"]),
                     sent=datetime.fromisoformat(str(data["sent"])))


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedJob:
    """One job for one operator's gateway: a jobs-table row (``to_json`` is its payload).

    ``cells`` are sorted cell ids. For ``smpp-sms`` they are where the worker
    looks up present subscribers at send time (``recipients_from_presence``).
    ``texts`` are :class:`~gateways.compose.BroadcastText` for broadcast kinds
    (one per message identifier, same order as ``message_identifiers``) and
    :class:`~gateways.compose.SmsText` for SMS (one message per language);
    stop jobs carry none.
    """

    #: Unique within the plan: ``operator/gateway/action[/n]``.
    key: str
    #: The alert this job belongs to (sender, identifier, sent).
    alert: Reference
    status: Status
    operator: str
    plmn: str
    gateway: str
    kind: GatewayKind
    action: Action
    scope: BroadcastScope
    cells: tuple[str, ...]
    recipients_from_presence: bool
    message_identifiers: tuple[int, ...]
    #: The serial number sent (create/replace) or of the message being stopped.
    serial_number: SerialNumber | None
    texts: tuple[BroadcastText | SmsText, ...]
    repetition: Repetition | None
    #: Nothing is sent after this moment (for stops: the deadline to retry them).
    expires_at: datetime
    #: The earlier alerts whose broadcasts this job replaces or stops.
    supersedes: tuple[Reference, ...] = ()

    def __post_init__(self) -> None:
        _require_aware("PlannedJob", "expires_at", self.expires_at)

    @property
    def sends(self) -> bool:
        """True for create and replace (the job puts something on the air)."""
        return self.action is not Action.STOP

    def to_json(self) -> dict[str, Any]:
        """The jobs-table payload: a JSON-ready dict (``json.dumps`` takes it as is)."""
        return {
            "version": JOB_PAYLOAD_VERSION,
            "key": self.key,
            "alert": _ref_json(self.alert),
            "status": self.status.value,
            "operator": self.operator,
            "plmn": self.plmn,
            "gateway": self.gateway,
            "kind": self.kind.value,
            "action": self.action.value,
            "scope": self.scope.value,
            "cells": list(self.cells),
            "recipients_from_presence": self.recipients_from_presence,
            "message_identifiers": list(self.message_identifiers),
            "serial_number": (self.serial_number.to_json()
                              if self.serial_number is not None else None),
            "texts": [text.to_json() for text in self.texts],
            "repetition": self.repetition.to_json() if self.repetition is not None else None,
            "expires_at": self.expires_at.isoformat(),
            "supersedes": [_ref_json(ref) for ref in self.supersedes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlannedJob:
        """Rebuild a job from :meth:`to_json` output (as the store keeps it)."""
        version = data.get("version")
        if version != JOB_PAYLOAD_VERSION:
            raise PlanError(f"job payload version {version!r} is not {JOB_PAYLOAD_VERSION}")
        kind = GatewayKind(data["kind"])
        texts: tuple[BroadcastText | SmsText, ...]
        if kind.is_broadcast:
            texts = tuple(BroadcastText.from_json(t) for t in data["texts"])
        else:
            texts = tuple(SmsText.from_json(t) for t in data["texts"])
        serial = data.get("serial_number")
        repetition = data.get("repetition")
        return cls(
            key=str(data["key"]), alert=_ref_from_json(data["alert"]),
            status=Status(data["status"]), operator=str(data["operator"]),
            plmn=str(data["plmn"]), gateway=str(data["gateway"]), kind=kind,
            action=Action(data["action"]), scope=BroadcastScope(data["scope"]),
            cells=tuple(str(c) for c in data["cells"]),
            recipients_from_presence=bool(data["recipients_from_presence"]),
            message_identifiers=tuple(int(i) for i in data["message_identifiers"]),
            serial_number=SerialNumber.from_json(serial) if serial else None,
            texts=texts,
            repetition=(Repetition(period_seconds=int(repetition["period_seconds"]),
                                   count=int(repetition["count"]))
                        if repetition else None),
            expires_at=datetime.fromisoformat(str(data["expires_at"])),
            supersedes=tuple(_ref_from_json(r) for r in data.get("supersedes", ())),
        )


# --- history -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorAlert:
    """An earlier alert of the chain with the jobs planned for it, as the store keeps them."""

    sender: str
    identifier: str
    sent: datetime
    status: Status
    msg_type: MsgType
    #: The serial number its broadcasts went out with (None if it sent none).
    serial_number: SerialNumber | None
    jobs: tuple[PlannedJob, ...] = ()

    def __post_init__(self) -> None:
        _require_aware("PriorAlert", "sent", self.sent)

    @property
    def reference(self) -> Reference:
        """The alert as a CAP reference."""
        return Reference(sender=self.sender, identifier=self.identifier, sent=self.sent)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertHistory:
    """What the store knows of the alerts an Update or Cancel references.

    ``alerts`` are the referenced alerts it found (any order; the planner
    sorts by ``sent``); a reference missing here is flagged. ``root`` is the
    (sender, identifier) the store recorded as the chain's first alert, if
    known (else the earliest reference).
    """

    alerts: tuple[PriorAlert, ...] = ()
    root: tuple[str, str] | None = None


# --- outputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Why one operator/gateway pair got the jobs it got, or none."""

    operator: str
    #: None for a decision about the operator as a whole (no gateways, not configured).
    gateway: str | None
    kind: GatewayKind | None
    outcome: Outcome
    reason: Reason
    detail: str
    #: Keys of the jobs planned for this pair.
    jobs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"operator": self.operator, "gateway": self.gateway,
                "kind": self.kind.value if self.kind is not None else None,
                "outcome": self.outcome.value, "reason": self.reason.value,
                "detail": self.detail, "jobs": list(self.jobs)}


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorTargeting:
    """What the area targets in one operator's network."""

    operator: str
    min_overlap: float
    #: Cells targeted (before any Exercise/Test allow-list).
    cells: int
    #: Cells of the whole network, None when unknown.
    network_cells: int | None
    #: True when every cell of the network is targeted.
    whole_network: bool
    #: Overlap fraction statistics over the targeted cells (None without cells or stats).
    overlap_min: float | None = None
    overlap_mean: float | None = None
    overlap_max: float | None = None
    #: Targeted cells with at least half of their coverage inside the area.
    mostly_inside: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanNote:
    """Something the plan's reader should know: an area note or a planner flag.

    Codes: the area note codes of :mod:`geo.areas`, and ``references-unknown``
    (no referenced alert is known: planned as a new alert),
    ``references-partly-unknown``, ``reference-status-mismatch`` (a referenced
    alert of another status is left alone), ``language-not-configured``,
    ``channel-conflict`` (two languages on one channel: the later one is dropped).
    """

    code: str
    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {"code": self.code, "path": self.path, "message": self.message}


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Everything :func:`plan` decided for one alert."""

    alert: Reference
    status: Status
    msg_type: MsgType
    #: The serial number of this alert's broadcasts (None when it sends none).
    serial_number: SerialNumber | None
    jobs: tuple[PlannedJob, ...]
    decisions: tuple[Decision, ...]
    targeting: tuple[OperatorTargeting, ...]
    notes: tuple[PlanNote, ...]
    #: Geodesic area of the alert's geometry (0 when none was computed).
    area_km2: float = 0.0

    @property
    def references_unknown(self) -> bool:
        """True when the alert references alerts the history does not know (flagged)."""
        return any(n.code in ("references-unknown", "references-partly-unknown")
                   for n in self.notes)

    def jobs_for(self, operator: str, gateway: str | None = None) -> tuple[PlannedJob, ...]:
        """The jobs of one operator (and gateway)."""
        return tuple(j for j in self.jobs if j.operator == operator
                     and (gateway is None or j.gateway == gateway))

    def decision(self, operator: str, gateway: str | None) -> Decision:
        """The decision for one operator/gateway pair."""
        for decision in self.decisions:
            if decision.operator == operator and decision.gateway == gateway:
                return decision
        raise KeyError((operator, gateway))

    def prior(self) -> PriorAlert:
        """The plan as the history of a later Update or Cancel sees it."""
        return PriorAlert(sender=self.alert.sender, identifier=self.alert.identifier,
                          sent=self.alert.sent, status=self.status, msg_type=self.msg_type,
                          serial_number=self.serial_number, jobs=self.jobs)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the API's "one alert with its plan")."""
        return {
            "alert": _ref_json(self.alert),
            "status": self.status.value,
            "msg_type": self.msg_type.value,
            "serial_number": (self.serial_number.to_json()
                              if self.serial_number is not None else None),
            "area_km2": round(self.area_km2, 3),
            "jobs": [job.to_json() for job in self.jobs],
            "decisions": [d.to_json() for d in self.decisions],
            "targeting": [t.to_json() for t in self.targeting],
            "notes": [n.to_json() for n in self.notes],
        }


# --- the chain: what earlier alerts put on the air ------------------------------------------

# On-air state of one (operator, gateway): per message identifier (None for SMS).
_Slot = dict[int | None, "_OnAir"]


@dataclass(slots=True)
class _OnAir:
    """What one earlier job left on the air for one message identifier (mutable while folding)."""

    cells: set[str]
    serial: SerialNumber | None
    scope: BroadcastScope
    kind: GatewayKind
    plmn: str
    #: The alert whose job put this version on the air.
    ref: Reference


@dataclass(frozen=True, slots=True)
class _Chain:
    priors: tuple[PriorAlert, ...]
    previous_serial: SerialNumber | None
    root: tuple[str, str]
    on_air: dict[tuple[str, str], _Slot]


def _job_keys(job: PlannedJob) -> tuple[int | None, ...]:
    return job.message_identifiers if job.kind.is_broadcast else (None,)


def _fold(priors: Sequence[PriorAlert]) -> dict[tuple[str, str], _Slot]:
    """Replay the earlier alerts' jobs in order: what is on the air now, per gateway and channel."""
    on_air: dict[tuple[str, str], _Slot] = {}
    for prior in priors:
        for job in prior.jobs:
            slot = on_air.setdefault((job.operator, job.gateway), {})
            for ident in _job_keys(job):
                if job.sends:
                    # The message on the air is now this alert's version.
                    slot[ident] = _OnAir(cells=set(job.cells), serial=job.serial_number,
                                         scope=job.scope, kind=job.kind, plmn=job.plmn,
                                         ref=prior.reference)
                elif ident in slot:
                    left = slot[ident]
                    left.cells -= set(job.cells)
                    if not left.cells or job.scope is BroadcastScope.PLMN:
                        del slot[ident]
    return {key: slot for key, slot in on_air.items() if slot}


def _chain(alert: Alert, history: AlertHistory | None, notes: list[PlanNote]) -> _Chain:
    """The earlier alerts an Update or Cancel acts on, and what they left on the air."""
    updating = alert.msg_type in (MsgType.UPDATE, MsgType.CANCEL)
    if not updating:
        return _Chain(priors=(), previous_serial=None, root=chain_root(alert), on_air={})
    known = {p.reference.key: p for p in (history.alerts if history is not None else ())}
    wanted = [ref for ref in alert.references if ref.key != (alert.sender, alert.identifier)]
    found = [known[ref.key] for ref in wanted if ref.key in known]
    missing = [ref for ref in wanted if ref.key not in known]
    if wanted and not found:
        notes.append(PlanNote(code="references-unknown", path="alert/references",
                              message=f"none of the {len(wanted)} referenced alerts is known: "
                                      "planned as a new alert"))
    elif missing:
        names = ", ".join(f"{r.sender},{r.identifier}" for r in missing)
        notes.append(PlanNote(code="references-partly-unknown", path="alert/references",
                              message=f"{len(missing)} referenced alert(s) unknown: {names}"))
    priors: list[PriorAlert] = []
    for prior in found:
        if prior.status is not alert.status:
            # An Exercise must never replace or stop a real warning (nor the reverse).
            notes.append(PlanNote(
                code="reference-status-mismatch", path="alert/references",
                message=f"referenced alert {prior.sender},{prior.identifier} has status "
                        f"{prior.status.value}, this one {alert.status.value}: left alone"))
            continue
        priors.append(prior)
    priors.sort(key=lambda p: (p.sent, p.sender, p.identifier))
    previous = next((p.serial_number for p in reversed(priors) if p.serial_number is not None),
                    None)
    root = (history.root if history is not None and history.root is not None and found
            else (priors[0].reference.key if priors else chain_root(alert)))
    return _Chain(priors=tuple(priors), previous_serial=previous, root=root,
                  on_air=_fold(priors))


# --- targeting -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Targeted:
    cells: tuple[str, ...]
    summary: OperatorTargeting


def _summary(op: OperatorPlanInput, result: TargetResult | None, min_overlap: float,
             stats: bool) -> _Targeted:
    # tolist() makes the Python strings in C, several times faster than str() per cell.
    ids: tuple[str, ...] = tuple(result.cell_ids.tolist()) if result is not None else ()
    network = op.whole_network
    whole = bool(ids) and network is not None and len(ids) == network
    values: dict[str, Any] = {}
    if stats and result is not None and len(ids):
        overlap = np.asarray(result.overlap, dtype=np.float64)
        values = {"overlap_min": round(float(overlap.min()), 6),
                  "overlap_mean": round(float(overlap.mean()), 6),
                  "overlap_max": round(float(overlap.max()), 6),
                  "mostly_inside": int(np.count_nonzero(overlap >= 0.5))}
    return _Targeted(cells=ids, summary=OperatorTargeting(
        operator=op.name, min_overlap=min_overlap, cells=len(ids), network_cells=network,
        whole_network=whole, **values))


def _target(operators: Sequence[OperatorPlanInput], geometry: AreaGeometry | None,
            targeting: TargetingPolicy) -> dict[str, _Targeted]:
    """Cells per operator; operators sharing an index and a threshold share one query."""
    out: dict[str, _Targeted] = {}
    if geometry is None or geometry.is_empty:
        for op in operators:
            out[op.name] = _summary(op, None, targeting.min_overlap_for(op.name), False)
        return out
    groups: dict[tuple[int, float], list[OperatorPlanInput]] = {}
    for op in operators:
        groups.setdefault((id(op.index), targeting.min_overlap_for(op.name)), []).append(op)
    for (_, min_overlap), members in groups.items():
        index = members[0].index
        shared = [op for op in members if op.index_operator is not None]
        own = [op for op in members if op.index_operator is None]
        if shared:
            names = sorted({op.index_operator for op in shared if op.index_operator})
            split = index.target(geometry.geometry, min_overlap, operators=names).by_operator()
            for op in shared:
                out[op.name] = _summary(op, split[op.index_operator or ""], min_overlap,
                                        targeting.overlap_stats)
        if own:
            result = index.target(geometry.geometry, min_overlap)
            for op in own:
                out[op.name] = _summary(op, result, min_overlap, targeting.overlap_stats)
    return out


# --- texts ---------------------------------------------------------------------------------


def _expiry(info: Info, alert: Alert, options: PlanOptions) -> datetime:
    if info.expires is not None:
        return info.expires
    return (info.effective or alert.sent) + options.default_expiry


def _select_infos(infos: Sequence[Info], languages: Sequence[str]) -> tuple[list[Info], str]:
    """The info blocks to send for an operator's languages, in its order of preference."""
    if not languages:
        chosen = infos
        note = ""
    else:
        wanted = [normalize_language(lang) or lang.lower() for lang in languages]
        chosen = sorted((i for i in infos if normalize_language(i.language) in wanted),
                        key=lambda i: wanted.index(normalize_language(i.language) or ""))
        note = ""
        if not chosen:
            chosen = list(infos[:1])
            note = (f"no info block in {', '.join(languages)}: sent in "
                    f"{infos[0].language}" if infos else "")
    # One block per language: a second block of the same language would contend for its channel.
    seen: set[str | None] = set()
    unique: list[Info] = []
    for info in chosen:
        lang = normalize_language(info.language) or info.language
        if lang not in seen:
            seen.add(lang)
            unique.append(info)
    return unique, note


class _Composer:
    """compose() once per distinct (info blocks, primary language, limits): cheap to repeat."""

    def __init__(self, alert: Alert, chain: _Chain, options: PlanOptions,
                 codes_in_use: Collection[int]) -> None:
        self._alert = alert
        self._options = options
        self._previous = chain.previous_serial
        self._root = chain.root
        # A chain that has been on the air keeps its code; a new one takes a free one.
        self._code = (None if chain.previous_serial is not None
                      else message_code_for(*chain.root, in_use=codes_in_use))
        self._cache: dict[tuple[Any, ...], ComposedAlert] = {}

    def _compose(self, infos: Sequence[Info], options: ComposeOptions) -> ComposedAlert:
        return compose(dataclasses.replace(self._alert, infos=tuple(infos)), options=options,
                       previous_serial=self._previous, chain_root=self._root,
                       message_code=self._code)

    def _options_for(self, primary: str | None, gateway: GatewayPlanInput | None
                     ) -> ComposeOptions:
        o = self._options
        return ComposeOptions(
            primary_language=primary, overrides=o.channel_overrides, geo_scope=o.geo_scope,
            sms_description=o.sms_description, cb_description=o.cb_description,
            show_offset=o.show_offset,
            sms_max_segments=gateway.max_sms_segments if gateway is not None else 3,
            cb_max_pages=gateway.max_cbs_pages if gateway is not None else CBS_MAX_PAGES)

    def serial(self) -> SerialNumber | None:
        """The serial number of this alert's broadcasts (every compose call gives the same)."""
        return self._compose((), self._options_for(None, None)).serial_number

    def composed(self, infos: Sequence[Info], primary: str | None,
                 gateway: GatewayPlanInput) -> ComposedAlert:
        """The texts of ``infos`` within ``gateway``'s limits."""
        key = (tuple(id(i) for i in infos), primary, gateway.max_cbs_pages,
               gateway.max_sms_segments)
        if key not in self._cache:
            self._cache[key] = self._compose(infos, self._options_for(primary, gateway))
        return self._cache[key]


# --- planning ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Builder:
    """Collects jobs and decisions in a deterministic order."""

    alert: Alert
    now: datetime
    options: PlanOptions
    serial: SerialNumber | None
    jobs: list[PlannedJob] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    @property
    def ref(self) -> Reference:
        return Reference(sender=self.alert.sender, identifier=self.alert.identifier,
                         sent=self.alert.sent)

    def decide(self, operator: str, gateway: GatewayPlanInput | None, reason: Reason,
               detail: str, jobs: Sequence[PlannedJob] = ()) -> None:
        self.jobs.extend(jobs)
        self.decisions.append(Decision(
            operator=operator, gateway=gateway.name if gateway is not None else None,
            kind=gateway.kind if gateway is not None else None,
            outcome=Outcome.PLANNED if jobs else Outcome.SKIPPED, reason=reason,
            detail=detail, jobs=tuple(j.key for j in jobs)))

    def stops(self, operator: str, gateway: str, slot: _Slot,
              keep: Mapping[int | None, frozenset[str]]) -> list[PlannedJob]:
        """Stop jobs for what is on the air and not kept, grouped by identical cell sets."""
        groups: dict[tuple[tuple[str, ...], SerialNumber | None, BroadcastScope],
                     list[tuple[int | None, _OnAir]]] = {}
        for ident in sorted(slot, key=lambda i: -1 if i is None else i):
            state = slot[ident]
            kept = keep.get(ident, frozenset())
            if state.scope is BroadcastScope.PLMN and kept:
                continue  # a PLMN-wide message is replaced whole, never stopped in part
            left = tuple(sorted(state.cells - kept))
            if left:
                groups.setdefault((left, state.serial, state.scope), []).append((ident, state))
        jobs = []
        for n, ((cells, serial, scope), members) in enumerate(groups.items()):
            first = members[0][1]
            refs = _refs(state for _, state in members)
            jobs.append(PlannedJob(
                key=f"{operator}/{gateway}/stop" + (f"/{n}" if n else ""),
                alert=self.ref, status=self.alert.status, operator=operator, plmn=first.plmn,
                gateway=gateway, kind=first.kind, action=Action.STOP, scope=scope, cells=cells,
                recipients_from_presence=False,
                message_identifiers=tuple(i for i, _ in members if i is not None),
                serial_number=serial, texts=(), repetition=None,
                expires_at=self.now + self.options.stop_window, supersedes=refs))
        return jobs


def _refs(states: Iterable[_OnAir]) -> tuple[Reference, ...]:
    return tuple(sorted({state.ref for state in states},
                        key=lambda r: (r.sent, r.sender, r.identifier)))


def _stop_detail(stops: Sequence[PlannedJob]) -> str:
    if not stops:
        return ""
    cells = sum(len(j.cells) for j in stops)
    return f"; stops {cells} cell(s) of earlier broadcasts"


def _never_sent(alert: Alert) -> tuple[Reason, str] | None:
    if alert.status in (Status.DRAFT, Status.SYSTEM):
        return Reason.STATUS_NEVER_SENT, f"status {alert.status.value}: stored, never sent"
    if alert.msg_type in (MsgType.ACK, MsgType.ERROR):
        return Reason.MSGTYPE_NEVER_SENT, f"msgType {alert.msg_type.value}: never sent"
    if alert.scope is not Scope.PUBLIC:
        return Reason.SCOPE_NOT_PUBLIC, (f"scope {alert.scope.value}: not for the public, "
                                         "never broadcast")
    return None


def plan(alert: Alert, *, operators: Sequence[OperatorPlanInput], targeting: TargetingPolicy,
         now: datetime, history: AlertHistory | None = None,
         registry: GeocodeRegistry | None = None, options: PlanOptions | None = None,
         codes_in_use: Collection[int] = ()) -> Plan:
    """The dispatch plan of ``alert``: jobs per operator and gateway, and every decision.

    Args:
        alert: The accepted CAP alert.
        operators: The operators, their cell indexes, gateways and drill policies.
        targeting: min_overlap (per operator) and geocode use.
        now: The current time (timezone-aware); the planner reads no clock.
        history: For an Update or Cancel: the referenced alerts and their jobs.
        registry: Geocode boundaries (:class:`geo.geocodes.GeocodeRegistry`).
        options: Service-wide choices; defaults if None.
        codes_in_use: Message codes other chains have on the air now; a new
            chain takes a free one (1024 codes: collisions would make handsets
            drop a new alert as a duplicate).

    Raises:
        PlanError: two operators with the same name.
        ExerciseLeak: a job of an Exercise or Test alert would leave its
            operator's allowed gateways, channels or cells (a bug; never expected).

    """
    _require_aware("plan", "now", now)
    opts = options if options is not None else PlanOptions()
    names = [op.name for op in operators]
    if len(set(names)) != len(names):
        raise PlanError(f"operator names must be unique: {names}")
    notes: list[PlanNote] = []
    reference = Reference(sender=alert.sender, identifier=alert.identifier, sent=alert.sent)

    never = _never_sent(alert)
    if never is not None:
        reason, detail = never
        builder = _Builder(alert=alert, now=now, options=opts, serial=None)
        for op in operators:
            for gw in op.gateways:
                builder.decide(op.name, gw, reason, detail)
            if not op.gateways:
                builder.decide(op.name, None, Reason.NO_GATEWAYS, "no gateway configured")
        return Plan(alert=reference, status=alert.status, msg_type=alert.msg_type,
                    serial_number=None, jobs=(), decisions=tuple(builder.decisions),
                    targeting=(), notes=())

    chain = _chain(alert, history, notes)
    composer = _Composer(alert, chain, opts, codes_in_use)
    serial = composer.serial()
    builder = _Builder(alert=alert, now=now, options=opts, serial=serial)
    cancel = alert.msg_type is MsgType.CANCEL
    live = [i for i in alert.infos if _expiry(i, alert, opts) > now]

    geometry: AreaGeometry | None = None
    targeted: dict[str, _Targeted] = {}
    if not cancel and live:
        geometry = alert_geometry(alert, registry=registry, geocodes=targeting.geocodes)
        notes.extend(PlanNote(code=n.code, path=n.path, message=n.message)
                     for n in geometry.notes)
        targeted = _target(operators, geometry, targeting)

    for op in operators:
        _plan_operator(op, alert, builder, chain, composer, live, targeted.get(op.name),
                       notes, opts)
    _leftovers(operators, builder, chain)

    result = Plan(alert=reference, status=alert.status, msg_type=alert.msg_type,
                  serial_number=serial, jobs=tuple(builder.jobs),
                  decisions=tuple(builder.decisions),
                  targeting=tuple(targeted[op.name].summary for op in operators
                                  if op.name in targeted),
                  notes=tuple(dict.fromkeys(notes)),
                  area_km2=geometry.area_km2 if geometry is not None else 0.0)
    _check_restricted(result, operators, opts)
    return result


def _plan_operator(op: OperatorPlanInput, alert: Alert, builder: _Builder, chain: _Chain,
                   composer: _Composer, live: Sequence[Info], targeted: _Targeted | None,
                   notes: list[PlanNote], opts: PlanOptions) -> None:
    if not op.gateways:
        builder.decide(op.name, None, Reason.NO_GATEWAYS, "no gateway configured")
        return
    cancel = alert.msg_type is MsgType.CANCEL
    infos, language_note = _select_infos(live, op.languages) if not cancel else ([], "")
    if language_note:
        notes.append(PlanNote(code="language-not-configured", path="alert/info",
                              message=f"{op.name}: {language_note}"))
    primary = opts.primary_language
    if primary is None and infos:
        primary = normalize_language(infos[0].language)
    policy = op.policy_for(alert.status)
    for gw in op.gateways:
        slot = chain.on_air.get((op.name, gw.name), {})
        if not gw.enabled:
            extra = (f"; {len(slot)} earlier broadcast(s) left on the air" if slot else "")
            builder.decide(op.name, gw, Reason.GATEWAY_DISABLED, "gateway disabled" + extra)
            continue
        reason, detail, send = _gateway_job(op, gw, alert, builder, composer, infos, primary,
                                            targeted, policy, bool(slot), notes, live)
        if send is not None and send.action is Action.REPLACE:
            send = dataclasses.replace(send, supersedes=_refs(slot.values()))
        keep: dict[int | None, frozenset[str]] = {}
        if send is not None:
            cells = frozenset(send.cells)
            for ident in _job_keys(send):
                keep[ident] = cells
        stops = builder.stops(op.name, gw.name, slot, keep)
        jobs = ([send] if send is not None else []) + stops
        if send is None and reason is Reason.CANCELLED and not stops:
            reason, detail = Reason.NOTHING_TO_STOP, "nothing of the chain is on the air here"
        builder.decide(op.name, gw, reason, detail + _stop_detail(stops), jobs)


def _gateway_job(op: OperatorPlanInput, gw: GatewayPlanInput, alert: Alert, builder: _Builder,
                 composer: _Composer, infos: Sequence[Info], primary: str | None,
                 targeted: _Targeted | None, policy: StatusPolicy | None, on_air: bool,
                 notes: list[PlanNote], live: Sequence[Info]
                 ) -> tuple[Reason, str, PlannedJob | None]:
    """The sending job for one gateway, or the reason there is none."""
    if alert.msg_type is MsgType.CANCEL:
        return Reason.CANCELLED, "Cancel: the chain's broadcasts are stopped", None
    if not alert.infos:
        return Reason.NO_TEXT, "the alert has no info block", None
    if not live:
        latest = max(_expiry(i, alert, builder.options) for i in alert.infos)
        return Reason.EXPIRED, f"expired at {latest.isoformat()}", None
    if policy is not None and (gw.name not in policy.gateways or not policy.cells):
        return (Reason.NOT_ALLOWED_FOR_STATUS,
                f"{alert.status.value} alerts are not allowed on this gateway", None)
    cells = targeted.cells if targeted is not None else ()
    if not cells:
        return Reason.NO_CELLS, "the area targets none of this operator's cells", None
    if policy is not None:
        cells = tuple(c for c in cells if c in policy.cells)
        if not cells:
            return (Reason.NO_ALLOWED_CELLS,
                    f"none of the {len(targeted.cells) if targeted else 0} targeted cells is "
                    f"allowed for {alert.status.value}", None)
    network = op.whole_network
    if gw.plmn_wide_only and (network is None or len(cells) != network):
        have = "unknown" if network is None else str(network)
        return (Reason.NEEDS_WHOLE_NETWORK,
                f"osmo-cbc broadcasts PLMN-wide only: {len(cells)} of {have} cells targeted",
                None)
    try:
        composed = composer.composed(infos, primary, gw)
    except CompositionError as exc:
        return Reason.TEXT_DOES_NOT_FIT, str(exc), None
    texts: tuple[BroadcastText | SmsText, ...]
    identifiers: tuple[int, ...] = ()
    if gw.kind.is_broadcast:
        broadcasts = _unique_channels(op, gw, composed.broadcasts, notes)
        if policy is not None:
            broadcasts = tuple(b for b in broadcasts
                               if _allowed_channel(b.message_identifier, policy, alert,
                                                   builder.options))
            if not broadcasts:
                return (Reason.NO_ALLOWED_CHANNEL,
                        f"no channel allowed for {alert.status.value} alerts", None)
        texts = broadcasts
        identifiers = tuple(b.message_identifier for b in broadcasts)
    else:
        texts = composed.sms
    if not texts:
        return Reason.NO_TEXT, "no text for this operator's languages", None
    expires = max(_expiry(i, alert, builder.options) for i in infos)
    action = Action.REPLACE if on_air else Action.CREATE
    job = PlannedJob(
        key=f"{op.name}/{gw.name}/{action.value}", alert=builder.ref, status=alert.status,
        operator=op.name, plmn=op.plmn, gateway=gw.name, kind=gw.kind, action=action,
        scope=BroadcastScope.PLMN if gw.plmn_wide_only else BroadcastScope.CELLS,
        cells=tuple(sorted(cells)), recipients_from_presence=not gw.kind.is_broadcast,
        message_identifiers=identifiers,
        serial_number=builder.serial if gw.kind.is_broadcast else None,
        texts=texts,
        repetition=(Repetition(period_seconds=gw.repetition_seconds, count=gw.num_broadcasts)
                    if gw.kind.is_broadcast else None),
        expires_at=expires, supersedes=())
    detail = (f"{action.value} {len(job.cells)} cell(s), "
              f"{', '.join(_text_label(t) for t in texts)}")
    return Reason.PLANNED, detail, job


def _text_label(text: BroadcastText | SmsText) -> str:
    if isinstance(text, BroadcastText):
        return f"{text.language} on {text.message_identifier}"
    return text.language


def _unique_channels(op: OperatorPlanInput, gw: GatewayPlanInput,
                     texts: Sequence[BroadcastText], notes: list[PlanNote]
                     ) -> tuple[BroadcastText, ...]:
    """One text per message identifier: handsets drop a second message with the same id/serial."""
    kept: dict[int, BroadcastText] = {}
    for text in texts:
        first = kept.get(text.message_identifier)
        if first is None:
            kept[text.message_identifier] = text
        else:
            notes.append(PlanNote(
                code="channel-conflict", path="alert/info",
                message=f"{op.name}/{gw.name}: {text.language} dropped, channel "
                        f"{text.message_identifier} already carries {first.language}"))
    return tuple(kept.values())


def _extra_test_channels(alert: Alert, opts: PlanOptions) -> frozenset[int]:
    authority = opts.channel_overrides.get(alert.sender)
    return authority.test_channels if authority is not None else frozenset()


def _allowed_channel(identifier: int, policy: StatusPolicy, alert: Alert,
                     opts: PlanOptions) -> bool:
    if not is_test_channel(identifier, _extra_test_channels(alert, opts)):
        return False
    return not policy.channels or identifier in policy.channels


def _leftovers(operators: Sequence[OperatorPlanInput], builder: _Builder,
               chain: _Chain) -> None:
    """Decisions for broadcasts of the chain on operators or gateways no longer configured."""
    configured = {(op.name, gw.name) for op in operators for gw in op.gateways}
    for (operator, gateway), slot in sorted(chain.on_air.items()):
        if (operator, gateway) in configured:
            continue
        kind = next(iter(slot.values())).kind
        builder.decisions.append(Decision(
            operator=operator, gateway=gateway, kind=kind, outcome=Outcome.SKIPPED,
            reason=Reason.NOT_CONFIGURED,
            detail=f"{len(slot)} earlier broadcast(s) on a gateway that is no longer "
                   "configured: not stopped"))


def _check_restricted(result: Plan, operators: Sequence[OperatorPlanInput],
                      opts: PlanOptions) -> None:
    """Raise ExerciseLeak unless every job of an Exercise/Test alert stays within its policy."""
    if result.status not in _RESTRICTED:
        return
    by_name = {op.name: op for op in operators}
    extra = opts.channel_overrides.get(result.alert.sender)
    extra_channels = extra.test_channels if extra is not None else frozenset()
    for job in result.jobs:
        public = [i for i in job.message_identifiers if not is_test_channel(i, extra_channels)]
        if public:
            raise ExerciseLeak(f"{result.status.value} job on public channel(s) {public}",
                               operator=job.operator, gateway=job.gateway)
        if not job.sends:
            continue
        op = by_name.get(job.operator)
        policy = op.policy_for(result.status) if op is not None else None
        if policy is None:
            raise ExerciseLeak("no policy for this operator", operator=job.operator,
                               gateway=job.gateway)
        if job.gateway not in policy.gateways:
            raise ExerciseLeak("gateway not allowed", operator=job.operator,
                               gateway=job.gateway)
        if policy.channels and not set(job.message_identifiers) <= policy.channels:
            raise ExerciseLeak("channel not allowed", operator=job.operator,
                               gateway=job.gateway)
        outside = [c for c in job.cells if c not in policy.cells]
        if outside:
            raise ExerciseLeak(f"{len(outside)} cell(s) outside the allow-list",
                               operator=job.operator, gateway=job.gateway)

