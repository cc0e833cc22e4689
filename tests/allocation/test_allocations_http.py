"""/v1/allocations over HTTP (Flask test client here; gunicorn and restarts in test_allocations_restart.py).

Expected answers are worked out from the sample inventory (policy/inventory/):
- region1 has site1 (az1), site2 (az2), site4 (az5, Sellout) and site5 (az6); the others are in
  region2..region4, so the sample request (region1, c6.large.2 = 2 vCPU / 4096 MB, 40 GB SAS) can go
  to site1, site2 and site5 only.
- site2 holds 2 such VMs: its one SAS pool is thick (no over-subscription), 4000 GB total with 3900
  provisioned: 100 GB, 2 x 40 (and RAM: (131072 - 118784) / 4096 = 3).
- site1: vCPU (64x2-16) + (64x2-0) + (48x1-8) = 280 -> 140 VMs; site5: RAM (131072-16384)/4096 = 28.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from extender.app import create_app
from extender.config.settings import Settings
from tests.conftest import FIXTURES, POLICY_DIR

SAMPLE = json.loads((FIXTURES / "global-scheduler-conf" / "sample_allocation_req_body.json").read_text())
REGION1_FEASIBLE = ["site1", "site2", "site5"]
SITE_AZ = {"site1": "az1", "site2": "az2", "site5": "az6"}


def sample(**changes) -> dict:
    """The seed's sample request with `allocation` keys replaced (selector keys via selector=...)."""
    body = json.loads(json.dumps(SAMPLE))
    body["allocation"].update(changes)
    return body


def on_site(site: str, replicas: int = 1) -> dict:
    body = sample(replicas=replicas)
    body["allocation"]["selector"]["node_id"] = site
    return body


def vm_args(nodes: list[str]) -> dict:
    """ExtenderArgs of a pod asking what the sample request's resource asks."""
    vm = {"flavors": [{"flavorID": "c6.large.2"}], "storage": {"SAS": 40},
          "resourceCommonInfo": {"selector": {"regions": [{"region": "region1"}]},
                                 "strategy": {"localStrategy": "centralize"}}}
    pod = {"metadata": {"name": "vm", "namespace": "default", "uid": "u1",
                        "annotations": {"site-extender.io/vm": json.dumps(vm)}}, "spec": {}}
    return {"Pod": pod, "Nodes": None, "NodeNames": nodes}


@pytest.fixture
def api(tmp_path: Path):
    app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, data_dir=tmp_path / "data"), "TESTING": True})
    return app.test_client()


def test_sample_request_gets_the_best_scored_feasible_site(api) -> None:
    passed = api.post("/filter", json=vm_args([f"site{i}" for i in range(1, 13)])).get_json()
    assert passed["NodeNames"] == REGION1_FEASIBLE
    scores = api.post("/prioritize", json=vm_args(REGION1_FEASIBLE)).get_json()
    best = max(scores, key=lambda s: s["Score"])["Host"]  # max keeps the first of equals: inventory order
    # centralize packs: LocalityStrategy (the heaviest weight) ranks the fullest site first. Mean used
    # share of vCPU and RAM: site2 (8/64 + 118784/131072) / 2 = 0.52, site1 (24/304 + 196608/917504) / 2
    # = 0.15, site5 (4/64 + 16384/131072) / 2 = 0.09. Not the inventory's first site: the order matters.
    assert best == "site2"

    answer = api.post("/v1/allocations", json=SAMPLE)
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    allocation_id = body["allocation"]["id"]
    assert answer.headers["Location"] == f"/v1/allocations/{allocation_id}"
    assert body == {"allocation": {"id": allocation_id, "resource_groups": [{
        "name": "RTC",
        "resources": [{"name": "rtc-name", "flavor_id": "c6.large.2", "count": 1}],
        "selected": {"node_id": best, "region": "region1", "availability_zone": SITE_AZ[best],
                     "site_id": best, "cluster_name": best},
    }]}}
    assert api.get(f"/v1/allocations/{allocation_id}").get_json() == body


@pytest.mark.parametrize("strategy, replicas, expected", [
    # site2 holds 2, site5 28, site1 140: discrete 3 over three sites -> one each
    ({"location_strategy": "discrete"}, 3, {"site1": 1, "site2": 1, "site5": 1}),
    # discrete 17 over 140, 2, 28 (170): quotas 14, 0.2, 2.8 -> 14, 0, 2, +1 by remainder (.8: site5) -> 14, 0, 3;
    # at least one each: site5 (3 vs 2.8) gives one to site2 -> 14, 1, 2
    ({"location_strategy": "discrete"}, 17, {"site1": 14, "site2": 1, "site5": 2}),
    # alone: region1 holds 170; every site of region1 again
    ({"location_strategy": "discrete", "region_strategy": "alone"}, 17, {"site1": 14, "site2": 1, "site5": 2}),
], ids=["discrete-3", "discrete-17", "alone-discrete-17"])
def test_strategies_on_the_sample_inventory(api, strategy: dict, replicas: int, expected: dict) -> None:
    body = sample(replicas=replicas)
    body["allocation"]["selector"]["strategy"] = strategy
    answer = api.post("/v1/allocations", json=body)
    assert answer.status_code == 201, answer.get_json()
    got: dict[str, int] = {}
    for group in answer.get_json()["allocation"]["resource_groups"]:
        got[group["selected"]["node_id"]] = got.get(group["selected"]["node_id"], 0) + 1
    assert got == expected


