"""The node and pod cache: list, then watch from the list's resourceVersion (with bookmarks), in
background threads; the `ClusterView` the service reads.

Per kind (nodes, pods) one thread loops: list (all pages) and replace what is known of that kind;
watch from the list's resourceVersion until the server ends the watch, then watch again from the last
version seen. A 410 Gone (the version is too old) lists again at once; any other error (a broken
stream, the server unreachable, an error status) lists again after a back-off that doubles up to a
ceiling and resets on success. Only pods bound to a node and not finished are kept: they are what uses
stock, and what preemption victims are resolved against.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import msgspec
from kubernetes.client import CoreV1Api
from kubernetes.watch.watch import iter_resp_lines

from extender.config.policy import Policy
from extender.config.policy_store import PolicyStore
from extender.domain.accounting import holds_resources, pod_placement
from extender.domain.model import EMPTY_MAP, FLAVOR_ANNOTATION, NodeRef, Placement, node_ref
from extender.errors import ApiError, ClusterError, GoneError
from extender.kube.api import api_errors
from extender.kube.view import BoundPod
from extender.protocol.wire import NodeHead, Pod

log = logging.getLogger(__name__)

NODES, PODS = "nodes", "pods"
POD_SELECTOR = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
"""Bound pods that are not finished: a pod leaving this set comes as DELETED on the watch."""
PAGE_SIZE = 500


class _ListMeta(msgspec.Struct, frozen=True):
    resourceVersion: str = ""
    continue_: str = msgspec.field(name="continue", default="")


class _NodeList(msgspec.Struct):
    metadata: _ListMeta = _ListMeta()
    items: list[NodeHead] = []


class _PodList(msgspec.Struct):
    metadata: _ListMeta = _ListMeta()
    items: list[Pod] = []


class _Versioned(msgspec.Struct, frozen=True):
    resourceVersion: str = ""


class _Head(msgspec.Struct, frozen=True):
    metadata: _Versioned = _Versioned()


class _RawEvent(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _NodeEvent(msgspec.Struct):
    object: NodeHead


class _PodEvent(msgspec.Struct):
    object: Pod


class _Status(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


_ERRORS: dict[int, type[ApiError]] = {410: GoneError}
_decoders = {NODES: msgspec.json.Decoder(_NodeList), PODS: msgspec.json.Decoder(_PodList)}
_event_decoder = msgspec.json.Decoder(_RawEvent)
_node_event_decoder = msgspec.json.Decoder(_NodeEvent)
_pod_event_decoder = msgspec.json.Decoder(_PodEvent)
_head_decoder = msgspec.json.Decoder(_Head)


@dataclass(frozen=True, slots=True)
class Timing:
    """How the loops pace themselves (tests shorten these)."""

    watch_timeout: int = 300
    """timeoutSeconds of each watch: the server ends it then, and it starts again from the last version."""
    request_timeout: float = 30.0
    """Connect and read timeout of a list; a watch reads for `watch_timeout` + this without data."""
    backoff_min: float = 0.5
    backoff_max: float = 30.0


class KubeCache:
    """Nodes by name and bound pods by uid, kept current from the API server.

    `on_bound(uid)` is called for a pod seen bound with its placement recorded (the reservation for it
    can go); `reservations()` counts the reservations for `stats()`."""

    def __init__(self, core: CoreV1Api, policies: PolicyStore, *, timing: Timing = Timing(),
                 on_bound: Callable[[str], object] | None = None,
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
        self._version = 0
        self._listed: dict[str, bool] = {NODES: False, PODS: False}
        self._heard: dict[str, float | None] = {NODES: None, PODS: None}
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
        self._threads: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> KubeCache:
        for kind in (NODES, PODS):
            thread = threading.Thread(target=self._run, args=(kind,), name=f"site-extender-watch-{kind}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

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

    def pods(self, uids: Iterable[str]) -> dict[str, BoundPod]:
        known = self._pods
        found = {}
        for uid in uids:
            pod = known.get(uid)
            if pod is not None:
                found[uid] = BoundPod(pod, pod.spec.nodeName)
        return found

    def synced(self) -> bool:
        return all(self._listed.values())

    def stats(self) -> dict[str, object]:
        now = time.monotonic()
        heard = self._heard.values()
        return {
            "mode": "kubernetes",
            "synced": self.synced(),
            "nodes": len(self._nodes),
            "pods": len(self._pods),
            "last_sync_age_seconds": None if None in heard else round(now - min(h for h in heard if h is not None), 3),
            "reservations": self._reservations() if self._reservations else 0,
            **self._counters,
        }

    # --- the loops ------------------------------------------------------------------------------------

    def _run(self, kind: str) -> None:
        backoff = self.timing.backoff_min
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list(kind)
                version = self._watch(kind, version)
                backoff = self.timing.backoff_min
            except GoneError as exc:
                log.info("%s watch expired (%s): listing again", kind, exc.message)
                version = None
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                if self._stop.is_set():
                    break
                self._counters["watch_errors"] += 1
                if isinstance(exc, ClusterError):
                    log.warning("%s list/watch failed, listing again in %.1fs: %s", kind, backoff, exc)
                else:
                    log.exception("%s list/watch failed, listing again in %.1fs", kind, backoff)
                version = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.timing.backoff_max)

    def _list(self, kind: str) -> str:
        decoder = _decoders[kind]
        items: list[Any] = []
        token = ""
        while True:
            with api_errors():
                response = self._list_call(kind, limit=PAGE_SIZE, _continue=token or None,
                                           _preload_content=False, _request_timeout=self.timing.request_timeout)
                try:
                    page = decoder.decode(response.data)
                except msgspec.DecodeError as exc:
                    raise ApiError(0, "BadList", f"{kind} list is not a valid list: {exc}") from exc
                finally:
                    response.release_conn()
            items.extend(page.items)
            token = page.metadata.continue_
            if not token:
                break
        if kind == NODES:
            self._replace_nodes({n.metadata.name: n.metadata.labels or EMPTY_MAP for n in items})
        else:
            self._replace_pods({p.metadata.uid: p for p in items if holds_resources(p) and p.metadata.uid})
        self._counters["relists"] += 1
        self._listed[kind] = True
        self._heard[kind] = time.monotonic()
        log.info("%s listed: %d at resourceVersion %s", kind, len(items), page.metadata.resourceVersion)
        return page.metadata.resourceVersion

    def _list_call(self, kind: str, **kwargs: Any) -> Any:
        if kind == NODES:
            return self.core.list_node(**kwargs)
        return self.core.list_pod_for_all_namespaces(field_selector=POD_SELECTOR, **kwargs)

    def _watch(self, kind: str, version: str) -> str:
        """Apply events until the server ends the watch; the last resourceVersion seen. The stream is
        read here (not through `kubernetes.watch.Watch`, whose raw mode cannot report ERROR events)
        and decoded with msgspec into the few fields the extender reads."""
        decode = _node_event_decoder.decode if kind == NODES else _pod_event_decoder.decode
        with api_errors():
            response = self._list_call(kind, watch=True, resource_version=version, allow_watch_bookmarks=True,
                                       timeout_seconds=self.timing.watch_timeout, _preload_content=False,
                                       _request_timeout=(self.timing.request_timeout,
                                                         self.timing.watch_timeout + self.timing.request_timeout))
            try:
                for line in iter_resp_lines(response):
                    if self._stop.is_set():
                        break
                    if not line.strip():
                        continue
                    try:
                        event = _event_decoder.decode(line)
                    except msgspec.DecodeError as exc:
                        raise ApiError(0, "BadEvent", f"{kind} watch sent an event that is not JSON: {exc}") from exc
                    self._heard[kind] = time.monotonic()
                    if event.type == "ERROR":
                        status = msgspec.json.decode(event.object, type=_Status)
                        raise _ERRORS.get(status.code, ApiError)(status.code, status.reason, status.message)
                    version = _head_decoder.decode(event.object).metadata.resourceVersion or version
                    if event.type == "BOOKMARK":
                        continue
                    self._counters["events"] += 1
                    typed = decode(line).object
                    if kind == NODES:
                        self._node_event(event.type, typed)
                    else:
                        self._pod_event(event.type, typed)
            finally:
                _discard(response)
        self._heard[kind] = time.monotonic()
        return version

    # --- state changes ----------------------------------------------------------------------------------

    def _replace_nodes(self, nodes: dict[str, Mapping[str, str]]) -> None:
        with self._lock:
            if nodes != self._nodes:
                self._nodes = nodes
                self._refs = {name: _ref(self._refs.get(name), name, labels) for name, labels in nodes.items()}
                self._node_generation += 1
                self._dirty = None
                self._version += 1

    def _replace_pods(self, pods: dict[str, Pod]) -> None:
        with self._lock:
            if pods != self._pods:
                self._pods = pods
                self._dirty = None
                self._version += 1
        self._bound([uid for uid, pod in pods.items() if _recorded(pod)])

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
            self._bound([uid])

    def _bound(self, uids: list[str]) -> None:
        if self._on_bound is not None:
            for uid in uids:
                self._on_bound(uid)


def _ref(known: NodeRef | None, name: str, labels: Mapping[str, str]) -> NodeRef:
    """The ref of a node: `known` while its labels are the same (a relist decodes them anew)."""
    if known is not None and known.labels == (labels or EMPTY_MAP):
        return known
    return node_ref(name, labels)


def _recorded(pod: Pod) -> bool:
    """Bound with its placement recorded (the flavor written at bind): from now on the cache counts the
    pod as the binder reserved it, and the reservation can go."""
    return FLAVOR_ANNOTATION in (pod.metadata.annotations or {})


def _discard(response: Any) -> None:
    """End a watch response: its connection is closed (a stream read part-way cannot go back to the
    pool) and released."""
    with closing(response):
        pass
    response.release_conn()
