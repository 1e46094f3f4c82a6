"""The exception family of capcast's dispatcher: the store, the job queue, the embedded server.

Every error the store or the queue raises on purpose is a :class:`StoreError`,
itself a :class:`cap.errors.CapcastError`. The adapters translate driver
errors at the boundary (``raise StoreError(...) from exc``): callers never
see an ``asyncpg`` exception, and the original stays on ``__cause__``.
Messages name the database by a URL with its password removed.
"""

from __future__ import annotations

from cap.errors import CapcastError

__all__ = [
    "DatabaseUnavailable",
    "EmbeddedServerError",
    "JobStopped",
    "LeaseLost",
    "MigrationError",
    "NotFound",
    "SchemaNotReady",
    "StateConflict",
    "StoreError",
]


class StoreError(CapcastError):
    """Base of every error raised on purpose by the store, the queue and the migrations.

    ``operation`` names what was being done (``"insert_raw_alert"``, ``"claim"``),
    ``url`` the database (password removed) when known, ``sqlstate`` the
    PostgreSQL error code when the server reported one.
    """

    def __init__(self, message: str, *, operation: str | None = None, url: str | None = None,
                 sqlstate: str | None = None) -> None:
        self.message = message
        self.operation = operation
        self.url = url
        self.sqlstate = sqlstate
        super().__init__(message)


class DatabaseUnavailable(StoreError):
    """PostgreSQL cannot be reached, refused the login, or the connection broke.

    Transient from the caller's point of view: retrying later may succeed. The
    outcome of a write that was interrupted is unknown.
    """


class SchemaNotReady(StoreError):
    """The database lacks capcast's tables or has migrations pending: run ``capcast db migrate``."""


class MigrationError(StoreError):
    """A migration failed, was changed after it was applied, or the database is newer than us."""


class NotFound(StoreError):
    """The alert, job or inventory version asked for does not exist.

    ``kind`` is what was looked up (``"alert"``), ``key`` its identifier.
    """

    def __init__(self, kind: str, key: object, *, operation: str | None = None) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} {key!r}", operation=operation)


class StateConflict(StoreError):
    """The record is not in a state that allows the operation (accepting an alert twice).

    ``state`` is the state found.
    """

    def __init__(self, message: str, *, state: str | None = None,
                 operation: str | None = None) -> None:
        self.state = state
        super().__init__(message, operation=operation)


class LeaseLost(StoreError):
    """The worker no longer holds the job: its lease expired and another took it.

    The worker must stop working on the job without writing anything more; the
    job is someone else's now. ``job_id`` names it, ``state`` is its state now
    (``None`` when the job no longer exists), ``attempt`` the attempt this
    worker held.
    """

    def __init__(self, job_id: int, *, state: str | None, attempt: int, worker_id: str,
                 operation: str | None = None) -> None:
        self.job_id = job_id
        self.state = state
        self.attempt = attempt
        self.worker_id = worker_id
        super().__init__(self._describe(), operation=operation)

    def _describe(self) -> str:
        return (f"job {self.job_id}: worker {self.worker_id!r} lost its lease on attempt "
                f"{self.attempt} (the job is now {self.state or 'gone'})")


class JobStopped(LeaseLost):
    """The job was cancelled or expired while this worker held it: stop sending.

    Unlike a plain :class:`LeaseLost`, nobody else will take the job over: the
    worker should stop what is on the air when the gateway allows it.
    """

    def _describe(self) -> str:
        return f"job {self.job_id} was {self.state} while worker {self.worker_id!r} held it"


class EmbeddedServerError(StoreError):
    """The embedded PostgreSQL (pgserver) could not be started or stopped.

    ``data_dir`` is the folder of the cluster; the message ends with the last
    lines of the server's log when there is one.
    """

    def __init__(self, message: str, *, data_dir: str) -> None:
        self.data_dir = data_dir
        super().__init__(message, operation="embedded")
