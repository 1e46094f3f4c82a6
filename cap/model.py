"""The CAP 1.2 data model: every element as a frozen dataclass, every code list as an Enum.

Older CAP versions (1.0, 1.1) are upgraded to this model by the parser. A
model object is always structurally valid CAP 1.2: values that break a rule
never reach it (the parser reports them as findings instead). Datetimes are
timezone-aware; polygons and circles keep CAP's latitude-first order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

CAP12_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP11_NS = "urn:oasis:names:tc:emergency:cap:1.1"
CAP10_NS = "http://www.incident.com/cap/1.0"
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


class Status(Enum):
    """alert/status: who should act on the alert."""

    #: Actionable by all targeted recipients.
    ACTUAL = "Actual"
    #: Only designated exercise participants act on it.
    EXERCISE = "Exercise"
    #: For messages that support alert network internal functions.
    SYSTEM = "System"
    #: Technical testing only; all recipients disregard it.
    TEST = "Test"
    #: A preliminary template or draft, not actionable.
    DRAFT = "Draft"


class MsgType(Enum):
    """alert/msgType: the nature of the alert message."""

    #: Initial information requiring attention.
    ALERT = "Alert"
    #: Updates and supersedes the messages in references.
    UPDATE = "Update"
    #: Cancels the messages in references.
    CANCEL = "Cancel"
    #: Acknowledges receipt of the messages in references.
    ACK = "Ack"
    #: Rejects the messages in references; the reason is in note.
    ERROR = "Error"


class Scope(Enum):
    """alert/scope: the intended distribution."""

    #: For general dissemination to unrestricted audiences.
    PUBLIC = "Public"
    #: For users with a known operational need (see restriction).
    RESTRICTED = "Restricted"
    #: For the addressees listed in addresses.
    PRIVATE = "Private"


class Category(Enum):
    """info/category."""

    #: Geophysical (including landslide).
    GEO = "Geo"
    #: Meteorological (including flood).
    MET = "Met"
    #: General emergency and public safety.
    SAFETY = "Safety"
    #: Law enforcement, military, homeland and local/private security.
    SECURITY = "Security"
    #: Rescue and recovery.
    RESCUE = "Rescue"
    #: Fire suppression and rescue.
    FIRE = "Fire"
    #: Medical and public health.
    HEALTH = "Health"
    #: Pollution and other environmental.
    ENV = "Env"
    #: Public and private transportation.
    TRANSPORT = "Transport"
    #: Utility, telecommunication, other non-transport infrastructure.
    INFRA = "Infra"
    #: Chemical, biological, radiological, nuclear or high-yield explosive.
    CBRNE = "CBRNE"
    #: Other events.
    OTHER = "Other"


class ResponseType(Enum):
    """info/responseType: the action recommended."""

    #: Take shelter in place or per instruction.
    SHELTER = "Shelter"
    #: Relocate as instructed in the instruction.
    EVACUATE = "Evacuate"
    #: Make preparations per the instruction.
    PREPARE = "Prepare"
    #: Execute a pre-planned activity identified in instruction.
    EXECUTE = "Execute"
    #: Avoid the subject event as per the instruction.
    AVOID = "Avoid"
    #: Attend to information sources as described in instruction.
    MONITOR = "Monitor"
    #: Evaluate the information in this message (not for public warnings).
    ASSESS = "Assess"
    #: The subject event no longer poses a threat.
    ALL_CLEAR = "AllClear"
    #: No action recommended.
    NONE = "None"


class Urgency(Enum):
    """info/urgency."""

    #: Responsive action should be taken immediately.
    IMMEDIATE = "Immediate"
    #: Responsive action should be taken soon (within the next hour).
    EXPECTED = "Expected"
    #: Responsive action should be taken in the near future.
    FUTURE = "Future"
    #: Responsive action is no longer required.
    PAST = "Past"
    #: Urgency not known.
    UNKNOWN = "Unknown"


class Severity(Enum):
    """info/severity."""

    #: Extraordinary threat to life or property.
    EXTREME = "Extreme"
    #: Significant threat to life or property.
    SEVERE = "Severe"
    #: Possible threat to life or property.
    MODERATE = "Moderate"
    #: Minimal to no known threat to life or property.
    MINOR = "Minor"
    #: Severity unknown.
    UNKNOWN = "Unknown"


class Certainty(Enum):
    """info/certainty."""

    #: Determined to have occurred or to be ongoing.
    OBSERVED = "Observed"
    #: Likely (p > ~50%).
    LIKELY = "Likely"
    #: Possible but not likely (p <= ~50%).
    POSSIBLE = "Possible"
    #: Not expected to occur (p ~ 0).
    UNLIKELY = "Unlikely"
    #: Certainty unknown.
    UNKNOWN = "Unknown"


def _require_aware(owner: str, **values: datetime | None) -> None:
    for name, value in values.items():
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(f"{owner}.{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ValuePair:
    """A (valueName, value) pair: eventCode, parameter and geocode."""

    value_name: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """One ``sender,identifier,sent`` triplet of alert/references."""

    sender: str
    identifier: str
    sent: datetime

    def __post_init__(self) -> None:
        _require_aware("Reference", sent=self.sent)

    @property
    def key(self) -> tuple[str, str]:
        """The (sender, identifier) pair that names the referenced alert."""
        return (self.sender, self.identifier)


@dataclass(frozen=True, slots=True, kw_only=True)
class Polygon:
    """A closed ring of (latitude, longitude) points in WGS 84, as CAP writes them."""

    points: tuple[tuple[float, float], ...]

    @property
    def lonlat(self) -> tuple[tuple[float, float], ...]:
        """The ring as (longitude, latitude) pairs, the order GIS libraries use."""
        return tuple((lon, lat) for lat, lon in self.points)


@dataclass(frozen=True, slots=True, kw_only=True)
class Circle:
    """A circle: centre latitude and longitude (WGS 84) and radius in kilometres."""

    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Area:
    """info/area: a geographic area the info block applies to."""

    area_desc: str
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[ValuePair, ...] = ()
    #: Feet above mean sea level.
    altitude: float | None = None
    #: Feet above mean sea level; only with altitude.
    ceiling: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """info/resource: a file with supplemental information."""

    resource_desc: str
    mime_type: str
    size: int | None = None
    uri: str | None = None
    deref_uri: str | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Info:
    """alert/info: the event, its urgency, what to do and where (one per language)."""

    language: str = "en-US"
    categories: tuple[Category, ...]
    event: str
    response_types: tuple[ResponseType, ...] = ()
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    audience: str | None = None
    event_codes: tuple[ValuePair, ...] = ()
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[ValuePair, ...] = ()
    resources: tuple[Resource, ...] = ()
    areas: tuple[Area, ...] = ()

    def __post_init__(self) -> None:
        _require_aware("Info", effective=self.effective, onset=self.onset, expires=self.expires)

    def parameter(self, name: str) -> str | None:
        """The value of the first parameter called ``name``, or None."""
        for pair in self.parameters:
            if pair.value_name == name:
                return pair.value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """A CAP alert message."""

    identifier: str
    sender: str
    sent: datetime
    status: Status
    msg_type: MsgType
    source: str | None = None
    scope: Scope
    restriction: str | None = None
    addresses: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    note: str | None = None
    references: tuple[Reference, ...] = ()
    incidents: tuple[str, ...] = ()
    infos: tuple[Info, ...] = ()
    #: True when the alert carries an XML signature (ds:Signature); see cap.signature.
    signed: bool = False

    def __post_init__(self) -> None:
        _require_aware("Alert", sent=self.sent)

    @property
    def key(self) -> tuple[str, str, datetime]:
        """(sender, identifier, sent): what identifies an alert across systems."""
        return (self.sender, self.identifier, self.sent)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages of the info blocks, in document order, without repeats."""
        return tuple(dict.fromkeys(info.language for info in self.infos))
