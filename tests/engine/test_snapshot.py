"""Snapshot.build: what the inventory alone decides is indexed once; placements are aggregated per
site, pool, zone and resource type."""

from __future__ import annotations

from extender.domain.capacity import ANY_TYPE, Placed
from extender.engine.snapshot import Snapshot
from tests.builders import make_flavor, make_host, make_inventory, make_placement, make_site

GENERAL = make_flavor("g", vcpus=1, ram=4)
MEMORY = make_flavor("m", vcpus=2, ram=8, resource_type="memory")
GPU = make_flavor("x", vcpus=4, ram=16, resource_type="gpu")

# h1 serves general and memory, h2 memory only, h3 gpu only
SITE = make_site(hosts=[make_host("h1", types=["general", "memory"]), make_host("h2", types=["memory"]),
                        make_host("h3", types=["gpu"])])
INVENTORY = make_inventory(sites=[SITE, make_site("s2", az="z2")], flavors=[GENERAL, MEMORY, GPU])


def test_index_sums_the_hosts_of_each_resource_type() -> None:
    index = Snapshot.build(INVENTORY).index

    assert index.capacity("s1", "general").hosts == 1
    assert index.capacity("s1", "memory").cpu_total == 20  # h1 + h2, 10 vCPU × 1 each
    assert index.capacity("s1", ANY_TYPE).mem_free == 120
    assert index.capacity("s1", "nope").hosts == 0


def test_a_placement_is_taken_off_every_type_sharing_a_host_with_its_own() -> None:
    snapshot = Snapshot.build(INVENTORY, [
        make_placement(flavor="m", vcpus=2, ram=8),        # memory: h1 or h2 -> general (h1), memory, any
        make_placement(flavor="x", vcpus=4, ram=16),       # gpu: h3 only -> gpu, any
        make_placement(flavor="unknown", vcpus=1, ram=1),  # unknown flavor: every type
    ])

    assert snapshot.placed[("s1", "general")] == Placed(2, 3, 9)
    assert snapshot.placed[("s1", "memory")] == Placed(2, 3, 9)
    assert snapshot.placed[("s1", "gpu")] == Placed(2, 5, 17)
    assert snapshot.placed[("s1", ANY_TYPE)] == Placed(3, 7, 25)


def test_fullness_is_the_mean_used_share_over_all_hosts() -> None:
    # 30 vCPU and 120 GB; 4 vCPU and 16 GB placed -> 1 − (26/30 + 104/120)/2
    snapshot = Snapshot.build(INVENTORY, [make_placement(flavor="x", vcpus=4, ram=16)])

    assert abs(snapshot.fullness["s1"] - (1 - (26 / 30 + 104 / 120) / 2)) < 1e-9
    assert snapshot.fullness["s2"] == 0.0


def test_the_inventory_index_is_reused_while_the_inventory_is_the_same() -> None:
    first = Snapshot.build(INVENTORY)

    same = Snapshot.build(INVENTORY, [make_placement()], previous=first)
    other = Snapshot.build(make_inventory(sites=[SITE], flavors=[GENERAL]), previous=first)

    assert same.index is first.index
    assert other.index is not first.index and "s2" not in other.index.sites
