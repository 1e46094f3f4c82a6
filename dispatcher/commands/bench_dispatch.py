"""``capcast bench dispatch``: CAP POST to the first PDU at a simulator, on a national inventory.

The service runs in this process as ``capcast serve`` runs it (an embedded
PostgreSQL through :func:`dispatcher.app.open_service`, the HTTP API with
in-process workers from :func:`dispatcher.app.create_app`), over a synthetic
inventory of ``--cells`` cells (default a million, three operators over
Germany, built once with :func:`geo.synth.synthesize` and cached in the data
folder). The operators' gateways are simulators on loopback, by default in a
child process (``--peers inline`` runs them in the service's event loop, as
``capcast demo`` does): Alpha sends cell broadcast to a CBC (``cbc-rest``),
Bravo to an SMSC (``smpp-broadcast``, ``broadcast_sm``), Charlie location-based
SMS to the subscribers it reports present (``smpp-sms``, ``--subscribers``).

It POSTs ``--alerts`` CAP alerts one after the other (each with a unique
identifier and a storm-sized area of varied shape around a random cell site:
convective cells, squall lines, storm-based warning boxes, circles), waits
until the alert's jobs have settled, takes the alert off the air with a CAP
Cancel (not measured) and waits ``--gap`` more, so that it measures latency,
not saturation. For each alert it takes the time from sending the
POST to the first PDU (``broadcast_sm``, ``submit_sm`` or an ECBE create)
recorded by a simulator, and splits it along the path of that PDU:

- HTTP in: from the POST to the start of the commit, minus the ingest steps
  before it (the request on the wire, aiohttp, the token check);
- the ingest steps of the POST's answer (``timings_ms``): store raw,
  parse+validate, authorize, idempotency, target+plan (its commit step is
  printed beside the hops: it ends when the ingest's coroutine runs again,
  which may be after the worker, on the same event loop, has claimed the job);
- commit to claim: the job's ``created_at`` (the start of the outbox
  transaction) to its ``started_at`` (the commit, NOTIFY, the worker waking,
  the claim query);
- claim to submission: to the ``sent_at`` of the job's first submission (the
  row is written just before the request goes out);
- submission to peer: to the simulator's record of the PDU.

Times from PostgreSQL (``now()``), from the simulators and from this process
are all read from the same host clock. Afterwards the same alert areas are
targeted again with the service idle: capcast's cell indexes (as the planner
calls them), the planner itself, and, measured in the same run over the same
cells, the plain method (one shapely STRtree over every cell, with and without
the overlap areas), with ratios and a check that the targeted sets agree.

This is a benchmark, not a test: it prints the goal of issue 5 (p99 at most
100 ms) and whether this run met it, and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import functools
import gc
import json
import math
import os
import random
import secrets
import shutil
import sys
import time
import types
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError
from dispatcher.simulated import OPERATORS, SimulatedSetup, sample_inventories, write_secrets

if TYPE_CHECKING:
    from cap.model import Alert
    from dispatcher.service import Service

#: The goal of issue 5: p99 of POST to first PDU, on the project's 2-core machine.
GOAL_P99_MS = 100.0
#: Gateway of each operator: (name, kind) as configured below.
GATEWAYS = {"Alpha": ("cbc", "cbc-rest"), "Bravo": ("smsc-cb", "smpp-broadcast"),
            "Charlie": ("lbsms", "smpp-sms")}
SENDER = "capcast-bench@example.org"
#: The ingest steps of IngestResult.timings_ms, in order, with the names printed.
STEPS = (("store_raw", "store raw"), ("validate", "parse+validate"),
         ("authorize", "authorize"), ("idempotency", "idempotency"),
         ("plan", "target+plan"), ("commit", "commit"))
#: Every hop of the path to the first PDU, in order (they add up to the total). The
#: commit is measured from the database's side (the outbox transaction's start) to the
#: claim: the ingest's own "commit" step also holds the wait for the event loop after it,
#: which the worker, sharing that loop, may use to claim the job first.
HOPS = (("http_in", "HTTP in (+ unaccounted)"), *STEPS[:-1],
        ("commit_to_claim", "commit+NOTIFY -> claim"),
        ("claim_to_submission", "claim -> submission"),
        ("submission_to_peer", "submission -> peer"))
#: Durable commits on the way to the first PDU: store_raw, record_validation, the outbox
#: (accept_alert_with_jobs), the claim, record_submissions.
PATH_COMMITS = 5
#: Shapes of the alert areas and their shares of the alerts.
SHAPES = (("cell", 0.40), ("squall", 0.25), ("box", 0.20), ("circle", 0.15))


def register(commands: Commands) -> None:
    """Add ``capcast bench dispatch``."""
    parser = commands.group("bench").add_parser(
        "dispatch", help="CAP POST to first PDU at a simulator, with a 1M-cell inventory",
        description="Start the service in-process (embedded PostgreSQL, HTTP API, workers) "
                    "with a synthetic national inventory and CBC/SMSC simulators, POST CAP "
                    "alerts one at a time and print the latency from the POST to the first "
                    "PDU at a simulator (p50/p95/p99/max), where the time goes per hop, and "
                    "targeting against a plain STRtree measured in the same run.")
    parser.add_argument("--cells", type=int, default=1_000_000, metavar="N",
                        help="cells in the synthetic inventory, three operators "
                             "(default 1000000)")
    parser.add_argument("--alerts", type=int, default=200, metavar="N",
                        help="alerts measured (default 200)")
    parser.add_argument("--warmup", type=int, default=5, metavar="N",
                        help="alerts sent first and not counted (default 5)")
    parser.add_argument("--gap", type=float, default=0.05, metavar="S",
                        help="seconds between an alert's jobs settling (and its Cancel) and the "
                             "next POST (default 0.05)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="in-process workers, as `capcast serve --workers` (default 1)")
    parser.add_argument("--subscribers", type=int, default=2000, metavar="N",
                        help="subscribers Charlie reports present for its location-based SMS "
                             "(default 2000; 0 disables the smpp-sms gateway)")
    parser.add_argument("--min-overlap", type=float, default=0.0, metavar="F",
                        help="targeting.min_overlap of the service (default 0.0)")
    parser.add_argument("--peers", choices=("process", "inline"), default="process",
                        help="run the simulators in a child process (default) or in the "
                             "service's event loop")
    parser.add_argument("--placement", choices=("sites", "uniform"), default="sites",
                        help="centre each alert area on a random cell site (default: where the "
                             "cells are, mostly towns) or anywhere in the inventory's box")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="how long to wait for one alert's jobs (default 30)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder for the inventory cache, the index cache and the database "
                             "(default: the user data folder's bench-dispatch/)")
    parser.add_argument("--keep-database", action="store_true",
                        help="keep this run's database (in DIR/runs/) instead of deleting it")
    parser.add_argument("--no-cancel", action="store_true",
                        help="do not cancel each alert once its jobs have finished (the CBC "
                             "then refuses the next alert on the same channel)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the plain STRtree in the offline targeting comparison "
                             "(saves some 2 GiB and half a minute at 1M cells)")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the measured alerts under cProfile, write the stats to FILE "
                             "and print the top functions (slows everything down)")
    parser.add_argument("--samples", metavar="FILE",
                        help="also write one JSON line per measured alert (its hops, cells, "
                             "steps and offline targeting times) to FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_cmd_bench_dispatch)


# -- inventory, configuration ----------------------------------------------------------------


def _default_dir() -> Path:
    from dispatcher.embedded import default_data_dir

    return default_data_dir() / "bench-dispatch"


def _setup(min_overlap: float, sms: bool) -> SimulatedSetup:
    """The benchmark's configuration: Actual alerts only, no drills, one token."""
    return SimulatedSetup(written_by="`capcast bench dispatch`", sender=SENDER,
                          authority_name="Benchmark authority", statuses=("Actual",),
                          authority_token="bench_authority", smpp_secret="bench_smpp",
                          min_overlap=min_overlap, sms=sms)


