"""Flavor: the preference rank of the best flavor in stock at the site (first choice scores highest)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extender.capacity import flavor_stock
from extender.framework import MAX_PLUGIN_SCORE, Candidate, Snapshot
from extender.model import VMRequest

NAME = "Flavor"


class FlavorPriority:
    name = NAME

    def score(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> float:
        count = len(request.flavors)
        for rank, flavor_id in enumerate(request.flavors):
            flavor = snapshot.inventory.flavor(candidate.region, flavor_id)
            if flavor and flavor_stock(candidate.site, flavor, candidate.usage, snapshot.inventory).left >= 1:
                return MAX_PLUGIN_SCORE * (count - rank) / count
        return 0.0


def new(args: Mapping[str, Any]) -> FlavorPriority:
    return FlavorPriority()
