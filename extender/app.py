"""Flask application factory: builds the extender service from settings and registers the routes."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from extender.allocation.service import Allocations
from extender.allocation.store import AllocationStore, writable_problem_if_used
from extender.config.policy_store import PolicyStore
from extender.config.settings import STATE_CLUSTER, STATE_FILES, Settings
from extender.errors import ConfigError, KubeConfigError
from extender.kube.reservations import Reservations
from extender.kube.view import ClusterView, PlacementSource, StaticCluster
from extender.ops.observe import DecisionEvents
from extender.protocol.service import Extender

if TYPE_CHECKING:
    from extender.kube.transport import Transport

log = logging.getLogger(__name__)

EXTENSION_KEY = "site_extender"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` may set `SETTINGS` (a `Settings`), `CLUSTER` (a `ClusterView`)
    and any Flask option; nothing is created at import time."""
    app = Flask(__name__)
    app.config.from_mapping(SETTINGS=None, CLUSTER=None)
    if config:
        app.config.from_mapping(config)
    settings: Settings = app.config["SETTINGS"] or Settings()
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    if settings.state not in (STATE_FILES, STATE_CLUSTER):
        raise ConfigError([f"SITE_EXTENDER_STATE={settings.state!r}: expected {STATE_FILES} or {STATE_CLUSTER}"])
    policies = PolicyStore(settings.policy, settings.inventory, cluster_inventory=settings.state == STATE_CLUSTER)
    store: Any = None
    if settings.state == STATE_FILES:  # in the cluster, the store is the cluster's (made with its cache)
        store = AllocationStore(settings.data_dir)
        problem = writable_problem_if_used(settings.data_dir)
        if problem:
            log.error("allocation API unavailable until fixed: %s; set SITE_EXTENDER_DATA_DIR to a writable "
                      "directory", problem)
    wired = _extender(policies, settings, app.config["CLUSTER"], store)
    extender, store = wired.extender, wired.store
    extender.fold_unresolvable = settings.fold_unresolvable
    app.extensions[EXTENSION_KEY] = extender
    _log_start(policies, wired.mode)

    from extender.allocation import routes as allocation_routes
    from extender.protocol import explain_routes, routes, sites

    app.extensions[allocation_routes.EXTENSION_KEY] = Allocations(extender, store)
    app.register_blueprint(routes.bp)
    app.register_blueprint(allocation_routes.bp)
    app.register_blueprint(sites.bp)
    app.register_blueprint(explain_routes.bp)
    from extender.allocation import access

    access.init_app(app, wired.access, settings.api_port)
    routes.register_error_handlers(app)
    _harden(app, extender)
    return app


@dataclass(frozen=True, slots=True)
class _Wired:
    extender: Extender
    store: Any
    """The allocation store: SQLite (files) or the cluster's Allocations."""
    mode: str
    """The cluster mode, as the start-up log names it."""
    access: Any = None
    """Who may use the allocation API (the cluster's reviews), None when anyone may."""


def _extender(policies: PolicyStore, settings: Settings, cluster: ClusterView | None, store: Any) -> _Wired:
    """The service over `cluster` when given (tests), else over the cluster that `SITE_EXTENDER_KUBE`
    selects: the watch cache, reservations and the binder; or over the inventory alone when there is
    no cluster (said at start-up). With the state in the cluster, the allocation store and the access
    checks are the cluster's."""
    sources: tuple[PlacementSource, ...] = (store,) if store is not None else ()
    if cluster is not None:
        if store is None:
            raise KubeConfigError(f"SITE_EXTENDER_STATE={STATE_CLUSTER} needs the extender's own cluster access")
        return _Wired(Extender(policies, cluster, sources=sources), store, "given")
    from extender.kube import config

    target = config.choose(settings.kube, os.environ, settings.kubeconfig, settings.master)
    if target.mode == config.NONE:
        if settings.state == STATE_CLUSTER:
            raise KubeConfigError(f"SITE_EXTENDER_STATE={STATE_CLUSTER} keeps the state in a cluster, but none is "
                                  f"configured (SITE_EXTENDER_KUBE={settings.kube}, no in-cluster service account, "
                                  "no kubeconfig)")
        log.warning("no cluster configured: serving from the inventory alone, nothing counts as placed "
                    "but allocations, /bind answers an error (SITE_EXTENDER_KUBE=%s, no in-cluster service "
                    "account, no kubeconfig)", settings.kube)
        return _Wired(Extender(policies, StaticCluster(), sources=sources), store, target.mode)

    from kubernetes.client import CoreV1Api

    from extender.kube.binder import KubeBinder
    from extender.kube.cache import KubeCache
    from extender.kube.labeller import SiteLabeller
    from extender.kube.transport import Transport
    from extender.protocol.wire import Pod

    api = config.api_client(target)
    core = CoreV1Api(api)
    transport = Transport(api)
    reservations = Reservations()
    labeller = SiteLabeller(transport)

    def bound(pod: Pod) -> None:
        """A pod the watch shows bound with its placement recorded: the cache counts it from now on,
        and it gets its site label if the API server did not copy it from the Binding; the cluster's
        allocation store stops counting the admission ledger's bind of it."""
        reservations.release(pod.metadata.uid)
        labeller.check(pod)
        if settings.state == STATE_CLUSTER:
            store.seen_bound(pod.metadata.uid)

    cache = KubeCache(core, policies, on_bound=bound, reservations=lambda: len(reservations))
    access = None
    if settings.state == STATE_CLUSTER:
        from kubernetes.client import AuthenticationV1Api, AuthorizationV1Api, CustomObjectsApi

        from extender.allocation.access import ClusterAccess
        from extender.allocation.cluster_store import ClusterAllocationStore
        from extender.kube.inventory_watch import ClusterInventory

        custom = CustomObjectsApi(api)
        inventory = ClusterInventory(custom, policies).attach(cache)
        store = ClusterAllocationStore(custom, core, settings.namespace, cache)
        sources = (store,)
        access = ClusterAccess(AuthenticationV1Api(api), AuthorizationV1Api(api), settings.namespace)
        if settings.site_nodes:
            _keep_site_nodes(api, core, policies, settings, inventory.published.is_set)
    extender = Extender(policies, cache, sources=(*sources, reservations))
    extender.binder = KubeBinder(transport, extender, cache, reservations,
                                 cluster_admission=store.begin_bind if settings.state == STATE_CLUSTER else None)
    extender.events = _pod_events(extender, transport, reservations, settings)
    cache.start()
    log.info("watching nodes and pods%s through %s; /readyz answers 503 until the first full list",
             " and the inventory's Sites and Regions" if settings.state == STATE_CLUSTER else "", target.describe())
    return _Wired(extender, store, target.mode, access)


