"""Preemption end to end: the real kube-scheduler (deploy/'s configuration) with the extender under
gunicorn, on the real kube-apiserver.

Site nodes advertise what the site-node keeper gives them (`site_nodes.advertise`, which carries
`site_resources.node_resources`) and VM pods request `site_resources.vm_requests`,
so kube-scheduler's DefaultPreemption sees a full site and proposes victims; the extender's /preempt
keeps a node only if the VM then fits under the site rules. No controller-manager or kubelet runs: the
test makes the PriorityClasses, sets the PDB's status as the disruption controller would, and
force-deletes the victims the scheduler marked as terminating, as a kubelet would finish them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from extender.config.policy import load_policy
from extender.domain.site_resources import container_resources, vm_requests
from extender.domain.vmrequest import parse_vm_request
from extender.kube.site_nodes import OWNER_LABEL, advertise
from tests.conftest import POLICY_DIR
from tests.server import REPO, serve

pytestmark = pytest.mark.process

INVENTORY = load_policy(POLICY_DIR).inventory
SCHEDULER = "site-scheduler"
GPU = "p2s.2xlarge.8"
"""Offered in region1 only at site1 (its one gpu host): stock 4."""
SITES = ("site1", "site2", "site3")
"""site2 (region1, no gpu host) and site3 (region2) stand beside site1: neither can take a GPU VM."""
TEST_LABEL = "site-extender.io/e2e"
WAIT = 30.0
T = TypeVar("T")


def node_name(site: str) -> str:
    return f"preempt-{site}"


def vm_annotation(region: str) -> str:
    return json.dumps({"flavors": [{"flavorID": GPU}],
                       "resourceCommonInfo": {"selector": {"regions": [{"region": region}]}}})


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT,
             explain: Callable[[], str] = lambda: "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")
        time.sleep(0.2)


@dataclass
class Cluster:
    core: client.CoreV1Api
    policy: client.PolicyV1Api
    namespace: str
    scheduler_log: Callable[[], str]
    extender_log: Callable[[], str]

    def vm_pod(self, name: str, priority_class: str | None, region: str = "region1",
               labels: dict[str, str] | None = None) -> client.V1Pod:
        """A GPU VM pod: the annotation is the VM request, the container requests what `vm_requests` says."""
        annotation = vm_annotation(region)
        request = parse_vm_request(json.loads(annotation), INVENTORY.flavor_ids())
        body = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}, "annotations": {"site-extender.io/vm": annotation}},
            "spec": {
                "schedulerName": SCHEDULER,
                "nodeSelector": {TEST_LABEL: self.namespace},
                **({"priorityClassName": priority_class} if priority_class else {}),
                "containers": [{"name": "vm", "image": "registry.k8s.io/pause:3.10",
                                "resources": container_resources(vm_requests(request, INVENTORY))}],
            },
        }
        return self.core.create_namespaced_pod(self.namespace, body)

    def pods(self) -> dict[str, client.V1Pod]:
        return {p.metadata.name: p for p in self.core.list_namespaced_pod(self.namespace).items}

    def bound(self, names: list[str]) -> dict[str, str] | None:
        """{pod: node} once every pod named is bound, else None."""
        pods = self.pods()
        nodes = {name: pods[name].spec.node_name for name in names if name in pods}
        return nodes if len(nodes) == len(names) and all(nodes.values()) else None

    def fill_site1(self, pods: dict[str, tuple[str | None, dict[str, str]]]) -> None:
        """Create the pods (name: priority class, labels) one by one, each bound before the next."""
        for name, (priority_class, labels) in pods.items():
            self.vm_pod(name, priority_class, labels=labels)
            nodes = wait_for(f"{name} bound", lambda: self.bound([name]), explain=self.explain)
            assert nodes == {name: node_name("site1")}, self.extender_log()[-3000:]

    def explain(self) -> str:
        """The namespace's events and the ends of both logs, for a failed wait."""
        events = "\n".join(f"{e.involved_object.name}: {e.reason}: {e.message}"
                           for e in self.core.list_namespaced_event(self.namespace).items)
        return (f"events:\n{events}\nscheduler log:\n{self.scheduler_log()[-4000:]}\n"
                f"extender log:\n{self.extender_log()[-3000:]}")

    def terminating(self) -> list[str]:
        return sorted(n for n, p in self.pods().items() if p.metadata.deletion_timestamp)

    def finish_terminating(self) -> list[str]:
        """Force-delete the pods the scheduler is evicting (what the kubelet would confirm); their names."""
        names = self.terminating()
        for name in names:
            self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        return names

    def failed_scheduling(self, pod: str) -> str | None:
        """The message of the first FailedScheduling event of `pod`."""
        events = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={pod}").items
        messages = [e.message for e in events if e.reason == "FailedScheduling"]
        return messages[0] if messages else None

    def preempt_decisions(self, pod: str) -> list[tuple[int, int]]:
        """(nodes asked, nodes kept) of each /preempt the extender answered about `pod`, from its log."""
        lines = (json.loads(line) for line in self.extender_log().splitlines() if line.startswith("{"))
        return [(d["nodes_in"], d["nodes_out"]) for d in lines
                if d.get("verb") == "preempt" and d.get("pod") == f"{self.namespace}/{pod}"]

    def assert_nothing_evicted(self, pod: str) -> None:
        """Nothing terminating, every other pod still bound, `pod` pending and nominated nowhere."""
        time.sleep(1)  # the scheduler deletes victims after it reports; give a wrong eviction time to show
        assert self.terminating() == []
        pods = self.pods()
        assert {n: p.spec.node_name for n, p in pods.items() if n != pod} == dict.fromkeys(
            (n for n in pods if n != pod), node_name("site1"))
        assert (pods[pod].spec.node_name, pods[pod].status.nominated_node_name) == (None, None)


