"""Prometheus metrics at `/metrics`, correct under several gunicorn workers.

Under gunicorn, `extender.ops.gunicorn_conf` points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before
the workers start and marks each dead worker's files (prometheus-client multiprocess mode): counters
and histograms add up over the workers, the live-state gauges take the worst live worker (cache
synced: the minimum; sync age: the maximum) or the sum (reservations). Without that variable (tests
with the Flask client) the app's own registry is served.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from extender.config.policy_store import PolicyStore
    from extender.kube.view import ClusterView

log = logging.getLogger(__name__)

EXTENSION_KEY = "site_extender_metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"
"""Answered 200 with a non-empty `Error` (the scheduler fails the attempt), or an internal error."""
OUTCOME_REJECTED = "rejected"
"""Not the protocol: 4xx (bad body, wrong method or media type, too large, no client certificate)."""


MAX_STOCK_SERIES_ENV = "SITE_EXTENDER_STOCK_METRICS_MAX_SERIES"
DEFAULT_MAX_STOCK_SERIES = 20_000


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """Every metric the extender exports, registered in a registry of its own."""

    def __init__(self, stock: Callable[[], Iterable[tuple[str, str, int]]] | None = None) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.stock = StockCollector(stock) if stock is not None else None
        if self.stock is not None and not multiprocess_mode():
            r.register(self.stock)
        self.requests = Counter("site_extender_requests", "HTTP requests by verb (route) and outcome",
                                ["verb", "outcome"], registry=r)
        self.latency = Histogram("site_extender_request_duration_seconds", "Time to answer, by verb and outcome",
                                 ["verb", "outcome"], buckets=LATENCY_BUCKETS, registry=r)
        self.nodes_passed = Counter("site_extender_filter_nodes_passed", "Nodes that passed every predicate",
                                    registry=r)
        self.nodes_failed = Counter(
            "site_extender_filter_nodes_failed",
            "Nodes rejected, by the predicate that rejected them and whether the failure is unresolvable",
            ["predicate", "unresolvable"], registry=r)
        self.policy_reloads = Counter("site_extender_policy_reloads",
                                      "Policy and inventory reloads after a ConfigMap change, by result",
                                      ["result"], registry=r)
        self.tls_reloads = Counter("site_extender_tls_reloads", "Certificate reloads after the files changed, by result",
                                   ["result"], registry=r)
        self._live: _LiveGauges | None = None
        """Created at the first refresh: a worker that has not read its state yet adds no zeros."""

    # --- live state, read at scrape time (and by the watcher in every worker) -------------------

    def refresh(self, cluster: ClusterView, policies: PolicyStore,
                events: Callable[[], Mapping[str, int]] | None = None) -> None:
        """Copy the cluster view's stats, the policy state and the Event queue's counts into the gauges;
        unknown keys are skipped."""
        live = self.live()
        if events is not None:
            counts = events()
            live.events_queued.set(counts.get("queued", 0))
            live.events_dropped.set(counts.get("dropped", 0))
        try:
            stats: Mapping[str, object] = cluster.stats() or {}
            synced = cluster.synced()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the cache is in trouble
            stats, synced = {}, False
        live.cache_synced.set(1 if synced else 0)
        age = _number(stats.get("last_sync_age_seconds"))
        if age is not None:
            live.cache_age.set(age)
        for kind in ("nodes", "pods"):
            count = _number(stats.get(kind))
            if count is not None:
                live.cache_objects.labels(kind).set(count)
        reservations = stats.get("reservations")
        count = _number(len(reservations) if isinstance(reservations, (list, tuple, dict)) else reservations)
        live.reservations.set(count or 0)
        state = policies.status()
        live.policy_reload_ok.set(0 if state.get("last_reload_error") else 1)
        live.policy_generation.set(_number(state.get("generation")) or 1)

    def live(self) -> _LiveGauges:
        if self._live is None:
            self._live = _LiveGauges(self.registry)
        return self._live

    def policy_reloaded(self, ok: bool) -> None:
        self.policy_reloads.labels("success" if ok else "failure").inc()
        self.live().policy_reload_ok.set(1 if ok else 0)

    def tls_reloaded(self, ok: bool) -> None:
        self.tls_reloads.labels("success" if ok else "failure").inc()

    def exposition(self) -> bytes:
        if not multiprocess_mode():
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        if self.stock is not None:  # worked out at scrape time from this worker's snapshot
            registry.register(self.stock)
        for attempt in range(3):
            try:
                return generate_latest(registry)
            except (struct.error, FileNotFoundError):
                # A worker starting up has created its file but not sized it yet, or a dead
                # worker's file was just removed: read again.
                if attempt == 2:
                    raise
                time.sleep(0.01)
        raise AssertionError("unreachable")


class StockCollector(Collector):
    """`site_extender_stock_left{site, flavor}`, read from the snapshot at scrape time. The label sets are
    the inventory's (sites and the flavors of their region, never anything a request names), so a site
    or flavor that leaves the inventory leaves the metrics at the next scrape; above
    SITE_EXTENDER_STOCK_METRICS_MAX_SERIES of them the rest is left out and counted."""

    def __init__(self, left: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        self.left = left
        self.max_series = int(os.environ.get(MAX_STOCK_SERIES_ENV) or DEFAULT_MAX_STOCK_SERIES)
        self._warned = False

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # no describe at registration: the snapshot may not be readable yet

    def collect(self) -> Iterator[GaugeMetricFamily]:
        left = GaugeMetricFamily("site_extender_stock_left",
                                 "VMs of the flavor the site can still take (0 when the site takes nothing)",
                                 labels=["site", "flavor"])
        dropped = 0
        try:
            for i, (site, flavor, count) in enumerate(self.left()):
                if i >= self.max_series:
                    dropped += 1
                    continue
                left.add_metric([site, flavor], count)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the policy is in trouble
            log.exception("stock metrics unavailable")
        if dropped and not self._warned:
            self._warned = True
            log.warning("stock metrics: %d site/flavor series left out above %s=%d", dropped,
                        MAX_STOCK_SERIES_ENV, self.max_series)
        yield left
        yield GaugeMetricFamily("site_extender_stock_series_dropped",
                                f"site/flavor series of site_extender_stock_left left out above {MAX_STOCK_SERIES_ENV}",
                                value=dropped)


class _LiveGauges:
    """This worker's view of the cluster cache, the reservations and the policy in force."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.cache_synced = Gauge("site_extender_cache_synced", "1 when the node/pod cache reflects the cluster",
                                  registry=r, multiprocess_mode="livemin")
        self.cache_age = Gauge("site_extender_cache_last_sync_age_seconds",
                               "Seconds since the cache last heard from the API server",
                               registry=r, multiprocess_mode="livemax")
        self.cache_objects = Gauge("site_extender_cache_objects", "Objects in the node/pod cache, by kind",
                                   ["kind"], registry=r, multiprocess_mode="livemax")
        self.reservations = Gauge("site_extender_reservations", "Placements reserved and not yet seen bound",
                                  registry=r, multiprocess_mode="livesum")
        self.policy_reload_ok = Gauge("site_extender_policy_last_reload_success",
                                      "1 if the last policy reload succeeded (or none was tried), 0 if the last "
                                      "good policy is serving because the new one is invalid",
                                      registry=r, multiprocess_mode="livemin")
        self.policy_generation = Gauge("site_extender_policy_generation",
                                       "Policies loaded since start (1 = the start-up one)",
                                       registry=r, multiprocess_mode="livemin")
        self.events_queued = Gauge("site_extender_events_queued",
                                   "Event occurrences waiting for their API write (written at the Event pace)",
                                   registry=r, multiprocess_mode="livesum")
        self.events_dropped = Gauge("site_extender_events_dropped",
                                    "Event occurrences dropped since start because the queue was full",
                                    registry=r, multiprocess_mode="livesum")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def verb_label() -> str:
    """The route's rule (a bounded set), never the raw path a client chose."""
    rule = request.url_rule
    if rule is not None:
        return rule.rule.lstrip("/")
    if any(r.rule == request.path for r in current_app.url_map.iter_rules()):  # 405: the route exists
        return request.path.lstrip("/")
    return "unmatched"


