"""The durable store: alerts and their references, jobs, submissions, receipts, presence, audit.

PostgreSQL through asyncpg. Every statement is a named query of
``dispatcher/sql/queries.sql``; the schema is built by the numbered migrations
of ``dispatcher/sql/migrations`` (:func:`migrate`, ``capcast db migrate``).
The :class:`Store` takes its pool as an argument (one composition root makes
it, :func:`create_pool`); records come back as frozen dataclasses built with
``from_row``. Driver errors never leave this module: they are translated at
the boundary into :class:`~dispatcher.errors.StoreError` and its family.

The ingest path, in the order the pipeline calls it:

1. :meth:`Store.insert_raw_alert` stores the bytes verbatim with their SHA-256
   before anything else, so that nothing received is lost whatever happens next.
2. :meth:`Store.record_validation` stores the parsed form and the findings and
   claims the key (sender, identifier, sent). Idempotency lives here: the key
   is unique among alerts that are neither refused nor duplicates (a partial
   unique index), so of two identical documents arriving at once exactly one
   becomes the alert and the other is recorded as its ``duplicate`` (outcome
   REPEAT, answered with the first alert's id); the same key with other
   content is refused as a CONFLICT. "The same content" means the same bytes
   or the same parsed form (a re-serialized copy is a repeat).
3. :meth:`Store.accept_alert_with_jobs` accepts the alert and writes its jobs
   in one transaction (the outbox): an accepted alert always has its jobs, and
   the workers are notified at commit (a trigger on ``jobs``).

Alert states: received -> validated -> refused | accepted (nothing to send) |
planned -> dispatching -> done | cancelled | expired; ``duplicate`` for a
repeat. Jobs and their leases are :mod:`dispatcher.queue`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import asyncpg

from cap.findings import Finding
from cap.serialize import alert_to_json
from dispatcher import sql
from dispatcher.errors import (
    DatabaseUnavailable,
    MigrationError,
    NotFound,
    SchemaNotReady,
    StateConflict,
    StoreError,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from cap.model import Alert

    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]

__all__ = [
    "AcceptResult",
    "AlertDetail",
    "AlertReference",
    "AlertState",
    "AppliedMigration",
    "AuditEntry",
    "Authority",
    "InventoryVersion",
    "Job",
    "JobKind",
    "JobState",
    "MigrationStatus",
    "NewJob",
    "Outcome",
    "PresenceEntry",
    "RawAlert",
    "Receipt",
    "Refusal",
    "Row",
    "Store",
    "StoredAlert",
    "Submission",
    "SubmissionStatus",
    "ValidationResult",
    "create_pool",
    "database_errors",
    "migrate",
    "migration_status",
    "redact_url",
]

logger = logging.getLogger(__name__)


# -- states ------------------------------------------------------------------------------


class AlertState(Enum):
    """Where an alert is in its life."""

    #: Bytes stored, not yet parsed or validated.
    RECEIVED = "received"
    #: Parsed, valid and holding its key; not yet accepted.
    VALIDATED = "validated"
    #: Not acceptable: invalid, unauthorized, or a conflicting repeat of a key.
    REFUSED = "refused"
    #: A repeat of an earlier alert (same key, same content); see ``duplicate_of``.
    DUPLICATE = "duplicate"
    #: Accepted with nothing to send (Draft, System, or no cell targeted).
    ACCEPTED = "accepted"
    #: Accepted with its jobs written; no worker has taken one yet.
    PLANNED = "planned"
    #: A worker has taken at least one of its jobs.
    DISPATCHING = "dispatching"
    #: Every job finished (succeeded, failed, cancelled or some expired).
    DONE = "done"
    #: Stopped by a Cancel or Update (``stopped_by``) or by a manager.
    CANCELLED = "cancelled"
    #: Every job expired before it finished.
    EXPIRED = "expired"


class JobKind(Enum):
    """The gateway kind a job goes through."""

    #: HTTP JSON to a cell broadcast centre (ECBE style).
    CBC_REST = "cbc-rest"
    #: SMPP 5.0 broadcast_sm to an SMSC/CBC.
    SMPP_BROADCAST = "smpp-broadcast"
    #: SMPP 3.4 submit_sm to the subscribers present in the cells (LB-SMS).
    SMPP_SMS = "smpp-sms"


class JobState(Enum):
    """Where a job is in the queue."""

    #: Waiting to be claimed (at or after ``next_attempt_at``).
    QUEUED = "queued"
    #: Held by a worker under a lease.
    RUNNING = "running"
    #: Finished: every submission was made.
    SUCCEEDED = "succeeded"
    #: Finished without success: out of attempts, or a permanent error.
    FAILED = "failed"
    #: Stopped by a Cancel, an Update or a manager.
    CANCELLED = "cancelled"
    #: Its expiry passed before it finished; unsent work was dropped.
    EXPIRED = "expired"

    @property
    def finished(self) -> bool:
        """True for the states a job never leaves."""
        return self not in (JobState.QUEUED, JobState.RUNNING)


class SubmissionStatus(Enum):
    """What became of one request to a peer."""

    #: Recorded just before it was sent; no answer yet.
    PENDING = "pending"
    #: The peer accepted it.
    ACKNOWLEDGED = "acknowledged"
    #: The peer refused it for good; do not send it again.
    REJECTED = "rejected"
    #: It failed in a way worth retrying (throttled, timed out, link lost).
    FAILED = "failed"
    #: It was pending when its worker lost the job: it may or may not have been sent.
    IN_DOUBT = "in_doubt"


class Outcome(Enum):
    """What :meth:`Store.record_validation` made of a received document."""

    #: A new alert: it holds its key and can be accepted.
    NEW = "new"
    #: The same key and content as an earlier alert: answer with ``first_id``.
    REPEAT = "repeat"
    #: The same key as an earlier alert with other content: refused (HTTP 409).
    CONFLICT = "conflict"
    #: Refused: unparseable, invalid or not authorized (see the refusal and findings).
    REFUSED = "refused"


# -- records -----------------------------------------------------------------------------


class Row(Protocol):
    """What ``from_row`` reads: a row by column name (an ``asyncpg.Record``, a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _aware(owner: str, **values: datetime | None) -> None:
    for name, value in values.items():
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(f"{owner}.{name} must be timezone-aware, got {value!r}")


def _dumps(value: Any) -> str:
    """JSON for jsonb parameters; datetimes as ISO 8601 with their offset."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        _aware("json", value=value)
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why an alert was refused: a stable ``code`` and a readable ``reason``."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Authority:
    """An alerting authority as mirrored from the configuration."""

    id: int
    sender: str
    display_name: str
    profile: str | None
    allowed_statuses: tuple[str, ...]
    jurisdiction: Any
    signature_required: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> Authority:
        """Build from a row of ``authorities``."""
        return cls(id=row["id"], sender=row["sender"], display_name=row["display_name"],
                   profile=row["profile"], allowed_statuses=tuple(row["allowed_statuses"]),
                   jurisdiction=row["jurisdiction"],
                   signature_required=row["signature_required"],
                   created_at=row["created_at"], updated_at=row["updated_at"])


@dataclass(frozen=True, slots=True, kw_only=True)
class RawAlert:
    """A received document as first stored: its id, digest and arrival time."""

    id: int
    sha256: str
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAlert:
    """One received CAP document and what became of it (the raw bytes: :meth:`Store.get_raw`).

    ``parsed`` is the JSON form of :func:`cap.serialize.alert_to_json`;
    ``findings`` the validation findings as ``Finding.to_json`` plus ``severity``.
    """

    id: int
    sha256: str
    source: str
    size: int
    received_at: datetime
    state: AlertState
    sender: str | None
    identifier: str | None
    sent: datetime | None
    status: str | None
    msg_type: str | None
    scope: str | None
    parsed: Mapping[str, Any] | None
    findings: tuple[Mapping[str, Any], ...]
    refusal: Refusal | None
    flags: tuple[str, ...]
    authority_id: int | None
    duplicate_of: int | None
    conflicts_with: int | None
    stopped_by: int | None
    expires_at: datetime | None
    plan: Mapping[str, Any] | None
    validated_at: datetime | None
    accepted_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> StoredAlert:
        """Build from a row of the ``get_alert`` column list."""
        refusal = None
        if row["refusal_code"] is not None:
            refusal = Refusal(code=row["refusal_code"], reason=row["refusal_reason"] or "")
        return cls(id=row["id"], sha256=row["sha256"], source=row["source"], size=row["size"],
                   received_at=row["received_at"], state=AlertState(row["state"]),
                   sender=row["sender"], identifier=row["identifier"], sent=row["sent"],
                   status=row["status"], msg_type=row["msg_type"], scope=row["scope"],
                   parsed=row["parsed"], findings=tuple(row["findings"]), refusal=refusal,
                   flags=tuple(row["flags"]), authority_id=row["authority_id"],
                   duplicate_of=row["duplicate_of"], conflicts_with=row["conflicts_with"],
                   stopped_by=row["stopped_by"], expires_at=row["expires_at"],
                   plan=row["plan"], validated_at=row["validated_at"],
                   accepted_at=row["accepted_at"], finished_at=row["finished_at"])

    @property
    def key(self) -> tuple[str, str, datetime] | None:
        """(sender, identifier, sent) once parsed, else None."""
        if self.sender is None or self.identifier is None or self.sent is None:
            return None
        return (self.sender, self.identifier, self.sent)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertReference:
    """One entry of an alert's ``references``; ``referenced_id`` is None while unknown."""

    position: int
    sender: str
    identifier: str
    sent: datetime
    referenced_id: int | None

    @classmethod
    def from_row(cls, row: Row) -> AlertReference:
        """Build from a row of ``alert_references``."""
        return cls(position=row["position"], sender=row["sender"],
                   identifier=row["identifier"], sent=row["sent"],
                   referenced_id=row["referenced_id"])


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationResult:
    """What :meth:`Store.record_validation` decided.

    ``alert`` is the row of the document just validated; ``first_id`` the
    alert that already held the key (REPEAT, CONFLICT); ``alert_id`` the id
    to answer the sender with.
    """

    outcome: Outcome
    alert: StoredAlert
    first_id: int | None = None
    references: tuple[AlertReference, ...] = ()

    @property
    def alert_id(self) -> int:
        """The id to answer with: the first alert's for a repeat, else this one's."""
        if self.outcome is Outcome.REPEAT and self.first_id is not None:
            return self.first_id
        return self.alert.id

    @property
    def unknown_references(self) -> tuple[AlertReference, ...]:
        """References to alerts this store has never accepted."""
        return tuple(r for r in self.references if r.referenced_id is None)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """A job to write with an accepted alert (one operator, one gateway).

    ``payload`` is JSON-ready (cells or recipients source, text, channel,
    serial number, repetition...), read by the worker of ``kind``.
    ``lock_key``: jobs sharing it run one at a time in creation order (use it
    for everything touching one broadcast, e.g. ``"Telco:4370:0x4010"``).
    """

    operator: str
    gateway: str
    kind: JobKind
    payload: Mapping[str, Any]
    expires_at: datetime | None = None
    priority: int = 0
    lock_key: str | None = None
    max_attempts: int = 10

    def __post_init__(self) -> None:
        _aware("NewJob", expires_at=self.expires_at)
        if self.max_attempts < 1:
            raise ValueError(f"NewJob.max_attempts must be at least 1, got {self.max_attempts}")

    def to_json(self) -> dict[str, Any]:
        """The form ``insert_jobs`` reads."""
        return {"operator": self.operator, "gateway": self.gateway, "kind": self.kind.value,
                "payload": self.payload, "priority": self.priority, "lock_key": self.lock_key,
                "expires_at": self.expires_at, "max_attempts": self.max_attempts}


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A job as stored: what to do, and where it is in the queue.

    A claimed job is also the worker's lease: ``lease_owner`` and ``attempts``
    fence every later write (a worker that lost the lease cannot write).
    """

    id: int
    alert_id: int
    operator: str
    gateway: str
    kind: JobKind
    payload: Mapping[str, Any]
    priority: int
    lock_key: str | None
    expires_at: datetime | None
    state: JobState
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    last_error: str | None
    result: Mapping[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> Job:
        """Build from a row of ``jobs``."""
        return cls(id=row["id"], alert_id=row["alert_id"], operator=row["operator"],
                   gateway=row["gateway"], kind=JobKind(row["kind"]), payload=row["payload"],
                   priority=row["priority"], lock_key=row["lock_key"],
                   expires_at=row["expires_at"], state=JobState(row["state"]),
                   attempts=row["attempts"], max_attempts=row["max_attempts"],
                   next_attempt_at=row["next_attempt_at"], lease_owner=row["lease_owner"],
                   lease_expires_at=row["lease_expires_at"], heartbeat_at=row["heartbeat_at"],
                   last_error=row["last_error"], result=row["result"],
                   created_at=row["created_at"], started_at=row["started_at"],
                   finished_at=row["finished_at"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """One request to a peer (an SMPP PDU, a CBC REST call) and its answer."""

    id: int
    job_id: int
    attempt: int
    item: str
    sequence_number: int | None
    message_id: str | None
    status: SubmissionStatus
    sent_at: datetime
    acked_at: datetime | None
    error: str | None
    details: Mapping[str, Any] | None

    @classmethod
    def from_row(cls, row: Row) -> Submission:
        """Build from a row of ``submissions``."""
        return cls(id=row["id"], job_id=row["job_id"], attempt=row["attempt"],
                   item=row["item"], sequence_number=row["sequence_number"],
                   message_id=row["message_id"], status=SubmissionStatus(row["status"]),
                   sent_at=row["sent_at"], acked_at=row["acked_at"], error=row["error"],
                   details=row["details"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """A delivery receipt; ``submission_id`` is None until its submission is known."""

    id: int
    operator: str
    gateway: str
    message_id: str
    submission_id: int | None
    state: str
    received_at: datetime
    raw: Any

    @classmethod
    def from_row(cls, row: Row) -> Receipt:
        """Build from a row of ``receipts``."""
        return cls(id=row["id"], operator=row["operator"], gateway=row["gateway"],
                   message_id=row["message_id"], submission_id=row["submission_id"],
                   state=row["state"], received_at=row["received_at"], raw=row["raw"])


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptResult:
    """An accepted alert with the jobs written for it and the jobs it stopped."""

    alert: StoredAlert
    jobs: tuple[Job, ...]
    stopped_jobs: tuple[int, ...] = ()
    stopped_alerts: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertDetail:
    """One alert with everything recorded about it."""

    alert: StoredAlert
    references: tuple[AlertReference, ...]
    jobs: tuple[Job, ...]
    submissions: tuple[Submission, ...]
    receipts: tuple[Receipt, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceEntry:
    """A subscriber reported present in a cell by an operator."""

    msisdn: str
    cell_id: str
    reported_at: datetime

    def __post_init__(self) -> None:
        _aware("PresenceEntry", reported_at=self.reported_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryVersion:
    """One loaded cell inventory file of an operator."""

    id: int
    operator: str
    version: int
    path: str
    sha256: str
    cell_count: int
    created_at: datetime
    active: bool

    @classmethod
    def from_row(cls, row: Row) -> InventoryVersion:
        """Build from a row of ``inventory_versions``."""
        return cls(id=row["id"], operator=row["operator"], version=row["version"],
                   path=row["path"], sha256=row["sha256"], cell_count=row["cell_count"],
                   created_at=row["created_at"], active=row["active"])


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One line of the append-only audit log."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    details: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Row) -> AuditEntry:
        """Build from a row of ``audit_log``."""
        return cls(id=row["id"], at=row["at"], actor=row["actor"], action=row["action"],
                   subject=row["subject"], details=row["details"])


# -- errors and connections --------------------------------------------------------------


# Up to the last "@": a password may hold an unescaped "@" or "/".
_URL_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^:/@?#]*):(?P<pw>.*)@(?=[^@]*$)",
                           re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&#]*", re.IGNORECASE)
_DSN_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)",
                           re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs).

    Handles ``postgresql://user:pw@host/db``, ``?password=pw`` and libpq's
    ``key=value`` strings; an empty password is dropped with its colon.
    """
    if "://" not in url:
        return _DSN_PASSWORD.sub(r"\g<head>***", url)
    redacted = _URL_PASSWORD.sub(
        lambda m: f"{m['head']}:***@" if m["pw"] else f"{m['head']}@", url, count=1)
    return _QUERY_PASSWORD.sub(r"\g<head>***", redacted)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def translate_error(exc: BaseException, *, operation: str,
                    url: str | None = None) -> StoreError | None:
    """The :class:`StoreError` for a driver or socket error, or None for anything else.

    Programming errors (a TypeError from a bad argument) are not translated:
    they should fail loudly where they happen.
    """
    where = f"PostgreSQL at {url}" if url else "PostgreSQL"
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError,
                        asyncpg.UndefinedObjectError, asyncpg.UndefinedColumnError)):
        return SchemaNotReady(
            f"{operation}: the database lacks capcast's schema ({_describe(exc)}); run "
            f"`capcast db migrate`", operation=operation, url=url, sqlstate=exc.sqlstate)
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return DatabaseUnavailable(f"{where} refused the login: {_describe(exc)}",
                                   operation=operation, url=url, sqlstate=exc.sqlstate)
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return DatabaseUnavailable(f"{where}: {_describe(exc)}", operation=operation, url=url,
                                   sqlstate=exc.sqlstate)
    if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError)):
        return DatabaseUnavailable(f"{operation}: lost or refused connection to {where}: "
                                   f"{_describe(exc)}", operation=operation, url=url,
                                   sqlstate=exc.sqlstate)
    if isinstance(exc, asyncpg.PostgresError):
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        return StoreError(f"{operation}: {_describe(exc)}{detail} [SQLSTATE {exc.sqlstate}]",
                          operation=operation, url=url, sqlstate=exc.sqlstate)
    if isinstance(exc, asyncpg.InternalClientError):
        # What a connection that broke mid-operation raises on its next use (seen while
        # PostgreSQL restarts): "cannot switch to state N; another operation is in progress".
        return DatabaseUnavailable(f"{operation}: the connection to {where} broke "
                                   f"({_describe(exc)})", operation=operation, url=url)
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
        return DatabaseUnavailable(f"{operation}: the connection to {where} is closed "
                                   f"({_describe(exc)})", operation=operation, url=url)
    if isinstance(exc, (OSError, TimeoutError)):
        reason = _describe(exc)
        if isinstance(exc, OSError) and exc.errno:
            # asyncio says "Connect call failed (addr)"; the errno says why.
            reason = f"{os.strerror(exc.errno)} ({exc.strerror or reason})"
        elif isinstance(exc, TimeoutError):
            reason = f"timed out ({reason})" if str(exc) else "timed out"
        return DatabaseUnavailable(f"cannot reach {where}: {reason}", operation=operation,
                                   url=url)
    return None


