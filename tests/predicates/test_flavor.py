"""Flavor predicate: stock = min((Σ vcpus × ratio − Σ used) / flavor vcpus, (Σ mem − Σ used) / flavor ram),
capped by max_count, less what is placed. Numbers worked out in each case."""

from __future__ import annotations

import pytest

from extender.engine.framework import Status
from extender.predicates import flavor
from tests.builders import (
    judge,
    make_flavor,
    make_host,
    make_inventory,
    make_placement,
    make_request,
    make_site,
    make_snapshot,
)

SMALL = make_flavor("f.small", vcpus=1, ram=4)
BIG = make_flavor("f.big", vcpus=8, ram=16)
GPU = make_flavor("f.gpu", vcpus=4, ram=16, resource_type="gpu")
MEM = make_flavor("f.mem", vcpus=2, ram=8, resource_type="memory")


def placed(n: int, flavor=SMALL) -> list:
    return [make_placement(flavor=flavor.id, vcpus=flavor.vcpus, ram=flavor.ram) for _ in range(n)]


CASES = [
    # host 10 vCPU × 1 / 1 = 10, 40 GB / 4 = 10 -> stock 10, nothing placed
    pytest.param([make_host()], None, [], ["f.small"], None, id="in-stock"),
    # 10 placed of a stock of 10
    pytest.param([make_host()], None, placed(10), ["f.small"],
                 Status("Flavor: f.small has 0 left at s1 (stock 10, placed 10)"), id="all-placed"),
    # (4 × 2.5 − 2) / 1 = 8 vCPU-bound; 8 placed
    pytest.param([make_host(vcpus=4, used_vcpus=2, ratio=2.5)], None, placed(8), ["f.small"],
                 Status("Flavor: f.small has 0 left at s1 (stock 8, placed 8)"), id="allocation-ratio"),
    # (40 − 36) / 4 = 1 memory-bound; 1 placed
    pytest.param([make_host(used_mem=36)], None, placed(1), ["f.small"],
                 Status("Flavor: f.small has 0 left at s1 (stock 1, placed 1)"), id="memory-bound"),
    # 10 − 10 = 0 vCPU free with nothing placed: eviction cannot help
    pytest.param([make_host(used_vcpus=10)], None, [], ["f.small"],
                 Status("Flavor: f.small has 0 left at s1 (stock 0, placed 0)", unresolvable=True), id="sold-out"),
    # hosts' max_count 3 caps a stock of 10
    pytest.param([make_host(max_count=3)], None, placed(3), ["f.small"],
                 Status("Flavor: f.small has 0 left at s1 (stock 3, placed 3)"), id="host-max-count"),
    # site max_count 2: two GPU VMs on the GPU host fill the site, none on the general hosts
    pytest.param([make_host(), make_host("h2", types=["gpu"], vcpus=16, mem=64)], 2, placed(2, GPU), ["f.small"],
                 Status("Flavor: f.small has 0 left at s1 (stock 2, placed 0)"), id="site-max-count"),
    # (4 + 6 − 1 − 1) = 8 vCPU over two hosts, 80 GB / 4 = 20 -> 8; 7 placed leave 1
    pytest.param([make_host(vcpus=4, used_vcpus=1), make_host("h2", vcpus=6, used_vcpus=1)], None, placed(7),
                 ["f.small"], None, id="hosts-summed"),
    # h1 serves general and memory: 8 small (8 vCPU) + 1 memory VM (2 vCPU) use all 10 vCPU
    pytest.param([make_host(types=["general", "memory"])], None, placed(8) + placed(1, MEM), ["f.small"],
                 Status("Flavor: f.small has 0 left at s1 (stock 10, placed 9)"), id="shared-host"),
    # a memory VM on a memory-only host leaves the general host alone
    pytest.param([make_host(), make_host("h2", types=["memory"])], None, placed(9) + placed(1, MEM), ["f.small"],
                 None, id="other-host-type"),
    pytest.param([make_host()], None, [], ["f.gpu"],
                 Status("Flavor: no host at s1 serves f.gpu (resource type gpu)", unresolvable=True), id="no-host-type"),
    # f.big: (10 − 4) / 8 = 0; f.small: 6 / 1 = 6 -> the second choice passes
    pytest.param([make_host(used_vcpus=4)], None, [], ["f.big", "f.small"], None, id="second-choice"),
    # f.big 0 (stock 0) and f.small: 6 placed of 6 -> resolvable, thanks to f.small
    pytest.param([make_host(used_vcpus=4)], None, placed(6), ["f.big", "f.small"],
                 Status("Flavor: f.big has 0 left at s1 (stock 0, placed 6); "
                        "Flavor: f.small has 0 left at s1 (stock 6, placed 6)"), id="both-out"),
]


@pytest.mark.parametrize(("hosts", "site_max", "placements", "flavors", "expected"), CASES)
def test_flavor_stock(hosts, site_max, placements, flavors, expected) -> None:
    inventory = make_inventory(sites=[make_site(hosts=hosts, max_count=site_max)], flavors=[SMALL, BIG, GPU, MEM])
    snapshot = make_snapshot(inventory, placements)

    status = judge(flavor.new({}), make_request(flavors), snapshot)

    assert status == expected


def test_flavor_not_offered_in_the_region_is_unresolvable() -> None:
    inventory = make_inventory(flavors=[make_flavor("f.small", region="r2")])
    snapshot = make_snapshot(inventory)

    status = judge(flavor.new({}), make_request(["f.small"]), snapshot)

    assert status == Status("Flavor: none of f.small is offered in region r1", unresolvable=True)


def test_flavor_takes_no_args() -> None:
    with pytest.raises(ValueError, match="Flavor takes no args, got extra"):
        flavor.new({"extra": 1})
