"""The whole loop with the real binaries: kube-scheduler v1.36 with the configuration deploy/ ships, the
extender as `make run` starts it (`site-extender serve`, watching the control plane), the twelve sites
of policy/inventory as labelled nodes and 1,000 other nodes that kube-scheduler's own plugins find just
as feasible. What a user sees: a burst above one flavor's stock binds exactly the stock, each bound pod
carries its site label and placement annotations, the rest stay Pending with FailedScheduling events that
name the flavor; VM pods are sent to the extender once each, with every site and no other node. The
throughput ratio (VM pods against as many plain pods of the same profile) is printed, not asserted: the
figures are `make bench-e2e`'s (bench/RESULTS.md)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from kubernetes import client

from extender.app import EXTENSION_KEY, create_app
from extender.config.settings import Settings
from extender.domain.model import (
    FLAVOR_ANNOTATION,
    REGION_ANNOTATION,
    SITE_ANNOTATION,
    SITE_LABEL,
    ZONE_ANNOTATION,
)
from tests.conftest import POLICY_DIR
from tests.control_plane import ControlPlane
from tests.scheduler_e2e import (
    BindWatch,
    Cluster,
    Extender,
    create_pods,
    ensure_namespace,
    filters_per_pod,
    make_cluster,
    pod,
    remove_cluster,
    remove_pods,
    running_scheduler,
    site_node_count,
    time_to_bind,
    vm_request,
)

pytestmark = pytest.mark.process

OTHER_NODES = 1000
PODS = 40
"""Plain pods and VM pods each, for the printed ratio: enough to see it, few enough for `make test`."""
WAIT = 90.0


class Loop:
    def __init__(self, plane: ControlPlane, core: client.CoreV1Api, cluster: Cluster, namespace: str,
                 extender: Extender) -> None:
        self.plane, self.core, self.cluster, self.namespace, self.extender = plane, core, cluster, namespace, extender
        self.watch = BindWatch(core, namespace).start()

    def pods(self) -> dict[str, client.V1Pod]:
        return {p.metadata.name: p for p in self.core.list_namespaced_pod(self.namespace).items}

    def site_of(self, node_name: str) -> str | None:
        return (self.core.read_node(node_name).metadata.labels or {}).get(SITE_LABEL)

    def scheduling_failures(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for event in self.core.list_namespaced_event(self.namespace, field_selector="reason=FailedScheduling").items:
            found.setdefault(event.involved_object.name, []).append(event.message or "")
        return found


@pytest.fixture(scope="module")
def loop(k8s: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    from tests.scheduler_e2e import serve_extender

    core = client.CoreV1Api(k8s.api_client())
    run = f"e2e-{secrets.token_hex(3)}"
    cluster = make_cluster(core, run, OTHER_NODES)
    ensure_namespace(core, run)
    try:
        with serve_extender(k8s, tmp_path_factory.mktemp("extender")) as extender:
            with running_scheduler(k8s, extender, name=f"kube-scheduler-{run}"):
                loop = Loop(k8s, core, cluster, run, extender)
                yield loop
                loop.watch.close()
    finally:
        remove_pods(core, run)
        remove_cluster(core, cluster)


def stock_left(plane: ControlPlane, site_id: str, flavor_id: str, data_dir: Path) -> int:
    """What the site has left of the flavor now, with every pod bound in the cluster counted (other
    tests share the control plane): the extender's own view, from an app of its own."""
    with mock.patch.dict(os.environ, {"SITE_EXTENDER_KUBECONFIG": str(plane.kubeconfig)}):
        app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, kube="kubeconfig", data_dir=data_dir),
                          "TESTING": True})
    extender = app.extensions[EXTENSION_KEY]
    try:
        assert extender.cluster.wait_synced(30)
        policy, snapshot = extender.view()
        site = policy.inventory.sites[site_id]
        flavor = policy.inventory.flavor(site.region, flavor_id)
        assert flavor is not None
        return snapshot.flavor_stock(site, flavor).left
    finally:
        extender.cluster.close()


