"""Why a pod would go where it goes: what filter and prioritize answer for it, node by node, with the
verdict of every predicate (not only the one /filter reports) and each priority's part of the score.
`site-extender simulate` prints it; `POST /v1/explain` answers it.

The wire answers come from the same `Extender` the HTTP routes call, so they are exactly what
`POST /filter` and `POST /prioritize` answer for that body, with everything placed counted. Each rule's
verdict is the predicate's own check on the node alone (`decide.verdict`, what `decide.check` runs); the
per-priority columns are the engine's own numbers (`score_breakdown`, `normalize`) over the nodes that
pass, as /prioritize computes them before `combine`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct

from extender.engine import decide
from extender.engine.framework import Status
from extender.engine.snapshot import Candidate
from extender.errors import VMRequestError
from extender.protocol.service import Extender
from extender.protocol.wire import (
    ExtenderArgs,
    ExtenderFilterResult,
    HostPriority,
    Pod,
    WireError,
    decode_extender_args,
)

PASS = "pass"
FAIL = "fail"
UNRESOLVABLE = "unresolvable"


class RuleVerdict(Struct):
    rule: str
    result: str
    """`pass`, `fail` (placements hold what is missing: preemption may help) or `unresolvable`."""
    reason: str = ""


class NodeExplanation(Struct):
    node: str
    site: str
    result: str
    """What /filter answers for the node: `pass`, `fail` or `unresolvable`."""
    reason: str
    """The reason /filter gives (its first unresolvable failure, else its first failure)."""
    rules: list[RuleVerdict]
    """Every predicate of the policy, in order (empty when the node resolves to no site, or the pod
    is not a VM pod or its request is invalid: `reason` or the note says why)."""
    scores: dict[str, float]
    """Each priority's normalized 0..100, by name (empty for nodes that fail)."""
    final: int
    """The node's score in the /prioritize answer."""


class Explanation(Struct):
    pod: str
    policy: str
    generation: int
    note: str
    """Why no rule or priority looked at the pod (not a VM pod, invalid request), if so."""
    predicates: list[str]
    priorities: list[str]
    nodes: list[NodeExplanation]
    filter: ExtenderFilterResult
    prioritize: list[HostPriority]


def explain(extender: Extender, args: ExtenderArgs) -> Explanation:
    # The verbs' own computations, without what an HTTP verb also gets (decision log, metrics, the
    # status page's ring, events): an explanation is not a scheduling decision.
    filtered, _ = type(extender).filter.__wrapped__(extender, args)  # type: ignore[attr-defined]
    prioritized, _ = type(extender).prioritize.__wrapped__(extender, args)  # type: ignore[attr-defined]
    generation, _ = extender.policies.versioned()
    policy, snapshot = extender.view()
    nodes = extender.nodes(args)
    final = {h.Host: h.Score for h in prioritized}
    failed = filtered.FailedNodes or {}
    unresolvable = filtered.FailedAndUnresolvableNodes or {}
    note = ""
    try:
        request = decide.read_request(policy, args.Pod)
    except VMRequestError as exc:
        request, note = None, str(exc)
    if request is None and not note:
        note = "not a VM pod: no predicate or priority looks at it"

    breakdowns: dict[str, dict[str, float]] = {}
    rules: dict[str, list[RuleVerdict]] = {}
    if request is not None:
        resolved = [(node.name, decide.resolve(node, snapshot)) for node in nodes]
        for name, candidate in resolved:
            if isinstance(candidate, Candidate):
                rules[name] = [_verdict(p.name, decide.verdict(p, request, candidate, snapshot))
                               for p in policy.predicates]
        passing = [(name, c) for name, c in resolved if isinstance(c, Candidate)
                   and name not in failed and name not in unresolvable]
        normalized = decide.normalize([decide.score_breakdown(policy, snapshot, request, c) for _, c in passing])
        breakdowns = {name: b for (name, _), b in zip(passing, normalized)}

    explained = []
    for node in nodes:
        reason = failed.get(node.name) or unresolvable.get(node.name) or ""
        result = UNRESOLVABLE if node.name in unresolvable else (FAIL if reason else PASS)
        explained.append(NodeExplanation(node.name, node.site_id, result, reason, rules.get(node.name, []),
                                         breakdowns.get(node.name, {}), final.get(node.name, 0)))
    meta = args.Pod.metadata
    return Explanation(
        pod=f"{meta.namespace or 'default'}/{meta.name}", policy=str(policy.path), generation=generation, note=note,
        predicates=[p.name for p in policy.predicates], priorities=[p.plugin.name for p in policy.priorities],
        nodes=explained, filter=filtered, prioritize=prioritized,
    )


def _verdict(rule: str, status: Status | None) -> RuleVerdict:
    if status is None:
        return RuleVerdict(rule, PASS)
    return RuleVerdict(rule, UNRESOLVABLE if status.unresolvable else FAIL, status.reason)


# --- what to explain: ExtenderArgs, or a Pod manifest ----------------------------------------------------


def args_for(document: Any, extender: Extender) -> ExtenderArgs:
    """`document` (decoded JSON or YAML) as ExtenderArgs: ExtenderArgs as they are; a Pod manifest (what
    `kubectl apply -f` takes) asked about every node the cluster view knows, else every site."""
    if not isinstance(document, dict):
        raise WireError(f"expected an object (ExtenderArgs or a Pod), got {type(document).__name__}")
    if "Pod" in document:
        return decode_extender_args(msgspec.json.encode(document))
    kind = document.get("kind")
    if kind != "Pod":
        said = "no kind" if kind is None else f"kind {kind!r}"
        raise WireError(f"{said}: expected a Pod manifest (kind: Pod) or ExtenderArgs (with a Pod field)")
    api_version = document.get("apiVersion", "v1")
    if api_version != "v1":
        raise WireError(f"apiVersion {api_version!r}: a Pod is apiVersion v1")
    try:
        pod = msgspec.convert(document, Pod)
    except msgspec.ValidationError as exc:
        raise WireError(f"invalid Pod: {exc}") from None
    return ExtenderArgs(Pod=pod, NodeNames=all_node_names(extender))


def all_node_names(extender: Extender) -> list[str]:
    """The nodes a pod would be asked about: the cluster's (node cache), else the inventory's sites."""
    names = getattr(extender.cluster, "node_names", None)
    if names is not None:
        return list(names())
    return list(extender.policies.current().inventory.sites)
