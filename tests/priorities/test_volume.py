"""Volume priority: the original's (allocatable - requested) x 100 / allocatable over the zone's pools."""

from __future__ import annotations

import pytest

from extender.priorities import volume
from tests.builders import (
    make_inventory,
    make_placement,
    make_request,
    make_site,
    make_snapshot,
    make_volume_pool,
    score_at,
)


@pytest.mark.parametrize(("pools", "placed_gb", "score"), [
    # Thin pools without reserved space: the original's numbers exactly.
    ([make_volume_pool(total=2000, provisioned=500)], 0, 75),                      # 1500 / 2000
    ([make_volume_pool(total=2000), make_volume_pool("SSD", total=1000, ratio=2.0, provisioned=1000, name="p2")],
     0, 75),                                                                       # (4000 - 1000) / 4000
    ([make_volume_pool(total=2000)], 400, 80),                                     # placed counts: 1600 / 2000
    ([make_volume_pool(total=2000, provisioned=2500)], 0, 0),                      # over-provisioned: 0, not < 0
    ([make_volume_pool(total=2000, az="z2")], 0, 0),                               # no pool in the site's zone
    ([], 0, 0),
], ids=["one-pool", "two-types", "placed", "over", "other-zone", "none"])
def test_volume_free_share(pools, placed_gb: int, score: float) -> None:
    placements = [make_placement(storage={"SAS": placed_gb})] if placed_gb else []
    snapshot = make_snapshot(make_inventory(sites=[make_site()], volume_pools=pools), placements)
    assert score_at(volume.new({}), make_request(), snapshot) == pytest.approx(score)
