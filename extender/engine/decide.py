"""The placement engine: run the policy's predicates and priorities over candidate sites.

Pure functions of (policy, snapshot, pod, nodes): no Flask, no Kubernetes client, no I/O. The HTTP
layer decodes, calls one function here and encodes what comes back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from extender.config.policy import Policy
from extender.domain.model import Flavor, NodeRef, VMRequest
from extender.domain.vmrequest import parse_vm_request, pod_group, raw_vm_request
from extender.engine.framework import MAX_PLUGIN_SCORE, FilterPlugin, Outcome, ScorePlugin, Status
from extender.engine.outcomes import first_failures, reasons, status_at, unresolvable_at
from extender.engine.places import OnePlace, Places, every_site
from extender.engine.snapshot import Candidate, Snapshot
from extender.predicates.flavor import first_in_stock
from extender.errors import VMRequestError
from extender.protocol.wire import MAX_EXTENDER_PRIORITY, Pod

REASON_UNKNOWN_NODE = "node {node} is not known to the extender's node cache yet"
SITE_AVAILABILITY = "SiteAvailability"
"""The rule of a node whose site is not in the inventory, whether or not the policy has that predicate."""
REASON_UNKNOWN_SITE = "SiteAvailability: site {site} (node {node}) is not in the inventory"
REASON_BAD_REQUEST = "invalid VM request ({source}): {error}"
REASON_NOT_VM = "not a VM pod: no {annotation} annotation and no spec.virtualMachine, and the policy rejects such pods"


@dataclass(frozen=True, slots=True)
class FilterDecision:
    """Which nodes pass, in the order asked, and why each other one fails."""

    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unresolvable: dict[str, str] = field(default_factory=dict)
    failures: Counter[tuple[str, bool]] = field(default_factory=Counter)
    """Nodes failed, by the rule that failed them (`rule_of`) and whether unresolvably (for metrics)."""


OTHER_RULES = (
    (REASON_UNKNOWN_NODE.split("{")[0], "UnknownNode"),
    (REASON_BAD_REQUEST.split("(")[0], "InvalidVMRequest"),
    (REASON_NOT_VM.split(":")[0], "NonVMPod"),
)
"""Failures that no predicate gave: the label of each, by the start of its reason."""


def rule_of(reason: str, predicates: Collection[str]) -> str:
    """The rule a failure reason comes from: a predicate's reason starts with `<PredicateName>: `."""
    head = reason.split(":", 1)[0]
    if head in predicates:
        return head
    for prefix, label in OTHER_RULES:
        if reason.startswith(prefix):
            return label
    return "Other"


def _count(policy: Policy, decision: FilterDecision, reasons: Iterable[tuple[str, bool]]) -> None:
    """Add failures to `decision.failures`, labelled by their reasons."""
    names = {p.name for p in policy.predicates} | {SITE_AVAILABILITY}
    decision.failures.update((rule_of(reason, names), never) for reason, never in reasons)


def read_request(policy: Policy, pod: Pod) -> VMRequest | None:
    """The pod's VM request (with the pod's group), None for a pod that is not a VM pod;
    `VMRequestError` if malformed."""
    annotation = policy.options.vm_annotation
    inventory = policy.inventory
    try:
        data = raw_vm_request(pod, annotation)
        if data is None:
            return None
        request = parse_vm_request(data, inventory.flavor_ids(), inventory.volume_types.keys() or None)
    except VMRequestError as exc:
        source = f"annotation {annotation}" if annotation in (pod.metadata.annotations or {}) else "spec.virtualMachine"
        raise VMRequestError(REASON_BAD_REQUEST.format(source=source, error=exc)) from None
    group = pod_group(pod)
    return replace(request, group=group) if group else request


def resolve(node: NodeRef, snapshot: Snapshot) -> Candidate | Status:
    """The node's site with its usage, or why the node can never be a candidate."""
    if not node.known:
        return Status(REASON_UNKNOWN_NODE.format(node=node.name), unresolvable=True)
    candidate = snapshot.candidate(node)
    if candidate is None:
        return Status(REASON_UNKNOWN_SITE.format(site=node.site_id, node=node.name), unresolvable=True)
    return candidate


