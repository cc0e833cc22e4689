"""Site nodes: one Node per site of the inventory, kept alive as a virtual kubelet keeps its node.

No kubelet runs at a remote site, yet kube-scheduler places only onto Nodes, and the node lifecycle
controller taints a Node whose heartbeats stop. So one replica of the extender, the leader elected on
a Lease (`kubernetes.leaderelection`), keeps for every site:
- the Node named by the site id, labelled with its site, region and zone and the owner label
  `site-extender.io/managed-by`, advertising `site-extender.io/vm` and the site's figures (what
  `advertise` says), tainted `NoSchedule` while the site is Offline or Sellout;
- its Ready condition, written again whenever it changes and every `STATUS_EVERY` seconds;
- its Lease in `kube-node-lease`, renewed every `heartbeat` seconds: the heartbeat the node lifecycle
  controller reads.
A Node carrying the owner label whose site left the inventory is deleted, with its Lease. A Node
without the owner label is never touched, even when a site has its name (the log says so once).

All writes are server-side apply under one field manager: the leader that takes over applies the same
fields, and fields written by others (the not-ready taint the API server adds, an admin's label) stay.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kubernetes.client import CoordinationV1Api, CoreV1Api
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from extender.config.policy_store import PolicyStore
from extender.domain.model import REGION_LABEL, SITE_LABEL, ZONE_LABEL, Site
from extender.domain.site_resources import node_resources
from extender.errors import ClusterError, NotFoundError
from extender.kube.api import api_errors

log = logging.getLogger(__name__)

OWNER_LABEL = "site-extender.io/managed-by"
OWNER = "site-extender"
VM_RESOURCE = "site-extender.io/vm"
UNAVAILABLE_TAINT = "site-extender.io/unavailable"
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_SECONDS = 40
"""The node leases' leaseDurationSeconds, as kubelet's default."""
UNBOUNDED_VMS = 10_000
"""What a site without `max_count` advertises: room the extender's own accounting narrows."""
STATUS_EVERY = 60.0
FIELD_MANAGER = "site-extender-site-nodes"
APPLY = "application/apply-patch+yaml"
TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Advertised:
    """What a site's Node says of it: labels, taints, and capacity (= allocatable)."""

    labels: Mapping[str, str]
    taints: tuple[tuple[str, str, str], ...]
    """(key, value, effect)"""
    capacity: Mapping[str, str] = field(default_factory=dict)


def advertise(site: Site) -> Advertised:
    """The one place that decides what a site's Node advertises: its labels, a taint while it takes
    nothing, and as capacity the routing resource, room for pods, and the site's figures that let
    kube-scheduler see it fill up and choose preemption victims (`site_resources.node_resources`)."""
    vms = str(site.max_count if site.max_count is not None else UNBOUNDED_VMS)
    figures = {name: str(value) for name, value in node_resources(site).items()}
    return Advertised(
        labels={SITE_LABEL: site.id, REGION_LABEL: site.region, ZONE_LABEL: site.az, OWNER_LABEL: OWNER},
        taints=() if site.available else ((UNAVAILABLE_TAINT, site.status, "NoSchedule"),),
        capacity={VM_RESOURCE: vms, "pods": vms, **figures},
    )


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SiteNodes:
    """Keeps the site Nodes while this replica leads (`run_term`); `sync` is one pass."""

    def __init__(self, core: CoreV1Api, coordination: CoordinationV1Api, policies: PolicyStore,
                 inventory_ready: Callable[[], bool], *, heartbeat: float = 10.0) -> None:
        self.core = core
        self.inventory_ready = inventory_ready
        """Until the inventory is in, the policy store's is empty: syncing then would delete every site node."""
        self.coordination = coordination
        self.policies = policies
        self.heartbeat = heartbeat
        self._applied: dict[str, Advertised] = {}
        self._status_at: dict[str, float] = {}
        self._uids: dict[str, str] = {}
        self._foreigners: set[str] = set()
        self._ready_since: dict[str, str] = {}

    def run_term(self, stop: threading.Event) -> None:
        """Sync every `heartbeat` seconds until `stop` (the term ended)."""
        self._applied.clear()
        self._status_at.clear()
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.sync()
            except ClusterError as exc:
                log.warning("site nodes: sync failed, trying again: %s", exc)
            stop.wait(max(0.0, self.heartbeat - (time.monotonic() - started)))

    def sync(self) -> None:
        if not self.inventory_ready():
            log.info("site nodes: waiting for the inventory")
            return
        sites = self.policies.current().inventory.sites
        with api_errors():
            listed = self.core.list_node(label_selector=f"{OWNER_LABEL}={OWNER}", _request_timeout=TIMEOUT_S)
        owned = {n.metadata.name for n in listed.items}
        for name in sorted(owned - set(sites)):
            self._remove(name)
        for site in sites.values():
            self._keep(site, owned)

    def _keep(self, site: Site, owned: set[str]) -> None:
        name = site.id
        if name not in owned and self._foreign(name):
            return
        shape = advertise(site)
        now = time.monotonic()
        with api_errors():
            if self._applied.get(name) != shape or name not in self._uids:
                node = self.core.patch_node(name, _node(name, shape), field_manager=FIELD_MANAGER, force=True,
                                            _content_type=APPLY, _request_timeout=TIMEOUT_S)
                self._uids[name] = node.metadata.uid
                self._status_at.pop(name, None)
            if now - self._status_at.get(name, -STATUS_EVERY) >= STATUS_EVERY or self._applied.get(name) != shape:
                since = self._ready_since.setdefault(name, _now())
                self.core.patch_node_status(name, _node_status(name, shape, since), field_manager=FIELD_MANAGER,
                                            force=True,
                                            _content_type=APPLY, _request_timeout=TIMEOUT_S)
                self._status_at[name] = now
            self._applied[name] = shape
            self.coordination.patch_namespaced_lease(name, NODE_LEASE_NAMESPACE, _lease(name, self._uids[name]),
                                                     field_manager=FIELD_MANAGER, force=True, _content_type=APPLY,
                                                     _request_timeout=TIMEOUT_S)

    def _foreign(self, name: str) -> bool:
        """Whether a Node of that name exists without the owner label (then it is left alone)."""
        try:
            with api_errors():
                node = self.core.read_node(name, _request_timeout=TIMEOUT_S)
        except NotFoundError:
            self._foreigners.discard(name)
            return False
        if (node.metadata.labels or {}).get(OWNER_LABEL) == OWNER:
            return False
        if name not in self._foreigners:
            log.warning("site nodes: a Node %s exists that site-extender did not create (no %s=%s label): "
                        "left alone, site %s gets no site node", name, OWNER_LABEL, OWNER, name)
            self._foreigners.add(name)
        return True

    def _remove(self, name: str) -> None:
        log.info("site nodes: site %s left the inventory, deleting its Node", name)
        for delete in (lambda: self.core.delete_node(name, _request_timeout=TIMEOUT_S),
                       lambda: self.coordination.delete_namespaced_lease(name, NODE_LEASE_NAMESPACE,
                                                                         _request_timeout=TIMEOUT_S)):
            try:
                with api_errors():
                    delete()
            except NotFoundError:
                pass
        for memo in (self._applied, self._status_at, self._uids, self._ready_since):
            memo.pop(name, None)


