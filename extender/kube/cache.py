"""The node and pod cache: the `ClusterView` the service reads.

Nodes and pods are each kept by a `Reflector` (list, then watch from the list's resourceVersion with
bookmarks, in a background thread; `extender.kube.reflector`). Only unfinished pods are watched. Those
bound to a node are what uses stock, and what preemption victims are resolved against; those not bound
yet are kept apart (they use nothing), so that `/bind` finds the pod it binds here rather than reading
it from the API. Other
kinds the extender watches (the inventory's custom resources) join the cache with `watch`, so that
`synced` and `stats` cover them too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kubernetes.client import CoreV1Api

from extender.config.policy import Policy
from extender.config.policy_store import PolicyStore
from extender.domain.accounting import FINISHED_PHASES, holds_resources, pod_placement
from extender.domain.model import EMPTY_MAP, FLAVOR_ANNOTATION, NodeRef, Placement, node_ref
from extender.kube.reflector import Reflector, Timing
from extender.kube.view import BoundPod
from extender.protocol.wire import NodeHead, Pod

log = logging.getLogger(__name__)

NODES, PODS = "nodes", "pods"
POD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
"""Pods that are not finished, bound or not: a pod leaving this set comes as DELETED on the watch."""


class KubeCache:
    """Nodes by name and bound pods by uid, kept current from the API server.

    `on_bound(pod)` is called for a pod seen bound with its placement recorded (the reservation for it
    can go); `reservations()` counts the reservations for `stats()`."""

    def __init__(self, core: CoreV1Api, policies: PolicyStore, *, timing: Timing = Timing(),
                 on_bound: Callable[[Pod], object] | None = None,
                 reservations: Callable[[], int] | None = None) -> None:
        self.core = core
        self.policies = policies
        self.timing = timing
        self._on_bound = on_bound
        self._reservations = reservations
        self._lock = threading.Lock()
        self._nodes: dict[str, Mapping[str, str]] = {}
        self._refs: dict[str, NodeRef] = {}
        """A ref per node of `_nodes`, made when the node changes: the same object while its labels
        are the same (the snapshot memoizes candidates by it), so `resolve` only looks names up."""
        self._node_generation = 0
        self._pods: dict[str, Pod] = {}
        self._pending: dict[str, Pod] = {}
        """Pods not bound yet, by uid: what `/bind` is asked about. They place nothing, so a change
        here never makes a new snapshot."""
        self._version = 0
        self._counters = {"relists": 0, "watch_errors": 0, "events": 0}
        self._memo: dict[str, tuple[int, Pod, Mapping[str, str] | None, Placement | None]] = {}
        self._placed: dict[str, Placement] = {}
        """By pod uid: the placement of each pod that has one, as of the last `placements`."""
        self._dirty: set[str] | None = None
        """Pods changed since the last `placements` (None: look at every pod again: a relist, a node
        change or another policy)."""
        self._placed_generation: int | None = None
        self._view_key: tuple[int, int] | None = None
        self._view: tuple[int, tuple[Placement, ...]] = (0, ())
        self._view_version = 0
        self._stop = threading.Event()
        self._reflectors: list[Reflector[Any]] = [
            Reflector(NODES, self._list_nodes, NodeHead, self._nodes_listed, self._node_event,
                      timing=timing, stop=self._stop, counters=self._counters),
            Reflector(PODS, self._list_pods, Pod, self._pods_listed, self._pod_event,
                      timing=timing, stop=self._stop, counters=self._counters),
        ]
        self._started = False
        self._requirements: list[tuple[Callable[[], bool], Callable[[], dict[str, object]]]] = []

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> KubeCache:
        self._started = True
        for reflector in self._reflectors:
            reflector.start()
        return self

    def watch(self, kind: str, list_call: Callable[..., Any], item: type[Any],
              replace: Callable[[list[Any]], object], apply: Callable[[str, Any], object]) -> Reflector[Any]:
        """Keep another kind with the cache's discipline and timing: `synced` waits for its first list,
        `stats` counts its events, `close` stops it (started now if the cache runs already)."""
        reflector = Reflector(kind, list_call, item, replace, apply, timing=self.timing, stop=self._stop,
                              counters=self._counters)
        self._reflectors.append(reflector)
        if self._started:
            reflector.start()
        return reflector

    def require(self, ready: Callable[[], bool], detail: Callable[[], dict[str, object]]) -> None:
        """Another condition of `synced` (what was watched is usable), with its detail for `stats`."""
        self._requirements.append((ready, detail))

    def close(self) -> None:
        """Stop the loops: each ends at its next event or when its watch ends (daemon threads: they
        never hold up the process's exit)."""
        self._stop.set()

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.synced():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # --- ClusterView -----------------------------------------------------------------------------------

    def resolve(self, names: Sequence[str]) -> list[NodeRef]:
        refs = self._refs
        try:
            return [refs[name] for name in names]
        except KeyError:  # some node is not (yet) in the cache
            return [refs.get(name) or node_ref(name, None, known=False) for name in names]

    def node_names(self) -> list[str]:
        """Every node the cache holds (what a pod with no node list is asked about)."""
        return list(self._nodes)

    def node_generation(self) -> int:
        return self._node_generation

    def placements(self) -> tuple[int, Sequence[Placement]]:
        generation, policy = self.policies.versioned()
        with self._lock:
            key = (self._version, generation)
            if key == self._view_key:
                return self._view
            if self._dirty is None or generation != self._placed_generation:
                self._placed = {}
                self._memo = {uid: self._memo[uid] for uid in self._pods if uid in self._memo}
                changed: Iterable[str] = self._pods
            else:
                changed = self._dirty
            for uid in changed:
                self._place(uid, generation, policy)
            self._dirty, self._placed_generation = set(), generation
            self._view_version += 1
            self._view_key = key
            self._view = (self._view_version, tuple(self._placed.values()))
            return self._view

    def _place(self, uid: str, generation: int, policy: Policy) -> None:
        """Work out the placement of the pod `uid` again (a pod that is gone or not placed has none)."""
        pod = self._pods.get(uid)
        if pod is None:
            self._memo.pop(uid, None)
            self._placed.pop(uid, None)
            return
        labels = self._nodes.get(pod.spec.nodeName)
        known = self._memo.get(uid)
        if known is not None and known[0] == generation and known[1] is pod and known[2] is labels:
            placement = known[3]
        else:
            ref = node_ref(pod.spec.nodeName, labels)
            placement = pod_placement(policy.inventory, pod, ref, policy.options.vm_annotation)
            self._memo[uid] = (generation, pod, labels, placement)
        if placement is None:
            self._placed.pop(uid, None)
        else:
            self._placed[uid] = placement

    def pending(self, uid: str) -> Pod | None:
        """The pod `uid` as the watch last showed it unbound; None when it is bound, finished, gone,
        or not delivered yet."""
        return self._pending.get(uid)

    def pods(self, uids: Iterable[str]) -> dict[str, BoundPod]:
        known = self._pods
        found = {}
        for uid in uids:
            pod = known.get(uid)
            if pod is not None:
                found[uid] = BoundPod(pod, pod.spec.nodeName)
        return found

    def synced(self) -> bool:
        return all(r.listed for r in self._reflectors) and all(ready() for ready, _ in self._requirements)

    def stats(self) -> dict[str, object]:
        now = time.monotonic()
        heard = [r.heard for r in self._reflectors]
        return {
            "mode": "kubernetes",
            "synced": self.synced(),
            "nodes": len(self._nodes),
            "pods": len(self._pods),
            "pending_pods": len(self._pending),
            "last_sync_age_seconds": None if None in heard else round(now - min(h for h in heard if h is not None), 3),
            "reservations": self._reservations() if self._reservations else 0,
            **self._counters,
            **{key: value for _, detail in self._requirements for key, value in detail().items()},
        }

    # --- what the reflectors call ----------------------------------------------------------------------

    def _list_nodes(self, watch: bool | None, **kwargs: Any) -> Any:
        return self.core.list_node(watch=watch, **kwargs)

    def _list_pods(self, watch: bool | None, **kwargs: Any) -> Any:
        return self.core.list_pod_for_all_namespaces(field_selector=POD_SELECTOR, watch=watch, **kwargs)

    def _nodes_listed(self, items: list[NodeHead]) -> None:
        self._replace_nodes({n.metadata.name: n.metadata.labels or EMPTY_MAP for n in items})

    def _pods_listed(self, items: list[Pod]) -> None:
        self._replace_pods({p.metadata.uid: p for p in items if holds_resources(p) and p.metadata.uid},
                           {p.metadata.uid: p for p in items if _pending(p) and p.metadata.uid})

    # --- state changes ----------------------------------------------------------------------------------

    def _replace_nodes(self, nodes: dict[str, Mapping[str, str]]) -> None:
        with self._lock:
            if nodes != self._nodes:
                self._nodes = nodes
                self._refs = {name: _ref(self._refs.get(name), name, labels) for name, labels in nodes.items()}
                self._node_generation += 1
                self._dirty = None
                self._version += 1

    def _replace_pods(self, pods: dict[str, Pod], pending: dict[str, Pod]) -> None:
        with self._lock:
            self._pending = pending
            if pods != self._pods:
                self._pods = pods
                self._dirty = None
                self._version += 1
        self._bound([pod for pod in pods.values() if _recorded(pod)])

    def _node_event(self, kind: str, head: NodeHead) -> None:
        name = head.metadata.name
        with self._lock:
            nodes = dict(self._nodes)
            if kind == "DELETED":
                if nodes.pop(name, None) is None:
                    return
            else:
                labels = head.metadata.labels or EMPTY_MAP
                if nodes.get(name) == labels:
                    return
                nodes[name] = labels
            refs = dict(self._refs)
            if name in nodes:
                refs[name] = _ref(refs.get(name), name, nodes[name])
            else:
                refs.pop(name, None)
            self._nodes, self._refs = nodes, refs
            self._node_generation += 1
            self._dirty = None
            self._version += 1

    def _pod_event(self, kind: str, pod: Pod) -> None:
        uid = pod.metadata.uid
        if not uid:
            return
        with self._lock:
            if kind != "DELETED" and _pending(pod):
                self._pending[uid] = pod
            else:
                self._pending.pop(uid, None)
        keep = kind != "DELETED" and holds_resources(pod)
        with self._lock:
            known = self._pods.get(uid)
            if keep and known == pod or not keep and known is None:
                return
            pods = dict(self._pods)
            if keep:
                pods[uid] = pod
            else:
                del pods[uid]
            self._pods = pods
            if self._dirty is not None:
                self._dirty.add(uid)
            self._version += 1
        if keep and _recorded(pod) and not (known is not None and _recorded(known)):
            self._bound([pod])

    def _bound(self, pods: list[Pod]) -> None:
        if self._on_bound is not None:
            for pod in pods:
                self._on_bound(pod)


def _ref(known: NodeRef | None, name: str, labels: Mapping[str, str]) -> NodeRef:
    """The ref of a node: `known` while its labels are the same (a relist decodes them anew)."""
    if known is not None and known.labels == (labels or EMPTY_MAP):
        return known
    return node_ref(name, labels)


def _pending(pod: Pod) -> bool:
    """Not bound yet and not finished (a pod to be scheduled)."""
    return not pod.spec.nodeName and pod.status.phase not in FINISHED_PHASES


def _recorded(pod: Pod) -> bool:
    """Bound with its placement recorded (the flavor written at bind): from now on the cache counts the
    pod as the binder reserved it, and the reservation can go."""
    return FLAVOR_ANNOTATION in (pod.metadata.annotations or {})
