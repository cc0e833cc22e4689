"""The original global scheduler's answers, with its numbers (docs/fidelity.md says row by row).

Most tables run the allocation API over the seed's own `conf/` (tests/fixtures/global-scheduler-conf:
one site, site1 in region1/az1, one host, the original's edgecloud_policy.yaml) with one number or
attribute changed, and ask how many replicas fit: the original's answer is worked out from its code
(`nodeinfo.updateFlavor`, `network/eip.go`, `nodeavailability`, `locationandoperator`, `regionandaz`) in
each row's comment. Strategies run the planner over a four-site inventory (tests/allocation/test_allocator.py).
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from extender.allocation.request import parse_allocation_request
from extender.app import create_app
from extender.config.settings import Settings
from extender.domain.model import DISCRETE
from tests.allocation.test_allocator import request, run, site, spread
from tests.conftest import FIXTURES

CONF_DIR = FIXTURES / "global-scheduler-conf"
SAMPLE = json.loads((CONF_DIR / "sample_allocation_req_body.json").read_text())


def seed(tmp_path: Path, change: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A copy of the seed's conf/ with `change` applied to its data ({file name: parsed JSON})."""
    base = tmp_path / "conf"
    shutil.copytree(CONF_DIR, base)
    if change:
        names = ("sites.json", "site_nodes.json", "flavors.json", "eip_pools.json", "volume_pools.json")
        data = {name: json.loads((base / name).read_text()) for name in names}
        change(data)
        for name, value in data.items():
            (base / name).write_text(json.dumps(value))
    return base


def api(tmp_path: Path, base: Path):
    settings = Settings(policy=base / "edgecloud_policy.yaml", inventory=base, data_dir=tmp_path / "data", kube="none")
    return create_app({"SETTINGS": settings, "TESTING": True}).test_client()


def body(replicas: int = 1, storage: bool = True, need_eip: bool = False, count: int = 1, **selector: Any) -> dict:
    b = copy.deepcopy(SAMPLE)
    b["allocation"]["replicas"] = replicas
    resource = b["allocation"]["resource_group"]["resources"][0]
    resource.update(need_eip=need_eip, count=count)
    if not storage:
        del resource["storage"]
    b["allocation"]["selector"].update(selector)
    return b


def host(data: dict[str, Any]) -> dict[str, Any]:
    return data["site_nodes.json"]["site_nodes"][0]["node_infos"][0]


def unbounded(data: dict[str, Any]) -> None:
    """No max_count (the original never reads it), so that stock alone decides."""
    data["site_nodes.json"]["site_nodes"][0].pop("max_count")
    host(data).pop("max_count")


def test_the_seed_sample_request_gets_the_originals_answer(tmp_path: Path) -> None:
    answer = api(tmp_path, CONF_DIR).post("/v1/allocations", json=SAMPLE)
    assert answer.status_code == 201
    allocation = answer.get_json()["allocation"]
    # The original: {"allocation": {"id": <uuid>, "resource_groups": [{"name": "RTC", "resources": [{"name":
    # "rtc-name", "flavor_id": "c6.large.2", "count": 1}], "selected": {"node_id": "site1", "region":
    # "region1", "availability_zone": "az1"}}]}}; site_id and cluster_name are its later versions' names.
    assert [{**g, "selected": {k: g["selected"][k] for k in ("node_id", "region", "availability_zone")}}
            for g in allocation["resource_groups"]] == [{
                "name": "RTC", "resources": [{"name": "rtc-name", "flavor_id": "c6.large.2", "count": 1}],
                "selected": {"node_id": "site1", "region": "region1", "availability_zone": "az1"}}]
    assert len(allocation["id"]) == 36


