"""The composition root: settings in, a running service out.

Everything the service is made of is built here and nowhere else, from one
:class:`~dispatcher.config.Settings`:

* :func:`open_database`: the configured PostgreSQL, or an embedded one in the
  data folder (``pgserver``), migrated to the current schema;
* :func:`authority_policies`, :func:`operator_inputs`: what the ingest
  pipeline and the planner need, with each operator's cell index loaded from
  its inventory (a GeoParquet file from the configuration, or the active
  uploaded version) and cached as an ``.npz`` beside the data;
* :func:`open_gateways`: one port per (operator, gateway), with its SMPP or
  CBC client started and closed here;
* :func:`open_service`: all of the above as one :class:`Service`;
* :func:`create_app`: the aiohttp application (the HTTP API) with the
  workers and the feed poller as ``cleanup_ctx`` entries, so they start and
  stop with the server.

Library code takes plain arguments; only this module reads settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import shapely
from aiohttp import web
from shapely.geometry.base import BaseGeometry

from cap.errors import CapcastError
from cap.signature import TrustStore, load_trust_store
from dispatcher import config as cfg
from dispatcher.config import Settings
from dispatcher.embedded import EmbeddedPostgres
from dispatcher.errors import DatabaseUnavailable
from dispatcher.pipeline import AuthorityPolicy, Ingest, JurisdictionPolicy
from dispatcher.planner import (
    GatewayKind,
    GatewayPlanInput,
    OperatorPlanInput,
    PlanOptions,
    StatusPolicy,
    TargetingPolicy,
)
from dispatcher.queue import Queue
from dispatcher.service import SERVICE, Service
from dispatcher.store import Store, create_pool, migrate, redact_url
from dispatcher.worker import CbcRestPort, GatewayPort, Worker
from gateways.cbc.client import CbcClient
from gateways.cbc.ecbe import Dialect, EcbeOptions
from gateways.smpp.client import BindMode, LinkConfig, SmppClient
from geo.areas import GeocodeUse
from geo.geocodes import GeocodeRegistry, default_registry
from geo.index import CellIndex

__all__ = [
    "StartupError",
    "authority_policies",
    "create_app",
    "load_index",
    "open_database",
    "open_gateways",
    "open_service",
    "operator_inputs",
    "utcnow",
]

logger = logging.getLogger(__name__)


class StartupError(CapcastError):
    """The service cannot start with this configuration or data (names the input)."""


def utcnow() -> datetime:
    """The wall clock, aware (the service's one clock, passed to everything that needs time)."""
    return datetime.now(UTC)


# -- database --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[str]:
    """The database URL to use: the configured one, or an embedded PostgreSQL's.

    The embedded server lives in ``settings.postgres_dir`` and is stopped on exit.
    """
    if settings.database.url is not None:
        yield settings.database.url.value
        return
    embedded = EmbeddedPostgres(settings.postgres_dir)
    url = await embedded.start()
    logger.info("embedded PostgreSQL in %s", settings.postgres_dir,
                extra={"action": "embedded_postgres", "folder": str(settings.postgres_dir)})
    try:
        yield url
    finally:
        await embedded.stop()


# -- authorities -----------------------------------------------------------------------------


def _jurisdiction(authority: cfg.AuthoritySettings,
                  registry: GeocodeRegistry | None) -> BaseGeometry | None:
    spec = authority.jurisdiction
    if spec is None:
        return None
    where = f"authorities[{authority.sender}].jurisdiction"
    if spec.file is not None:
        try:
            data = json.loads(spec.file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StartupError(f"{where}: cannot read {spec.file}: {exc}") from exc
        features = data.get("features", [data]) if isinstance(data, dict) else []
        shapes = []
        for feature in features:
            geometry = feature.get("geometry", feature) if isinstance(feature, dict) else None
            if geometry is None:
                continue
            try:
                shapes.append(shapely.geometry.shape(geometry))
            except (ValueError, TypeError, AttributeError) as exc:
                raise StartupError(f"{where}: {spec.file}: not GeoJSON geometry: {exc}") from exc
        polygons = [s for s in shapes if s.geom_type in ("Polygon", "MultiPolygon")]
        if not polygons:
            raise StartupError(f"{where}: {spec.file} holds no Polygon or MultiPolygon")
        return shapely.make_valid(shapely.union_all(polygons))
    if registry is None:
        raise StartupError(f"{where}: geocodes need boundary data; set targeting.geodata_dir")
    parts = []
    for code in spec.geocodes:
        geometry = registry.resolve(code.value_name, code.value)
        if geometry is None:
            raise StartupError(f"{where}: no boundary for geocode {code} in "
                               f"{', '.join(registry.sources(code.value_name)) or 'geodata_dir'}")
        parts.append(geometry)
    return shapely.union_all(parts)


def authority_policies(settings: Settings,
                       registry: GeocodeRegistry | None) -> dict[str, AuthorityPolicy]:
    """The pipeline's policy for each configured authority, keyed by CAP sender."""
    policies = {}
    for authority in settings.authorities:
        trust: TrustStore | None = None
        if authority.trust_store is not None:
            try:
                trust = load_trust_store(authority.trust_store)
            except (OSError, ValueError, CapcastError) as exc:
                raise StartupError(f"authorities[{authority.sender}].trust_store: "
                                   f"{authority.trust_store}: {exc}") from exc
        policies[authority.sender] = AuthorityPolicy(
            sender=authority.sender, profile=authority.profile,
            allowed_statuses=frozenset(authority.statuses),
            jurisdiction=_jurisdiction(authority, registry),
            on_outside=JurisdictionPolicy(authority.jurisdiction_policy.value),
            signature_required=authority.signature_required, trust_store=trust)
    return policies


# -- operators and their cells --------------------------------------------------------------


def load_index(path: Path, cache_dir: Path | None) -> CellIndex:
    """The cell index of an inventory file, through an ``.npz`` cache keyed by its SHA-256.

    Building an index from a national GeoParquet takes seconds to tens of
    seconds; loading the saved arrays is several times faster, so restarts
    and workers on the same host pay the build once.
    """
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise StartupError(f"cell inventory {path}: {exc.strerror or exc}") from exc
    cached = cache_dir / f"index-{digest[:32]}.npz" if cache_dir is not None else None
    if cached is not None and cached.exists():
        try:
            return CellIndex.load(cached)
        except (CapcastError, OSError, ValueError) as exc:
            logger.warning("ignoring unreadable index cache %s: %s", cached, exc)
    try:
        index = CellIndex.load(path)
    except (CapcastError, OSError, ValueError) as exc:
        raise StartupError(f"cell inventory {path}: {exc}") from exc
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".partial.npz")
            index.save(partial)
            partial.replace(cached)
        except OSError as exc:
            logger.warning("cannot cache the index of %s in %s: %s", path, cached, exc)
    return index


def _plan_gateway(gateway: cfg.Gateway) -> GatewayPlanInput:
    kind = GatewayKind(gateway.kind.value)
    if isinstance(gateway, cfg.CbcRestGateway):
        return GatewayPlanInput(name=gateway.name, kind=kind, enabled=gateway.enabled,
                                dialect=Dialect(gateway.dialect.value),
                                repetition_seconds=round(gateway.repetition),
                                num_broadcasts=gateway.num_broadcasts)
    if isinstance(gateway, cfg.SmppBroadcastGateway):
        return GatewayPlanInput(name=gateway.name, kind=kind, enabled=gateway.enabled,
                                repetition_seconds=round(gateway.repetition or 60),
                                num_broadcasts=gateway.num_broadcasts)
    assert isinstance(gateway, cfg.SmppSmsGateway)
    return GatewayPlanInput(name=gateway.name, kind=kind, enabled=gateway.enabled,
                            max_sms_segments=gateway.max_segments)


def _status_policy(handling: cfg.StatusHandling, index: CellIndex,
                   operator: str) -> StatusPolicy:
    if not handling.gateways:
        return StatusPolicy()
    cells: set[str] = set(handling.cells or ())
    if handling.cells_file is not None:
        try:
            text = handling.cells_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise StartupError(f"operators[{operator}]: cells_file {handling.cells_file}: "
                               f"{exc.strerror or exc}") from exc
        cells.update(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))
    if handling.cells is None and handling.cells_file is None:
        # "Any targeted cell": the allow-list is the whole inventory.
        cells = {str(c) for c in index.cell_ids}
    return StatusPolicy(gateways=frozenset(handling.gateways),
                        channels=frozenset(handling.channels), cells=frozenset(cells))


