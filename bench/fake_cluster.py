"""The generated cluster served by the tests' fake API server (`tests/fake_apiserver.py`): one Node
per site and VM pods bound to them, so that the extender runs with its node/pod watch cache as in a
cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.cluster import Cluster
from tests.fake_apiserver import FakeApiServer, fake_apiserver


def bound_pods(cluster: Cluster, per_site: int) -> list[dict[str, Any]]:
    """`per_site` running VM pods on each node, cycling over the generated pods' requests."""
    templates = [json.loads(pod) for pod in cluster.pods]
    pods = []
    for i, site in enumerate(cluster.site_ids):
        for k in range(per_site):
            pod = json.loads(json.dumps(templates[(i * per_site + k) % len(templates)]))
            meta = pod["metadata"]
            meta["name"] = f"vm-{site}-{k}"
            meta["uid"] = f"00000000-0000-4000-8000-{i * per_site + k:012d}"
            pod["spec"]["nodeName"] = site
            pod["status"] = {"phase": "Running"}
            pods.append(pod)
    return pods


@contextmanager
def fake_cluster(cluster: Cluster, per_site: int) -> Iterator[FakeApiServer]:
    with fake_apiserver() as api:
        api.lists["nodes"] = {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1000"},
                              "items": [json.loads(node) for node in cluster.nodes]}
        api.lists["pods"] = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1000"},
                             "items": bound_pods(cluster, per_site)}
        yield api
