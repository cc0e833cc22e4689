"""The engine's glue: which failure a site reports, how priorities are normalized and combined."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from extender.config.policy import Policy, WeightedPriority, load_policy
from extender.domain.model import node_ref
from extender.engine import decide
from extender.engine.framework import Status
from extender.predicates import eip_availability, flavor, region_and_az
from extender.priorities import flavor as flavor_priority
from extender.priorities import locality_strategy
from extender.protocol.wire import ObjectMeta, OwnerReference, Pod
from tests.builders import (
    make_eip_pool,
    make_flavor,
    make_host,
    make_inventory,
    make_placement,
    make_request,
    make_site,
    make_snapshot,
)

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


def policy_with(predicates=(), priorities=(), inventory=None) -> Policy:
    base = load_policy(POLICY_DIR)
    return replace(base, predicates=tuple(predicates), priorities=tuple(priorities),
                   inventory=inventory or make_inventory())


def test_unresolvable_failure_wins_over_an_earlier_resolvable_one() -> None:
    # Flavor fails on stock held by placements (resolvable), EIP is exhausted in the inventory (unresolvable):
    # preemption must not be tried, so the EIP reason is the answer.
    inventory = make_inventory(sites=[make_site(hosts=[make_host(vcpus=1)])], flavors=[make_flavor()],
                               eip_pools=[make_eip_pool(size=3, used=3)])
    snapshot = make_snapshot(inventory, [make_placement()])
    policy = policy_with([flavor.new({}), eip_availability.new({})], inventory=inventory)

    status = decide.check(policy, snapshot, make_request(need_eip=True), node_ref("s1", None))

    assert status == Status("EipAvailability: pool r1-bgp of r1 has 0 left for s1 (size 3, used 3, placed 0)", True)


def test_first_resolvable_failure_when_nothing_is_unresolvable() -> None:
    inventory = make_inventory(sites=[make_site(hosts=[make_host(vcpus=1)])], eip_pools=[make_eip_pool(size=3, used=2)])
    snapshot = make_snapshot(inventory, [make_placement(eip=True)])
    policy = policy_with([flavor.new({}), eip_availability.new({})], inventory=inventory)

    status = decide.check(policy, snapshot, make_request(need_eip=True), node_ref("s1", None))

    assert status == Status("Flavor: f.small has 0 left at s1 (stock 1, placed 1)")


def test_unknown_site_is_unresolvable() -> None:
    policy = policy_with([flavor.new({})])

    status = decide.check(policy, make_snapshot(), make_request(), node_ref("nowhere", None))

    assert status == Status("SiteAvailability: site nowhere (node nowhere) is not in the inventory", True)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param([{"a": 10, "b": 0}, {"a": 40, "b": 0}], [{"a": 25, "b": 0}, {"a": 100, "b": 0}], id="scaled"),
        pytest.param([{"a": 50}, {"a": 50}], [{"a": 100}, {"a": 100}], id="ties-all-best"),
        pytest.param([], [], id="empty"),
    ],
)
def test_normalize(rows, expected) -> None:
    assert decide.normalize(rows) == expected


def test_combine_is_the_weighted_mean_on_0_to_10() -> None:
    policy = policy_with(priorities=[WeightedPriority(flavor_priority.new({}), 3),
                                     WeightedPriority(locality_strategy.new({}), 1)])

    # (3 × 100 + 1 × 20) / 4 = 80 -> 8; (3 × 50 + 1 × 0) / 4 = 37.5 -> 4 (round half to even is not hit)
    assert decide.combine(policy, {"Flavor": 100, "LocalityStrategy": 20}) == 8
    assert decide.combine(policy, {"Flavor": 50, "LocalityStrategy": 0}) == 4


def _pod(annotation: str) -> Pod:
    return Pod(metadata=ObjectMeta(name="p", annotations={"site-extender.io/vm": annotation}))


def test_prioritize_scores_sites_failing_a_predicate_0_and_scales_the_others() -> None:
    # s1 and s2 in r1 (s1 emptier), s3 in r2; discrete spreads: s1 best
    sites = [make_site("s1", hosts=[make_host(used_vcpus=2)]), make_site("s2", az="z2", hosts=[make_host(used_vcpus=6)]),
             make_site("s3", region="r2", az="z3")]
    inventory = make_inventory(sites=sites, flavors=[make_flavor(), make_flavor(region="r2")])
    policy = policy_with([region_and_az.new({})], [WeightedPriority(locality_strategy.new({}), 1)], inventory)
    pod = _pod('{"flavors": [{"flavorID": "f.small"}], "resourceCommonInfo": {"selector": {"regions": [{"region": "r1"}]},'
               ' "strategy": {"localStrategy": "discrete"}}}')

    scores = decide.prioritize_nodes(policy, make_snapshot(inventory), pod, [node_ref(s, None) for s in ("s1", "s2", "s3")])

    # fullness s1: 1 − (.8 + 1)/2 = .1 -> 50 + 50 × .9 = 95; s2: 1 − (.4 + 1)/2 = .3 -> 85; normalized 100, 89.47
    assert scores == [("s1", 10), ("s2", 9), ("s3", 0)]


def test_read_request_carries_the_pod_group() -> None:
    policy = policy_with(inventory=make_inventory())
    pod = Pod(metadata=ObjectMeta(
        name="p", annotations={"site-extender.io/vm": '{"flavors": [{"flavorID": "f.small"}]}'},
        ownerReferences=[OwnerReference(kind="ReplicaSet", name="rs", uid="rs-uid", controller=True)]))

    request = decide.read_request(policy, pod)

    assert request is not None and request.group == "rs-uid" and request.flavors == ("f.small",)
