from __future__ import annotations

import pytest

from extender.domain.model import REGION_LABEL, ZONE_LABEL
from extender.engine.framework import Status
from extender.predicates import region_and_az
from tests.builders import judge, judge_every_site, make_inventory, make_request, make_site, make_snapshot


@pytest.mark.parametrize(
    ("regions", "node_labels", "expected"),
    [
        pytest.param([], None, None, id="no-selector"),
        pytest.param([("r1", [])], None, None, id="region"),
        pytest.param([("r1", ["z2", "z1"])], None, None, id="region-and-zone"),
        pytest.param([("r2", []), ("r1", ["z1"])], None, None, id="second-region"),
        pytest.param([("r2", []), ("r3", [])], None,
                     Status("RegionAndAZ: site s1 is in region r1, the request wants r2, r3", True), id="other-region"),
        pytest.param([("r1", ["z2", "z3"])], None,
                     Status("RegionAndAZ: site s1 is in r1/z1, the request wants zones z2, z3 of r1", True),
                     id="other-zone"),
        # node labels, when set, say where the node is
        pytest.param([("r1", ["z2"])], {REGION_LABEL: "r1", ZONE_LABEL: "z2"}, None, id="node-labels"),
    ],
)
def test_region_and_az(regions, node_labels, expected) -> None:
    snapshot = make_snapshot(make_inventory(sites=[make_site()]))

    status = judge(region_and_az.new({}), make_request(regions=regions), snapshot, labels=node_labels)

    assert status == expected


SITES = [make_site("s1", region="r1", az="z1"), make_site("s2", region="r1", az="z2"),
         make_site("s3", region="r2", az="z3"), make_site("s4", region="r1", az="z1")]


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        pytest.param([("r2", [])], {
            "s1": Status("RegionAndAZ: site s1 is in region r1, the request wants r2", True),
            "s2": Status("RegionAndAZ: site s2 is in region r1, the request wants r2", True),
            "s3": None,
            "s4": Status("RegionAndAZ: site s4 is in region r1, the request wants r2", True),
        }, id="one-reason-per-region"),
        pytest.param([("r1", ["z2"]), ("r2", [])], {
            "s1": Status("RegionAndAZ: site s1 is in r1/z1, the request wants zones z2 of r1", True),
            "s2": None,
            "s3": None,
            "s4": Status("RegionAndAZ: site s4 is in r1/z1, the request wants zones z2 of r1", True),
        }, id="one-reason-per-zone"),
    ],
)
def test_every_site_at_once(regions, expected) -> None:
    """The check over every site gives each its own answer (a reason shared by a region or a zone,
    with each site's id), the same as each site's node alone."""
    snapshot = make_snapshot(make_inventory(sites=SITES))

    assert judge_every_site(region_and_az.new({}), make_request(regions=regions), snapshot) == expected
