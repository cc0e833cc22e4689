"""Flavor: some acceptable flavor is offered in the site's region and still in stock at the site.

Stock per flavor = min((Σ total_vcpus × cpu_allocation_ratio − Σ used_vcpus) / vcpus,
(Σ total_mem − Σ used_mem) / ram) over the site's hosts serving the flavor's resource type, capped by
the hosts' and the site's `max_count`; what is already placed there is taken off (`capacity.flavor_stock`).

Unresolvable (no preemption can help) when no acceptable flavor is offered in the region, no host of
the site serves any of them, or none has stock even with nothing placed. Resolvable when placements
hold the stock: evicting them would make room.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from extender.framework import Candidate, Snapshot, Status, no_args
from extender.model import VMRequest

NAME = "Flavor"
REASON_NOT_OFFERED = "Flavor: none of {flavors} is offered in region {region}"
REASON_NO_HOSTS = "Flavor: no host at {site} serves {flavor} (resource type {resource_type})"
REASON_NO_STOCK = "Flavor: {flavor} has {left} left at {site} (stock {stock}, placed {placed})"


class FlavorPredicate:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        inventory, site = snapshot.inventory, candidate.site
        reasons = []
        resolvable = False
        for flavor_id in request.flavors:
            flavor = inventory.flavor(candidate.region, flavor_id)
            if flavor is None:
                continue
            if not snapshot.index.capacity(site.id, flavor.resource_type).hosts:
                reasons.append(
                    REASON_NO_HOSTS.format(site=site.id, flavor=flavor_id, resource_type=flavor.resource_type)
                )
                continue
            stock = snapshot.flavor_stock(site, flavor)
            if stock.left >= 1:
                return None
            resolvable = resolvable or stock.stock >= 1
            reasons.append(
                REASON_NO_STOCK.format(flavor=flavor_id, left=stock.left, site=site.id, stock=stock.stock,
                                       placed=stock.placed)
            )
        if not reasons:
            return Status(
                REASON_NOT_OFFERED.format(flavors=", ".join(request.flavors), region=candidate.region),
                unresolvable=True,
            )
        return Status("; ".join(reasons), unresolvable=not resolvable)

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """The sites that pass: some acceptable flavor of the site's region in stock there."""
        return np.logical_or.reduce([snapshot.stock_mask(f) for f in request.flavors])


def new(args: Mapping[str, Any]) -> FlavorPredicate:
    no_args(NAME, args)
    return FlavorPredicate()