def _node(name: str, shape: Advertised) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": dict(shape.labels)},
            "spec": {"taints": [{"key": k, "value": v, "effect": e} for k, v, e in shape.taints]}}


def _node_status(name: str, shape: Advertised, ready_since: str) -> dict[str, Any]:
    now = _now()
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"capacity": dict(shape.capacity), "allocatable": dict(shape.capacity),
                       "conditions": [{"type": "Ready", "status": "True", "reason": "SiteNodeReady",
                                       "message": "site-extender keeps this site's node",
                                       "lastHeartbeatTime": now, "lastTransitionTime": ready_since}]}}


def _lease(name: str, node_uid: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}]},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": NODE_LEASE_SECONDS, "renewTime": _now()}}


# --- leader election ---------------------------------------------------------------------------------

ELECTION_LEASE = "site-extender"


@dataclass(frozen=True, slots=True)
class Election:
    namespace: str
    identity: str = field(default_factory=lambda: f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}")
    lease_duration: int = 15
    renew_deadline: int = 10
    retry_period: int = 2


def lead(site_nodes: SiteNodes, coordination: CoordinationV1Api, election: Election,
         stop: threading.Event) -> threading.Thread:
    """Stand for election on the Lease `site-extender` of `election.namespace` until `stop`; keep the
    site nodes while elected. A term that ends (the lease could not be renewed) stops the keeping,
    and the replica stands again."""
    def campaign() -> None:
        while not stop.is_set():
            term = threading.Event()
            lock = LeaseLock(ELECTION_LEASE, election.namespace, election.identity)
            lock.api_instance = coordination  # the extender's own client, not the global default
            config = electionconfig.Config(
                lock, lease_duration=election.lease_duration, renew_deadline=election.renew_deadline,
                retry_period=election.retry_period,
                onstarted_leading=lambda: _term(site_nodes, term, stop, election.identity),
                onstopped_leading=term.set)
            try:
                leaderelection.LeaderElection(config).run()
            except Exception:  # noqa: BLE001 - stand again whatever went wrong
                log.exception("site nodes: leader election failed, standing again")
            term.set()
            stop.wait(election.retry_period)

    thread = threading.Thread(target=campaign, name="site-extender-site-nodes", daemon=True)
    thread.start()
    return thread


def _term(site_nodes: SiteNodes, term: threading.Event, stop: threading.Event, identity: str) -> None:
    log.info("site nodes: %s leads, keeping the site nodes", identity)
    ended = threading.Event()

    def watch_stop() -> None:
        while not term.wait(0.5):
            if stop.is_set():
                break
        ended.set()

    threading.Thread(target=watch_stop, daemon=True).start()
    site_nodes.run_term(ended)
    log.info("site nodes: %s no longer leads", identity)
