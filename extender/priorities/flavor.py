"""Flavor: the preference rank of the best flavor in stock at the site (first choice scores highest).

With n acceptable flavors, the k-th (0-based) scores 100 × (n − k) / n; no flavor in stock scores 0.
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
        count = len(request.flavors)
        by_rank = np.array([MAX_PLUGIN_SCORE * (count - rank) / count for rank in range(count)] + [0.0])
        return by_rank[first_in_stock(request.flavors, at)]


def new(args: Mapping[str, Any]) -> FlavorPriority:
    no_args(NAME, args)
    return FlavorPriority()
