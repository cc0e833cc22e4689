"""EipAvailability: when the request has `needEIP`, the EIP pool the site draws from (the pool of the
site's region named by its `eip_type_name`) has size − used − already placed ≥ 1.

The pool is shared by every site of the region that names it: what is placed at any of them counts
(`Snapshot.eips_by_pool`). Unresolvable when the site names no pool, the region has no such pool, or
the pool is empty even with nothing placed; resolvable when placements hold the last addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.capacity import eip_stock
from extender.framework import Candidate, Snapshot, Status, no_args
from extender.model import VMRequest

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
        region = site.region  # the inventory's region: pools and placements are keyed by it
        pool_name = site.eip_type_name
        if not pool_name:
            return Status(REASON_NO_POOL_NAMED.format(site=site.id), unresolvable=True)
        pool = snapshot.inventory.eip_pools.get((region, pool_name))
        if pool is None:
            return Status(REASON_NO_POOL.format(region=region, pool=pool_name, site=site.id), unresolvable=True)
        stock = eip_stock(pool, snapshot.eips_by_pool.get((region, pool_name), 0))
        if stock.left >= 1:
            return None
        return Status(
            REASON_EMPTY.format(pool=pool_name, region=region, left=max(0, stock.left), site=site.id,
                                size=stock.size, used=stock.used, placed=stock.placed),
            unresolvable=stock.free < 1,
        )

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


def new(args: Mapping[str, Any]) -> EipAvailability:
    no_args(NAME, args)
    return EipAvailability()