def scheduler_config(extender_url: str) -> dict:
    """deploy/'s configuration, pointed at the extender under test and without leader election."""
    config = yaml.safe_load((REPO / "deploy" / "base" / "scheduler-config.yaml").read_text())
    config["leaderElection"] = {"leaderElect": False}
    [extender] = config["extenders"]
    extender["urlPrefix"] = extender_url
    return config


def make_node(core: client.CoreV1Api, site: str, tag: str) -> None:
    """The site's node as the site-node keeper describes it (`site_nodes.advertise`: labels, and the
    site's figures among its capacity), under a name of this test's and without the keeper's owner
    label, so that no keeper ever takes it for its own."""
    shape = advertise(INVENTORY.sites[site])
    name = node_name(site)
    labels = {k: v for k, v in shape.labels.items() if k != OWNER_LABEL}
    core.create_node({"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": name, "labels": {**labels, TEST_LABEL: tag}}})
    resources = dict(shape.capacity)
    status = {"capacity": resources, "allocatable": resources,
              "conditions": [{"type": "Ready", "status": "True", "reason": "SiteReady",
                              "lastHeartbeatTime": None, "lastTransitionTime": None}]}
    core.patch_node_status(name, {"status": status})
    # The admission plugin TaintNodesByCondition taints a new node not-ready; the node lifecycle
    # controller would lift the taint once the node reports Ready.
    core.patch_node(name, {"spec": {"taints": None}})


