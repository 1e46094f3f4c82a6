"""The service's configuration: one TOML file plus ``CAPCAST_*`` variables, read once.

:func:`load_settings` reads the configuration file (TOML, see
``ops/capcast.example.toml`` and ``docs/configuration.md``), applies the
environment variables and the secrets, checks everything and returns a
frozen :class:`Settings`. Every problem is collected before anything is
raised: :class:`ConfigError` lists all of them, each naming the key path
(``operators[1].gateways[0].window``), where the value came from (the file and
line, or the environment variable) and what to do.

Precedence, strongest first: ``overrides`` (command-line options), the
environment, the secrets file (only for the database URL), the configuration
file, the defaults. Without any file the defaults give a working service on
this machine: an embedded PostgreSQL in the data folder and the HTTP API on
``127.0.0.1:8080``.

Secrets (SMPP passwords, token hashes, credentials for CBCs and feeds, a
database URL with a password) never live in the configuration file: the file
names a secret (``password_secret = "opa_smpp"``) and the value comes from
the environment variable ``CAPCAST_SECRET_OPA_SMPP`` or the ``[secrets]``
table of the secrets file (``CAPCAST_SECRETS_FILE`` or ``--secrets``), a file
only its owner can read. A password in the configuration file is an error that
says where to put it. :class:`Secret` values print as ``***``;
:meth:`Settings.redacted` is the settings as plain data, safe to print.

Environment variables (all optional):

==============================  ==============================================
``CAPCAST_CONFIG``              the configuration file, when none is given
``CAPCAST_SECRETS_FILE``        the secrets file, when none is given
``CAPCAST_DATA_DIR``            ``data_dir``
``CAPCAST_DATABASE_URL``        ``database.url`` (may hold a password)
``CAPCAST_HTTP_HOST``           ``http.host``
``CAPCAST_HTTP_PORT``           ``http.port``
``CAPCAST_<SECTION>__<KEY>``    any key of ``[database]``, ``[http]`` or
                                ``[targeting]`` (note the double underscore),
                                e.g. ``CAPCAST_HTTP__MAX_BODY_BYTES``
``CAPCAST_SECRET_<NAME>``       the secret called ``<name>`` (lower case)
==============================  ==============================================

Other ``CAPCAST_*`` variables without a double underscore are not
configuration (the test suite and scripts use a few) and are ignored; one with
a double underscore that names no key is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import hashlib
import hmac
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeAlias, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import platformdirs

from cap.errors import CapcastError
from cap.model import Status
from cap.profiles import PROFILES
from gateways.channels import TEST_CHANNELS, AuthorityChannels

__all__ = [
    "AuthoritySettings",
    "BindMode",
    "CbcDialect",
    "CbcRestGateway",
    "ConfigError",
    "DatabaseSettings",
    "FeedSettings",
    "Gateway",
    "GatewayKind",
    "Geocode",
    "GeocodePolicy",
    "HttpSettings",
    "Jurisdiction",
    "JurisdictionPolicy",
    "OperatorSettings",
    "Problem",
    "Role",
    "Secret",
    "Settings",
    "SmppBroadcastGateway",
    "SmppGateway",
    "SmppSmsGateway",
    "StatusHandling",
    "TargetingPolicy",
    "TargetingSettings",
    "TokenSettings",
    "default_data_dir",
    "hash_token",
    "load_settings",
]

E = TypeVar("E", bound=enum.Enum)

# -- errors ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with the configuration."""

    #: The key path, e.g. ``operators[1].gateways[0].window``; empty for a whole file.
    key: str
    #: What is wrong and, where it helps, what to do.
    message: str
    #: The file, or ``environment variable CAPCAST_HTTP_PORT``; None for a default.
    source: str | None = None
    #: 1-based line in ``source`` when known.
    line: int | None = None

    def __str__(self) -> str:
        where = self.source or ""
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        return ": ".join(part for part in (where, self.key, self.message) if part)


class ConfigError(CapcastError):
    """The configuration is unusable; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        if len(self.problems) == 1:
            return f"configuration error: {self.problems[0]}"
        lines = "".join(f"\n  {problem}" for problem in self.problems)
        return f"{len(self.problems)} configuration problems:{lines}"


# -- enums -------------------------------------------------------------------------------


class Role(enum.Enum):
    """What the holder of a bearer token may do."""

    #: Publish (and cancel) the alerts of one authority.
    AUTHORITY = "authority"
    #: Emergency manager: drills and cancels, for one authority or for all.
    MANAGER = "manager"
    #: A mobile operator: read its own jobs, upload presence and cell inventory.
    OPERATOR = "operator"
    #: Everything, including the configuration views and the audit log.
    ADMIN = "admin"


class JurisdictionPolicy(enum.Enum):
    """What happens to an alert whose area reaches outside its authority's jurisdiction."""

    #: Refuse the alert.
    REJECT = "reject"
    #: Accept it, clip the area to the jurisdiction and record a warning.
    CLIP = "clip"


class GeocodePolicy(enum.Enum):
    """How CAP geocodes combine with polygons and circles (values of ``geo.areas.GeocodeUse``)."""

    #: The area is the union of its polygons, circles and geocodes (CAP 1.2's reading).
    UNION = "union"
    #: Geocodes only for areas with neither polygon nor circle (the IPAWS/WEA rule).
    FALLBACK = "fallback"


class GatewayKind(enum.Enum):
    """How an operator's gateway is reached."""

    #: Cell broadcast through an ECBE REST interface of a CBC.
    CBC_REST = "cbc-rest"
    #: Cell broadcast through SMPP 5.0 ``broadcast_sm``.
    SMPP_BROADCAST = "smpp-broadcast"
    #: Location-based SMS through SMPP 3.4 ``submit_sm``.
    SMPP_SMS = "smpp-sms"


class CbcDialect(enum.Enum):
    """The ECBE variant a CBC speaks (values of ``gateways.cbc.ecbe.Dialect``)."""

    #: osmo-cbc: PLMN-wide scope only, no replace.
    OSMO_CBC = "osmo-cbc"
    #: capcast's extension: cell lists and replace.
    CAPCAST = "capcast"


class BindMode(enum.Enum):
    """How an SMPP link binds (values of ``gateways.smpp.client.BindMode``)."""

    #: Submit and receive receipts on one link.
    TRANSCEIVER = "transceiver"
    #: Submit only.
    TRANSMITTER = "transmitter"


