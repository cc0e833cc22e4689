"""The allocation API with its state in the cluster, on the real kube-apiserver: two extender processes
with separate data directories, each serving /v1/allocations on its own port, store Allocations as
objects; concurrent allocations for the last free slots never over-allocate; what one replica allocates
the other's /filter counts within a second; deleting an Allocation releases its stock; callers are
ServiceAccounts, authenticated and authorized by the cluster (TokenReview, SubjectAccessReview)."""

from __future__ import annotations

import copy
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from tests.conftest import POLICY_DIR
from tests.server import free_port, serve

pytestmark = pytest.mark.process

SLOTS = 4
SITES = {"sites": [{"id": "ca-site", "region": "ca-region", "az": "ca-az"}]}
SITE_NODES = {"site_nodes": [{"region": "ca-region", "availability_zone": "ca-az", "max_count": SLOTS,
                              "node_infos": [{"host_name": "h", "total_vcpus": 64, "total_mem": 65536}]}]}
FLAVORS = {"flavors": [{"id": "ca.small", "region": "ca-region", "vcpus": 1, "ram": 1024}]}
REQUEST = {"allocation": {"resource_group": {"name": "ca", "resources": [
    {"name": "vm", "resource_type": "vm", "flavors": [{"flavor_id": "ca.small"}], "count": 1}]},
    "selector": {"regions": [{"region": "ca-region"}]}, "replicas": 1}}
CALLER_ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "allocator", "namespace": "site-extender"},
               "rules": [{"apiGroups": ["site-extender.io"], "resources": ["allocations"],
                          "verbs": ["create", "get", "list", "delete"]}]}
CALLER_BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                  "metadata": {"name": "allocator", "namespace": "site-extender"},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "allocator"},
                  "subjects": [{"kind": "ServiceAccount", "name": "allocator", "namespace": "ca-callers"}]}


def filter_body() -> str:
    args = json.loads((POLICY_DIR / "samples" / "filter-cache.json").read_text())
    args = copy.deepcopy(args)
    args["Pod"]["metadata"]["annotations"] = {"site-extender.io/vm": json.dumps({"flavors": [{"flavorID": "ca.small"}]})}
    args["NodeNames"] = ["ca-site"]
    return json.dumps(args)


@pytest.fixture(scope="module")
def cluster(k8s, tmp_path_factory):
    k8s.install_crds()
    k8s.apply_extender_access()
    inventory = tmp_path_factory.mktemp("ca-inventory")
    for name, content in (("sites.json", SITES), ("site_nodes.json", SITE_NODES), ("flavors.json", FLAVORS)):
        (inventory / name).write_text(json.dumps(content))
    imported = k8s.import_inventory(str(inventory))
    assert imported.returncode == 0, imported.stderr
    k8s.kubectl("create", "namespace", "ca-callers", check=False)
    k8s.kubectl("create", "serviceaccount", "allocator", "-n", "ca-callers", check=False)
    k8s.kubectl("create", "serviceaccount", "nobody", "-n", "ca-callers", check=False)
    k8s.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": [CALLER_ROLE, CALLER_BINDING,
                                                        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ca-site"}}]}))
    yield k8s
    k8s.kubectl("delete", "node", "ca-site", "--wait=false", check=False)
    k8s.kubectl("delete", "site", "ca-site", "--wait=false", check=False)


@pytest.fixture(scope="module")
def replicas(cluster, tmp_path_factory):
    """Two extenders, as the two replicas of deploy/: each its own data directory and API port."""
    token = cluster.token_for("site-extender", "site-scheduler")
    kubeconfig = str(cluster.kubeconfig_for_token(token, "allocations"))
    with ExitStack() as stack:
        served = []
        for name in ("a", "b"):
            home = tmp_path_factory.mktemp(f"replica-{name}")
            api_port = free_port()
            env = {"SITE_EXTENDER_KUBE": "kubeconfig", "KUBECONFIG": kubeconfig, "SITE_EXTENDER_STATE": "cluster",
                   "SITE_EXTENDER_SITE_NODES": "false", "SITE_EXTENDER_NAMESPACE": "site-extender",
                   "SITE_EXTENDER_API_PORT": str(api_port), "SITE_EXTENDER_DATA_DIR": str(home / "data")}
            server = stack.enter_context(serve(home, env=env, ready_path="/readyz"))
            server.api = server.url.rsplit(":", 1)[0] + f":{api_port}"
            served.append(server)
        yield served


