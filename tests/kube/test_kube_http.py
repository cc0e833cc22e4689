"""End to end over HTTP: gunicorn (one worker, threads, as `make run` and deploy/ run it) configured
with a kubeconfig that points at the fake API server serving recorded answers; the recorded cache-mode
filter, bind and preempt bodies of kube-scheduler."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import load_fixture
from tests.fake_apiserver import FakeApiServer, fake_apiserver, recorded, vm_pod
from tests.server import Served, serve

pytestmark = pytest.mark.process

CACHE_MODE = "scheduler/cache-mode"
SMALLVM_UID = "a5d20432-f1dc-4a57-9b1a-82fd0c8aa87c"
VICTIMS = ["bc7eb326-a5db-492a-acac-e94997bfbbcc", "ef5ec419-9a1f-4193-94b6-d9448e513c54"]
"""The two filler-site1-* pods the recorded preemption of bigvm names (preempt-0001.json)."""


def filler(name: str, uid: str) -> dict:
    """The recorded non-VM pod `plain` (bound to site1) as one of the filler pods."""
    [plain] = [p for p in recorded("list-pods-assigned.json")["items"] if p["metadata"]["name"] == "plain"]
    pod = copy.deepcopy(plain)
    pod["metadata"].update(name=name, uid=uid)
    return pod


def smallvm() -> dict:
    """smallvm as the scheduler sent it (filter-0005.json): unbound, in the API server's store."""
    return load_fixture(f"{CACHE_MODE}/filter-0005.json")["Pod"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeApiServer, Served]]:
    tmp = tmp_path_factory.mktemp("kube-http")
    with fake_apiserver() as api:
        pods = api.lists["pods"]
        pods["items"] += [filler("filler-site1-a", VICTIMS[0]), filler("filler-site1-b", VICTIMS[1])]
        api.add_pod(smallvm())
        api.lists_open.clear()  # the first list hangs until the test lets it through
        env = {"SITE_EXTENDER_KUBE": "kubeconfig", "SITE_EXTENDER_KUBECONFIG": str(api.kubeconfig(tmp))}
        with serve(tmp, env=env) as served:
            yield api, served


def post(served: Served, path: str, body: bytes | str | dict) -> dict:
    data = json.dumps(body) if isinstance(body, dict) else body
    answer = served.post(path, data)
    assert answer.status == 200, answer.data
    return json.loads(answer.data)


def fixture_bytes(name: str) -> bytes:
    from tests.conftest import SCHEDULER_FIXTURES

    return (SCHEDULER_FIXTURES / "cache-mode" / name).read_bytes()


def test_readyz_is_503_until_the_first_full_sync(cluster) -> None:
    api, served = cluster
    answer = served.get("/readyz")
    assert answer.status == 503
    assert json.loads(answer.data)["cluster"]["synced"] is False
    assert "watching nodes and pods through kubeconfig" in served.log()
    # nothing is bound while what is placed is unknown; the scheduler retries the pod
    assert post(served, "/bind", fixture_bytes("bind-0001.json")) == {"Error": (
        "pod default/smallvm not bound: the extender has not listed the cluster's nodes and pods yet, "
        "so it cannot tell what is placed")}
    assert api.seen("POST", "/api/v1/namespaces/default/pods/smallvm/binding") == []

    api.lists_open.set()
    deadline = time.monotonic() + 10
    while served.get("/readyz").status != 200:
        assert time.monotonic() < deadline, served.log()
        time.sleep(0.02)
    stats = json.loads(served.get("/readyz").data)["cluster"]
    assert {k: stats[k] for k in ("mode", "synced", "nodes", "pods")} == {
        "mode": "kubernetes", "synced": True, "nodes": 3, "pods": 6}


def synced(cluster: tuple[FakeApiServer, Served]) -> tuple[FakeApiServer, Served]:
    """The cluster once the extender has listed it (the tests after the first do not depend on it)."""
    api, served = cluster
    api.lists_open.set()
    deadline = time.monotonic() + 10
    while served.get("/readyz").status != 200:
        assert time.monotonic() < deadline, served.log()
        time.sleep(0.02)
    return api, served


