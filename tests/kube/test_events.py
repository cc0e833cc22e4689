"""Events on the real kube-apiserver (`events.k8s.io/v1`), written with deploy/'s ServiceAccount and RBAC:
a placed VM pod gets a Normal `Placed` naming its site and flavor, an unplaceable one a Warning with
every site's reason, and repeats are aggregated as client-go's recorder does (one Event per pod with
`series.count`), so a burst of pods does not flood."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from extender.kube import events
from extender.kube.events import MAX_QUEUED, EventRecorder, PodRef
from extender.kube.ratelimit import TokenBucket
from extender.kube.transport import Transport
from tests.server import serve

pytestmark = pytest.mark.process


EVENTS_ACCOUNT = "events-test"
"""A ServiceAccount bound to the extender's own ClusterRole alone: deploy/'s site-scheduler account also
holds system:kube-scheduler, which grants events by itself and would hide a gap in site-extender's role."""


@pytest.fixture(scope="module")
def cluster(k8s):
    k8s.apply_extender_access()
    with k8s.api_client() as api:
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        try:
            core.create_namespaced_service_account("site-extender", {"metadata": {"name": EVENTS_ACCOUNT}})
            rbac.create_cluster_role_binding({
                "metadata": {"name": EVENTS_ACCOUNT},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "site-extender"},
                "subjects": [{"kind": "ServiceAccount", "name": EVENTS_ACCOUNT, "namespace": "site-extender"}]})
        except client.ApiException as exc:
            if exc.status != 409:  # the session's control plane is shared: made by an earlier run
                raise
    return k8s


@pytest.fixture
def namespace(cluster) -> Iterator[str]:
    name = f"events-{uuid.uuid4().hex[:8]}"
    with cluster.api_client() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name


@pytest.fixture
def recorder(cluster) -> Iterator[EventRecorder]:
    """A recorder with the extender's own permissions: deploy/'s ClusterRole site-extender, nothing else."""
    token = cluster.token_for("site-extender", EVENTS_ACCOUNT)
    with cluster.api_client(cluster.kubeconfig_for_token(token, "events")) as api:
        # paced far above what these tests write: the pace has a test of its own
        yield EventRecorder(Transport(api), instance="site-extender.io/extender-test",
                            pace=TokenBucket(10_000, 1_000)).start()


def listed(cluster, namespace: str) -> list[client.EventsV1Event]:
    with cluster.api_client() as api:
        return client.EventsV1Api(api).list_namespaced_event(namespace).items


def pod(namespace: str, name: str) -> PodRef:
    return PodRef(namespace, name, str(uuid.uuid4()))


REASONS = {"site3": "RegionAndAZ: site site3 is in region region2, the request wants region1",
           "site4": "SiteAvailability: site site4 is Sellout"}


def test_a_placed_pod_gets_a_normal_event_naming_site_and_flavor(cluster, namespace, recorder) -> None:
    vm = pod(namespace, "vm-0")
    recorder.placed(vm, "site2", "region1", "az2", "c6.large.2", "node-site2")
    assert recorder.flush()

    [event] = listed(cluster, namespace)
    assert (event.type, event.reason, event.action) == ("Normal", "Placed", "Binding")
    assert event.note == "Placed on site site2 (region1/az2), flavor c6.large.2, node node-site2"
    assert (event.regarding.kind, event.regarding.name, event.regarding.uid) == ("Pod", "vm-0", vm.uid)
    assert event.reporting_controller == "site-extender.io/extender"
    assert event.series is None


def test_writes_are_paced_a_burst_at_once_then_qps(cluster, namespace) -> None:
    slept: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock[0] += seconds

    token = cluster.token_for("site-extender", EVENTS_ACCOUNT)
    with cluster.api_client(cluster.kubeconfig_for_token(token, "events-paced")) as api:
        paced = EventRecorder(Transport(api), pace=TokenBucket(10, 3, clock=lambda: clock[0], sleep=sleep)).start()
        for i in range(6):
            paced.placed(pod(namespace, f"paced-{i}"), "site2", "region1", "az2", "c6.large.2", "site2")
        assert paced.flush()

    assert len(listed(cluster, namespace)) == 6
    assert slept == [0.1, 0.1, 0.1]  # three at once, then one every 1/10 s


