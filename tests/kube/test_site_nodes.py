"""Site nodes on the real kube-apiserver: two extenders elect one keeper on a Lease; it keeps one Node
per site (labels, site-extender.io/vm, Ready, a heartbeat Lease in kube-node-lease, NoSchedule while
the site is Sellout), deletes the Node of a site that left the inventory, never a Node it did not
create; killed, the other takes the heartbeats over before any node lease runs out."""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import ExitStack
from datetime import datetime

import pytest

from extender.domain.model import Site
from extender.kube.site_nodes import NODE_LEASE_SECONDS, Advertised, advertise
from tests.builders import make_host
from tests.server import serve

pytestmark = pytest.mark.process

LEASE_SECONDS = 4
SITES = {"sites": [
    {"id": "sn-a", "region": "sn-region", "az": "sn-az1"},
    {"id": "sn-b", "region": "sn-region", "az": "sn-az2", "status": "Sellout"},
    {"id": "sn-foreign", "region": "sn-region", "az": "sn-az3"},
]}
SITE_NODES = {"site_nodes": [{"region": "sn-region", "availability_zone": "sn-az1", "max_count": 20,
                              "node_infos": [{"host_name": "h", "total_vcpus": 8, "total_mem": 8192}]}]}
FLAVORS = {"flavors": [{"id": "sn.small", "region": "sn-region", "vcpus": 1, "ram": 1024}]}


def test_what_a_site_node_advertises() -> None:
    site = Site(id="s1", name="s1", region="r", az="z", max_count=7, hosts=(make_host(vcpus=4, mem=8192),))
    assert advertise(site) == Advertised(
        labels={"site-extender.io/site": "s1", "topology.kubernetes.io/region": "r",
                "topology.kubernetes.io/zone": "z", "site-extender.io/managed-by": "site-extender"},
        taints=(), capacity={"site-extender.io/vm": "7", "pods": "7",
                             # the site's figures for kube-scheduler (docs/preemption.md)
                             "site-extender.io/vcpu": "4", "site-extender.io/ram-mb": "8192",
                             "site-extender.io/instances": "4", "site-extender.io/vcpu.general": "4",
                             "site-extender.io/ram-mb.general": "8192", "site-extender.io/instances.general": "4"})
    offline = Site(id="s2", name="s2", region="r", az="z", status="Offline")
    assert advertise(offline).taints == (("site-extender.io/unavailable", "Offline", "NoSchedule"),)
    assert advertise(offline).capacity["site-extender.io/vm"] == "10000"


def get(k8s, *args: str) -> dict | None:
    result = k8s.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def renewed(k8s, name: str) -> datetime | None:
    lease = get(k8s, "lease", "-n", "kube-node-lease", name)
    if lease is None:
        return None
    return datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def cluster(k8s, tmp_path_factory):
    k8s.install_crds()
    k8s.apply_extender_access()
    inventory = tmp_path_factory.mktemp("sn-inventory")
    for name, content in (("sites.json", SITES), ("site_nodes.json", SITE_NODES), ("flavors.json", FLAVORS)):
        (inventory / name).write_text(json.dumps(content))
    imported = k8s.import_inventory(str(inventory))
    assert imported.returncode == 0, imported.stderr
    k8s.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "sn-foreign", "labels": {"owner": "someone"}}}))
    yield k8s
    k8s.kubectl("delete", "node", "sn-a", "sn-b", "sn-foreign", "--wait=false", check=False)
    k8s.kubectl("delete", "site", "sn-a", "sn-b", "sn-foreign", "--wait=false", check=False)


