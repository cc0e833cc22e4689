"""Volume: Σ over the zone's pools of the type of the pool ceiling − placed ≥ requested, where the
ceiling is total × (1 − reserved/100) × ratio − provisioned for thin pools, ratio 1 for thick ones."""

from __future__ import annotations

import pytest

from extender.domain.capacity import pool_ceiling
from extender.engine.framework import Status
from extender.predicates import volume
from tests.builders import (
    judge,
    make_inventory,
    make_placement,
    make_request,
    make_site,
    make_snapshot,
)
from tests.builders import make_volume_pool as pool


@pytest.mark.parametrize(
    ("p", "ceiling"),
    [
        pytest.param(pool(total=1000, provisioned=200, ratio=1.5), 1300, id="thin"),  # 1000 × 1.5 − 200
        pytest.param(pool(total=1000, provisioned=200, ratio=1.5, thin=False), 800, id="thick-ignores-ratio"),
        pytest.param(pool(total=1000, provisioned=200, ratio=0.8), 800, id="ratio-below-1"),
        pytest.param(pool(total=1000, provisioned=200, ratio=2, reserved=10), 1600, id="reserved"),  # 900 × 2 − 200
        pytest.param(pool(total=2000, provisioned=0, reserved=0.3), 1994, id="fractional-reserved"),  # 2000 × 0.997
    ],
)
def test_pool_ceiling(p, ceiling) -> None:
    assert pool_ceiling(p) == pytest.approx(ceiling)


S1 = make_site("s1", az="z1")
S2 = make_site("s2", az="z1")  # same zone: shares its pools
S3 = make_site("s3", az="z2")


def vol(site: str, gb: int, volume_type: str = "SAS") -> object:
    return make_placement(site=site, storage={volume_type: gb})


CASES = [
    pytest.param({}, [], [], None, id="no-storage-asked"),
    # 1000 × 1 − 600 = 400 ≥ 400
    pytest.param({"SAS": 400}, [pool(total=1000, provisioned=600)], [], None, id="fits-exactly"),
    # two pools of the zone: (1000 − 900) + (500 × 2 − 700) = 400; 150 placed at s2 -> 250 < 300
    pytest.param({"SAS": 300}, [pool(total=1000, provisioned=900), pool(total=500, provisioned=700, ratio=2, name="p2")],
                 [vol("s2", 150)],
                 Status("Volume: SAS has 250 GB left in r1/z1 for s1 (capacity 400, placed 150), the request wants 300"),
                 id="placed-at-sibling-site"),
    # placements in z2 and of SSD do not count against SAS of z1
    pytest.param({"SAS": 300}, [pool(total=1000, provisioned=700)], [vol("s3", 200), vol("s1", 100, "SSD")], None,
                 id="other-zone-and-type"),
    # 1000 − 700 = 300 < 301 even with nothing placed
    pytest.param({"SAS": 301}, [pool(total=1000, provisioned=700)], [],
                 Status("Volume: SAS has 300 GB left in r1/z1 for s1 (capacity 300, placed 0), the request wants 301", True),
                 id="over-ceiling"),
    # thick pool: ratio 3 ignored -> 1000 − 700 = 300
    pytest.param({"SAS": 500}, [pool(total=1000, provisioned=700, ratio=3, thin=False)], [],
                 Status("Volume: SAS has 300 GB left in r1/z1 for s1 (capacity 300, placed 0), the request wants 500", True),
                 id="thick"),
    # reserved 5%: 1000 × 0.95 × 1.5 − 1000 = 425; 100 placed -> 325 < 400
    pytest.param({"SAS": 400}, [pool(total=1000, provisioned=1000, ratio=1.5, reserved=5)], [vol("s1", 100)],
                 Status("Volume: SAS has 325 GB left in r1/z1 for s1 (capacity 425, placed 100), the request wants 400"),
                 id="reserved"),
    # placements beyond the ceiling show 0 left, never negative
    pytest.param({"SAS": 10}, [pool(total=100)], [vol("s1", 150)],
                 Status("Volume: SAS has 0 GB left in r1/z1 for s1 (capacity 100, placed 150), the request wants 10"),
                 id="overcommitted"),
    pytest.param({"SSD": 10}, [pool()], [], Status("Volume: no SSD pool in r1/z1 (site s1)", True), id="no-pool-of-type"),
    pytest.param({"SAS": 10, "SSD": 10}, [pool(total=5)], [],
                 Status("Volume: SAS has 5 GB left in r1/z1 for s1 (capacity 5, placed 0), the request wants 10; "
                        "Volume: no SSD pool in r1/z1 (site s1)", True), id="every-type-reported"),
]


@pytest.mark.parametrize(("storage", "pools", "placements", "expected"), CASES)
def test_volume(storage, pools, placements, expected) -> None:
    snapshot = make_snapshot(make_inventory(sites=[S1, S2, S3], volume_pools=pools), placements)

    assert judge(volume.new({}), make_request(storage=storage), snapshot) == expected
