"""EipAvailability: size − used − placed ≥ 1 in the pool of the site's region named by its eip_type_name;
placements at every site of the region drawing from that pool count."""

from __future__ import annotations

import pytest

from extender.engine.framework import Status
from extender.predicates import eip_availability
from tests.builders import (
    judge,
    judge_every_site,
    make_eip_pool,
    make_inventory,
    make_placement,
    make_request,
    make_site,
    make_snapshot,
)

S1 = make_site("s1", az="z1", eip="r1-bgp")
S2 = make_site("s2", az="z2", eip="r1-bgp")  # same region, same pool
S3 = make_site("s3", az="z3", eip="r1-static")  # same region, another pool


def eips(site: str, n: int) -> list:
    return [make_placement(site=site, eip=True) for _ in range(n)]


CASES = [
    pytest.param(False, 10, 10, [], None, id="not-needed"),
    pytest.param(True, 10, 9, [], None, id="one-left"),
    # 10 − 7 − 3 = 0, placed at s1 itself
    pytest.param(True, 10, 7, eips("s1", 3),
                 Status("EipAvailability: pool r1-bgp of r1 has 0 left for s1 (size 10, used 7, placed 3)"), id="placed-here"),
    # 10 − 8 − 2 = 0, placed at s2 which shares the pool
    pytest.param(True, 10, 8, eips("s2", 2),
                 Status("EipAvailability: pool r1-bgp of r1 has 0 left for s1 (size 10, used 8, placed 2)"),
                 id="placed-at-sibling-site"),
    # placements at s3 draw from r1-static: r1-bgp keeps 10 − 8 = 2
    pytest.param(True, 10, 8, eips("s3", 5), None, id="other-pool-placements"),
    # placements without needEIP take none
    pytest.param(True, 10, 9, [make_placement(site="s1")], None, id="placement-without-eip"),
    pytest.param(True, 10, 10, [],
                 Status("EipAvailability: pool r1-bgp of r1 has 0 left for s1 (size 10, used 10, placed 0)", True),
                 id="exhausted-in-inventory"),
]


@pytest.mark.parametrize(("need", "size", "used", "placements", "expected"), CASES)
def test_eip_availability(need, size, used, placements, expected) -> None:
    inventory = make_inventory(sites=[S1, S2, S3], eip_pools=[make_eip_pool("r1-bgp", size, used),
                                                               make_eip_pool("r1-static", 5, 0)])
    snapshot = make_snapshot(inventory, placements)

    assert judge(eip_availability.new({}), make_request(need_eip=need), snapshot) == expected


@pytest.mark.parametrize(
    ("eip", "pools", "expected"),
    [
        pytest.param("", [make_eip_pool()], "EipAvailability: site s1 names no EIP pool (eip_type_name is empty)",
                     id="no-pool-named"),
        pytest.param("r1-bgp", [make_eip_pool(region="r2")], "EipAvailability: region r1 has no EIP pool r1-bgp (site s1)",
                     id="pool-of-another-region"),
    ],
)
def test_eip_pool_missing_is_unresolvable(eip, pools, expected) -> None:
    snapshot = make_snapshot(make_inventory(sites=[make_site(eip=eip)], eip_pools=pools))

    assert judge(eip_availability.new({}), make_request(need_eip=True), snapshot) == Status(
        expected, unresolvable=True)


def test_every_site_at_once_one_reason_per_pool() -> None:
    """Placements at s2 empty r1-bgp for s1 and s2 alike (resolvable: they hold the addresses);
    r1-static, which s3 draws from, keeps its own."""
    inventory = make_inventory(sites=[S1, S2, S3, make_site("s4", az="z4", eip="")],
                               eip_pools=[make_eip_pool("r1-bgp", 10, 8), make_eip_pool("r1-static", 5, 0)])
    snapshot = make_snapshot(inventory, eips("s2", 2))

    assert judge_every_site(eip_availability.new({}), make_request(need_eip=True), snapshot) == {
        "s1": Status("EipAvailability: pool r1-bgp of r1 has 0 left for s1 (size 10, used 8, placed 2)"),
        "s2": Status("EipAvailability: pool r1-bgp of r1 has 0 left for s2 (size 10, used 8, placed 2)"),
        "s3": None,
        "s4": Status("EipAvailability: site s4 names no EIP pool (eip_type_name is empty)", True),
    }


R2 = make_site("s9", region="r2", az="z9", eip="r2-bgp")  # region r2 has no EIP pool data at all
R2_UNNAMED = make_site("s8", region="r2", az="z8", eip="")


@pytest.mark.parametrize(("args", "site", "pools", "passes"), [
    # The original's EipAvailability: a region without pool data passes; with data, the site's pool must
    # be there (by its eip_type_name) with size - used >= the addresses asked.
    ({"noPoolData": "pass"}, R2, [make_eip_pool("r1-bgp")], True),
    ({"noPoolData": "pass"}, R2_UNNAMED, [make_eip_pool("r1-bgp")], True),
    ({"noPoolData": "pass"}, S3, [make_eip_pool("r1-bgp")], False),      # r1 has data, not s3's pool
    ({"noPoolData": "pass"}, S1, [make_eip_pool("r1-bgp", size=20, used=20)], False),
    ({"noPoolData": "pass"}, S1, [make_eip_pool("r1-bgp", size=20, used=19)], True),
    ({}, R2, [make_eip_pool("r1-bgp")], False),                          # ours: no data, no promise
    ({"noPoolData": "fail"}, R2, [make_eip_pool("r1-bgp")], False),
], ids=["no-data-passes", "no-data-no-name-passes", "data-without-the-pool", "empty", "one-left",
        "default-fails", "fail"])
def test_eip_without_pool_data(args, site, pools, passes: bool) -> None:
    snapshot = make_snapshot(make_inventory(sites=[site], eip_pools=pools))
    status = judge(eip_availability.new(args), make_request(need_eip=True), snapshot, site_id=site.id)
    assert (status is None) is passes, status


def test_eip_args() -> None:
    with pytest.raises(ValueError, match="noPoolData: expected one of fail, pass, got 'yes'"):
        eip_availability.new({"noPoolData": "yes"})
