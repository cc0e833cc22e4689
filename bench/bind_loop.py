"""The scheduler's whole loop per pod with the extender as its binder (deploy/ sets `bindVerb`):
/filter over every node, /prioritize over the nodes that passed, /bind to the best of them. Each
bind reserves stock and binds the pod in the (fake) API server, whose watch tells the extender: what
is placed changes between every two pods, as in a busy cluster, and every call meets a new snapshot.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.cluster import Cluster
from bench.measure import Budget, Client, Timings, _expect_ok, check_filter, check_prioritize
from tests.fake_apiserver import FakeApiServer

VERBS = ("filter", "prioritize", "bind")
MAX_PODS = 3000
"""Pods made for the loop, one bind each (the loop stops earlier when the budget's time is up)."""


def pending_pods(cluster: Cluster, count: int, distinct: int = 0) -> list[dict[str, Any]]:
    """`count` unbound VM pods with their own names and uids, each with a fresh request (`Cluster.pod`;
    with `distinct`, the first `distinct` requests cycled)."""
    pods = []
    for i in range(count):
        pod = json.loads(cluster.pod(i % distinct if distinct else i))
        meta = pod["metadata"]
        meta["name"] = f"bench-bind-{i}"
        meta["uid"] = f"00000000-0000-4000-9000-{i:012d}"
        pod["spec"].pop("nodeName", None)
        pod["status"] = {"phase": "Pending"}
        pods.append(pod)
    return pods


def drive_binds(client: Client, api: FakeApiServer, cluster: Cluster, budget: Budget, distinct: int = 0
                ) -> tuple[dict[str, Timings], dict[str, list[bytes]], int]:
    """Run the loop pod after pod; the latencies per verb, a sample of each verb's bodies (for the
    floor), and how many binds the extender refused (stock gone meanwhile: an answer, not a failure)."""
    pods = pending_pods(cluster, min(MAX_PODS, budget.max_calls + budget.warmup), distinct)
    for pod in pods:
        api.add_pod(pod)
    samples: dict[str, list[float]] = {verb: [] for verb in VERBS}
    bodies: dict[str, list[bytes]] = {verb: [] for verb in VERBS}
    refused = 0
    deadline = time.perf_counter() + budget.seconds * len(VERBS)
    for i, pod in enumerate(pods):
        if len(samples["filter"]) >= budget.min_calls and time.perf_counter() > deadline:
            break
        body = cluster.cache_body(json.dumps(pod, separators=(",", ":")).encode())
        answer = _timed(client, "filter", body, samples, bodies, i >= budget.warmup)
        if i < 3:
            check_filter(body, answer)
        passed = json.loads(answer)["NodeNames"] or []
        if not passed:
            continue
        body = json.dumps({"Pod": pod, "Nodes": None, "NodeNames": passed}, separators=(",", ":")).encode()
        answer = _timed(client, "prioritize", body, samples, bodies, i >= budget.warmup)
        if i < 3:
            check_prioritize(body, answer)
        scores = json.loads(answer)
        best = max(scores, key=lambda h: h["Score"])["Host"]
        meta = pod["metadata"]
        body = json.dumps({"PodName": meta["name"], "PodNamespace": meta["namespace"], "PodUID": meta["uid"],
                           "Node": best}).encode()
        if json.loads(_timed(client, "bind", body, samples, bodies, i >= budget.warmup)).get("Error"):
            refused += 1
    return {verb: Timings(tuple(s)) for verb, s in samples.items()}, bodies, refused


def _timed(client: Client, verb: str, body: bytes, samples: dict[str, list[float]],
           bodies: dict[str, list[bytes]], keep: bool) -> bytes:
    start = time.perf_counter()
    status, answer = client.post("/" + verb, body)
    elapsed = time.perf_counter() - start
    _expect_ok("/" + verb, status, answer)
    if keep:
        samples[verb].append(elapsed)
        if len(bodies[verb]) < 32:
            bodies[verb].append(body)
    return answer
