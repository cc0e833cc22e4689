"""`/bind` and `/preempt` without a cluster (`SITE_EXTENDER_KUBE=none`, as `make run` on a laptop)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SCHEDULER_FIXTURES

pytestmark = pytest.mark.process


def body(name: str) -> dict:
    return json.loads((SCHEDULER_FIXTURES / "cache-mode" / name).read_text())


def test_bind_without_a_cluster_answers_an_error(client) -> None:
    answer = client.post("/bind", json=body("bind-0001.json"))
    assert answer.status_code == 200
    assert answer.get_json() == {
        "Error": "site-extender cannot bind: no cluster is configured (SITE_EXTENDER_KUBE=none)"}


def test_preempt_without_a_cluster_takes_the_schedulers_victims(client) -> None:
    # nothing can be checked against a cache; bigvm fits site1 under the policy, so the node stays
    answer = client.post("/preempt", json=body("preempt-0001.json"))
    assert answer.get_json() == {"NodeNameToMetaVictims": {"site1": {
        "Pods": [{"UID": "bc7eb326-a5db-492a-acac-e94997bfbbcc"}, {"UID": "ef5ec419-9a1f-4193-94b6-d9448e513c54"}],
        "NumPDBViolations": 0}}}


def test_preempt_drops_nodes_where_the_vm_can_never_go(client) -> None:
    args = body("preempt-0001.json")
    args["NodeNameToMetaVictims"]["site9"] = {"Pods": [{"UID": "x"}], "NumPDBViolations": 0}  # offline site
    args["NodeNameToMetaVictims"]["site4"] = {"Pods": [], "NumPDBViolations": 0}  # no victim
    assert list(client.post("/preempt", json=args).get_json()["NodeNameToMetaVictims"]) == ["site1"]


def test_a_bind_body_that_is_not_the_protocol_is_a_400(client) -> None:
    answer = client.post("/bind", data=b'{"PodName": "x"}', content_type="application/json")
    assert answer.status_code == 400
    assert "PodNamespace" in answer.get_json()["error"]


def test_gunicorn_without_a_cluster_says_so_at_start_up_and_is_ready(server) -> None:
    assert server.get("/readyz").status == 200
    entries = [json.loads(line) for line in server.log().splitlines() if line.strip()]  # JSON log lines
    assert any(e["level"] == "warning" and e["msg"].startswith("no cluster configured: serving from the inventory alone")
               for e in entries)
