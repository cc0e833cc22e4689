"""The app with a cluster view that reports placements: what is placed uses up stock, groups pack or
spread, stack selectors see the labels of placed VMs. In-process (Flask client) because the gunicorn
server runs without a cluster."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from extender.app import create_app
from extender.config.settings import Settings
from extender.domain.model import Placement
from extender.kube.view import StaticCluster
from tests.builders import make_placement
from tests.conftest import POLICY_DIR, load_fixture


class PlacedCluster(StaticCluster):
    """Node names are site ids (as without a cluster) and `placements` are bound."""

    def __init__(self, placements: Sequence[Placement]) -> None:
        self._placements = tuple(placements)

    def placements(self) -> tuple[int, Sequence[Placement]]:
        return 1, self._placements


def client_with(placements: Sequence[Placement]):
    app = create_app({"SETTINGS": Settings(policy=POLICY_DIR), "CLUSTER": PlacedCluster(placements), "TESTING": True})
    return app.test_client()


def large(site: str, **kw) -> Placement:
    return make_placement(site=site, flavor="c6.large.2", vcpus=2, ram=4096, **kw)


def args(fixture: str, sites: list[str], labels: dict | None = None, vm: dict | None = None) -> dict:
    pod = load_fixture(fixture)["Pod"]
    if labels is not None:
        pod["metadata"]["labels"] = labels
    if vm is not None:
        pod["metadata"]["annotations"]["site-extender.io/vm"] = json.dumps(vm)
    return {"Pod": pod, "NodeNames": sites}


def test_stock_held_by_placements_is_a_resolvable_failure() -> None:
    # site2 has 3 c6.large.2 in stock (12 GB free / 4 GB); 3 are placed
    client = client_with([large("site2", eip=True) for _ in range(3)])

    answer = client.post("/filter", json=args("scheduler/cache-mode/filter-0005.json", ["site1", "site2"])).get_json()

    assert answer["NodeNames"] == ["site1"]
    assert answer["FailedNodes"] == {"site2": "Flavor: c6.large.2 has 0 left at site2 (stock 3, placed 3)"}
    assert answer["FailedAndUnresolvableNodes"] == {}


def test_eips_placed_anywhere_in_the_region_count() -> None:
    # region2-bgp: size 128, used 120 -> 8 free; 8 placed at site6 use them up for site3 too
    client = client_with([make_placement(site="site6", flavor="c6.large.2", vcpus=2, ram=4096, eip=True)
                          for _ in range(8)])
    vm = {"flavors": [{"flavorID": "c6.large.2"}], "needEIP": True,
          "resourceCommonInfo": {"selector": {"regions": [{"region": "region2"}]}}}

    answer = client.post("/filter", json=args("scheduler/cache-mode/filter-0001.json", ["site3", "site6"], vm=vm)).get_json()

    reason = "EipAvailability: pool region2-bgp of region2 has 0 left for {} (size 128, used 120, placed 8)"
    assert answer["NodeNames"] == []
    assert answer["FailedNodes"] == {"site3": reason.format("site3"), "site6": reason.format("site6")}


@pytest.mark.parametrize(
    ("strategy", "scores"),
    [
        # one VM of group rtc at site1 (fullness ~.15; site2 ~.52, none of the group):
        # centralize: site1 50 + (50 − 33.3) × .15 = 52.5, site2 50 × .52 = 25.8: site1 wins despite being emptier
        pytest.param("centralize", [("site1", 10), ("site2", 7)], id="centralize-joins-the-group"),
        # discrete: site1 33.3 + 16.7 × .85 = 47.5, site2 50 + 50 × .48 = 74.2: site2 wins despite being fuller
        pytest.param("discrete", [("site1", 8), ("site2", 10)], id="discrete-avoids-the-group"),
    ],
)
def test_locality_strategy_follows_the_pod_group(strategy: str, scores) -> None:
    client = client_with([large("site1", group="rtc", eip=True)])
    vm = {"flavors": [{"flavorID": "c6.large.2"}], "needEIP": True,
          "resourceCommonInfo": {"selector": {"regions": [{"region": "region1"}]}, "strategy": {"localStrategy": strategy}}}
    body = args("scheduler/cache-mode/filter-0001.json", ["site1", "site2"], labels={"site-extender.io/group": "rtc"}, vm=vm)

    assert [(e["Host"], e["Score"]) for e in client.post("/prioritize", json=body).get_json()] == scores


def test_stack_antiaffinity_avoids_the_site_of_matching_vms() -> None:
    client = client_with([large("site1", labels={"stack": "db"})])
    vm = {"flavors": [{"flavorID": "c6.large.2"}], "stack_antiaffinity": {"matchLabels": {"stack": "db"}},
          "resourceCommonInfo": {"selector": {"regions": [{"region": "region1"}]}}}
    body = args("scheduler/cache-mode/filter-0001.json", ["site1", "site2"], vm=vm)

    scores = [(e["Host"], e["Score"]) for e in client.post("/prioritize", json=body).get_json()]

    # StackAffinity: site1 (0 + 0)/2 = 0, site2 (0 + 100)/2 = 50 -> normalized 0 and 100. It outweighs site1
    # being emptier (least allocated after a c6.large.2, no EIP: site1 (10 × 276/304 + 10 × 696/896)/20 = 84.2,
    # site2 (10 × 54/64 + 10 × 8/128)/20 = 45.3 -> 100 and 53.8):
    # site1 (400 + 200 + 0 + 100)/9 = 77.8 -> 8, site2 (400 + 200 + 200 + 53.8)/9 = 94.9 -> 9
    assert scores == [("site1", 8), ("site2", 9)]