# -- the alerts --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertArea:
    """One alert's area as CAP carries it: a polygon (lon/lat ring) or a circle."""

    shape: str
    ring: tuple[tuple[float, float], ...] = ()
    circle: tuple[float, float, float] | None = None  # lon, lat, radius km

    @property
    def vertices(self) -> int:
        """Points of the CAP polygon (0 for a circle)."""
        return len(self.ring)


def _km(lat: float) -> tuple[float, float]:
    """Kilometres per degree of longitude and of latitude at ``lat``."""
    return 111.32 * math.cos(math.radians(lat)), 110.57


def _ring(polygon: Any) -> tuple[tuple[float, float], ...] | None:
    """The exterior of a valid polygon at CAP's precision (5 decimals), or None."""
    import shapely

    polygon = shapely.set_precision(polygon, 1e-5)
    if polygon.geom_type != "Polygon" or polygon.is_empty or not polygon.is_valid:
        return None
    coords = [(round(x, 5), round(y, 5)) for x, y in polygon.exterior.coords]
    return tuple(coords) if len(coords) >= 4 else None


def _squall(rng: np.random.Generator, lon: float, lat: float) -> Any:
    """A squall line: a bent line of 20-80 km in 2-4 segments, buffered 3-8 km either side."""
    import shapely

    kx, ky = _km(lat)
    length = rng.uniform(20.0, 80.0)
    segments = int(rng.integers(2, 5))
    heading = rng.uniform(0.0, math.pi)
    points = [(0.0, 0.0)]
    for _ in range(segments):
        heading += rng.normal(0.0, 0.35)
        x, y = points[-1]
        step = length / segments
        points.append((x + step * math.cos(heading), y + step * math.sin(heading)))
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    xs -= xs.mean()
    ys -= ys.mean()
    line = shapely.LineString(np.c_[lon + xs / kx, lat + ys / ky])
    width_km = rng.uniform(3.0, 8.0)
    # Buffer in degrees of latitude, stretched back to kilometres east-west.
    area = shapely.buffer(shapely.transform(line, lambda c: c * [kx / ky, 1.0]),
                          width_km / ky, quad_segs=3)
    area = shapely.transform(area, lambda c: c * [ky / kx, 1.0])
    return shapely.simplify(area, 0.2 / ky)


def _box(rng: np.random.Generator, lon: float, lat: float) -> Any:
    """A storm-based warning: a rotated convex polygon of 4-8 points, 15-40 by 8-20 km."""
    import shapely

    kx, ky = _km(lat)
    n = int(rng.integers(4, 9))
    angle = np.sort(rng.uniform(0.0, 2.0 * math.pi, n))
    length, width = rng.uniform(15.0, 40.0) / 2, rng.uniform(8.0, 20.0) / 2
    x, y = length * np.cos(angle), width * np.sin(angle)
    turn = rng.uniform(0.0, math.pi)
    xr = x * math.cos(turn) - y * math.sin(turn)
    yr = x * math.sin(turn) + y * math.cos(turn)
    return shapely.convex_hull(shapely.MultiPoint(np.c_[lon + xr / kx, lat + yr / ky]))


def make_areas(sites: np.ndarray, n: int, seed: int) -> list[AlertArea]:
    """``n`` storm-sized alert areas of varied shapes, each around one of ``sites`` (lon, lat).

    Given the cells' sites (most of them in towns), storms fall where people
    live, the demanding case; given points spread evenly, they fall where the
    weather takes them.
    """
    from dispatcher.commands.bench_target import make_alerts

    rng = np.random.default_rng([seed, 11])
    names = [name for name, _ in SHAPES]
    shares = np.array([share for _, share in SHAPES])
    kinds = rng.choice(len(names), size=n, p=shares / shares.sum())
    # Convective cells: bench_target's wobbly storm outlines (2.5-15 km, 12-60 points).
    holder = types.SimpleNamespace(sites=sites, bounds=(0.0, 0.0, 0.0, 0.0))
    # Twice as many as needed: an outline that is not valid at CAP's precision is skipped.
    cells = iter(make_alerts(holder, {"storm": 2 * int(np.sum(kinds == 0)) + 10},
                             seed)["storm"])
    areas: list[AlertArea] = []
    for kind in kinds:
        name = names[kind]
        while True:
            lon, lat = (float(v) for v in sites[rng.integers(len(sites))])
            if name == "circle":
                areas.append(AlertArea(shape=name, circle=(round(lon, 5), round(lat, 5),
                                                           round(rng.uniform(3.0, 15.0), 1))))
                break
            if name == "cell":
                shape = next(cells)
            elif name == "squall":
                shape = _squall(rng, lon, lat)
            else:
                shape = _box(rng, lon, lat)
            ring = _ring(shape)
            if ring is not None:
                areas.append(AlertArea(shape=name, ring=ring))
                break
    return areas


def make_alert(area: AlertArea, *, identifier: str, now: datetime) -> Alert:
    """A live Actual CAP alert (an hour of validity) with ``area``."""
    from cap.model import (
        Alert,
        Area,
        Category,
        Certainty,
        Circle,
        Info,
        MsgType,
        Polygon,
        ResponseType,
        Scope,
        Severity,
        Status,
        Urgency,
    )

    sent = now.replace(microsecond=0)
    if area.circle is not None:
        lon, lat, radius = area.circle
        cap_area = Area(area_desc=f"{radius:g} km around {lat:.3f} N {lon:.3f} E",
                        circles=(Circle(lat=lat, lon=lon, radius_km=radius),))
    else:
        cap_area = Area(area_desc=f"storm area ({area.shape}, {area.vertices} points)",
                        polygons=(Polygon(points=tuple((y, x) for x, y in area.ring)),))
    info = Info(language="en-US", categories=(Category.MET,), event="Severe thunderstorm",
                response_types=(ResponseType.SHELTER,), urgency=Urgency.IMMEDIATE,
                severity=Severity.SEVERE, certainty=Certainty.OBSERVED,
                expires=sent + timedelta(hours=1), sender_name="capcast benchmark",
                headline="Severe thunderstorm warning",
                description="Radar shows a severe thunderstorm with large hail and gusts "
                            "over 100 km/h moving north-east at 40 km/h.",
                instruction="Stay indoors, away from windows, until the storm has passed.",
                areas=(cap_area,))
    return Alert(identifier=identifier, sender=SENDER, sent=sent, status=Status.ACTUAL,
                 msg_type=MsgType.ALERT, scope=Scope.PUBLIC, infos=(info,))


def make_cancel(alert: Alert, *, identifier: str, now: datetime) -> Alert:
    """The CAP Cancel of ``alert`` from its sender."""
    from cap.model import Alert, MsgType, Reference

    return Alert(identifier=identifier, sender=alert.sender,
                 sent=max(now.replace(microsecond=0), alert.sent), status=alert.status,
                 msg_type=MsgType.CANCEL, scope=alert.scope, note="benchmark alert done",
                 references=(Reference(sender=alert.sender, identifier=alert.identifier,
                                       sent=alert.sent),))