@pytest.fixture(scope="module")
def caller(cluster) -> dict[str, str]:
    return {"Authorization": "Bearer " + cluster.token_for("ca-callers", "allocator"),
            "Content-Type": "application/json"}


def call(server, method: str, path: str, headers: dict[str, str], body: object = None) -> tuple[int, dict]:
    answer = server.http.request(method, server.api + path, headers=headers, retries=False,
                                 body=None if body is None else json.dumps(body))
    return answer.status, json.loads(answer.data) if answer.data else {}


def clean_slate(cluster, replicas, caller) -> None:
    """No allocation and no pod of the callers' namespace left."""
    release_all(replicas, caller)
    cluster.kubectl("delete", "pods", "--all", "-n", "ca-callers", "--wait=true", "--grace-period=0", "--force",
                    check=False)


def release_all(replicas, caller) -> None:
    for stored in call(replicas[0], "GET", "/v1/allocations", caller)[1]["allocations"]:
        assert call(replicas[0], "DELETE", f"/v1/allocations/{stored['id']}", caller)[0] == 204


def test_callers_are_authenticated_and_authorized_by_the_cluster(cluster, replicas, caller) -> None:
    a = replicas[0]
    status, body = call(a, "GET", "/v1/allocations", {})
    assert status == 401 and "needs a bearer token" in body["error"]
    status, body = call(a, "GET", "/v1/allocations", {"Authorization": "Bearer not-a-token"})
    assert (status, body["error"]) == (401, "the bearer token is not accepted by the cluster (TokenReview)")
    nobody = {"Authorization": "Bearer " + cluster.token_for("ca-callers", "nobody")}
    status, body = call(a, "PUT", "/v1/allocations/x", nobody, REQUEST)
    assert status == 403
    assert body["error"].startswith("system:serviceaccount:ca-callers:nobody may not create "
                                    "allocations.site-extender.io in namespace site-extender")
    assert call(a, "GET", "/v1/allocations", caller)[0] == 200
    # The extender verbs are not on the API port, and the API is not on the verbs' port.
    assert a.http.request("POST", a.api + "/filter", body=filter_body(), headers=caller).status == 404
    assert a.http.request("GET", a.url + "/v1/allocations", headers=caller).status == 404


def test_concurrent_allocations_through_both_replicas_never_over_allocate(cluster, replicas, caller) -> None:
    release_all(replicas, caller)
    ids = [f"race-{i}" for i in range(2 * SLOTS)]
    with ThreadPoolExecutor(len(ids)) as pool:
        answers = list(pool.map(lambda i: call(replicas[i % 2], "PUT", f"/v1/allocations/{ids[i]}", caller, REQUEST),
                                range(len(ids))))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * SLOTS + [409] * SLOTS, answers
    refused = [body for status, body in answers if status == 409]
    assert all("nothing allocated" in body["error"] for body in refused), refused
    rows = cluster.kubectl("get", "allocations", "-n", "site-extender", "--no-headers").stdout.splitlines()
    assert len(rows) == SLOTS
    assert {tuple(r.split()[1:4]) for r in rows} == {("1", "ca-site", "Allocated")}


def test_an_allocation_through_one_replica_is_counted_by_the_others_filter_within_a_second(
        cluster, replicas, caller) -> None:
    release_all(replicas, caller)
    a, b = replicas
    for i in range(SLOTS - 1):
        assert call(a, "PUT", f"/v1/allocations/fill-{i}", caller, REQUEST)[0] == 201
    wait_until = time.monotonic() + 5
    while json.loads(b.post("/filter", filter_body()).data)["NodeNames"] != ["ca-site"]:
        assert time.monotonic() < wait_until
        time.sleep(0.02)
    assert call(a, "PUT", "/v1/allocations/last", caller, REQUEST)[0] == 201
    made = time.monotonic()
    while True:
        answer = json.loads(b.post("/filter", filter_body()).data)
        if answer["NodeNames"] == [] or time.monotonic() - made > 1:
            break
        time.sleep(0.01)
    seen = time.monotonic() - made
    assert answer["NodeNames"] == [], f"replica b still passes ca-site {seen:.2f} s after the allocation"
    assert seen < 1.0

    # Deleting the Allocation (through the other replica) releases its stock everywhere.
    assert call(b, "DELETE", "/v1/allocations/last", caller)[0] == 204
    assert "NotFound" in cluster.kubectl("get", "allocation", "last", "-n", "site-extender", check=False).stderr
    deadline = time.monotonic() + 1
    while json.loads(a.post("/filter", filter_body()).data)["NodeNames"] != ["ca-site"]:
        assert time.monotonic() < deadline, "the released slot is not free again on replica a"
        time.sleep(0.01)
    assert call(a, "GET", "/v1/allocations/last", caller)[0] == 404
    status, shown = call(b, "GET", "/v1/allocations/fill-0", caller)
    assert status == 200 and shown["allocation"]["resource_groups"][0]["selected"]["node_id"] == "ca-site"