@contextlib.asynccontextmanager
async def database_errors(operation: str, url: str | None = None) -> AsyncIterator[None]:
    """Translate driver errors raised inside the block into :class:`StoreError`."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        translated = translate_error(exc, operation=operation, url=url)
        if translated is None:
            raise
        raise translated from exc


async def _init_connection(connection: Any) -> None:
    # jsonb both ways as Python values, so queries pass dicts and lists and get them back.
    await connection.set_type_codec("jsonb", encoder=_dumps, decoder=json.loads,
                                    schema="pg_catalog")


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10,
                      timeout: float = 10.0) -> Pool:
    """A connection pool for ``url`` with capcast's codecs (jsonb as Python values).

    The queue's :meth:`~dispatcher.queue.Queue.listen` holds one connection
    while it listens: give a pool that also serves workers at least 2.

    Raises:
        DatabaseUnavailable: the server cannot be reached or refused the login;
            the message names the URL without its password.

    """
    async with database_errors("connect", redact_url(url)):
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                         timeout=timeout, init=_init_connection)
    assert pool is not None
    return pool


# -- migrations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedMigration:
    """A migration recorded in ``schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime

    @property
    def label(self) -> str:
        """``0001_initial``."""
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationStatus:
    """How a database's schema compares with the migrations this capcast ships."""

    applied: tuple[AppliedMigration, ...]
    pending: tuple[sql.Migration, ...]
    #: Applied migrations this capcast does not know (the database is newer).
    unknown: tuple[AppliedMigration, ...]
    #: Applied migrations whose file changed since (label, applied checksum, file checksum).
    changed: tuple[tuple[str, str, str], ...]

    @property
    def version(self) -> int:
        """The highest applied version (0 for an empty database)."""
        return max((m.version for m in self.applied), default=0)

    @property
    def up_to_date(self) -> bool:
        """True when every shipped migration is applied and nothing is amiss."""
        return not (self.pending or self.unknown or self.changed)


