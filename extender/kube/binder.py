"""`POST /bind`: the admission point of a placement, in one API write.

kube-scheduler's binding cycle is asynchronous, so the filter of pod B can run before the bind of pod
A and both may pass a site with one slot left. The binder takes the pod from the watch cache (by the uid
the scheduler sent; from the API only when the watch has not delivered it yet), then, under the
admission lock and for nothing else, re-checks the pod on its node against every placement,
reservations included (`decide.admit`), and reserves what it admits. Then one write: the Binding, with
the uid as precondition and the placement (annotations, and the site label) in its metadata, which
kube-apiserver copies onto the pod. A server that does not copy the label gets it from `SiteLabeller`
after the answer. The reservation goes when the binding fails, when the watch shows the pod bound with
its placement recorded (the cache's placement replaces it, counted once by pod uid), or after its
timeout. Until the cache has listed nodes and pods, nothing is bound: what is placed is not known yet.
With the state in the cluster, the check and the reservation also go through the admission ledger
shared by every replica (`extender.allocation.cluster_store`), so an allocation through another replica
cannot take the slot; the binds this replica checks while a ledger write is in flight go together
into the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from extender.domain.accounting import placement_annotations, placement_of, site_labels
from extender.domain.model import FLAVOR_ANNOTATION
from extender.engine import decide
from extender.engine.framework import Status
from extender.allocation.service import AdmissionConflict
from extender.allocation.store import StoreUnavailable
from extender.errors import ApiError, ClusterError, NotFoundError, VMRequestError
from extender.kube.api import bind_pod, patch_pod, read_pod
from extender.kube.cache import KubeCache
from extender.kube.reservations import Reservations
from extender.kube.transport import Transport
from extender.protocol.service import Extender
from extender.protocol.wire import ExtenderBindingArgs, ExtenderBindingResult, Pod

log = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 4.0
"""Each API call of a bind; the scheduler gives the whole exchange 5 s by default."""

ERR_GONE = "pod {pod} is gone: {detail}"
ERR_REPLACED = "pod {pod} has uid {actual}, not {wanted}: it was deleted and created again"
ERR_ELSEWHERE = "pod {pod} is already bound to node {other}, not {node}"
ERR_NO_FIT = "pod {pod} no longer fits node {node}: {reason}"
ERR_BAD_REQUEST = "pod {pod}: {reason}"
ERR_NOT_SYNCED = ("pod {pod} not bound: the extender has not listed the cluster's nodes and pods yet, "
                  "so it cannot tell what is placed")
ERR_API = "binding pod {pod} to node {node} failed: {detail}"
ERR_NOT_ADMITTED = "pod {pod} not bound: the admission could not be made with the other replicas: {detail}"
ADMISSION_ATTEMPTS = 8
BOUND_MEMORY_S = 60.0
"""How long a pod this extender bound is remembered: a repeated /bind of it answers from memory until
the watch shows it bound, instead of checking it again and writing a second Binding."""


@dataclass(slots=True)
class BindWrite:
    """Beside a /bind's answer, for its log line: the milliseconds its Binding write took (None when
    it made none), which tells a slow API server from a slow extender."""

    api_ms: float | None = None


class KubeBinder:
    """Binds pods through the API, admitting each against the placements and reservations."""

    def __init__(self, api: Transport, extender: Extender, cluster: KubeCache, reservations: Reservations,
                 timeout: float = API_TIMEOUT_SECONDS,
                 cluster_admission: Callable[[], Any] | None = None) -> None:
        self.api = api
        self.cluster_admission = cluster_admission
        """With the state in the cluster, the admission ledger's (`ClusterAllocationStore.begin_bind`):
        a ticket that records the placement checked and commits it, serialized with every replica's
        allocations."""
        self.extender = extender
        self.cluster = cluster
        self.reservations = reservations
        self.timeout = timeout
        self._bound: OrderedDict[str, tuple[str, float]] = OrderedDict()
        """uid -> (node, when) of the pods this extender bound, oldest first, for `BOUND_MEMORY_S`."""
        self._bound_lock = threading.Lock()

    def bind(self, args: ExtenderBindingArgs) -> tuple[ExtenderBindingResult, BindWrite]:
        write = BindWrite()
        return self._bind(args, write), write

    def _bind(self, args: ExtenderBindingArgs, write: BindWrite) -> ExtenderBindingResult:
        name = f"{args.PodNamespace}/{args.PodName}"
        found = self._pod(args)
        if isinstance(found, ExtenderBindingResult):
            return found
        pod = found
        if pod.spec.nodeName:
            return self._already_bound(name, pod.spec.nodeName, args.Node)
        if (node := self._bound_here(pod.metadata.uid)) is not None:  # bound; the watch has not said so yet
            return self._already_bound(name, node, args.Node)

        if not self.cluster.synced():
            return ExtenderBindingResult(Error=ERR_NOT_SYNCED.format(pod=name))
        admitted = self._admit_in_cluster(name, pod, args.Node)
        if isinstance(admitted, str):
            return ExtenderBindingResult(Error=admitted)
        annotations = labels = None
        if admitted is not None:
            site, region, zone, flavor = admitted
            annotations, labels = placement_annotations(site, region, zone, flavor), site_labels(site)
        started = time.perf_counter()
        try:
            bind_pod(self.api, args.PodNamespace, args.PodName, pod.metadata.uid, args.Node, self.timeout,
                     annotations=annotations, labels=labels)
        except ApiError as exc:
            write.api_ms = (time.perf_counter() - started) * 1000
            result, now = self._bind_failed(name, args, exc)
            if admitted is not None and result.Error:
                self.reservations.release(pod.metadata.uid)
            elif annotations and now is not None and FLAVOR_ANNOTATION not in (now.metadata.annotations or {}):
                # Bound to this node by someone else meanwhile: record the placement admitted, so the
                # pod counts as reserved and its reservation can go.
                self._record(args, annotations, labels or {})
            return result
        write.api_ms = (time.perf_counter() - started) * 1000
        self._remember(pod.metadata.uid, args.Node)
        return ExtenderBindingResult()

    def _remember(self, uid: str, node: str) -> None:
        now = time.monotonic()
        with self._bound_lock:
            self._bound[uid] = (node, now)
            while self._bound and now - next(iter(self._bound.values()))[1] > BOUND_MEMORY_S:
                self._bound.popitem(last=False)

    def _bound_here(self, uid: str) -> str | None:
        with self._bound_lock:
            found = self._bound.get(uid)
        return found[0] if found is not None and time.monotonic() - found[1] <= BOUND_MEMORY_S else None

    def _pod(self, args: ExtenderBindingArgs) -> Pod | ExtenderBindingResult:
        """The pod to bind: from the watch cache by its uid (pending, or already bound), else (the
        watch has not delivered it yet, or no uid was sent) read from the API and its uid checked."""
        name = f"{args.PodNamespace}/{args.PodName}"
        if args.PodUID:
            pod = self.cluster.pending(args.PodUID)
            if pod is None:
                bound = self.cluster.pods([args.PodUID]).get(args.PodUID)
                pod = bound.pod if bound is not None else None
            if pod is not None and (pod.metadata.namespace, pod.metadata.name) == (args.PodNamespace, args.PodName):
                return pod
        try:
            pod = read_pod(self.api, args.PodNamespace, args.PodName, self.timeout)
        except NotFoundError as exc:
            return ExtenderBindingResult(Error=ERR_GONE.format(pod=name, detail=exc.message))
        except ApiError as exc:
            return ExtenderBindingResult(Error=ERR_API.format(pod=name, node=args.Node, detail=exc))
        if args.PodUID and pod.metadata.uid != args.PodUID:
            return ExtenderBindingResult(
                Error=ERR_REPLACED.format(pod=name, actual=pod.metadata.uid, wanted=args.PodUID))
        return pod

    def _admit_in_cluster(self, name: str, pod: Pod, node_name: str) -> str | tuple[str, str, str, str] | None:
        """`_admit` under the admission lock; with the state in the cluster, from a ticket of the
        admission ledger, committed after the lock is let go (binds checked meanwhile go into the same
        ledger write). Lost to another replica's admission, the reservation goes and the pod is
        checked again."""
        if self.cluster_admission is None:
            with self.extender.admission:
                return self._admit(name, pod, node_name, None)
        for _ in range(ADMISSION_ATTEMPTS):
            try:
                with self.extender.admission:
                    ticket = self.cluster_admission()
                    admitted = self._admit(name, pod, node_name, ticket)
                ticket.commit()
            except AdmissionConflict:
                log.info("pod %s: admission lost to another replica's, checking again", name)
                self.reservations.release(pod.metadata.uid)
                continue
            except (ClusterError, StoreUnavailable) as exc:
                self.reservations.release(pod.metadata.uid)
                return ERR_NOT_ADMITTED.format(pod=name, detail=exc)
            return admitted
        return ERR_NOT_ADMITTED.format(pod=name, detail=f"{ADMISSION_ATTEMPTS} admissions in a row lost to other replicas")

    def _admit(self, name: str, pod: Pod, node_name: str, gate: Any) -> str | tuple[str, str, str, str] | None:
        """Called under the admission lock: check and reserve (and record in the cluster's `gate`). An
        error text, or the placement recorded (site, region, zone, flavor), or None for a pod that is
        not a VM pod (nothing to reserve)."""
        policy, snapshot = self.extender.view()
        try:
            request = decide.read_request(policy, pod)
        except VMRequestError as exc:
            return ERR_BAD_REQUEST.format(pod=name, reason=exc)
        if request is None:
            return None
        node = self.cluster.resolve([node_name])[0]
        decision = decide.admit(policy, snapshot, request, node)
        if isinstance(decision, Status):
            return ERR_NO_FIT.format(pod=name, node=node_name, reason=decision.reason)
        candidate, flavor = decision
        placement = placement_of(policy.inventory, pod, node, request)
        placement = replace(placement, flavor_id=flavor.id, vcpus=flavor.vcpus, ram=flavor.ram)
        self.reservations.reserve(placement)
        if gate is not None:
            gate.record(placement)
        return candidate.site.id, candidate.region, candidate.zone, flavor.id

    def _record(self, args: ExtenderBindingArgs, annotations: dict[str, str], labels: dict[str, str]) -> None:
        """Write the placement on a pod bound without it. The pod is bound whatever happens here: a
        failure is logged, never answered (the scheduler would retry a pod that is already placed)."""
        patch = {"metadata": {"uid": args.PodUID, "labels": labels, "annotations": annotations}}
        try:
            patch_pod(self.api, args.PodNamespace, args.PodName, patch, self.timeout)
        except ApiError as exc:
            log.warning("pod %s/%s bound to %s, but recording its placement failed: %s",
                        args.PodNamespace, args.PodName, args.Node, exc)

    def _already_bound(self, name: str, bound_to: str, node: str) -> ExtenderBindingResult:
        if bound_to == node:
            return ExtenderBindingResult()
        return ExtenderBindingResult(Error=ERR_ELSEWHERE.format(pod=name, other=bound_to, node=node))

    def _bind_failed(self, name: str, args: ExtenderBindingArgs,
                     exc: ApiError) -> tuple[ExtenderBindingResult, Pod | None]:
        """What a failed binding means, from the pod as it is now (returned too, when read): a 409 is
        either 'already bound' (to this node: success) or the uid precondition; after any other failure
        (a timeout, a 5xx) the binding may still have been made before the answer was lost. A 404: the
        pod went away."""
        if isinstance(exc, NotFoundError):
            return ExtenderBindingResult(Error=ERR_GONE.format(pod=name, detail=exc.message)), None
        try:
            pod: Pod | None = read_pod(self.api, args.PodNamespace, args.PodName, self.timeout)
        except NotFoundError as gone:
            return ExtenderBindingResult(Error=ERR_GONE.format(pod=name, detail=gone.message)), None
        except ApiError:
            pod = None
        if pod is not None:
            if args.PodUID and pod.metadata.uid != args.PodUID:
                return ExtenderBindingResult(
                    Error=ERR_REPLACED.format(pod=name, actual=pod.metadata.uid, wanted=args.PodUID)), pod
            if pod.spec.nodeName:
                return self._already_bound(name, pod.spec.nodeName, args.Node), pod
        return ExtenderBindingResult(Error=ERR_API.format(pod=name, node=args.Node, detail=exc)), pod