def test_a_queue_held_by_the_pace_is_counted_and_a_full_one_drops_with_a_warning(cluster, namespace,
                                                                                  caplog) -> None:
    held = threading.Event()
    token = cluster.token_for("site-extender", EVENTS_ACCOUNT)
    with cluster.api_client(cluster.kubeconfig_for_token(token, "events-held")) as api:
        # a burst of 2 is written, then the writer waits for a token until the test lets it go
        paced = EventRecorder(Transport(api), pace=TokenBucket(0.001, 2, sleep=lambda _: held.wait(30))).start()
        for i in range(3 + MAX_QUEUED + 5):
            paced.placed(pod(namespace, f"held-{i}"), "site2", "region1", "az2", "c6.large.2", "site2")
            if i == 2:  # the third is taken from the queue and waits for its token
                deadline = time.monotonic() + 10
                while paced.writes["create"] < 2 or paced.counts()["queued"]:
                    assert time.monotonic() < deadline, paced.counts()
                    time.sleep(0.01)
        assert paced.counts() == {"queued": MAX_QUEUED, "dropped": 5}
        held.set()
        assert paced.flush(timeout=60)

    assert paced.counts() == {"queued": 0, "dropped": 5}
    assert len(listed(cluster, namespace)) == 3 + MAX_QUEUED
    [warning] = [r.getMessage() for r in caplog.records if "event queue full" in r.getMessage()]
    assert "1 events dropped since start" in warning and "SITE_EXTENDER_EVENT_QPS" in warning


def test_an_unplaceable_pod_gets_one_warning_counted_over_retries(cluster, namespace, recorder) -> None:
    vm = pod(namespace, "vm-1")
    for _ in range(5):
        recorder.unplaceable(vm, REASONS, {"RegionAndAZ": 1, "SiteAvailability": 1})
    assert recorder.flush()

    [event] = listed(cluster, namespace)
    assert (event.type, event.reason) == ("Warning", "FailedPlacement")
    assert event.note == ("No site can take the VM (0 of 2 pass; RegionAndAZ 1, SiteAvailability 1): "
                          "site3: RegionAndAZ: site site3 is in region region2, the request wants region1; "
                          "site4: SiteAvailability: site site4 is Sellout")
    assert event.series.count == 2, "the second occurrence is patched at once, later ones wait for the refresh"
    assert recorder.writes == {"create": 1, "patch": 1}

    recorder.refresh()  # what the 30-minute refresh writes
    [event] = listed(cluster, namespace)
    assert event.series.count == 5


def test_a_burst_of_200_pods_makes_200_events_not_more(cluster, namespace, recorder) -> None:
    pods = [pod(namespace, f"burst-{i}") for i in range(200)]
    for _ in range(3):  # kube-scheduler retries each pod
        for vm in pods:
            recorder.unplaceable(vm, REASONS, {"RegionAndAZ": 1, "SiteAvailability": 1})
    assert recorder.flush(timeout=60)

    found = listed(cluster, namespace)
    assert len(found) == 200
    assert {e.regarding.name for e in found} == {vm.name for vm in pods}
    assert {e.series.count for e in found} == {2}
    assert recorder.writes == {"create": 200, "patch": 200} and recorder.dropped == 0


def test_a_series_whose_event_is_gone_is_created_again(cluster, namespace, recorder) -> None:
    vm = pod(namespace, "vm-2")
    recorder.unplaceable(vm, REASONS, {})
    assert recorder.flush()
    [first] = listed(cluster, namespace)
    with cluster.api_client() as api:
        client.EventsV1Api(api).delete_namespaced_event(first.metadata.name, namespace)

    recorder.unplaceable(vm, REASONS, {})
    assert recorder.flush()

    [again] = listed(cluster, namespace)
    assert again.metadata.name == first.metadata.name and again.series.count == 2


def test_a_long_summary_fits_the_note_limit(cluster, namespace, recorder) -> None:
    many = {f"site{i}": f"RegionAndAZ: site site{i} is in region region9, the request wants region1" for i in range(100)}
    recorder.unplaceable(pod(namespace, "vm-3"), many, {"RegionAndAZ": 100})
    assert recorder.flush()

    [event] = listed(cluster, namespace)
    assert len(event.note.encode()) <= events.MAX_NOTE_BYTES
    assert event.note.startswith("No site can take the VM (0 of 100 pass; RegionAndAZ 100): site0: RegionAndAZ")
    assert event.note.endswith("more")