@pytest.fixture(scope="module")
def cluster(k8s, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tag = f"preempt-{uuid.uuid4().hex[:6]}"
    with k8s.api_client() as api:
        core, scheduling, policy = client.CoreV1Api(api), client.SchedulingV1Api(api), client.PolicyV1Api(api)
        core.create_namespace({"metadata": {"name": tag}})
        for name, value in ((f"{tag}-low", 100), (f"{tag}-mid", 200), (f"{tag}-high", 1000)):
            scheduling.create_priority_class({"metadata": {"name": name}, "value": value})
        for site in SITES:
            make_node(core, site, tag)
        tmp = tmp_path_factory.mktemp("preempt")
        env = {"SITE_EXTENDER_KUBE": "kubeconfig", "SITE_EXTENDER_KUBECONFIG": str(k8s.kubeconfig)}
        try:
            with serve(tmp, env=env, ready_path="/readyz") as extender:
                with k8s.scheduler(scheduler_config(extender.url), name=f"scheduler-{tag}") as scheduler:
                    yield Cluster(core, policy, tag, lambda: k8s.log(f"scheduler-{tag}"), extender.log)
                    assert scheduler.poll() is None, k8s.log(f"scheduler-{tag}")[-3000:]
        finally:
            core.delete_namespace(tag)
            for pod in core.list_namespaced_pod(tag).items:
                core.delete_namespaced_pod(pod.metadata.name, tag, grace_period_seconds=0)
            for site in SITES:
                core.delete_node(node_name(site))
            for suffix in ("low", "mid", "high"):
                scheduling.delete_priority_class(f"{tag}-{suffix}")


@pytest.fixture
def fresh(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with no pod left in the test's namespace afterwards."""
    yield cluster
    for pod in cluster.core.list_namespaced_pod(cluster.namespace).items:
        cluster.core.delete_namespaced_pod(pod.metadata.name, cluster.namespace, grace_period_seconds=0)
    for pdb in cluster.policy.list_namespaced_pod_disruption_budget(cluster.namespace).items:
        cluster.policy.delete_namespaced_pod_disruption_budget(pdb.metadata.name, cluster.namespace)
    wait_for("the namespace emptied", lambda: not cluster.pods() or None, timeout=10)


def low_vms(cluster: Cluster, count: int = 4) -> dict[str, tuple[str | None, dict[str, str]]]:
    return {f"low-{i}": (f"{cluster.namespace}-low", {}) for i in range(count)}


def test_a_high_priority_vm_evicts_one_low_priority_vm_at_the_full_site_and_binds_there(fresh: Cluster) -> None:
    cluster = fresh
    cluster.fill_site1(low_vms(cluster))
    cluster.vm_pod("high", f"{cluster.namespace}-high")

    evicted = wait_for("the scheduler to evict a victim", cluster.finish_terminating, explain=cluster.explain)
    assert len(evicted) == 1 and evicted[0].startswith("low-"), evicted
    nodes = wait_for("the preemptor bound", lambda: cluster.bound(["high"]), explain=cluster.explain)
    assert nodes == {"high": node_name("site1")}
    assert cluster.preempt_decisions("high") == [(1, 1)]  # kube-scheduler proposed site1; the extender agreed
    pods = cluster.pods()
    assert pods["high"].metadata.annotations["site-extender.io/site"] == "site1"
    stayed = {f"low-{i}" for i in range(4)} - set(evicted)
    assert {n: (p.spec.node_name, p.metadata.deletion_timestamp) for n, p in pods.items() if n != "high"} == {
        name: (node_name("site1"), None) for name in stayed}


def test_an_equal_priority_vm_evicts_nothing(fresh: Cluster) -> None:
    cluster = fresh
    cluster.fill_site1(low_vms(cluster))
    cluster.vm_pod("equal", f"{cluster.namespace}-low")

    message = wait_for("the scheduler's word", lambda: cluster.failed_scheduling("equal"), explain=cluster.explain)
    assert message.endswith("preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
                            "2 Preemption is not helpful for scheduling."), message
    cluster.assert_nothing_evicted("equal")
    assert cluster.preempt_decisions("equal") == []


def test_a_vm_for_another_region_evicts_nothing(fresh: Cluster) -> None:
    """region3 offers the GPU flavor, at none of these nodes: by its figures alone kube-scheduler would
    evict at site1, where they fit once the low VMs are gone; the extender's /preempt drops site1."""
    cluster = fresh
    cluster.fill_site1(low_vms(cluster))
    cluster.vm_pod("elsewhere", f"{cluster.namespace}-high", region="region3")

    decisions = wait_for("the extender's /preempt", lambda: cluster.preempt_decisions("elsewhere"),
                         explain=cluster.explain)
    assert decisions[0] == (1, 0)
    message = wait_for("the scheduler's word", lambda: cluster.failed_scheduling("elsewhere"), explain=cluster.explain)
    assert message.endswith("preemption: no candidate node for preemption"), message
    cluster.assert_nothing_evicted("elsewhere")


def test_a_victim_covered_by_a_pdb_is_spared_when_another_will_do(fresh: Cluster) -> None:
    """Without the PDB, the lowest-priority VM (`guarded`) would be the victim; with it, the next one."""
    cluster = fresh
    cluster.policy.create_namespaced_pod_disruption_budget(cluster.namespace, {
        "metadata": {"name": "guarded"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}})
    # What the disruption controller would write: the one guarded pod may not go.
    cluster.policy.patch_namespaced_pod_disruption_budget_status("guarded", cluster.namespace, {"status": {
        "observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1,
        "expectedPods": 1}})
    low, mid = f"{cluster.namespace}-low", f"{cluster.namespace}-mid"
    cluster.fill_site1({"guarded": (None, {"app": "guarded"}), "low-a": (low, {}), "mid-a": (mid, {}),
                        "mid-b": (mid, {})})
    cluster.vm_pod("high", f"{cluster.namespace}-high")

    evicted = wait_for("the scheduler to evict a victim", cluster.finish_terminating, explain=cluster.explain)
    assert evicted == ["low-a"]
    assert wait_for("the preemptor bound", lambda: cluster.bound(["high"]), explain=cluster.explain) == {"high": node_name("site1")}
    assert cluster.bound(["guarded", "mid-a", "mid-b"]) == dict.fromkeys(["guarded", "mid-a", "mid-b"],
                                                                         node_name("site1"))
