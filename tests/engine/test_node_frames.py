"""Cache mode keeps, per snapshot and node generation, each node name's ref, candidate and site
position (`Extender._frame`). A node that changes (its labels, its site) or appears must be seen on
the next call, not the memo's old answer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from extender.app import create_app
from extender.config.settings import Settings
from extender.domain.model import REGION_LABEL, SITE_LABEL, NodeRef, node_ref
from extender.kube.view import StaticCluster
from tests.conftest import POLICY_DIR, load_fixture


class LabelledCluster(StaticCluster):
    """Nodes with labels that the test changes, as a node watch would."""

    def __init__(self, nodes: Mapping[str, Mapping[str, str]]) -> None:
        self.labels = dict(nodes)
        self.generation = 0
        self._cache: dict[str, NodeRef] = {}

    def change(self, name: str, labels: Mapping[str, str] | None) -> None:
        if labels is None:
            self.labels.pop(name, None)
        else:
            self.labels[name] = labels
        self._cache.pop(name, None)
        self.generation += 1

    def resolve(self, names: Sequence[str]) -> list[NodeRef]:
        refs = []
        for name in names:
            if name not in self.labels:
                refs.append(node_ref(name, None, known=False))
                continue
            if name not in self._cache:
                self._cache[name] = node_ref(name, self.labels[name])
            refs.append(self._cache[name])
        return refs

    def node_generation(self) -> int:
        return self.generation


def filter_answer(client, names: list[str]) -> dict:
    pod = load_fixture("scheduler/cache-mode/filter-0005.json")["Pod"]
    vm = {"flavors": [{"flavorID": "c6.large.2"}], "resourceCommonInfo": {"selector": {"regions": [{"region": "region1"}]}}}
    pod["metadata"]["annotations"]["site-extender.io/vm"] = json.dumps(vm)
    return client.post("/filter", json={"Pod": pod, "NodeNames": names}).get_json()


def test_a_changed_node_is_seen_on_the_next_call() -> None:
    cluster = LabelledCluster({"node-a": {SITE_LABEL: "site1"}, "node-b": {SITE_LABEL: "site3"}})
    client = create_app({"SETTINGS": Settings(policy=POLICY_DIR), "CLUSTER": cluster, "TESTING": True}).test_client()

    first = filter_answer(client, ["node-a", "node-b", "node-c"])
    assert first["NodeNames"] == ["node-a"]
    assert set(first["FailedAndUnresolvableNodes"]) == {"node-b", "node-c"}
    assert first == filter_answer(client, ["node-a", "node-b", "node-c"])  # from the memo: the same

    cluster.change("node-a", {SITE_LABEL: "site8"})  # now a region3 site
    cluster.change("node-b", {SITE_LABEL: "site2"})  # now a region1 site
    cluster.change("node-c", {SITE_LABEL: "site5"})  # appears
    second = filter_answer(client, ["node-a", "node-b", "node-c"])
    assert second["NodeNames"] == ["node-b", "node-c"]
    assert list(second["FailedAndUnresolvableNodes"]) == ["node-a"]
    assert "site site8 is in region region3" in second["FailedAndUnresolvableNodes"]["node-a"]

    cluster.change("node-b", {SITE_LABEL: "site2", REGION_LABEL: "region2"})  # labelled unlike its site
    third = filter_answer(client, ["node-a", "node-b", "node-c"])
    assert third["NodeNames"] == ["node-c"]
    assert "site site2 is in region region2" in third["FailedAndUnresolvableNodes"]["node-b"]
