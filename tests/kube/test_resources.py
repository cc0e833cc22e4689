"""The inventory as Site and Region objects and back: the same `Inventory` the files give."""

from __future__ import annotations

import msgspec
import pytest

from extender.domain.inventory import load_inventory
from extender.errors import InventoryError
from extender.kube.resources import (
    RegionObject,
    SiteObject,
    inventory_from_objects,
    inventory_objects,
    manifest,
    object_name,
)
from tests.conftest import FIXTURES, POLICY_DIR


def round_trip(inventory):
    objects = inventory_objects(inventory)
    # As the API server hands them back: JSON, decoded into the shapes the watch uses.
    sites = [msgspec.json.decode(msgspec.json.encode(o), type=SiteObject) for o in objects if isinstance(o, SiteObject)]
    regions = [msgspec.json.decode(msgspec.json.encode(o), type=RegionObject) for o in objects
               if isinstance(o, RegionObject)]
    return inventory_from_objects(sites, regions)


@pytest.mark.parametrize("directory", [POLICY_DIR / "inventory", FIXTURES / "global-scheduler-conf"],
                         ids=["sample", "global-scheduler-conf"])
def test_objects_give_back_the_inventory_the_files_give(directory) -> None:
    files = load_inventory(directory)
    cluster = round_trip(files)
    assert list(cluster.sites) == list(files.sites), "the files' order, as natural order of the ids"
    assert cluster.sites == files.sites
    assert cluster.flavors == files.flavors
    assert cluster.eip_pools == files.eip_pools
    assert sorted(cluster.volume_pools, key=repr) == sorted(files.volume_pools, key=repr)
    assert cluster.volume_types.keys() == files.volume_types.keys()
    assert cluster.regions == files.regions


def test_a_site_object_reads_as_kubectl_shows_it() -> None:
    site = load_inventory(POLICY_DIR / "inventory").sites["site1"]
    obj = [o for o in inventory_objects(load_inventory(POLICY_DIR / "inventory"))
           if isinstance(o, SiteObject) and o.spec.id == "site1"][0]
    spec = manifest(obj, "spec")
    assert spec["apiVersion"] == "site-extender.io/v1alpha1" and spec["kind"] == "Site"
    assert spec["metadata"] == {"name": "site1"}
    assert spec["spec"]["region"] == site.region and spec["spec"]["zone"] == site.az
    status = manifest(obj, "status")["status"]
    assert status["stock"]["hosts"] == len(site.hosts)
    assert status["stock"]["totalVcpus"] == sum(h.total_vcpus for h in site.hosts)
    assert set(status["hosts"][0]) >= {"name", "totalVcpus", "usedVcpus", "totalMemory", "usedMemory"}


@pytest.mark.parametrize(("key", "name"), [
    ("site1", "site1"),
    ("c6.large.2", "c6.large.2"),
    ("Site_A", "site-a-" + __import__("hashlib").sha256(b"Site_A").hexdigest()[:10]),
])
def test_object_names_are_the_ids_when_kubernetes_allows(key, name) -> None:
    assert object_name(key) == name
    assert object_name("Site_A") != object_name("site_a")


def test_two_sites_with_one_id_are_refused_naming_both_objects() -> None:
    inventory = load_inventory(POLICY_DIR / "inventory")
    objects = [o for o in inventory_objects(inventory) if isinstance(o, SiteObject)]
    twin = msgspec.structs.replace(objects[0], metadata=msgspec.structs.replace(objects[0].metadata, name="twin"))
    with pytest.raises(InventoryError) as refused:
        inventory_from_objects([*objects, twin], [])
    assert refused.value.problems == ["Site twin: spec.id 'site1' is also the id of Site site1"]


def test_objects_being_deleted_are_not_part_of_the_inventory() -> None:
    inventory = load_inventory(POLICY_DIR / "inventory")
    objects = [o for o in inventory_objects(inventory) if isinstance(o, SiteObject)]
    going = msgspec.structs.replace(objects[0], metadata=msgspec.structs.replace(
        objects[0].metadata, deletionTimestamp="2026-12-01T00:00:00Z"))
    assert "site1" not in inventory_from_objects([going, *objects[1:]], []).sites
