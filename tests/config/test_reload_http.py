"""The policy and inventory reload when their ConfigMaps change, as kubelet changes a mount (a new
timestamped directory, then an atomic `..data` symlink swap). A policy that fails validation keeps
the last good one serving, and says why in /readyz and the metrics."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.metrics_support import scrape, value
from tests.server import REPO, Served, serve

pytestmark = pytest.mark.process

POLICY = (REPO / "policy" / "policy.yaml").read_text()
INVENTORY = REPO / "policy" / "inventory"
PLAIN_BODY = (REPO / "policy" / "samples" / "filter-plain-pod.json").read_bytes()
CACHE_BODY = (REPO / "policy" / "samples" / "filter-cache.json").read_bytes()


class ConfigMapMount:
    """A directory as kubelet projects a ConfigMap: `key -> ..data/key`, `..data -> ..<timestamp>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.version = 0

    def publish(self, files: Mapping[str, str | bytes]) -> None:
        self.version += 1
        target = self.root / f"..2026_11_23_10_00_{self.version:02d}.{os.getpid()}"
        target.mkdir()
        for key, content in files.items():
            (target / key).write_bytes(content.encode() if isinstance(content, str) else content)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(target.name)
        os.replace(tmp, self.root / "..data")
        for key in files:
            if not (self.root / key).is_symlink():
                (self.root / key).symlink_to(f"..data/{key}")
        for old in self.root.glob("..2026_*"):  # kubelet removes the previous version
            if old != target:
                shutil.rmtree(old)


def inventory_files(**overrides: str) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in INVENTORY.iterdir()}
    files.update({k: v.encode() for k, v in overrides.items()})
    return files


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("configmaps")
    policy, inventory = ConfigMapMount(base / "policy"), ConfigMapMount(base / "inventory")
    policy.publish({"policy.yaml": POLICY})
    inventory.publish(inventory_files())
    env = {"SITE_EXTENDER_POLICY": str(policy.root), "SITE_EXTENDER_INVENTORY": str(inventory.root),
           "SITE_EXTENDER_RELOAD_INTERVAL": "0.1"}
    with serve(base, env=env) as served:
        yield served, policy, inventory


def readyz(served: Served) -> tuple[int, dict]:
    response = served.get("/readyz")
    return response.status, json.loads(response.data)


def wait_for_reloads(served: Served, reloads: int) -> dict:
    deadline = time.monotonic() + 10
    while True:
        status, detail = readyz(served)
        if detail["policy"]["reloads"] >= reloads or time.monotonic() > deadline:
            return detail
        time.sleep(0.05)


def filter_(served: Served, body: bytes) -> dict:
    response = served.post("/filter", body)
    assert response.status == 200
    return json.loads(response.data)


def test_good_bad_and_fixed_policy_through_symlink_swaps(mounted) -> None:
    served, policy, _ = mounted
    assert filter_(served, PLAIN_BODY)["NodeNames"] == ["site1"]

    # 1. A valid change is picked up.
    policy.publish({"policy.yaml": POLICY.replace("nonVMPods: pass", "nonVMPods: reject")})
    detail = wait_for_reloads(served, 1)
    assert detail["policy"]["generation"] == 2 and detail["policy"]["last_reload_error"] is None
    rejected = filter_(served, PLAIN_BODY)
    assert rejected["NodeNames"] == [] and list(rejected["FailedAndUnresolvableNodes"]) == ["site1"]

    # 2. An invalid one is refused: the last good policy keeps serving, /readyz and metrics say why.
    policy.publish({"policy.yaml": POLICY.replace("- name: ExclusiveSite", "- name: ExclusivSite")})
    detail = wait_for_reloads(served, 2)
    status, _ = readyz(served)
    assert status == 200
    assert detail["policy"]["generation"] == 2
    assert "predicates[1].name: unknown predicate 'ExclusivSite'" in detail["policy"]["last_reload_error"]
    assert detail["policy"]["reload_errors"] == 1
    assert filter_(served, PLAIN_BODY) == rejected
    samples = scrape(served)
    assert value(samples, "site_extender_policy_reloads_total", result="success") == 1
    assert value(samples, "site_extender_policy_reloads_total", result="failure") == 1
    assert value(samples, "site_extender_policy_last_reload_success") == 0
    assert "policy reload failed, keeping the last good policy" in served.log()

    # 3. Fixed again: served, the error is gone.
    policy.publish({"policy.yaml": POLICY})
    detail = wait_for_reloads(served, 3)
    assert detail["policy"]["generation"] == 3 and detail["policy"]["last_reload_error"] is None
    assert filter_(served, PLAIN_BODY)["NodeNames"] == ["site1"]
    assert value(scrape(served), "site_extender_policy_last_reload_success") == 1


@pytest.mark.parametrize(("text", "error"), [
    ("", "the policy is empty"),
    (POLICY[:POLICY.index("predicates:")], "the policy is empty"),  # cut short: its comments only
    (POLICY.replace("  weight: 4", "  weigth: 4"), "unknown field weigth (did you mean weight?)"),
], ids=["empty", "truncated", "misspelled-key"])
def test_a_policy_that_would_let_every_site_pass_keeps_the_last_good_one(mounted, text: str, error: str) -> None:
    served, policy, _ = mounted
    before = wait_for_reloads(served, 0)["policy"]
    sellout = {"Pod": json.loads(CACHE_BODY)["Pod"], "NodeNames": ["site4", "site9"]}

    policy.publish({"policy.yaml": text})
    detail = wait_for_reloads(served, before["reloads"] + 1)

    assert error in detail["policy"]["last_reload_error"]
    assert detail["policy"]["generation"] == before["generation"]
    answer = filter_(served, json.dumps(sellout).encode())
    assert answer["NodeNames"] == []
    assert set(answer["FailedAndUnresolvableNodes"]) == {"site4", "site9"}
    policy.publish({"policy.yaml": POLICY})
    wait_for_reloads(served, before["reloads"] + 2)


def test_inventory_change_is_picked_up(mounted) -> None:
    served, _, inventory = mounted
    before = wait_for_reloads(served, 0)["policy"]["reloads"]
    sites = json.loads((INVENTORY / "sites.json").read_text())
    for site in sites["sites"]:
        if site["id"] == "site2":
            site["status"] = "Offline"

    inventory.publish(inventory_files(**{"sites.json": json.dumps(sites)}))
    wait_for_reloads(served, before + 1)

    answer = filter_(served, CACHE_BODY)
    assert answer["NodeNames"] == ["site1"]
    assert answer["FailedAndUnresolvableNodes"]["site2"] == "SiteAvailability: site site2 is Offline"
