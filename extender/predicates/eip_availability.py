"""EipAvailability: when the request has `needEIP`, the EIP pool the site draws from (the pool of the
site's region named by its `eip_type_name`) has size − used − already placed ≥ 1.

The pool is shared by every site of the region that names it: what is placed at any of them counts
(`Snapshot.eips_by_pool`). Unresolvable when the site names no pool, the region has no such pool, or
the pool is empty even with nothing placed; resolvable when placements hold the last addresses.

`args: {noPoolData: pass}` lets a site whose region has no EIP pool data at all pass, as the original
global scheduler did (its EipAvailability answers success when the region has no pools); the default,
`fail`, refuses it: an address nobody accounts for cannot be promised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from extender.domain.capacity import eip_stock
from extender.domain.model import VMRequest
from extender.engine.framework import Fail, choice_arg, per_pool
from extender.engine.places import Places
from extender.engine.snapshot import Snapshot

NAME = "EipAvailability"
REASON_NO_POOL_NAMED = "EipAvailability: site {site} names no EIP pool (eip_type_name is empty)"
REASON_NO_POOL = "EipAvailability: region {region} has no EIP pool {pool} (site {site})"
REASON_EMPTY = (
    "EipAvailability: pool {pool} of {region} has {left} left for {site} (size {size}, used {used}, placed {placed})"
)


NO_POOL_DATA = ("fail", "pass")


class Pool(NamedTuple):
    exists: bool
    region_known: bool
    """The region has EIP pool data at all (some pool, of any name)."""
    size: int
    free: int
    """size − used: what the inventory alone leaves."""
    left: int
    """free − placed (at any site drawing from the pool)."""


@per_pool
def eip_pool(snapshot: Snapshot, pool: tuple[str, str]) -> Pool:
    found = snapshot.inventory.eip_pools.get(pool)
    if found is None:
        return Pool(False, any(region == pool[0] for region, _ in snapshot.inventory.eip_pools), 0, 0, 0)
    stock = eip_stock(found, snapshot.eips_by_pool.get(pool, 0))
    return Pool(True, True, stock.size, stock.free, stock.left)


class EipAvailability:
    name = NAME

    def __init__(self, no_pool_data: str = "fail") -> None:
        self.unknown_passes = no_pool_data == "pass"

    def check(self, request: VMRequest, at: Places) -> tuple[Fail, ...]:
        if not request.need_eip:
            return ()
        pool = at.fact(eip_pool)
        # With noPoolData: pass, a region without any pool data checks nothing (the original's way).
        judged = pool.region_known if self.unknown_passes else True
        return (
            Fail(~at.eip_pool.where(lambda key: bool(key[1])) & judged, REASON_NO_POOL_NAMED),
            Fail(~pool.exists & judged, REASON_NO_POOL, by=at.eip_pool,
                 fields=lambda key: {"region": key[0], "pool": key[1]}),
            Fail((pool.left < 1) & judged, REASON_EMPTY, by=at.eip_pool, fields=lambda key: empty(at.snapshot, key),
                 unresolvable=pool.free < 1),
        )


def empty(snapshot: Snapshot, key: tuple[str, str]) -> dict[str, object]:
    """`REASON_EMPTY`'s fields for the pool `key`."""
    stock = eip_stock(snapshot.inventory.eip_pools[key], snapshot.eips_by_pool.get(key, 0))
    return {"pool": key[1], "region": key[0], "left": max(0, stock.left), "size": stock.size, "used": stock.used,
            "placed": stock.placed}


def new(args: Mapping[str, Any]) -> EipAvailability:
    """args: `noPoolData: fail` (default) or `pass` (the original's: a region without EIP pool data passes)."""
    return EipAvailability(choice_arg(args, "noPoolData", NO_POOL_DATA))
