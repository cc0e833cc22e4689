"""One structured log line and the metrics of every decision the extender makes.

The service marks each verb `@observed("filter")` (and prioritize, bind, preempt); the app gives the
service an `Observer` with its metrics (`service.observer`), the status page's ring of recent decisions
and, with a cluster, the pod events that follow decisions. Without one a verb is not observed (a
service used outside the app). The log line carries the pod, the verb, the nodes asked and kept, the
top site and the duration; never the request body.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from extender.engine.decide import FilterDecision
from extender.ops.metrics import OUTCOME_ERROR, OUTCOME_OK, Metrics, set_outcome
from extender.ops.recent import RecentDecisions

log = logging.getLogger("extender.decisions")

DECIDED = frozenset({"filter", "prioritize", "bind"})
"""Verbs whose method also answers what the log and metrics need: the engine's failure counts, the
top node, the time of the Binding write."""


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
    fields = {"error": getattr(result, "Error", "") or ""}
    if verb == "bind" and getattr(decision, "api_ms", None) is not None:
        fields["api_ms"] = round(decision.api_ms, 3)
    return fields


class DecisionEvents(Protocol):
    def after(self, verb: str, args: Any, result: Any) -> None:
        """Called with each answer; must never raise."""

    def counts(self) -> dict[str, int]:
        """Occurrences waiting for their API write (`queued`), and dropped since start (`dropped`)."""


class Observer:
    """Logs and counts each decision into `metrics`; with `recent`, keeps it there for the status page;
    with `events`, hands it on for the pod's Kubernetes events."""

    def __init__(self, metrics: Metrics, recent: RecentDecisions | None = None,
                 events: DecisionEvents | None = None) -> None:
        self.metrics = metrics
        self.recent = recent
        self.events = events

    def observe(self, verb: str, args: Any, call: Callable[[], Any]) -> Any:
        """`call()`'s answer to `verb` with `args`, logged and counted. For the `DECIDED` verbs `call`
        answers (answer, decision) and this the answer alone."""
        started = time.perf_counter()
        fields: dict[str, Any] = {"verb": verb, **_pod(args), "nodes_in": _nodes_in(args)}
        if verb == "bind":
            fields["top_site"] = getattr(args, "Node", None)
        try:
            result = call()
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
            fields.update(_describe(verb, result, self.metrics, decision))
        except Exception:  # noqa: BLE001 - observing must never change the answer
            log.exception("cannot describe the %s decision", verb)
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        set_outcome(OUTCOME_ERROR if fields.get("error") else OUTCOME_OK)
        log.info("decision", extra=fields)
        if self.recent is not None:
            try:
                self.recent.record(verb, fields, result, decision)
            except Exception:  # noqa: BLE001 - observing must never change the answer
                log.exception("cannot keep the %s decision for the status page", verb)
        if self.events is not None:
            self.events.after(verb, args, result)
        return result


def observed(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator of the service's method for `verb`: each call logged and counted by the service's
    `observer`, when it has one. A `DECIDED` verb's method answers (answer, decision); the decorated
    method answers the answer, as the protocol wants."""
    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def verb_method(service: Any, args: Any) -> Any:
            observer: Observer | None = service.observer
            if observer is not None:
                return observer.observe(verb, args, lambda: method(service, args))
            result = method(service, args)
            return result[0] if verb in DECIDED else result
        return verb_method
    return decorate
