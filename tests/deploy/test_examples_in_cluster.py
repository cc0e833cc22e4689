"""deploy/'s example pods on a real control plane set up as deploy/ sets it up: the state in the
cluster (the sample inventory imported as Sites), the site Nodes kept by the extender, kube-scheduler
with deploy/'s configuration. The demo VM is bound to a site of its region with its placement
written and a `Placed` Event; the plain pod is bound to a site node by kube-scheduler alone. (The
Deployment of VMs needs a controller-manager to make its pods: not run here.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from extender.domain.model import FLAVOR_ANNOTATION, REGION_ANNOTATION, SITE_LABEL
from tests.control_plane import ControlPlane, control_plane, find_binaries
from tests.scheduler_e2e import STATE_IN_CLUSTER, Extender, keep_state_in_cluster, running_scheduler, serve_extender
from tests.server import REPO

pytestmark = pytest.mark.process

NOT_READY = "node.kubernetes.io/not-ready"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, Extender]]:
    binaries, why = find_binaries()
    if binaries is None:
        pytest.skip(why)
    workdir = tmp_path_factory.mktemp("examples")
    # a control plane of its own: the sample inventory's Sites and Nodes must not meet other tests'
    with control_plane(binaries, workdir) as plane:
        keep_state_in_cluster(plane)
        with serve_extender(plane, workdir, settings=STATE_IN_CLUSTER) as extender:
            core = client.CoreV1Api(plane.api_client())
            ready_for_pods(core, expected=12)
            with running_scheduler(plane, extender, "kube-scheduler"):
                yield plane, extender


def ready_for_pods(core: client.CoreV1Api, expected: int) -> None:
    """Wait for the site Nodes the extender keeps, then do what the node lifecycle controller does for
    a Ready node (no controller-manager runs here): take off the not-ready taint the API server put on."""
    deadline = time.monotonic() + 60
    while len(nodes := core.list_node(label_selector=SITE_LABEL).items) < expected:
        assert time.monotonic() < deadline, f"{len(nodes)} site nodes after 60 s"
        time.sleep(0.2)
    for node in nodes:
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or ())
        kept = [{"key": t.key, "value": t.value, "effect": t.effect} for t in node.spec.taints or () if t.key != NOT_READY]
        core.patch_node(node.metadata.name, {"spec": {"taints": kept or None}})


def bound(core: client.CoreV1Api, name: str, timeout: float = 30) -> client.V1Pod:
    deadline = time.monotonic() + timeout
    while not (pod := core.read_namespaced_pod(name, "default")).spec.node_name:
        assert time.monotonic() < deadline, f"pod {name} not bound after {timeout:.0f} s: {pod.status.conditions}"
        time.sleep(0.2)
    return pod


def events(plane: ControlPlane) -> list[dict]:
    """`events.k8s.io/v1` Events of the default namespace, as JSON: the generated model refuses
    kube-scheduler's own, which have no eventTime."""
    return json.loads(plane.kubectl("get", "events.v1.events.k8s.io", "-n", "default", "-o", "json").stdout)["items"]


def test_the_demo_vm_is_placed_in_its_region_with_its_placement_and_an_event(deployed) -> None:
    plane, _ = deployed
    plane.kubectl("apply", "-f", str(REPO / "deploy" / "examples" / "vm-pod.yaml"))
    core = client.CoreV1Api(plane.api_client())
    pod = bound(core, "demovm")

    node = core.read_node(pod.spec.node_name)
    site = node.metadata.labels[SITE_LABEL]
    assert node.metadata.labels["topology.kubernetes.io/region"] == "region1"  # what the VM request asks
    assert pod.metadata.labels[SITE_LABEL] == site
    assert pod.metadata.annotations[REGION_ANNOTATION] == "region1"
    assert pod.metadata.annotations[FLAVOR_ANNOTATION] == "c6.large.2"
    deadline = time.monotonic() + 20
    while not (placed := [e for e in events(plane) if e["regarding"]["name"] == "demovm" and e["reason"] == "Placed"]):
        assert time.monotonic() < deadline, "no Placed event for demovm"
        time.sleep(0.2)
    assert placed[0]["note"].startswith(f"Placed on site {site} (region1/")


def test_the_plain_pod_is_bound_to_a_site_node_by_kube_scheduler_alone(deployed) -> None:
    plane, extender = deployed
    plane.kubectl("apply", "-f", str(REPO / "deploy" / "examples" / "plain-pod.yaml"))
    core = client.CoreV1Api(plane.api_client())
    pod = bound(core, "plain")

    assert SITE_LABEL in core.read_node(pod.spec.node_name).metadata.labels  # the profile keeps it to sites
    assert not (pod.metadata.annotations or {}).get(FLAVOR_ANNOTATION)
    assert [r for r in extender.records() if r.get("pod") == "default/plain"] == [], "the extender is never asked"
