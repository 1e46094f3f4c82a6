"""An embedded PostgreSQL for when no database URL is configured (the ``pgserver`` package).

``pgserver`` ships PostgreSQL's binaries in a wheel: the first run needs
nothing installed by hand. The cluster lives in ``DATA_DIR/postgres`` (by
default under the user's data directory, :func:`default_data_dir`), listens
on a Unix socket only (no TCP port), and holds one database for capcast
(``capcast``). :meth:`EmbeddedPostgres.start` initializes the cluster on first
use and starts it, or reuses the server already running on that folder (a
``capcast serve`` and a ``capcast db migrate`` can share it). Every process
that started it holds a handle; the server stops when the last one is
released (:meth:`EmbeddedPostgres.stop`, or at exit).

Platform notes: as root, pgserver runs PostgreSQL as a system user
``pgserver`` (which it creates) and opens the folder's parents to it.
platformdirs (used by pgserver for its lock file) warns once when
``XDG_RUNTIME_DIR`` is unset, as in CI and containers; the lock then lives in
``/tmp/runtime-UID``, which is fine, so that warning is silenced here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import asyncpg

from dispatcher import sql
from dispatcher.errors import EmbeddedServerError
from dispatcher.store import database_errors, redact_url

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["EmbeddedPostgres", "default_data_dir"]

logger = logging.getLogger(__name__)

#: The folder inside the data directory that holds the cluster.
CLUSTER_FOLDER = "postgres"
_LOG_LINES = 15


def default_data_dir() -> Path:
    """Capcast's data folder: ``$CAPCAST_DATA_DIR``, else the user data dir (``capcast``)."""
    configured = os.environ.get("CAPCAST_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return platformdirs.user_data_path("capcast", appauthor=False)


def _pgserver() -> ModuleType:
    # Imported on first use: importing pgserver touches platformdirs' runtime dir.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR is not set")
        import pgserver

    return pgserver


def _bundled_major() -> int | None:
    _pgserver()
    from pgserver._commands import POSTGRES_BIN_PATH

    try:
        out = subprocess.run([str(POSTGRES_BIN_PATH / "postgres"), "-V"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match[1]) if match else None


def _log_tail(cluster: Path) -> str:
    try:
        lines = (cluster / "log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    tail = "\n".join(f"  {line}" for line in lines[-_LOG_LINES:])
    return f"\nlast lines of {cluster / 'log'}:\n{tail}" if tail else ""


def _forget_dead_handles(cluster: Path) -> None:
    # pgserver stops the server when the last process holding it exits; a process
    # that was killed never says goodbye, and the server would then run forever.
    handles = cluster / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _running(pid)]
    if alive != pids:
        with contextlib.suppress(OSError):
            handles.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _DropPgserverErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


@contextlib.contextmanager
def _quiet_pgserver() -> Iterator[None]:
    # pgserver logs a failed pg_ctl at ERROR with whole command lines and outputs; we
    # raise EmbeddedServerError with the server log's tail instead, so say it once.
    pg_logger = logging.getLogger("pgserver")
    quiet = _DropPgserverErrors()
    pg_logger.addFilter(quiet)
    try:
        yield
    finally:
        pg_logger.removeFilter(quiet)


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir/postgres``, started and stopped by capcast.

    ``async with EmbeddedPostgres(path) as url: ...`` starts it (or joins the
    server already running there) and releases it afterwards.
    """

    def __init__(self, data_dir: Path | str, *, database: str = "capcast") -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.database = database
        self._server: Any = None
        self._url: str | None = None

    @property
    def cluster_dir(self) -> Path:
        """The PostgreSQL data directory (PGDATA)."""
        return self.data_dir / CLUSTER_FOLDER

    @property
    def url(self) -> str:
        """The connection URL of capcast's database (a Unix socket; no password).

        Raises:
            EmbeddedServerError: the server is not started.

        """
        if self._url is None:
            raise EmbeddedServerError("the embedded PostgreSQL is not started",
                                      data_dir=str(self.cluster_dir))
        return self._url

    def _check_folder(self) -> None:
        cluster = self.cluster_dir
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedServerError(f"cannot create the data folder {self.data_dir}: "
                                      f"{exc.strerror or exc}",
                                      data_dir=str(cluster)) from exc
        if not cluster.exists():
            return
        if not cluster.is_dir():
            raise EmbeddedServerError(f"{cluster} is not a folder", data_dir=str(cluster))
        version_file = cluster / "PG_VERSION"
        if not version_file.exists():
            if any(cluster.iterdir()):
                raise EmbeddedServerError(
                    f"{cluster} is not empty and holds no PostgreSQL cluster (no PG_VERSION); "
                    f"move it away or choose another --data-dir", data_dir=str(cluster))
            return
        try:
            made_by = int(version_file.read_text().strip().split(".")[0])
        except (OSError, ValueError) as exc:
            raise EmbeddedServerError(f"{version_file} is unreadable: {exc}",
                                      data_dir=str(cluster)) from exc
        bundled = _bundled_major()
        if bundled is not None and made_by != bundled:
            raise EmbeddedServerError(
                f"the cluster in {cluster} was made by PostgreSQL {made_by}, but the embedded "
                f"server is PostgreSQL {bundled}: upgrade it with pg_upgrade, or dump it and "
                f"start with an empty --data-dir", data_dir=str(cluster))

    def _start_blocking(self) -> Any:
        self._check_folder()
        pgserver = _pgserver()
        _forget_dead_handles(self.cluster_dir)
        try:
            with _quiet_pgserver():
                return pgserver.get_server(self.cluster_dir, cleanup_mode="stop")
        except subprocess.CalledProcessError as exc:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL in {self.cluster_dir} did not start "
                f"({Path(str(exc.cmd[0])).name if exc.cmd else 'pg_ctl'} exited with "
                f"{exc.returncode}){_log_tail(self.cluster_dir)}",
                data_dir=str(self.cluster_dir)) from exc
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL in {self.cluster_dir} did not start within "
                f"{exc.timeout:.0f} s{_log_tail(self.cluster_dir)}",
                data_dir=str(self.cluster_dir)) from exc
        except (OSError, RuntimeError, AssertionError) as exc:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL in {self.cluster_dir} could not be started: "
                f"{exc}{_log_tail(self.cluster_dir)}", data_dir=str(self.cluster_dir)) from exc

    async def start(self) -> str:
        """Start (or join) the server and make sure capcast's database exists; returns its URL.

        Raises:
            EmbeddedServerError: the folder is unusable, or the server did not
                start (the message ends with the server log's last lines).
            DatabaseUnavailable: the server started but does not answer.

        """
        if self._url is not None:
            return self._url
        server = await asyncio.to_thread(self._start_blocking)
        self._server = server
        try:
            admin_url: str = server.get_uri()
            url: str = server.get_uri(self.database)
            await self._ensure_database(admin_url)
        except BaseException:
            await self.stop()
            raise
        self._url = url
        logger.info("embedded PostgreSQL running in %s", self.cluster_dir,
                    extra={"action": "embedded_start", "url": redact_url(url)})
        return url

    async def _ensure_database(self, admin_url: str) -> None:
        async with database_errors("embedded", redact_url(admin_url)):
            connection = await asyncpg.connect(admin_url, timeout=30)
            try:
                exists = await connection.fetchval(sql.query("database_exists"),
                                                   self.database)
                if not exists:
                    quoted = '"' + self.database.replace('"', '""') + '"'
                    # Two processes starting at once may both try: one wins, both are fine.
                    with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                        await connection.execute(f"CREATE DATABASE {quoted}")
            finally:
                await connection.close()

    async def stop(self) -> None:
        """Release this process's handle; the server stops when no process holds it."""
        server, self._server, self._url = self._server, None, None
        if server is None:
            return
        try:
            await asyncio.to_thread(server.cleanup)
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedServerError(f"the embedded PostgreSQL in {self.cluster_dir} did not "
                                      f"stop cleanly: {exc}{_log_tail(self.cluster_dir)}",
                                      data_dir=str(self.cluster_dir)) from exc

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()