def test_centralize_fills_sites_in_score_order_up_to_what_each_holds(api) -> None:
    scores = api.post("/prioritize", json=vm_args(REGION1_FEASIBLE)).get_json()
    order = [s["Host"] for s in sorted(scores, key=lambda s: -s["Score"])]  # stable: inventory order on ties
    holds = {"site1": 140, "site2": 2, "site5": 28}
    replicas = holds[order[0]] + 1  # one more than the best site holds: the next one takes it
    answer = api.post("/v1/allocations", json=sample(replicas=replicas))
    assert answer.status_code == 201, answer.get_json()
    sites = [g["selected"]["node_id"] for g in answer.get_json()["allocation"]["resource_groups"]]
    assert sites == [order[0]] * holds[order[0]] + [order[1]]


def test_too_many_replicas_allocate_nothing_and_say_why(api) -> None:
    answer = api.post("/v1/allocations", json=sample(replicas=171))
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["error"] == "nothing allocated: 171 replica(s) of RTC asked, the sites can hold 170"
    assert body["reasons"]["site4"] == "SiteAvailability: site site4 is Sellout"
    assert body["reasons"]["site2"].startswith("holds 2 replica(s) of 1 VM(s) each; one more fails: Volume:")
    assert body["reasons"]["site3"] == "RegionAndAZ: site site3 is in region region2, the request wants region1"
    assert api.get("/v1/allocations").get_json() == {"allocations": []}


def test_allocate_uses_stock_and_delete_returns_it(api) -> None:
    def site2_passes() -> bool:
        return api.post("/filter", json=vm_args(["site2"])).get_json()["NodeNames"] == ["site2"]

    assert site2_passes()
    made = api.post("/v1/allocations", json=on_site("site2", replicas=2))
    assert made.status_code == 201, made.get_json()
    allocation_id = made.get_json()["allocation"]["id"]
    assert not site2_passes()  # 100 GB of SAS, 80 taken: /filter sees the allocation
    failed = api.post("/filter", json=vm_args(["site2"])).get_json()["FailedNodes"]["site2"]
    assert failed.startswith("Volume: SAS has 20 GB left in region1/az2 for site2")
    assert api.post("/v1/allocations", json=on_site("site2")).status_code == 409

    assert api.delete(f"/v1/allocations/{allocation_id}").status_code == 204
    assert site2_passes()
    assert api.get(f"/v1/allocations/{allocation_id}").status_code == 404
    assert api.delete(f"/v1/allocations/{allocation_id}").status_code == 404
    assert api.post("/v1/allocations", json=on_site("site2", replicas=2)).status_code == 201


def _bad(path: list, value) -> dict:
    body = sample()
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


RES = ["allocation", "resource_group", "resources", 0]


@pytest.mark.parametrize("body, field, message", [
    (_bad(["allocation", "replicas"], 0), "allocation.replicas", "must be > 0, got 0"),
    (_bad(["allocation", "replicas"], "two"), "allocation.replicas", "Expected `int`, got `str`"),
    (_bad(["allocation", "selector", "strategy", "location_strategy"], "spread"),
     "allocation.selector.strategy.location_strategy", "unknown strategy 'spread', expected one of centralize, discrete"),
    (_bad(["allocation", "selector", "strategy", "region_strategy"], "together"),
     "allocation.selector.strategy.region_strategy", "unknown strategy 'together', expected alone (or none)"),
    (_bad([*RES, "flavors", 0, "flavor_id"], "c9.huge"),
     "allocation.resource_group.resources[0].flavors[0].flavor_id", "unknown flavor 'c9.huge'"),
    (_bad([*RES, "storage"], {"NVME": 40}),
     "allocation.resource_group.resources[0].storage.NVME", "unknown volume type 'NVME'; known: SAS, SSD"),
    (_bad([*RES, "storage"], {"SAS": 0}), "allocation.resource_group.resources[0].storage.SAS", "must be > 0 GB, got 0"),
    (_bad([*RES, "count"], 0), "allocation.resource_group.resources[0].count", "must be > 0, got 0"),
    (_bad([*RES, "resource_type"], "container"), "allocation.resource_group.resources[0].resource_type",
     "unknown resource type 'container', expected one of vm"),
    (_bad(["allocation", "resource_group"], KeyError), "allocation", "Object missing required field `resource_group`"),
    (_bad(["allocation", "replicas"], 1_001), "allocation.replicas", "at most 1000, got 1001"),
    (_bad([*RES, "count"], 10_001), "allocation.replicas",
     "1 replicas of 10001 VMs each is 10001 VMs, at most 10000 in one allocation"),
    (_bad([*RES, "name"], "n" * 254), "allocation.resource_group.resources[0].name", "Expected `str` of length <= 253"),
    (_bad([*RES, "need_eips"], True), "allocation.resource_group.resources[0]",
     "unknown field need_eips (did you mean need_eip?)"),
    (_bad([*RES, "flavors"], [{"flavor_id": "c6.large.2"}] * 65), "allocation.resource_group.resources[0].flavors",
     "Expected `array` of length <= 64"),
    (_bad(["allocation", "resource_group", "resources"], []), "allocation.resource_group.resources",
     "must list at least one resource"),
], ids=["replicas-0", "replicas-type", "location-strategy", "region-strategy", "flavor", "storage-type",
        "storage-size", "count", "resource-type", "missing-group", "replicas-max", "vms-max", "name-max",
        "unknown-field", "flavors-max", "no-resources"])