def _pod_events(extender: Extender, api: Transport, reservations: Reservations,
                settings: Settings) -> DecisionEvents:
    """Events about VM pods (`Placed`, `FailedPlacement`), written by a thread of their own at the
    settings' pace."""
    from extender.kube import events
    from extender.kube.ratelimit import TokenBucket

    recorder = events.EventRecorder(api, pace=TokenBucket(settings.event_qps, settings.event_burst))
    return events.PodEvents(extender, recorder.start(), reservations)


def _log_start(policies: PolicyStore, cluster_mode: str) -> None:
    """One line that says what this process serves, so the first lines of a log answer "what was loaded"."""
    policy = policies.current()
    inventory = policy.inventory
    regions = {site.region for site in inventory.sites.values()}
    source = str(policy.options.inventory_dir) if policies.inventory_source == "files" else "from the cluster"
    log.info("serving policy %s with inventory %s: %d sites in %d regions, cluster mode %s",
             policy.path, source, len(inventory.sites), len(regions), cluster_mode,
             extra={"policy": str(policy.path), "inventory": source,
                    "sites": len(inventory.sites), "regions": len(regions), "cluster_mode": cluster_mode,
                    "predicates": [p.name for p in policy.predicates],
                    "priorities": [p.plugin.name for p in policy.priorities]})


def _keep_site_nodes(api: Any, core: Any, policies: PolicyStore, settings: Settings,
                     inventory_ready: Callable[[], bool]) -> None:
    """Stand for election; keep one Node per site while elected (`extender.kube.site_nodes`)."""
    import threading

    from kubernetes.client import CoordinationV1Api

    from extender.kube.site_nodes import Election, SiteNodes, lead

    coordination = CoordinationV1Api(api)
    lease = settings.leader_lease_seconds
    election = Election(namespace=settings.namespace, lease_duration=lease, renew_deadline=max(2, lease * 2 // 3),
                        retry_period=max(1, lease // 5))
    site_nodes = SiteNodes(core, coordination, policies, inventory_ready, heartbeat=settings.site_node_heartbeat)
    lead(site_nodes, coordination, election, threading.Event())


def _harden(app: Flask, service: Extender) -> None:
    """Metrics, decision logs, client certificates, request limits, in this order: the
    metrics time every request, the certificate check runs before anything reads the body."""
    from extender.ops import limits, metrics, observe, tls

    from extender.engine.stock import left_by_site_and_flavor

    def stock_left():  # type: ignore[no-untyped-def]
        return left_by_site_and_flavor(service.view()[1])

    from extender.ops import status_page
    from extender.ops.recent import RecentDecisions

    recent = app.extensions[status_page.EXTENSION_KEY] = RecentDecisions()
    app.register_blueprint(status_page.bp)
    events = service.events.counts if service.events is not None else None
    service.observer = observe.Observer(
        metrics.init_app(app, service.cluster, service.policies, stock_left, events), recent, service.events)
    tls.init_app(app)
    limits.init_app(app)