def check(policy: Policy, snapshot: Snapshot, request: VMRequest, node: NodeRef) -> Status | None:
    """Run the predicates on one node in policy order (None: the node passes).

    The first unresolvable failure is the answer. A resolvable one (stock that placements hold) is
    the answer only when no later predicate fails unresolvably: otherwise preemption would evict
    pods from a site that still could not take the VM.
    """
    candidate = resolve(node, snapshot)
    if isinstance(candidate, Status):
        return candidate
    at = OnePlace(candidate, snapshot)
    first: Status | None = None
    for predicate in policy.predicates:
        status = status_at(predicate.check(request, at), at)
        if status is None:
            continue
        if status.unresolvable:
            return status
        if first is None:
            first = status
    return first


def verdict(predicate: FilterPlugin, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
    """What one predicate says of one candidate (None: it passes)."""
    at = OnePlace(candidate, snapshot)
    return status_at(predicate.check(request, at), at)


def _vm_request_or_decide(policy: Policy, pod: Pod, nodes: Sequence[NodeRef],
                          decision: FilterDecision) -> VMRequest | None:
    """The pod's VM request; or None once `decision` holds the answer for every node: all
    unresolvable for a malformed request, all passed (or rejected, per policy) for a non-VM pod."""
    try:
        request = read_request(policy, pod)
    except VMRequestError as exc:
        decision.unresolvable.update((node.name, str(exc)) for node in nodes)
        if nodes:
            decision.failures[(rule_of(str(exc), ()), True)] += len(nodes)
        return None
    if request is None:
        if policy.options.non_vm_pods == "reject":
            reason = REASON_NOT_VM.format(annotation=policy.options.vm_annotation)
            decision.unresolvable.update((node.name, reason) for node in nodes)
            if nodes:
                decision.failures[(rule_of(reason, ()), True)] += len(nodes)
        else:
            decision.passed.extend(node.name for node in nodes)
    return request


def filter_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef],
                 frame: Frame | None = None) -> FilterDecision:
    """Decide for every node whether the pod's VM can go there: what `reference_filter_nodes`
    answers, in the same order, worked out by `decide` (site columns, then a reason for each node
    that fails). `frame`: what the caller knows of the nodes already."""
    decision = FilterDecision()
    request = _vm_request_or_decide(policy, pod, nodes, decision)
    if request is None:
        return decision
    verdicts = decide(policy, snapshot, request, nodes, reasons=True, frame=frame)
    names = frame.names if frame is not None else np.array([node.name for node in nodes], dtype=object)
    decision.passed.extend(names[verdicts.ok].tolist())
    failing = np.flatnonzero(~verdicts.ok)
    if failing.size:
        never = verdicts.never[failing]
        for chosen, into in ((failing[never], decision.unresolvable), (failing[~never], decision.failed)):
            into.update(zip(names[chosen].tolist(), verdicts.reasons[chosen].tolist()))  # type: ignore[index]
        by_site = failing[verdicts.deciders[failing] >= 0]
        keys, counts = np.unique(verdicts.deciders[by_site] * 2 + verdicts.never[by_site], return_counts=True)
        for key, count in zip(keys.tolist(), counts.tolist()):
            decision.failures[(policy.predicates[key // 2].name, bool(key % 2))] += count
        alone = failing[verdicts.deciders[failing] < 0]
        _count(policy, decision, zip(verdicts.reasons[alone].tolist(), verdicts.never[alone].tolist()))  # type: ignore[index]
    return decision


@dataclass(frozen=True, slots=True)
class Verdicts:
    """`decide`'s answer for a list of nodes, one entry per node."""

    candidates: LazyCandidates
    positions: np.ndarray
    """`SiteTable.node_position` (-1: the node is decided on its own)."""
    ok: np.ndarray
    """True when the node passes every predicate."""
    never: np.ndarray
    """True when the node's failure is unresolvable (asked with reasons)."""
    deciders: np.ndarray
    """The index in the policy of the predicate that fails a node decided by its site (asked with
    reasons); -1 for the other nodes."""
    reasons: np.ndarray | None
    """Objects: why the node fails, for the nodes that fail (asked with reasons)."""


class Frame(NamedTuple):
    """What a caller may know of a list of nodes already."""

    positions: np.ndarray
    """`Snapshot.positions` of the nodes."""
    names: np.ndarray
    """Their names (objects)."""


class LazyCandidates:
    """`snapshot.candidates(nodes)`, worked out on first use: the site columns decide most nodes
    without a `Candidate`; one is needed only for a node decided on its own."""

    def __init__(self, snapshot: Snapshot, nodes: Sequence[NodeRef]) -> None:
        self._snapshot, self._nodes = snapshot, nodes
        self._found: list[Candidate | None] | None = None

    def __getitem__(self, index: int) -> Candidate | None:
        if self._found is None:
            self._found = self._snapshot.candidates(self._nodes)
        return self._found[index]

    def __len__(self) -> int:
        return len(self._nodes)


class SiteVerdicts(NamedTuple):
    """One predicate's check over every site."""

    outcomes: Sequence[Outcome]
    which: np.ndarray
    """Per site: the outcome it fails by (-1: it passes)."""


def site_verdicts(predicate: FilterPlugin, request: VMRequest, at: Places) -> SiteVerdicts | None:
    """`predicate`'s check at every site of `at`; None when every site passes."""
    outcomes = predicate.check(request, at)
    if not outcomes:
        return None
    return SiteVerdicts(outcomes, first_failures(outcomes, at.size))


def decide(policy: Policy, snapshot: Snapshot, request: VMRequest, nodes: Sequence[NodeRef],
           reasons: bool, frame: Frame | None = None) -> Verdicts:
    """What `check` answers for every node, found the fast way.

    A node that agrees with its site (`SiteTable.node_position` >= 0) is decided by its site's entry
    in each predicate's check over every site (`site_verdicts`), a few vector operations per predicate
    for all nodes at once. For the nodes that fail, the predicate whose answer `check` would give is
    found on the same columns (its first unresolvable failure, else its first failure), and only that
    predicate's reasons are made, for those nodes' sites. The other nodes (unknown, off-inventory,
    labelled unlike their site) go through `check`."""
    positions = frame.positions if frame is not None else snapshot.positions(nodes)
    resolved = LazyCandidates(snapshot, nodes)
    plain = positions >= 0
    ok = plain.copy()
    never = np.zeros(len(nodes), dtype=bool)
    deciders = np.full(len(nodes), -1, dtype=np.intp)
    why = np.empty(len(nodes), dtype=object) if reasons else None
    if ok.any():
        at = every_site(snapshot)
        found = [site_verdicts(p, request, at) for p in policy.predicates]
        for verdict in found:
            if verdict is not None:
                ok &= verdict.which[positions] < 0
        failing = np.flatnonzero(plain & ~ok)
        if why is not None and failing.size:
            _explain(at, positions, failing, found, never, deciders, why)
    for i in np.flatnonzero(~plain).tolist():
        status = check(policy, snapshot, request, nodes[i])
        if status is None:
            ok[i] = True
        elif why is not None:
            why[i], never[i] = status
    return Verdicts(resolved, positions, ok, never, deciders, why)


def _explain(at: Places, positions: np.ndarray, failing: np.ndarray, found: Sequence[SiteVerdicts | None],
             unresolvable: np.ndarray, deciders: np.ndarray, why: np.ndarray) -> None:
    """Fill `unresolvable`, `deciders` and `why` for the `failing` nodes: the answer of the predicate
    `check` would stop at, its first unresolvable failure, else its first failure."""
    sites = positions[failing]
    none = np.zeros(failing.size, dtype=bool)
    fails = np.array([none if v is None else v.which[sites] >= 0 for v in found])
    hopeless = np.array([none if v is None else unresolvable_at(v.outcomes, v.which, sites)
                         for v in found])
    hopeless_somewhere = hopeless.any(axis=0)
    decider = np.where(hopeless_somewhere, hopeless.argmax(axis=0), fails.argmax(axis=0))
    unresolvable[failing] = hopeless_somewhere
    deciders[failing] = decider
    for number, verdict in enumerate(found):
        mine = failing[decider == number]
        if not mine.size or verdict is None:
            continue
        outcome_of = verdict.which[positions[mine]]
        for k in np.unique(outcome_of).tolist():
            chosen = mine[outcome_of == k]
            why[chosen] = reasons(verdict.outcomes[k], at, positions[chosen])


def reference_filter_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef]) -> FilterDecision:
    """`filter_nodes` the straightforward way: every predicate on every node through `check`. The
    reference the fast path is tested against (same answers, same order)."""
    decision = FilterDecision()
    request = _vm_request_or_decide(policy, pod, nodes, decision)
    if request is None:
        return decision
    for node in nodes:
        status = check(policy, snapshot, request, node)
        if status is None:
            decision.passed.append(node.name)
            continue
        if status.unresolvable:
            decision.unresolvable[node.name] = status.reason
        else:
            decision.failed[node.name] = status.reason
        _count(policy, decision, [status])
    return decision


def score_breakdown(policy: Policy, snapshot: Snapshot, request: VMRequest, candidate: Candidate) -> dict[str, float]:
    """Each priority's raw score (0..100) for one candidate, by priority name."""
    at = OnePlace(candidate, snapshot)
    return {p.plugin.name: min(MAX_PLUGIN_SCORE, max(0.0, _one_score(p.plugin, request, at))) for p in policy.priorities}


def _one_score(plugin: ScorePlugin, request: VMRequest, at: OnePlace) -> float:
    score = plugin.score(request, at)
    return float(score[0] if isinstance(score, np.ndarray) else score)


def normalize(breakdowns: Sequence[dict[str, float]]) -> list[dict[str, float]]:
    """Per priority, scale the candidates' scores so that the best one gets 100 and the others keep
    their ratio to it (kube-scheduler's `DefaultNormalizeScore`); a priority where every candidate
    scores 0 stays 0. The wire has only 11 levels: without this, a preference between sites that are
    all, say, 10..30 on one priority would vanish in the rounding."""
    if not breakdowns:
        return []
    best = {name: max(b[name] for b in breakdowns) for name in breakdowns[0]}
    return [
        {name: (score * MAX_PLUGIN_SCORE / best[name] if best[name] > 0 else 0.0) for name, score in b.items()}
        for b in breakdowns
    ]


def combine(policy: Policy, scores: dict[str, float]) -> int:
    """Weighted mean of the priorities' 0..100 scores, scaled to the wire's integer 0..10."""
    total = policy.total_weight
    if total <= 0:
        return 0
    weighted = 0.0
    for p in policy.priorities:  # added one by one, in policy order, as `prioritize_nodes` does
        weighted += p.weight * scores[p.plugin.name]
    return to_wire_score(weighted / total)


def to_wire_score(mean: float) -> int:
    """A 0..100 mean as the wire's integer 0..10."""
    return max(0, min(MAX_EXTENDER_PRIORITY, round(mean * MAX_EXTENDER_PRIORITY / MAX_PLUGIN_SCORE)))


def _request_to_score(policy: Policy, pod: Pod) -> VMRequest | None:
    """The VM request to score for, or None (every node scores 0): a non-VM pod, or a malformed
    request, which /filter has already failed everywhere with its reason."""
    try:
        return read_request(policy, pod)
    except VMRequestError:
        return None


def prioritize_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef],
                     frame: Frame | None = None) -> list[tuple[str, int]]:
    """One (node, 0..10) per node asked, in order (`node_scores` as pairs)."""
    return list(zip([node.name for node in nodes], node_scores(policy, snapshot, pod, nodes, frame).tolist()))