async def operator_inputs(settings: Settings, store: Store) -> tuple[OperatorPlanInput, ...]:
    """The planner's view of every configured operator, cell index included.

    The inventory is the operator's active uploaded version (an upload is a
    deliberate, later change), else the configured file; an operator with
    neither gets an empty index (it is targeted by nothing until an inventory
    is uploaded) and a warning.
    """
    cache = settings.data_dir / "cache"
    inputs = []
    for operator in settings.operators:
        active = await store.active_inventory(operator.name)
        path = Path(active.path) if active is not None else operator.inventory
        if path is None:
            logger.warning("operator %s has no cell inventory: no alert reaches it until one is "
                           "uploaded", operator.name,
                           extra={"action": "no_inventory", "operator": operator.name})
            index = CellIndex.from_arrays([], [])
        else:
            index = await asyncio.to_thread(load_index, path, cache)
        inputs.append(operator_input(operator, index))
    await asyncio.to_thread(_warm_up, [op.index for op in inputs])
    return tuple(inputs)


def _warm_up(indexes: Sequence[CellIndex]) -> None:
    """Target a small area once per index, so the first real alert does not pay the JIT."""
    for index in indexes:
        if len(index) == 0:
            continue
        lon, lat = (float(v) for v in shapely.centroid(shapely.box(*index.bounds)).coords[0])
        index.target(shapely.box(lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05),
                     min_overlap=0.1)
        index.target(shapely.box(lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05))


