"""What a site node advertises and what a VM pod requests (extender.domain.site_resources)."""

from __future__ import annotations

import pytest

from extender.config.policy import load_policy
from extender.domain.capacity import NOTHING_PLACED, flavor_stock
from extender.engine.index import index_inventory
from extender.domain.site_resources import container_resources, node_resources, resource_name, vm_requests
from tests.builders import make_flavor, make_host, make_inventory, make_request, make_site
from tests.conftest import POLICY_DIR

SAMPLE = load_policy(POLICY_DIR).inventory


@pytest.mark.parametrize("kind, resource_type, expected", [
    pytest.param("vcpu", "", "site-extender.io/vcpu", id="whole-site"),
    pytest.param("ram-mb", "gpu", "site-extender.io/ram-mb.gpu", id="one-type"),
    pytest.param("instances", "High_Mem.v2", "site-extender.io/instances.High_Mem.v2", id="dots-underscores-capitals"),
    pytest.param("vcpu", "gpu a100", None, id="space-cannot-be-named"),
    pytest.param("vcpu", "gpu-", None, id="must-end-alphanumeric"),
    pytest.param("vcpu", "g" * 58, "site-extender.io/vcpu." + "g" * 58, id="63-characters"),
    pytest.param("vcpu", "g" * 59, None, id="64-characters-too-long"),
])
def test_resource_names(kind: str, resource_type: str, expected: str | None) -> None:
    assert resource_name(kind, resource_type) == expected


@pytest.mark.parametrize("site, expected", [
    pytest.param(make_site(hosts=[make_host(vcpus=16, used_vcpus=4, mem=65536, used_mem=16384, ratio=2.0,
                                            types=("general",), max_count=10)], max_count=100),
                 {"site-extender.io/vcpu": 28, "site-extender.io/ram-mb": 49152, "site-extender.io/instances": 28,
                  "site-extender.io/vcpu.general": 28, "site-extender.io/ram-mb.general": 49152,
                  "site-extender.io/instances.general": 10},
                 id="one-host-capped-by-host-max-count"),
    pytest.param(make_site(hosts=[make_host("a", vcpus=8, mem=1000, types=("general", "memory")),
                                  make_host("b", vcpus=4, mem=500, types=("memory",), max_count=3)], max_count=5),
                 {"site-extender.io/vcpu": 12, "site-extender.io/ram-mb": 1500, "site-extender.io/instances": 5,
                  "site-extender.io/vcpu.general": 8, "site-extender.io/ram-mb.general": 1000,
                  "site-extender.io/instances.general": 8,
                  "site-extender.io/vcpu.memory": 12, "site-extender.io/ram-mb.memory": 1500,
                  "site-extender.io/instances.memory": 12},
                 id="shared-host-in-both-pools-no-max-count-means-vcpu-bound"),
    pytest.param(make_site(hosts=[make_host(vcpus=6, used_vcpus=7.5, mem=100, used_mem=150, ratio=1.0)]),
                 {"site-extender.io/vcpu": 0, "site-extender.io/ram-mb": 0, "site-extender.io/instances": 0,
                  "site-extender.io/vcpu.general": 0, "site-extender.io/ram-mb.general": 0,
                  "site-extender.io/instances.general": 0},
                 id="overused-host-offers-nothing-never-negative"),
    pytest.param(make_site(hosts=[make_host(vcpus=3, ratio=1.5, mem=10.9, types=("gpu a100",))]),
                 {"site-extender.io/vcpu": 4, "site-extender.io/ram-mb": 10, "site-extender.io/instances": 4},
                 id="fractions-rounded-down-unnameable-type-whole-site-only"),
    pytest.param(make_site(hosts=[]), {"site-extender.io/vcpu": 0, "site-extender.io/ram-mb": 0,
                                      "site-extender.io/instances": 0}, id="no-hosts"),
])
def test_what_a_site_node_advertises(site, expected: dict[str, int]) -> None:
    assert node_resources(site) == expected


INVENTORY = make_inventory(flavors=[
    make_flavor("small", vcpus=2, ram=4096), make_flavor("wide", vcpus=4, ram=2048),
    make_flavor("big-mem", vcpus=2, ram=16384, resource_type="memory"),
    make_flavor("any", vcpus=1, ram=1024, resource_type=""),
    make_flavor("small", vcpus=8, ram=8192, region="r2"),
])