def test_one_keeper_keeps_the_site_nodes_and_the_other_takes_over(cluster, tmp_path) -> None:
    token = cluster.token_for("site-extender", "site-scheduler")
    kubeconfig = str(cluster.kubeconfig_for_token(token, "site-nodes"))
    with ExitStack() as stack:
        servers = {}
        for name in ("replica-a", "replica-b"):
            (tmp_path / name).mkdir()
            env = {"SITE_EXTENDER_KUBE": "kubeconfig", "KUBECONFIG": kubeconfig, "SITE_EXTENDER_STATE": "cluster",
                   "SITE_EXTENDER_NAMESPACE": "site-extender", "POD_NAME": name,
                   "SITE_EXTENDER_LEADER_LEASE_SECONDS": str(LEASE_SECONDS), "SITE_EXTENDER_SITE_NODE_HEARTBEAT": "1",
                   "SITE_EXTENDER_DATA_DIR": str(tmp_path / name / "data")}
            servers[name] = stack.enter_context(serve(tmp_path / name, env=env, ready_path="/readyz"))

        node = wait_for("the keeper creates Node sn-a, Ready", lambda: (n := get(cluster, "node", "sn-a")) and any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])) and n, 20)
        labels = {"site-extender.io/site": "sn-a", "topology.kubernetes.io/region": "sn-region",
                  "topology.kubernetes.io/zone": "sn-az1", "site-extender.io/managed-by": "site-extender"}
        assert {k: node["metadata"]["labels"].get(k) for k in labels} == labels
        assert node["status"]["allocatable"]["site-extender.io/vm"] == "20"
        assert node["status"]["allocatable"]["site-extender.io/vcpu"] == "8"
        # The site's figures (one host of 8 vCPU, 8192 MB), which kube-scheduler counts and preempts on.
        assert {k: node["status"]["allocatable"].get(k) for k in ("site-extender.io/vcpu", "site-extender.io/ram-mb",
                                                                  "site-extender.io/instances")} == {
            "site-extender.io/vcpu": "8", "site-extender.io/ram-mb": "8192", "site-extender.io/instances": "8"}
        assert not [t for t in node["spec"].get("taints", []) if t["key"] == "site-extender.io/unavailable"]
        sellout = wait_for("Node sn-b", lambda: get(cluster, "node", "sn-b"), 10)
        assert {"key": "site-extender.io/unavailable", "value": "Sellout", "effect": "NoSchedule"} in \
            sellout["spec"]["taints"]
        foreign = get(cluster, "node", "sn-foreign")
        assert foreign["metadata"]["labels"] == {"owner": "someone"}, "a Node it did not create is left alone"
        assert renewed(cluster, "sn-foreign") is None

        holder = get(cluster, "lease", "-n", "site-extender", "site-extender")["spec"]["holderIdentity"]
        leader = next(n for n in servers if holder.startswith(n + "_"))
        other = next(n for n in servers if n != leader)
        first = wait_for("a heartbeat", lambda: renewed(cluster, "sn-a"), 10)
        time.sleep(1.5)
        assert renewed(cluster, "sn-a") > first, "the keeper renews the node lease every second"

        # Kill the leader outright: no chance to hand anything over.
        killed_at = time.monotonic()
        os.kill(int(holder.rsplit("_", 1)[1]), signal.SIGKILL)
        servers[leader].process.send_signal(signal.SIGKILL)
        last = renewed(cluster, "sn-a")
        wait_for("the other replica holds the election lease", lambda: get(
            cluster, "lease", "-n", "site-extender", "site-extender")["spec"]["holderIdentity"].startswith(other + "_"),
            LEASE_SECONDS * 3)
        wait_for("the other replica renews sn-a's lease", lambda: renewed(cluster, "sn-a") > last, 5)
        took = time.monotonic() - killed_at
        assert took < NODE_LEASE_SECONDS / 2, f"heartbeats stopped for {took:.1f} s"
        assert took < LEASE_SECONDS * 2 + 3

        # A site leaves the inventory: its Node and Lease go.
        cluster.kubectl("delete", "site", "sn-b")
        wait_for("Node sn-b deleted", lambda: get(cluster, "node", "sn-b") is None, 10)
        assert renewed(cluster, "sn-b") is None
        assert get(cluster, "node", "sn-foreign")["metadata"]["labels"] == {"owner": "someone"}
