"""The allocator's replica spreading over a small inventory whose numbers are all in sight.

Sites (flavor f.small = 1 vCPU / 4 GB; every host 40 GB, so vCPU decides):
  region r1: s1 10 vCPU -> holds 10, s2 4 vCPU -> 4, s3 6 vCPU -> 6      (20 in r1)
  region r2: s4 3 vCPU -> 3
No priorities unless a test says so: every site scores 0 and the inventory order breaks the tie.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from extender.allocation import planner
from extender.allocation.planner import (
    MESSAGE_NO_REGION,
    MESSAGE_NO_SITE,
    MESSAGE_SHARED,
    MESSAGE_SHORT,
    REASON_CAPACITY,
    Plan,
    Refusal,
    discrete_shares,
)
from extender.allocation.request import AllocationRequest, Resource
from extender.config.policy import Options, Policy, WeightedPriority
from extender.domain.model import CENTRALIZE, DISCRETE, RegionSelector
from extender.engine.snapshot import Snapshot
from extender.engine.registry import predicate_registry, priority_registry
from extender.predicates.eip_availability import REASON_EMPTY
from extender.predicates.flavor import REASON_NO_STOCK
from tests.builders import make_eip_pool, make_flavor, make_host, make_inventory, make_site

PREDICATES = ("SiteAvailability", "RegionAndAZ", "Flavor", "EipAvailability")


def make_policy(inventory, priorities: tuple[tuple[str, int], ...] = ()) -> Policy:
    preds = predicate_registry()
    prios = priority_registry()
    return Policy(
        path=Path("test-policy.yaml"),
        predicates=tuple(preds[name]({}) for name in PREDICATES),
        priorities=tuple(WeightedPriority(prios[name]({}), weight) for name, weight in priorities),
        options=Options(inventory_dir=Path(".")),
        inventory=inventory,
    )


def site(id: str, region: str, vcpus: int, eip: str | None = None, types: tuple[str, ...] = ("general",)):
    return make_site(id=id, region=region, az=f"z-{id}", eip=eip or f"{region}-bgp",
                     hosts=[make_host(name=f"{id}-h", vcpus=vcpus, mem=40, types=types)])


SITES = [site("s1", "r1", 10), site("s2", "r1", 4), site("s3", "r1", 6), site("s4", "r2", 3)]
FLAVORS = [make_flavor("f.small", region="r1"), make_flavor("f.small", region="r2")]
POOLS = [make_eip_pool("r1-bgp", size=100, region="r1"), make_eip_pool("r2-bgp", size=100, region="r2")]


def request(replicas: int, strategy: str = CENTRALIZE, alone: bool = False, regions: tuple[str, ...] = (),
            resources: tuple[Resource, ...] = (Resource("vm", ("f.small",)),)) -> AllocationRequest:
    return AllocationRequest(group_name="g", resources=resources, replicas=replicas, location_strategy=strategy,
                             region_alone=alone, regions=tuple(RegionSelector(r) for r in regions))


def run(req: AllocationRequest, sites=SITES, flavors=FLAVORS, pools=POOLS, priorities=()) -> Plan | Refusal:
    inventory = make_inventory(sites=sites, flavors=flavors, eip_pools=pools)
    return planner.plan(make_policy(inventory, priorities), Snapshot.build(inventory), req)


def spread(result: Plan | Refusal) -> list[tuple[str, int]]:
    assert isinstance(result, Plan), result
    return [(option.site.id, count) for option, count in result.shares]


@pytest.mark.parametrize("req, expected", [
    # centralize: fill s1 (10), then s2 ...
    (request(1), [("s1", 1)]),
    (request(10), [("s1", 10)]),
    (request(12), [("s1", 10), ("s2", 2)]),
    (request(23), [("s1", 10), ("s2", 4), ("s3", 6), ("s4", 3)]),
    (request(12, regions=("r2", "r1")), [("s1", 10), ("s2", 2)]),
    # discrete, fewer replicas than sites: one each on the best-scored (here: first) sites
    (request(2, DISCRETE), [("s1", 1), ("s2", 1)]),
    (request(4, DISCRETE), [("s1", 1), ("s2", 1), ("s3", 1), ("s4", 1)]),
    # discrete 10 over capacities 10, 4, 6, 3 (sum 23): quotas 4.35, 1.74, 2.61, 1.30 -> floors 4, 1, 2, 1
    # (8); the 2 left go to the largest remainders (.74 s2, .61 s3)
    (request(10, DISCRETE), [("s1", 4), ("s2", 2), ("s3", 3), ("s4", 1)]),
    (request(23, DISCRETE), [("s1", 10), ("s2", 4), ("s3", 6), ("s4", 3)]),
    # alone: all in r1, the region of the best-scored site that holds them all
    (request(12, alone=True), [("s1", 10), ("s2", 2)]),
    (request(20, alone=True), [("s1", 10), ("s2", 4), ("s3", 6)]),
    # alone + discrete 5 over r1's 10, 4, 6: quotas 2.5, 1, 1.5 -> 2, 1, 1, the one left to s1 (.5 ties .5: first)
    (request(5, DISCRETE, alone=True), [("s1", 3), ("s2", 1), ("s3", 1)]),
], ids=["c-1", "c-10-one-site", "c-12-two-sites", "c-23-every-site", "c-region-selector",
        "d-2-best-two", "d-4-one-each", "d-10-proportional", "d-23-full", "alone-12", "alone-20", "alone-discrete-5"])
def test_spread(req: AllocationRequest, expected: list[tuple[str, int]]) -> None:
    assert spread(run(req)) == expected


def test_alone_takes_the_region_that_holds_the_most() -> None:
    # r2's s4 comes first (best-scored by order) but holds 3 of 5: r1 holds them. With 3 asked both
    # regions hold them: the original takes r1, which holds the most (20 against 3).
    sites = [SITES[3], *SITES[:3]]
    assert spread(run(request(5, alone=True), sites=sites)) == [("s1", 5)]
    assert spread(run(request(3, alone=True), sites=sites)) == [("s1", 3)]
    # Equal regions: the region of the best-scored site (the original left it to Go's map order).
    twins = [site("t1", "r2", 5), site("t2", "r1", 5)]
    assert spread(run(request(2, alone=True), sites=twins)) == [("t1", 2)]


def test_more_than_the_sites_hold_allocates_nothing_and_says_why_per_site() -> None:
    result = run(request(24))
    assert isinstance(result, Refusal)
    assert result.message == MESSAGE_SHORT.format(replicas=24, group="g", held=23)
    assert result.reasons["s1"] == REASON_CAPACITY.format(
        held=10, vms=1, reason=REASON_NO_STOCK.format(flavor="f.small", left=0, site="s1", stock=10, placed=10))
    assert set(result.reasons) == {"s1", "s2", "s3", "s4"}


def test_alone_refuses_when_no_region_holds_them_all() -> None:
    result = run(request(21, alone=True))
    assert isinstance(result, Refusal)
    assert result.message == MESSAGE_NO_REGION.format(replicas=21, group="g", held="r1 holds 20, r2 holds 3")
    # without alone they fit across both regions
    assert spread(run(request(21))) == [("s1", 10), ("s2", 4), ("s3", 6), ("s4", 1)]


def test_no_site_at_all() -> None:
    result = run(request(1, regions=("r9",)))
    assert isinstance(result, Refusal)
    assert result.message == MESSAGE_NO_SITE.format(group="g")
    assert result.reasons["s1"] == "RegionAndAZ: site s1 is in region r1, the request wants r9"


def test_a_replica_of_several_vms_counts_every_vm() -> None:
    # 2 x f.small (1 vCPU) + 1 x f.mid (2 vCPU, 8 GB) = 4 vCPU and 16 GB per replica: s1 (10 vCPU, 40 GB) holds 2.
    flavors = [*FLAVORS, make_flavor("f.mid", vcpus=2, ram=8, region="r1")]
    resources = (Resource("web", ("f.small",), count=2), Resource("db", ("f.mid",)))
    req = request(2, resources=resources, regions=("r1",))
    assert spread(run(req, flavors=flavors)) == [("s1", 2)]
    assert spread(run(replace(req, replicas=3), flavors=flavors)) == [("s1", 2), ("s2", 1)]
    plan = run(req, flavors=flavors)
    assert isinstance(plan, Plan)
    vms = planner.placements(plan, req, "a1")
    assert [(p.key, p.site_id, p.flavor_id) for p in vms] == [
        ("a1/0/0/0", "s1", "f.small"), ("a1/0/0/1", "s1", "f.small"), ("a1/0/1/0", "s1", "f.mid"),
        ("a1/1/0/0", "s1", "f.small"), ("a1/1/0/1", "s1", "f.small"), ("a1/1/1/0", "s1", "f.mid"),
    ]


def test_best_scored_sites_come_first() -> None:
    # Flavor priority: s3 has a host serving f.big (the first choice), the others only f.small: s3 scores 10.
    sites = [SITES[0], SITES[1], site("s3", "r1", 6, types=("general", "big"))]
    flavors = [*FLAVORS, make_flavor("f.big", region="r1", resource_type="big")]
    req = request(8, resources=(Resource("vm", ("f.big", "f.small")),))
    plan = run(req, sites=sites, flavors=flavors, priorities=(("Flavor", 1),))
    assert [(o.site.id, o.flavors[0].id, n) for o, n in plan.shares] == [("s3", "f.big", 6), ("s1", "f.small", 2)]


def test_pools_shared_between_sites_are_counted_together() -> None:
    # One EIP pool of 5 for all of r1: alone, s1 would hold 5, s2 4, s3 5; together only 5.
    pools = [make_eip_pool("r1-bgp", size=5, region="r1"), make_eip_pool("r2-bgp", size=0, region="r2")]
    eip = (Resource("vm", ("f.small",), need_eip=True),)
    assert spread(run(request(5, resources=eip), pools=pools)) == [("s1", 5)]
    refused = run(request(6, resources=eip), pools=pools)
    assert isinstance(refused, Refusal) and refused.message == MESSAGE_SHARED.format(group="g")
    # discrete 6 over 5, 4, 5: shares 2, 2, 2; s3 gets only 1 EIP once s1 and s2 took 4.
    refused = run(request(6, DISCRETE, resources=eip), pools=pools)
    assert isinstance(refused, Refusal) and refused.message == MESSAGE_SHARED.format(group="g")
    assert refused.reasons["s3"] == planner.REASON_SHARED.format(
        held=1, wanted=2,
        reason=REASON_EMPTY.format(pool="r1-bgp", region="r1", left=0, site="s3", size=5, used=0, placed=5))


@pytest.mark.parametrize("capacities, replicas, expected", [
    ([10, 4, 6, 3], 10, [4, 2, 3, 1]),
    ([5, 5], 4, [2, 2]),
    ([30, 1, 1], 4, [2, 1, 1]),  # quotas 3.75, .125, .125 -> 4, 0, 0 -> at least one each
    ([3, 3, 3], 9, [3, 3, 3]),
], ids=["largest-remainder", "even", "at-least-one-each", "full"])
def test_discrete_shares(capacities: list[int], replicas: int, expected: list[int]) -> None:
    shares = discrete_shares(capacities, replicas)
    assert shares == expected
    assert sum(shares) == replicas and all(1 <= s <= c for s, c in zip(shares, capacities))


def test_a_resource_falls_back_to_the_flavor_that_holds_a_whole_replica() -> None:
    # s2 has 4 vCPU: f.big (3 vCPU) fits once, but a replica needs 2 of them -> f.small (1 vCPU) x 2, twice.
    flavors = [*FLAVORS, make_flavor("f.big", vcpus=3, ram=4, region="r1")]
    req = request(2, resources=(Resource("vm", ("f.big", "f.small"), count=2),), regions=("r1",))
    plan = run(replace(req, site_id="s2"), flavors=flavors)
    assert [(o.site.id, o.flavors[0].id, n) for o, n in plan.shares] == [("s2", "f.small", 2)]


def test_discrete_shares_keep_their_promises_for_every_small_case() -> None:
    """Every capacity list of 1 to 4 sites holding 1 to 6 replicas, every feasible replica count."""
    from itertools import product

    checked = 0
    for n in range(1, 5):
        for capacities in product(range(1, 7), repeat=n):
            for replicas in range(n, sum(capacities) + 1):
                shares = discrete_shares(list(capacities), replicas)
                assert sum(shares) == replicas, (capacities, replicas)
                assert all(1 <= s <= c for s, c in zip(shares, capacities)), (capacities, replicas, shares)
                for i, j in product(range(n), repeat=2):
                    if capacities[i] > capacities[j]:
                        assert shares[i] >= shares[j], (capacities, replicas, shares)
                checked += 1
    assert checked > 10_000
