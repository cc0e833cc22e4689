"""Volume: the share of its zone's volume capacity a site still has free, all volume types together.

As the original global scheduler scored it: (allocatable − requested) × 100 / allocatable over the
site's pools, where allocatable is what the pools can provision (here Cinder's ceiling, as the Volume
predicate reads it: `capacity.pool_ceiling` + provisioned) and requested what is provisioned, plus
what is placed in the zone (the original never counted what it allocated). A site whose zone has no
pool scores 0. The request itself is not counted, as in the original.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from extender.domain.capacity import pool_ceiling
from extender.domain.model import VMRequest
from extender.engine.framework import MAX_PLUGIN_SCORE, no_args, per_zone
from extender.engine.places import Places
from extender.engine.snapshot import Snapshot

NAME = "Volume"


@per_zone
def free_share(snapshot: Snapshot, zone: tuple[str, str]) -> float:
    """0..100: what the zone's pools can still provision, of all they can."""
    pools = [p for p in snapshot.inventory.volume_pools if (p.region, p.availability_zone) == zone]
    allocatable = sum(pool_ceiling(p) + p.provisioned_capacity_gb for p in pools)
    if allocatable <= 0:
        return 0.0
    requested = sum(p.provisioned_capacity_gb for p in pools) + sum(
        gb for (region, az, _), gb in snapshot.storage_by_zone.items() if (region, az) == zone)
    return max(0.0, allocatable - requested) * MAX_PLUGIN_SCORE / allocatable


class VolumePriority:
    name = NAME

    def score(self, request: VMRequest, at: Places) -> np.ndarray:
        return at.fact(free_share)


def new(args: Mapping[str, Any]) -> VolumePriority:
    no_args(NAME, args)
    return VolumePriority()
