"""StackAffinity: the request's `stack_affinity` / `stack_antiaffinity` label selectors against the
labels of the VMs already placed at the site (`Placement.labels`).

As the global scheduler scored it: affinity is 100 when some placed VM matches the affinity selector
(else 0), anti-affinity is 0 when some placed VM matches the anti-affinity selector (else 100); the
score is their mean. An absent or empty selector selects nothing, so a request without selectors
scores 50 everywhere (no preference), one that only wants to avoid a stack scores 50 or 0, one that
only seeks a stack 100 or 50.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.domain.model import LabelSelector, Placement, VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, Candidate, Snapshot, no_args

NAME = "StackAffinity"


def _selects(selector: LabelSelector | None) -> bool:
    return selector is not None and not selector.empty


def _any_match(selector: LabelSelector | None, placements: list[Placement]) -> bool:
    if selector is None or selector.empty:
        return False
    return any(selector.matches(p.labels) for p in placements)


def _key(selector: LabelSelector | None) -> tuple | None:
    """A selector as a hashable value."""
    if selector is None:
        return None
    return tuple(sorted(selector.match_labels.items())), selector.match_expressions


class StackAffinity:
    name = NAME

    def score(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> float:
        placements = candidate.usage.placements
        affinity = MAX_PLUGIN_SCORE if _any_match(request.stack_affinity, placements) else 0
        anti = 0 if _any_match(request.stack_antiaffinity, placements) else MAX_PLUGIN_SCORE
        return (affinity + anti) / 2

    def site_scores(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """`score` for every site: the sites without placements score as an empty site, the others
        one by one; once per snapshot and pair of selectors."""
        def build() -> np.ndarray:
            position = snapshot.table.position
            scores = np.full(len(snapshot.table), (0 + MAX_PLUGIN_SCORE) / 2)  # no placement matches
            for site_id, usage in snapshot.by_site.items():
                where = position.get(site_id)
                if where is not None and usage.placements:
                    placements = usage.placements
                    affinity = MAX_PLUGIN_SCORE if _any_match(request.stack_affinity, placements) else 0
                    anti = 0 if _any_match(request.stack_antiaffinity, placements) else MAX_PLUGIN_SCORE
                    scores[where] = (affinity + anti) / 2
            return scores
        return snapshot.derived((NAME, _key(request.stack_affinity), _key(request.stack_antiaffinity)), build)

    def pre_score(self, request: VMRequest, snapshot: Snapshot) -> float | None:
        """No selector that selects anything: the same score everywhere."""
        if _selects(request.stack_affinity) or _selects(request.stack_antiaffinity):
            return None
        return (0 + MAX_PLUGIN_SCORE) / 2


def new(args: Mapping[str, Any]) -> StackAffinity:
    no_args(NAME, args)
    return StackAffinity()
