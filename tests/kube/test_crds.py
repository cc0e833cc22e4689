"""deploy/crds against the real kube-apiserver: installed as `kubectl apply -k` would, good objects are
stored, bad ones are refused by the server with the field named, and `kubectl get` shows the columns."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.process

SITE = {
    "apiVersion": "site-extender.io/v1alpha1", "kind": "Site", "metadata": {"name": "crd-site-a"},
    "spec": {"id": "crd-site-a", "region": "region1", "zone": "az1", "status": "Sellout",
             "location": {"country": "china", "city": "shenzhen"}, "operator": {"id": "op1", "name": "unicom"},
             "eipPool": "region1-static", "attributes": {"exclusive_domains": "domain-a"}},
}
REGION = {
    "apiVersion": "site-extender.io/v1alpha1", "kind": "Region", "metadata": {"name": "crd-region-a"},
    "spec": {"region": "crd-region-a", "availabilityZones": ["az1", "az2"],
             "flavors": [{"id": "c6.large.2", "vcpus": 2, "ram": 4096, "disk": 40, "resourceType": "general"}],
             "volumeTypes": [{"id": "SAS", "name": "SAS"}]},
}
ALLOCATION = {
    "apiVersion": "site-extender.io/v1alpha1", "kind": "Allocation", "metadata": {"name": "rtc-1"},
    "spec": {"id": "rtc-1", "replicas": 2, "resourceGroups": [{"name": "RTC"}, {"name": "RTC"}],
             "placements": [{"key": "rtc-1/0", "site": "site1", "flavor": "c6.large.2", "vcpus": 2, "ram": 4096},
                            {"key": "rtc-1/1", "site": "site2", "flavor": "c6.large.2", "vcpus": 2, "ram": 4096,
                             "needEip": True, "storage": {"SAS": 40}}]},
}


@pytest.fixture(scope="module")
def cluster(k8s):
    k8s.install_crds()
    k8s.kubectl("create", "namespace", "crd-test")
    yield k8s
    k8s.kubectl("delete", "namespace", "crd-test", "--wait=false")
    k8s.kubectl("delete", "sites,regions", "-l", "test=crds", "--wait=false", check=False)


def apply(k8s, obj: dict, *extra: str, check: bool = True):
    obj = {**obj, "metadata": {**obj["metadata"], "labels": {"test": "crds"}}}
    return k8s.kubectl("apply", "--server-side", "--field-manager=test", *extra, "-f", "-", input=json.dumps(obj),
                       check=check)


def apply_status(k8s, obj: dict, status: dict, manager: str = "collector"):
    body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": {"name": obj["metadata"]["name"]},
            "status": status}
    return k8s.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={manager}", "--subresource=status",
                       *(["-n", "crd-test"] if obj["kind"] == "Allocation" else []), "-f", "-", input=json.dumps(body))


def table(k8s, *args: str) -> list[list[str]]:
    lines = k8s.kubectl("get", *args).stdout.strip().splitlines()
    return [line.split() for line in lines]


def test_the_crds_are_served_with_a_status_subresource(cluster) -> None:
    found = json.loads(cluster.kubectl("get", "--raw", "/apis/site-extender.io/v1alpha1").stdout)
    names = {r["name"] for r in found["resources"]}
    assert {"sites", "sites/status", "regions", "regions/status", "allocations", "allocations/status"} <= names


def test_kubectl_get_sites_shows_region_zone_status_and_stock(cluster) -> None:
    apply(cluster, SITE)
    apply_status(cluster, SITE, {"hosts": [
        {"name": "h1", "totalVcpus": 64, "usedVcpus": 10, "totalMemory": 262144, "usedMemory": 8192,
         "resourceTypes": ["general"]},
        {"name": "h2", "totalVcpus": 32, "usedVcpus": 2, "totalMemory": 131072, "usedMemory": 0}],
        "stock": {"hosts": 2, "totalVcpus": 96, "usedVcpus": 12, "totalMemory": 393216, "usedMemory": 8192}})
    rows = table(cluster, "sites", "crd-site-a")
    assert rows[0][:9] == ["NAME", "REGION", "ZONE", "STATUS", "HOSTS", "VCPU-USED", "VCPU-TOTAL", "MEM-USED",
                           "MEM-TOTAL"]
    assert rows[1][:9] == ["crd-site-a", "region1", "az1", "Sellout", "2", "12", "96", "8192", "393216"]


def test_a_collector_updates_one_host_without_rewriting_the_others(cluster) -> None:
    """hosts is a map keyed by name: server-side apply by another manager merges one entry."""
    apply(cluster, SITE)
    apply_status(cluster, SITE, {"hosts": [
        {"name": "h1", "totalVcpus": 64, "usedVcpus": 10, "totalMemory": 1024},
        {"name": "h2", "totalVcpus": 32, "usedVcpus": 2, "totalMemory": 1024}]}, manager="import")
    apply_status(cluster, SITE, {"hosts": [{"name": "h2", "totalVcpus": 32, "usedVcpus": 30, "totalMemory": 1024}]},
                 manager="collector-h2")
    site = json.loads(cluster.kubectl("get", "site", "crd-site-a", "-o", "json").stdout)
    used = {h["name"]: h["usedVcpus"] for h in site["status"]["hosts"]}
    assert used == {"h1": 10, "h2": 30}
    assert site["status"]["hosts"][0]["cpuAllocationRatio"] == 1, "the schema's default"


def test_kubectl_get_allocations_shows_replicas_sites_and_phase(cluster) -> None:
    obj = {**ALLOCATION, "metadata": {**ALLOCATION["metadata"], "namespace": "crd-test"}}
    apply(cluster, obj)
    apply_status(cluster, obj, {"phase": "Allocated", "sites": "site1,site2"})
    rows = table(cluster, "allocations", "-n", "crd-test")
    assert rows[0][:4] == ["NAME", "REPLICAS", "SITES", "PHASE"]
    assert rows[1][:4] == ["rtc-1", "2", "site1,site2", "Allocated"]


def test_a_region_holds_flavors_volume_types_and_pools(cluster) -> None:
    apply(cluster, REGION)
    apply_status(cluster, REGION, {
        "eipPools": [{"name": "static", "size": 16, "used": 3}],
        "volumePools": [{"availabilityZone": "az1", "name": "p1", "volumeType": "SAS", "totalCapacityGb": 1000,
                         "thinProvisioningSupport": True}]})
    region = json.loads(cluster.kubectl("get", "region", "crd-region-a", "-o", "json").stdout)
    assert region["spec"]["flavors"][0]["id"] == "c6.large.2"
    assert region["status"]["eipPools"] == [{"name": "static", "size": 16, "used": 3, "status": "active"}]
    assert region["status"]["volumePools"][0]["maxOverSubscriptionRatio"] == 1
    assert table(cluster, "regions", "crd-region-a")[1][:3] == ["crd-region-a", "crd-region-a", '["az1","az2"]']


@pytest.mark.parametrize(("obj", "change", "refusal"), [
    (SITE, {"spec": {"id": "crd-bad", "zone": "az1"}}, 'spec.region: Required value'),
    (SITE, {"spec": {"id": "", "region": "r", "zone": "az1"}}, "spec.id: Invalid value: \"\""),
    (SITE, {"spec": {"id": "crd-bad", "region": "r", "zone": "z", "attributes": {"a": 1}}},
     ".spec.attributes.a: expected string"),
    (SITE, {"spec": {"id": "crd-bad", "region": "r", "zone": "z", "colour": "red"}}, '.spec.colour: field not declared in schema'),
    (REGION, {"spec": {"region": "crd-bad", "flavors": [{"id": "f", "vcpus": 0, "ram": 1}]}},
     "spec.flavors[0].vcpus: Invalid value: 0: spec.flavors[0].vcpus in body should be greater than or equal to 1"),
    (REGION, {"spec": {"region": "crd-bad", "flavors": [{"id": "f", "vcpus": 1, "ram": 1},
                                                        {"id": "f", "vcpus": 2, "ram": 2}]}},
     '.spec.flavors: duplicate entries for key [id="f"]'),
    (ALLOCATION, {"spec": {**ALLOCATION["spec"], "id": "no spaces"}}, "spec.id: Invalid value: \"no spaces\""),
    (ALLOCATION, {"spec": {**ALLOCATION["spec"], "replicas": 0}}, "spec.replicas: Invalid value: 0"),
], ids=["site-without-region", "site-empty-id", "attribute-not-a-string", "unknown-field",
        "flavor-without-vcpus", "flavor-twice", "allocation-bad-id", "allocation-no-replicas"])
def test_the_server_refuses_bad_objects_naming_the_field(cluster, obj, change, refusal) -> None:
    bad = {**obj, **change, "metadata": {"name": "crd-bad",
                                         **({"namespace": "crd-test"} if obj["kind"] == "Allocation" else {})}}
    result = apply(cluster, bad, "--validate=strict", check=False)
    assert result.returncode != 0
    assert refusal in result.stderr


def test_status_that_breaks_the_schema_is_refused(cluster) -> None:
    apply(cluster, SITE)
    body = {"apiVersion": SITE["apiVersion"], "kind": "Site", "metadata": {"name": "crd-site-a"},
            "status": {"hosts": [{"name": "h1", "totalVcpus": 8, "usedVcpus": -1, "totalMemory": 1,
                                  "cpuAllocationRatio": 0}]}}
    result = cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=collector",
                             "--subresource=status", "-f", "-",
                             input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "status.hosts[0].usedVcpus: Invalid value: -1" in result.stderr
    assert "status.hosts[0].cpuAllocationRatio: Invalid value: 0" in result.stderr


def test_an_allocation_cannot_be_changed_only_deleted(cluster) -> None:
    obj = {**ALLOCATION, "metadata": {**ALLOCATION["metadata"], "namespace": "crd-test"}}
    apply(cluster, obj)
    changed = {**obj, "spec": {**obj["spec"], "replicas": 3}}
    result = apply(cluster, changed, check=False)
    assert result.returncode != 0
    assert "an allocation is immutable; delete it and allocate again" in result.stderr
