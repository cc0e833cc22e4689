"""One structured log line and the metrics of every decision the extender makes.

`instrument(extender, metrics)` wraps the service's verb methods (`filter`, `prioritize`, and `bind`,
`preempt` when the service has them) on that one instance: the service and the engine stay unaware
of logging and metrics. The log line carries the pod, the verb, the nodes asked and kept, the top site
and the duration; never the request body.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from extender.engine.decide import FilterDecision
from extender.ops.metrics import OUTCOME_ERROR, OUTCOME_OK, Metrics, set_outcome
from extender.ops.recent import RecentDecisions

log = logging.getLogger("extender.decisions")

VERBS = ("filter", "prioritize", "bind", "preempt")

DECIDED = {"filter": "filter_decision", "prioritize": "prioritize_decision"}
"""Verbs observed through a service method that also answers what the log and metrics need: the
engine's failure counts, the top node."""


def _pod(args: Any) -> dict[str, Any]:
    pod = getattr(args, "Pod", None)
    meta = getattr(pod, "metadata", None)
    if meta is not None:
        return {"pod": f"{meta.namespace or ''}/{meta.name or ''}", "pod_uid": meta.uid or ""}
    if hasattr(args, "PodName"):  # bind
        return {"pod": f"{args.PodNamespace}/{args.PodName}", "pod_uid": args.PodUID}
    return {}


def _nodes_in(args: Any) -> int | None:
    nodes = getattr(args, "Nodes", None)
    if nodes is not None:
        return len(nodes.items or ())
    names = getattr(args, "NodeNames", None)
    if names is not None:
        return len(names)
    victims = getattr(args, "NodeNameToMetaVictims", None) or getattr(args, "NodeNameToVictims", None)
    return len(victims) if victims is not None else None


def _describe(verb: str, result: Any, metrics: Metrics, decision: Any = None) -> dict[str, Any]:
    """Fields of the log line for one answer; counts the nodes each rule failed (`decision.failures`)."""
    if verb == "filter":
        passed = result.NodeNames if result.NodeNames is not None else (
            result.Nodes.items or [] if result.Nodes is not None else [])
        metrics.nodes_passed.inc(len(passed))
        failures: FilterDecision | None = decision
        for (rule, never), count in (failures.failures if failures is not None else {}).items():
            metrics.nodes_failed.labels(rule, "true" if never else "false").inc(count)
        return {"nodes_out": len(passed), "failed": len(result.FailedNodes or {}),
                "unresolvable": len(result.FailedAndUnresolvableNodes or {}), "error": result.Error or ""}
    if verb == "prioritize":
        top = decision
        return {"nodes_out": len(result), "top_site": top.Host if top else None,
                "top_score": top.Score if top else None}
    if verb == "preempt":
        victims = getattr(result, "NodeNameToMetaVictims", None) or {}
        return {"nodes_out": len(victims)}
    return {"error": getattr(result, "Error", "") or ""}


def _wrap(verb: str, method: Callable[..., Any], metrics: Metrics, recent: RecentDecisions | None) -> Callable[..., Any]:
    """`method` observed. For the `DECIDED` verbs `method` answers (result, decision); the wrapper
    answers the result alone, as the verb it replaces."""
    @functools.wraps(method)
    def decide(args: Any, *rest: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        fields: dict[str, Any] = {"verb": verb, **_pod(args), "nodes_in": _nodes_in(args)}
        if verb == "bind":
            fields["top_site"] = getattr(args, "Node", None)
        try:
            result = method(args, *rest, **kwargs)
        except Exception as exc:
            set_outcome(OUTCOME_ERROR)
            fields.update(error=f"{type(exc).__name__}: {exc}",
                          duration_ms=round((time.perf_counter() - started) * 1000, 3))
            log.error("decision failed", extra=fields)
            raise
        decision = None
        if verb in DECIDED:
            result, decision = result
        try:
            fields.update(_describe(verb, result, metrics, decision))
        except Exception:  # noqa: BLE001 - observing must never change the answer
            log.exception("cannot describe the %s decision", verb)
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        set_outcome(OUTCOME_ERROR if fields.get("error") else OUTCOME_OK)
        log.info("decision", extra=fields)
        if recent is not None:
            try:
                recent.record(verb, fields, result, decision)
            except Exception:  # noqa: BLE001 - observing must never change the answer
                log.exception("cannot keep the %s decision for the status page", verb)
        return result

    return decide


def instrument(extender: Any, metrics: Metrics, recent: RecentDecisions | None = None) -> None:
    """Replace the verb methods of this one service instance by observed ones (`DECIDED`); with
    `recent`, each decision is also kept there for the status page."""
    for verb in VERBS:
        method = getattr(extender, DECIDED.get(verb, verb), None)
        if callable(method):
            setattr(extender, verb, _wrap(verb, method, metrics, recent))