def vm_pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ca-callers",
                         "annotations": {"site-extender.io/vm": json.dumps({"flavors": [{"flavorID": "ca.small"}]})}},
            "spec": {"containers": [{"name": "vm", "image": "registry.example.com/vm:1"}]}}


def test_a_bind_and_an_allocation_for_the_last_slot_one_wins(cluster, replicas, caller) -> None:
    """/bind (the scheduler's, on replica a) and an allocation (through replica b) go for the last slot at
    once: exactly one of the two takes it. (The window is short; the two tests below pin the protocol.)"""
    a, b = replicas
    for round_ in range(1):
        clean_slate(cluster, replicas, caller)
        for i in range(SLOTS - 1):
            assert call(a, "PUT", f"/v1/allocations/bind-fill-{i}", caller, REQUEST)[0] == 201
        name = f"vm-{round_}"
        cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(vm_pod(name)))
        uid = json.loads(cluster.kubectl("get", "pod", name, "-n", "ca-callers", "-o", "json").stdout)["metadata"]["uid"]
        binding = json.dumps({"PodName": name, "PodNamespace": "ca-callers", "PodUID": uid, "Node": "ca-site"})
        with ThreadPoolExecutor(2) as pool:
            bound = pool.submit(lambda: json.loads(a.post("/bind", binding).data))
            allocated = pool.submit(lambda: call(b, "PUT", f"/v1/allocations/bind-race-{round_}", caller, REQUEST))
            bound, allocated = bound.result(), allocated.result()
        won = [bound["Error"] == "", allocated[0] == 201]
        assert won.count(True) == 1, (bound, allocated)
        if won[0]:
            assert "no longer fits" not in bound["Error"]
        else:
            assert bound["Error"].startswith(f"pod ca-callers/{name} no longer fits node ca-site"), bound
    cluster.kubectl("delete", "pods", "--all", "-n", "ca-callers", "--wait=false", check=False)
    release_all(replicas, caller)


def test_binds_at_once_through_one_replica_queue_for_the_ledger_and_never_refuse_each_other(
        cluster, replicas, caller) -> None:
    a, _ = replicas
    clean_slate(cluster, replicas, caller)
    names = [f"vm-at-once-{i}" for i in range(SLOTS)]
    cluster.kubectl("apply", "--server-side", "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [vm_pod(n) for n in names]}))
    pods = json.loads(cluster.kubectl("get", "pods", "-n", "ca-callers", "-o", "json").stdout)["items"]
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}
    logged, refused = len(a.log()), refused_ledger_writes(cluster)
    with ThreadPoolExecutor(SLOTS) as pool:
        answers = list(pool.map(lambda n: json.loads(a.post("/bind", json.dumps(
            {"PodName": n, "PodNamespace": "ca-callers", "PodUID": uids[n], "Node": "ca-site"})).data), names))
    assert answers == [{"Error": ""}] * SLOTS  # the whole site, one bind each
    assert refused_ledger_writes(cluster) == refused  # no write on a version another bind had replaced
    assert "admission lost" not in a.log()[logged:]
    cluster.kubectl("delete", "pods", "--all", "-n", "ca-callers", "--wait=false", check=False)


def refused_ledger_writes(cluster) -> int:
    """ConfigMap writes the API server has refused with 409 Conflict (its own request counter)."""
    metrics = cluster.kubectl("get", "--raw", "/metrics").stdout
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines()
               if line.startswith("apiserver_request_total{") and 'resource="configmaps"' in line
               and 'verb="PUT"' in line and 'code="409"' in line)