def _status(applied: Sequence[AppliedMigration],
            shipped: Sequence[sql.Migration]) -> MigrationStatus:
    by_version = {m.version: m for m in shipped}
    done = {m.version for m in applied}
    changed = tuple((a.label, a.checksum, by_version[a.version].checksum) for a in applied
                    if a.version in by_version and by_version[a.version].checksum != a.checksum)
    return MigrationStatus(applied=tuple(applied),
                           pending=tuple(m for m in shipped if m.version not in done),
                           unknown=tuple(a for a in applied if a.version not in by_version),
                           changed=changed)


async def _applied(connection: Connection) -> list[AppliedMigration]:
    if not await connection.fetchval(sql.query("migrations_table_exists")):
        return []
    rows = await connection.fetch(sql.query("applied_migrations"))
    return [AppliedMigration(version=r["version"], name=r["name"], checksum=r["checksum"],
                             applied_at=r["applied_at"]) for r in rows]


async def migration_status(pool: Pool, *, url: str | None = None) -> MigrationStatus:
    """Which migrations are applied, pending, unknown or changed; changes nothing."""
    async with database_errors("migration_status", url), pool.acquire() as connection:
        return _status(await _applied(connection), sql.migrations())


async def migrate(pool: Pool, *, url: str | None = None) -> list[sql.Migration]:
    """Apply every pending migration, each once, each in its own transaction.

    A session-level advisory lock makes concurrent callers (two services
    starting at once) take turns: the second finds nothing left to do. Returns
    the migrations applied by this call, in order.

    Raises:
        MigrationError: a migration failed (the database keeps the ones before
            it), an applied migration's file changed, or the database has
            migrations this capcast does not know (it is newer).
        DatabaseUnavailable: the database cannot be reached.

    """
    shipped = sql.migrations()
    applied_now: list[sql.Migration] = []
    async with database_errors("migrate", url), pool.acquire() as connection:
        await connection.execute(sql.query("migration_lock"))
        try:
            await connection.execute(sql.query("create_migrations_table"))
            status = _status(await _applied(connection), shipped)
            if status.unknown:
                raise MigrationError(
                    f"the database has migrations this capcast does not know "
                    f"({', '.join(m.label for m in status.unknown)}): it was migrated by a "
                    f"newer version", operation="migrate", url=url)
            if status.changed:
                label, was, now = status.changed[0]
                raise MigrationError(
                    f"migration {label} changed after it was applied (applied {was[:12]}, "
                    f"file {now[:12]}): add a new migration instead of editing one",
                    operation="migrate", url=url)
            for migration in status.pending:
                started = time.perf_counter()
                try:
                    async with connection.transaction():
                        await connection.execute(migration.sql)
                        await connection.execute(sql.query("record_migration"),
                                                 migration.version, migration.name,
                                                 migration.checksum)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"migration {migration.label} failed: {_describe(exc)} "
                        f"[SQLSTATE {exc.sqlstate}]; nothing of it was applied",
                        operation="migrate", url=url, sqlstate=exc.sqlstate) from exc
                logger.info("applied migration %s", migration.label,
                            extra={"action": "db_migrate", "migration": migration.label,
                                   "elapsed_ms": round((time.perf_counter() - started) * 1e3,
                                                       1)})
                applied_now.append(migration)
        finally:
            # A broken connection releases the lock by itself; do not mask the first error.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await connection.execute(sql.query("migration_unlock"))
    return applied_now


