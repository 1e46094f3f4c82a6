"""Helpers for tests that run the service as real processes against real peers.

What a deployment needs on disk (a configuration TOML, a 0600 secrets file
with an authority's token hash and the SMPP password, a small GeoParquet cell
inventory of one location-based-SMS operator), CAP alerts over a known area,
subscribers placed in cells that the area surely covers (and in cells it
surely does not), ``capcast serve`` / ``capcast worker`` subprocesses with
their output in files, and a private PostgreSQL that can be stopped and
started again on the same socket.

Nothing here asserts: the tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import shapely
from shapely.geometry.base import BaseGeometry

from dispatcher.store import PresenceEntry

CAPCAST = Path(sys.executable).parent / "capcast"
SENDER = "e2e@capcast.test"
OPERATOR = "Charlie"
GATEWAY = "lbsms"
SMPP_SYSTEM_ID = "charlie"
SMPP_PASSWORD = "e2e-smpp"
#: Where the synthetic inventory lies, and the alert area inside it.
BBOX = (10.0, 50.0, 10.8, 50.5)
AREA = shapely.box(10.2, 50.1, 10.6, 50.4)
#: Cells "outside" keep at least this distance (degrees) from the alert area.
OUTSIDE_MARGIN = 0.05

T = TypeVar("T")


# -- files: inventory, configuration, secrets ------------------------------------------------


def write_inventory(folder: Path, n_cells: int = 600, seed: int = 3) -> tuple[Path, str]:
    """A one-operator GeoParquet inventory over :data:`BBOX`; its path and the PLMN."""
    from geo.synth import synthesize

    inventory = synthesize(n_cells, seed=seed, bbox=BBOX, operators=(OPERATOR,))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{OPERATOR.lower()}.parquet"
    inventory.save(path, progress=False)
    plmn = "-".join(str(inventory.cell_ids[0]).split("-")[:2])
    return path, plmn


def split_cells(inventory: Path, area: BaseGeometry = AREA) -> tuple[list[str], list[str]]:
    """Cells wholly inside ``area`` (surely targeted) and cells well away from it (never)."""
    from geo.inventory import Inventory

    cells = Inventory.load(inventory, progress=False)
    polygons = cells.polygons
    inside = shapely.contains(area, polygons)
    near = shapely.intersects(shapely.buffer(area, OUTSIDE_MARGIN), polygons)
    ids = [str(c) for c in cells.cell_ids]
    return ([c for c, keep in zip(ids, inside, strict=True) if keep],
            [c for c, close in zip(ids, near, strict=True) if not close])


def place_subscribers(cells: Sequence[str], count: int, *, prefix: str,
                      at: datetime) -> list[PresenceEntry]:
    """``count`` subscribers spread round-robin over ``cells`` (MSISDNs ``+<prefix><n>``)."""
    return [PresenceEntry(msisdn=f"+{prefix}{n:06d}", cell_id=cells[n % len(cells)],
                          reported_at=at) for n in range(count)]


def _write_private(path: Path, text: str) -> None:
    # As `capcast demo` writes its secrets: created 0600, never readable by others.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A configuration on disk and how to run capcast with it."""

    folder: Path
    config: Path
    secrets: Path
    inventory: Path
    #: The bearer token of the authority :data:`SENDER`.
    token: str
    database_url: str

    def env(self) -> dict[str, str]:
        """The environment of a capcast process: ours without CAPCAST_*, plus the database."""
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith("CAPCAST_") and k != "XDG_RUNTIME_DIR"}
        environment["CAPCAST_DATABASE_URL"] = self.database_url
        return environment

    def args(self) -> list[str]:
        """``--config`` and ``--secrets`` for a capcast command."""
        return ["--config", str(self.config), "--secrets", str(self.secrets)]

    def settings(self) -> Any:
        """The settings as the service loads them (for in-process services)."""
        from dispatcher.config import load_settings

        return load_settings(self.config, secrets_path=self.secrets, env=self.env())


