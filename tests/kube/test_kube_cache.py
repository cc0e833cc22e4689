"""The node/pod cache with the real `kubernetes` client against recorded API answers
(tests/fake_apiserver.py): list, watch from the list's version with bookmarks, re-list on 410 and on
errors, and what the engine then decides."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import CoreV1Api

from extender.app import create_app
from extender.config.policy_store import PolicyStore
from extender.config.settings import Settings
from extender.kube import config
from extender.kube.cache import POD_SELECTOR, KubeCache, Timing
from tests.conftest import POLICY_DIR, load_fixture
from tests.fake_apiserver import FakeApiServer, Stream, fake_apiserver, recorded, recorded_lines, recorded_status

FAST = Timing(watch_timeout=1, request_timeout=5, backoff_min=0.05, backoff_max=0.2)

GONE = json.dumps({"type": "ERROR", "object": {
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": "too old resource version: 249 (300)", "reason": "Expired", "code": 410}})
"""The ERROR event a watch gets when its resourceVersion was compacted away (the Status of a 410)."""


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with fake_apiserver() as server:
        yield server


def core_for(api: FakeApiServer, tmp_path: Path) -> CoreV1Api:
    target = config.Target(config.KUBECONFIG, str(api.kubeconfig(tmp_path)))
    return CoreV1Api(config.api_client(target))


@pytest.fixture
def make_cache(api: FakeApiServer, tmp_path: Path) -> Iterator:
    caches: list[KubeCache] = []

    def make(**kw) -> KubeCache:
        cache = KubeCache(core_for(api, tmp_path), PolicyStore(POLICY_DIR), timing=FAST, **kw).start()
        caches.append(cache)
        assert cache.wait_synced(10)
        return cache

    yield make
    for cache in caches:
        cache.close()


def test_cache_fills_from_the_list_then_the_watch(api, make_cache) -> None:
    api.scripts["nodes"].append(Stream(recorded_lines("watch-nodes.jsonl")))
    api.scripts["pods"].append(Stream(recorded_lines("watch-pods.jsonl")))

    cache = make_cache()
    # the list, then a watch from the list's resourceVersion (249) with bookmarks; the recorded
    # streams end, and the next watch starts from the last version they carried
    api.wait_for(lambda: len(api.watches("nodes")) >= 2 and len(api.watches("pods")) >= 2)

    first_nodes, first_pods = api.watches("nodes")[0], api.watches("pods")[0]
    assert first_nodes.query["resourceVersion"] == "249"
    assert first_nodes.query["allowWatchBookmarks"] == "true"
    assert first_pods.query["resourceVersion"] == "249"
    assert first_pods.query["fieldSelector"] == POD_SELECTOR
    assert api.lists_served("pods")[0].query["fieldSelector"] == POD_SELECTOR
    assert api.watches("nodes")[1].query["resourceVersion"] == "251"
    assert api.watches("pods")[1].query["resourceVersion"] == "256"
    assert len(api.lists_served("nodes")) == 1 and len(api.lists_served("pods")) == 1

    site2, site3 = cache.resolve(["site2", "site3"])
    assert site2.labels["site-extender.io/status"] == "maintenance"  # relabelled on the watch
    assert (site3.site_id, site3.region, site3.zone) == ("site3", "region2", "az3")
    assert cache.resolve(["nosuch"])[0].known is False

    pods = {bound.pod.metadata.name: bound.node for bound in cache.pods(
        [p["metadata"]["uid"] for p in recorded("list-pods-assigned.json")["items"]]
        + ["92cc3fdb-2ed9-4a34-97c4-50c227be2868"]).values()}
    # `plain` is terminating (deletionTimestamp) but still holds its node; `unbound` got bound on the watch
    assert pods == {"demovm": "site1", "demovm2": "site1", "demovm3": "site1", "plain": "site1",
                    "unbound": "site2"}

    version, placements = cache.placements()
    assert sorted((p.site_id, p.flavor_id, p.vcpus, p.ram, p.need_eip) for p in placements) == [
        ("site1", "c6.large.2", 2, 4096, True)] * 3  # the three demovm pods; plain and unbound are no VMs
    assert cache.placements()[0] == version  # unchanged: same version

    stats = cache.stats()
    assert {k: stats[k] for k in ("mode", "synced", "nodes", "pods", "reservations")} == {
        "mode": "kubernetes", "synced": True, "nodes": 3, "pods": 5, "reservations": 0}
    assert 0 <= stats["last_sync_age_seconds"] < 60


@pytest.mark.parametrize("stream, error", [
    pytest.param(Stream([GONE]), False, id="410-gone-event"),
    pytest.param(Stream(status=500, body=recorded_status("watch-bad-rv.txt")[1]), True, id="500-bad-rv"),
    pytest.param(Stream(recorded_lines("watch-pods.jsonl")[:1], cut=True), True, id="stream-cut"),
])
def test_watch_failures_list_again(api, make_cache, stream, error) -> None:
    api.scripts["pods"].append(stream)

    cache = make_cache()
    api.wait_for(lambda: len(api.lists_served("pods")) >= 2)

    assert cache.synced()
    assert len(api.lists_served("nodes")) == 1
    assert (cache.stats()["watch_errors"] >= 1) is error


def test_a_cache_never_listed_is_not_synced(tmp_path: Path) -> None:
    with fake_apiserver() as api:
        core = core_for(api, tmp_path)
    cache = KubeCache(core, PolicyStore(POLICY_DIR), timing=FAST).start()  # the server is gone
    try:
        assert not cache.wait_synced(0.3)
        assert cache.stats()["synced"] is False and cache.stats()["last_sync_age_seconds"] is None
    finally:
        cache.close()


def filter_site2(client) -> dict:
    args = load_fixture("scheduler/cache-mode/filter-0003.json")  # demovm2: region1
    return client.post("/filter", json={"Pod": args["Pod"], "NodeNames": ["site2"]}).get_json()


def test_a_node_relabel_changes_decisions(api, make_cache, tmp_path) -> None:
    cache = make_cache()
    app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, kube="none"), "CLUSTER": cache, "TESTING": True})
    client = app.test_client()
    assert filter_site2(client)["NodeNames"] == ["site2"]

    # the recorded relabel event of site2, with the node moved to region2
    event = json.loads(recorded_lines("watch-nodes.jsonl")[0])["object"]
    event["metadata"]["labels"]["topology.kubernetes.io/region"] = "region2"
    api.push("nodes", "MODIFIED", event)
    api.wait_for(lambda: cache.resolve(["site2"])[0].region == "region2")

    answer = filter_site2(client)
    assert answer["NodeNames"] == []
    assert answer["FailedAndUnresolvableNodes"] == {
        "site2": "RegionAndAZ: site site2 is in region region2, the request wants region1"}

    api.push("nodes", "DELETED", event)
    api.wait_for(lambda: not cache.resolve(["site2"])[0].known)
    assert filter_site2(client)["FailedAndUnresolvableNodes"] == {
        "site2": "node site2 is not known to the extender's node cache yet"}


@pytest.mark.parametrize("mode, environ, expected", [
    pytest.param("auto", {}, config.Target(config.NONE), id="auto-nothing"),
    pytest.param("auto", {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": "/k"}, config.Target(config.IN_CLUSTER),
                 id="auto-in-cluster-first"),
    pytest.param("auto", {"KUBECONFIG": "/k"}, config.Target(config.KUBECONFIG, "/k"), id="auto-kubeconfig"),
    pytest.param("auto", {"KUBECONFIG": "/k", "SITE_EXTENDER_KUBECONFIG": "/s"}, config.Target(config.KUBECONFIG, "/s"),
                 id="auto-own-kubeconfig-first"),
    pytest.param("none", {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, config.Target(config.NONE), id="none"),
    pytest.param("kubeconfig", {}, config.Target(config.KUBECONFIG, "~/.kube/config"), id="kubeconfig-default"),
    pytest.param("In-Cluster", {}, config.Target(config.IN_CLUSTER), id="in-cluster-any-case"),
])
def test_cluster_access_is_chosen_from_the_environment(mode, environ, expected) -> None:
    assert config.choose(mode, environ) == expected


CONF = config.CONF_ORIGIN


@pytest.mark.parametrize("mode, environ, conf, expected", [
    # conf.yaml's (kubeconfig, master), as the original's BuildConfigFromFlags(master, kubeconfig) reads them
    pytest.param("auto", {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": "/k"}, ("/c", "0.0.0.0"),
                 config.Target(config.KUBECONFIG, "/c", "0.0.0.0", CONF), id="conf-first-in-auto"),
    pytest.param("auto", {}, (None, "10.0.0.2:8080"), config.Target(config.KUBECONFIG, None, "10.0.0.2:8080", CONF),
                 id="conf-master-alone"),
    pytest.param("auto", {"SITE_EXTENDER_KUBECONFIG": "/s"}, ("/c", None),
                 config.Target(config.KUBECONFIG, "/s", None, CONF), id="own-kubeconfig-wins"),
    pytest.param("none", {}, ("/c", "0.0.0.0"), config.Target(config.NONE), id="explicit-none-wins"),
    pytest.param("kubeconfig", {"KUBECONFIG": "/k"}, ("/c", None), config.Target(config.KUBECONFIG, "/c", None, CONF),
                 id="kubeconfig-mode-takes-the-conf-file"),
])
def test_conf_yaml_names_the_cluster(mode, environ, conf, expected) -> None:
    assert config.choose(mode, environ, *conf) == expected


@pytest.mark.parametrize("master, tls, url", [
    ("https://api.example:6443/", False, "https://api.example:6443"),
    ("127.0.0.1:8080", False, "http://127.0.0.1:8080"),
    ("127.0.0.1:6443", True, "https://127.0.0.1:6443"),
])
def test_a_bare_master_takes_the_scheme_client_go_gives_it(master: str, tls: bool, url: str) -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.ssl_ca_cert = "/ca.crt" if tls else None
    assert config.server_url(master, configuration) == url


@pytest.mark.parametrize("target, message", [
    pytest.param(config.Target(config.IN_CLUSTER), "cannot load cluster access (in-cluster): ", id="in-cluster"),
    pytest.param(config.Target(config.KUBECONFIG, "/nonexistent/kubeconfig"),
                 "cannot load cluster access (kubeconfig /nonexistent/kubeconfig): ", id="kubeconfig"),
])
def test_a_forced_mode_that_cannot_load_is_an_error(target, message, monkeypatch) -> None:
    from extender.errors import KubeConfigError

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeConfigError) as raised:
        config.api_client(target)
    assert str(raised.value).startswith(message)


def test_an_unknown_mode_is_an_error() -> None:
    from extender.errors import KubeConfigError

    expected = "SITE_EXTENDER_KUBE='cluster': expected one of auto, none, in-cluster, kubeconfig"
    with pytest.raises(KubeConfigError, match=expected):
        config.choose("cluster", {})


BOOKMARK = json.dumps({"type": "BOOKMARK", "object": {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"resourceVersion": "300", "annotations": {"k8s.io/initial-events-end": "true"}}}})
"""A bookmark as the API server sends it: only the object's kind and resourceVersion are meaningful."""