# -- the simulators ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PeerEvent:
    """A request a simulator received: when (epoch seconds), for whom, what."""

    t: float
    operator: str
    command: str


#: Seconds from submit_sm to its delivery receipt (an SMS job waits for its receipts).
DLR_DELAY = 0.05
#: SMPP commands and ECBE operations that carry a message to the network.
_SENDS = ("broadcast_sm", "submit_sm")
#: What the simulators report that carries a new message (a cancel or a delete does not).
_NEW_MESSAGES = frozenset({*_SENDS, "cbc-create", "cbc-replace"})

#: The simulators' system ids (SMPP) and "cbc" -> operator.
_PEER_OPERATOR = {"cbc": "Alpha", "bravo": "Bravo", "charlie": "Charlie"}


class Simulators:
    """The SMSC and the CBC simulator, each request stamped when it has fully arrived.

    The SMSC stamps a PDU when the bytes that complete it are read. The CBC
    simulator stamps its records after it has parsed the body (a list of
    thousands of cells takes a while), so a middleware stamps each request
    here once its body is read, before the simulator looks at it.
    ``on_event(t, system_id, command)`` is called for each message sent to the
    network (from :meth:`poll` for the SMSC).
    """

    def __init__(self, on_event: Callable[[float, str, str], None]) -> None:
        from aiohttp import web

        from gateways.cbc.ecbe import Dialect
        from gateways.simulators.cbc import CbcSimulator
        from gateways.simulators.smsc import SmscConfig, SmscSimulator

        self.on_event = on_event
        self.smsc = SmscSimulator(SmscConfig(port=0, dlr_delay=DLR_DELAY,
                                             record_limit=1_000_000))
        self.cbc = CbcSimulator(dialect=Dialect.CAPCAST)
        cbc = self.cbc

        @web.middleware
        async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:
            await request.read()  # aiohttp keeps the body: the handler reads it again
            arrived = time.time()
            before = len(cbc.records)
            try:
                return await handler(request)  # type: ignore[no-any-return]
            finally:
                for record in cbc.records[before:]:
                    if record.operation is not None:
                        on_event(arrived, "cbc", f"cbc-{record.operation.value}")

        cbc.app.middlewares.append(stamp)

    async def start(self) -> None:
        """Listen on loopback, free ports."""
        await self.smsc.start()
        await self.cbc.start()

    def poll(self) -> None:
        """Report what the SMSC received since the last call."""
        for record in self.smsc.drain_records():
            if record.pdu.command in _SENDS:
                self.on_event(record.at.timestamp(), record.system_id, record.pdu.command)

    async def stop(self) -> None:
        """Stop both."""
        await self.cbc.stop()
        await self.smsc.stop()


