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

from extender.domain.model import CENTRALIZE, DISCRETE, Site, VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, no_args, per_site
from extender.engine.places import Places
from extender.engine.snapshot import Snapshot

NAME = "LocalityStrategy"
NO_PREFERENCE = MAX_PLUGIN_SCORE / 2


def centralize_score(members: np.ndarray, fullness: np.ndarray) -> np.ndarray:
    low, high = MAX_PLUGIN_SCORE / (members + 2), MAX_PLUGIN_SCORE / (members + 1)
    return MAX_PLUGIN_SCORE - high + (high - low) * fullness


def discrete_score(members: np.ndarray, fullness: np.ndarray) -> np.ndarray:
    low, high = MAX_PLUGIN_SCORE / (members + 2), MAX_PLUGIN_SCORE / (members + 1)
    return low + (high - low) * (1.0 - fullness)


@per_site
def fullness(snapshot: Snapshot, site: Site, region: str) -> float:
    return snapshot.fullness.get(site.id, 0.0)


class LocalityStrategy:
    name = NAME

    def score(self, request: VMRequest, at: Places) -> np.ndarray | float:
        if request.strategy == CENTRALIZE:
            return centralize_score(at.members(request.group), at.fact(fullness))
        if request.strategy == DISCRETE:
            return discrete_score(at.members(request.group), at.fact(fullness))
        return NO_PREFERENCE


def new(args: Mapping[str, Any]) -> LocalityStrategy:
    no_args(NAME, args)
    return LocalityStrategy()
