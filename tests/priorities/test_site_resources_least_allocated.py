"""Free share after placing the best flavor in stock, weighted memory 10, cpu 10, storage 5, eip 1;
storage and eip only when the request asks for them."""

from __future__ import annotations

import pytest

from extender.priorities import site_resources_least_allocated as least_allocated
from tests.builders import (
    make_eip_pool,
    make_flavor,
    make_host,
    make_inventory,
    make_placement,
    make_request,
    make_site,
    make_snapshot,
    score_at,
    make_volume_pool,
)

SMALL = make_flavor("f.small", vcpus=1, ram=4)


CASES = [
    # cpu (10 − 1)/10 = .9, memory (40 − 4)/40 = .9
    pytest.param({}, {}, [], make_request(), 90, id="idle"),
    # cpu (10 − 5 − 1)/10 = .4, memory .9 -> (10 × .4 + 10 × .9)/20
    pytest.param({"used_vcpus": 5}, {}, [], make_request(), 65, id="cpu-used"),
    # two placed: cpu (10 − 2 − 1)/10 = .7, memory (40 − 8 − 4)/40 = .7
    pytest.param({}, {}, [make_placement(), make_placement()], make_request(), 70, id="placed"),
    # storage: ceiling 1000 − 500 = 500, (500 − 100)/500 = .8 -> (9 + 9 + 5 × .8)/25
    pytest.param({}, {}, [], make_request(storage={"SAS": 100}), 88, id="storage"),
    # eip: (10 − 5 − 1)/10 = .4 -> (9 + 9 + .4)/21
    pytest.param({}, {}, [], make_request(need_eip=True), 100 * 18.4 / 21, id="eip"),
    # 2 EIPs placed elsewhere in the region: (10 − 5 − 2 − 1)/10 = .2 -> (9 + 9 + .2)/21
    pytest.param({}, {}, [make_placement(site="s2", eip=True), make_placement(site="s2", eip=True)],
                 make_request(need_eip=True), 100 * 18.2 / 21, id="eip-placed-in-region"),
    # only cpu counts: (10 − 5 − 1)/10
    pytest.param({"used_vcpus": 5}, {"resources": {"memory": 0, "cpu": 1}}, [], make_request(), 40, id="cpu-only"),
    pytest.param({"used_vcpus": 10}, {}, [], make_request(), 0, id="no-flavor-in-stock"),
]


@pytest.mark.parametrize(("host", "args", "placements", "request_", "score"), CASES)
def test_least_allocated(host, args, placements, request_, score) -> None:
    inventory = make_inventory(
        sites=[make_site(hosts=[make_host(**host)]), make_site("s2", az="z2")], flavors=[SMALL],
        eip_pools=[make_eip_pool(size=10, used=5)], volume_pools=[make_volume_pool(total=1000, provisioned=500)],
    )
    snapshot = make_snapshot(inventory, placements)

    assert score_at(least_allocated.new(args), request_, snapshot) == pytest.approx(score)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param({"weights": {}}, "unknown arg weights; known: resources", id="unknown-arg"),
        pytest.param({"resources": [1]}, "resources: expected a map of cpu, memory, storage, eip to weights", id="list"),
        pytest.param({"resources": {"gpu": 1}}, "resources.gpu: unknown resource; known: cpu, memory, storage, eip",
                     id="unknown-resource"),
        pytest.param({"resources": {"cpu": -1}}, "resources.cpu: must be a number >= 0, got -1", id="negative"),
        pytest.param({"resources": {"cpu": "high"}}, "resources.cpu: must be a number >= 0, got 'high'", id="string"),
        pytest.param({"resources": {"cpu": 0, "memory": 0, "storage": 0, "eip": 0}},
                     "resources: at least one weight must be > 0", id="all-zero"),
    ],
)
def test_least_allocated_args_are_validated(args, message) -> None:
    with pytest.raises(ValueError) as raised:
        least_allocated.new(args)
    assert str(raised.value) == message