def node_scores(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef],
                frame: Frame | None = None) -> np.ndarray:
    """Each node's score 0..10, in the order asked: each priority's scores normalized over the nodes
    that pass the predicates (`normalize`), then weighted (`combine`). Non-VM pods and nodes that
    fail a predicate score 0 (kube-scheduler sends only nodes that passed, but a node may have filled
    up since, and a site that cannot take the VM must not set the scale for those that can).

    Feasibility by `decide` (no reasons needed), the scores by `score_columns`, combined on arrays in
    the order `combine` adds: the answers are `reference_prioritize_nodes`'s, to the last bit."""
    request = _request_to_score(policy, pod)
    total = policy.total_weight
    scores = np.zeros(len(nodes), dtype=np.int64)
    if request is None or total <= 0:
        return scores
    verdicts = decide(policy, snapshot, request, nodes, reasons=False, frame=frame)
    feasible = np.flatnonzero(verdicts.ok)
    if feasible.size:
        weighted = np.zeros(feasible.size)
        for priority, column in zip(policy.priorities, score_columns(policy, snapshot, request, verdicts, feasible)):
            best = column.max()
            if best > 0:  # a priority where every node scores 0 adds nothing
                weighted = weighted + priority.weight * (column * MAX_PLUGIN_SCORE / best)
        # `to_wire_score(w / total)` on the array: np.rint rounds half to even, as round() does.
        wire = np.rint(weighted / total * MAX_EXTENDER_PRIORITY / MAX_PLUGIN_SCORE)
        scores[feasible] = np.clip(wire, 0, MAX_EXTENDER_PRIORITY)
    return scores


