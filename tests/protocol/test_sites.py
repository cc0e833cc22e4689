"""`GET /v1/sites` and `/v1/sites/{id}`: the stock each site shows is the stock `/filter` decides on,
whatever is placed (pods, allocations), and the Prometheus gauges say the same."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec
import pytest

from extender.app import create_app
from extender.config.settings import Settings
from extender.domain.model import Placement
from extender.kube.view import BoundPod, StaticCluster
from extender.protocol.wire import Pod
from tests.builders import make_placement
from tests.conftest import POLICY_DIR, load_fixture

REPO_SAMPLES = POLICY_DIR / "samples"


class BoundCluster(StaticCluster):
    """Node names are site ids; `pods` are bound, each with its placement."""

    def __init__(self, pods: Sequence[tuple[Pod, Placement]]) -> None:
        self._bound = {placement.key: BoundPod(pod, placement.site_id) for pod, placement in pods}
        self._placements = tuple(placement for _, placement in pods)

    def placements(self) -> tuple[int, Sequence[Placement]]:
        return 1, self._placements

    def pods(self, uids: Iterable[str]) -> dict[str, BoundPod]:
        return {uid: self._bound[uid] for uid in uids if uid in self._bound}


def pod(name: str, uid: str) -> Pod:
    return msgspec.convert({"metadata": {"name": name, "namespace": "vms", "uid": uid}, "spec": {}}, Pod)


def large(site: str, key: str) -> Placement:
    return make_placement(site=site, flavor="c6.large.2", vcpus=2, ram=4096, key=key)


def client_for(tmp_path: Path, pods: Sequence[tuple[Pod, Placement]] = ()):
    settings = Settings(policy=POLICY_DIR, kube="none", data_dir=tmp_path / "data")
    return create_app({"SETTINGS": settings, "CLUSTER": BoundCluster(pods), "TESTING": True}).test_client()


def filter_site(client, site: dict, flavor: str) -> dict:
    vm = {"flavors": [{"flavorID": flavor}], "resourceCommonInfo": {"selector": {"regions": [{"region": site["region"]}]}}}
    args = load_fixture("scheduler/cache-mode/filter-0005.json")
    args["Pod"]["metadata"]["annotations"]["site-extender.io/vm"] = json.dumps(vm)
    return client.post("/filter", json={"Pod": args["Pod"], "NodeNames": [site["id"]]}).get_json()


def assert_filter_agrees(client) -> None:
    """For every site that takes VMs and every flavor it offers: /filter passes a pod asking for that
    flavor exactly when the stock shows some left, and otherwise says the same numbers."""
    checked = 0
    for site in client.get("/v1/sites").get_json()["sites"]:
        if not site["available"] or site["id"] == "site7":  # SiteAvailability, ExclusiveSite decide those
            continue
        for flavor in site["flavors"]:
            answer = filter_site(client, site, flavor["flavor"])
            if flavor["left"] >= 1:
                assert answer["NodeNames"] == [site["id"]], (site["id"], flavor, answer)
            else:
                reason = {**answer["FailedNodes"], **answer["FailedAndUnresolvableNodes"]}[site["id"]]
                assert reason.startswith("Flavor: "), reason
                if flavor["total"] > 0:
                    assert f"(stock {flavor['total']}, placed {flavor['placed']})" in reason
            checked += 1
    assert checked >= 40


def test_stock_is_what_filter_decides_on(tmp_path: Path) -> None:
    assert_filter_agrees(client_for(tmp_path))


def test_pods_and_allocations_use_stock_and_are_listed(tmp_path: Path) -> None:
    placed = [(pod(f"vm-{i}", f"uid-{i}"), large("site2", f"uid-{i}")) for i in range(2)]
    client = client_for(tmp_path, placed)
    before = client.get("/v1/sites/site2").get_json()
    assert [f for f in before["flavors"] if f["flavor"] == "c6.large.2"] == [
        {"flavor": "c6.large.2", "resource_type": "general", "vcpus": 2, "ram": 4096, "total": 3, "placed": 2, "left": 1}]

    rtc = (REPO_SAMPLES / "allocations" / "rtc.json").read_bytes()
    assert client.put("/v1/allocations/rtc-1", data=rtc, content_type="application/json").status_code == 201

    site2 = client.get("/v1/sites/site2").get_json()
    assert [f["left"] for f in site2["flavors"] if f["flavor"] == "c6.large.2"] == [0]
    assert site2["placed"] == {"vms": 3, "pods": 2, "allocations": 1, "reservations": 0}
    assert sorted((p["kind"], p["name"], p["flavor"]) for p in site2["placements"]) == [
        ("allocation", "rtc-1", "c6.large.2"), ("pod", "vms/vm-0", "c6.large.2"), ("pod", "vms/vm-1", "c6.large.2")]
    sas = next(v for v in site2["volumes"] if v["volume_type"] == "SAS")
    assert sas["placed_gb"] == 40 and sas["left_gb"] == sas["capacity_gb"] - 40
    listed = next(s for s in client.get("/v1/sites").get_json()["sites"] if s["id"] == "site2")
    assert "placements" not in listed and listed["placed"] == site2["placed"]
    assert_filter_agrees(client)


def test_an_unknown_site_is_a_404_that_says_so(tmp_path: Path) -> None:
    answer = client_for(tmp_path).get("/v1/sites/site99")
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "no site 'site99' in the inventory (12 sites; GET /v1/sites lists them)"}


def gauges(client) -> dict[tuple[str, str], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {(site, flavor): float(value) for flavor, site, value in
            re.findall(r'^site_extender_stock_left\{flavor="([^"]+)",site="([^"]+)"\} (\S+)$', text, re.M)}


def test_the_gauges_show_the_stock_left(tmp_path: Path) -> None:
    client = client_for(tmp_path, [(pod("vm-0", "uid-0"), large("site2", "uid-0"))])
    sites = client.get("/v1/sites").get_json()["sites"]
    expected = {(s["id"], f["flavor"]): float(f["left"] if s["available"] else 0) for s in sites for f in s["flavors"]}

    found = gauges(client)

    assert found == expected
    assert found[("site2", "c6.large.2")] == 2.0 and found[("site4", "c6.large.2")] == 0.0  # site4 is Sellout
    assert len(found) == sum(len(s["flavors"]) for s in sites)  # the inventory's pairs, nothing else


def test_the_gauges_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_EXTENDER_STOCK_METRICS_MAX_SERIES", "10")
    client = client_for(tmp_path)
    text = client.get("/metrics").get_data(as_text=True)
    assert len(gauges(client)) == 10
    total = sum(len(s["flavors"]) for s in client.get("/v1/sites").get_json()["sites"])
    assert f"site_extender_stock_series_dropped {float(total - 10)}" in text