def peers_main() -> None:
    """The simulators' child process: ports on the first line, then one JSON line per event.

    It stops when its standard input closes.
    """
    lines: list[str] = []

    def on_event(t: float, system_id: str, command: str) -> None:
        lines.append(json.dumps({"t": t, "system_id": system_id, "command": command}))

    async def main() -> None:
        sims = Simulators(on_event)
        await sims.start()
        print(json.dumps({"smsc_port": sims.smsc.port, "cbc_url": sims.cbc.base_url}),
              flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
        while not stop.is_set():
            sims.poll()
            if lines:
                sys.stdout.write("\n".join(lines) + "\n")
                sys.stdout.flush()
                lines.clear()
            await asyncio.sleep(0.001)
        await sims.stop()

    asyncio.run(main())


class Peers:
    """The simulators, in a child process or in this event loop.

    :attr:`events` collects what they received, with their own timestamps;
    :attr:`arrived` is set whenever something new came in.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.events: list[PeerEvent] = []
        self.arrived = asyncio.Event()
        self.smsc_port = 0
        self.cbc_url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inline: Simulators | None = None

    def _add(self, t: float, system_id: str, command: str) -> None:
        operator = _PEER_OPERATOR.get(system_id)
        if operator is not None:
            self.events.append(PeerEvent(t, operator, command))
            self.arrived.set()

    async def start(self) -> None:
        """Start the simulators; :attr:`smsc_port` and :attr:`cbc_url` are then known."""
        if self.mode == "process":
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-c",
                "from dispatcher.commands.bench_dispatch import peers_main; peers_main()",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20)
            assert self._process.stdout is not None
            first = await asyncio.wait_for(self._process.stdout.readline(), 60.0)
            if not first:
                raise RuntimeError("the simulator process exited before it listened")
            ports = json.loads(first)
            self.smsc_port, self.cbc_url = int(ports["smsc_port"]), str(ports["cbc_url"])
            self._tasks.append(asyncio.create_task(self._read(self._process.stdout)))
            return
        self._inline = Simulators(self._add)
        await self._inline.start()
        self.smsc_port, self.cbc_url = self._inline.smsc.port, self._inline.cbc.base_url
        self._tasks.append(asyncio.create_task(self._poll(self._inline)))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            record = json.loads(line)
            self._add(float(record["t"]), record["system_id"], record["command"])

    @staticmethod
    async def _poll(sims: Simulators) -> None:
        while True:
            sims.poll()
            # Only for knowing when to go on: the timestamps are the simulators' own.
            await asyncio.sleep(0.005)

    async def wait(self, after: float, timeout: float) -> bool:
        """Wait until something arrived at ``after`` (epoch seconds) or later."""
        deadline = time.monotonic() + timeout
        while not any(e.t >= after for e in self.events[-64:]):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        return True

    async def stop(self) -> None:
        """Stop the simulators (and the child process)."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                await asyncio.wait_for(self._process.wait(), 10.0)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._inline is not None:
            await self._inline.stop()


# -- measuring -------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True, kw_only=True)
class Sample:
    """What one alert did, from the POST to its jobs' requests at the simulators."""

    index: int
    identifier: str
    shape: str
    vertices: int
    warmup: bool
    t_post: float = 0.0  # epoch seconds, just before the request was written
    post_ms: float = math.nan
    http_status: int = 0
    alert_id: int | None = None
    error: str | None = None
    steps: dict[str, float] = dataclasses.field(default_factory=dict)
    cells: dict[str, int] = dataclasses.field(default_factory=dict)
    jobs: int = 0
    finished: bool = False
    #: Per operator: the hops to its first request (ms), "first_pdu" the total.
    gateways: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    first_operator: str | None = None
    #: Final state of each operator's job, and its last error if any.
    job_states: dict[str, str] = dataclasses.field(default_factory=dict)
    job_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Why the Cancel that took the alert off the air was refused, if it was.
    cancel_error: str | None = None
    #: Requests the simulators received for this alert, per operator.
    pdus: dict[str, int] = dataclasses.field(default_factory=dict)
    #: POST to every job finished or waiting for a retry (ms), as seen by polling.
    done_ms: float | None = None

    @property
    def first_pdu_ms(self) -> float | None:
        """POST to the first request at any simulator."""
        if self.first_operator is None:
            return None
        return self.gateways[self.first_operator]["first_pdu"]

    @property
    def hops(self) -> dict[str, float]:
        """The hops along the first request's path (they add up to :attr:`first_pdu_ms`)."""
        if self.first_operator is None:
            return {}
        return {k: v for k, v in self.gateways[self.first_operator].items() if k != "first_pdu"}


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


async def _post(session: Any, url: str, token: str, raw: bytes, sample: Sample) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/cap+xml"}
    sample.t_post = time.time()
    started = time.perf_counter()
    async with session.post(f"{url}/api/v1/alerts", data=raw, headers=headers) as response:
        body = await response.read()
    sample.post_ms = _ms(time.perf_counter() - started)
    sample.http_status = response.status
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        sample.error = f"HTTP {response.status}: {body[:200]!r}"
        return
    alert_id = answer.get("alert_id", answer.get("id"))
    sample.alert_id = int(alert_id) if isinstance(alert_id, int) else None
    timings = answer.get("timings_ms") or {}
    sample.steps = {k: float(v) for k, v in timings.items() if isinstance(v, int | float)}
    # -1: the answer does not say (the jobs are counted from the store afterwards).
    jobs = answer.get("jobs", -1)
    sample.jobs = len(jobs) if isinstance(jobs, list) else int(jobs)
    if response.status not in (200, 201) or sample.alert_id is None:
        sample.error = f"HTTP {response.status}: {json.dumps(answer)[:300]}"


async def _wait_settled(service: Service, alert_id: int, timeout: float) -> bool:
    """Poll until every job of the alert has finished or waits for a retry (or ``timeout``).

    True when every job finished. A job that failed and waits for its next
    attempt counts as settled: its retries belong to no measurement (the
    Cancel that follows stops it).
    """
    from dispatcher.store import JobState

    deadline = time.monotonic() + timeout
    while True:
        # The counts are cheap; the jobs (payloads and all) only when one may wait to retry.
        states = {state for (_, state) in await service.queue.counts(alert_id)}
        if all(state.finished for state in states):
            return True
        if JobState.RUNNING not in states:
            jobs = await service.store.list_jobs(alert_id=alert_id, limit=100)
            if all(job.state.finished or job.attempts > 0 for job in jobs):
                return False
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


async def _run_alerts(service: Service, url: str, token: str, peers: Peers,
                      areas: Sequence[AlertArea], args: argparse.Namespace,
                      progress: Callable[[str], None], env: dict[str, Any]) -> list[Sample]:
    import aiohttp

    from cap.serialize import serialize

    run_tag = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    profiler = cProfile.Profile() if args.profile else None
    samples: list[Sample] = []
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for i, area in enumerate(areas):
            if i == args.warmup:
                env["wal_before"] = await _wal(service)
                env["load_before"] = os.getloadavg()
                env["cpu_before"] = time.process_time()
                env["wall_before"] = time.perf_counter()
                if profiler is not None:
                    profiler.enable()
            warmup = i < args.warmup
            sample = Sample(index=i, identifier=f"capcast-bench-{run_tag}-{i:04d}",
                            shape=area.shape, vertices=area.vertices, warmup=warmup)
            alert = make_alert(area, identifier=sample.identifier, now=service.clock())
            await _post(session, url, token, serialize(alert), sample)
            samples.append(sample)
            if sample.alert_id is not None and sample.error is None and sample.jobs != 0:
                # Wait for the first request at a simulator before touching the database,
                # so that polling does not sit on the measured path; then for every job.
                await peers.wait(sample.t_post, min(2.0, args.timeout))
                sample.finished = await _wait_settled(service, sample.alert_id, args.timeout)
                sample.done_ms = _ms(time.time() - sample.t_post)
                if not args.no_cancel:
                    # Take the warning off the air, as its authority would: the CBC keys its
                    # messages by message identifier, so the next severe warning on the
                    # channel would otherwise meet this one there. Not measured.
                    if profiler is not None:
                        profiler.disable()
                    cancel = Sample(index=i, identifier=f"{sample.identifier}-cancel",
                                    shape="cancel", vertices=0, warmup=True)
                    await _post(session, url, token, serialize(make_cancel(
                        alert, identifier=cancel.identifier, now=service.clock())), cancel)
                    sample.cancel_error = cancel.error
                    if cancel.alert_id is not None and cancel.error is None:
                        await _wait_settled(service, cancel.alert_id, args.timeout)
                    if profiler is not None and not warmup:
                        profiler.enable()
            if (i + 1) % 50 == 0 or i + 1 == len(areas):
                progress(f"  {i + 1}/{len(areas)} alerts posted")
            await asyncio.sleep(args.gap)
    if profiler is not None:
        profiler.disable()
    env["wal_after"] = await _wal(service)
    env["load_after"] = os.getloadavg()
    env["cpu_s"] = round(time.process_time() - env.pop("cpu_before"), 2)
    env["wall_s"] = round(time.perf_counter() - env.pop("wall_before"), 2)
    if profiler is not None:
        profiler.dump_stats(args.profile)
    return samples


async def _collect(service: Service, samples: list[Sample], peers: Peers) -> None:
    """Join the POST answers, the stored jobs and submissions and the simulators' records."""
    ordered = sorted(samples, key=lambda s: s.t_post)
    events = sorted(peers.events, key=lambda e: e.t)
    times = np.array([e.t for e in events])
    for k, sample in enumerate(ordered):
        if sample.alert_id is None or sample.error is not None:
            continue
        until = ordered[k + 1].t_post if k + 1 < len(ordered) else math.inf
        lo, hi = np.searchsorted(times, [sample.t_post, until])
        first: dict[str, float] = {}
        for event in events[lo:hi]:
            if event.command not in _NEW_MESSAGES:
                continue
            first.setdefault(event.operator, event.t)
            sample.pdus[event.operator] = sample.pdus.get(event.operator, 0) + 1
        detail = await service.store.get_alert_detail(sample.alert_id)
        plan = detail.alert.plan or {}
        sample.cells = {t["operator"]: int(t["cells"]) for t in plan.get("targeting", [])}
        sample.jobs = len(detail.jobs)
        jobs = {job.id: job for job in detail.jobs}
        first_sent: dict[int, datetime] = {}
        for sub in detail.submissions:
            if sub.job_id in jobs and (sub.job_id not in first_sent
                                       or sub.sent_at < first_sent[sub.job_id]):
                first_sent[sub.job_id] = sub.sent_at
        ingest_ms = sum(sample.steps.get(name, 0.0) for name, _ in STEPS[:-1])
        for job in detail.jobs:
            sample.job_states[job.operator] = job.state.value
            if job.last_error:
                sample.job_errors[job.operator] = job.last_error
            peer_t = first.get(job.operator)
            sent = first_sent.get(job.id)
            if peer_t is None or sent is None or job.started_at is None:
                continue
            # created_at is now() of the outbox transaction: when the commit step began.
            commit_start = job.created_at.timestamp()
            hops = {
                "http_in": round(_ms(commit_start - sample.t_post) - ingest_ms, 3),
                **{name: sample.steps.get(name, 0.0) for name, _ in STEPS[:-1]},
                "commit_to_claim": _ms(job.started_at.timestamp() - commit_start),
                "claim_to_submission": _ms(sent.timestamp() - job.started_at.timestamp()),
                "submission_to_peer": _ms(peer_t - sent.timestamp()),
                "first_pdu": _ms(peer_t - sample.t_post),
            }
            known = sample.gateways.get(job.operator)
            if known is None or hops["first_pdu"] < known["first_pdu"]:
                sample.gateways[job.operator] = hops
        if sample.gateways:
            sample.first_operator = min(sample.gateways,
                                        key=lambda op: sample.gateways[op]["first_pdu"])


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=float)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 3),
            "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3),
            "max": round(float(a.max()), 3), "mean": round(float(a.mean()), 3)}


