"""The recorded pods against the sample inventory (policy/inventory: 12 sites), end to end over HTTP.

The inventory numbers behind each expectation (nothing placed: the server runs without a cluster):
- site2 (region1/az2): one host of 32 vCPU × 2 with 8 used, 128 GB with 116 used: c6.large.2 (2 vCPU,
  4 GB) has min(56 / 2, 12 / 4) = 3 in stock, c6.xlarge.4 (4 vCPU, 16 GB) has 0; its SAS pool is thick,
  4000 GB with 3900 provisioned: 100 GB left.
- site4 is Sellout, site9 Offline; site5 draws EIPs from region1-static (size 16, used 16); site7 is
  exclusive to domain-finance and domain-gov; site10 has memory hosts only.
"""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import load_fixture
from tests.server import Served

pytestmark = pytest.mark.process

SITES = [f"site{i}" for i in range(1, 13)]

REGION = "RegionAndAZ: site {site} is in region {region}, the request wants {wanted}"
NOT_REGION1 = {
    site: REGION.format(site=site, region=region, wanted="region1")
    for site, region in [("site3", "region2"), ("site6", "region2"), ("site8", "region3"), ("site10", "region3"),
                         ("site11", "region4"), ("site12", "region4")]
}
ALWAYS = {
    "site4": "SiteAvailability: site site4 is Sellout",
    "site7": "ExclusiveSite: site site7 is exclusive to domains domain-finance, domain-gov, the request names no domain_id",
    "site9": "SiteAvailability: site site9 is Offline",
}


def ask(pod_fixture: str, vm: dict | None = None, sites: list[str] = SITES) -> dict:
    """A cache-mode ExtenderArgs with the recorded pod (its VM request replaced by `vm` if given)."""
    pod = copy.deepcopy(load_fixture(pod_fixture)["Pod"])
    if vm is not None:
        pod["metadata"]["annotations"]["site-extender.io/vm"] = json.dumps(vm)
    return {"Pod": pod, "NodeNames": sites}


def filter_(server: Served, args: dict) -> dict:
    response = server.post("/filter", json.dumps(args))
    assert response.status == 200
    answer = json.loads(response.data)
    assert answer["Error"] == ""
    return answer


def prioritize(server: Served, args: dict, sites: list[str]) -> list[tuple[str, int]]:
    response = server.post("/prioritize", json.dumps({**args, "NodeNames": sites}))
    assert response.status == 200
    return [(e["Host"], e["Score"]) for e in json.loads(response.data)]


REGION1_EIP = {**ALWAYS, **NOT_REGION1,
               "site5": "EipAvailability: pool region1-static of region1 has 0 left for site5 (size 16, used 16, placed 0)"}
REGION1_AZ12 = {**ALWAYS, **NOT_REGION1,
                "site5": "RegionAndAZ: site site5 is in region1/az6, the request wants zones az1, az2 of region1"}

CASES = [
    # demovm, demovm2: region1, needEIP, c6.large.2, centralize
    pytest.param("scheduler/cache-mode/filter-0001.json", None, ["site1", "site2"], REGION1_EIP, id="demovm"),
    pytest.param("scheduler/cache-mode/filter-0003.json", None, ["site1", "site2"], REGION1_EIP, id="demovm2"),
    # smallvm: region1 zones az1/az2, needEIP, c6.large.2, discrete
    pytest.param("scheduler/cache-mode/filter-0005.json", None, ["site1", "site2"], REGION1_AZ12, id="smallvm"),
    # bigvm: c6.xlarge.4 else c6.large.2, anywhere
    pytest.param("scheduler/cache-mode/preempt-0001.json", None,
                 ["site1", "site2", "site3", "site5", "site6", "site8", "site11", "site12"],
                 {**ALWAYS, "site10": "Flavor: no host at site10 serves c6.xlarge.4 (resource type general); "
                                      "Flavor: no host at site10 serves c6.large.2 (resource type general)"}, id="bigvm"),
    pytest.param("scheduler/cache-mode/filter-0002.json", None, SITES, {}, id="plain-pod"),
    pytest.param("scheduler/cache-mode/filter-0001.json",
                 {"flavors": [{"flavorID": "c6.large.2"}], "storage": {"SAS": 200},
                  "resourceCommonInfo": {"selector": {"regions": [{"region": "region1"}]}}},
                 ["site1", "site5"],
                 {**ALWAYS, **NOT_REGION1, "site2": "Volume: SAS has 100 GB left in region1/az2 for site2 "
                                                    "(capacity 100, placed 0), the request wants 200"}, id="sas-200"),
    pytest.param("scheduler/cache-mode/filter-0001.json",
                 {"flavors": [{"flavorID": "c6.large.2"}], "needEIP": True,
                  "resourceCommonInfo": {"selector": {"geo_location": {"city": "shanghai"}}}},
                 ["site3"],
                 {**ALWAYS, **{s: f"LocationAndOperator: site {s} is in city {city}, the request wants shanghai"
                               for s, city in [("site1", "shenzhen"), ("site2", "guangzhou"), ("site5", "foshan"),
                                               ("site6", "hangzhou"), ("site8", "beijing"), ("site10", "shijiazhuang"),
                                               ("site11", "chengdu"), ("site12", "chongqing")]}}, id="city"),
    pytest.param("scheduler/cache-mode/filter-0001.json",
                 {"flavors": [{"flavorID": "m6.large.8"}, {"flavorID": "c6.large.2"}], "domain_id": "domain-finance",
                  "storage": {"SSD": 500}, "resourceCommonInfo": {"selector": {"regions": [{"region": "region2"}]}}},
                 ["site3", "site7"],
                 {"site4": ALWAYS["site4"], "site9": ALWAYS["site9"],
                  "site6": "Volume: no SSD pool in region2/az7 (site site6)",
                  **{s: REGION.format(site=s, region=r, wanted="region2")
                     for s, r in [("site1", "region1"), ("site2", "region1"), ("site5", "region1"), ("site8", "region3"),
                                  ("site10", "region3"), ("site11", "region4"), ("site12", "region4")]}},
                 id="exclusive-domain"),
]


