"""The placement engine: run the policy's predicates and priorities over candidate sites.

Pure functions of (policy, snapshot, pod, nodes): no Flask, no Kubernetes client, no I/O. The HTTP
layer decodes, calls one function here and encodes what comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from extender.errors import VMRequestError
import numpy as np

from extender.framework import MAX_PLUGIN_SCORE, Candidate, FilterPlugin, ScorePlugin, Snapshot, Status
from extender.model import Flavor, NodeRef, VMRequest
from extender.policy import Policy
from extender.vmrequest import parse_vm_request, pod_group, raw_vm_request
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
    first: Status | None = None
    for predicate in policy.predicates:
        status = predicate.filter(request, candidate, snapshot)
        if status is None:
            continue
        if status.unresolvable:
            return status
        if first is None:
            first = status
    return first


def _vm_request_or_decide(policy: Policy, pod: Pod, nodes: Sequence[NodeRef],
                          decision: FilterDecision) -> VMRequest | None:
    """The pod's VM request; or None once `decision` holds the answer for every node: all
    unresolvable for a malformed request, all passed (or rejected, per policy) for a non-VM pod."""
    try:
        request = read_request(policy, pod)
    except VMRequestError as exc:
        decision.unresolvable.update((node.name, str(exc)) for node in nodes)
        return None
    if request is None:
        if policy.options.non_vm_pods == "reject":
            reason = REASON_NOT_VM.format(annotation=policy.options.vm_annotation)
            decision.unresolvable.update((node.name, reason) for node in nodes)
        else:
            decision.passed.extend(node.name for node in nodes)
    return request


def filter_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef]) -> FilterDecision:
    """Decide for every node whether the pod's VM can go there: what `reference_filter_nodes`
    answers, in the same order, worked out by `decide` (site columns, then reasons for the nodes
    that fail)."""
    decision = FilterDecision()
    request = _vm_request_or_decide(policy, pod, nodes, decision)
    if request is None:
        return decision
    verdicts = decide(policy, snapshot, request, nodes, reasons=True)
    names = [node.name for node in nodes]
    decision.passed.extend([names[i] for i in np.flatnonzero(verdicts.ok).tolist()])
    failed, unresolvable = decision.failed, decision.unresolvable
    for i, (reason, never) in verdicts.statuses.items():
        if never:
            unresolvable[names[i]] = reason
        else:
            failed[names[i]] = reason
    return decision


@dataclass(frozen=True, slots=True)
class Verdicts:
    """`decide`'s answer for a list of nodes."""

    candidates: list[Candidate | None]
    positions: np.ndarray
    """Per node: `Candidate.position` (-1: the node is decided on its own)."""
    ok: np.ndarray
    """Per node: True when it passes every predicate."""
    statuses: dict[int, Status]
    """By node index, in node order: what `check` answers for a node that fails (when asked with reasons)."""


def decide(policy: Policy, snapshot: Snapshot, request: VMRequest, nodes: Sequence[NodeRef],
           reasons: bool) -> Verdicts:
    """What `check` answers for every node, found the fast way.

    A node that agrees with its site (`Candidate.position` >= 0) is decided by its site's entry in
    each predicate's `site_mask(request, snapshot)` (a mask over the `SiteTable`; None: every site
    passes), a vector operation per predicate for all nodes at once. Only the nodes that fail some
    predicate are then given reasons, by `run_predicates` restricted to the predicates they fail.
    A predicate without `site_mask` is asked about those nodes one by one (`filter`); the other nodes (unknown, off-inventory, labelled unlike their site) go through `check`."""
    resolved, positions = snapshot.frame(nodes)
    plain = positions >= 0
    ok = plain.copy()
    statuses: dict[int, Status] = {}
    if ok.any():
        fails = [_plain_failures(p, request, snapshot, resolved, positions, plain) for p in policy.predicates]
        for fail in fails:
            if fail is not None:
                ok &= ~fail
        failing = np.flatnonzero(plain & ~ok)
        if reasons and failing.size:
            found = run_predicates(policy, snapshot, request, [resolved[i] for i in failing.tolist()],
                                   [None if f is None else f[failing] for f in fails])
            statuses.update(zip(failing.tolist(), found))  # type: ignore[arg-type]
    alone = np.flatnonzero(~plain).tolist()
    for i in alone:
        status = check(policy, snapshot, request, nodes[i])
        if status is None:
            ok[i] = True
        elif reasons:
            statuses[i] = status
    if alone and statuses:
        statuses = dict(sorted(statuses.items()))
    return Verdicts(resolved, positions, ok, statuses)