def write_deployment(folder: Path, *, database_url: str, smsc_port: int,
                     inventory: tuple[Path, str], throughput: float | None = None,
                     window: int = 32, response_timeout: float = 10.0,
                     enquire_link: float = 30.0) -> Deployment:
    """Configuration and secrets for one authority and one LB-SMS operator on ``smsc_port``."""
    path, plmn = inventory
    token = secrets.token_urlsafe(24)
    secrets_file = folder / "secrets.toml"
    _write_private(secrets_file, "[secrets]\n"
                                 f"smpp = {json.dumps(SMPP_PASSWORD)}\n"
                                 f"authority = \"{hashlib.sha256(token.encode()).hexdigest()}\"\n")

    def q(value: object) -> str:
        return json.dumps(str(value))

    rate = f"throughput = {throughput}\n" if throughput is not None else ""
    config = folder / "capcast.toml"
    config.write_text(f"""# An e2e test: one authority, one LB-SMS operator, simulators.
data_dir = {q(folder / "data")}

[database]
pool_min = 1
pool_max = 8
connect_timeout = 3.0

[http]
host = "127.0.0.1"
port = 0

[[authorities]]
sender = {q(SENDER)}
name = "E2E test authority"
statuses = ["Actual"]
tokens = ["authority"]

[[operators]]
name = {q(OPERATOR)}
plmn = {q(plmn)}
inventory = {q(path)}
languages = ["en"]

[[operators.gateways]]
name = {q(GATEWAY)}
kind = "smpp-sms"
host = "127.0.0.1"
port = {smsc_port}
system_id = {q(SMPP_SYSTEM_ID)}
password_secret = "smpp"
window = {window}
{rate}links = 1
response_timeout = {response_timeout}
enquire_link = {enquire_link}
connect_timeout = 2.0
source = "ALERT"
max_segments = 1
registered_delivery = false
""", encoding="utf-8")
    return Deployment(folder=folder, config=config, secrets=secrets_file, inventory=path,
                      token=token, database_url=database_url)


# -- CAP -------------------------------------------------------------------------------------


def cap_alert(identifier: str, *, sent: datetime, expires: datetime | None = None,
              area: BaseGeometry = AREA, sender: str = SENDER,
              headline: str = "Flood warning") -> bytes:
    """A CAP 1.2 Actual alert over ``area`` whose SMS text fits one segment."""
    def stamp(moment: datetime) -> str:
        return moment.replace(microsecond=0).isoformat()

    until = expires if expires is not None else sent + timedelta(hours=1)
    polygon = " ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in area.exterior.coords)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>{sender}</sender>
  <sent>{stamp(sent)}</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>en</language>
    <category>Met</category>
    <event>Flood</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <expires>{stamp(until)}</expires>
    <senderName>E2E test authority</senderName>
    <headline>{headline}</headline>
    <description>River flooding.</description>
    <instruction>Move to higher ground.</instruction>
    <area>
      <areaDesc>E2E test area</areaDesc>
      <polygon>{polygon}</polygon>
    </area>
  </info>
</alert>
""".encode()


# -- waiting ---------------------------------------------------------------------------------


async def wait_until(check: Callable[[], Awaitable[T | None]], *, timeout: float,
                     interval: float = 0.1, what: str = "the condition",
                     diagnose: Callable[[], str] | None = None,
                     diagnose_async: Callable[[], Awaitable[str]] | None = None) -> T:
    """Poll ``check`` until it returns something other than None/False; that value.

    On time-out the assertion names ``what`` and adds what ``diagnose`` (or
    ``diagnose_async``) says about the state of things.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            extra = ""
            if diagnose is not None:
                extra += f"\n{diagnose()}"
            if diagnose_async is not None:
                extra += f"\n{await diagnose_async()}"
            raise AssertionError(f"{what} did not happen within {timeout:g} s{extra}")
        await asyncio.sleep(interval)


# -- capcast subprocesses --------------------------------------------------------------------


