"""The placement engine: run the policy's predicates and priorities over candidate sites.

Pure functions of (policy, snapshot, pod, nodes): no Flask, no Kubernetes client, no I/O. The HTTP
layer decodes, calls one function here and encodes what comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from extender.capacity import flavor_stock
from extender.errors import VMRequestError
from extender.framework import MAX_PLUGIN_SCORE, Candidate, Snapshot, Status
from extender.model import Flavor, NodeRef, VMRequest
from extender.policy import Policy
from extender.vmrequest import parse_vm_request, raw_vm_request
from extender.wire import MAX_EXTENDER_PRIORITY, Pod

REASON_UNKNOWN_NODE = "node {node} is not known to the extender's node cache yet"
REASON_UNKNOWN_SITE = "SiteAvailability: site {site} (node {node}) is not in the inventory"
REASON_BAD_REQUEST = "invalid VM request ({source}): {error}"
REASON_NOT_VM = "not a VM pod: no {annotation} annotation and no spec.virtualMachine, and the policy rejects such pods"


@dataclass(frozen=True, slots=True)
class FilterDecision:
    """Which nodes pass, in the order asked, and why each other one fails."""

    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unresolvable: dict[str, str] = field(default_factory=dict)


def read_request(policy: Policy, pod: Pod) -> VMRequest | None:
    """The pod's VM request, None for a pod that is not a VM pod; `VMRequestError` if malformed."""
    annotation = policy.options.vm_annotation
    inventory = policy.inventory
    try:
        data = raw_vm_request(pod, annotation)
        if data is None:
            return None
        return parse_vm_request(data, inventory.flavor_ids(), inventory.volume_types.keys() or None)
    except VMRequestError as exc:
        source = f"annotation {annotation}" if annotation in (pod.metadata.annotations or {}) else "spec.virtualMachine"
        raise VMRequestError(REASON_BAD_REQUEST.format(source=source, error=exc)) from None


def resolve(node: NodeRef, snapshot: Snapshot) -> Candidate | Status:
    """The node's site with its usage, or why the node can never be a candidate."""
    if not node.known:
        return Status(REASON_UNKNOWN_NODE.format(node=node.name), unresolvable=True)
    site = snapshot.inventory.sites.get(node.site_id)
    if site is None:
        return Status(REASON_UNKNOWN_SITE.format(site=node.site_id, node=node.name), unresolvable=True)
    return Candidate(node=node, site=site, usage=snapshot.usage(site.id))


def check(policy: Policy, snapshot: Snapshot, request: VMRequest, node: NodeRef) -> Status | None:
    """Run every predicate on one node; the first failure is the answer (None: the node passes)."""
    candidate = resolve(node, snapshot)
    if isinstance(candidate, Status):
        return candidate
    for predicate in policy.predicates:
        status = predicate.filter(request, candidate, snapshot)
        if status is not None:
            return status
    return None


def filter_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef]) -> FilterDecision:
    """Decide for every node whether the pod's VM can go there."""
    decision = FilterDecision()
    try:
        request = read_request(policy, pod)
    except VMRequestError as exc:
        decision.unresolvable.update((node.name, str(exc)) for node in nodes)
        return decision
    if request is None:
        if policy.options.non_vm_pods == "reject":
            reason = REASON_NOT_VM.format(annotation=policy.options.vm_annotation)
            decision.unresolvable.update((node.name, reason) for node in nodes)
        else:
            decision.passed.extend(node.name for node in nodes)
        return decision
    for node in nodes:
        status = check(policy, snapshot, request, node)
        if status is None:
            decision.passed.append(node.name)
        elif status.unresolvable:
            decision.unresolvable[node.name] = status.reason
        else:
            decision.failed[node.name] = status.reason
    return decision


def score_breakdown(policy: Policy, snapshot: Snapshot, request: VMRequest, candidate: Candidate) -> dict[str, float]:
    """Each priority's raw score (0..100) for one candidate, by priority name."""
    return {
        p.plugin.name: min(MAX_PLUGIN_SCORE, max(0.0, float(p.plugin.score(request, candidate, snapshot))))
        for p in policy.priorities
    }


def combine(policy: Policy, scores: dict[str, float]) -> int:
    """Weighted mean of the priorities' 0..100 scores, scaled to the wire's integer 0..10."""
    total = policy.total_weight
    if total <= 0:
        return 0
    mean = sum(p.weight * scores[p.plugin.name] for p in policy.priorities) / total
    return max(0, min(MAX_EXTENDER_PRIORITY, round(mean * MAX_EXTENDER_PRIORITY / MAX_PLUGIN_SCORE)))


def prioritize_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef]) -> list[tuple[str, int]]:
    """One (node, 0..10) per node asked, in order. Non-VM pods and unusable nodes score 0."""
    try:
        request = read_request(policy, pod)
    except VMRequestError:
        request = None
    if request is None:
        return [(node.name, 0) for node in nodes]
    result = []
    for node in nodes:
        candidate = resolve(node, snapshot)
        if isinstance(candidate, Status):
            result.append((node.name, 0))
        else:
            result.append((node.name, combine(policy, score_breakdown(policy, snapshot, request, candidate))))
    return result


def choose_flavor(request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Flavor | None:
    """The most preferred acceptable flavor still in stock at the candidate, if any."""
    for flavor_id in request.flavors:
        flavor = snapshot.inventory.flavor(candidate.region, flavor_id)
        if flavor and flavor_stock(candidate.site, flavor, candidate.usage, snapshot.inventory).left >= 1:
            return flavor
    return None
