"""Flavor: the preference rank of the best flavor in stock at the site (first choice scores highest).

As the original global scheduler scored it: the k-th acceptable flavor (0-based) scores 10 // (k + 1)
(integer division: 10, 5, 3, 2, 2, 1, ..., 0 from the eleventh on), here times 10 onto 0..100; no
flavor in stock scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.domain.model import VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, no_args
from extender.engine.places import Places
from extender.predicates.flavor import first_in_stock

NAME = "Flavor"


class FlavorPriority:
    name = NAME

    def score(self, request: VMRequest, at: Places) -> np.ndarray:
        by_rank = np.array([rank_score(rank) for rank in range(len(request.flavors))] + [0.0])
        return by_rank[first_in_stock(request.flavors, at)]


def rank_score(rank: int) -> float:
    """The original's `BaseWeight / (k + 1)` with BaseWeight 10, on 0..100."""
    return MAX_PLUGIN_SCORE / 10 * (10 // (rank + 1))


def new(args: Mapping[str, Any]) -> FlavorPriority:
    no_args(NAME, args)
    return FlavorPriority()
