"""EipAvailability: when the request has `needEIP`, the EIP pool the site draws from (the pool of the
site's region named by its `eip_type_name`) has size − used − already placed ≥ 1.

The pool is shared by every site of the region that names it: what is placed at any of them counts
(`Snapshot.eips_by_pool`). Unresolvable when the site names no pool, the region has no such pool, or
the pool is empty even with nothing placed; resolvable when placements hold the last addresses.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from extender.domain.capacity import eip_stock
from extender.domain.model import VMRequest
from extender.engine.framework import Candidate, Snapshot, Status, no_args, reason_parts

NAME = "EipAvailability"
REASON_NO_POOL_NAMED = "EipAvailability: site {site} names no EIP pool (eip_type_name is empty)"
REASON_NO_POOL = "EipAvailability: region {region} has no EIP pool {pool} (site {site})"
REASON_EMPTY = (
    "EipAvailability: pool {pool} of {region} has {left} left for {site} (size {size}, used {used}, placed {placed})"
)


class EipAvailability:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        if not request.need_eip:
            return None
        site = candidate.site
        found = _pool_verdict(snapshot, (site.region, site.eip_type_name))  # the inventory's region
        if found is None:
            return None
        template, fields, unresolvable = found
        return Status(template.format(site=site.id, **fields), unresolvable=unresolvable)

    def explain_sites(self, request: VMRequest, positions: np.ndarray, snapshot: Snapshot) -> np.ndarray:
        """The reasons `filter` gives nodes that agree with the sites at `positions`, which all fail
        it: a pool's reason is formatted once, then joined to the site ids a column at a time."""
        table = snapshot.table

        def parts_of(key: Hashable) -> tuple[str, str] | None:
            template, fields, _ = _pool_verdict(snapshot, key)  # type: ignore[arg-type, misc]
            return reason_parts(template, **fields)

        found, served = table.shared_reasons(table.eip_pool, positions, parts_of)
        for k in np.flatnonzero(~served).tolist():  # a name holds the marker
            site = table.sites[positions[k]]
            template, fields, _ = _pool_verdict(snapshot, (site.region, site.eip_type_name))  # type: ignore[misc]
            found[k] = template.format(site=site.id, **fields)
        return found

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray | None:
        """The sites that pass (None: all): their pool has an address left."""
        if not request.need_eip:
            return None

        def build() -> np.ndarray:
            placed = snapshot.eips_by_pool
            left = {key: True for key, pool in snapshot.inventory.eip_pools.items()
                    if key[1] and eip_stock(pool, placed.get(key, 0)).left >= 1}
            return snapshot.table.eip_pool.spread(left, False, dtype=bool)
        return snapshot.derived("eip-left", build)

    def site_resolvable(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray:
        """Per site that fails: True when its pool has free addresses but for what is placed."""
        def build() -> np.ndarray:
            free = {key: True for key, pool in snapshot.inventory.eip_pools.items() if key[1] and pool.size - pool.used >= 1}
            return snapshot.table.eip_pool.spread(free, False, dtype=bool)
        return snapshot.derived("eip-free", build)


def _pool_verdict(snapshot: Snapshot, key: tuple[str, str]) -> tuple[str, dict[str, object], bool] | None:
    """What the pool (region, name) says to a site that draws from it: None when it has an address
    left, else (reason template with a `{site}` field, its other fields, unresolvable)."""
    region, pool_name = key
    if not pool_name:
        return REASON_NO_POOL_NAMED, {}, True
    pool = snapshot.inventory.eip_pools.get(key)
    if pool is None:
        return REASON_NO_POOL, {"region": region, "pool": pool_name}, True
    stock = eip_stock(pool, snapshot.eips_by_pool.get(key, 0))
    if stock.left >= 1:
        return None
    fields = {"pool": pool_name, "region": region, "left": max(0, stock.left), "size": stock.size,
              "used": stock.used, "placed": stock.placed}
    return REASON_EMPTY, fields, stock.free < 1


def new(args: Mapping[str, Any]) -> EipAvailability:
    no_args(NAME, args)
    return EipAvailability()