# -- targeting, offline ------------------------------------------------------------------


def _targeting(service: Service, alerts: Sequence[Alert], min_overlap: float,
               inventories: Sequence[Path] | None,
               progress: Callable[[str], None]) -> dict[str, Any]:
    """Target the alerts' areas again with the service idle: capcast, its planner, STRtree."""
    from dispatcher.app import plan_options, targeting_policy
    from dispatcher.planner import plan
    from geo.areas import alert_geometry

    geometries = [alert_geometry(a).geometry for a in alerts]
    indexes = [(op.name, op.index) for op in service.operators]
    policy = targeting_policy(service.settings)
    options = plan_options(service.settings)

    def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
        started = time.perf_counter()
        value = fn()
        return (time.perf_counter() - started) * 1000.0, value

    for g in geometries[:3]:  # warm up (numba loads its compiled code on first use)
        for _, index in indexes:
            _ = index.target(g, min_overlap).overlap
    def cell_ids(g: Any) -> list[Any]:
        return [index.target(g, min_overlap).cell_ids for _, index in indexes]

    def as_planner(g: Any) -> None:
        for _, index in indexes:
            result = index.target(g, min_overlap)
            _ = result.cell_ids, result.overlap

    def planned(a: Alert) -> Any:
        return plan(a, operators=service.operators, targeting=policy, now=service.clock(),
                    options=options)

    ids_only: list[float] = []
    with_overlap: list[float] = []
    planner: list[float] = []
    ours: list[set[str]] = []
    for geometry, alert in zip(geometries, alerts, strict=True):
        ms, results = timed(functools.partial(cell_ids, geometry))
        ids_only.append(ms)
        ours.append(set().union(*(set(ids.tolist()) for ids in results)))
        with_overlap.append(timed(functools.partial(as_planner, geometry))[0])
        planner.append(timed(functools.partial(planned, alert))[0])
    out: dict[str, Any] = {
        "capcast_ids_ms": _stats(ids_only), "capcast_overlap_ms": _stats(with_overlap),
        "planner_ms": _stats(planner),
        "cells_per_alert": _stats([float(len(s)) for s in ours]),
        # Per alert, in order (for --samples; taken out of the report).
        "_per_alert": [{"offline_ids_ms": round(a, 3), "offline_overlap_ms": round(b, 3),
                        "offline_plan_ms": round(c, 3)}
                       for a, b, c in zip(ids_only, with_overlap, planner, strict=True)],
    }
    if inventories is None:
        return out
    progress("- building the plain STRtree reference over every cell ...")
    out.update(_reference(inventories, geometries, ours, min_overlap, timed))
    gc.collect()
    # Ratios of medians: how many times the plain method's p50 is capcast's.
    out["ratio_strtree_vs_capcast_p50"] = round(
        out["strtree_ms"]["p50"] / out["capcast_ids_ms"]["p50"], 2)
    out["ratio_strtree_overlap_vs_capcast_overlap_p50"] = round(
        out["strtree_overlap_ms"]["p50"] / out["capcast_overlap_ms"]["p50"], 2)
    return out


def _reference(inventories: Sequence[Path], geometries: Sequence[Any],
               ours: Sequence[set[str]], min_overlap: float,
               timed: Callable[[Callable[[], Any]], tuple[float, Any]]) -> dict[str, Any]:
    """The plain method of bench_target: one STRtree over every cell of every operator.

    The cells are read from the same inventory files the service indexed.
    """
    import shapely

    from dispatcher.commands.bench_target import Reference
    from geo.crs import equal_area_for
    from geo.inventory import Inventory

    parts = [Inventory.load(path, progress=False) for path in inventories]
    polygons = np.concatenate([part.polygons for part in parts])
    ids = np.concatenate([np.asarray(part.cell_ids) for part in parts])
    del parts
    ref = Reference(polygons, equal_area_for(shapely.total_bounds(polygons)))
    out: dict[str, Any] = {"reference_build_s": round(ref.build_s, 2),
                           "rss_with_reference_gib": round(_rss_gib(), 2)}
    strtree: list[float] = []
    strtree_overlap: list[float] = []
    differ = 0
    for geometry, mine in zip(geometries, ours, strict=True):
        ms, positions = timed(functools.partial(ref.target, geometry, min_overlap))
        strtree.append(ms)
        strtree_overlap.append(timed(functools.partial(ref.overlap, geometry,
                                                       inside_shortcut=True))[0])
        if set(ids[positions].tolist()) != mine:
            differ += 1
    return {**out, "strtree_ms": _stats(strtree), "strtree_overlap_ms": _stats(strtree_overlap),
            "sets_differ": differ}


async def _db_probe(service: Service, n: int = 200) -> dict[str, Any]:
    """The database's floor, measured in this run through the service's pool.

    ``SELECT 1`` is one round trip; ``SELECT txid_current()`` in autocommit is
    the cheapest durable commit (it takes a transaction id, so its commit
    record is flushed to the WAL before the answer, as every write is).
    """
    pool = service.store.pool
    out: dict[str, Any] = {}
    async with pool.acquire() as conn:
        for name in ("server_version", "synchronous_commit", "fsync", "wal_sync_method",
                     "shared_buffers", "track_wal_io_timing"):
            with contextlib.suppress(Exception):
                out[name] = await conn.fetchval(f"SHOW {name}")
    for label, query in (("select1_ms", "SELECT 1"), ("durable_commit_ms",
                                                       "SELECT txid_current()")):
        times = []
        for _ in range(n):
            started = time.perf_counter()
            async with pool.acquire() as conn:
                await conn.fetchval(query)
            times.append((time.perf_counter() - started) * 1000.0)
        out[label] = _stats(times)
    return out


async def _live_codes_probe(service: Service, n: int = 10) -> dict[str, Any]:
    """What the plan step's look-up of live message codes costs now (if the store has one).

    The planner asks the store, on every alert, which message codes live
    broadcasts hold; the answer's cost grows with the broadcast jobs not yet
    expired. None when this version of the store has no such look-up.
    """
    lookup = getattr(service.store, "live_message_codes", None)
    if lookup is None:
        return {}
    times, codes = [], frozenset[int]()
    for _ in range(n):
        started = time.perf_counter()
        codes = await lookup(service.clock())
        times.append((time.perf_counter() - started) * 1000.0)
    async with service.store.pool.acquire() as conn:
        jobs = await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE kind IN ('cbc-rest', 'smpp-broadcast') "
            "AND state IN ('queued', 'running', 'succeeded') "
            "AND (expires_at IS NULL OR expires_at > now())")
    return {"ms": _stats(times), "codes": len(codes), "broadcast_jobs": int(jobs)}


async def _wal(service: Service) -> dict[str, float]:
    """WAL writes and syncs so far (pg_stat_wal, PostgreSQL 14 and later; {} without)."""
    try:
        async with service.store.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT wal_records, wal_write, wal_sync, wal_sync_time "
                                      "FROM pg_stat_wal")
    except Exception:
        return {}
    return {k: float(v) for k, v in dict(row).items()} if row is not None else {}


def _rss_gib() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def _peak_rss_gib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status
                    if line.startswith("VmHWM:")) / 2**20