@pytest.mark.parametrize("request_, expected", [
    pytest.param(make_request(["small"], regions=[("r1", ())]),
                 {"site-extender.io/vm": 1, "site-extender.io/vcpu": 2, "site-extender.io/ram-mb": 4096,
                  "site-extender.io/instances": 1, "site-extender.io/vcpu.general": 2,
                  "site-extender.io/ram-mb.general": 4096, "site-extender.io/instances.general": 1},
                 id="one-flavor-whole-site-and-its-type"),
    pytest.param(make_request(["small", "wide"], regions=[("r1", ())]),
                 {"site-extender.io/vm": 1, "site-extender.io/vcpu": 2, "site-extender.io/ram-mb": 2048,
                  "site-extender.io/instances": 1, "site-extender.io/vcpu.general": 2,
                  "site-extender.io/ram-mb.general": 2048, "site-extender.io/instances.general": 1},
                 id="two-flavors-one-type-smallest-of-each-figure"),
    pytest.param(make_request(["small", "big-mem"], regions=[("r1", ())]),
                 {"site-extender.io/vm": 1, "site-extender.io/vcpu": 2, "site-extender.io/ram-mb": 4096,
                  "site-extender.io/instances": 1},
                 id="two-types-whole-site-only"),
    pytest.param(make_request(["any"]),
                 {"site-extender.io/vm": 1, "site-extender.io/vcpu": 1, "site-extender.io/ram-mb": 1024,
                  "site-extender.io/instances": 1},
                 id="flavor-of-no-type-is-the-whole-site"),
    pytest.param(make_request(["small"]),
                 {"site-extender.io/vm": 1, "site-extender.io/vcpu": 2, "site-extender.io/ram-mb": 4096,
                  "site-extender.io/instances": 1, "site-extender.io/vcpu.general": 2,
                  "site-extender.io/ram-mb.general": 4096, "site-extender.io/instances.general": 1},
                 id="no-region-every-definition-counts"),
    pytest.param(make_request(["small"], regions=[("r2", ())]),
                 {"site-extender.io/vm": 1, "site-extender.io/vcpu": 8, "site-extender.io/ram-mb": 8192,
                  "site-extender.io/instances": 1, "site-extender.io/vcpu.general": 8,
                  "site-extender.io/ram-mb.general": 8192, "site-extender.io/instances.general": 1},
                 id="the-region-definition"),
    pytest.param(make_request(["wide"], regions=[("r2", ())]),
                 {"site-extender.io/vm": 1, "site-extender.io/instances": 1},
                 id="flavor-not-offered-in-its-region-count-only"),
])
def test_what_a_vm_pod_requests(request_, expected: dict[str, int]) -> None:
    assert vm_requests(request_, INVENTORY) == expected


def test_container_resources_request_and_limit_alike() -> None:
    assert container_resources({"site-extender.io/vm": 1, "site-extender.io/vcpu": 8}) == {
        "requests": {"site-extender.io/vm": "1", "site-extender.io/vcpu": "8"},
        "limits": {"site-extender.io/vm": "1", "site-extender.io/vcpu": "8"},
    }


def fit_count(node: dict[str, int], wanted: dict[str, int]) -> int:
    """How many such pods NodeResourcesFit lets onto an empty node."""
    return min(node.get(name, 0) // value for name, value in wanted.items() if name != "site-extender.io/vm")


SAMPLE_PAIRS = [(site, flavor) for site in SAMPLE.sites.values()
                for (region, _), flavor in SAMPLE.flavors.items() if region == site.region]


@pytest.mark.parametrize("site, flavor", SAMPLE_PAIRS, ids=[f"{s.id}-{f.id}" for s, f in SAMPLE_PAIRS])
def test_the_scheduler_counts_the_stock_of_the_sample_inventory(site, flavor) -> None:
    """kube-scheduler fits, on an empty site node, exactly as many pods of one flavor as the stock the
    extender computes: a full site looks full to it."""
    index = index_inventory(SAMPLE)
    stock = flavor_stock(index.capacity(site.id, flavor.resource_type), NOTHING_PLACED, flavor, site.max_count)
    wanted = vm_requests(make_request([flavor.id], regions=[(site.region, ())]), SAMPLE)
    assert fit_count(node_resources(site), wanted) == stock.stock


def test_the_stock_that_makes_the_preemption_scenario() -> None:
    """site1 is the only site of region1 with gpu hosts: 4 p2s.2xlarge.8 (RAM-bound: 256 GiB free)."""
    site1 = node_resources(SAMPLE.sites["site1"])
    assert (site1["site-extender.io/vcpu.gpu"], site1["site-extender.io/ram-mb.gpu"]) == (40, 262144)
    wanted = vm_requests(make_request(["p2s.2xlarge.8"], regions=[("region1", ())]), SAMPLE)
    assert fit_count(site1, wanted) == 4
    assert [s for s in SAMPLE.sites.values() if s.region == "region1"
            and "site-extender.io/vcpu.gpu" in node_resources(s)] == [SAMPLE.sites["site1"]]
