"""Flavor: some acceptable flavor is offered in the site's region and still in stock at the site."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extender.capacity import flavor_stock
from extender.framework import Candidate, Snapshot, Status
from extender.model import VMRequest

NAME = "Flavor"
REASON_NOT_OFFERED = "Flavor: none of {flavors} is offered in region {region}"
REASON_NO_STOCK = "Flavor: {flavor} has {left} left at {site} (stock {stock}, placed {placed})"


class FlavorPredicate:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        inventory, site = snapshot.inventory, candidate.site
        reasons = []
        for flavor_id in request.flavors:
            flavor = inventory.flavor(candidate.region, flavor_id)
            if flavor is None:
                continue
            stock = flavor_stock(site, flavor, candidate.usage, inventory)
            if stock.left >= 1:
                return None
            reasons.append(
                REASON_NO_STOCK.format(
                    flavor=flavor_id, left=stock.left, site=site.id, stock=stock.stock, placed=stock.placed
                )
            )
        if not reasons:
            return Status(
                REASON_NOT_OFFERED.format(flavors=", ".join(request.flavors), region=candidate.region),
                unresolvable=True,
            )
        return Status("; ".join(reasons))


def new(args: Mapping[str, Any]) -> FlavorPredicate:
    return FlavorPredicate()
