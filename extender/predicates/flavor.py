"""Flavor: some acceptable flavor is offered in the site's region and still in stock at the site.

Stock per flavor = min((Σ total_vcpus × cpu_allocation_ratio − Σ used_vcpus) / vcpus,
(Σ total_mem − Σ used_mem) / ram) over the site's hosts serving the flavor's resource type, capped by
the hosts' and the site's `max_count`; what is already placed there is taken off (`capacity.flavor_stock`).

Unresolvable (no preemption can help) when no acceptable flavor is offered in the region, no host of
the site serves any of them, or none has stock even with nothing placed. Resolvable when placements
hold the stock: evicting them would make room.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.domain.model import Site, VMRequest
from extender.engine.framework import Candidate, Snapshot, Status, no_args

NAME = "Flavor"
REASON_NOT_OFFERED = "Flavor: none of {flavors} is offered in region {region}"
REASON_NO_HOSTS = "Flavor: no host at {site} serves {flavor} (resource type {resource_type})"
REASON_NO_STOCK = "Flavor: {flavor} has {left} left at {site} (stock {stock}, placed {placed})"


VERDICTS_MEMO = NAME + ".verdicts"
"""`Snapshot.site_memo` of `flavor_verdict` by (region, flavor id)."""
IN_STOCK = ("", False)
_UNKNOWN = object()


def flavor_verdict(snapshot: Snapshot, site: Site, region: str, flavor_id: str) -> tuple[str, bool] | None:
    """What the site says of one flavor of `region` (pod-independent): None when the region has no
    such flavor, `IN_STOCK`, else (why not, whether evicting placements would make room)."""
    flavor = snapshot.inventory.flavor(region, flavor_id)
    if flavor is None:
        return None
    if not snapshot.index.capacity(site.id, flavor.resource_type).hosts:
        return REASON_NO_HOSTS.format(site=site.id, flavor=flavor_id, resource_type=flavor.resource_type), False
    stock = snapshot.flavor_stock(site, flavor)
    if stock.left >= 1:
        return IN_STOCK
    reason = REASON_NO_STOCK.format(flavor=flavor_id, left=stock.left, site=site.id, stock=stock.stock,
                                    placed=stock.placed)
    return reason, stock.stock >= 1


def _held_by_placements(snapshot: Snapshot, flavor_id: str) -> np.ndarray:
    """Per site: the flavor `flavor_id` of its region is out of stock there, but only because of what
    is placed (`flavor_verdict`'s second answer)."""
    def held(snap: Snapshot, site: Site) -> bool:
        verdict = _verdict(snap, site, site.region, flavor_id)
        return verdict is not None and verdict is not IN_STOCK and verdict[1]
    return snapshot.site_column((VERDICTS_MEMO, flavor_id), held, dtype=bool)


def _reason_column(snapshot: Snapshot, flavor_id: str) -> np.ndarray:
    """Per site: why the flavor `flavor_id` of its region is not in stock there (`flavor_verdict`);
    None where the region has no such flavor or it is in stock."""
    def reason(snap: Snapshot, site: Site) -> str | None:
        verdict = _verdict(snap, site, site.region, flavor_id)
        return None if verdict is None or verdict is IN_STOCK else verdict[0]
    return snapshot.site_column((NAME + ".reasons", flavor_id), reason, dtype=object)


def _verdict(snapshot: Snapshot, site: Site, region: str, flavor_id: str) -> tuple[str, bool] | None:
    """`flavor_verdict`, memoized per snapshot."""
    memo = snapshot.site_memo(VERDICTS_MEMO, site.id)
    key = (region, flavor_id)
    verdict = memo.get(key, _UNKNOWN)
    if verdict is _UNKNOWN:
        verdict = memo[key] = flavor_verdict(snapshot, site, region, flavor_id)
    return verdict  # type: ignore[return-value]


class FlavorPredicate:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        site, region = candidate.site, candidate.region
        reasons = []
        resolvable = False
        for flavor_id in request.flavors:
            verdict = _verdict(snapshot, site, region, flavor_id)
            if verdict is None:
                continue
            if verdict is IN_STOCK:
                return None
            reasons.append(verdict[0])
            resolvable = resolvable or verdict[1]
        if not reasons:
            return Status(
                REASON_NOT_OFFERED.format(flavors=", ".join(request.flavors), region=candidate.region),
                unresolvable=True,
            )
        return Status("; ".join(reasons), unresolvable=not resolvable)

    def explain_sites(self, request: VMRequest, positions: np.ndarray, snapshot: Snapshot) -> np.ndarray:
        """The reasons `filter` gives nodes that agree with the sites at `positions`, which all fail it
        (so no acceptable flavor is in stock there): a flavor's reason at a site does not depend on the
        pod, it is kept per snapshot (`_reason_column`); where every acceptable flavor is offered, the
        reason is theirs joined, a column at a time."""
        parts = [_reason_column(snapshot, f)[positions] for f in request.flavors]
        offered = np.logical_and.reduce([np.not_equal(part, None) for part in parts])
        found = np.empty(len(positions), dtype=object)
        joined = parts[0][offered]
        for part in parts[1:]:
            joined = joined + "; " + part[offered]
        found[offered] = joined
        found[~offered] = self._each_site(request, positions[~offered], snapshot)
        return found

    def _each_site(self, request: VMRequest, positions: np.ndarray, snapshot: Snapshot) -> list[str]:
        sites = snapshot.table.sites
        found = []
        for position in positions.tolist():
            site = sites[position]
            region = site.region
            reasons = []
            for flavor_id in request.flavors:
                verdict = _verdict(snapshot, site, region, flavor_id)
                if verdict is not None:
                    reasons.append(verdict[0])
            found.append("; ".join(reasons) if reasons else
                         REASON_NOT_OFFERED.format(flavors=", ".join(request.flavors), region=region))
        return found

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """The sites that pass: some acceptable flavor of the site's region in stock there."""
        return np.logical_or.reduce([snapshot.stock_mask(f) for f in request.flavors])

    def site_resolvable(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """Per site that fails: True when some acceptable flavor would be in stock with nothing
        placed (evicting placements would make room)."""
        return np.logical_or.reduce([_held_by_placements(snapshot, f) for f in request.flavors])


def new(args: Mapping[str, Any]) -> FlavorPredicate:
    no_args(NAME, args)
    return FlavorPredicate()