def operator_input(operator: cfg.OperatorSettings, index: CellIndex) -> OperatorPlanInput:
    """One operator's planner input over ``index`` (its own cells only)."""
    return OperatorPlanInput(
        name=operator.name, plmn=operator.plmn, index=index, languages=operator.languages,
        gateways=tuple(_plan_gateway(g) for g in operator.gateways),
        exercise=_status_policy(operator.exercise, index, operator.name),
        test=_status_policy(operator.test, index, operator.name))


def targeting_policy(settings: Settings) -> TargetingPolicy:
    """The planner's targeting policy: the defaults with each operator's own threshold."""
    return TargetingPolicy(
        min_overlap=settings.targeting.min_overlap,
        overrides={op.name: op.targeting.min_overlap for op in settings.operators
                   if op.targeting.min_overlap != settings.targeting.min_overlap},
        geocodes=GeocodeUse(settings.targeting.geocodes.value),
        # Overlap statistics at min_overlap 0 cost a clip per targeted cell on the way to
        # the first PDU (tens of ms for a large area); the targeting report endpoint
        # computes them when someone asks.
        overlap_stats=False)


def plan_options(settings: Settings) -> PlanOptions:
    """Service-wide plan options (the authorities' own channel choices)."""
    return PlanOptions(channel_overrides={a.sender: a.channels for a in settings.authorities
                                          if a.channels is not None})


def geocode_registry(settings: Settings) -> GeocodeRegistry | None:
    """The boundary data for geocodes, when ``targeting.geodata_dir`` is set."""
    folder = settings.targeting.geodata_dir
    if folder is None:
        return None
    try:
        return default_registry(folder)
    except CapcastError as exc:
        raise StartupError(f"targeting.geodata_dir: {exc}") from exc


# -- gateways --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Gateways:
    """The ports per (operator, gateway) and the SMPP clients behind them."""

    ports: Mapping[tuple[str, str], GatewayPort]
    smpp_clients: Mapping[tuple[str, str], SmppClient]


def _link_configs(operator: str, gateway: cfg.SmppGateway, *, broadcast: bool
                  ) -> list[LinkConfig]:
    password = gateway.password.value if gateway.password is not None else ""
    return [LinkConfig(
        host=gateway.host, port=gateway.port, system_id=gateway.system_id, password=password,
        system_type=gateway.system_type, bind_mode=BindMode(gateway.bind.value),
        interface_version=0x50 if broadcast else 0x34, window=gateway.window,
        tps=(gateway.throughput / gateway.links) if gateway.throughput else None,
        enquire_link_interval=gateway.enquire_link, response_timeout=gateway.response_timeout,
        connect_timeout=gateway.connect_timeout,
        name=f"{operator}/{gateway.name}" + (f"#{n}" if gateway.links > 1 else ""),
    ) for n in range(gateway.links)]


