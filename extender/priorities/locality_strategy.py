"""LocalityStrategy: the request's `localStrategy` packs or spreads the VMs of one group.

The group is the pod's (`vmrequest.pod_group`: its `site-extender.io/group` label, else its
controller's uid); n is how many VMs of the group the site already holds, f its fullness (mean used
share of vCPU and RAM over all its hosts, precomputed in `Snapshot.fullness`).
- `centralize`: more of the group first, then the fullest: 100 − 100/(n+1) + (100/(n+1) − 100/(n+2)) × f.
- `discrete`: fewer of the group first, then the emptiest: 100/(n+2) + (100/(n+1) − 100/(n+2)) × (1 − f).
Each n owns a band of scores ([0, 50], [50, 66.7], ... for centralize), so the group count always
decides before the fullness. No strategy: 50 everywhere (no preference, like StackAffinity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.domain.model import CENTRALIZE, DISCRETE, VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, Candidate, Snapshot, no_args

NAME = "LocalityStrategy"
NO_PREFERENCE = MAX_PLUGIN_SCORE / 2


def centralize_score(members: int, fullness: float) -> float:
    low, high = MAX_PLUGIN_SCORE / (members + 2), MAX_PLUGIN_SCORE / (members + 1)
    return MAX_PLUGIN_SCORE - high + (high - low) * fullness


def discrete_score(members: int, fullness: float) -> float:
    low, high = MAX_PLUGIN_SCORE / (members + 2), MAX_PLUGIN_SCORE / (members + 1)
    return low + (high - low) * (1.0 - fullness)


class LocalityStrategy:
    name = NAME

    def score(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> float:
        if request.strategy not in (CENTRALIZE, DISCRETE):
            return NO_PREFERENCE
        members = candidate.usage.groups.get(request.group, 0) if request.group else 0
        fullness = snapshot.fullness.get(candidate.site.id, 0.0)
        if request.strategy == CENTRALIZE:
            return centralize_score(members, fullness)
        return discrete_score(members, fullness)

    def site_scores(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """`score` for every site, with the same arithmetic on columns."""
        members = np.zeros(len(snapshot.table), dtype=np.int64)
        if request.group:
            where, counts = snapshot.group_sites(request.group)
            members[where] = counts
        fullness = snapshot.fullness_column()
        if request.strategy == CENTRALIZE:
            return centralize_score(members, fullness)  # type: ignore[arg-type]
        if request.strategy == DISCRETE:
            return discrete_score(members, fullness)  # type: ignore[arg-type]
        return np.full(len(members), NO_PREFERENCE)

    def pre_score(self, request: VMRequest, snapshot: Snapshot) -> float | None:
        """No strategy: the same score everywhere."""
        return NO_PREFERENCE if request.strategy not in (CENTRALIZE, DISCRETE) else None


def new(args: Mapping[str, Any]) -> LocalityStrategy:
    no_args(NAME, args)
    return LocalityStrategy()
