"""Volume: for each requested volume type, the pools of that type in the site's availability zone can
still provision the requested GB: Σ pool ceiling − already placed ≥ requested.

The ceiling of a pool (`capacity.pool_ceiling`) follows Cinder's capacity filter rather than the bare
`total × max_over_subscription_ratio − provisioned`:
- `reserved_percentage` (a percentage of the total, 0..100, as Cinder reports it) is held back by the
  operator for the backend's own use: it comes off the total before anything else.
- Over-subscription only exists for thin pools: a pool without `thin_provisioning_support`, or with a
  ratio below 1, allocates every GB for real, so its ratio counts as 1 (Cinder ignores the ratio
  there too).
So thin: total × (1 − reserved/100) × ratio − provisioned; thick: total × (1 − reserved/100) −
provisioned. With reserved 0 and a thin pool this is exactly the issue's formula. `free_capacity_gb`
is not used: it is a moment's reading of the backend, while provisioned + placed is the accounting
this extender keeps, and the pools of a zone are summed as one (a VM's volumes may land in any).

Volume usage is shared by every site of the zone (`Snapshot.storage_by_zone`). Unresolvable when the
zone has no pool of the type or the request exceeds the ceiling even with nothing placed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from extender.capacity import number, volume_stock
from extender.framework import Candidate, Snapshot, Status, no_args
from extender.model import VMRequest

NAME = "Volume"
REASON_NO_POOL = "Volume: no {volume_type} pool in {region}/{zone} (site {site})"
REASON_SHORT = (
    "Volume: {volume_type} has {left} GB left in {region}/{zone} for {site} (capacity {capacity}, placed {placed}),"
    " the request wants {wanted}"
)


class Volume:
    name = NAME

    def filter(self, request: VMRequest, candidate: Candidate, snapshot: Snapshot) -> Status | None:
        if not request.storage:
            return None
        site = candidate.site
        zone = (site.region, site.az)  # the inventory's zone: pools and placements are keyed by it
        reasons = []
        unresolvable = False
        for volume_type, wanted in request.storage.items():
            stock = zone_stocks(snapshot, volume_type).get(zone)
            if stock is None:
                reasons.append(REASON_NO_POOL.format(volume_type=volume_type, region=zone[0], zone=zone[1], site=site.id))
                unresolvable = True
                continue
            if stock.left_gb >= wanted:
                continue
            unresolvable = unresolvable or stock.capacity_gb < wanted
            reasons.append(REASON_SHORT.format(
                volume_type=volume_type, left=stock.left_text, region=zone[0], zone=zone[1],
                site=site.id, capacity=stock.capacity_text, placed=stock.placed_gb, wanted=wanted,
            ))
        if not reasons:
            return None
        return Status("; ".join(reasons), unresolvable=unresolvable)

    def site_mask(self, request: VMRequest, snapshot: Snapshot) -> np.ndarray | None:
        """The sites that pass (None: all): their zone has the GB left of every requested type."""
        if not request.storage:
            return None
        return np.logical_and.reduce([volume_left(snapshot, t) >= wanted for t, wanted in request.storage.items()])


@dataclass(frozen=True, slots=True)
class ZoneStock:
    """`VolumeStock` of one zone and volume type, with its numbers as the reasons print them."""

    capacity_gb: float
    placed_gb: int
    left_gb: float
    capacity_text: str
    left_text: str


def zone_stocks(snapshot: Snapshot, volume_type: str) -> dict[tuple[str, str], ZoneStock]:
    """By (region, zone): the stock of `volume_type` of every zone that has a pool of it, once per snapshot."""
    def build() -> dict[tuple[str, str], ZoneStock]:
        placed = snapshot.storage_by_zone
        found = {}
        for (region, zone, vtype), capacity in snapshot.index.volumes.items():
            if vtype == volume_type:
                stock = volume_stock(capacity, placed.get((region, zone, vtype), 0))
                found[(region, zone)] = ZoneStock(stock.capacity_gb, stock.placed_gb, stock.left_gb,
                                                  number(stock.capacity_gb), number(max(0.0, stock.left_gb)))
        return found
    return snapshot.derived((NAME, "zones", volume_type), build)


def volume_left(snapshot: Snapshot, volume_type: str) -> np.ndarray:
    """Per site: the GB of `volume_type` its zone can still provision (`VolumeStock.left_gb`), -inf
    where the zone has no pool of the type."""
    def build() -> np.ndarray:
        left = {zone: stock.left_gb for zone, stock in zone_stocks(snapshot, volume_type).items()}
        return snapshot.table.zone.spread(left, -np.inf)
    return snapshot.derived(("volume-left", volume_type), build)


def new(args: Mapping[str, Any]) -> Volume:
    no_args(NAME, args)
    return Volume()