def test_a_bookmark_moves_the_version_and_nothing_else(api, make_cache) -> None:
    api.scripts["pods"].append(Stream([BOOKMARK]))

    cache = make_cache()
    api.wait_for(lambda: len(api.watches("pods")) >= 2)

    assert api.watches("pods")[1].query["resourceVersion"] == "300"
    assert cache.stats()["pods"] == 4 and cache.stats()["events"] == 0


def test_a_relist_after_410_forgets_what_went_away(api, make_cache) -> None:
    cache = make_cache()
    demovm3 = "8e797b61-5388-4435-87e2-9d39cb3715b1"
    assert demovm3 in cache.pods([demovm3])

    # while the watch was gone, demovm3 was deleted: the next list no longer has it
    pods = api.lists["pods"]
    api.lists["pods"] = {**pods, "items": [p for p in pods["items"] if p["metadata"]["uid"] != demovm3]}
    api.scripts["pods"].append(Stream([GONE]))  # the next pod watch is told its version is too old
    api.wait_for(lambda: demovm3 not in cache.pods([demovm3]), timeout=10)
    assert cache.stats()["pods"] == 3
    assert len(cache.placements()[1]) == 2


def test_placements_kept_up_event_by_event_are_those_of_the_final_state() -> None:
    """The cache works placements out again only for the pods an event changed (all of them after a
    relist or a node change); after any sequence of events they are those of a cache that got the
    final nodes and pods at once."""
    import random

    import msgspec

    from extender.protocol.wire import NodeHead, Pod

    rng = random.Random(7)
    templates = recorded("list-pods-assigned.json")["items"]
    nodes = {n["metadata"]["name"]: n for n in recorded("list-nodes.json")["items"]}
    names = sorted(nodes)

    def pod(k: int) -> Pod:
        raw = json.loads(json.dumps(rng.choice(templates)))
        raw["metadata"]["uid"], raw["metadata"]["name"] = f"uid-{k}", f"pod-{k}"
        raw["spec"]["nodeName"] = rng.choice([*names, "gone", ""])  # "": not bound yet
        return msgspec.convert(raw, Pod)

    def head(name: str) -> NodeHead:
        raw = json.loads(json.dumps(nodes[name]))
        if rng.random() < 0.5:
            raw["metadata"]["labels"]["site-extender.io/site"] = rng.choice(["site1", "site2", "site5", "site9"])
        return msgspec.convert(raw, NodeHead)

    def split(pods: dict[str, Pod]) -> tuple[dict[str, Pod], dict[str, Pod]]:
        """As a list answers: the bound pods, and those not bound yet."""
        return ({u: p for u, p in pods.items() if p.spec.nodeName},
                {u: p for u, p in pods.items() if not p.spec.nodeName})

    cache = KubeCache(None, PolicyStore(POLICY_DIR))  # type: ignore[arg-type]  # fed by hand, never started
    pods: dict[str, Pod] = {}
    for step in range(300):
        roll = rng.random()
        if roll < 0.6:
            k = rng.randrange(40)
            new = pod(k)
            pods[new.metadata.uid] = new
            cache._pod_event("MODIFIED", new)
        elif roll < 0.8 and pods:
            uid = rng.choice(sorted(pods))
            cache._pod_event("DELETED", pods.pop(uid))
        elif roll < 0.9:
            cache._node_event("MODIFIED", head(rng.choice(names)))
        else:
            cache._replace_pods(*split(pods))
        if step % 7 == 0:
            cache.placements()  # a view in between: the next one starts from it

    fresh = KubeCache(None, PolicyStore(POLICY_DIR))  # type: ignore[arg-type]
    fresh._replace_nodes(dict(cache._nodes))
    fresh._replace_pods(*split(pods))
    assert sorted(map(repr, cache.placements()[1])) == sorted(map(repr, fresh.placements()[1]))
    assert cache._pending == fresh._pending and set(cache._pending) == set(split(pods)[1])
    assert all(cache.pending(uid) is pods[uid] for uid in split(pods)[1])
    assert len(cache.placements()[1]) > 5