@contextlib.asynccontextmanager
async def open_gateways(settings: Settings, *, store: Store, queue: Queue,
                        clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Gateways]:
    """Start a client per enabled gateway and yield their worker ports; close them on exit.

    SMPP links connect in the background (with their own reconnect and
    backoff): an SMSC that is down at start-up delays its jobs, it does not
    stop the service.
    """
    from dispatcher.smpp_ports import SmppBroadcastPort, SmppSmsPort

    ports: dict[tuple[str, str], GatewayPort] = {}
    clients: dict[tuple[str, str], SmppClient] = {}
    async with contextlib.AsyncExitStack() as stack:
        for operator in settings.operators:
            for gateway in operator.gateways:
                if not gateway.enabled:
                    continue
                key = (operator.name, gateway.name)
                if isinstance(gateway, cfg.CbcRestGateway):
                    headers = ({"Authorization": gateway.authorization.value}
                               if gateway.authorization is not None else None)
                    cbc = CbcClient(gateway.url, options=EcbeOptions(
                        dialect=Dialect(gateway.dialect.value), cbe_name=gateway.cbe_name),
                        timeout=gateway.timeout, connect_timeout=gateway.connect_timeout,
                        retries=gateway.retries, operator=operator.name, headers=headers)
                    stack.push_async_callback(cbc.close)
                    ports[key] = CbcRestPort(cbc, clock=clock)
                    continue
                broadcast = isinstance(gateway, cfg.SmppBroadcastGateway)
                client = SmppClient(_link_configs(operator.name, gateway, broadcast=broadcast),
                                    operator=operator.name,
                                    clock=lambda: clock().timestamp())
                await client.start(wait_bound=None)
                stack.push_async_callback(client.close)
                clients[key] = client
                if broadcast:
                    ports[key] = SmppBroadcastPort(client, queue=queue, source=gateway.source,
                                                   clock=clock)
                else:
                    assert isinstance(gateway, cfg.SmppSmsGateway)
                    ports[key] = SmppSmsPort(client, store=store, queue=queue,
                                             source=gateway.source, clock=clock,
                                             registered_delivery=gateway.registered_delivery)
        yield Gateways(ports=ports, smpp_clients=clients)


# -- the service -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_service(settings: Settings, *, clock: Callable[[], datetime] = utcnow,
                       gateways: bool = True) -> AsyncIterator[Service]:
    """Database (embedded when no URL), migrations, pipeline, cell indexes and gateways.

    Raises :class:`StartupError` (or a store/config error) naming the input
    that prevents the start.
    """
    registry = geocode_registry(settings)
    policies = authority_policies(settings, registry)
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(open_database(settings))
        pool = await create_pool(url, min_size=settings.database.pool_min,
                                 max_size=settings.database.pool_max)
        stack.push_async_callback(pool.close)
        applied = await migrate(pool, url=url)
        if applied:
            logger.info("applied %d migration(s)", len(applied),
                        extra={"action": "migrate", "count": len(applied)})
        store = Store(pool=pool)
        queue = Queue(pool=pool)
        for authority in settings.authorities:
            await store.upsert_authority(sender=authority.sender, display_name=authority.name,
                                         profile=authority.profile)
        operators = await operator_inputs(settings, store)
        ingest = Ingest(store=store, authorities=policies, operators=operators,
                        targeting=targeting_policy(settings), clock=clock, registry=registry,
                        options=plan_options(settings),
                        max_bytes=settings.http.max_body_bytes)
        ports: Gateways = Gateways(ports={}, smpp_clients={})
        if gateways:
            ports = await stack.enter_async_context(
                open_gateways(settings, store=store, queue=queue, clock=clock))
        service = Service(settings=settings, store=store, queue=queue, ingest=ingest,
                          clock=clock, registry=registry,
                          gateways=ports.ports, smpp_clients=ports.smpp_clients,
                          database_display=redact_url(url))
        service.on_inventory = inventory_reloader(service)
        yield service


