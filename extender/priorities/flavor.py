"""Flavor: the preference rank of the best flavor in stock at the site (first choice scores highest).

With n acceptable flavors, the k-th (0-based) scores 100 × (n − k) / n; no flavor in stock scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from extender.domain.model import VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, Candidate, Snapshot, no_args

NAME = "Flavor"


class FlavorPriority:
    name = NAME

    def score(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> float:
        found = snapshot.first_in_stock(request.flavors, candidate.site, candidate.region)
        if found is None:
            return 0.0
        count = len(request.flavors)
        return MAX_PLUGIN_SCORE * (count - found[0]) / count

    def site_scores(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """`score` for every site (`first_in_stock_rank`)."""
        count = len(request.flavors)
        by_rank = np.array([MAX_PLUGIN_SCORE * (count - rank) / count for rank in range(count)] + [0.0])
        return by_rank[first_in_stock_rank(request.flavors, snapshot)]


def first_in_stock_rank(flavors: Sequence[str], snapshot: Snapshot) -> np.ndarray:
    """Per site: the rank in `flavors` of the first one of the site's region in stock there
    (`Snapshot.first_in_stock`), len(flavors) where none is."""
    rank = np.full(len(snapshot.table), len(flavors), dtype=np.intp)
    for k in range(len(flavors) - 1, -1, -1):  # the most preferred last: it has the last word
        rank[snapshot.stock_mask(flavors[k])] = k
    return rank


def new(args: Mapping[str, Any]) -> FlavorPriority:
    no_args(NAME, args)
    return FlavorPriority()
