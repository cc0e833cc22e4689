"""`POST /bind` and `POST /preempt` with a cluster: the app as `create_app` wires it from a kubeconfig,
the real `kubernetes` client against recorded API answers (tests/fake_apiserver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from extender.app import EXTENSION_KEY, create_app
from extender.config.settings import Settings
from tests.conftest import POLICY_DIR
from tests.fake_apiserver import FakeApiServer, fake_apiserver, vm_pod

UID = "11111111-2222-3333-4444-555555555555"
DEMOVM_UID = "db67f85e-b7cb-4408-a889-ac636b106753"  # recorded demovm, bound to site1


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with fake_apiserver() as server:
        yield server


@pytest.fixture
def app(api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SITE_EXTENDER_KUBECONFIG", str(api.kubeconfig(tmp_path)))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, kube="kubeconfig"), "TESTING": True})
    extender = app.extensions[EXTENSION_KEY]
    assert extender.cluster.wait_synced(10)
    yield app
    extender.cluster.close()


def bind(client, name: str, uid: str, node: str, namespace: str = "default") -> str:
    answer = client.post("/bind", json={"PodName": name, "PodNamespace": namespace, "PodUID": uid, "Node": node})
    assert answer.status_code == 200
    return answer.get_json()["Error"]


def reservations(app) -> int:
    return app.extensions[EXTENSION_KEY].cluster.stats()["reservations"]


PLACEMENT = {"site-extender.io/site": "site2", "site-extender.io/region": "region1",
             "site-extender.io/availability-zone": "az2", "site-extender.io/flavor": "c6.large.2"}


def writes(api: FakeApiServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in api.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]


def pod_reads(api: FakeApiServer) -> list[str]:
    return [r.path for r in api.requests if r.method == "GET" and "/namespaces/" in r.path]


def test_bind_is_one_write_with_the_uid_and_the_placement_in_the_binding(api, app) -> None:
    api.add_pod(vm_pod("vm-a", UID))
    cache = app.extensions[EXTENSION_KEY].cluster
    api.wait_for(lambda: cache.pending(UID) is not None)
    client = app.test_client()

    assert bind(client, "vm-a", UID, "site2") == ""

    # the pod came from the watch cache, the placement rode in the Binding: one API call in all
    assert pod_reads(api) == []
    assert writes(api) == ["POST /api/v1/namespaces/default/pods/vm-a/binding"]
    [posted] = api.seen("POST", "/api/v1/namespaces/default/pods/vm-a/binding")
    assert posted.body == {
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "vm-a", "namespace": "default", "uid": UID, "annotations": PLACEMENT,
                     "labels": {"site-extender.io/site": "site2"}},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "site2"}}
    # the server copied both onto the pod; the watch shows it bound: the cache counts it and the
    # reservation goes (never twice); nothing is left to label
    api.wait_for(lambda: UID in cache.pods([UID]) and reservations(app) == 0)
    pod = api.pods[("default", "vm-a")]["metadata"]
    assert pod["annotations"].items() >= PLACEMENT.items()
    assert pod["labels"]["site-extender.io/site"] == "site2"
    assert cache.pending(UID) is None
    policy, snapshot = app.extensions[EXTENSION_KEY].view()
    assert snapshot.usage("site2").vms == 1
    assert writes(api) == ["POST /api/v1/namespaces/default/pods/vm-a/binding"]


def test_a_repeated_bind_before_the_watch_shows_the_pod_bound_is_answered_from_memory(api, app, monkeypatch) -> None:
    api.add_pod(vm_pod("vm-a", UID))
    cache = app.extensions[EXTENSION_KEY].cluster
    api.wait_for(lambda: cache.pending(UID) is not None)
    monkeypatch.setattr(api, "push", lambda *event: None)  # the watch will not show the binding
    client = app.test_client()

    assert bind(client, "vm-a", UID, "site2") == ""
    assert cache.pending(UID) is not None  # still pending, as far as the watch knows
    assert bind(client, "vm-a", UID, "site2") == ""  # the scheduler asked again: bound there, success
    assert bind(client, "vm-a", UID, "site1") == "pod default/vm-a is already bound to node site2, not site1"
    assert writes(api) == ["POST /api/v1/namespaces/default/pods/vm-a/binding"]  # one Binding, one reservation
    assert reservations(app) == 1


def test_a_pod_the_watch_has_not_delivered_is_read_from_the_api(api, app) -> None:
    api.add_pod(vm_pod("vm-a", UID), watched=False)

    assert bind(app.test_client(), "vm-a", UID, "site2") == ""
    assert pod_reads(api) == ["/api/v1/namespaces/default/pods/vm-a"]
    assert writes(api) == ["POST /api/v1/namespaces/default/pods/vm-a/binding"]


def test_a_server_that_does_not_copy_labels_gets_the_label_after_the_answer(api, app) -> None:
    api.copies_binding_labels = False  # kube-apiserver before 1.35
    api.add_pod(vm_pod("vm-a", UID))
    cache = app.extensions[EXTENSION_KEY].cluster
    api.wait_for(lambda: cache.pending(UID) is not None)

    assert bind(app.test_client(), "vm-a", UID, "site2") == ""
    api.wait_for(lambda: len(api.seen("PATCH", "/api/v1/namespaces/default/pods/vm-a")) == 1)
    [patched] = api.seen("PATCH", "/api/v1/namespaces/default/pods/vm-a")
    assert patched.body == {"content-type": "application/merge-patch+json", "patch": {
        "metadata": {"uid": UID, "labels": {"site-extender.io/site": "site2"}}}}
    assert api.pods[("default", "vm-a")]["metadata"]["labels"]["site-extender.io/site"] == "site2"
    api.wait_for(lambda: reservations(app) == 0)


def test_a_failed_label_patch_is_tried_again(api, app, monkeypatch) -> None:
    monkeypatch.setattr("extender.kube.labeller.BACKOFF_MIN", 0.05)
    api.copies_binding_labels = False
    api.patch_status = 500
    api.add_pod(vm_pod("vm-a", UID))

    assert bind(app.test_client(), "vm-a", UID, "site2") == ""  # answered before any label is tried
    api.wait_for(lambda: len(api.seen("PATCH", "/api/v1/namespaces/default/pods/vm-a")) >= 2)
    api.patch_status = None
    api.wait_for(lambda: api.pods[("default", "vm-a")]["metadata"]["labels"].get("site-extender.io/site") == "site2")


@pytest.mark.parametrize("setup, name, uid, node, error", [
    pytest.param(None, "demovm", DEMOVM_UID, "site1", "", id="already-bound-here"),
    pytest.param(None, "demovm", DEMOVM_UID, "site2", "pod default/demovm is already bound to node site1, not site2",
                 id="already-bound-elsewhere"),
    pytest.param(None, "missing", UID, "site1", 'pod default/missing is gone: pods "missing" not found', id="gone"),
    pytest.param("replaced", "vm-a", "99999999-0000-0000-0000-000000000000", "site2",
                 f"pod default/vm-a has uid {UID}, not 99999999-0000-0000-0000-000000000000: "
                 "it was deleted and created again", id="replaced-before-bind"),
    pytest.param("raced-here", "vm-a", UID, "site2", "", id="409-bound-meanwhile-here"),
    pytest.param("raced-elsewhere", "vm-a", UID, "site2", "pod default/vm-a is already bound to node site3, not site2",
                 id="409-bound-meanwhile-elsewhere"),
    pytest.param("recreated", "vm-a", UID, "site2",
                 f"pod default/vm-a has uid 77777777-0000-0000-0000-000000000000, not {UID}: "
                 "it was deleted and created again", id="409-uid-precondition"),
    pytest.param("deleted", "vm-a", UID, "site2", 'pod default/vm-a is gone: pods "vm-a" not found',
                 id="404-deleted-meanwhile"),
])
def test_bind_answers(api, app, setup, name, uid, node, error) -> None:
    if setup == "replaced":
        api.add_pod(vm_pod("vm-a", UID))
    elif setup in ("raced-here", "raced-elsewhere", "recreated", "deleted"):
        # the binder reads the pod unbound; by the time it posts, another binder bound it, or it was
        # deleted (and created again)
        api.stale[("default", "vm-a")] = vm_pod("vm-a", UID)
        if setup == "raced-here":
            api.add_pod(vm_pod("vm-a", UID, node="site2"))
        elif setup == "raced-elsewhere":
            api.add_pod(vm_pod("vm-a", UID, node="site3"))
        elif setup == "recreated":
            api.add_pod(vm_pod("vm-a", "77777777-0000-0000-0000-000000000000"))
    client = app.test_client()

    assert bind(client, name, uid, node) == error
    # an error releases at once; a success holds the slot until the watch shows the placement recorded
    api.wait_for(lambda: reservations(app) == 0)


def test_a_failed_binding_releases_its_reservation(api, app) -> None:
    api.add_pod(vm_pod("vm-a", UID))
    api.binding_status = 500
    client = app.test_client()

    assert bind(client, "vm-a", UID, "site2") == (
        "binding pod default/vm-a to node site2 failed: 500 Internal Server Error: forced by the test")
    assert reservations(app) == 0

    api.binding_status = None
    assert bind(client, "vm-a", UID, "site2") == ""


def test_a_binding_made_but_answered_with_an_error_is_success(api, app) -> None:
    api.add_pod(vm_pod("vm-a", UID))
    api.binding_status, api.bind_anyway = 504, True  # e.g. the API server timed out after storing it
    extender = app.extensions[EXTENSION_KEY]

    assert bind(app.test_client(), "vm-a", UID, "site2") == ""
    assert api.pods[("default", "vm-a")]["metadata"]["annotations"].items() >= PLACEMENT.items()  # recorded
    api.wait_for(lambda: UID in extender.cluster.pods([UID]) and reservations(app) == 0)
    assert extender.view()[1].usage("site2").vms == 1


def test_a_bind_that_no_longer_fits_says_so(api, app) -> None:
    # site2 takes 3 c6.large.2 VMs (12 GB free / 4 GB); 3 are bound there
    for i in range(3):
        api.push("pods", "ADDED", vm_pod(f"placed-{i}", f"00000000-0000-0000-0000-00000000000{i}", node="site2"))
    cache = app.extensions[EXTENSION_KEY].cluster
    api.wait_for(lambda: cache.stats()["pods"] == 7)
    api.add_pod(vm_pod("vm-a", UID))

    assert bind(app.test_client(), "vm-a", UID, "site2") == (
        "pod default/vm-a no longer fits node site2: Flavor: c6.large.2 has 0 left at site2 (stock 3, placed 3)")
    assert api.seen("POST", "/api/v1/namespaces/default/pods/vm-a/binding") == []
    assert reservations(app) == 0


def test_a_burst_of_binds_places_exactly_the_free_slots(api, app) -> None:
    extender = app.extensions[EXTENSION_KEY]
    policy, snapshot = extender.view()
    site2 = policy.inventory.sites["site2"]
    slots = snapshot.flavor_stock(site2, policy.inventory.flavor("region1", "c6.large.2")).left
    pods = 12
    assert 0 < slots < pods
    uids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(pods)]
    for i, uid in enumerate(uids):
        api.add_pod(vm_pod(f"burst-{i}", uid))

    def schedule(i: int) -> tuple[list[str], str]:
        client = app.test_client()
        pod = vm_pod(f"burst-{i}", uids[i])
        passed = client.post("/filter", json={"Pod": pod, "NodeNames": ["site2"]}).get_json()["NodeNames"]
        return passed, bind(client, f"burst-{i}", uids[i], "site2")

    with ThreadPoolExecutor(max_workers=pods) as pool:
        results = list(pool.map(schedule, range(pods)))

    bound = [i for i, (_, error) in enumerate(results) if error == ""]
    assert len(bound) == slots
    assert {i: error for i, (_, error) in enumerate(results) if error} == {
        i: f"pod default/burst-{i} no longer fits node site2: Flavor: c6.large.2 has 0 left at site2 "
           f"(stock {slots}, placed {slots})"
        for i in range(pods) if i not in bound}
    assert len([r for r in api.requests if r.method == "POST" and r.path.endswith("/binding")]) == slots
    cache = extender.cluster
    api.wait_for(lambda: all(uids[i] in cache.pods([uids[i]]) for i in bound) and reservations(app) == 0)
    assert extender.view()[1].usage("site2").vms == slots


def test_preempt_with_the_cache_keeps_the_nodes_where_eviction_frees_a_slot(api, app) -> None:
    # site2 full: 3 c6.large.2 VMs bound there; a plain pod there too; site3 is in region2
    full = [vm_pod(f"placed-{i}", f"00000000-0000-0000-0000-00000000000{i}", node="site2") for i in range(3)]
    plain = vm_pod("plain-2", "00000000-0000-0000-0000-0000000000aa", node="site2")
    del plain["metadata"]["annotations"]["site-extender.io/vm"]
    on_site3 = vm_pod("on-site3", "00000000-0000-0000-0000-0000000000bb", node="site3")
    for pod in [*full, plain, on_site3]:
        api.push("pods", "ADDED", pod)
    cache = app.extensions[EXTENSION_KEY].cluster
    api.wait_for(lambda: cache.stats()["pods"] == 9)
    preemptor = vm_pod("vm-a", UID)  # c6.large.2, region1

    def meta(*uids: str, pdb: int = 0) -> dict:
        return {"Pods": [{"UID": u} for u in uids], "NumPDBViolations": pdb}

    def uid(pod: dict) -> str:
        return pod["metadata"]["uid"]

    answer = app.test_client().post("/preempt", json={"Pod": preemptor, "NodeNameToMetaVictims": {
        "site2": meta(uid(full[0]), "not-a-pod", pdb=1),   # a VM goes: a slot frees
        "site3": meta(uid(on_site3)),                        # region2: never, whatever goes
        "site1": meta(uid(full[1])),                         # that pod is not on site1
    }}).get_json()
    assert answer == {"NodeNameToMetaVictims": {"site2": meta(uid(full[0]), pdb=1)}}

    # the full-pod form: evicting only the plain pod frees nothing the VM needs
    answer = app.test_client().post("/preempt", json={"Pod": preemptor, "NodeNameToVictims": {
        "site2": {"Pods": [plain], "NumPDBViolations": 0},
    }}).get_json()
    assert answer == {"NodeNameToMetaVictims": {}}
    answer = app.test_client().post("/preempt", json={"Pod": preemptor, "NodeNameToVictims": {
        "site2": {"Pods": [plain, full[2]], "NumPDBViolations": 0},
    }}).get_json()
    assert answer == {"NodeNameToMetaVictims": {"site2": meta(uid(plain), uid(full[2]))}}
