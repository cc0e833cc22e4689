"""What a bound pod uses up (accounting.pod_placement) and how reservations come and go."""

from __future__ import annotations

import json

import msgspec
import pytest

from extender.config.policy import load_policy
from extender.domain.accounting import missing_site_label, placement_annotations, pod_placement, site_labels
from extender.domain.model import node_ref
from extender.kube.reservations import Reservations
from extender.protocol.wire import Pod
from tests.builders import make_placement
from tests.conftest import POLICY_DIR
from tests.fake_apiserver import recorded

INVENTORY = load_policy(POLICY_DIR).inventory
SITE2 = node_ref("site2", {"site-extender.io/site": "site2", "topology.kubernetes.io/region": "region1"})


def pod(vm: dict | None = None, node: str = "site2", phase: str = "Running", annotations: dict | None = None,
        labels: dict | None = None, owner: str | None = None) -> Pod:
    raw = recorded("get-pod-bound.json")  # the recorded demovm: c6.large.2, needEIP
    meta = raw["metadata"]
    if vm is not None:
        meta["annotations"]["site-extender.io/vm"] = json.dumps(vm)
    meta["annotations"].update(annotations or {})
    meta["labels"] = labels or {}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "rs", "uid": owner, "controller": True}]
    raw["spec"]["nodeName"] = node
    raw["status"]["phase"] = phase
    return msgspec.convert(raw, Pod)


@pytest.mark.parametrize("the_pod, expected", [
    pytest.param(pod(), ("site2", "c6.large.2", 2, 4096, True, ""), id="recorded-demovm"),
    pytest.param(pod(annotations={"site-extender.io/flavor": "c6.xlarge.4"}),
                 ("site2", "c6.xlarge.4", 4, 16384, True, ""),
                 id="flavor-written-at-bind-wins"),
    pytest.param(pod({"flavors": [{"flavorID": "m6.large.8"}, {"flavorID": "c6.large.2"}]}),
                 ("site2", "m6.large.8", 2, 16384, False, ""), id="first-flavor-the-region-offers"),
    pytest.param(pod({"flavors": [{"flavorID": "nosuch"}]}), ("site2", "nosuch", 0, 0, False, ""),
                 id="unknown-flavor-counts-as-a-vm"),
    pytest.param(pod(owner="rs-uid"), ("site2", "c6.large.2", 2, 4096, True, "rs-uid"), id="group-from-controller"),
    pytest.param(pod(labels={"site-extender.io/group": "g1"}, owner="rs-uid"),
                 ("site2", "c6.large.2", 2, 4096, True, "g1"),
                 id="group-label-wins"),
    pytest.param(pod(phase="Succeeded"), None, id="succeeded-holds-nothing"),
    pytest.param(pod(phase="Failed"), None, id="failed-holds-nothing"),
    pytest.param(pod(node=""), None, id="unbound"),
    pytest.param(pod(annotations={"site-extender.io/vm": "{not json: ["}), None, id="unreadable-request"),
])
def test_a_bound_pod_uses(the_pod, expected) -> None:
    placement = pod_placement(INVENTORY, the_pod, SITE2)
    got = placement and (placement.site_id, placement.flavor_id, placement.vcpus, placement.ram,
                         placement.need_eip, placement.group)
    assert got == expected


def test_placement_metadata() -> None:
    assert placement_annotations("site1", "region1", "az1", "c6.large.2") == {
        "site-extender.io/site": "site1", "site-extender.io/region": "region1",
        "site-extender.io/availability-zone": "az1", "site-extender.io/flavor": "c6.large.2"}
    assert site_labels("site1") == {"site-extender.io/site": "site1"}


def _pod(node: str, annotations: dict | None, labels: dict | None) -> Pod:
    return msgspec.convert({"metadata": {"name": "p", "uid": "u", "annotations": annotations, "labels": labels},
                            "spec": {"nodeName": node}}, Pod)


@pytest.mark.parametrize(("node", "annotations", "labels", "missing"), [
    pytest.param("n1", {"site-extender.io/site": "site1"}, None, "site1", id="bound-without-label"),
    pytest.param("n1", {"site-extender.io/site": "site1"}, {"site-extender.io/site": "site2"}, "site1",
                 id="label-says-another-site"),
    pytest.param("n1", {"site-extender.io/site": "site1"}, {"site-extender.io/site": "site1"}, None,
                 id="labelled"),
    pytest.param("", {"site-extender.io/site": "site1"}, None, None, id="not-bound"),
    pytest.param("n1", None, None, None, id="no-placement-recorded"),
])
def test_missing_site_label(node, annotations, labels, missing) -> None:
    assert missing_site_label(_pod(node, annotations, labels)) == missing


def test_reservations_expire_and_release() -> None:
    now = [0.0]
    held = Reservations(ttl=60, clock=lambda: now[0])
    a, b = make_placement(key="a"), make_placement(key="b")
    held.reserve(a)
    now[0] = 30
    held.reserve(b)
    v1, placed = held.placements()
    assert [p.key for p in placed] == ["a", "b"]
    assert held.placements()[0] == v1

    now[0] = 60  # a's 60 s are up
    v2, placed = held.placements()
    assert [p.key for p in placed] == ["b"] and v2 != v1
    assert held.release("b") is True and held.release("b") is False
    assert held.placements()[1] == () and len(held) == 0
