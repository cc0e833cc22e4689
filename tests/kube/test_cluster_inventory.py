"""The inventory in the cluster, on the real kube-apiserver: `site-extender import` applies a conf/
directory as Site and Region objects (dry run, idempotent), and an extender keeping its state in the
cluster (SITE_EXTENDER_STATE=cluster, with deploy/'s ServiceAccount and RBAC) decides from them: a
resource collector updating one site's used figures changes the next answers of /filter."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import POLICY_DIR
from tests.server import serve

pytestmark = pytest.mark.process

INVENTORY = POLICY_DIR / "inventory"
FILTER = json.loads((POLICY_DIR / "samples" / "filter-cache.json").read_text())
NODES = ("site1", "site2", "site3")


def site(k8s, name: str) -> dict:
    return json.loads(k8s.kubectl("get", "site", name, "-o", "json").stdout)


@pytest.fixture(scope="module")
def cluster(k8s):
    k8s.install_crds()
    k8s.apply_extender_access()
    return k8s


def test_a_dry_run_is_checked_by_the_server_and_stores_nothing(cluster) -> None:
    result = cluster.import_inventory(str(INVENTORY), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "region.site-extender.io/region1 created (server dry run)" in lines
    assert "site.site-extender.io/site1 created (server dry run)" in lines
    assert len(lines) == 4 + 12
    assert "NotFound" in cluster.kubectl("get", "site", "site1", check=False).stderr


def test_import_applies_the_directory_and_again_changes_nothing(cluster) -> None:
    first = cluster.import_inventory(str(INVENTORY))
    assert first.returncode == 0, first.stderr
    assert "site.site-extender.io/site4 created" in first.stdout.splitlines()
    versions = {n: site(cluster, n)["metadata"]["resourceVersion"] for n in ("site1", "site12")}
    again = cluster.import_inventory(str(INVENTORY))
    assert again.returncode == 0, again.stderr
    assert {line.rsplit(" ", 1)[1] for line in again.stdout.splitlines()} == {"unchanged"}
    assert {n: site(cluster, n)["metadata"]["resourceVersion"] for n in ("site1", "site12")} == versions
    row = cluster.kubectl("get", "site", "site4").stdout.splitlines()[1].split()
    assert row[:4] == ["site4", "region1", "az5", "Sellout"]


def test_import_of_a_broken_directory_says_what_is_wrong_and_writes_nothing(cluster, tmp_path) -> None:
    (tmp_path / "sites.json").write_text('{"sites": [{"id": "x"}]}')
    (tmp_path / "flavors.json").write_text('{"flavors": []}')
    result = cluster.import_inventory(str(tmp_path))
    assert result.returncode == 2
    assert "sites.json: Object missing required field `region` - at `$.sites[0]`" in result.stderr
    assert result.stdout == ""


def filter_answer(served) -> dict:
    answer = served.post("/filter", json.dumps(FILTER))
    assert answer.status == 200, answer.data
    return json.loads(answer.data)


def test_a_collector_updating_one_site_is_seen_by_the_next_filters(cluster, tmp_path) -> None:
    assert cluster.import_inventory(str(INVENTORY)).returncode == 0
    nodes = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": {"test": "cluster-inventory"}}}
             for n in NODES]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                           "items": nodes}))
    token = cluster.token_for("site-extender", "site-scheduler")
    env = {"SITE_EXTENDER_KUBE": "kubeconfig", "SITE_EXTENDER_STATE": "cluster", "SITE_EXTENDER_SITE_NODES": "false",
           "KUBECONFIG": str(cluster.kubeconfig_for_token(token, "cluster-inventory")),
           "SITE_EXTENDER_DATA_DIR": str(tmp_path / "data")}
    try:
        with serve(tmp_path, env=env, ready_path="/readyz") as served:
            ready = json.loads(served.get("/readyz").data)
            assert ready["policy"]["inventory"] == "cluster"
            assert ready["cluster"]["sites"] >= 12
            assert filter_answer(served)["NodeNames"] == ["site2", "site1"]

            # The collector: site1's hosts report their memory all used (its own field manager, the
            # status subresource, one site).
            hosts = site(cluster, "site1")["status"]["hosts"]
            site2 = site(cluster, "site2")
            status = {"apiVersion": "site-extender.io/v1alpha1", "kind": "Site", "metadata": {"name": "site1"},
                      "status": {"hosts": [{"name": h["name"], "totalVcpus": h["totalVcpus"],
                                            "totalMemory": h["totalMemory"], "usedMemory": h["totalMemory"]}
                                           for h in hosts]}}
            cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=collector",
                            "--subresource=status", "-f", "-", input=json.dumps(status))
            written = time.monotonic()
            while True:
                answer = filter_answer(served)
                if "site1" not in answer["NodeNames"] or time.monotonic() - written > 5:
                    break
                time.sleep(0.02)
            assert answer["NodeNames"] == ["site2"]
            reason = {**answer["FailedNodes"], **answer["FailedAndUnresolvableNodes"]}["site1"]
            assert reason.startswith("Flavor: c6.large.2 has 0 left at site1"), reason
            assert site(cluster, "site2") == site2, "the other sites are not rewritten"
            print(f"collector write to changed /filter answer: {time.monotonic() - written:.3f} s")
    finally:
        cluster.kubectl("delete", "node", *NODES, "--wait=false", check=False)
        assert cluster.import_inventory(str(INVENTORY)).returncode == 0  # site1 as imported, for other tests


def small_inventory(directory, *sites: tuple[str, str]) -> str:
    """An inventory of `sites` ((id, region) pairs), each region with one zone per site."""
    directory.mkdir(parents=True, exist_ok=True)
    zones: dict[str, list[str]] = {}
    for site_id, region in sites:
        zones.setdefault(region, []).append(f"{site_id}-az")
    (directory / "sites.json").write_text(json.dumps({"sites": [
        {"id": site_id, "region": region, "az": f"{site_id}-az"} for site_id, region in sites]}))
    (directory / "flavors.json").write_text(json.dumps({"flavors": [
        {"id": "pr.small", "region": region, "vcpus": 1, "ram": 1024} for region in zones]}))
    (directory / "region.yaml").write_text(json.dumps({"regions": [
        {"region": region, "availability_zones": azs} for region, azs in zones.items()]}))
    return str(directory)


def test_prune_deletes_what_an_earlier_import_made_and_the_directory_no_longer_names(cluster, tmp_path) -> None:
    mine = "--field-manager=pr-test"  # the sample inventory's import (another manager) stays out of it
    first = cluster.import_inventory(small_inventory(tmp_path / "one", ("pr-a", "pr-r1"), ("pr-b", "pr-r2")), mine)
    assert first.returncode == 0, first.stderr
    # a Site someone else made, in a region the import is about to drop
    cluster.kubectl("apply", "--server-side", "--field-manager=someone-else", "-f", "-", input=json.dumps({
        "apiVersion": "site-extender.io/v1alpha1", "kind": "Site", "metadata": {"name": "pr-foreign"},
        "spec": {"id": "pr-foreign", "region": "pr-r2", "zone": "pr-foreign-az"}}))
    smaller = small_inventory(tmp_path / "two", ("pr-a", "pr-r1"))

    dry = cluster.import_inventory(smaller, "--prune", "--dry-run", mine)
    assert dry.returncode == 0, dry.stderr
    assert "site.site-extender.io/pr-b pruned (server dry run)" in dry.stdout.splitlines()
    assert site(cluster, "pr-b")["spec"]["id"] == "pr-b"  # a dry run deletes nothing

    pruned = cluster.import_inventory(smaller, "--prune", mine)
    assert pruned.returncode == 0, pruned.stderr
    lines = pruned.stdout.splitlines()
    assert "site.site-extender.io/pr-a unchanged" in lines
    assert "site.site-extender.io/pr-b pruned" in lines
    assert "region.site-extender.io/pr-r2 kept: site pr-foreign is still in it" in lines
    assert "NotFound" in cluster.kubectl("get", "site", "pr-b", check=False).stderr
    assert site(cluster, "pr-foreign")["spec"]["region"] == "pr-r2"  # not the import's: never pruned
    assert not any("site1" in line for line in lines)  # nor the sample sites another manager's import made
    assert site(cluster, "site1")["spec"]["id"] == "site1"
    cluster.kubectl("delete", "site", "pr-foreign", "pr-a")
    cluster.kubectl("delete", "region", "pr-r1", "pr-r2")


def test_prune_never_deletes_a_site_that_still_holds_a_vm_and_writes_nothing(cluster, tmp_path) -> None:
    mine = "--field-manager=pr-test-vm"
    assert cluster.import_inventory(small_inventory(tmp_path / "one", ("pr-c", "pr-r3"), ("pr-d", "pr-r3")),
                          mine).returncode == 0
    cluster.kubectl("create", "namespace", "pr-vms", check=False)
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "vm", "namespace": "pr-vms", "labels": {"site-extender.io/site": "pr-d"}},
        "spec": {"schedulerName": "nobody", "containers": [{"name": "vm", "image": "registry.k8s.io/pause:3.10"}]}}))
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps({
        "apiVersion": "site-extender.io/v1alpha1", "kind": "Allocation",
        "metadata": {"name": "pr-held", "namespace": "site-extender"},
        "spec": {"id": "pr-held", "replicas": 1, "resourceGroups": [],
                 "placements": [{"key": "pr-held/0", "site": "pr-d", "flavor": "pr.small", "vcpus": 1, "ram": 1024}]}}))
    changed = small_inventory(tmp_path / "two", ("pr-c", "pr-r3"))
    (tmp_path / "two" / "sites.json").write_text(json.dumps({"sites": [
        {"id": "pr-c", "region": "pr-r3", "az": "pr-c-az", "status": "Sellout"}]}))

    result = cluster.import_inventory(changed, "--prune", mine)
    assert result.returncode == 2
    assert ("site pr-d is not in the directory but still holds allocation site-extender/pr-held, pod pr-vms/vm: "
            "not pruned") in result.stderr
    assert "nothing was written" in result.stderr
    assert result.stdout == ""
    assert site(cluster, "pr-d")["spec"]["id"] == "pr-d"
    assert site(cluster, "pr-c")["spec"]["status"] == "active"  # the apply did not happen either
    cluster.kubectl("delete", "namespace", "pr-vms", "--wait=false")
    cluster.kubectl("delete", "allocation", "pr-held", "-n", "site-extender")
    cluster.kubectl("delete", "site", "pr-c", "pr-d")
    cluster.kubectl("delete", "region", "pr-r3")