def score_columns(policy: Policy, snapshot: Snapshot, request: VMRequest, verdicts: Verdicts,
                  feasible: np.ndarray) -> list[np.ndarray]:
    """Per priority, in policy order, each feasible node's raw score clamped to 0..100
    (`score_breakdown` by columns): a node decided by its site gets its site's entry of the score over
    every site, the other nodes their own."""
    positions = verdicts.positions[feasible]
    by_site = positions >= 0
    sites = positions[by_site]
    alone = [OnePlace(verdicts.candidates[i], snapshot) for i in feasible[~by_site].tolist()]  # type: ignore[arg-type]
    at = every_site(snapshot)
    columns = []
    for p in policy.priorities:
        scores = p.plugin.score(request, at) if sites.size else 0.0
        if not isinstance(scores, np.ndarray):
            column = np.full(feasible.size, float(scores))
        else:
            column = np.empty(feasible.size)
            column[by_site] = scores[sites]
        if alone:
            column[~by_site] = [_one_score(p.plugin, request, one) for one in alone]
        if column.size and (column.min() < 0.0 or column.max() > MAX_PLUGIN_SCORE):
            column = np.clip(column, 0.0, MAX_PLUGIN_SCORE)
        columns.append(column)
    return columns


def reference_prioritize_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef]) -> list[tuple[str, int]]:
    """`prioritize_nodes` the straightforward way, node by node: the reference the fast path is tested
    against."""
    request = _request_to_score(policy, pod)
    if request is None:
        return [(node.name, 0) for node in nodes]
    feasible: list[tuple[int, Candidate]] = []
    for position, node in enumerate(nodes):
        candidate = resolve(node, snapshot)
        if isinstance(candidate, Candidate) and check(policy, snapshot, request, node) is None:
            feasible.append((position, candidate))
    breakdowns = normalize([score_breakdown(policy, snapshot, request, c) for _, c in feasible])
    scores = [0] * len(nodes)
    for (position, _), breakdown in zip(feasible, breakdowns):
        scores[position] = combine(policy, breakdown)
    return [(node.name, score) for node, score in zip(nodes, scores)]