def _plain_failures(predicate: FilterPlugin, request: VMRequest, snapshot: Snapshot,
                    resolved: Sequence[Candidate | None], positions: np.ndarray, plain: np.ndarray) -> np.ndarray | None:
    """Per node: True for a node decided by its site that fails `predicate` (None: no node fails)."""
    site_mask = getattr(predicate, "site_mask", None)
    if site_mask is not None:
        mask = site_mask(request, snapshot)
        return None if mask is None else plain & ~mask[positions]
    where = np.flatnonzero(plain)
    failing = [i for i in where.tolist() if predicate.filter(request, resolved[i], snapshot) is not None]  # type: ignore[arg-type]
    fail = np.zeros(len(plain), dtype=bool)
    fail[failing] = True
    return fail


def run_predicates(policy: Policy, snapshot: Snapshot, request: VMRequest, candidates: Sequence[Candidate],
                   fails: Sequence[np.ndarray | None]) -> list[Status]:
    """What `check` answers for candidates that fail some predicate, in the same order, given which
    candidates fail each predicate (`fails`, one per predicate, None: none does): each predicate, in
    policy order, explains its failures among the candidates that no earlier one has failed
    unresolvably, so the first unresolvable failure is a node's answer, else its first failure.

    A predicate may offer `explain(request, candidates, snapshot)`: what `filter` answers for each
    of candidates that all fail it, found faster (e.g. one reason formatted per region)."""
    verdicts: list[Status | None] = [None] * len(candidates)
    still_open = np.ones(len(candidates), dtype=bool)  # not failed unresolvably yet
    for predicate, fail in zip(policy.predicates, fails):
        if fail is None:
            continue
        positions = np.flatnonzero(fail & still_open).tolist()
        if not positions:
            continue
        subset = [candidates[i] for i in positions]
        explain = getattr(predicate, "explain", None)
        if explain is not None:
            statuses = explain(request, subset, snapshot)
        else:
            statuses = [predicate.filter(request, c, snapshot) for c in subset]
        closed = []
        for position, status in zip(positions, statuses):
            if status.unresolvable:
                verdicts[position] = status
                closed.append(position)
            elif verdicts[position] is None:
                verdicts[position] = status
        still_open[closed] = False
    return verdicts  # type: ignore[return-value]


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


def prioritize_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef]) -> list[tuple[str, int]]:
    """One (node, 0..10) per node asked, in order: each priority's scores normalized over the nodes
    that pass the predicates (`normalize`), then weighted (`combine`). Non-VM pods and nodes that
    fail a predicate score 0 (kube-scheduler sends only nodes that passed, but a node may have filled
    up since, and a site that cannot take the VM must not set the scale for those that can).

    Feasibility by `decide` (no reasons needed), the scores by `score_columns`, combined on arrays in
    the order `combine` adds: the answers are `reference_prioritize_nodes`'s, to the last bit."""
    request = _request_to_score(policy, pod)
    total = policy.total_weight
    if request is None or total <= 0:
        return [(node.name, 0) for node in nodes]
    verdicts = decide(policy, snapshot, request, nodes, reasons=False)
    feasible = np.flatnonzero(verdicts.ok)
    scores = np.zeros(len(nodes), dtype=np.int64)
    if feasible.size:
        weighted = np.zeros(feasible.size)
        for priority, column in zip(policy.priorities, score_columns(policy, snapshot, request, verdicts, feasible)):
            best = column.max()
            if best > 0:  # a priority where every node scores 0 adds nothing
                weighted = weighted + priority.weight * (column * MAX_PLUGIN_SCORE / best)
        # `to_wire_score(w / total)` on the array: np.rint rounds half to even, as round() does.
        wire = np.rint(weighted / total * MAX_EXTENDER_PRIORITY / MAX_PLUGIN_SCORE)
        scores[feasible] = np.clip(wire, 0, MAX_EXTENDER_PRIORITY)
    return list(zip([node.name for node in nodes], scores.tolist()))