def test_recorded_filter_then_bind_then_bind_again(cluster) -> None:
    api, served = synced(cluster)
    # the three demovm pods on site1 count; smallvm passes site1 and site2 (region1, az1/az2)
    answer = post(served, "/filter", fixture_bytes("filter-0005.json"))
    assert answer["NodeNames"] == ["site2", "site1"]
    assert answer["Error"] == ""

    assert post(served, "/bind", fixture_bytes("bind-0001.json")) == {"Error": ""}
    [posted] = api.seen("POST", "/api/v1/namespaces/default/pods/smallvm/binding")
    assert posted.body["metadata"]["uid"] == SMALLVM_UID and posted.body["target"]["name"] == "site1"
    # the placement rides in the Binding (the server copies it onto the pod): no other write
    assert posted.body["metadata"]["annotations"] == {
        "site-extender.io/site": "site1", "site-extender.io/region": "region1",
        "site-extender.io/availability-zone": "az1", "site-extender.io/flavor": "c6.large.2"}
    assert posted.body["metadata"]["labels"] == {"site-extender.io/site": "site1"}
    assert api.seen("PATCH", "/api/v1/namespaces/default/pods/smallvm") == []
    # its log line: the node, and the time of the Binding write apart from the whole /bind's
    [line] = [json.loads(l) for l in served.log().splitlines()
              if '"verb":"bind"' in l and '"pod":"default/smallvm"' in l and '"error":""' in l]
    assert line["top_site"] == "site1"
    assert 0 < line["api_ms"] <= line["duration_ms"]

    # the scheduler sent the same bind again (bind-0002): the pod is bound there, which is success
    assert post(served, "/bind", fixture_bytes("bind-0002.json")) == {"Error": ""}
    assert len(api.seen("POST", "/api/v1/namespaces/default/pods/smallvm/binding")) == 1


def test_recorded_preempt_names_the_victims_that_exist(cluster) -> None:
    _, served = synced(cluster)
    # bigvm (c6.xlarge.4, no EIP) fits site1 under our rules: the scheduler's victims stand
    answer = post(served, "/preempt", fixture_bytes("preempt-0001.json"))
    assert answer == {"NodeNameToMetaVictims": {
        "site1": {"Pods": [{"UID": VICTIMS[0]}, {"UID": VICTIMS[1]}], "NumPDBViolations": 0}}}

    # the same preemption in the full-pod form (NodeNameToVictims)
    body = json.loads(fixture_bytes("preempt-0001.json"))
    fillers = [filler("filler-site1-a", VICTIMS[0]), filler("filler-site1-b", VICTIMS[1])]
    full = {"Pod": body["Pod"], "NodeNameToVictims": {"site1": {"Pods": fillers, "NumPDBViolations": 0}}}
    assert post(served, "/preempt", full) == {"NodeNameToMetaVictims": {
        "site1": {"Pods": [{"UID": VICTIMS[0]}, {"UID": VICTIMS[1]}], "NumPDBViolations": 0}}}

    body["NodeNameToMetaVictims"]["site1"]["Pods"].append({"UID": "no-such-pod"})
    body["NodeNameToMetaVictims"]["site9"] = {"Pods": [{"UID": VICTIMS[0]}], "NumPDBViolations": 0}
    body["NodeNameToMetaVictims"]["site2"] = {"Pods": [{"UID": VICTIMS[0]}], "NumPDBViolations": 1}
    assert post(served, "/preempt", body) == {"NodeNameToMetaVictims": {
        "site1": {"Pods": [{"UID": VICTIMS[0]}, {"UID": VICTIMS[1]}], "NumPDBViolations": 0}}}


def test_a_burst_over_http_places_exactly_the_free_slots(cluster) -> None:
    api, served = synced(cluster)
    pods = 10
    uids = [f"00000000-0000-0000-1111-{i:012d}" for i in range(pods)]
    for i, uid in enumerate(uids):
        api.add_pod(vm_pod(f"http-burst-{i}", uid))

    def bind(i: int) -> str:
        args = {"PodName": f"http-burst-{i}", "PodNamespace": "default", "PodUID": uids[i], "Node": "site2"}
        return post(served, "/bind", args)["Error"]

    with ThreadPoolExecutor(max_workers=pods) as pool:
        errors = list(pool.map(bind, range(pods)))

    # site2 takes 3 c6.large.2 VMs (12 GB free, 4 GB each) and nothing was on it
    assert errors.count("") == 3
    assert {e for e in errors if e} == {
        f"pod default/http-burst-{i} no longer fits node site2: Flavor: c6.large.2 has 0 left at site2 "
        "(stock 3, placed 3)" for i in range(pods) if errors[i]}
