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
provisioned. With reserved 0 and a thin pool this is exactly total × ratio − provisioned. `free_capacity_gb`
is not used: it is a moment's reading of the backend, while provisioned + placed is the accounting
this extender keeps, and the pools of a zone are summed as one (a VM's volumes may land in any).

Volume usage is shared by every site of the zone (`Snapshot.storage_by_zone`). Several volume types:
the reason lists each type that fails. Unresolvable when the
zone has no pool of the type or the request exceeds the ceiling even with nothing placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from extender.domain.capacity import number, volume_stock
from extender.domain.model import VMRequest
from extender.engine.framework import Fail, Joined, no_args, per_zone
from extender.engine.places import Places
from extender.engine.snapshot import Snapshot

NAME = "Volume"
REASON_NO_POOL = "Volume: no {volume_type} pool in {region}/{zone} (site {site})"
REASON_SHORT = (
    "Volume: {volume_type} has {left} GB left in {region}/{zone} for {site} (capacity {capacity}, placed {placed}),"
    " the request wants {wanted}"
)


class ZoneVolume(NamedTuple):
    pools: int
    """Pools of the type in the zone (0: none, and the GB below are -inf)."""
    capacity: float
    """GB the pools can provision with nothing placed (`VolumeCapacity.capacity_gb`)."""
    placed: int
    left: float
    """capacity − placed (at any site of the zone)."""


@per_zone
def zone_volume(snapshot: Snapshot, zone: tuple[str, str], volume_type: str) -> ZoneVolume:
    key = (zone[0], zone[1], volume_type)
    capacity = snapshot.index.volumes.get(key)
    if capacity is None:
        return ZoneVolume(0, -float("inf"), 0, -float("inf"))
    stock = volume_stock(capacity, snapshot.storage_by_zone.get(key, 0))
    return ZoneVolume(capacity.pools, stock.capacity_gb, stock.placed_gb, stock.left_gb)


class Volume:
    name = NAME

    def check(self, request: VMRequest, at: Places) -> tuple[Joined, ...]:
        if not request.storage:
            return ()
        parts = []
        for volume_type, wanted in request.storage.items():
            volume = at.fact(zone_volume, volume_type)
            parts += [
                Fail(volume.pools == 0, REASON_NO_POOL, by=at.site_zone,
                     fields=lambda zone, t=volume_type: {"volume_type": t, "region": zone[0], "zone": zone[1]}),
                Fail((volume.pools > 0) & (volume.left < wanted), REASON_SHORT, by=at.site_zone,
                     fields=lambda zone, t=volume_type, wanted=wanted: short(at.snapshot, zone, t, wanted),
                     unresolvable=volume.capacity < wanted),
            ]
        return (Joined(parts),)


def short(snapshot: Snapshot, zone: tuple[str, str], volume_type: str, wanted: int) -> dict[str, object]:
    """`REASON_SHORT`'s fields for `zone`."""
    volume = zone_volume(snapshot, zone, volume_type)
    return {"volume_type": volume_type, "left": number(max(0.0, volume.left)), "region": zone[0], "zone": zone[1],
            "capacity": number(volume.capacity), "placed": volume.placed, "wanted": wanted}


def new(args: Mapping[str, Any]) -> Volume:
    no_args(NAME, args)
    return Volume()
