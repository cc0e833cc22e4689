"""What filter and prioritize answer for a saved `ExtenderArgs`, node by node, with each priority's
part of the score: the `simulate` command's table.

The wire answers come from the same `Extender` the HTTP routes call, so `simulate --json` prints
exactly what `POST /filter` and `POST /prioritize` answer for that body. The per-priority columns are
the engine's own numbers (`score_breakdown`, `normalize`) over the nodes that pass, as /prioritize
computes them before `combine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from extender.engine import decide
from extender.engine.framework import Candidate
from extender.errors import VMRequestError
from extender.protocol.service import Extender
from extender.protocol.wire import ExtenderArgs, ExtenderFilterResult, HostPriority


@dataclass(frozen=True, slots=True)
class Row:
    node: str
    site: str
    passed: bool
    reason: str = ""
    unresolvable: bool = False
    scores: dict[str, float] = field(default_factory=dict)
    """Each priority's normalized 0..100, by name (empty for nodes that fail)."""
    final: int = 0
    """The node's score in the /prioritize answer."""


@dataclass(frozen=True, slots=True)
class Simulation:
    filter: ExtenderFilterResult
    prioritize: list[HostPriority]
    priorities: list[str]
    rows: list[Row]
    note: str = ""
    """Why there are no per-priority scores (not a VM pod, invalid request), if so."""


def simulate(extender: Extender, args: ExtenderArgs) -> Simulation:
    filtered = extender.filter(args)
    prioritized = extender.prioritize(args)
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
        note = "not a VM pod: no priority scores it"

    breakdowns: dict[str, dict[str, float]] = {}
    if request is not None:
        passing = [node for node in nodes if node.name not in failed and node.name not in unresolvable]
        candidates = [(n.name, c) for n in passing if isinstance(c := decide.resolve(n, snapshot), Candidate)]
        normalized = decide.normalize([decide.score_breakdown(policy, snapshot, request, c) for _, c in candidates])
        breakdowns = {name: b for (name, _), b in zip(candidates, normalized)}

    rows = []
    for node in nodes:
        reason = failed.get(node.name) or unresolvable.get(node.name) or ""
        rows.append(Row(node=node.name, site=node.site_id, passed=not reason, reason=reason,
                        unresolvable=node.name in unresolvable, scores=breakdowns.get(node.name, {}),
                        final=final.get(node.name, 0)))
    return Simulation(filtered, prioritized, [p.plugin.name for p in policy.priorities], rows, note)
