"""Bad bodies on every endpoint, under gunicorn: 400 (or 413/415) with the reason, never a 500 and never
"200 with an internal error"; names, ids and counts capped before anything large is built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extender.bounds import MAX_NODES, MAX_VICTIMS
from tests.ops.test_limits_http import exchange, parse, request
from tests.server import REPO, Served, serve

pytestmark = pytest.mark.process

FILTER = (REPO / "policy" / "samples" / "filter-cache.json").read_bytes()
ALLOCATION = (REPO / "policy" / "samples" / "allocations" / "rtc.json").read_bytes()
BIND = json.dumps({"PodName": "p", "PodNamespace": "default", "PodUID": "u", "Node": "site1"}).encode()
PREEMPT = json.dumps({"Pod": {"metadata": {"name": "p"}}, "NodeNameToMetaVictims": {"site1": {"Pods": [{"UID": "u"}]}}
                      }).encode()
BODIES = {"/filter": FILTER, "/prioritize": FILTER, "/bind": BIND, "/preempt": PREEMPT, "/v1/allocations": ALLOCATION,
          "/v1/explain": FILTER}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("bodies")
    with serve(directory, env={"SITE_EXTENDER_DATA_DIR": str(directory / "data")}) as served:
        yield served


def put(served: Served, path: str, body: bytes, content_type: str = "application/json"):
    return served.http.request("PUT", served.url + path, body=body, headers={"Content-Type": content_type},
                               retries=False)


def answered(raw: bytes) -> tuple[int, dict]:
    status, _, body = parse(raw)
    return status, body


@pytest.mark.parametrize("path", list(BODIES))
def test_invalid_utf8_inside_a_string(served: Served, path: str) -> None:
    value = {"/v1/allocations": b'"RTC"'}.get(path, b'"p"' if path in ("/bind", "/preempt") else b'"smallvm"')
    body = BODIES[path].replace(value, value[:2] + b"\xff" + value[2:], 1)  # a string value that is no UTF-8
    assert body != BODIES[path]

    status, answer = answered(exchange(served, request(path, body, {"Content-Length": str(len(body))})))

    assert status == 400, answer  # before: 200 with "internal error: UnicodeDecodeError" or a 500
    assert "not UTF-8" in answer["error"]


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("chunks", [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXY0\r\n\r\n"],
                         ids=["bad-size", "no-terminator"])
def test_malformed_chunked_body(served: Served, path: str, chunks: bytes) -> None:
    raw = request(path, chunks, {"Transfer-Encoding": "chunked"})

    status, answer = answered(exchange(served, raw))

    assert status == 400, answer  # before: 200 with "internal error: InvalidChunkSize" or a 500
    assert answer["error"].startswith("malformed chunked body: ")


def test_deeply_nested_allocation_request(served: Served) -> None:
    for nested in (b'{"allocation": {"zz": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
                   b'{"allocation": {"resource_group": {"name": "a", "resources": []}, "selector": '
                   + b'{"regions": [' * 50_000 + b"]}" * 50_000 + b"}}"):
        response = served.post("/v1/allocations", nested)

        assert response.status == 400, response.data
        assert json.loads(response.data)["error"].startswith("invalid allocation request: ")


def test_an_id_with_a_trailing_newline_is_not_an_id(served: Served) -> None:
    response = put(served, "/v1/allocations/abc%0A", ALLOCATION)

    assert response.status == 400  # before: 201, a new allocation under "abc\n"
    assert json.loads(response.data)["fields"][0]["field"] == "id"
    assert served.get("/v1/allocations/abc").status == 404


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_allocations_take_json_only(served: Served, content_type: str) -> None:
    before = json.loads(served.get("/v1/allocations").data)

    for response in (served.post("/v1/allocations", ALLOCATION, content_type=content_type),
                     put(served, "/v1/allocations/form-1", ALLOCATION, content_type)):
        assert response.status == 415  # before: 201, a cross-site form could allocate
        assert "Content-Type must be application/json" in json.loads(response.data)["error"]
    assert json.loads(served.get("/v1/allocations").data) == before


def test_head_on_allocations_is_cheap_and_empty(served: Served) -> None:
    response = served.http.request("HEAD", served.url + "/v1/allocations", retries=False)

    assert response.status == 200
    assert response.data == b""


# --- Caps ------------------------------------------------------------------------------------------------


def worker_peak_kib(served: Served) -> int:
    """The worker's peak resident memory (VmHWM), in KiB."""
    children = Path(f"/proc/{served.process.pid}/task/{served.process.pid}/children").read_text().split()
    status = Path(f"/proc/{children[0]}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def test_millions_of_node_names_are_refused_before_they_are_made(served: Served) -> None:
    pod = json.loads(FILTER)["Pod"]
    names = b'"n",' * (57 * 2**20 // 4)  # 57 MiB of names no cache knows
    body = b'{"Pod": ' + json.dumps(pod).encode() + b', "NodeNames": [' + names + b'"n"]}'
    before = worker_peak_kib(served)

    response = served.post("/filter", body)

    assert response.status == 400
    assert json.loads(response.data)["error"] == \
        f"invalid ExtenderArgs: more than {MAX_NODES} node names - at `$.NodeNames`"
    grown_mib = (worker_peak_kib(served) - before) / 1024
    assert grown_mib < 250, f"the worker grew by {grown_mib:.0f} MiB"  # before: 2.9 GB


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/filter", {"NodeNames": ["n"] * (MAX_NODES + 1)}, "$.NodeNames"),
    ("/filter", {"Nodes": {"items": [{"metadata": {"name": "n"}}] * (MAX_NODES + 1)}}, "$.Nodes.items"),
    ("/preempt", {"NodeNameToMetaVictims": {"site1": {"Pods": [{"UID": "u"}] * (MAX_VICTIMS + 1)}}},
     "$.NodeNameToMetaVictims[...].Pods"),
    ("/preempt", {"NodeNameToMetaVictims": {f"n{i}": {} for i in range(MAX_NODES + 1)}}, "$.NodeNameToMetaVictims"),
    ("/filter", {"NodeNames": ["n" * 254]}, "$.NodeNames[0]"),
], ids=["node-names", "node-items", "victims", "victim-nodes", "node-name-length"])
def test_counts_and_names_over_their_caps(served: Served, path: str, body: dict, field: str) -> None:
    response = served.post(path, json.dumps({"Pod": {}, **body}))

    assert response.status == 400
    message = json.loads(response.data)["error"]
    assert message.endswith(f"- at `{field}`") and ("length <=" in message or "more than" in message), message


def test_a_huge_resource_name_allocates_nothing(served: Served) -> None:
    body = json.loads(ALLOCATION)
    body["allocation"]["resource_group"]["resources"][0]["name"] = "r" * 2**20
    body["allocation"]["replicas"] = 300

    response = served.post("/v1/allocations", json.dumps(body))

    assert response.status == 400  # before: a 286 MiB answer and 575 MiB of database
    assert json.loads(response.data)["fields"] == [
        {"field": "allocation.resource_group.resources[0].name", "message": "Expected `str` of length <= 253"}]