def test_validation_answers_400_with_the_field_path(api, body: dict, field: str, message: str) -> None:
    answer = api.post("/v1/allocations", json=body)
    assert answer.status_code == 400
    got = answer.get_json()
    assert got["fields"] == [{"field": field, "message": message}]
    assert got["error"] == f"invalid allocation request: {field}: {message}"


def test_every_problem_is_listed_at_once(api) -> None:
    body = _bad(["allocation", "replicas"], -1)
    body["allocation"]["selector"]["strategy"]["location_strategy"] = "spread"
    fields = [f["field"] for f in api.post("/v1/allocations", json=body).get_json()["fields"]]
    assert fields == ["allocation.replicas", "allocation.selector.strategy.location_strategy"]


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"allocation": 1}'], ids=["empty", "truncated", "array", "scalar"])
def test_bodies_that_are_not_requests_answer_400(api, data: bytes) -> None:
    answer = api.post("/v1/allocations", data=data, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["error"].startswith("invalid allocation request: ")


def test_a_data_dir_that_cannot_be_written_is_said_and_the_extender_still_filters(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.ERROR, logger="extender.app"):
        app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, data_dir=blocker / "data"), "TESTING": True})
    assert caplog.messages == [f"allocation API unavailable until fixed: {blocker} (on the way to the data directory"
                               f" {blocker / 'data'}) is not a directory; set SITE_EXTENDER_DATA_DIR to a writable directory"]
    api = app.test_client()
    answer = api.post("/v1/allocations", json=SAMPLE)
    assert answer.status_code == 503
    assert answer.get_json()["error"].startswith(f"allocation store unavailable: cannot create the data directory {blocker / 'data'}")
    assert answer.get_json()["error"].endswith("set SITE_EXTENDER_DATA_DIR to a writable directory")
    assert api.post("/filter", json=vm_args(["site1"])).get_json()["NodeNames"] == ["site1"]


def test_put_allocates_under_the_id_asked_for_once(api) -> None:
    made = api.put("/v1/allocations/rtc-1", json=on_site("site2"))
    assert made.status_code == 201
    assert made.get_json()["allocation"]["id"] == "rtc-1"
    assert made.headers["Location"] == "/v1/allocations/rtc-1"
    again = api.put("/v1/allocations/rtc-1", json=on_site("site2"))  # a retry: nothing more is taken
    assert again.status_code == 409
    assert again.get_json() == {"error": "allocation rtc-1 exists; nothing new was allocated", "error_code": "GS.000007",
                                "error_message": "allocation rtc-1 exists; nothing new was allocated"}
    assert again.headers["Location"] == "/v1/allocations/rtc-1"
    assert len(api.get("/v1/allocations").get_json()["allocations"]) == 1
    assert api.put("/v1/allocations/rtc-2", json=on_site("site2")).status_code == 201  # site2 holds 2


def test_put_with_an_id_that_is_not_one(api) -> None:
    answer = api.put("/v1/allocations/-x", json=SAMPLE)
    assert answer.status_code == 400
    assert answer.get_json()["fields"] == [{"field": "id", "message": "'-x' is not an allocation id: 1 to 64 letters,"
                                            " digits, '.', '_' or '-', starting with a letter or digit"}]


@pytest.mark.parametrize("selector, site", [
    ({"regions": [{"region": "region1", "availability_zone": ["az6"]}]}, "site5"),
    ({"regions": [{"region": "region1"}], "operator": "opera3"}, "site5"),  # site1, site2: opera1; site4: Sellout
    ({"geo_location": {"city": "guangzhou"}}, "site2"),
    ({"regions": [{"region": "region1"}], "node_id": "site1"}, "site1"),
], ids=["availability-zone", "operator", "geo-location", "node-id"])
def test_the_selector_narrows_the_sites(api, selector: dict, site: str) -> None:
    body = sample(replicas=2)
    body["allocation"]["selector"] = {**selector, "strategy": {"location_strategy": "discrete"}}
    answer = api.post("/v1/allocations", json=body)
    assert answer.status_code == 201, answer.get_json()
    assert [g["selected"]["node_id"] for g in answer.get_json()["allocation"]["resource_groups"]] == [site, site]
