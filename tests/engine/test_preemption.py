"""decide.preempt_nodes: a node stays a preemption candidate only when evicting its victims lets the VM
fit under the policy's predicates. Pure: the default policy and the sample inventory, placements built
here (site2 takes 3 c6.large.2 VMs: 12 GB free, 4 GB each)."""

from __future__ import annotations

import pytest

from extender.config.policy import load_policy
from extender.domain.model import VMRequest, node_ref
from extender.engine import decide
from extender.engine.snapshot import Snapshot
from tests.builders import make_placement
from tests.conftest import POLICY_DIR

POLICY = load_policy(POLICY_DIR)
SITE2_FULL = [make_placement(site="site2", flavor="c6.large.2", vcpus=2, ram=4096, key=f"vm{i}") for i in range(3)]
SNAPSHOT = Snapshot.build(POLICY.inventory, SITE2_FULL)
LARGE = VMRequest(flavors=("c6.large.2",))


def node(name: str, region: str, zone: str):
    return node_ref(name, {"topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone})


SITE1, SITE2, SITE3 = node("site1", "region1", "az1"), node("site2", "region1", "az2"), node("site3", "region2", "az3")


@pytest.mark.parametrize("request_, victims, kept", [
    pytest.param(LARGE, [(SITE2, {"vm0"})], ["site2"], id="evicting-one-vm-frees-a-slot"),
    pytest.param(LARGE, [(SITE2, {"vm0", "vm1", "vm2"})], ["site2"], id="evicting-all-frees-slots"),
    pytest.param(LARGE, [(SITE2, {"plain-pod"})], [], id="evicting-a-non-vm-pod-frees-nothing-here"),
    pytest.param(LARGE, [(SITE2, {"vm0"}), (SITE2, set())], ["site2"], id="same-node-twice-judged-each"),
    pytest.param(LARGE, [(SITE1, {"plain-pod"})], ["site1"], id="fits-already-our-rules-do-not-object"),
    pytest.param(VMRequest(flavors=("c6.large.2",), regions=()), [(SITE3, {"x"}), (SITE2, {"vm1"})],
                 ["site3", "site2"], id="order-kept"),
    pytest.param(VMRequest(flavors=("m6.large.8",)), [(SITE2, {"vm0", "vm1", "vm2"})], [],
                 id="a-flavor-the-site-cannot-hold-even-empty"),
    pytest.param(None, [(SITE2, {"plain-pod"}), (SITE1, {"x"})], ["site2", "site1"], id="not-a-vm-pod-no-opinion"),
])
def test_preempt_keeps_exactly_the_nodes_where_eviction_helps(request_, victims, kept) -> None:
    assert decide.preempt_nodes(POLICY, SNAPSHOT, request_, [(n, frozenset(v)) for n, v in victims]) == kept


def test_a_region_the_vm_does_not_want_is_never_kept() -> None:
    from extender.domain.model import RegionSelector

    in_region1 = VMRequest(flavors=("c6.large.2",), regions=(RegionSelector("region1"),))
    victims = [(SITE3, frozenset({"x"})), (SITE2, frozenset({"vm2"}))]
    assert decide.preempt_nodes(POLICY, SNAPSHOT, in_region1, victims) == ["site2"]


def test_eviction_leaves_the_snapshot_untouched() -> None:
    decide.preempt_nodes(POLICY, SNAPSHOT, LARGE, [(SITE2, frozenset({"vm0"}))])
    assert SNAPSHOT.usage("site2").vms == 3
    assert decide.without(SNAPSHOT, frozenset({"nothing"})) is SNAPSHOT
