"""Structured logs under gunicorn: JSON lines, one per decision, level from the environment, no bodies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.server import REPO, Served, serve

pytestmark = pytest.mark.process

FILTER_BODY = (REPO / "policy" / "samples" / "filter-cache.json").read_bytes()
PRIORITIZE_BODY = (REPO / "policy" / "samples" / "prioritize-cache.json").read_bytes()
POD_UID = json.loads(FILTER_BODY)["Pod"]["metadata"]["uid"]


def lines(served: Served) -> list[dict]:
    text = served.log()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_for(served: Served, count: int, **fields: object) -> list[dict]:
    """The log entries with these fields, once there are `count` (lines land after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        found = [e for e in lines(served) if all(e.get(k) == v for k, v in fields.items())]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory):
    with serve(tmp_path_factory.mktemp("logs")) as served:
        assert served.post("/filter", FILTER_BODY).status == 200
        assert served.post("/prioritize", PRIORITIZE_BODY).status == 200
        yield served


def test_every_line_is_a_json_object(logged: Served) -> None:
    entries = lines(logged)

    assert entries
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)


def test_one_line_per_decision_with_pod_verb_nodes_top_site_and_duration(logged: Served) -> None:
    filter_, prioritize = wait_for(logged, 2, msg="decision", pod_uid=POD_UID)

    assert {k: filter_[k] for k in ("level", "logger", "verb", "pod", "nodes_in", "nodes_out", "failed",
                                    "unresolvable", "error")} == {
        "level": "info", "logger": "extender.decisions", "verb": "filter", "pod": "default/smallvm",
        "nodes_in": 3, "nodes_out": 2, "failed": 0, "unresolvable": 1, "error": ""}
    assert {k: prioritize[k] for k in ("verb", "pod", "nodes_in", "nodes_out", "top_site", "top_score")} == {
        "verb": "prioritize", "pod": "default/smallvm", "nodes_in": 3, "nodes_out": 3, "top_site": "site1",
        "top_score": 10}
    assert filter_["duration_ms"] >= 0 and prioritize["duration_ms"] >= 0


def test_access_lines_are_structured(logged: Served) -> None:
    access = wait_for(logged, 1, logger="gunicorn.access", path="/prioritize")

    assert access and access[0]["method"] == "POST" and access[0]["status"] == 200


def test_no_request_body_at_info_level(logged: Served) -> None:
    wait_for(logged, 2, msg="decision", pod_uid=POD_UID)
    text = logged.log()
    annotation = json.loads(FILTER_BODY)["Pod"]["metadata"]["annotations"]["site-extender.io/vm"]

    assert "flavorID" not in text and annotation not in text
    assert "site-extender.io/vm" not in text


def test_log_level_comes_from_the_environment(tmp_path: Path) -> None:
    with serve(tmp_path, env={"SITE_EXTENDER_LOG_LEVEL": "warning"}) as served:
        assert served.post("/filter", FILTER_BODY).status == 200
        entries = lines(served)

    assert not [e for e in entries if e["level"] in ("info", "debug")]
    assert [e for e in entries if e["level"] == "warning"]  # the no-cluster warning still shows
