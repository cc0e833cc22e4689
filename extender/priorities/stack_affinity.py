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
from functools import lru_cache
from typing import Any

import numpy as np

from extender.domain.model import LabelSelector, LabelSelectorRequirement, Site, VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, no_args, per_site
from extender.engine.places import Places
from extender.engine.snapshot import Snapshot

NAME = "StackAffinity"

Key = tuple[tuple[tuple[str, str], ...], tuple[LabelSelectorRequirement, ...]]


def _key(selector: LabelSelector) -> Key:
    """A selector as a hashable value (a fact's argument)."""
    return tuple(sorted(selector.match_labels.items())), selector.match_expressions


@lru_cache(maxsize=256)
def _selector(key: Key) -> LabelSelector:
    return LabelSelector(dict(key[0]), key[1])


@per_site
def placed_matching(snapshot: Snapshot, site: Site, region: str, selector: Key) -> bool:
    """Some VM placed at the site matches the selector."""
    matches = _selector(selector).matches
    return any(matches(p.labels) for p in snapshot.usage(site.id).placements)


class StackAffinity:
    name = NAME

    def score(self, request: VMRequest, at: Places) -> np.ndarray | float:
        def matching(selector: LabelSelector | None) -> np.ndarray | bool:
            return False if selector is None or selector.empty else at.fact(placed_matching, _key(selector))

        near, away = matching(request.stack_affinity), matching(request.stack_antiaffinity)
        if near is False and away is False:
            return (0 + MAX_PLUGIN_SCORE) / 2
        return (np.where(near, MAX_PLUGIN_SCORE, 0) + np.where(away, 0, MAX_PLUGIN_SCORE)) / 2


def new(args: Mapping[str, Any]) -> StackAffinity:
    no_args(NAME, args)
    return StackAffinity()
