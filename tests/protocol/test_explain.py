"""`POST /v1/explain` and `site-extender simulate`: every predicate's verdict for every node agrees with
what /filter answers, a Pod manifest is asked about every site, and what the server has placed counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from extender.app import create_app
from extender.config.settings import Settings
from tests.conftest import POLICY_DIR
from tests.server import REPO, serve

SAMPLES = sorted((POLICY_DIR / "samples").glob("*.json"))
VM_POD = REPO / "deploy" / "examples" / "vm-pod.yaml"
FILL_SITE1 = {"allocation": {"resource_group": {"name": "fill", "resources": [
    {"name": "vm", "flavors": [{"flavor_id": "c6.large.2"}], "count": 1}]},
    "selector": {"node_id": "site1"}, "replicas": 140}}
SITE1_FULL = "Flavor: c6.large.2 has 0 left at site1 (stock 140, placed 140)"


@pytest.fixture
def client(tmp_path: Path):
    settings = Settings(policy=POLICY_DIR, kube="none", data_dir=tmp_path / "data")
    return create_app({"SETTINGS": settings, "TESTING": True}).test_client()


def expected_answer(rules: list[dict]) -> tuple[str, str]:
    """What `decide.check` makes of the rules: the first unresolvable failure, else the first failure."""
    failing = [r for r in rules if r["result"] != "pass"]
    if not failing:
        return "pass", ""
    chosen = next((r for r in failing if r["result"] == "unresolvable"), failing[0])
    return chosen["result"], chosen["reason"]


def assert_agrees_with_filter(client, body: bytes) -> dict:
    answer = client.post("/v1/explain", data=body, content_type="application/json").get_json()
    document = json.loads(body)
    args = document if "Pod" in document else {"Pod": document, "NodeNames": [n["node"] for n in answer["nodes"]]}
    filtered = client.post("/filter", json=args).get_json()
    assert answer["filter"] == filtered
    for node in answer["nodes"]:
        if node["rules"]:
            assert [r["rule"] for r in node["rules"]] == answer["predicates"]
            assert expected_answer(node["rules"]) == (node["result"], node["reason"]), node
        reason = {**(filtered["FailedNodes"] or {}), **(filtered["FailedAndUnresolvableNodes"] or {})}.get(node["node"], "")
        assert node["reason"] == reason
    return answer


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_every_rule_verdict_agrees_with_filter(client, sample: Path) -> None:
    answer = assert_agrees_with_filter(client, sample.read_bytes())
    prioritized = client.post("/prioritize", data=sample.read_bytes(), content_type="application/json").get_json()
    assert answer["prioritize"] == prioritized


def test_a_pod_manifest_is_asked_about_every_site_with_every_failing_rule(client) -> None:
    manifest = json.dumps(yaml.safe_load(VM_POD.read_text())).encode()
    answer = assert_agrees_with_filter(client, manifest)

    assert answer["pod"] == "default/demovm"
    assert [n["node"] for n in answer["nodes"]] == [f"site{i}" for i in range(1, 13)]
    assert [n["node"] for n in answer["nodes"] if n["result"] == "pass"] == ["site1", "site2"]
    site7 = next(n for n in answer["nodes"] if n["node"] == "site7")
    assert [(r["rule"], r["result"]) for r in site7["rules"] if r["result"] != "pass"] == [
        ("ExclusiveSite", "unresolvable"), ("RegionAndAZ", "unresolvable")]
    assert site7["reason"].startswith("ExclusiveSite: ")


def test_what_is_allocated_counts(client) -> None:
    assert client.post("/v1/allocations", json=FILL_SITE1).status_code == 201
    manifest = json.dumps(yaml.safe_load(VM_POD.read_text())).encode()

    answer = assert_agrees_with_filter(client, manifest)

    site1 = next(n for n in answer["nodes"] if n["node"] == "site1")
    assert (site1["result"], site1["reason"]) == ("fail", SITE1_FULL)
    assert [r for r in site1["rules"] if r["result"] != "pass"] == [{"rule": "Flavor", "result": "fail", "reason": SITE1_FULL}]


@pytest.mark.parametrize(("body", "error"), [
    ({"kind": "Deployment", "metadata": {"name": "web"}},
     "kind 'Deployment': expected a Pod manifest (kind: Pod) or ExtenderArgs (with a Pod field)"),
    ({"metadata": {"name": "web"}}, "no kind: expected a Pod manifest (kind: Pod) or ExtenderArgs (with a Pod field)"),
    ({"kind": "Pod", "apiVersion": "v2"}, "apiVersion 'v2': a Pod is apiVersion v1"),
    ({"kind": "Pod", "metadata": {"name": 7}}, "invalid Pod: Expected `str`, got `int` - at `$.metadata.name`"),
    ([], "expected an object (ExtenderArgs or a Pod), got list"),
    ({"Pod": {}, "Nodes": []}, "invalid ExtenderArgs: Expected `object | null`, got `array` - at `$.Nodes`"),
])
def test_what_cannot_be_explained_is_a_400_that_says_why(client, body: object, error: str) -> None:
    answer = client.post("/v1/explain", json=body)
    assert answer.status_code == 400
    assert answer.get_json() == {"error": error}


def simulate(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "SITE_EXTENDER_POLICY": str(POLICY_DIR), "SITE_EXTENDER_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "extender.cli", "simulate", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)


@pytest.mark.process
def test_simulate_with_server_counts_what_the_server_placed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(tmp_path, env={"SITE_EXTENDER_DATA_DIR": str(data)}) as served:
        response = served.http.request("POST", served.url + "/v1/allocations", body=json.dumps(FILL_SITE1).encode(),
                                       headers={"Content-Type": "application/json"})
        assert response.status == 201
        remote = simulate("--server", served.url, str(VM_POD), data_dir=tmp_path / "elsewhere")
        remote_json = simulate("--server", served.url, "-o", "json", str(VM_POD), data_dir=tmp_path / "elsewhere")
        asked = served.http.request("POST", served.url + "/v1/explain", headers={"Content-Type": "application/json"},
                                    body=json.dumps(yaml.safe_load(VM_POD.read_text())).encode())
    local = simulate(str(VM_POD), data_dir=tmp_path / "empty")

    assert remote.returncode == 0, remote.stderr
    assert f"site1: {SITE1_FULL}" in remote.stdout.splitlines()
    assert "1 of 12 node(s) pass" in remote.stdout.splitlines()
    assert json.loads(remote_json.stdout) == json.loads(asked.data)
    assert "2 of 12 node(s) pass" in local.stdout.splitlines()  # nothing allocated here