# --- the extender as deployed: /filter and /bind through gunicorn, watching the real API server -------


def wait_for_event(cluster, namespace: str, reason: str, timeout: float = 20.0) -> client.EventsV1Event:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in listed(cluster, namespace) if e.reason == reason]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {reason} event in {namespace} after {timeout:.0f} s: {listed(cluster, namespace)}")
        time.sleep(0.2)


def test_the_extender_records_events_from_filter_and_bind(cluster, namespace, tmp_path) -> None:
    site_label, region_label, zone_label = "site-extender.io/site", "topology.kubernetes.io/region", "topology.kubernetes.io/zone"
    nodes = {f"{namespace}-site1": ("site1", "region1", "az1"), f"{namespace}-site3": ("site3", "region2", "az3")}
    vm = {"flavors": [{"flavorID": "c6.large.2"}], "resourceCommonInfo": {"selector": {"regions": [{"region": "region1"}]}}}
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        for name, (site, region, zone) in nodes.items():
            core.create_node({"metadata": {"name": name, "labels": {site_label: site, region_label: region,
                                                                    zone_label: zone}}})
        created = core.create_namespaced_pod(namespace, {
            "metadata": {"name": "vm", "annotations": {"site-extender.io/vm": json.dumps(vm)}},
            "spec": {"schedulerName": "nobody", "containers": [{"name": "vm", "image": "registry.k8s.io/pause:3.10"}]}})
        pod = api.sanitize_for_serialization(created)
    token = cluster.token_for("site-extender", EVENTS_ACCOUNT)
    env = {"SITE_EXTENDER_KUBE": "kubeconfig", "SITE_EXTENDER_SITE_NODES": "false",
           "KUBECONFIG": str(cluster.kubeconfig_for_token(token, "events-extender")),
           "SITE_EXTENDER_DATA_DIR": str(tmp_path / "data"), "POD_NAME": "site-scheduler-test"}
    try:
        with serve(tmp_path, env=env, ready_path="/readyz") as served:
            answer = json.loads(served.post("/filter", json.dumps({"Pod": pod, "NodeNames": [f"{namespace}-site3"]})).data)
            assert answer["NodeNames"] == []
            warning = wait_for_event(cluster, namespace, "FailedPlacement")
            # a Pod manifest is explained over every node the cache holds; an explanation records no event
            explained = json.loads(served.post("/v1/explain", json.dumps({**pod, "kind": "Pod", "apiVersion": "v1"})).data)
            assert {f"{namespace}-site1", f"{namespace}-site3"} <= {n["node"] for n in explained["nodes"]}
            served.post("/v1/explain", json.dumps({"Pod": pod, "NodeNames": [f"{namespace}-site3"]}))
            bound = json.loads(served.post("/bind", json.dumps({
                "PodName": "vm", "PodNamespace": namespace, "PodUID": pod["metadata"]["uid"],
                "Node": f"{namespace}-site1"})).data)
            assert bound == {"Error": ""}
            placed = wait_for_event(cluster, namespace, "Placed")
    finally:
        with cluster.api_client() as api:
            for name in nodes:
                client.CoreV1Api(api).delete_node(name)

    assert warning.type == "Warning" and warning.regarding.uid == pod["metadata"]["uid"]
    # events are written in order: once Placed is there, an event the explanation queued would be too
    [again] = [e for e in listed(cluster, namespace) if e.reason == "FailedPlacement"]
    assert again.series is None, "an explanation is not a failed placement"
    assert warning.note == (f"No site can take the VM (0 of 1 pass; RegionAndAZ 1): {namespace}-site3: "
                            "RegionAndAZ: site site3 is in region region2, the request wants region1")
    assert warning.reporting_instance == "site-extender.io/extender-site-scheduler-test"
    assert placed.type == "Normal"
    assert placed.note == f"Placed on site site1 (region1/az1), flavor c6.large.2, node {namespace}-site1"