def set_host(**numbers: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        unbounded(data)
        host(data).update(numbers)
    return change


# c6.large.2 is 2 vCPU / 2 MB. The original: min((total_vcpus x ratio - used_vcpus) / 2, (total_mem - used_mem) / 2).
@pytest.mark.parametrize("change, holds", [
    (set_host(), 500),                                                     # min((4000-1000)/2, (2000-1000)/2)
    (set_host(used_mem=1990), 5),                                          # RAM: 10 / 2
    (set_host(total_vcpus=10, used_vcpus=16, cpu_allocation_ratio="2.0"), 2),  # vCPU: (20 - 16) / 2
    (set_host(total_vcpus=10, used_vcpus=15, cpu_allocation_ratio="2.0"), 2),  # (20 - 15) / 2 = 2.5 -> 2
    (set_host(resource_type="resource_type_2||resource_type_1"), 500),     # "||" lists the host's types
], ids=["seed", "ram-bound", "vcpu-bound", "vcpu-rounds-down", "host-of-two-types"])
def test_flavor_stock_as_the_original_counts_it(tmp_path: Path, change, holds: int) -> None:
    client = api(tmp_path, seed(tmp_path, change))
    refused = client.post("/v1/allocations", json=body(holds + 1, storage=False))
    assert refused.status_code == 409, refused.get_json()
    assert client.post("/v1/allocations", json=body(holds, storage=False)).status_code == 201


def set_pool(size: int, used: int, name: str = "eip_type_name") -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        unbounded(data)
        data["eip_pools.json"]["eip_pools"][0]["common_pools"][0].update(size=size, used=used, name=name)
    return change


# The original: need = count of the resources with need_eip; free = size - used; replicas = free // need.
@pytest.mark.parametrize("change, count, holds", [
    (set_pool(20, 2), 1, 18),
    (set_pool(20, 2), 2, 9),
    (set_pool(20, 19), 1, 1),
    (set_pool(20, 20), 1, 0),
    (set_pool(20, 2, name="another_pool"), 1, 0),  # the region's pools do not name the site's: no fit
], ids=["18-free", "two-per-replica", "one-left", "none-left", "pool-not-named"])
def test_eip_count_as_the_original_counts_it(tmp_path: Path, change, count: int, holds: int) -> None:
    client = api(tmp_path, seed(tmp_path, change))
    assert client.post("/v1/allocations", json=body(holds + 1, storage=False, need_eip=True, count=count)).status_code == 409
    if holds:
        assert client.post("/v1/allocations", json=body(holds, storage=False, need_eip=True, count=count)).status_code == 201


def set_site(**attributes: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["sites.json"]["sites"][0].update(attributes)
    return change


# The original's NodeAvailability, LocationAndOperator and regionandaz on the seed's site1
# (region1/az1, shenzhen, guangdong, huanan, china, operator "unicom").
@pytest.mark.parametrize("change, selector, fits", [
    (None, {}, True),
    (set_site(status="Offline"), {}, False),
    (set_site(status="Sellout"), {}, False),
    (set_site(status="Normal"), {}, True),
    (None, {"node_id": "site1"}, True),
    (None, {"node_id": "site2"}, False),
    (None, {"geo_location": {"city": "shenzhen", "country": "china"}}, True),
    (None, {"geo_location": {"province": "beijing"}}, False),
    (None, {"geo_location": {"area": "huabei"}}, False),
    (None, {"operator": "unicom"}, True),
    (None, {"operator": "telecom"}, False),
    (None, {"regions": [{"region": "region2"}, {"region": "region1", "availability_zone": ["az1"]}]}, True),
    (None, {"regions": [{"region": "region1", "availability_zone": ["az2"]}]}, False),
    (None, {"regions": [{"region": "region2"}]}, False),
], ids=["seed", "offline", "sellout", "normal", "node-id", "other-node-id", "geo", "other-province",
        "other-area", "operator", "other-operator", "any-region-entry", "other-zone", "other-region"])
def test_site_selection_as_the_original(tmp_path: Path, change, selector: dict, fits: bool) -> None:
    client = api(tmp_path, seed(tmp_path, change))
    b = body(storage=False)
    b["allocation"]["selector"] = {"strategy": {"location_strategy": "centralize"}, **selector}
    assert client.post("/v1/allocations", json=b).status_code == (201 if fits else 409)


def test_no_location_strategy_spreads() -> None:
    # The original's LocationAndOperator.Strategy: "centralize" packs, anything else (none too) spreads.
    b = body()
    del b["allocation"]["selector"]["strategy"]
    assert parse_allocation_request(json.dumps(b).encode(), {"c6.large.2"}).location_strategy == DISCRETE
    assert spread(run(request(4, DISCRETE))) == [("s1", 1), ("s2", 1), ("s3", 1), ("s4", 1)]


@pytest.mark.parametrize("replicas, holds, original, here", [
    # The original: in score order max(round(replicas x held / total), 1), capped at held, until the
    # sum reaches replicas; the last share is cut. None: it answers 500 "not find suit host".
    (5, (10, 10, 10), [2, 2, 1], [2, 2, 1]),
    (3, (10, 10, 10), [1, 1, 1], [1, 1, 1]),
    (12, (10, 10, 10), [4, 4, 4], [4, 4, 4]),
    (7, (3, 3, 3), None, [3, 2, 2]),
], ids=["agree-5", "agree-3", "agree-12", "original-refuses-what-fits"])
def test_discrete_places_what_fits(replicas: int, holds: tuple[int, ...], original, here) -> None:
    sites = [site(f"s{i}", "r1", vcpus) for i, vcpus in enumerate(holds, 1)]
    assert _original_discrete(replicas, holds) == original
    assert [count for _, count in spread(run(request(replicas, DISCRETE), sites=sites))] == here


def _original_discrete(replicas: int, holds: tuple[int, ...]) -> list[int] | None:
    """The original's discrete spreading (locationandoperator.go, then Schedule2's bind loop), as written."""
    total, left, shares = sum(holds), replicas, []
    for held in holds:
        share = min(max(int(replicas * held / total + 0.5), 1), held)
        shares.append(share)
        left -= share
        if left <= 0:
            break
    placed, out = 0, []
    for share in shares:
        take = min(share, replicas - placed)
        out.append(take)
        placed += take
    return out if placed == replicas else None


def set_flavor(status: str, zones: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["flavors.json"]["flavors"][0]["os_extra_specs"].update({"cond:operation:status": status,
                                                                     "cond:operation:az": zones})
    return change


# The original's getSupportFlavorsByNode on site1 (zone az1): `zone(flag)` pairs of cond:operation:az;
# sellout/abandon close the zone; an abandoned flavor sells only where a zone is listed open.
@pytest.mark.parametrize("status, zones, sold", [
    ("status1", "az1", True),                   # the seed's: no zone(flag) pair at all
    ("status1", "az1(sellout)", False),
    ("status1", "az2(normal),az1(abandon)", False),
    ("status1", "az1(normal)", True),
    ("status1", "az2(sellout)", True),
    ("abandon", "", False),
    ("abandon", "az1(normal)", True),
    ("abandon", "az2(normal)", False),
], ids=["seed", "sellout", "abandoned-zone", "open", "other-zone-closed", "abandoned", "abandoned-but-open-here",
        "abandoned-open-elsewhere"])
def test_flavor_sold_per_zone_as_the_original(tmp_path: Path, status: str, zones: str, sold: bool) -> None:
    answer = api(tmp_path, seed(tmp_path, set_flavor(status, zones))).post("/v1/allocations", json=body())
    assert answer.status_code == (201 if sold else 409), answer.get_json()
    if not sold:
        flags = ",".join(sorted(zones.split(","))) if "(" in zones else "none"  # reported by zone
        assert answer.get_json()["reasons"] == {
            "site1": f"Flavor: c6.large.2 is not sold in zone az1 of site1 (cond:operation:az {flags})"}
