"""Prometheus metrics of the service, on a registry of its own (no global state).

:class:`Metrics` owns a ``prometheus_client.CollectorRegistry`` made for one
application: two services in one process (the tests) never share counters.
It is updated at a few hook points:

* the HTTP API calls :meth:`Metrics.observe_ingest` for every CAP submission
  (outcome counter, end-to-end latency, the pipeline's per-step timings) and
  :meth:`Metrics.observe_request` for every request;
* at each scrape the API reads the queue's job counts and hands them to
  :meth:`Metrics.set_job_counts` (they live in PostgreSQL, which the
  synchronous collectors of ``prometheus_client`` cannot await);
* the SMPP link counters are read from the clients' ``stats()`` snapshots
  while the registry is collected (:class:`SmppLinkCollector`).

:meth:`Metrics.render` returns the text exposition format.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dispatcher.store import JobKind, JobState

if TYPE_CHECKING:
    from gateways.smpp.client import LinkStats

__all__ = ["CONTENT_TYPE", "INGEST_BUCKETS", "Metrics", "SmppLinkCollector", "StatsSource"]

#: The Content-Type of :meth:`Metrics.render`'s output.
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Seconds; the ingest goal is a p99 of 100 ms from POST to the first PDU, so the buckets
#: are fine below that and coarse above.
INGEST_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
                  2.5, 5.0, 10.0)


class StatsSource(Protocol):
    """Anything with per-link SMPP counters (a ``gateways.smpp.client.SmppClient``)."""

    def stats(self) -> Sequence[LinkStats]:
        """A snapshot of every link's counters."""
        ...


class SmppLinkCollector(Collector):
    """Per-link SMPP counters, read from the clients when the registry is collected.

    ``clients`` returns the clients by (operator, gateway) at that moment: the
    composition root may start and stop links while the service runs.
    """

    #: (metric suffix, LinkStats attribute, help) of the monotonic counters.
    COUNTERS = (
        ("submitted", "submitted", "PDUs submitted on the link"),
        ("acknowledged", "acknowledged", "Submissions the SMSC acknowledged"),
        ("rejected", "rejected", "Submissions the SMSC refused for good"),
        ("throttled", "throttled", "Submissions answered with a throttling error"),
        ("errors", "errors", "Protocol and transport errors on the link"),
        ("receipts", "receipts", "Delivery receipts received"),
        ("reconnects", "reconnects", "Times the link was opened again after a loss"),
    )

    def __init__(self, clients: Callable[[], Mapping[tuple[str, str], StatsSource]]) -> None:
        self._clients = clients

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the links are known only when collected."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        """One sample per link of each family."""
        labels = ["operator", "gateway", "link"]
        connected = GaugeMetricFamily("capcast_smpp_link_connected",
                                      "1 when the link's TCP connection is open", labels=labels)
        bound = GaugeMetricFamily("capcast_smpp_link_bound", "1 when the link is bound",
                                  labels=labels)
        outstanding = GaugeMetricFamily("capcast_smpp_link_outstanding",
                                        "Requests awaiting a response on the link",
                                        labels=labels)
        unconfirmed = GaugeMetricFamily(
            "capcast_smpp_link_unconfirmed",
            "Submissions whose fate is unknown (the link was lost before the response)",
            labels=labels)
        latency = GaugeMetricFamily(
            "capcast_smpp_link_latency_seconds",
            "Mean seconds from submit to its response on the link", labels=labels)
        counters = {
            attribute: CounterMetricFamily(f"capcast_smpp_link_{suffix}", text, labels=labels)
            for suffix, attribute, text in self.COUNTERS}
        for (operator, gateway), client in sorted(self._clients().items()):
            for stats in client.stats():
                values = [operator, gateway, stats.name]
                connected.add_metric(values, 1.0 if stats.connected else 0.0)
                bound.add_metric(values, 1.0 if stats.bound else 0.0)
                outstanding.add_metric(values, float(stats.outstanding))
                unconfirmed.add_metric(values, float(stats.unconfirmed))
                latency.add_metric(values, stats.mean_latency
                                   if stats.mean_latency is not None else math.nan)
                for attribute, family in counters.items():
                    family.add_metric(values, float(getattr(stats, attribute)))
        yield connected
        yield bound
        yield outstanding
        yield unconfirmed
        yield latency
        yield from counters.values()


class Metrics:
    """The service's metrics on a registry of their own.

    ``smpp_clients`` returns the SMPP clients by (operator, gateway) whenever
    the registry is collected; None: no SMPP metrics.
    """

    def __init__(self, *, smpp_clients: Callable[[], Mapping[tuple[str, str], StatsSource]]
                 | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.alerts_ingested = Counter(
            "capcast_alerts_ingested", "CAP documents submitted, by what became of them",
            ["outcome"], registry=self.registry)
        self.ingest_seconds = Histogram(
            "capcast_ingest_seconds",
            "Seconds from a CAP submission's arrival to its answer (stored, validated, "
            "authorized, planned and committed)", buckets=INGEST_BUCKETS,
            registry=self.registry)
        self.ingest_step_seconds = Histogram(
            "capcast_ingest_step_seconds", "Seconds spent in each step of the ingest pipeline",
            ["step"], buckets=INGEST_BUCKETS, registry=self.registry)
        self.http_requests = Counter(
            "capcast_http_requests", "HTTP requests answered, by route and status",
            ["method", "route", "status"], registry=self.registry)
        self.jobs = Gauge("capcast_jobs", "Jobs in the queue by kind and state (at the scrape)",
                          ["kind", "state"], registry=self.registry)
        self.database_up = Gauge("capcast_database_up",
                                 "1 when the last scrape could read the database",
                                 registry=self.registry)
        if smpp_clients is not None:
            self.registry.register(SmppLinkCollector(smpp_clients))

    def observe_ingest(self, outcome: str, seconds: float,
                       steps: Mapping[str, float] | None = None) -> None:
        """Count one submission; ``steps`` are the pipeline's timings in milliseconds."""
        self.alerts_ingested.labels(outcome=outcome).inc()
        self.ingest_seconds.observe(seconds)
        for step, milliseconds in (steps or {}).items():
            self.ingest_step_seconds.labels(step=step).observe(milliseconds / 1000.0)

    def observe_request(self, method: str, route: str, status: int) -> None:
        """Count one answered HTTP request (``route`` is the route's pattern, not the URL)."""
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()

    def set_job_counts(self, counts: Mapping[tuple[JobKind, JobState], int] | None) -> None:
        """Replace the job gauges; None when the database could not be read."""
        if counts is None:
            self.database_up.set(0)
            return
        self.database_up.set(1)
        # Every (kind, state) pair is exported, zeros included, so that a series
        # does not vanish when its last job moves on.
        for kind in JobKind:
            for state in JobState:
                self.jobs.labels(kind=kind.value, state=state.value).set(
                    counts.get((kind, state), 0))

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)