def inventory_reloader(service: Service) -> Callable[[str, Path], Awaitable[None]]:
    """The hook the API calls after an inventory upload: swap that operator's live index.

    The index is built off the event loop; alerts planned meanwhile use the
    previous one, later alerts the new one.
    """
    cache = service.settings.data_dir / "cache"

    async def reload(name: str, path: Path) -> None:
        operator = service.settings.operator(name)
        if operator is None:
            raise StartupError(f"inventory upload for unknown operator {name!r}")
        index = await asyncio.to_thread(load_index, path, cache)
        fresh = operator_input(operator, index)
        operators = tuple(fresh if op.name == operator.name else op
                          for op in service.ingest.operators)
        service.ingest.replace_operators(operators)
        logger.info("operator %s now targets %d cells from %s", name, len(index), path,
                    extra={"action": "inventory_swapped", "operator": name,
                           "cells": len(index)})

    return reload


def worker_id(n: int = 0) -> str:
    """A worker name unique across hosts and processes: ``host:pid:n``."""
    return f"{socket.gethostname()}:{os.getpid()}:{n}"


def make_workers(service: Service, count: int, *, concurrency: int = 4,
                 poll_interval: float = 5.0, lease_seconds: float = 30.0) -> list[Worker]:
    """``count`` workers over the service's queue and gateway ports."""
    return [Worker(queue=service.queue, gateways=service.gateways, worker_id=worker_id(n),
                   clock=service.clock, concurrency=concurrency, poll_interval=poll_interval,
                   lease_seconds=lease_seconds) for n in range(count)]


async def run_workers(workers: Sequence[Worker], stop: asyncio.Event) -> None:
    """Run ``workers`` until ``stop`` is set; a worker that crashes is logged and restarted."""
    async def guarded(worker: Worker) -> None:
        delay = 0.5
        while not stop.is_set():
            failed = True
            try:
                await worker.run(stop)
                failed = False
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable as exc:
                # An outage, not a bug: say so without a traceback, and try again.
                logger.warning("worker %s: %s; retrying in %.1f s", worker.worker_id, exc,
                               delay, extra={"action": "worker_database_unavailable",
                                             "worker": worker.worker_id})
            except Exception:
                logger.exception("worker %s crashed; restarting in %.1f s", worker.worker_id,
                                 delay, extra={"action": "worker_crash",
                                               "worker": worker.worker_id})
            if failed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 30.0)
            else:
                delay = 0.5
    await asyncio.gather(*(guarded(w) for w in workers))


async def run_sweeper(service: Service, stop: asyncio.Event, *, interval: float = 30.0) -> None:
    """Every ``interval`` seconds, plan alerts a crash left validated but unplanned."""
    while not stop.is_set():
        try:
            await service.ingest.resume_stalled()
        except CapcastError as exc:
            logger.warning("sweep for unplanned alerts failed: %s", exc,
                           extra={"action": "sweep_failed"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def create_app(service: Service, *, workers: int = 1, feeds: bool = True,
               lease_seconds: float = 30.0, poll_interval: float = 5.0) -> web.Application:
    """The HTTP API with ``workers`` in-process workers and the feed poller attached.

    They start after the server binds and stop (finishing their current
    request) before it closes.
    """
    from dispatcher.api import create_api_app

    app = create_api_app(service)
    assert app[SERVICE] is service

    async def background(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if workers > 0:
            tasks.append(asyncio.create_task(run_workers(make_workers(
                service, workers, lease_seconds=lease_seconds, poll_interval=poll_interval), stop),
                                             name="capcast-workers"))
            tasks.append(asyncio.create_task(run_sweeper(service, stop), name="capcast-sweeper"))
        enabled_feeds = [f for f in service.settings.feeds if f.enabled]
        if feeds and enabled_feeds:
            tasks.append(asyncio.create_task(_run_feeds(service, enabled_feeds, stop),
                                             name="capcast-feeds"))
        yield
        stop.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, 15.0)
            except TimeoutError:
                logger.warning("%s did not stop in time; cancelled", task.get_name())
            except Exception:
                logger.exception("%s failed while stopping", task.get_name())

    app.cleanup_ctx.append(background)
    return app


async def _run_feeds(service: Service, feeds: Sequence[cfg.FeedSettings],
                     stop: asyncio.Event) -> None:
    import aiohttp

    from dispatcher.feeds import FeedPoller

    async with aiohttp.ClientSession() as session:
        poller = FeedPoller(feeds=feeds, ingest=service.ingest, store=service.store,
                            session=session, clock=service.clock)
        await poller.run(stop)