# -- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Secret:
    """A secret value with where it came from; prints as ``***``."""

    value: str = field(repr=False)
    #: ``environment variable CAPCAST_SECRET_X`` or ``<secrets file> (x)``.
    source: str

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return f"Secret('***', source={self.source!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseSettings:
    """``[database]``: where the store lives."""

    #: A ``postgresql://`` URL; None starts an embedded PostgreSQL in the data folder.
    url: Secret | None = None
    #: Connections the pool keeps open.
    pool_min: int = 1
    #: Connections the pool opens at most.
    pool_max: int = 10
    #: Seconds a statement may run (0: no limit).
    statement_timeout: float = 30.0
    #: Seconds to wait for a connection.
    connect_timeout: float = 10.0

    @property
    def embedded(self) -> bool:
        """Whether the service runs its own PostgreSQL (no URL configured)."""
        return self.url is None

    @property
    def display_url(self) -> str | None:
        """The URL with any password replaced by ``***``, for logs."""
        return None if self.url is None else _mask_url(self.url.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """``[http]``: the HTTP API's listening socket and limits."""

    host: str = "127.0.0.1"
    #: TCP port; 0 picks a free one (tests).
    port: int = 8080
    #: Request bodies above this size are refused before parsing.
    max_body_bytes: int = 1 << 20
    #: The URL clients use (behind a reverse proxy); None: derived from host and port.
    public_url: str | None = None

    @property
    def base_url(self) -> str:
        """``public_url``, else ``http://host:port``."""
        if self.public_url is not None:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetingPolicy:
    """How an alert area becomes cells (globally, or for one operator)."""

    #: Keep cells whose covered fraction is at least this (0: every intersecting cell).
    min_overlap: float = 0.0
    #: How geocodes combine with polygons and circles.
    geocodes: GeocodePolicy = GeocodePolicy.UNION


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetingSettings:
    """``[targeting]``: the default policy and where boundary files for geocodes are."""

    #: The default for operators that set none (see :class:`TargetingPolicy`).
    min_overlap: float = 0.0
    geocodes: GeocodePolicy = GeocodePolicy.UNION
    #: A folder of boundary files laid out like ``tests/geodata``; None: geocodes unresolved.
    geodata_dir: Path | None = None

    @property
    def policy(self) -> TargetingPolicy:
        """The default policy."""
        return TargetingPolicy(min_overlap=self.min_overlap, geocodes=self.geocodes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Geocode:
    """A CAP geocode, ``valueName:value`` (``SAME:006037``)."""

    value_name: str
    value: str

    def __str__(self) -> str:
        return f"{self.value_name}:{self.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Jurisdiction:
    """The area an authority may warn: a GeoJSON file or a list of geocodes (one of them)."""

    file: Path | None = None
    geocodes: tuple[Geocode, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthoritySettings:
    """``[[authorities]]``: an alerting authority and what it may publish."""

    #: The CAP ``<sender>`` of its alerts.
    sender: str
    #: A name for people (console, reports).
    name: str
    #: The CAP validation profile (a key of ``cap.profiles.PROFILES``).
    profile: str = "oasis"
    #: The CAP statuses it may publish.
    statuses: tuple[Status, ...] = (Status.ACTUAL, Status.EXERCISE, Status.TEST)
    #: Where it may warn; None: anywhere.
    jurisdiction: Jurisdiction | None = None
    jurisdiction_policy: JurisdictionPolicy = JurisdictionPolicy.REJECT
    #: Whether its alerts must carry a valid XML signature.
    signature_required: bool = False
    #: PEM bundle (or folder) its signing certificates must chain to.
    trust_store: Path | None = None
    #: Its own cell-broadcast channel choices (``gateways.channels``), if any.
    channels: AuthorityChannels | None = None
    #: Names of the tokens (see :class:`TokenSettings`) that publish as this authority.
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CbcRestGateway:
    """A cell broadcast centre reached over ECBE REST (``kind = "cbc-rest"``)."""

    kind: ClassVar[GatewayKind] = GatewayKind.CBC_REST
    name: str
    enabled: bool = True
    #: Base URL of the CBC; requests go to ``url + /api/ecbe/v1/...``.
    url: str
    dialect: CbcDialect = CbcDialect.CAPCAST
    #: Our cell broadcast entity name.
    cbe_name: str = "capcast"
    #: Seconds to wait for each answer, and for a connection.
    timeout: float = 60.0
    connect_timeout: float = 10.0
    #: Retries after a lost answer, a failed connection or a 500.
    retries: int = 2
    #: Seconds between repetitions on the air (CBSP units of 1.883 s).
    repetition: float = 60.0
    #: Broadcasts in all; 0: repeat until the alert expires or is cancelled.
    num_broadcasts: int = 0
    #: An ``Authorization`` header value for a reverse proxy in front of the CBC.
    authorization: Secret | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SmppGateway:
    """What the SMPP gateway kinds share: the links to the SMSC."""

    kind: ClassVar[GatewayKind]
    name: str
    enabled: bool = True
    host: str
    port: int = 2775
    system_id: str
    #: None only for a disabled gateway whose secret is absent.
    password: Secret | None = None
    system_type: str = ""
    bind: BindMode = BindMode.TRANSCEIVER
    #: Requests outstanding at once, per link.
    window: int = 64
    #: Messages per second for the whole gateway (shared by its links); None: no limit.
    throughput: float | None = None
    #: Binds opened in parallel with the same account.
    links: int = 1
    #: Seconds of idle link before an enquire_link.
    enquire_link: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 10.0
    #: The source address (``source_addr``); empty lets the SMSC choose.
    source: str = ""
    #: TON and NPI of the source; None derives them from the address.
    source_ton: int | None = None
    source_npi: int | None = None

    @property
    def link_throughput(self) -> float | None:
        """Messages per second per link (``throughput`` shared equally)."""
        return None if self.throughput is None else self.throughput / self.links


@dataclass(frozen=True, slots=True, kw_only=True)
class SmppBroadcastGateway(SmppGateway):
    """Cell broadcast through an SMSC speaking SMPP 5.0 (``kind = "smpp-broadcast"``)."""

    kind: ClassVar[GatewayKind] = GatewayKind.SMPP_BROADCAST
    #: Seconds between repetitions (``broadcast_frequency_interval``); None: the SMSC's.
    repetition: float | None = None
    #: Broadcasts in all (``broadcast_rep_num``); 0: until expiry or cancel.
    num_broadcasts: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SmppSmsGateway(SmppGateway):
    """Location-based SMS through SMPP 3.4 ``submit_sm`` (``kind = "smpp-sms"``)."""

    kind: ClassVar[GatewayKind] = GatewayKind.SMPP_SMS
    #: Longer texts are shortened to this many segments.
    max_segments: int = 3
    #: Whether delivery receipts are requested.
    registered_delivery: bool = True


Gateway: TypeAlias = CbcRestGateway | SmppBroadcastGateway | SmppSmsGateway


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusHandling:
    """How an operator handles alerts of status Exercise (or Test).

    Such alerts go only through ``gateways``, only on ``channels`` (when given)
    and only to targeted cells in ``cells`` (when given). With no gateway they
    are stored and never sent, which is the default.
    """

    #: Names of this operator's gateways that carry them.
    gateways: tuple[str, ...] = ()
    #: Cell-broadcast message identifiers allowed (all test channels); empty: the mapping's.
    channels: tuple[int, ...] = ()
    #: The only cells they may reach (inline list and ``cells_file``); None: any targeted cell.
    cells: frozenset[str] | None = None
    cells_file: Path | None = None

    @property
    def sent(self) -> bool:
        """Whether such alerts are sent at all."""
        return bool(self.gateways)


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorSettings:
    """``[[operators]]``: a mobile network and its gateways."""

    #: Short unique name, used in the API and in logs.
    name: str
    display_name: str
    #: ``MCC-MNC``, e.g. ``262-01``.
    plmn: str
    #: A cell inventory (GeoParquet) loaded at start-up; None: uploaded through the API.
    inventory: Path | None = None
    #: Languages to send, in order of preference (the first is primary); empty: the alert's.
    languages: tuple[str, ...] = ()
    #: Its targeting policy (the ``[targeting]`` defaults with its own overrides).
    targeting: TargetingPolicy = field(default_factory=TargetingPolicy)
    gateways: tuple[Gateway, ...] = ()
    exercise: StatusHandling = field(default_factory=StatusHandling)
    test: StatusHandling = field(default_factory=StatusHandling)

    def gateway(self, name: str) -> Gateway | None:
        """The gateway called ``name``, or None."""
        return next((gw for gw in self.gateways if gw.name == name), None)

    def handling(self, status: Status) -> StatusHandling | None:
        """The Exercise or Test handling for ``status``; None for the other statuses."""
        return {Status.EXERCISE: self.exercise, Status.TEST: self.test}.get(status)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSettings:
    """``[[feeds]]``: a CAP / Atom / RSS feed polled for alerts of one authority."""

    url: str
    #: The sender of the authority its alerts belong to.
    authority: str
    #: Seconds between polls.
    interval: float = 60.0
    #: Whether polls send If-None-Match / If-Modified-Since.
    conditional: bool = True
    timeout: float = 30.0
    enabled: bool = True
    #: An ``Authorization`` header value for the feed.
    authorization: Secret | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSettings:
    """A bearer token: its role, what it is bound to and the SHA-256 of the token."""

    #: A label for the audit log (the secret's name unless given).
    name: str
    role: Role
    #: The authority (sender) it acts for: required for ``authority``, optional for ``manager``.
    authority: str | None = None
    #: The operator it acts for (role ``operator`` only).
    operator: str | None = None
    #: The name of the secret holding the hash.
    secret: str
    sha256: bytes = field(repr=False)

    def matches(self, token: str) -> bool:
        """Whether ``token`` is this token (constant-time comparison)."""
        return hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self.sha256)


def default_data_dir() -> Path:
    """The per-user data folder (``~/.local/share/capcast`` on Linux, via platformdirs)."""
    return platformdirs.user_data_path("capcast", appauthor=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The whole configuration, validated; build it with :func:`load_settings`."""

    #: The configuration file read, if any.
    config_file: Path | None = None
    #: The secrets file read, if any.
    secrets_file: Path | None = None
    #: Where the embedded database, uploads and caches live.
    data_dir: Path = field(default_factory=default_data_dir)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    targeting: TargetingSettings = field(default_factory=TargetingSettings)
    authorities: tuple[AuthoritySettings, ...] = ()
    operators: tuple[OperatorSettings, ...] = ()
    feeds: tuple[FeedSettings, ...] = ()
    tokens: tuple[TokenSettings, ...] = ()

    @property
    def postgres_dir(self) -> Path:
        """The embedded PostgreSQL's folder (used when no database URL is set)."""
        return self.data_dir / "postgres"

    def authority(self, sender: str) -> AuthoritySettings | None:
        """The authority whose CAP sender is ``sender``, or None."""
        return next((a for a in self.authorities if a.sender == sender), None)

    def operator(self, name: str) -> OperatorSettings | None:
        """The operator called ``name`` (case-insensitive), or None."""
        wanted = name.casefold()
        return next((o for o in self.operators if o.name.casefold() == wanted), None)

    def find_token(self, token: str) -> TokenSettings | None:
        """The configured token that ``token`` is, or None.

        Compares with every configured hash in constant time, so the answer
        takes as long whether or not (and wherever) it matches.
        """
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for candidate in self.tokens:
            if hmac.compare_digest(digest, candidate.sha256):
                found = candidate
        return found

    def redacted(self) -> dict[str, Any]:
        """The settings as JSON-ready data with every secret shown as ``***``."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        plain["database"]["url"] = self.database.display_url
        return plain


def hash_token(token: str) -> str:
    """The SHA-256 hex digest of ``token``: the value a token's secret holds."""
    return hashlib.sha256(token.encode()).hexdigest()


def _plain(value: object) -> Any:
    if isinstance(value, Secret | bytes):
        return "***"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        kind = getattr(type(value), "kind", None)
        if isinstance(kind, GatewayKind):
            out["kind"] = kind.value
        for item in dataclasses.fields(value):
            out[item.name] = _plain(getattr(value, item.name))
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted(_plain(item) for item in value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


# -- the reader ------------------------------------------------------------------------

#: Keys that environment variables and ``overrides`` may set, with their TOML type.
_SCALARS: Final[dict[str, type]] = {
    "data_dir": str,
    "database.url": str,
    "database.pool_min": int,
    "database.pool_max": int,
    "database.statement_timeout": float,
    "database.connect_timeout": float,
    "http.host": str,
    "http.port": int,
    "http.max_body_bytes": int,
    "http.public_url": str,
    "targeting.min_overlap": float,
    "targeting.geocodes": str,
    "targeting.geodata_dir": str,
}

#: The documented short names; each key can also be set as ``CAPCAST_<SECTION>__<KEY>``.
ENV_ALIASES: Final[dict[str, str]] = {
    "CAPCAST_DATA_DIR": "data_dir",
    "CAPCAST_DATABASE_URL": "database.url",
    "CAPCAST_HTTP_HOST": "http.host",
    "CAPCAST_HTTP_PORT": "http.port",
}
ENV_CONFIG: Final = "CAPCAST_CONFIG"
ENV_SECRETS_FILE: Final = "CAPCAST_SECRETS_FILE"
ENV_SECRET_PREFIX: Final = "CAPCAST_SECRET_"

_SECRET_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SECRET_NAME_HINT = "a secret name (lower-case letters, digits and '_', starting with a letter)"
_OPERATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PLMN = re.compile(r"[0-9]{3}-[0-9]{2,3}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_CELL_ID = re.compile(r"[0-9]{3}-[0-9]{1,5}-[0-9]{1,12}(-[0-9]{1,12})?")
_SENDER = re.compile(r"[^\s,<&]+")
_HEX_DIGEST = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")
#: Key names that suggest a secret written into the configuration file ("auth", not "authority").
_SECRETISH = re.compile(r"pass(word|wd)?|secret|token|api_?key|credential|sha256|hash|auth(?!orit)",
                        re.IGNORECASE)
_PWS_BLOCK: Final = (4352, 4399)
#: The longest repetition period CBSP can express: 4095 units of 1.883 s.
_MAX_REPETITION: Final = 7711


class _Absent:
    """Marks a key that is not there (distinct from any TOML value)."""


class _Invalid:
    """Marks a value already reported as wrong."""


_ABSENT: Final = _Absent()
_INVALID: Final = _Invalid()


def _describe(value: object) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table"}
    name = next((text for kind, text in kinds.items() if type(value) is kind),
                type(value).__name__)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return f"{name} ({shown})"
    return name


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _general(path: str) -> str:
    """``operators[1].gateways[0].window`` -> ``operators[].gateways[].window``."""
    return re.sub(r"\[\d+\]", "[]", path)


def _parent(path: str) -> str:
    return re.sub(r"(\.[^.\[]+|\[\d+\])$", "", path) if "." in path or "[" in path else ""


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _url_has_password(url: str) -> bool:
    parts = urlsplit(url)
    try:
        query = parse_qs(parts.query)
    except ValueError:
        query = {}
    return parts.password is not None or "password" in query


class _Secrets:
    """Named secrets: the environment first, then the secrets file."""

    def __init__(self, env: Mapping[str, str], values: Mapping[str, str],
                 file: Path | None) -> None:
        self.env = env
        self.values = values
        self.file = file

    def get(self, name: str) -> Secret | None:
        var = ENV_SECRET_PREFIX + name.upper()
        if var in self.env:
            return Secret(value=self.env[var], source=f"environment variable {var}")
        if name in self.values:
            return Secret(value=self.values[name], source=f"{self.file} ({name})")
        return None

    def names(self) -> list[str]:
        from_env = [var[len(ENV_SECRET_PREFIX):].lower() for var in self.env
                    if var.startswith(ENV_SECRET_PREFIX)]
        return [*from_env, *self.values]


class _Context:
    """What the reader shares: problems, where values came from, the secrets."""

    def __init__(self, *, file: Path | None, cwd: Path, secrets: _Secrets) -> None:
        self.file = file
        self.cwd = cwd
        self.base = file.parent if file is not None else cwd
        self.secrets = secrets
        self.problems: list[Problem] = []
        #: Key path -> a label for values that did not come from the file.
        self.origins: dict[str, str] = {}
        #: Key path -> line in the file.
        self.lines: dict[str, int] = {}
        #: Every key asked for, in general form (``operators[].name``).
        self.asked: set[str] = set()

    def problem(self, key: str, message: str) -> None:
        if key in self.origins:
            self.problems.append(Problem(key=key, message=message, source=self.origins[key]))
            return
        line = None
        probe = key
        while probe:
            if probe in self.lines:
                line = self.lines[probe]
                break
            probe = _parent(probe)
        source = str(self.file) if self.file is not None else None
        self.problems.append(Problem(key=key, message=message, source=source, line=line))

    def from_file(self, key: str) -> bool:
        return key not in self.origins


class _Table:
    """One TOML table being read: typed getters that report problems, and unknown keys."""

    def __init__(self, ctx: _Context, path: str, data: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.keypath = path
        self.data = data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.keypath}.{name}" if self.keypath else name

    def bad(self, name: str, message: str) -> None:
        self.ctx.problem(self.key(name), message)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        """The value (any type) or ``_ABSENT``; marks the key as known."""
        self.seen.add(name)
        self.ctx.asked.add(_general(self.key(name)))
        return self.data.get(name, _ABSENT)

    def _typed(self, name: str, kinds: tuple[type, ...], expected: str) -> Any:
        value = self.raw(name)
        if value is _ABSENT:
            return value
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.bad(name, f"must be {expected}, not {_describe(value)}")
            return _INVALID
        return value

    def _check_text(self, name: str, value: str, pattern: re.Pattern[str] | None,
                    hint: str, max_length: int | None) -> bool:
        if not value:
            self.bad(name, "must not be empty")
        elif max_length is not None and len(value) > max_length:
            self.bad(name, f"must be at most {max_length} characters, not {len(value)}")
        elif pattern is not None and not pattern.fullmatch(value):
            self.bad(name, f"{value!r} is not {hint}")
        else:
            return True
        return False

    def text(self, name: str, default: str | None = None, *,
             pattern: re.Pattern[str] | None = None, hint: str = "",
             max_length: int | None = None, allow_empty: bool = False) -> str:
        """A string; required when ``default`` is None."""
        value = self._typed(name, (str,), "a string")
        if value is _ABSENT:
            if default is None:
                self.bad(name, "is required" + (f": {hint}" if hint else ""))
                return ""
            return default
        if value is _INVALID:
            return default or ""
        assert isinstance(value, str)
        if allow_empty and not value:
            return value
        self._check_text(name, value, pattern, hint, max_length)
        return value

    def opt_text(self, name: str, *, pattern: re.Pattern[str] | None = None,
                 hint: str = "", max_length: int | None = None) -> str | None:
        """A string, or None when absent or wrong."""
        value = self._typed(name, (str,), "a string")
        if value is _ABSENT or value is _INVALID:
            return None
        assert isinstance(value, str)
        return value if self._check_text(name, value, pattern, hint, max_length) else None

    def _range(self, name: str, value: float, lo: float, hi: float, lo_open: bool) -> bool:
        if lo_open and not lo < value <= hi:
            self.bad(name, f"must be more than {lo} and at most {hi}, not {value}")
        elif not lo <= value <= hi:
            self.bad(name, f"must be between {lo} and {hi}, not {value}")
        else:
            return True
        return False

    def opt_integer(self, name: str, *, lo: int, hi: int) -> int | None:
        """An integer in ``lo..hi``, or None when absent or wrong."""
        value = self._typed(name, (int,), "an integer")
        if value is _ABSENT or value is _INVALID:
            return None
        assert isinstance(value, int)
        return value if self._range(name, value, lo, hi, False) else None

    def integer(self, name: str, default: int, *, lo: int, hi: int) -> int:
        """An integer in ``lo..hi``."""
        value = self.opt_integer(name, lo=lo, hi=hi)
        return default if value is None else value

    def opt_number(self, name: str, *, lo: float, hi: float,
                   lo_open: bool = False) -> float | None:
        """A finite number (an integer is fine) in range, or None when absent or wrong."""
        value = self._typed(name, (int, float), "a number")
        if value is _ABSENT or value is _INVALID:
            return None
        assert isinstance(value, int | float)
        if not math.isfinite(value):
            self.bad(name, f"must be a finite number, not {value}")
            return None
        return float(value) if self._range(name, value, lo, hi, lo_open) else None

    def number(self, name: str, default: float, *, lo: float, hi: float,
               lo_open: bool = False) -> float:
        """A finite number in range."""
        value = self.opt_number(name, lo=lo, hi=hi, lo_open=lo_open)
        return default if value is None else value

    def flag(self, name: str, default: bool) -> bool:
        """A boolean."""
        value = self._typed(name, (bool,), "true or false")
        return value if isinstance(value, bool) else default

    def opt_choice(self, name: str, kind: type[E], *, required: bool = False) -> E | None:
        """One of an enum's values (case-insensitive), or None when absent or wrong."""
        names = [str(member.value) for member in kind]
        hint = "one of " + ", ".join(repr(n) for n in names)
        value = self._typed(name, (str,), f"a string, {hint}")
        if value is _ABSENT:
            if required:
                self.bad(name, f"is required: {hint}")
            return None
        if value is _INVALID:
            return None
        assert isinstance(value, str)
        for member in kind:
            if str(member.value).casefold() == value.strip().casefold():
                return member
        self.bad(name, f"{value!r} is not {hint}{_did_you_mean(value, names)}")
        return None

    def choice(self, name: str, kind: type[E], default: E) -> E:
        """One of an enum's values (case-insensitive)."""
        value = self.opt_choice(name, kind)
        return default if value is None else value

    def path(self, name: str, *, must: Literal["file", "dir", "any"] | None,
             required: bool = False) -> Path | None:
        """A path; ``must`` says what must already exist there.

        Relative paths are relative to the configuration file's folder, or to the
        working folder for a value from the environment or an override.
        """
        value = self._typed(name, (str,), "a path (a string)")
        if value is _ABSENT:
            if required:
                self.bad(name, "is required")
            return None
        if value is _INVALID:
            return None
        assert isinstance(value, str)
        if not value:
            self.bad(name, "must not be empty")
            return None
        return self.resolve_path(name, value, must)

    def resolve_path(self, name: str, value: str,
                     must: Literal["file", "dir", "any"] | None) -> Path | None:
        base = self.ctx.base if self.ctx.from_file(self.key(name)) else self.ctx.cwd
        path = Path(os.path.normpath(base / Path(value).expanduser()))
        if must is None:
            return path
        what = {"file": "file", "dir": "folder", "any": "file or folder"}[must]
        if not path.exists():
            self.bad(name, f"no such {what}: {path}")
        elif must == "file" and not path.is_file():
            self.bad(name, f"not a file: {path}")
        elif must == "dir" and not path.is_dir():
            self.bad(name, f"not a folder: {path}")
        else:
            return path
        return None

    def texts(self, name: str, default: tuple[str, ...] = (), *,
              pattern: re.Pattern[str] | None = None, hint: str = "",
              unique: bool = True) -> tuple[str, ...]:
        """An array of strings."""
        value = self._typed(name, (list,), "an array of strings")
        if value is _ABSENT or value is _INVALID:
            return default
        assert isinstance(value, list)
        out: list[str] = []
        for index, item in enumerate(value):
            item_name = f"{name}[{index}]"
            if not isinstance(item, str):
                self.bad(item_name, f"must be a string, not {_describe(item)}")
            elif self._check_text(item_name, item, pattern, hint, None):
                if unique and item in out:
                    self.bad(item_name, f"{item!r} is listed twice")
                else:
                    out.append(item)
        return tuple(out)

    def integers(self, name: str, *, lo: int, hi: int) -> tuple[int, ...]:
        """An array of integers in ``lo..hi``."""
        value = self._typed(name, (list,), "an array of integers")
        if value is _ABSENT or value is _INVALID:
            return ()
        assert isinstance(value, list)
        out: list[int] = []
        for index, item in enumerate(value):
            item_name = f"{name}[{index}]"
            if isinstance(item, bool) or not isinstance(item, int):
                self.bad(item_name, f"must be an integer, not {_describe(item)}")
            elif self._range(item_name, item, lo, hi, False) and item not in out:
                out.append(item)
        return tuple(out)

    def table(self, name: str) -> _Table:
        """A sub-table (empty when absent, so that its defaults apply)."""
        value = self._typed(name, (dict,), f"a table ([{self.key(name)}])")
        data = value if isinstance(value, dict) else {}
        return _Table(self.ctx, self.key(name), data)

    def tables(self, name: str) -> list[_Table]:
        """An array of tables (``[[name]]``)."""
        header = _general(self.key(name)).replace("[]", "")
        value = self._typed(name, (list,), f"an array of tables ([[{header}]])")
        if not isinstance(value, list):
            return []
        out = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                out.append(_Table(self.ctx, f"{self.key(name)}[{index}]", item))
            else:
                self.bad(f"{name}[{index}]", f"must be a table, not {_describe(item)}")
        return out

    def secret_name(self, name: str, value: object) -> str | None:
        """``value`` if it is a secret's name; never quotes it otherwise (it may be the secret)."""
        if isinstance(value, str) and _SECRET_NAME.fullmatch(value):
            return value
        if isinstance(value, str):
            self.bad(name, f"is not {_SECRET_NAME_HINT}: it names a secret, and the value "
                           f"goes in the secrets file or the environment ({_secret_help('NAME')})")
        else:
            self.bad(name, f"must be a string naming a secret, not {_describe_kind(value)}")
        return None

    def secret(self, name: str, *, key_required: bool,
               value_required: bool) -> tuple[str | None, Secret | None]:
        """A reference to a named secret (``password_secret = "opa_smpp"``) and its value.

        ``key_required``: the key must be there; ``value_required``: the secret it
        names must be set (false for a disabled gateway or feed).
        """
        raw = self.raw(name)
        if raw is _ABSENT:
            if key_required:
                self.bad(name, f"is required: the name of a secret ({_secret_help('NAME')})")
            return None, None
        ref = self.secret_name(name, raw)
        if ref is None:
            return None, None
        value = self.ctx.secrets.get(ref)
        if value is None and value_required:
            self.bad(name, f"secret {ref!r} is not set: {_secret_help(ref)}"
                           f"{_did_you_mean(ref, self.ctx.secrets.names())}")
        return ref, value

    def finish(self, hints: Mapping[str, str] | None = None) -> None:
        """Report every key of the table that nothing asked for."""
        for name in self.data:
            if name in self.seen:
                continue
            if hints and name in hints:
                self.bad(name, f"unknown key here: {hints[name]}")
            elif _SECRETISH.search(name):
                refs = sorted(k for k in self.seen if k.endswith("secret"))
                if self.keypath.startswith("authorities") and "tokens" in self.seen:
                    use = "and name it here with tokens = [\"<name>\"]"
                elif refs:
                    use = f"and name it here with {refs[0]} = \"<name>\""
                else:
                    use = "and name it where it is used"
                self.bad(name, "secrets do not belong in the configuration file: put the value "
                               f"in the secrets file or the environment ({_secret_help('NAME')}) "
                               f"{use}")
            else:
                self.bad(name, f"unknown key{_did_you_mean(name, self.seen)}")


def _secret_help(name: str) -> str:
    return (f"set the environment variable {ENV_SECRET_PREFIX}{name.upper()}, or add "
            f"{name} = \"...\" to the [secrets] table of the secrets file "
            f"({ENV_SECRETS_FILE} or --secrets)")


# -- line numbers ------------------------------------------------------------------------

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_LINE = re.compile(r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
                       r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _dotted(text: str) -> list[str]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)", text)
    return [a or b or c for a, b, c in parts]


def _key_lines(text: str) -> dict[str, int]:
    """Key path -> line, best effort (a cheap scan, not a TOML parser)."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    table = ""
    in_string: str | None = None
    depth = 0  # inside a multi-line array or inline table
    for number, line in enumerate(text.splitlines(), 1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        if depth > 0:
            depth += _depth(line)
            continue
        header = _HEADER.match(line)
        if header:
            names = _dotted(header.group(2))
            prefix = ""
            for part in names[:-1]:
                prefix = f"{prefix}.{part}" if prefix else part
                if prefix in counts:
                    prefix = f"{prefix}[{counts[prefix]}]"
            table = f"{prefix}.{names[-1]}" if prefix else names[-1] if names else ""
            if header.group(1) == "[[":
                counts[table] = counts.get(table, -1) + 1
                table = f"{table}[{counts[table]}]"
            lines.setdefault(table, number)
            continue
        key = _KEY_LINE.match(line)
        if key:
            path = ".".join([table, *_dotted(key.group(1))] if table else _dotted(key.group(1)))
            lines.setdefault(path, number)
            rest = line[key.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_string = quote
            if in_string is None:
                depth = _depth(rest)
    return lines


def _depth(text: str) -> int:
    """Brackets opened minus closed on a line, outside strings and comments."""
    code = re.sub(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'", "", text).split("#", 1)[0]
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")


# -- sources: the file, the environment, the secrets file --------------------------------


def _convert(text: str, kind: type) -> object:
    """An environment string as ``kind``; raises ValueError."""
    if kind is int:
        return int(text.strip())
    if kind is float:
        value = float(text.strip())
        if not math.isfinite(value):
            raise ValueError(text)
        return value
    return text


def _env_settings(env: Mapping[str, str], problems: list[Problem]) -> dict[str, tuple[str, str]]:
    """Key -> (value, variable) from the environment."""
    found: dict[str, tuple[str, str]] = {}
    env_names = [*ENV_ALIASES, *(f"CAPCAST_{k.replace('.', '__').upper()}" for k in _SCALARS
                                 if "." in k)]
    for var in sorted(env):
        if var in ENV_ALIASES:
            key = ENV_ALIASES[var]
        elif var.startswith("CAPCAST_") and "__" in var:
            key = var[len("CAPCAST_"):].lower().replace("__", ".")
            if key not in _SCALARS:
                problems.append(Problem(
                    key="", source=f"environment variable {var}",
                    message="names no configuration key; CAPCAST_<SECTION>__<KEY> works for "
                            "the keys of [database], [http] and [targeting]"
                            + _did_you_mean(var, env_names)))
                continue
        else:
            continue
        if key in found and found[key][0] != env[var]:
            problems.append(Problem(
                key=key, source=f"environment variable {var}",
                message=f"conflicts with {found[key][1]}, which sets it to another value"))
            continue
        found[key] = (env[var], var)
    return found


def _apply(raw: dict[str, Any], ctx: _Context, key: str, value: object, origin: str) -> None:
    kind = _SCALARS[key]
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str) and kind is not str:
        try:
            value = _convert(value, kind)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            ctx.problems.append(Problem(key=key, source=origin,
                                        message=f"must be {expected}, not {value!r}"))
            return
    *sections, name = key.split(".")
    target: Any = raw
    for section in sections:
        target = target.setdefault(section, {})
        if not isinstance(target, dict):
            return  # the file's own problem ("must be a table") is reported by the reader
    target[name] = value
    ctx.origins[key] = origin


def _check_secrets_file(path: Path, checkout: Path | None) -> list[str]:
    """Why the secrets file at ``path`` must not be used (empty when it may)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return ["no such file"]
    except OSError as exc:
        return [f"cannot read it: {exc.strerror or exc}"]
    reasons = []
    if not stat.S_ISREG(info.st_mode):
        reasons.append("not a regular file")
    if os.name == "posix":
        if info.st_mode & 0o077:
            reasons.append(
                f"group or others may access it (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"a secrets file must be readable by its owner only: chmod 600 {path}")
        if info.st_uid not in (os.geteuid(), 0):
            reasons.append(f"owned by uid {info.st_uid}, neither the user running capcast "
                           f"(uid {os.geteuid()}) nor root")
    if checkout is not None and path.resolve().is_relative_to(checkout):
        reasons.append(f"it lies inside the capcast source tree ({checkout}); keep secrets "
                       "outside the repository, e.g. /etc/capcast/secrets.toml")
    return reasons


def _source_checkout() -> Path | None:
    """The capcast source tree this module runs from, when it is a checkout."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / ".git").exists() else None


def _read_secrets_file(path: Path, problems: list[Problem],
                       checkout: Path | None) -> tuple[str | None, dict[str, str]]:
    """(database_url, named secrets) from the secrets file; problems added on failure."""
    label = str(path)
    reasons = _check_secrets_file(path, checkout)
    if reasons:
        problems.extend(Problem(key="", source=label, message=f"secrets file refused: {why}")
                        for why in reasons)
        return None, {}
    try:
        data = path.read_bytes()
        document = (json.loads(data) if path.suffix.lower() == ".json"
                    else tomllib.loads(data.decode("utf-8")))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        # Only the parser's message: it never quotes a value back.
        problems.append(Problem(key="", source=label, message=f"cannot read secrets: {exc}"))
        return None, {}
    if not isinstance(document, dict):
        problems.append(Problem(key="", source=label, message="must hold a table (an object)"))
        return None, {}
    lines = _key_lines(data.decode("utf-8", "replace"))

    def bad(key: str, message: str) -> None:
        problems.append(Problem(key=key, source=label, message=message, line=lines.get(key)))

    url = document.get("database_url")
    if url is not None and not isinstance(url, str):
        bad("database_url", f"must be a string, not {_describe_kind(url)}")
        url = None
    named: dict[str, str] = {}
    table = document.get("secrets", {})
    if not isinstance(table, dict):
        bad("secrets", f"must be a table, not {_describe_kind(table)}")
        table = {}
    for name, value in table.items():
        if not _SECRET_NAME.fullmatch(name):
            bad(f"secrets.{name}", f"{name!r} is not {_SECRET_NAME_HINT}")
        elif not isinstance(value, str):
            bad(f"secrets.{name}", f"must be a string, not {_describe_kind(value)}")
        else:
            named[name] = value
    for key in document:
        if key not in ("database_url", "secrets"):
            bad(key, "unknown key: a secrets file holds database_url and a [secrets] table"
                     + _did_you_mean(key, ("database_url", "secrets")))
    return url, named


def _describe_kind(value: object) -> str:
    """The type of a secret's value, never the value itself."""
    return _describe(value).split(" (")[0]


# -- building the settings ---------------------------------------------------------------


def _database(t: _Table) -> DatabaseSettings:
    url_text = t.opt_text("url")
    url: Secret | None = None
    if url_text:
        parts = urlsplit(url_text)
        origin = t.ctx.origins.get("database.url")
        if parts.scheme not in ("postgresql", "postgres"):
            t.bad("url", "must be a postgresql:// URL")
        elif origin is not None or not _url_has_password(url_text):
            url = Secret(value=url_text, source=origin or f"{t.ctx.file} (database.url)")
    pool_min = t.integer("pool_min", 1, lo=0, hi=1000)
    pool_max = t.integer("pool_max", 10, lo=1, hi=1000)
    if pool_min > pool_max:
        t.bad("pool_min", f"must not exceed pool_max ({pool_max}), not {pool_min}")
    settings = DatabaseSettings(
        url=url, pool_min=pool_min, pool_max=pool_max,
        statement_timeout=t.number("statement_timeout", 30.0, lo=0, hi=86400),
        connect_timeout=t.number("connect_timeout", 10.0, lo=0, hi=3600, lo_open=True))
    t.finish()
    return settings


def _http_url(t: _Table, name: str, *, required: bool) -> str | None:
    """An http(s) URL without credentials in it."""
    value = t.text(name) if required else t.opt_text(name)
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        t.bad(name, f"{value!r} is not a URL: {exc}")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        t.bad(name, f"{_mask_url(value)!r} is not an http:// or https:// URL")
        return None
    if parts.username is not None or parts.password is not None:
        t.bad(name, "holds credentials: they do not belong in the configuration file; put an "
                    "Authorization header value in a secret and name it with "
                    "authorization_secret")
        return None
    return value


def _http(t: _Table) -> HttpSettings:
    host = t.text("host", "127.0.0.1")
    port = t.integer("port", 8080, lo=0, hi=65535)
    max_body = t.integer("max_body_bytes", 1 << 20, lo=1024, hi=1 << 30)
    public_url = _http_url(t, "public_url", required=False)
    t.finish()
    return HttpSettings(host=host, port=port, max_body_bytes=max_body,
                        public_url=public_url.rstrip("/") if public_url else None)


def _policy(t: _Table, defaults: TargetingPolicy) -> TargetingPolicy:
    return TargetingPolicy(
        min_overlap=t.number("min_overlap", defaults.min_overlap, lo=0.0, hi=1.0),
        geocodes=t.choice("geocodes", GeocodePolicy, defaults.geocodes))


def _targeting(t: _Table) -> TargetingSettings:
    policy = _policy(t, TargetingPolicy())
    geodata = t.path("geodata_dir", must="dir")
    t.finish()
    return TargetingSettings(min_overlap=policy.min_overlap, geocodes=policy.geocodes,
                             geodata_dir=geodata)


def _jurisdiction(t: _Table) -> Jurisdiction | None:
    value = t.raw("jurisdiction")
    if value is _ABSENT:
        return None
    if isinstance(value, str):
        path = t.resolve_path("jurisdiction", value, "file") if value else None
        if not value:
            t.bad("jurisdiction", "must not be empty")
        return Jurisdiction(file=path) if path is not None else None
    if not isinstance(value, list) or not value:
        t.bad("jurisdiction", "must be a GeoJSON file or a non-empty array of geocodes "
                              f"like [\"SAME:006037\", \"NUTS:DE300\"], not {_describe(value)}")
        return None
    codes: list[Geocode] = []
    for index, item in enumerate(value):
        name, _, code = item.rpartition(":") if isinstance(item, str) else ("", "", "")
        if not name.strip() or not code.strip():
            t.bad(f"jurisdiction[{index}]", f"{item!r} is not a geocode VALUENAME:value "
                                           "(like \"SAME:006037\" or \"NUTS:DE300\")")
        else:
            codes.append(Geocode(value_name=name.strip(), value=code.strip()))
    return Jurisdiction(geocodes=tuple(codes))


def _channels(t: _Table) -> AuthorityChannels | None:
    if not t.has("channels"):
        t.raw("channels")
        return None
    c = t.table("channels")

    def identifiers(name: str) -> dict[str, int]:
        table = c.table(name)
        out: dict[str, int] = {}
        for key in table.data:
            value = table.opt_integer(key, lo=0, hi=0xFFFF)
            if value is not None:
                out[key] = value
        return out

    by_code = identifiers("by_event_code")
    by_event = identifiers("by_event")
    default = c.opt_integer("default", lo=0, hi=0xFFFF)
    tests = c.integers("test_channels", lo=0, hi=0xFFFF)
    c.finish()
    try:
        return AuthorityChannels(by_event_code=by_code, by_event=by_event, default=default,
                                 test_channels=frozenset(tests))
    except ValueError as exc:
        t.bad("channels", str(exc))
        return None


def _secret_names(t: _Table, name: str) -> tuple[str, ...]:
    """An array of secret names (never quoting an entry that might be a secret)."""
    value = t.raw(name)
    if value is _ABSENT:
        return ()
    if not isinstance(value, list):
        t.bad(name, f"must be an array of secret names, not {_describe_kind(value)}")
        return ()
    names = [t.secret_name(f"{name}[{index}]", item) for index, item in enumerate(value)]
    return tuple(dict.fromkeys(n for n in names if n is not None))


def _authority(t: _Table) -> AuthoritySettings:
    sender = t.text("sender", pattern=_SENDER,
                    hint="a CAP sender (no spaces, commas, '<' or '&'), e.g. 'warn@dwd.de'")
    name = t.opt_text("name") or sender
    profile = t.text("profile", "oasis")
    if profile and profile.lower() not in PROFILES:
        t.bad("profile", f"{profile!r} is not a CAP profile: one of "
                         + ", ".join(PROFILES) + _did_you_mean(profile.lower(), PROFILES))
    statuses: list[Status] = []
    by_name = {s.value.casefold(): s for s in Status}
    raw_statuses = t.texts("statuses", ("Actual", "Exercise", "Test"))
    if not raw_statuses and t.has("statuses"):
        t.bad("statuses", "must list at least one CAP status")
    for index, text in enumerate(raw_statuses):
        status = by_name.get(text.casefold())
        if status is None:
            t.bad(f"statuses[{index}]", f"{text!r} is not a CAP status: one of "
                                       + ", ".join(s.value for s in Status))
        else:
            statuses.append(status)
    jurisdiction = _jurisdiction(t)
    policy = t.choice("jurisdiction_policy", JurisdictionPolicy, JurisdictionPolicy.REJECT)
    signature_required = t.flag("signature_required", False)
    trust_store = t.path("trust_store", must="any")
    if signature_required and trust_store is None and not t.has("trust_store"):
        t.bad("trust_store", "is required when signature_required = true: a PEM bundle (or "
                             "folder) of the certificates its signatures must chain to")
    tokens = _secret_names(t, "tokens")
    channels = _channels(t)
    t.finish()
    return AuthoritySettings(
        sender=sender, name=name, profile=profile.lower(), statuses=tuple(statuses),
        jurisdiction=jurisdiction, jurisdiction_policy=policy,
        signature_required=signature_required, trust_store=trust_store, channels=channels,
        tokens=tokens)


_COMMON_GATEWAY_KEYS: Final = ("name", "kind", "enabled")
_SMPP_KEYS: Final = ("host", "port", "system_id", "password_secret", "system_type", "bind",
                     "window", "throughput", "links", "enquire_link", "response_timeout",
                     "connect_timeout", "source", "source_ton", "source_npi")
_GATEWAY_KEYS: Final[dict[GatewayKind, tuple[str, ...]]] = {
    GatewayKind.CBC_REST: ("url", "dialect", "cbe_name", "timeout", "connect_timeout",
                           "retries", "repetition", "num_broadcasts", "authorization_secret"),
    GatewayKind.SMPP_BROADCAST: (*_SMPP_KEYS, "repetition", "num_broadcasts"),
    GatewayKind.SMPP_SMS: (*_SMPP_KEYS, "max_segments", "registered_delivery"),
}


def _smpp_common(t: _Table, enabled: bool) -> dict[str, Any]:
    host = t.text("host", hint="the SMSC's host name or address")
    _, password = t.secret("password_secret", key_required=True, value_required=enabled)
    throughput = t.opt_number("throughput", lo=0.0, hi=1e6, lo_open=True)
    return {
        "host": host,
        "port": t.integer("port", 2775, lo=1, hi=65535),
        "system_id": t.text("system_id", max_length=15, hint="the SMPP account (system_id)"),
        "password": password,
        "system_type": t.text("system_type", "", max_length=12, allow_empty=True),
        "bind": t.choice("bind", BindMode, BindMode.TRANSCEIVER),
        "window": t.integer("window", 64, lo=1, hi=10000),
        "throughput": throughput,
        "links": t.integer("links", 1, lo=1, hi=64),
        "enquire_link": t.number("enquire_link", 30.0, lo=0, hi=3600, lo_open=True),
        "response_timeout": t.number("response_timeout", 10.0, lo=0, hi=600, lo_open=True),
        "connect_timeout": t.number("connect_timeout", 10.0, lo=0, hi=600, lo_open=True),
        "source": t.text("source", "", max_length=20, allow_empty=True),
        "source_ton": t.opt_integer("source_ton", lo=0, hi=6),
        "source_npi": t.opt_integer("source_npi", lo=0, hi=18),
    }


def _gateway(t: _Table) -> Gateway:
    kind = t.opt_choice("kind", GatewayKind, required=True)
    name = t.text("name", kind.value if kind else "", pattern=_OPERATOR_NAME,
                  hint="a name of letters, digits, '-', '_' or '.'")
    enabled = t.flag("enabled", True)
    if kind is None:
        # Without a kind nothing else can be checked; the other keys are not reported.
        t.seen.update(t.data)
        return CbcRestGateway(name=name, url="")
    gateway: Gateway
    if kind is GatewayKind.CBC_REST:
        _, authorization = t.secret("authorization_secret", key_required=False,
                                    value_required=enabled)
        gateway = CbcRestGateway(
            name=name, enabled=enabled, url=_http_url(t, "url", required=True) or "",
            dialect=t.choice("dialect", CbcDialect, CbcDialect.CAPCAST),
            cbe_name=t.text("cbe_name", "capcast", max_length=64),
            timeout=t.number("timeout", 60.0, lo=0, hi=3600, lo_open=True),
            connect_timeout=t.number("connect_timeout", 10.0, lo=0, hi=600, lo_open=True),
            retries=t.integer("retries", 2, lo=0, hi=20),
            repetition=t.number("repetition", 60.0, lo=0, hi=_MAX_REPETITION, lo_open=True),
            num_broadcasts=t.integer("num_broadcasts", 0, lo=0, hi=0xFFFF),
            authorization=authorization)
    elif kind is GatewayKind.SMPP_BROADCAST:
        gateway = SmppBroadcastGateway(
            name=name, enabled=enabled, **_smpp_common(t, enabled),
            repetition=t.opt_number("repetition", lo=0, hi=86400, lo_open=True),
            num_broadcasts=t.integer("num_broadcasts", 0, lo=0, hi=0xFFFF))
    else:
        gateway = SmppSmsGateway(
            name=name, enabled=enabled, **_smpp_common(t, enabled),
            max_segments=t.integer("max_segments", 3, lo=1, hi=255),
            registered_delivery=t.flag("registered_delivery", True))
    owners: dict[str, list[str]] = {}
    for other, keys in _GATEWAY_KEYS.items():
        for key in keys:
            owners.setdefault(key, []).append(other.value)
    t.finish({key: f"a key of {' and '.join(kinds)} gateways, and this one is {kind.value}"
              for key, kinds in owners.items()})
    return gateway


def _cells_file(t: _Table, path: Path) -> set[str]:
    cells: set[str] = set()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        t.bad("cells_file", f"cannot read {path}: {exc}")
        return cells
    for number, line in enumerate(text.splitlines(), 1):
        cell = line.split("#", 1)[0].strip()
        if not cell:
            continue
        if _CELL_ID.fullmatch(cell):
            cells.add(cell)
        else:
            t.bad("cells_file", f"{path}:{number}: {cell!r} is not a cell id "
                                "(MCC-MNC-LAC-CI, MCC-MNC-ECI or MCC-MNC-NCI)")
    return cells


def _handling(t: _Table, gateways: Sequence[Gateway]) -> StatusHandling:
    names = [gw.name for gw in gateways]
    chosen = t.texts("gateways")
    for index, name in enumerate(chosen):
        if name not in names:
            t.bad(f"gateways[{index}]", f"this operator has no gateway {name!r}"
                                       + _did_you_mean(name, names))
    channels = t.integers("channels", lo=0, hi=0xFFFF)
    for index, channel in enumerate(channels):
        if _PWS_BLOCK[0] <= channel <= _PWS_BLOCK[1] and channel not in TEST_CHANNELS:
            t.bad(f"channels[{index}]", f"{channel} is a public warning channel; exercises "
                                       "and tests may only use the test channels "
                                       + ", ".join(str(c) for c in sorted(TEST_CHANNELS)))
    inline = t.texts("cells", pattern=_CELL_ID,
                     hint="a cell id (MCC-MNC-LAC-CI, MCC-MNC-ECI or MCC-MNC-NCI)")
    cells_file = t.path("cells_file", must="file")
    cells: frozenset[str] | None = None
    if t.has("cells") or t.has("cells_file"):
        listed = set(inline)
        if cells_file is not None:
            listed |= _cells_file(t, cells_file)
        cells = frozenset(listed)
    t.finish()
    return StatusHandling(gateways=chosen, channels=channels, cells=cells, cells_file=cells_file)


def _operator(t: _Table, defaults: TargetingPolicy) -> OperatorSettings:
    name = t.text("name", pattern=_OPERATOR_NAME,
                  hint="a name of letters, digits, '-', '_' or '.' (at most 64)")
    display_name = t.opt_text("display_name") or name
    plmn = t.text("plmn", pattern=_PLMN, hint="an MCC-MNC like '262-01' or '310-410'")
    inventory = t.path("inventory", must="file")
    languages = t.texts("languages", pattern=_LANGUAGE,
                        hint="a language code like 'de' or 'en-US' (ISO 639-1)")
    targeting_table = t.table("targeting")
    targeting = _policy(targeting_table, defaults)
    targeting_table.finish()
    gateways = tuple(_gateway(g) for g in t.tables("gateways"))
    seen: dict[str, int] = {}
    for index, gateway in enumerate(gateways):
        if gateway.name in seen:
            t.bad(f"gateways[{index}].name",
                  f"another gateway of this operator (gateways[{seen[gateway.name]}]) is "
                  f"called {gateway.name!r}: give each gateway its own name")
        seen.setdefault(gateway.name, index)
    exercise = _handling(t.table("exercise"), gateways)
    test = _handling(t.table("test"), gateways)
    t.finish()
    return OperatorSettings(name=name, display_name=display_name, plmn=plmn,
                            inventory=inventory, languages=languages, targeting=targeting,
                            gateways=gateways, exercise=exercise, test=test)


def _feed(t: _Table, senders: Sequence[str]) -> FeedSettings:
    url = _http_url(t, "url", required=True) or ""
    authority = t.text("authority", hint="the sender of one of the [[authorities]]")
    if authority and authority not in senders:
        t.bad("authority", f"no authority has the sender {authority!r}"
                           + _did_you_mean(authority, senders))
    enabled = t.flag("enabled", True)
    _, authorization = t.secret("authorization_secret", key_required=False,
                                    value_required=enabled)
    feed = FeedSettings(
        url=url, authority=authority,
        interval=t.number("interval", 60.0, lo=1, hi=86400),
        conditional=t.flag("conditional", True),
        timeout=t.number("timeout", 30.0, lo=0, hi=600, lo_open=True),
        enabled=enabled, authorization=authorization)
    t.finish()
    return feed


def _token_hash(t: _Table, name: str, ref: str, value: Secret) -> bytes:
    match = _HEX_DIGEST.fullmatch(value.value.strip())
    if match is None:
        t.bad(name, f"secret {ref!r} ({value.source}) is not the SHA-256 hex digest of a token "
                    "(64 hex digits); make it with: printf %s \"$TOKEN\" | sha256sum")
        return b""
    return bytes.fromhex(match.group(1))


def _tokens(root: _Table, authority_tables: Sequence[_Table],
            authorities: Sequence[AuthoritySettings],
            operators: Sequence[OperatorSettings]) -> tuple[TokenSettings, ...]:
    tokens: list[tuple[str, TokenSettings]] = []  # (key path, token)
    for table, authority in zip(authority_tables, authorities, strict=True):
        for index, ref in enumerate(authority.tokens):
            value = table.ctx.secrets.get(ref)
            key = f"tokens[{index}]"
            if value is None:
                table.bad(key, f"secret {ref!r} is not set: {_secret_help(ref)}"
                               + _did_you_mean(ref, table.ctx.secrets.names()))
                continue
            tokens.append((table.key(key), TokenSettings(
                name=ref, role=Role.AUTHORITY, authority=authority.sender, secret=ref,
                sha256=_token_hash(table, key, ref, value))))
    senders = [a.sender for a in authorities]
    operator_names = [o.name for o in operators]
    for t in root.tables("tokens"):
        role = t.opt_choice("role", Role, required=True)
        secret_ref, secret_value = t.secret("secret", key_required=True,
                                            value_required=True)
        name = t.opt_text("name", max_length=64) or secret_ref or ""
        bound_authority = t.opt_text("authority")
        bound_operator = t.opt_text("operator")
        if role is Role.AUTHORITY and bound_authority is None and not t.has("authority"):
            t.bad("authority", "is required for an authority token: the sender it publishes as")
        if role is Role.OPERATOR and bound_operator is None and not t.has("operator"):
            t.bad("operator", "is required for an operator token: the operator it acts for")
        if bound_authority is not None and role is not None:
            if role in (Role.OPERATOR, Role.ADMIN):
                t.bad("authority", f"a token of role {role.value} is not bound to an authority")
            elif bound_authority not in senders:
                t.bad("authority", f"no authority has the sender {bound_authority!r}"
                                   + _did_you_mean(bound_authority, senders))
        if bound_operator is not None and role is not None:
            if role is not Role.OPERATOR:
                t.bad("operator", f"a token of role {role.value} is not bound to an operator")
            elif bound_operator not in operator_names:
                t.bad("operator", f"no operator is called {bound_operator!r}"
                                  + _did_you_mean(bound_operator, operator_names))
        digest = (_token_hash(t, "secret", secret_ref or "", secret_value)
                  if secret_value is not None else b"")
        t.finish()
        tokens.append((t.key("name"), TokenSettings(
            name=name, role=role or Role.ADMIN, authority=bound_authority,
            operator=bound_operator, secret=secret_ref or "", sha256=digest)))
    names: dict[str, str] = {}
    digests: dict[bytes, str] = {}
    for key, token in tokens:
        if token.name in names:
            root.ctx.problem(key, f"another token ({names[token.name]}) is called "
                                  f"{token.name!r}: token names must be unique")
        names.setdefault(token.name, key)
        if token.sha256 and token.sha256 in digests:
            root.ctx.problem(key, f"the same token hash as {digests[token.sha256]}: each token "
                                  "must stand for one role and principal")
        digests.setdefault(token.sha256, key)
    return tuple(token for _, token in tokens)


def _build(ctx: _Context, root: _Table, *, config: Path | None,
           secrets_file: Path | None) -> Settings:
    data_dir = root.path("data_dir", must=None) or default_data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        root.bad("data_dir", f"not a folder: {data_dir}")
    database = _database(root.table("database"))
    http = _http(root.table("http"))
    targeting = _targeting(root.table("targeting"))

    authority_tables = root.tables("authorities")
    authorities = [_authority(t) for t in authority_tables]
    first: dict[str, int] = {}
    for index, authority in enumerate(authorities):
        if authority.sender and authority.sender in first:
            ctx.problem(f"authorities[{index}].sender",
                        f"authorities[{first[authority.sender]}] has the same sender "
                        f"{authority.sender!r}")
        first.setdefault(authority.sender, index)

    operators = [_operator(t, targeting.policy) for t in root.tables("operators")]
    first = {}
    for index, operator in enumerate(operators):
        folded = operator.name.casefold()
        if folded and folded in first:
            ctx.problem(f"operators[{index}].name",
                        f"operators[{first[folded]}] has the same name {operator.name!r} "
                        "(names are compared ignoring case)")
        first.setdefault(folded, index)

    feeds = [_feed(t, [a.sender for a in authorities]) for t in root.tables("feeds")]
    first = {}
    for index, feed in enumerate(feeds):
        if feed.url and feed.url in first:
            ctx.problem(f"feeds[{index}].url", f"feeds[{first[feed.url]}] polls the same URL")
        first.setdefault(feed.url, index)

    tokens = _tokens(root, authority_tables, authorities, operators)
    root.finish({"roles": "roles are fixed (authority, manager, operator, admin); give each "
                          "[[tokens]] entry its role"})
    return Settings(config_file=config, secrets_file=secrets_file, data_dir=data_dir,
                    database=database, http=http, targeting=targeting,
                    authorities=tuple(authorities), operators=tuple(operators),
                    feeds=tuple(feeds), tokens=tokens)


def _check_file_database_url(raw: Mapping[str, Any], ctx: _Context) -> None:
    """A password in the file's database URL is an error even when something overrides it."""
    database = raw.get("database")
    url = database.get("url") if isinstance(database, dict) else None
    if isinstance(url, str) and _url_has_password(url):
        ctx.problem("database.url",
                    "holds a password: a password does not belong in the configuration file; "
                    "set CAPCAST_DATABASE_URL in the environment or put database_url = \"...\" "
                    f"in the secrets file ({ENV_SECRETS_FILE} or --secrets)")


def _read_config(path: Path, ctx: _Context) -> dict[str, Any]:
    def fail(message: str, line: int | None = None) -> dict[str, Any]:
        ctx.problems.append(Problem(key="", source=str(path), message=message, line=line))
        return {}

    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return fail("no such configuration file")
    except UnicodeDecodeError as exc:
        return fail(f"not UTF-8 text: {exc}")
    except OSError as exc:
        return fail(f"cannot read the configuration file: {exc.strerror or exc}")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        return fail(f"not valid TOML: {exc}", int(found.group(1)) if found else None)
    ctx.lines = _key_lines(text)
    return raw


def load_settings(path: str | Path | None, *, env: Mapping[str, str] = os.environ,
                  secrets_path: str | Path | None = None,
                  overrides: Mapping[str, object] | None = None) -> Settings:
    """Read, check and return the configuration.

    Args:
        path: The TOML configuration file; None reads ``$CAPCAST_CONFIG`` if
            set, else none (every default applies).
        env: The environment to read ``CAPCAST_*`` variables from.
        secrets_path: The secrets file (TOML, or JSON when named ``*.json``);
            None reads ``$CAPCAST_SECRETS_FILE`` if set, else none.
        overrides: Values that win over everything else, e.g. from command-line
            options: ``{"data_dir": args.data_dir, "http.port": "0"}``. Keys
            are those the environment may set (see the module docstring);
            None values are skipped.

    Raises:
        ConfigError: with every problem found.
        ValueError: ``overrides`` names a key that cannot be overridden.

    """
    settings, ctx = _load(path, env=env, secrets_path=secrets_path, overrides=overrides)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return settings


def _load(path: str | Path | None, *, env: Mapping[str, str],
          secrets_path: str | Path | None,
          overrides: Mapping[str, object] | None) -> tuple[Settings, _Context]:
    """The settings (meaningful only without problems) and the reader's context."""
    unknown = [key for key in overrides or {} if key not in _SCALARS]
    if unknown:
        raise ValueError(f"cannot override {', '.join(unknown)}: one of {', '.join(_SCALARS)}")
    cwd = Path.cwd()
    if path is None and env.get(ENV_CONFIG):
        path = env[ENV_CONFIG]
    if secrets_path is None and env.get(ENV_SECRETS_FILE):
        secrets_path = env[ENV_SECRETS_FILE]
    config = Path(os.path.normpath(cwd / Path(path).expanduser())) if path else None
    secrets_file = (Path(os.path.normpath(cwd / Path(secrets_path).expanduser()))
                    if secrets_path else None)

    problems: list[Problem] = []
    database_url: str | None = None
    named: dict[str, str] = {}
    if secrets_file is not None:
        database_url, named = _read_secrets_file(secrets_file, problems, _source_checkout())
    ctx = _Context(file=config, cwd=cwd, secrets=_Secrets(env, named, secrets_file))
    ctx.problems.extend(problems)
    raw = _read_config(config, ctx) if config is not None else {}
    _check_file_database_url(raw, ctx)

    if database_url is not None:
        _apply(raw, ctx, "database.url", database_url, f"{secrets_file} (database_url)")
    for key, (value, var) in _env_settings(env, ctx.problems).items():
        _apply(raw, ctx, key, value, f"environment variable {var}")
    for key, override in (overrides or {}).items():
        if override is not None:
            _apply(raw, ctx, key, override, f"override of {key}")

    settings = _build(ctx, _Table(ctx, "", raw), config=config, secrets_file=secrets_file)
    return settings, ctx