def test_a_burst_above_a_flavors_stock_binds_exactly_the_stock(loop: Loop, tmp_path: Path) -> None:
    # m6.xlarge.8 in region2 zone az7: site6 alone (12 of them in the sample inventory)
    stock = stock_left(loop.plane, "site6", "m6.xlarge.8", tmp_path)
    assert stock > 0
    request = vm_request("m6.xlarge.8", {"region2": ["az7"]})
    burst = [pod(f"burst-{i}", request) for i in range(stock + 4)]
    create_pods(loop.core, loop.namespace, burst)
    names = {p["metadata"]["name"] for p in burst}

    def settled() -> bool:
        pods = loop.pods()
        bound = {n for n in names if pods[n].spec.node_name}
        failed = loop.scheduling_failures()
        return len(bound) == stock and all(
            any("m6.xlarge.8" in m for m in failed.get(n, [])) for n in names - bound)

    deadline = time.monotonic() + WAIT
    while not settled():
        assert time.monotonic() < deadline, (loop.pods(), loop.scheduling_failures())
        time.sleep(0.2)
    time.sleep(2)  # the scheduler keeps retrying the rest: still nothing more may bind

    pods = loop.pods()
    bound = {n: pods[n] for n in names if pods[n].spec.node_name}
    assert len(bound) == stock
    for name, bound_pod in bound.items():
        assert loop.site_of(bound_pod.spec.node_name) == "site6", name
        assert bound_pod.metadata.labels[SITE_LABEL] == "site6", name
        annotations = bound_pod.metadata.annotations
        assert {k: annotations.get(k) for k in (SITE_ANNOTATION, REGION_ANNOTATION, ZONE_ANNOTATION,
                                                FLAVOR_ANNOTATION)} == {
            SITE_ANNOTATION: "site6", REGION_ANNOTATION: "region2", ZONE_ANNOTATION: "az7",
            FLAVOR_ANNOTATION: "m6.xlarge.8"}, name
    pending = names - bound.keys()
    assert len(pending) == 4
    failed = loop.scheduling_failures()
    for name in pending:
        assert pods[name].status.phase == "Pending"
        assert any("m6.xlarge.8" in message for message in failed[name]), failed[name]
        # the nodes that are not sites never reached the extender: kube-scheduler's NodeAffinity said no
        assert any("didn't match scheduler-enforced node affinity" in message for message in failed[name])


def test_vm_pods_are_sent_once_with_every_site_and_the_throughput_ratio_is_printed(
        loop: Loop, capsys: pytest.CaptureFixture[str]) -> None:
    sites = site_node_count(loop.core)
    plain = [pod(f"plain-{i}") for i in range(PODS)]
    vms = [pod(f"vm-{i}", vm_request("c6.large.2", {"region1": []})) for i in range(PODS)]

    plain_seconds = time_to_bind(loop.core, loop.watch, loop.namespace, plain, WAIT)
    vm_seconds = time_to_bind(loop.core, loop.watch, loop.namespace, vms, WAIT)

    # plenty of stock: each VM pod was filtered once, over every site node and no other node
    counts = filters_per_pod(loop.extender, loop.namespace, (p["metadata"]["name"] for p in vms))
    assert set(counts.values()) == {1}, {n: c for n, c in counts.items() if c != 1}
    asked = {r["nodes_in"] for r in loop.extender.decisions("filter", loop.namespace)
             if r["pod"].split("/", 1)[1] in counts}
    assert asked == {sites}
    # every pod of the profile went to a site, each VM with its site recorded
    for name, (_, seen) in loop.watch.bound.items():
        if name in counts:
            site = loop.site_of(seen["spec"]["nodeName"])
            assert site is not None and seen["metadata"]["labels"][SITE_LABEL] == site, name
            assert seen["metadata"]["annotations"][SITE_ANNOTATION] == site
    assert all(loop.site_of(loop.watch.bound[p["metadata"]["name"]][1]["spec"]["nodeName"]) for p in plain)

    with capsys.disabled():
        print(f"\nkube-scheduler end to end, {sites} site nodes and {OTHER_NODES:,} other nodes: "
              f"{PODS} plain pods bound in {plain_seconds:.2f} s, {PODS} VM pods in {vm_seconds:.2f} s, "
              f"plain s / VM s {plain_seconds / vm_seconds:.2f} (a burst too small for the throughput ratio: "
              f"make bench-e2e measures it)")
