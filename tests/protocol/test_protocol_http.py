"""Every recorded kube-scheduler request, POSTed over HTTP to the extender served by gunicorn."""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from tests.conftest import SCHEDULER_FIXTURES
from tests.server import Served

pytestmark = pytest.mark.process

FILTER_KEYS = ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"]


class _RawNodeList(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


class _RawArgs(msgspec.Struct):
    Nodes: _RawNodeList | None = None
    NodeNames: list[str] | None = None


def fixtures(verb: str) -> list:
    files = sorted(SCHEDULER_FIXTURES.glob(f"*/{verb}-*.json"))
    assert files, f"no {verb} fixtures under {SCHEDULER_FIXTURES}"
    return [pytest.param(f, id=f"{f.parent.name}/{f.stem}") for f in files]


def asked(body: bytes) -> tuple[list[str], dict[str, bytes] | None]:
    """Node names asked, and in full mode each node's exact bytes by name."""
    args = msgspec.json.decode(body, type=_RawArgs)
    if args.Nodes is not None:
        raw = {json.loads(bytes(r))["metadata"]["name"]: bytes(r) for r in args.Nodes.items or ()}
        return list(raw), raw
    return list(args.NodeNames or []), None


@pytest.mark.parametrize("path", fixtures("filter"))
def test_filter_fixture_answers_the_protocol(server: Served, path) -> None:
    body = path.read_bytes()
    names, raw_nodes = asked(body)

    response = server.post("/filter", body)

    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    answer = json.loads(response.data)
    assert list(answer) == FILTER_KEYS
    assert answer["Error"] == ""
    assert isinstance(answer["FailedNodes"], dict)
    assert isinstance(answer["FailedAndUnresolvableNodes"], dict)
    if raw_nodes is None:  # cache mode: names in, names out
        assert answer["Nodes"] is None
        passed = answer["NodeNames"]
        assert isinstance(passed, list)
    else:  # full mode: passing nodes back whole, byte for byte
        assert answer["NodeNames"] is None
        assert set(answer["Nodes"]) == {"metadata", "items"}
        passed = [item["metadata"]["name"] for item in answer["Nodes"]["items"]]
        for name in passed:
            assert raw_nodes[name] in response.data, f"node {name} was not returned unchanged"
    failed = set(answer["FailedNodes"]) | set(answer["FailedAndUnresolvableNodes"])
    assert not set(passed) & failed
    assert sorted(passed + sorted(failed)) == sorted(names), "every node asked is answered exactly once"
    assert [n for n in names if n in passed] == passed, "passing nodes keep the order asked"
    for reason in {**answer["FailedNodes"], **answer["FailedAndUnresolvableNodes"]}.values():
        assert isinstance(reason, str) and reason


@pytest.mark.parametrize("path", fixtures("prioritize"))
def test_prioritize_fixture_answers_integer_scores(server: Served, path) -> None:
    body = path.read_bytes()
    names, _ = asked(body)

    response = server.post("/prioritize", body)

    assert response.status == 200
    answer = json.loads(response.data)
    assert [entry["Host"] for entry in answer] == names
    for entry in answer:
        assert list(entry) == ["Host", "Score"]
        assert type(entry["Score"]) is int and 0 <= entry["Score"] <= 10
    # Integers on the wire, never 5.0: the scheduler drops every score of a call otherwise.
    assert not re.search(rb'"Score":\s*-?\d+\.', response.data)


def test_full_and_cache_mode_decide_alike(server: Served) -> None:
    for cache in sorted((SCHEDULER_FIXTURES / "cache-mode").glob("filter-*.json")):
        full = SCHEDULER_FIXTURES / "full-mode" / cache.name
        by_names = json.loads(server.post("/filter", cache.read_bytes()).data)
        by_nodes = json.loads(server.post("/filter", full.read_bytes()).data)
        assert by_names["NodeNames"] == [n["metadata"]["name"] for n in by_nodes["Nodes"]["items"]], cache.name
        assert by_names["FailedAndUnresolvableNodes"] == by_nodes["FailedAndUnresolvableNodes"], cache.name
        assert by_names["FailedNodes"] == by_nodes["FailedNodes"], cache.name


def test_region_selector_rejects_other_regions_as_unresolvable(server: Served) -> None:
    body = (SCHEDULER_FIXTURES / "cache-mode" / "filter-0003.json").read_bytes()  # demovm2 wants region1

    answer = json.loads(server.post("/filter", body).data)

    assert answer["NodeNames"] == ["site2", "site1"]
    assert answer["FailedAndUnresolvableNodes"] == {
        "site3": "RegionAndAZ: site site3 is in region region2, the request wants region1"
    }


def test_plain_pod_passes_every_node(server: Served) -> None:
    body = (SCHEDULER_FIXTURES / "cache-mode" / "filter-0002.json").read_bytes()  # no VM annotation

    answer = json.loads(server.post("/filter", body).data)

    assert answer["NodeNames"] == ["site1"]
    assert answer["FailedNodes"] == {} and answer["FailedAndUnresolvableNodes"] == {}


def test_probes(server: Served) -> None:
    assert json.loads(server.get("/healthz").data) == {"status": "ok"}
    ready = server.get("/readyz")
    assert ready.status == 200
    detail = json.loads(ready.data)
    assert detail["ready"] is True and detail["policy"]["sites"] >= 3
    version = json.loads(server.get("/version").data)
    assert version["name"] == "site-extender" and re.match(r"\d+\.\d+", version["version"])