# -- the command -----------------------------------------------------------------------------


def _cmd_bench_dispatch(args: argparse.Namespace, out: TextIO) -> int:
    if args.cells < 300:
        raise UsageError("--cells must be at least 300")
    if args.alerts < 1 or args.warmup < 0 or args.workers < 1 or args.subscribers < 0:
        raise UsageError("--alerts and --workers must be positive, --warmup and "
                         "--subscribers not negative")
    if args.gap < 0 or args.timeout <= 0 or not 0.0 <= args.min_overlap <= 1.0:
        raise UsageError("--gap must not be negative, --timeout positive, --min-overlap in 0..1")
    folder = Path(args.data_dir) if args.data_dir else _default_dir()
    return asyncio.run(_bench(args, out, folder))


async def _bench(args: argparse.Namespace, out: TextIO, folder: Path) -> int:
    from aiohttp import web

    from cap.errors import CapcastError
    from cap.parse import parse_alert
    from dispatcher.app import create_app, open_service
    from dispatcher.config import load_settings
    from geo.synth import DEFAULT_BBOX

    def say(text: str) -> None:
        print(text, file=sys.stderr if args.json else out, flush=True)

    report: dict[str, Any] = {"cells": args.cells, "alerts": args.alerts,
                              "warmup": args.warmup, "gap_s": args.gap,
                              "workers": args.workers, "subscribers": args.subscribers,
                              "min_overlap": args.min_overlap, "peers": args.peers,
                              "placement": args.placement,
                              "cpus": os.cpu_count(), "goal_p99_ms": GOAL_P99_MS}
    say(f"capcast bench dispatch in {folder}: {args.cells:,} cells, {args.alerts} alerts "
        f"(+{args.warmup} warm-up)")
    started = time.perf_counter()
    inventories, built = await asyncio.to_thread(sample_inventories, folder / "cells",
                                                 args.cells, bbox=DEFAULT_BBOX, seed=args.seed)
    report["inventory_s"] = round(time.perf_counter() - started, 1)
    report["inventory_built"] = built
    say(f"- inventory {'synthesized' if built else 'from the cache'} in "
        f"{report['inventory_s']} s")

    token = secrets.token_urlsafe(24)
    # A fresh database per run (its history would weigh on the next run: the plan looks
    # at every live broadcast), the index cache shared by every run.
    run_dir = folder / "runs" / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    run_dir.mkdir(parents=True)
    (folder / "cache").mkdir(exist_ok=True)
    (run_dir / "cache").symlink_to(folder / "cache", target_is_directory=True)
    report["database_dir"] = str(run_dir / "postgres")
    secrets_file = run_dir / "bench-secrets.toml"
    write_secrets(secrets_file, smpp_secret="bench_smpp", smpp_password="bench",
                  tokens={"bench_authority": token})
    peers = Peers(args.peers)
    await peers.start()
    try:
        config_file = run_dir / "bench.toml"
        config_file.write_text(_setup(args.min_overlap, args.subscribers > 0).config(
            run_dir, inventories=inventories, smsc_port=peers.smsc_port,
            cbc_url=peers.cbc_url), encoding="utf-8")
        settings = load_settings(config_file, secrets_path=secrets_file)
        started = time.perf_counter()
        try:
            async with open_service(settings) as service:
                report["service_start_s"] = round(time.perf_counter() - started, 1)
                report["operator_cells"] = {op.name: len(op.index) for op in service.operators}
                report["rss_service_gib"] = round(_rss_gib(), 2)
                say(f"- service started in {report['service_start_s']} s (database "
                    f"{service.database_display}); cells per operator "
                    f"{report['operator_cells']}; RSS {report['rss_service_gib']} GiB")
                await _report_presence(service, args.subscribers, args.seed)
                for client in service.smpp_clients.values():
                    with contextlib.suppress(Exception):
                        await client.wait_bound(30.0)
                app = create_app(service, workers=args.workers, feeds=False)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                try:
                    site = web.TCPSite(runner, "127.0.0.1", 0)
                    await site.start()
                    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
                    sites = np.concatenate([_sites(op.index, 4000, args.seed)
                                            for op in service.operators])
                    if args.placement == "uniform":
                        rng = np.random.default_rng([args.seed, 13])
                        lo, hi = sites.min(axis=0), sites.max(axis=0)
                        sites = lo + rng.random((len(sites), 2)) * (hi - lo)
                    areas = make_areas(sites, args.warmup + args.alerts, args.seed)
                    say(f"- service at {url}, peers ({args.peers}) SMSC 127.0.0.1:"
                        f"{peers.smsc_port}, CBC {peers.cbc_url}; posting ...")
                    report["database"] = await _db_probe(service)
                    report["live_codes_before"] = await _live_codes_probe(service)
                    env: dict[str, Any] = {}
                    samples = await _run_alerts(service, url, token, peers, areas, args, say,
                                                env)
                    _environment(report, env, args.alerts)
                    await asyncio.sleep(0.2)
                    report["live_codes_after"] = await _live_codes_probe(service)
                    await _collect(service, samples, peers)
                finally:
                    await runner.cleanup()
                measured = [s for s in samples if not s.warmup]
                say("- targeting the same areas again, service idle ...")
                alerts = [make_alert(area, identifier=s.identifier, now=service.clock())
                          for area, s in zip(areas, samples, strict=True) if not s.warmup]
                alerts = [parse_alert(_serialize(a)) for a in alerts]
                report["targeting"] = await asyncio.to_thread(
                    _targeting, service, alerts, args.min_overlap,
                    None if args.no_reference else list(inventories.values()), say)
                offline = report["targeting"].pop("_per_alert")
                if args.samples:
                    _write_samples(Path(args.samples), measured, offline)
        except (CapcastError, OSError) as exc:
            print(f"capcast bench dispatch: cannot run the service: {exc}", file=sys.stderr)
            return EXIT_INVALID
    finally:
        await peers.stop()
        if not args.keep_database:
            shutil.rmtree(run_dir, ignore_errors=True)
    report["rss_peak_gib"] = round(_peak_rss_gib(), 2)
    _summarize(report, measured)
    if args.json:
        out.write(json.dumps(report, sort_keys=True) + "\n")
    else:
        _print(report, out)
        if args.profile:
            import pstats

            print(f"\ncProfile of the measured alerts ({args.profile}), top 25 by own time:",
                  file=out)
            pstats.Stats(args.profile, stream=out).sort_stats("tottime").print_stats(25)
    return EXIT_OK


def _write_samples(path: Path, samples: Sequence[Sample],
                   offline: Sequence[dict[str, float]]) -> None:
    """One JSON line per measured alert: what it did, its hops, its offline timings."""
    with path.open("w", encoding="utf-8") as handle:
        for sample, extra in zip(samples, offline, strict=True):
            row = {field.name: getattr(sample, field.name)
                   for field in dataclasses.fields(sample) if field.name != "warmup"}
            row.update(first_pdu_ms=sample.first_pdu_ms, **extra)
            handle.write(json.dumps(row, sort_keys=True) + "\n")