@dataclass(slots=True)
class CapcastProcess:
    """A ``capcast`` subprocess with its standard output and error in files."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    _files: list[IO[bytes]] = field(default_factory=list)

    @property
    def stdout_path(self) -> Path:
        """Where its standard output goes."""
        return self.folder / f"{self.name}.out"

    @property
    def stderr_path(self) -> Path:
        """Where its standard error (the log) goes."""
        return self.folder / f"{self.name}.err"

    @property
    def pid(self) -> int:
        """Its process id."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> CapcastProcess:
        """Start it (output to :attr:`stdout_path` and :attr:`stderr_path`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        out = self.stdout_path.open("wb")
        err = self.stderr_path.open("wb")
        self._files = [out, err]
        self.process = subprocess.Popen([str(CAPCAST), *self.argv], stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, env=dict(self.env))
        return self

    def output(self) -> str:
        """Standard output so far."""
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def log(self, tail: int = 60) -> str:
        """The last lines of standard error (for failure messages)."""
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def describe(self) -> str:
        """What it printed and logged, for an assertion message."""
        code = self.process.poll() if self.process is not None else None
        return (f"--- {self.name} (exit {code}) stdout:\n{self.output()}"
                f"--- {self.name} stderr (tail):\n{self.log()}")

    @property
    def running(self) -> bool:
        """Whether it has started and not exited."""
        return self.process is not None and self.process.poll() is None

    async def wait_for_output(self, pattern: str, *, timeout: float) -> re.Match[str]:
        """Wait until standard output matches ``pattern``; fails early if the process exits."""
        regex = re.compile(pattern)

        async def seen() -> re.Match[str] | None:
            match = regex.search(self.output())
            if match is None and not self.running:
                raise AssertionError(f"{self.name} exited before printing {pattern!r}\n"
                                     f"{self.describe()}")
            return match

        return await wait_until(seen, timeout=timeout, interval=0.05,
                                what=f"{self.name} printing {pattern!r}",
                                diagnose=self.describe)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind (a crash, a power cut of the host)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for handle in self._files:
            with contextlib.suppress(OSError):
                handle.close()
        return self.process.returncode


@contextlib.contextmanager
def processes() -> Iterator[list[CapcastProcess]]:
    """A list to put started processes in; each is stopped on exit, whatever happened."""
    started: list[CapcastProcess] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.stop()


async def start_serve(deployment: Deployment, *, workers: int, name: str = "serve",
                      extra: Sequence[str] = (), timeout: float = 60.0
                      ) -> tuple[CapcastProcess, str]:
    """``capcast serve`` on a free port; the process and its base URL once it listens."""
    proc = CapcastProcess(name=name, folder=deployment.folder / "logs", env=deployment.env(),
                          argv=["-v", "serve", *deployment.args(), "--port", "0",
                                "--workers", str(workers), "--no-feeds", *extra]).start()
    match = await proc.wait_for_output(r"serving on (http://[0-9.]+:[0-9]+)", timeout=timeout)
    return proc, match[1]


def start_worker(deployment: Deployment, *, name: str,
                 extra: Sequence[str] = ()) -> CapcastProcess:
    """``capcast worker`` (it prints a line when its service is open)."""
    return CapcastProcess(name=name, folder=deployment.folder / "logs", env=deployment.env(),
                          argv=["-v", "worker", *deployment.args(), *extra]).start()


# -- a private PostgreSQL that can be restarted ----------------------------------------------


class RestartablePostgres:
    """An embedded PostgreSQL in its own folder, stopped and started with ``pg_ctl``.

    It is started through :class:`dispatcher.embedded.EmbeddedPostgres` (as the
    service would start it); :meth:`stop` and :meth:`start` then run the
    bundled ``pg_ctl`` with the same options, so the server comes back on the
    same Unix socket (the same "port").
    """

    def __init__(self, folder: Path) -> None:
        from dispatcher.embedded import EmbeddedPostgres

        self._embedded = EmbeddedPostgres(folder)
        self.cluster = self._embedded.cluster_dir
        self.url = ""

    async def open(self) -> str:
        """Initialize and start the cluster; the URL of its ``capcast`` database."""
        self.url = await self._embedded.start()
        return self.url

    @property
    def socket_dir(self) -> str:
        """The folder of the server's Unix socket (from the URL)."""
        return parse_qs(urlsplit(self.url).query)["host"][0]

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        # pgserver runs PostgreSQL as its own system user when we are root.
        user = "pgserver" if os.geteuid() == 0 else None
        subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.cluster), *args],
                       check=True, capture_output=True, timeout=60, user=user)

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are disconnected, as in a restart)."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        """Start it again on the same socket."""
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}",
                     "-l", str(self.cluster / "log"), "start")

    @property
    def running(self) -> bool:
        """Whether a postmaster runs on the cluster."""
        return (self.cluster / "postmaster.pid").exists()

    async def close(self) -> None:
        """Stop the server whatever its state, and release pgserver's handle."""
        if self.running:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg_ctl("-w", "-m", "immediate", "stop")
        with contextlib.suppress(Exception):
            await self._embedded.stop()
