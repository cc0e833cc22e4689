from __future__ import annotations

import pytest

from extender.domain.model import REGION_LABEL, ZONE_LABEL
from extender.engine.framework import Status
from extender.predicates import region_and_az
from tests.builders import candidate, make_inventory, make_request, make_site, make_snapshot


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

    status = region_and_az.new({}).filter(make_request(regions=regions), candidate(snapshot, labels=node_labels), snapshot)

    assert status == expected