def _environment(report: dict[str, Any], env: dict[str, Any], alerts: int) -> None:
    """Load, CPU and WAL figures of the measured part of the run into ``report``."""
    report["load_avg_1min"] = [round(env["load_before"][0], 2), round(env["load_after"][0], 2)]
    report["process_cpu_s"] = env["cpu_s"]
    report["measured_wall_s"] = env["wall_s"]
    before, after = env.get("wal_before") or {}, env.get("wal_after") or {}
    if before and after:
        report["wal_per_alert"] = {k: round((after[k] - before[k]) / alerts, 2)
                                   for k in ("wal_records", "wal_write", "wal_sync")}
        if after.get("wal_sync_time"):
            report["wal_per_alert"]["wal_sync_time_ms"] = round(
                (after["wal_sync_time"] - before["wal_sync_time"]) / alerts, 3)


def _serialize(alert: Alert) -> bytes:
    from cap.serialize import serialize

    return serialize(alert)


def _sites(index: Any, n: int, seed: int) -> np.ndarray:
    """Sites (lon, lat) of ``n`` random cells of an index: the apex of each sector wedge."""
    import shapely

    if len(index) == 0:
        return np.empty((0, 2))
    rng = np.random.default_rng([seed, 5])
    polygons = index.coverage(rng.integers(len(index), size=n))
    return np.asarray([shapely.get_coordinates(p)[0] for p in polygons])


async def _report_presence(service: Service, count: int, seed: int) -> None:
    """Charlie reports ``count`` subscribers spread over its cells (as its network would)."""
    from dispatcher.store import PresenceEntry

    charlie = next((op for op in service.operators if op.name == "Charlie"), None)
    if charlie is None or count == 0 or len(charlie.index) == 0:
        return
    rng = random.Random(seed)
    cells = charlie.index.cell_ids
    now = service.clock()
    entries = [PresenceEntry(msisdn=f"+99900{n:07d}", cell_id=str(cells[rng.randrange(len(cells))]),
                             reported_at=now) for n in range(count)]
    await service.store.upsert_presence("Charlie", entries)


def _summarize(report: dict[str, Any], samples: Sequence[Sample]) -> None:
    """Percentiles of the whole and of each hop into ``report``."""
    errors = [s for s in samples if s.error is not None]
    reached = [s for s in samples if s.first_pdu_ms is not None]
    totals = [s.first_pdu_ms for s in reached if s.first_pdu_ms is not None]
    report["posted"] = len(samples)
    report["refused"] = len(errors)
    report["first_error"] = errors[0].error if errors else None
    cancels = [s.cancel_error for s in samples if s.cancel_error is not None]
    report["cancels_refused"] = len(cancels)
    report["first_cancel_error"] = cancels[0] if cancels else None
    report["without_pdu"] = len(samples) - len(errors) - len(reached)
    # Alerts with a job that was not done before the Cancel (failed and waiting for a retry).
    report["unfinished"] = sum(1 for s in samples if s.error is None and s.jobs
                               and not s.finished)
    report["first_pdu_ms"] = _stats(totals)
    p99 = report["first_pdu_ms"].get("p99")
    report["goal_met"] = bool(p99 is not None and p99 <= GOAL_P99_MS
                              and len(reached) == len(samples))
    report["hops_ms"] = {name: _stats([s.hops[name] for s in reached]) for name, _ in HOPS}
    report["commit_step_ms"] = _stats([s.steps.get("commit", 0.0) for s in reached])
    report["alert_done_ms"] = _stats([s.done_ms for s in samples if s.done_ms is not None])
    report["post_ms"] = _stats([s.post_ms for s in samples if s.error is None])
    report["http_overhead_ms"] = _stats([
        s.post_ms - sum(s.steps.get(name, 0.0) for name, _ in STEPS)
        for s in samples if s.error is None])
    report["first_gateway"] = {op: sum(1 for s in reached if s.first_operator == op)
                               for op in OPERATORS}
    report["per_gateway"] = {}
    for op in OPERATORS:
        rows = [s.gateways[op] for s in samples if op in s.gateways]
        report["per_gateway"][op] = {
            "gateway": GATEWAYS[op][1], "first_pdu_ms": _stats([r["first_pdu"] for r in rows]),
            "commit_to_claim_ms": _stats([r["commit_to_claim"] for r in rows]),
            "claim_to_submission_ms": _stats([r["claim_to_submission"] for r in rows]),
            "submission_to_peer_ms": _stats([r["submission_to_peer"] for r in rows]),
            "job_states": dict(Counter(s.job_states[op] for s in samples
                                       if op in s.job_states)),
            "first_job_error": next((s.job_errors[op] for s in samples if op in s.job_errors),
                                    None),
            "pdus_per_alert": _stats([float(s.pdus.get(op, 0)) for s in samples
                                      if s.error is None]),
            "cells_per_alert": _stats([float(s.cells.get(op, 0)) for s in samples
                                       if s.error is None])}
    # The tail: mean hops of the slowest 5% of alerts.
    if reached:
        cut = float(np.percentile(totals, 95))
        slow = [s for s in reached if (s.first_pdu_ms or 0.0) >= cut]
        report["slowest_5pct"] = {
            "n": len(slow), "first_pdu_ms_min": round(cut, 3),
            "mean_hops_ms": {name: round(float(np.mean([s.hops[name] for s in slow])), 3)
                             for name, _ in HOPS},
            "shapes": {name: sum(1 for s in slow if s.shape == name) for name, _ in SHAPES},
            "cells_mean": round(float(np.mean([sum(s.cells.values()) for s in slow])), 1)}
    cells = [float(sum(s.cells.values())) for s in reached]
    report["cells_targeted"] = _stats(cells)
    if len(reached) > 2 and np.std(cells) > 0:
        plan = [s.steps.get("plan", 0.0) for s in reached]
        report["corr_cells_plan"] = round(float(np.corrcoef(cells, plan)[0, 1]), 3)
        report["corr_cells_first_pdu"] = round(float(np.corrcoef(cells, totals)[0, 1]), 3)
    report["by_cells"] = {
        f"{lo}-{hi if hi < math.inf else ''}": _stats([
            s.first_pdu_ms for s in reached if lo <= sum(s.cells.values()) < hi
            and s.first_pdu_ms is not None])
        for lo, hi in ((0, 1000), (1000, 5000), (5000, 20000), (20000, math.inf))}
    # The run in quarters: a step whose cost grows with the alerts already sent shows here.
    quarters = np.array_split(np.arange(len(samples)), 4) if len(samples) >= 4 else []
    reached_ids = {id(s) for s in reached}
    def quarter_p50(value: Callable[[Sample], float]) -> list[float | None]:
        return [_stats([value(samples[k]) for k in part if id(samples[k]) in reached_ids]
                       ).get("p50") for part in quarters]

    report["by_quarter_p50_ms"] = {
        "first_pdu": quarter_p50(lambda s: s.first_pdu_ms or 0.0),
        "target_plan": quarter_p50(lambda s: s.steps.get("plan", 0.0)),
        "commit_to_claim": quarter_p50(lambda s: s.hops["commit_to_claim"])}
    report["by_shape_p50_ms"] = {
        name: _stats([s.first_pdu_ms for s in reached if s.shape == name
                      and s.first_pdu_ms is not None]).get("p50") for name, _ in SHAPES}


def _row(label: str, stats: dict[str, float], extra: str = "") -> str:
    if not stats.get("n"):
        return f"  {label:<28} (none)"
    return (f"  {label:<28} {stats['p50']:8.2f} {stats['p95']:8.2f} {stats['p99']:8.2f} "
            f"{stats['max']:8.2f} {stats['mean']:8.2f}{extra}")