def set_outcome(outcome: str) -> None:
    """Called by the decision wrapper: the HTTP status alone does not show a protocol `Error`."""
    if has_request_context():
        g.site_extender_outcome = outcome


def init_app(app: Flask, cluster: ClusterView, policies: PolicyStore,
             stock: Callable[[], Iterable[tuple[str, str, int]]] | None = None,
             events: Callable[[], Mapping[str, int]] | None = None) -> Metrics:
    """Create the metrics, time every request, serve `/metrics`. Register before any other
    `before_request` hook, so that requests they refuse are timed and counted too. `stock` gives
    (site, flavor, left) at scrape time, `events` the Event queue's counts (`queued`, `dropped`)."""
    metrics = Metrics(stock)
    app.extensions[EXTENSION_KEY] = metrics

    @app.before_request
    def start_timer() -> None:
        g.site_extender_started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        started = g.pop("site_extender_started", None)
        if started is None:
            return response
        outcome = g.pop("site_extender_outcome", None)
        if outcome is None:
            outcome = OUTCOME_OK if response.status_code < 400 else (
                OUTCOME_REJECTED if response.status_code < 500 else OUTCOME_ERROR)
        verb = verb_label()
        metrics.requests.labels(verb, outcome).inc()
        metrics.latency.labels(verb, outcome).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics_() -> Response:
        metrics.refresh(cluster, policies, events)
        return Response(metrics.exposition(), status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def get(app: Flask) -> Metrics | None:
    return app.extensions.get(EXTENSION_KEY)