@pytest.fixture
def two_stores(cluster):
    """The allocation stores of two replicas, in this process, each with its own watch."""
    from kubernetes.client import CoreV1Api, CustomObjectsApi

    from extender.allocation.cluster_store import ClusterAllocationStore
    from extender.config.policy_store import PolicyStore
    from extender.kube.cache import KubeCache

    token = cluster.token_for("site-extender", "site-scheduler")
    kubeconfig = cluster.kubeconfig_for_token(token, "stores")
    made = []
    for _ in range(2):
        api = cluster.api_client(kubeconfig)
        core = CoreV1Api(api)
        cache = KubeCache(core, PolicyStore(POLICY_DIR))
        store = ClusterAllocationStore(CustomObjectsApi(api), core, "site-extender", cache)
        cache.start()
        assert cache.wait_synced(10)
        made.append((store, cache, api))
    yield [store for store, _, _ in made]
    for _, cache, api in made:
        cache.close()
        api.close()
    # The binds these tests record have no pods: out of the ledger, or they hold ca-site for a minute.
    cluster.kubectl("patch", "configmap", "site-extender-admission", "-n", "site-extender", "--type=merge",
                    "-p", json.dumps({"data": {"binds": "[]"}}))


def bind_placement(uid: str):
    from extender.domain.model import Placement

    return Placement(key=uid, site_id="ca-site", flavor_id="ca.small", vcpus=1, ram=1024)


def admit_bind(store, uid: str) -> None:
    """What the binder does with a store: a ticket, the placement it checked, the commit."""
    ticket = store.begin_bind()
    ticket.record(bind_placement(uid))
    ticket.commit()


def test_a_bind_admitted_on_one_replica_counts_in_the_others_next_admission_before_any_pod_shows_it(
        two_stores) -> None:
    a, b = two_stores
    admit_bind(a, "uid-of-a-pod-no-watch-has-seen")
    with b.transaction() as txn:  # what the allocation's plan counts
        planned_with = {p.key for p in txn.placements()}
    assert "uid-of-a-pod-no-watch-has-seen" in planned_with
    assert "uid-of-a-pod-no-watch-has-seen" in {p.key for p in b.placements()[1]}  # and /filter


def test_a_bind_starts_from_its_own_last_write_and_from_a_fresh_read_once_another_replica_wrote(
        two_stores, monkeypatch) -> None:
    from extender.allocation.service import AdmissionConflict

    a, b = two_stores
    reads = []
    read = a.core.read_namespaced_config_map
    monkeypatch.setattr(a.core, "read_namespaced_config_map", lambda *args, **kw: reads.append(args) or read(*args, **kw))
    for uid in ("first-of-a", "second-of-a"):
        admit_bind(a, uid)
    assert len(reads) == 1  # the second bind wrote on the version the first one's write left

    admit_bind(b, "one-of-b")  # another replica writes the ledger
    with pytest.raises(AdmissionConflict):  # a's next bind, from its own last write: refused by the precondition
        admit_bind(a, "third-of-a")
    ticket = a.begin_bind()  # so the next one reads the ledger, and counts b's bind
    counted = {p.key for p in a.placements()[1]}
    ticket.record(bind_placement("third-of-a"))
    ticket.commit()
    assert len(reads) == 2
    assert {"first-of-a", "second-of-a", "one-of-b"} <= counted


def test_binds_recorded_while_a_ledger_write_is_in_flight_go_together_in_the_next_one(two_stores) -> None:
    a, b = two_stores
    admit_bind(a, "warm-up")  # a's base: its own last write
    held, writing, puts = threading.Event(), threading.Event(), []
    request = a.api.request

    def slow_first_write(method, *args, **kwargs):
        if method == "PUT":
            puts.append(args[0])
            if len(puts) == 1:
                writing.set()
                held.wait(10)
        return request(method, *args, **kwargs)

    a.api.request = slow_first_write
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(admit_bind, a, "first")
        assert writing.wait(10)
        tickets = []
        for uid in ("second", "third"):  # checked while the first is being written
            ticket = a.begin_bind()
            ticket.record(bind_placement(uid))
            tickets.append(ticket)
        committed = [pool.submit(t.commit) for t in tickets]
        time.sleep(0.2)  # both wait for the write in flight
        held.set()
        for done in (first, *committed):
            done.result(timeout=10)

    assert len(puts) == 2  # the first bind's write, then one for the two checked meanwhile
    with b.transaction() as txn:  # all three in the ledger: the other replica's next admission counts them
        assert {"first", "second", "third"} <= {p.key for p in txn.placements()}