def score_columns(policy: Policy, snapshot: Snapshot, request: VMRequest, verdicts: Verdicts,
                  feasible: np.ndarray) -> list[np.ndarray]:
    """Per priority, in policy order, each feasible node's raw score clamped to 0..100
    (`score_breakdown` by columns). A priority may offer `pre_score(request, snapshot) -> float |
    None`: a score that is the same for every candidate of this request (None: it depends on the
    candidate); `site_scores(request, snapshot)`: what `score` gives a node decided by its site, for
    every site of the `SiteTable` (the other nodes get `score`, one by one)."""
    positions = verdicts.positions[feasible]
    by_site = positions >= 0
    sites = positions[by_site]
    alone = feasible[~by_site].tolist()
    every = feasible.tolist()
    columns = []
    for p in policy.priorities:
        plugin = p.plugin
        pre_score = getattr(plugin, "pre_score", None)
        same = pre_score(request, snapshot) if pre_score is not None else None
        if same is not None:
            columns.append(np.full(feasible.size, min(MAX_PLUGIN_SCORE, max(0.0, float(same)))))
            continue
        site_scores = getattr(plugin, "site_scores", None)
        if site_scores is not None:
            column = np.empty(feasible.size)
            column[by_site] = site_scores(request, snapshot)[sites]
            column[~by_site] = _scores(plugin, request, [verdicts.candidates[i] for i in alone], snapshot)
        else:
            column = np.array(_scores(plugin, request, [verdicts.candidates[i] for i in every], snapshot), dtype=float)
        if column.size and (column.min() < 0.0 or column.max() > MAX_PLUGIN_SCORE):
            column = np.clip(column, 0.0, MAX_PLUGIN_SCORE)
        columns.append(column)
    return columns


def _scores(plugin: ScorePlugin, request: VMRequest, candidates: list, snapshot: Snapshot) -> list[float]:
    """What `score` gives each candidate."""
    return [float(plugin.score(request, c, snapshot)) for c in candidates]


def reference_prioritize_nodes(policy: Policy, snapshot: Snapshot, pod: Pod, nodes: Sequence[NodeRef]) -> list[tuple[str, int]]:
    """`prioritize_nodes` the straightforward way, node by node: the reference the fast path is tested
    against."""
    request = _request_to_score(policy, pod)
    if request is None:
        return [(node.name, 0) for node in nodes]
    feasible: list[tuple[int, Candidate]] = []
    for position, node in enumerate(nodes):
        candidate = resolve(node, snapshot)
        if isinstance(candidate, Candidate) and all(
            p.filter(request, candidate, snapshot) is None for p in policy.predicates
        ):
            feasible.append((position, candidate))
    breakdowns = normalize([score_breakdown(policy, snapshot, request, c) for _, c in feasible])
    scores = [0] * len(nodes)
    for (position, _), breakdown in zip(feasible, breakdowns):
        scores[position] = combine(policy, breakdown)
    return [(node.name, score) for node, score in zip(nodes, scores)]




def choose_flavor(request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Flavor | None:
    """The most preferred acceptable flavor still in stock at the candidate, if any."""
    found = snapshot.first_in_stock(request.flavors, candidate.site, candidate.region)
    return found[1] if found else None


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