@pytest.mark.parametrize(("fixture", "vm", "passed", "unresolvable"), CASES)
def test_recorded_pods_against_the_sample_inventory(server: Served, fixture, vm, passed, unresolvable) -> None:
    answer = filter_(server, ask(fixture, vm))

    assert answer["NodeNames"] == passed
    assert answer["FailedAndUnresolvableNodes"] == unresolvable
    assert answer["FailedNodes"] == {}  # nothing is placed without a cluster: no failure is only on stock


# Priorities (weights LocalityStrategy 4, Flavor 2, StackAffinity 2, SiteResourcesLeastAllocated 1), each
# normalized over the sites asked so the best gets 100, then (Σ weight × score) / 9 / 10 rounded.
# site1: hosts 304 vCPU-with-ratio (280 free), 896 GB (704 free) -> fullness 1 − (.921 + .786)/2 = .147
# site2: 64 (56 free), 128 GB (12 free) -> fullness 1 − (.875 + .094)/2 = .516
# LocalityStrategy centralize, no group placed: 50 × fullness = 7.3 and 25.8 -> 28.4 and 100
#   discrete: 50 + 50 × (1 − fullness) = 92.7 and 74.2 -> 100 and 80.1; no strategy: 50 -> 100
# SiteResourcesLeastAllocated after one c6.large.2 with an EIP of region1-bgp ((256 − 37 − 1)/256 = .852):
#   site1 (10 × 278/304 + 10 × 700/896 + .852)/21 = 84.8; site2 (10 × 54/64 + 10 × 8/128 + .852)/21 = 47.2
#   -> 100 and 55.7
# Flavor 100 and StackAffinity 50 (no selectors) everywhere -> 100.
RANKINGS = [
    # centralize packs: site1 (400 × .284 + 200 + 200 + 100)/9 = 68 -> 7; site2 (400 + 200 + 200 + 55.7)/9 = 95 -> 10
    pytest.param("scheduler/cache-mode/prioritize-0001.json", ["site2", "site1"], [("site2", 10), ("site1", 7)],
                 id="demovm2-centralize"),
    # discrete spreads: site1 100 -> 10; site2 (400 × .801 + 200 + 200 + 55.7)/9 = 86 -> 9
    pytest.param("scheduler/cache-mode/prioritize-0003.json", ["site2", "site1"], [("site2", 9), ("site1", 10)],
                 id="smallvm-discrete"),
    # a site that fails the predicates scores 0 and does not set the scale
    pytest.param("scheduler/cache-mode/prioritize-0003.json", ["site2", "site3", "site1"],
                 [("site2", 9), ("site3", 0), ("site1", 10)], id="smallvm-with-region2-site"),
    # bigvm (no strategy, no EIP) at site2 only gets its second flavor: Flavor 50; least allocated after
    # c6.xlarge.4 at site1 (10 × 276/304 + 10 × 688/896)/20 = 83.8, c6.large.2 at site2 (10 × 54/64 + 10 × 8/128)/20
    # = 45.3 -> 54.1: site2 (400 + 100 + 200 + 54.1)/9 = 84 -> 8
    pytest.param("scheduler/cache-mode/preempt-0001.json", ["site1", "site2"], [("site1", 10), ("site2", 8)],
                 id="bigvm-fallback-flavor"),
    pytest.param("scheduler/cache-mode/filter-0002.json", ["site1", "site2"], [("site1", 0), ("site2", 0)],
                 id="plain-pod-unscored"),
]


@pytest.mark.parametrize(("fixture", "sites", "scores"), RANKINGS)
def test_ranking_of_recorded_pods(server: Served, fixture: str, sites: list[str], scores) -> None:
    args = ask(fixture, sites=sites)

    assert prioritize(server, args, sites) == scores