def choose_flavor(request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Flavor | None:
    """The most preferred acceptable flavor still in stock at the candidate, if any."""
    rank = int(first_in_stock(request.flavors, OnePlace(candidate, snapshot))[0])
    return snapshot.inventory.flavor(candidate.region, request.flavors[rank]) if rank < len(request.flavors) else None


REASON_NO_FLAVOR = "no acceptable flavor is in stock at site {site} any more"


def admit(policy: Policy, snapshot: Snapshot, request: VMRequest, node: NodeRef) -> tuple[Candidate, Flavor] | Status:
    """The bind-time check: the node still takes the VM with everything placed and reserved so far
    (`snapshot`), and the flavor it would use; else why not."""
    status = check(policy, snapshot, request, node)
    if status is not None:
        return status
    candidate = resolve(node, snapshot)
    assert isinstance(candidate, Candidate)  # check() passed, so the node resolved
    flavor = choose_flavor(request, candidate, snapshot)
    if flavor is None:
        return Status(REASON_NO_FLAVOR.format(site=candidate.site.id))
    return candidate, flavor


def without(snapshot: Snapshot, keys: frozenset[str]) -> Snapshot:
    """The snapshot as it would be with the placements of `keys` gone (the same one when none is there)."""
    placed = [p for usage in snapshot.by_site.values() for p in usage.placements]
    remaining = [p for p in placed if p.key not in keys]
    if len(remaining) == len(placed):
        return snapshot
    return Snapshot.build(snapshot.inventory, remaining, previous=snapshot)


def preempt_nodes(policy: Policy, snapshot: Snapshot, request: VMRequest | None,
                  victims: Sequence[tuple[NodeRef, frozenset[str]]]) -> list[str]:
    """The nodes, in order, where evicting the victims (placement keys: pod uids) leaves the VM fitting
    under the policy's predicates. The scheduler chose the victims for its own resources; a node is
    dropped only when, even with them gone, our rules still reject the VM there (stock their eviction
    does not free, a wrong region, a site that is offline). A pod that is not a VM pod: every node."""
    if request is None:
        return [node.name for node, _ in victims]
    return [node.name for node, keys in victims if check(policy, without(snapshot, keys), request, node) is None]