def test_a_ledger_write_the_api_server_fails_fails_its_binds_and_the_next_starts_from_a_fresh_read(
        two_stores, monkeypatch) -> None:
    from extender.allocation.store import StoreUnavailable
    from extender.errors import ApiError

    a, _ = two_stores
    admit_bind(a, "before")
    reads = []
    read = a.core.read_namespaced_config_map
    monkeypatch.setattr(a.core, "read_namespaced_config_map", lambda *args, **kw: reads.append(args) or read(*args, **kw))
    request = a.api.request

    def failing_once(method, *args, **kwargs):
        if method == "PUT" and not failing_once.failed:
            failing_once.failed = True
            raise ApiError(503, "Service Unavailable", "etcdserver: request timed out")
        return request(method, *args, **kwargs)

    failing_once.failed = False
    a.api.request = failing_once
    with pytest.raises(StoreUnavailable, match="etcdserver: request timed out"):
        admit_bind(a, "refused")
    admit_bind(a, "after")
    assert len(reads) == 1  # the write that failed left no base: the next bind read the ledger
    ticket = a.begin_bind()
    keys = {p.key for p in a.placements()[1]}
    assert {"before", "after"} <= keys and "refused" not in keys
    ticket.commit()  # nothing recorded: nothing written


def test_a_bind_and_an_allocation_that_read_the_same_ledger_cannot_both_be_kept(cluster, two_stores) -> None:
    from extender.allocation.service import AdmissionConflict

    a, b = two_stores
    answer = {"allocation": {"id": "loser", "resource_groups": [
        {"name": "ca", "resources": [], "selected": {"node_id": "ca-site", "region": "ca-region",
                                                     "availability_zone": "ca-az"}}]}}
    with pytest.raises(AdmissionConflict):
        with b.transaction() as txn:
            admit_bind(a, "uid-of-the-winner")  # admitted in between, through the other replica
            txn.insert("loser", answer, [bind_placement("loser/0")])
    assert "NotFound" in cluster.kubectl("get", "allocation", "loser", "-n", "site-extender", check=False).stderr


def test_a_bound_pod_is_counted_once_though_both_the_ledger_and_the_pod_watch_hold_it(
        cluster, replicas, caller) -> None:
    a, b = replicas
    clean_slate(cluster, replicas, caller)
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(vm_pod("vm-once")))
    uid = json.loads(cluster.kubectl("get", "pod", "vm-once", "-n", "ca-callers", "-o", "json").stdout)["metadata"]["uid"]
    binding = json.dumps({"PodName": "vm-once", "PodNamespace": "ca-callers", "PodUID": uid, "Node": "ca-site"})
    assert json.loads(a.post("/bind", binding).data)["Error"] == ""
    deadline = time.monotonic() + 5
    while not json.loads(b.get("/readyz").data)["cluster"]["pods"]:  # b's pod watch has the bound pod
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for i in range(SLOTS - 1):  # the rest of the site, through the replica that holds both
        status, body = call(b, "PUT", f"/v1/allocations/once-{i}", caller, REQUEST)
        assert status == 201, (body, b.get("/v1/sites/ca-site").data)
    assert call(b, "PUT", "/v1/allocations/once-full", caller, REQUEST)[0] == 409
    cluster.kubectl("delete", "pods", "--all", "-n", "ca-callers", "--wait=false", check=False)
    release_all(replicas, caller)


def test_a_ledger_near_its_size_limit_drops_the_oldest_binds_seen_bound_and_refuses_with_a_reason_when_full(
        cluster, two_stores, monkeypatch) -> None:
    from extender.allocation import cluster_store
    from extender.allocation.store import StoreUnavailable

    a, _ = two_stores
    cluster.kubectl("patch", "configmap", "site-extender-admission", "-n", "site-extender", "--type=merge",
                    "-p", json.dumps({"data": {"binds": "[]"}}))  # the binds of the tests before: gone
    for uid in ("seen-1", "seen-2", "unseen-1"):
        admit_bind(a, uid)
    a.seen_bound("seen-1")
    a.seen_bound("seen-2")
    three = len(json.loads(cluster_kubectl_ledger(a))["data"]["binds"])
    monkeypatch.setattr(cluster_store, "MAX_BINDS_BYTES", three + 10)  # three binds fit, not four

    admit_bind(a, "unseen-2")  # the oldest bind seen bound leaves to make room
    ledger = json.loads(json.loads(cluster_kubectl_ledger(a))["data"]["binds"])
    assert [e["placement"]["key"] for e in ledger] == ["seen-2", "unseen-1", "unseen-2"]

    admit_bind(a, "unseen-3")  # seen-2 goes too
    with pytest.raises(StoreUnavailable, match="the admission ledger site-extender-admission is full: 4 binds"):
        admit_bind(a, "unseen-4")  # nothing seen bound is left to drop: refused, with the reason


def cluster_kubectl_ledger(store) -> str:
    return store.api.request("GET", "/api/v1/namespaces/site-extender/configmaps/site-extender-admission",
                             timeout=4.0).decode()
