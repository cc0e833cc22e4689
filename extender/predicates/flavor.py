"""Flavor: some acceptable flavor is offered in the node's region and still in stock at the site.

Stock per flavor = min((Σ total_vcpus × cpu_allocation_ratio − Σ used_vcpus) / vcpus,
(Σ total_mem − Σ used_mem) / ram) over the site's hosts serving the flavor's resource type, capped by
the hosts' and the site's `max_count`; what is already placed there is taken off (`capacity.flavor_stock`).

A flavor whose `cond:operation:az` flags the site's zone `sellout` or `abandon` (or whose
`cond:operation:status` is `abandon` and the zone is not listed) is not sold there, as the original read it.

Unresolvable (no preemption can help) when no acceptable flavor is offered in the region or sold in the
zone, no host of the site serves any of them, or none has stock even with nothing placed. Resolvable when placements
hold the stock: evicting them would make room.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from extender.domain.model import Site, VMRequest
from extender.engine.framework import Fail, Joined, no_args, per_site
from extender.engine.places import Places
from extender.engine.snapshot import Snapshot

NAME = "Flavor"
REASON_NOT_OFFERED = "Flavor: none of {flavors} is offered in region {region}"
REASON_NOT_SOLD = "Flavor: {flavor} is not sold in zone {zone} of {site} (cond:operation:az {flags})"
REASON_NO_HOSTS = "Flavor: no host at {site} serves {flavor} (resource type {resource_type})"
REASON_NO_STOCK = "Flavor: {flavor} has {left} left at {site} (stock {stock}, placed {placed})"


class FlavorAtSite(NamedTuple):
    offered: bool
    """The region offers the flavor."""
    in_stock: bool
    held: bool
    """Out of stock only because of what is placed."""
    reason: str | None
    """Why it is not in stock (None: it is, or it is not offered)."""


@per_site
def flavor_at(snapshot: Snapshot, site: Site, region: str, flavor_id: str) -> FlavorAtSite:
    """What the site says of the flavor `flavor_id` of `region`."""
    flavor = snapshot.inventory.flavor(region, flavor_id)
    if flavor is None:
        return FlavorAtSite(False, False, False, None)
    if not flavor.sold_in(site.az):
        flags = ",".join(f"{zone}({flag})" for zone, flag in flavor.zone_flags) or "none"
        return FlavorAtSite(True, False, False, REASON_NOT_SOLD.format(flavor=flavor_id, zone=site.az, site=site.id,
                                                                       flags=flags))
    if not snapshot.index.capacity(site.id, flavor.resource_type).hosts:
        reason = REASON_NO_HOSTS.format(site=site.id, flavor=flavor_id, resource_type=flavor.resource_type)
        return FlavorAtSite(True, False, False, reason)
    stock = snapshot.flavor_stock(site, flavor)
    if stock.left >= 1:
        return FlavorAtSite(True, True, False, None)
    reason = REASON_NO_STOCK.format(flavor=flavor_id, left=stock.left, site=site.id, stock=stock.stock,
                                    placed=stock.placed)
    return FlavorAtSite(True, False, stock.stock >= 1, reason)


def first_in_stock(flavors: tuple[str, ...], at: Places) -> np.ndarray:
    """Per place: the rank in `flavors` of the first one in stock, len(flavors) where none is."""
    rank = np.full(at.size, len(flavors), dtype=np.intp)
    for k in range(len(flavors) - 1, -1, -1):  # the most preferred last: it has the last word
        rank[at.fact(flavor_at, flavors[k]).in_stock] = k
    return rank


class FlavorPredicate:
    name = NAME

    def check(self, request: VMRequest, at: Places) -> tuple[Fail | Joined, ...]:
        flavors = [at.fact(flavor_at, flavor_id) for flavor_id in request.flavors]
        in_stock = np.logical_or.reduce([f.in_stock for f in flavors])
        offered = np.logical_or.reduce([f.offered for f in flavors])
        return (
            Fail(~in_stock & ~offered, REASON_NOT_OFFERED, by=at.region,
                 fields=lambda region: {"flavors": ", ".join(request.flavors), "region": region}),
            Joined([Fail(f.offered, text=f.reason) for f in flavors], when=~in_stock,
                   unresolvable=~np.logical_or.reduce([f.held for f in flavors])),
        )


def new(args: Mapping[str, Any]) -> FlavorPredicate:
    no_args(NAME, args)
    return FlavorPredicate()