def _print(report: dict[str, Any], out: TextIO) -> None:
    def say(text: str = "") -> None:
        print(text, file=out)

    first = report["first_pdu_ms"]
    say()
    say(f"POST -> first PDU at a simulator, {report['cells']:,} cells, {report['posted']} "
        f"alerts ({report['refused']} refused, {report['without_pdu']} without a PDU, "
        f"{report['unfinished']} with a job not done), {report['workers']} worker(s), peers "
        f"{report['peers']}, areas placed at {report['placement']}, {report['cpus']} CPUs")
    if report["first_error"]:
        say(f"  first refusal: {report['first_error']}")
    if report["first_cancel_error"]:
        say(f"  {report['cancels_refused']} Cancels refused; the first: "
            f"{report['first_cancel_error']}")
    header = f"  {'':<28} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'mean':>8}   (ms)"
    say(header)
    say(_row("POST -> first PDU", first))
    if first.get("n"):
        verdict = "met" if report["goal_met"] else "MISSED"
        say(f"  goal (issue 5): p99 <= {GOAL_P99_MS:.0f} ms on a 2-core machine: {verdict} "
            f"(p99 {first['p99']:.1f} ms)")
    say()
    say("per gateway, POST -> that operator's first request:")
    for op, row in report["per_gateway"].items():
        say(_row(f"{op} ({row['gateway']})", row["first_pdu_ms"],
                 f"  n={row['first_pdu_ms'].get('n', 0)}, first in "
                 f"{report['first_gateway'].get(op, 0)}; cells p50 "
                 f"{row['cells_per_alert'].get('p50', 0):.0f}, requests per alert mean "
                 f"{row['pdus_per_alert'].get('mean', 0):.1f}; jobs {row['job_states']}"))
        if row["first_job_error"]:
            say(f"    first job error: {row['first_job_error'][:300]}")
    say()
    say("where the time goes, along each alert's first PDU (hops add up to the total):")
    say(header)
    mean_total = first.get("mean") or math.nan
    for name, label in HOPS:
        stats = report["hops_ms"][name]
        share = f"  {100 * stats['mean'] / mean_total:5.1f}%" if stats.get("n") else ""
        say(_row(label, stats, share))
    say(_row("(commit step, ingest's view)", report["commit_step_ms"]))
    say(_row("HTTP overhead (POST - steps)", report["http_overhead_ms"]))
    say(_row("POST round trip", report["post_ms"]))
    say(_row("POST -> all jobs settled", report["alert_done_ms"]))
    tail = report.get("slowest_5pct")
    if tail:
        say(f"slowest 5% ({tail['n']} alerts, >= {tail['first_pdu_ms_min']:.1f} ms; "
            f"{tail['cells_mean']:.0f} cells on average; shapes {tail['shapes']}), mean ms:")
        say("  " + ", ".join(f"{label} {tail['mean_hops_ms'][name]:.1f}"
                             for name, label in HOPS))
    cells = report["cells_targeted"]
    if cells.get("n"):
        say(f"cells targeted per alert (all operators): p50 {cells['p50']:.0f}, p95 "
            f"{cells['p95']:.0f}, max {cells['max']:.0f}; correlation with target+plan "
            f"{report.get('corr_cells_plan', math.nan):.2f}, with the total "
            f"{report.get('corr_cells_first_pdu', math.nan):.2f}")
    say(f"p50 by shape: {report['by_shape_p50_ms']}")
    say("p50 per quarter of the run (first to last): " + "; ".join(
        f"{key} {values}" for key, values in report["by_quarter_p50_ms"].items()))
    say("POST -> first PDU by cells targeted (all operators):")
    for bucket, stats in report["by_cells"].items():
        say(_row(f"{bucket} cells", stats, f"  n={stats.get('n', 0)}"))
    t = report.get("targeting")
    if t:
        say()
        say(f"targeting the same {t['capcast_ids_ms']['n']} areas offline (service idle), ms:")
        say(header)
        say(_row("capcast CellIndex (3 ops)", t["capcast_ids_ms"]))
        say(_row("  + overlap stats (planner)", t["capcast_overlap_ms"]))
        say(_row("planner plan() (pure)", t["planner_ms"]))
        if "strtree_ms" in t:
            say(_row("STRtree intersects, 1 tree", t["strtree_ms"],
                     f"  {t['ratio_strtree_vs_capcast_p50']:.1f}x capcast"))
            say(_row("STRtree + overlap areas", t["strtree_overlap_ms"],
                     f"  {t['ratio_strtree_overlap_vs_capcast_overlap_p50']:.1f}x capcast"))
            say(f"  targeted sets: {'identical' if t['sets_differ'] == 0 else ''}"
                f"{'' if t['sets_differ'] == 0 else str(t['sets_differ']) + ' alerts DIFFER'}"
                f"; reference build {t['reference_build_s']} s, RSS with it "
                f"{t['rss_with_reference_gib']} GiB")
        plan_step = report["hops_ms"]["plan"]
        if plan_step.get("n") and t["planner_ms"].get("p50"):
            say(f"  in-service target+plan p50 {plan_step['p50']:.2f} ms = "
                f"{plan_step['p50'] / t['planner_ms']['p50']:.2f}x the planner alone")
    db = report.get("database") or {}
    if db:
        say()
        commit = db["durable_commit_ms"]
        say(f"database, measured in this run through the service's pool: PostgreSQL "
            f"{db.get('server_version', '?')}, synchronous_commit={db.get('synchronous_commit')}"
            f", fsync={db.get('fsync')}, wal_sync_method={db.get('wal_sync_method')}")
        say(_row("SELECT 1 round trip", db["select1_ms"]))
        say(_row("durable commit (txid_current)", commit))
        wal = report.get("wal_per_alert")
        if wal:
            say(f"  per alert during the run: {wal['wal_sync']:.1f} WAL syncs, "
                f"{wal['wal_write']:.1f} WAL writes, {wal['wal_records']:.0f} WAL records"
                + (f", {wal['wal_sync_time_ms']:.2f} ms syncing" if "wal_sync_time_ms" in wal
                   else ""))
        before, after = report.get("live_codes_before"), report.get("live_codes_after")
        if before and after:
            say(f"  the plan step's look-up of live message codes (Store.live_message_codes): "
                f"p50 {before['ms']['p50']:.2f} ms before the run ({before['broadcast_jobs']} "
                f"unexpired broadcast jobs), {after['ms']['p50']:.2f} ms after it "
                f"({after['broadcast_jobs']} jobs, {after['codes']} codes held)")
        say(f"  {PATH_COMMITS} durable commits lie on the path to the first PDU (raw bytes, "
            f"validation record, outbox, claim, submission record): {PATH_COMMITS} x p50 "
            f"{commit['p50']:.2f} = {PATH_COMMITS * commit['p50']:.1f} ms of the p50 "
            f"{first.get('p50', math.nan):.1f} ms")
    say()
    say(f"environment: {report['cpus']} CPUs, 1-minute load average "
        f"{report['load_avg_1min'][0]} before and {report['load_avg_1min'][1]} after the "
        f"measured alerts; this process used {report['process_cpu_s']} s CPU in "
        f"{report['measured_wall_s']} s")
    say(f"setup: inventory {report['inventory_s']} s "
        f"({'built' if report['inventory_built'] else 'cached'}), service start "
        f"{report['service_start_s']} s; RSS with the service {report['rss_service_gib']} GiB, "
        f"peak {report['rss_peak_gib']} GiB")
