"""The last decisions this worker made, with their reasons, for the status page: a bounded ring, so
memory stays flat however many pods come, and each entry bounded too (a /filter over thousands of
nodes keeps its counts per rule and a few of its reasons, not all of them)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

MAX_DECISIONS = 50
MAX_REASONS = 5
"""Reasons kept per decision: the first nodes that failed, in the order asked."""


@dataclass(frozen=True, slots=True)
class Decision:
    at: float
    verb: str
    pod: str
    outcome: str
    """What a person reads first: `2 of 12 pass`, `site2 (score 10)`, `bound to site1`, or the error."""
    error: str = ""
    by_rule: tuple[tuple[str, int], ...] = ()
    """Nodes failed per rule (filter), most first."""
    reasons: tuple[tuple[str, str], ...] = ()
    """(node, reason) of the first nodes that failed (filter)."""


@dataclass
class RecentDecisions:
    capacity: int = MAX_DECISIONS
    _ring: deque[Decision] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._ring = deque(maxlen=self.capacity)

    def add(self, decision: Decision) -> None:
        with self._lock:
            self._ring.append(decision)

    def latest(self) -> list[Decision]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._ring))

    def record(self, verb: str, fields: dict[str, Any], result: Any, decision: Any) -> None:
        """One entry from what the decision log line saw (`extender.ops.observe`)."""
        error = str(fields.get("error") or "")
        pod = str(fields.get("pod") or "")
        by_rule: tuple[tuple[str, int], ...] = ()
        reasons: tuple[tuple[str, str], ...] = ()
        if verb == "filter" and not error:
            failed = {**(result.FailedNodes or {}), **(result.FailedAndUnresolvableNodes or {})}
            counts: Counter[str] = Counter()
            for (rule, _never), count in (decision.failures.items() if decision is not None else ()):
                counts[rule] += count
            by_rule = tuple(counts.most_common())
            reasons = tuple(list(failed.items())[:MAX_REASONS])
            outcome = f"{fields.get('nodes_out', 0)} of {fields.get('nodes_in', 0)} pass"
        elif verb == "prioritize":
            top = fields.get("top_site")
            outcome = f"{top} (score {fields.get('top_score')})" if top else "no node"
        elif verb == "bind":
            outcome = error or f"bound to {fields.get('top_site')}"
        else:
            outcome = error or f"{fields.get('nodes_out', 0)} node(s) kept"
        self.add(Decision(time.time(), verb, pod, outcome, error, by_rule, reasons))
