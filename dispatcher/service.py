"""The running service's collaborators, as one object the HTTP API, drills and commands share.

:class:`Service` is built once by the composition root (:mod:`dispatcher.app`,
``build_service``) from the :class:`~dispatcher.config.Settings`; tests build
it by hand from their own store and pipeline. It holds no global state: every
handler reaches it through ``request.app[SERVICE]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from dispatcher.config import Settings
from dispatcher.pipeline import Ingest
from dispatcher.planner import OperatorPlanInput
from dispatcher.queue import Queue
from dispatcher.store import Store

if TYPE_CHECKING:
    from dispatcher.worker import GatewayPort
    from gateways.smpp.client import SmppClient
    from geo.geocodes import GeocodeRegistry

__all__ = ["SERVICE", "Service"]


@dataclass(slots=True, kw_only=True)
class Service:
    """Everything a request handler or a drill needs, wired by the composition root.

    :attr:`operators` are the planner inputs currently in use (their cell
    indexes included), as the pipeline holds them; ``gateways`` the worker ports
    per (operator, gateway name); ``smpp_clients`` the SMPP clients behind them,
    for link statistics and metrics. ``clock`` returns an aware ``datetime``.
    """

    settings: Settings
    store: Store
    queue: Queue
    ingest: Ingest
    clock: Callable[[], datetime]
    registry: GeocodeRegistry | None = None
    gateways: Mapping[tuple[str, str], GatewayPort] = field(default_factory=dict)
    smpp_clients: Mapping[tuple[str, str], SmppClient] = field(default_factory=dict)
    #: The database URL in use, with its password redacted (for /readyz and logs).
    database_display: str = ""
    #: Called after a cell inventory upload was saved and recorded as the operator's
    #: active version, with the operator's name and the GeoParquet file: the composition
    #: root swaps the operator's live index there. None: nothing is reloaded.
    on_inventory: Callable[[str, Path], Awaitable[None]] | None = None

    @property
    def operators(self) -> tuple[OperatorPlanInput, ...]:
        """The operators alerts are planned for now (the pipeline's; one source of truth)."""
        return self.ingest.operators


#: Where the aiohttp application keeps the service.
SERVICE: web.AppKey[Service] = web.AppKey("capcast.service", Service)