# -- the store ---------------------------------------------------------------------------


def _finding_json(finding: Finding) -> dict[str, object]:
    return {"severity": finding.severity.value, **finding.to_json()}


def _latest_expiry(alert: Alert) -> datetime | None:
    expiries = [info.expires for info in alert.infos if info.expires is not None]
    return max(expiries) if expiries else None


@dataclass(slots=True, kw_only=True)
class PoolClient:
    """A connection pool with driver errors translated: the base of Store and Queue.

    ``url`` is used only to name the database, password removed, in error messages.
    """

    pool: Pool
    url: str | None = None
    _redacted: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._redacted = redact_url(self.url) if self.url else None

    @contextlib.asynccontextmanager
    async def _connection(self, operation: str) -> AsyncIterator[Connection]:
        async with database_errors(operation, self._redacted), \
                self.pool.acquire() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def _transaction(self, operation: str) -> AsyncIterator[Connection]:
        async with database_errors(operation, self._redacted), \
                self.pool.acquire() as connection, connection.transaction():
            yield connection


@dataclass(slots=True, kw_only=True)
class Store(PoolClient):
    """The store's operations on one pool (see the module docstring for the ingest path).

    ``url`` (password removed by :func:`redact_url`) only names the database
    in error messages. Every method raises :class:`~dispatcher.errors.StoreError`
    (or a subclass) on database trouble, never a driver exception.
    """

    # -- authorities ---------------------------------------------------------------------

    async def upsert_authority(self, *, sender: str, display_name: str,
                               profile: str | None = None,
                               allowed_statuses: Collection[str] = (),
                               jurisdiction: Any = None,
                               signature_required: bool = False) -> Authority:
        """Create or update the authority ``sender`` (from the configuration)."""
        async with self._connection("upsert_authority") as conn:
            row = await conn.fetchrow(sql.query("upsert_authority"), sender, display_name,
                                      profile, list(allowed_statuses), jurisdiction,
                                      signature_required)
        assert row is not None
        return Authority.from_row(row)

    async def get_authority(self, sender: str) -> Authority | None:
        """The authority with this CAP sender, or None."""
        async with self._connection("get_authority") as conn:
            row = await conn.fetchrow(sql.query("get_authority"), sender)
        return Authority.from_row(row) if row is not None else None

    async def list_authorities(self) -> list[Authority]:
        """Every authority, by sender."""
        async with self._connection("list_authorities") as conn:
            rows = await conn.fetch(sql.query("list_authorities"))
        return [Authority.from_row(r) for r in rows]

    # -- ingest --------------------------------------------------------------------------

    async def insert_raw_alert(self, raw: bytes, *, source: str) -> RawAlert:
        """Store a received document verbatim, first of all; state ``received``.

        ``source`` says where it came from (``"api:TOKEN-NAME"``, ``"feed:URL"``,
        ``"drill"``). Call this before parsing: even bytes that are not XML are kept.
        """
        digest = hashlib.sha256(raw).hexdigest()
        async with self._connection("insert_raw_alert") as conn:
            row = await conn.fetchrow(sql.query("insert_raw_alert"), raw, digest, source)
        assert row is not None
        return RawAlert(id=row["id"], sha256=row["sha256"], received_at=row["received_at"])

    async def record_validation(self, alert_id: int, *, alert: Alert | None,
                                findings: Sequence[Finding] = (),
                                refusal: Refusal | None = None,
                                flags: Collection[str] = ()) -> ValidationResult:
        """Record what parsing and validation found, and claim the alert's key.

        ``alert`` is the parsed alert (None when the bytes could not be read
        as CAP); ``findings`` every finding; ``refusal`` a reason to refuse
        the alert even when it is valid (authorization: pass it here, or call
        :meth:`refuse_alert` later). Without a refusal and without error
        findings, the alert claims its key and the outcome is NEW, REPEAT
        (same key, same bytes or parsed form) or CONFLICT (same key, other
        content). References are resolved to the alerts that hold their
        keys; unresolved ones add the flag ``unknown_references``.

        Raises:
            NotFound: no such alert.
            StateConflict: the alert was already validated.

        """
        errors = [f for f in findings if f.is_error]
        if refusal is None and errors:
            refusal = Refusal(code="invalid", reason=str(errors[0]) + (
                f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""))
        if refusal is None and alert is None:
            refusal = Refusal(code="not-cap", reason="the document could not be read as CAP")
        parsed = alert_to_json(alert) if alert is not None else None
        finding_rows = [_finding_json(f) for f in findings]
        all_flags = list(dict.fromkeys(flags))
        async with self._transaction("record_validation") as conn:
            state = await conn.fetchval(sql.query("lock_alert_state"), alert_id)
            if state is None:
                raise NotFound("alert", alert_id, operation="record_validation")
            if state != AlertState.RECEIVED.value:
                raise StateConflict(f"alert {alert_id} was already validated (it is {state})",
                                    state=state, operation="record_validation")
            references: list[AlertReference] = []
            if alert is not None and alert.references:
                rows = await conn.fetch(
                    sql.query("insert_references"), alert_id,
                    [r.sender for r in alert.references],
                    [r.identifier for r in alert.references],
                    [r.sent for r in alert.references])
                resolved = {r["position"]: r["referenced_id"] for r in rows}
                references = [AlertReference(position=i, sender=r.sender,
                                             identifier=r.identifier, sent=r.sent,
                                             referenced_id=resolved.get(i))
                              for i, r in enumerate(alert.references, start=1)]
                if any(r.referenced_id is None for r in references):
                    all_flags.append("unknown_references")

            async def write(state: AlertState, *, refusal: Refusal | None = None,
                            duplicate_of: int | None = None,
                            conflicts_with: int | None = None) -> None:
                await conn.execute(
                    sql.query("record_validation"), alert_id, state.value,
                    alert.sender if alert else None, alert.identifier if alert else None,
                    alert.sent if alert else None, alert.status.value if alert else None,
                    alert.msg_type.value if alert else None,
                    alert.scope.value if alert else None, parsed, finding_rows,
                    refusal.code if refusal else None, refusal.reason if refusal else None,
                    all_flags, _latest_expiry(alert) if alert else None, duplicate_of,
                    conflicts_with)

            outcome, first_id = Outcome.REFUSED, None
            if refusal is not None or alert is None:
                await write(AlertState.REFUSED, refusal=refusal)
            else:
                outcome, first_id = await self._claim_key(conn, alert_id, alert, parsed, write)
            row = await conn.fetchrow(sql.query("get_alert"), alert_id)
        assert row is not None
        return ValidationResult(outcome=outcome, alert=StoredAlert.from_row(row),
                                first_id=first_id, references=tuple(references))

    @staticmethod
    async def _claim_key(conn: Connection, alert_id: int, alert: Alert,
                         parsed: Mapping[str, Any] | None,
                         write: Callable[..., Awaitable[None]]) -> tuple[Outcome, int | None]:
        # The holder of a key may be refused between our failed claim and the look-up
        # (its key is then free): try again, a few times at most.
        for _ in range(5):
            try:
                # A savepoint: a key already held aborts only this statement.
                async with conn.transaction():
                    await write(AlertState.VALIDATED)
            except asyncpg.UniqueViolationError:
                owner = await conn.fetchrow(sql.query("key_owner"), alert.sender,
                                            alert.identifier, alert.sent, alert_id, parsed)
                if owner is None:
                    continue
                first_id: int = owner["id"]
                if owner["same_content"]:
                    await write(AlertState.DUPLICATE, duplicate_of=first_id)
                    return Outcome.REPEAT, first_id
                await write(AlertState.REFUSED, conflicts_with=first_id, refusal=Refusal(
                    code="conflict",
                    reason=f"alert {first_id} has the same sender, identifier and sent but "
                           f"other content"))
                return Outcome.CONFLICT, first_id
            await conn.execute(sql.query("resolve_references_to"), alert_id, alert.sender,
                               alert.identifier, alert.sent)
            return Outcome.NEW, None
        raise StateConflict(f"alert {alert_id}: the key {alert.key!r} kept changing hands",
                            operation="record_validation")

    async def refuse_alert(self, alert_id: int, refusal: Refusal) -> StoredAlert:
        """Refuse a received or validated alert (e.g. not authorized); frees its key.

        Raises:
            NotFound: no such alert.
            StateConflict: the alert is past validation (accepted, a duplicate...).

        """
        async with self._transaction("refuse_alert") as conn:
            done = await conn.fetchval(sql.query("refuse_alert"), alert_id, refusal.code,
                                       refusal.reason)
            row = await conn.fetchrow(sql.query("get_alert"), alert_id)
        if row is None:
            raise NotFound("alert", alert_id, operation="refuse_alert")
        if done is None:
            raise StateConflict(f"alert {alert_id} cannot be refused: it is {row['state']}",
                                state=row["state"], operation="refuse_alert")
        return StoredAlert.from_row(row)

    async def accept_alert_with_jobs(self, alert_id: int, jobs: Sequence[NewJob], *,
                                     plan: Mapping[str, Any] | None = None,
                                     flags: Collection[str] = (),
                                     stop_alerts: Collection[int] = (),
                                     stop_state: JobState = JobState.CANCELLED,
                                     actor: str = "system") -> AcceptResult:
        """Accept a validated alert and write its jobs, in one transaction (the outbox).

        Either the alert is accepted with every one of its jobs, or nothing
        changes: there is never an accepted alert without its jobs. With jobs
        the alert becomes ``planned`` and the workers are notified when the
        transaction commits; without, ``accepted`` (stored, nothing to send).
        ``plan`` is the planner's summary (targeting report) kept with the
        alert; ``flags`` are added to the alert's.

        ``stop_alerts`` (for an Update or a Cancel) are the ids of earlier
        alerts whose unfinished jobs are stopped in the same transaction (as
        ``stop_state``: cancelled, or expired) and which become ``cancelled``
        with ``stopped_by`` this alert. A worker holding one of those jobs
        learns it at its next heartbeat or submission (:class:`JobStopped`).

        Raises:
            NotFound: no such alert.
            StateConflict: the alert is not ``validated`` (refused, a duplicate,
                or accepted already).

        """
        if stop_state not in (JobState.CANCELLED, JobState.EXPIRED):
            raise ValueError(f"stop_state must be cancelled or expired, not {stop_state.value}")
        state = AlertState.PLANNED if jobs else AlertState.ACCEPTED
        async with self._transaction("accept_alert_with_jobs") as conn:
            done = await conn.fetchval(sql.query("accept_alert"), alert_id, state.value,
                                       plan, list(flags))
            if done is None:
                current = await conn.fetchval(sql.query("alert_state"), alert_id)
                if current is None:
                    raise NotFound("alert", alert_id, operation="accept_alert_with_jobs")
                raise StateConflict(f"alert {alert_id} cannot be accepted: it is {current}",
                                    state=current, operation="accept_alert_with_jobs")
            rows = []
            if jobs:
                rows = await conn.fetch(sql.query("insert_jobs"), alert_id,
                                        [j.to_json() for j in jobs])
            stopped_jobs: list[int] = []
            stopped_alerts: list[int] = []
            others = sorted(set(stop_alerts) - {alert_id})
            if others:
                stopped = await conn.fetch(sql.query("stop_jobs_of_alerts"), others,
                                           stop_state.value, f"stopped by alert {alert_id}")
                stopped_jobs = [r["id"] for r in stopped]
                stopped_alerts = [r["id"] for r in await conn.fetch(
                    sql.query("stop_alerts"), others, AlertState.CANCELLED.value, alert_id)]
            await conn.execute(sql.query("append_audit"), actor, "alert.accepted",
                               f"alert:{alert_id}",
                               {"jobs": len(rows), "stopped_alerts": stopped_alerts,
                                "stopped_jobs": len(stopped_jobs)})
            alert_row = await conn.fetchrow(sql.query("get_alert"), alert_id)
        assert alert_row is not None
        return AcceptResult(alert=StoredAlert.from_row(alert_row),
                            jobs=tuple(sorted((Job.from_row(r) for r in rows),
                                              key=lambda j: j.id)),
                            stopped_jobs=tuple(stopped_jobs),
                            stopped_alerts=tuple(stopped_alerts))

    # -- reading alerts ------------------------------------------------------------------

    async def find_by_key(self, sender: str, identifier: str,
                          sent: datetime) -> StoredAlert | None:
        """The alert holding the key (sender, identifier, sent), or None."""
        _aware("find_by_key", sent=sent)
        async with self._connection("find_by_key") as conn:
            row = await conn.fetchrow(sql.query("find_by_key"), sender, identifier, sent)
        return StoredAlert.from_row(row) if row is not None else None

    async def get_alert(self, alert_id: int) -> StoredAlert:
        """One alert (without its bytes).

        Raises:
            NotFound: no such alert.

        """
        async with self._connection("get_alert") as conn:
            row = await conn.fetchrow(sql.query("get_alert"), alert_id)
        if row is None:
            raise NotFound("alert", alert_id, operation="get_alert")
        return StoredAlert.from_row(row)

    async def get_raw(self, alert_id: int) -> bytes:
        """The bytes of a received document, exactly as they arrived.

        Raises:
            NotFound: no such alert.

        """
        async with self._connection("get_raw") as conn:
            raw = await conn.fetchval(sql.query("get_raw_alert"), alert_id)
        if raw is None:
            raise NotFound("alert", alert_id, operation="get_raw")
        return bytes(raw)

    async def get_alert_detail(self, alert_id: int) -> AlertDetail:
        """One alert with its references, jobs, submissions and receipts (one snapshot).

        Raises:
            NotFound: no such alert.

        """
        async with self._connection("get_alert_detail") as conn, \
                conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(sql.query("get_alert"), alert_id)
            if row is None:
                raise NotFound("alert", alert_id, operation="get_alert_detail")
            refs = await conn.fetch(sql.query("references_of_alert"), alert_id)
            jobs = await conn.fetch(sql.query("jobs_of_alert"), alert_id)
            subs = await conn.fetch(sql.query("submissions_of_alert"), alert_id)
            receipts = await conn.fetch(sql.query("receipts_of_alert"), alert_id)
        return AlertDetail(alert=StoredAlert.from_row(row),
                           references=tuple(AlertReference.from_row(r) for r in refs),
                           jobs=tuple(Job.from_row(r) for r in jobs),
                           submissions=tuple(Submission.from_row(r) for r in subs),
                           receipts=tuple(Receipt.from_row(r) for r in receipts))

    async def list_alerts(self, *, status: str | None = None, sender: str | None = None,
                          states: Collection[AlertState] | None = None,
                          since: datetime | None = None, until: datetime | None = None,
                          before_id: int | None = None, limit: int = 50) -> list[StoredAlert]:
        """Alerts newest first, filtered by CAP status, sender, state and arrival time.

        ``since``/``until`` bound ``received_at`` (``since`` inclusive);
        ``before_id`` continues a listing after its last id.
        """
        _aware("list_alerts", since=since, until=until)
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        state_values = [s.value for s in states] if states is not None else None
        async with self._connection("list_alerts") as conn:
            rows = await conn.fetch(sql.query("list_alerts"), status, sender, state_values,
                                    since, until, before_id, limit)
        return [StoredAlert.from_row(r) for r in rows]

    # -- receipts ------------------------------------------------------------------------

    async def record_receipt(self, *, operator: str, gateway: str, message_id: str,
                             state: str, raw: Any = None,
                             received_at: datetime | None = None) -> Receipt:
        """Record a delivery receipt, matched to its submission by message id when known.

        A receipt that overtakes its submission's answer is matched later, when
        the answer is settled (:meth:`dispatcher.queue.Queue.settle_submissions`).
        """
        _aware("record_receipt", received_at=received_at)
        async with self._connection("record_receipt") as conn:
            row = await conn.fetchrow(sql.query("record_receipt"), operator, gateway,
                                      message_id, state, received_at, raw)
        assert row is not None
        return Receipt.from_row(row)

    # -- presence ------------------------------------------------------------------------

    async def upsert_presence(self, operator: str, entries: Iterable[PresenceEntry]) -> int:
        """Add or move subscribers; a report older than the stored one is ignored.

        Returns the number of entries given (after keeping the newest per MSISDN).
        """
        newest: dict[str, PresenceEntry] = {}
        for entry in entries:
            held = newest.get(entry.msisdn)
            if held is None or held.reported_at <= entry.reported_at:
                newest[entry.msisdn] = entry
        values = list(newest.values())
        async with self._connection("upsert_presence") as conn:
            await conn.execute(sql.query("upsert_presence"), operator,
                               [e.msisdn for e in values], [e.cell_id for e in values],
                               [e.reported_at for e in values])
        return len(values)

    async def load_presence(self, operator: str,
                            rows: Iterable[tuple[str, str, datetime]], *,
                            replace: bool = True) -> int:
        """Bulk-load (msisdn, cell_id, reported_at) rows for ``operator`` with COPY.

        ``replace``: the rows are the operator's whole snapshot; its earlier
        presence is dropped in the same transaction (readers see the old or the
        new snapshot, never half of one). Otherwise they are merged, the newest
        report per subscriber winning. Either way, of several rows for one
        subscriber the newest counts. Returns the number of rows read.
        """
        count = 0
        if replace:
            # Deduplicated here, so COPY goes straight into the table (no staging, no
            # ON CONFLICT): the fast path for the usual full snapshot.
            newest: dict[str, tuple[str, datetime]] = {}
            for msisdn, cell_id, reported_at in rows:
                count += 1
                held = newest.get(msisdn)
                if held is None or held[1] <= reported_at:
                    newest[msisdn] = (cell_id, reported_at)
            records: Iterable[tuple[str, str, str, datetime]] = (
                (operator, msisdn, cell, at) for msisdn, (cell, at) in newest.items())
        else:
            def counted() -> Iterable[tuple[str, str, str, datetime]]:
                nonlocal count
                for msisdn, cell_id, reported_at in rows:
                    count += 1
                    yield (operator, msisdn, cell_id, reported_at)

            records = counted()
        columns = ("operator", "msisdn", "cell_id", "reported_at")
        async with self._transaction("load_presence") as conn:
            if replace:
                await conn.execute(sql.query("delete_presence_of_operator"), operator)
                await conn.copy_records_to_table("presence", records=records, columns=columns)
            else:
                await conn.execute(sql.query("create_presence_staging"))
                await conn.copy_records_to_table("presence_staging", records=records,
                                                 columns=columns)
                await conn.execute(sql.query("merge_presence_staging"))
        return count

    async def presence_in_cells(self, operator: str, cell_ids: Collection[str], *,
                                since: datetime | None = None) -> list[PresenceEntry]:
        """The subscribers of ``operator`` in these cells (reported at or after ``since``)."""
        _aware("presence_in_cells", since=since)
        async with self._connection("presence_in_cells") as conn:
            rows = await conn.fetch(sql.query("presence_in_cells"), operator, list(cell_ids),
                                    since)
        return [PresenceEntry(msisdn=r["msisdn"], cell_id=r["cell_id"],
                              reported_at=r["reported_at"]) for r in rows]

    async def count_presence(self, operator: str) -> int:
        """How many subscribers ``operator`` has reported."""
        async with self._connection("count_presence") as conn:
            return int(await conn.fetchval(sql.query("count_presence"), operator))

    async def prune_presence(self, operator: str, older_than: datetime) -> int:
        """Forget reports of ``operator`` older than ``older_than``; returns how many."""
        _aware("prune_presence", older_than=older_than)
        async with self._connection("prune_presence") as conn:
            status = await conn.execute(sql.query("prune_presence"), operator, older_than)
        return int(status.split()[-1])

    # -- inventory -----------------------------------------------------------------------

    async def add_inventory_version(self, *, operator: str, path: str, sha256: str,
                                    cell_count: int, activate: bool = True) -> InventoryVersion:
        """Record a new inventory file for ``operator`` (version = previous + 1).

        With ``activate`` it becomes the active version and the previous one
        is deactivated, atomically.
        """
        async with self._transaction("add_inventory_version") as conn:
            await conn.execute(sql.query("lock_inventory_operator"), operator)
            if activate:
                await conn.execute(sql.query("deactivate_inventory"), operator)
            row = await conn.fetchrow(sql.query("insert_inventory_version"), operator, path,
                                      sha256, cell_count, activate)
        assert row is not None
        return InventoryVersion.from_row(row)

    async def activate_inventory_version(self, operator: str, version: int) -> InventoryVersion:
        """Make ``version`` the active inventory of ``operator`` (e.g. to roll back).

        Raises:
            NotFound: the operator has no such version.

        """
        async with self._transaction("activate_inventory_version") as conn:
            await conn.execute(sql.query("lock_inventory_operator"), operator)
            await conn.execute(sql.query("deactivate_inventory"), operator)
            row = await conn.fetchrow(sql.query("activate_inventory_version"), operator,
                                      version)
            if row is None:
                raise NotFound("inventory version", f"{operator} v{version}",
                               operation="activate_inventory_version")
        return InventoryVersion.from_row(row)

    async def active_inventory(self, operator: str) -> InventoryVersion | None:
        """The active inventory version of ``operator``, or None."""
        async with self._connection("active_inventory") as conn:
            row = await conn.fetchrow(sql.query("active_inventory"), operator)
        return InventoryVersion.from_row(row) if row is not None else None

    async def list_inventory_versions(self,
                                      operator: str | None = None) -> list[InventoryVersion]:
        """Every inventory version (of one operator), by operator and version."""
        async with self._connection("list_inventory_versions") as conn:
            rows = await conn.fetch(sql.query("list_inventory_versions"), operator)
        return [InventoryVersion.from_row(r) for r in rows]

    # -- audit ---------------------------------------------------------------------------

    async def live_message_codes(self, at: datetime) -> frozenset[int]:
        """Message codes of broadcasts that may be on the air at ``at`` (see queries.sql)."""
        _aware("live_message_codes", at=at)
        async with self._connection("live_message_codes") as conn:
            rows = await conn.fetch(sql.query("live_message_codes"), at)
        return frozenset(int(row["code"]) for row in rows if row["code"] is not None)

    async def audit(self, *, actor: str, action: str, subject: str | None = None,
                    details: Mapping[str, Any] | None = None) -> AuditEntry:
        """Append a line to the audit log (which refuses changes and deletions)."""
        async with self._connection("audit") as conn:
            row = await conn.fetchrow(sql.query("append_audit"), actor, action, subject,
                                      dict(details or {}))
        assert row is not None
        return AuditEntry.from_row(row)

    async def audit_entries(self, *, subject: str | None = None, action: str | None = None,
                            before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """Audit lines newest first, optionally about one subject or of one action."""
        async with self._connection("audit_entries") as conn:
            rows = await conn.fetch(sql.query("audit_entries"), subject, action, before_id,
                                    limit)
        return [AuditEntry.from_row(r) for r in rows]

    # -- the HTTP API's searches ---------------------------------------------------------

    async def search_alerts(self, *, status: str | None = None, sender: str | None = None,
                            states: Collection[AlertState] | None = None,
                            since: datetime | None = None, until: datetime | None = None,
                            before_id: int | None = None, operator: str | None = None,
                            source: str | None = None, limit: int = 50) -> list[StoredAlert]:
        """:meth:`list_alerts` with two more filters, newest first.

        ``operator``: only alerts with at least one job for that operator.
        ``source``: with ``sender``, alerts received from this source
        (``"api:TOKEN"``) match too, whatever their sender (an unreadable
        document has none).
        """
        _aware("search_alerts", since=since, until=until)
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        state_values = [s.value for s in states] if states is not None else None
        async with self._connection("search_alerts") as conn:
            rows = await conn.fetch(sql.query("search_alerts"), status, sender, state_values,
                                    since, until, before_id, operator, source, limit)
        return [StoredAlert.from_row(r) for r in rows]

    async def list_jobs(self, *, alert_id: int | None = None, operator: str | None = None,
                        states: Collection[JobState] | None = None, sender: str | None = None,
                        kind: JobKind | None = None, before_id: int | None = None,
                        limit: int = 50) -> list[Job]:
        """Jobs newest first, filtered by alert, operator, state, the alert's sender and kind."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        state_values = [s.value for s in states] if states is not None else None
        async with self._connection("list_jobs") as conn:
            rows = await conn.fetch(sql.query("list_jobs"), alert_id, operator, state_values,
                                    sender, kind.value if kind is not None else None,
                                    before_id, limit)
        return [Job.from_row(r) for r in rows]

    async def receipts_of_job(self, job_id: int) -> list[Receipt]:
        """The delivery receipts matched to a job's submissions, oldest first."""
        async with self._connection("receipts_of_job") as conn:
            rows = await conn.fetch(sql.query("receipts_of_job"), job_id)
        return [Receipt.from_row(r) for r in rows]

    # -- feeds ---------------------------------------------------------------------------

    async def get_feed_state(self, url: str) -> dict[str, Any] | None:
        """What the feed poller remembers of the feed at ``url`` (None: never polled).

        Keys: ``url``, ``etag``, ``last_modified``, ``checked_at``, ``changed_at``,
        ``failures``, ``last_error`` (see :mod:`dispatcher.feeds`).
        """
        async with self._connection("get_feed_state") as conn:
            row = await conn.fetchrow(sql.query("get_feed_state"), url)
        return dict(row.items()) if row is not None else None

    async def save_feed_state(self, url: str, *, etag: str | None, last_modified: str | None,
                              failures: int, last_error: str | None,
                              changed: bool) -> dict[str, Any]:
        """Remember a poll of the feed at ``url``; ``changed``: its content was new."""
        async with self._connection("save_feed_state") as conn:
            row = await conn.fetchrow(sql.query("save_feed_state"), url, etag, last_modified,
                                      failures, last_error, changed)
        assert row is not None
        return dict(row.items())

    async def known_feed_documents(self, urls: Collection[str]) -> set[str]:
        """Which of ``urls`` were fetched from a feed and handed to ingest before."""
        if not urls:
            return set()
        async with self._connection("known_feed_documents") as conn:
            rows = await conn.fetch(sql.query("known_feed_documents"), list(urls))
        return {r["url"] for r in rows}

    async def record_feed_document(self, url: str, *, feed_url: str,
                                   alert_id: int | None) -> None:
        """Remember that the CAP document at ``url`` went to ingest (answered: ``alert_id``)."""
        async with self._connection("record_feed_document") as conn:
            await conn.execute(sql.query("record_feed_document"), url, feed_url, alert_id)
