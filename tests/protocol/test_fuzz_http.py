"""Fuzzing the real gunicorn server with random and adversarial bodies: never a 500, never a hang,
always a protocol answer or a 400 that says what is wrong.

Bounded for the suite: few examples each, `deadline=None` (the HTTP round trip varies), derandomized
when CI is set so that a CI run is repeatable.
"""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Any

import pytest
import urllib3
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extender.engine.decide import REASON_BAD_REQUEST
from tests.conftest import SCHEDULER_FIXTURES
from tests.server import Served

pytestmark = pytest.mark.process

FUZZ = settings(max_examples=40, deadline=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FILTER_KEYS = ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"]
VM_ANNOTATION = "site-extender.io/vm"
BAD_VM_PREFIX = REASON_BAD_REQUEST.split("{")[0]  # "invalid VM request ("

CACHE_ARGS = json.loads((SCHEDULER_FIXTURES / "cache-mode" / "filter-0005.json").read_text())
FULL_ARGS = json.loads((SCHEDULER_FIXTURES / "full-mode" / "filter-0008.json").read_text())
VM_REQUEST = json.loads(CACHE_ARGS["Pod"]["metadata"]["annotations"][VM_ANNOTATION])

# --- strategies ------------------------------------------------------------------------------------

leaves = (
    st.none() | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", "site1", "c6.large.2", "region1", "\u0000", "\ud7ff\ue000", "👾" * 30, "x" * 100_000])
)
json_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a field or element in `value` (the document itself included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += paths(item, prefix + (index,))
    return found


def replaced(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copied = copy.deepcopy(document)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


def dumps(value: Any) -> bytes:
    """JSON, where NaN and Infinity come out as the non-JSON tokens Python writes for them."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


CACHE_PATHS = paths(CACHE_ARGS)
FULL_PATHS = paths(FULL_ARGS)

numbers = (st.integers(min_value=-(2**66), max_value=2**66) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([-1, 0, 0.5, 1.5, -0.0, 1e308, 2**63, "1", "NaN", ".nan", True]))
vm_requests = st.fixed_dictionaries(
    {},
    optional={
        "flavors": st.lists(st.fixed_dictionaries({"flavorID": st.sampled_from(["c6.large.2", "c6.xlarge.2", "nope"]) | json_values}), max_size=4)
        | json_values,
        "needEIP": st.booleans() | json_values,
        "storage": st.dictionaries(st.sampled_from(["SAS", "SSD", "SATA", "x" * 200]), numbers, max_size=3) | json_values,
        "resourceCommonInfo": st.fixed_dictionaries({}, optional={
            "selector": st.fixed_dictionaries({}, optional={
                "regions": st.lists(st.fixed_dictionaries({"region": st.sampled_from(["region1", "region2", ""]) | json_values,
                                                           "availability_zone": st.lists(st.text(max_size=5), max_size=3) | json_values}),
                                    max_size=3) | json_values,
                "site_id": st.text(max_size=10) | json_values,
            }),
            "strategy": st.fixed_dictionaries({}, optional={"localStrategy": st.sampled_from(["centralize", "discrete", "pile"]) | json_values}),
        }) | json_values,
        "count": numbers,
    },
)


def annotation_text(vm: dict, form: str) -> str:
    if form == "yaml":
        return yaml.safe_dump(vm, allow_unicode=True)
    return json.dumps(vm, ensure_ascii=False)


# --- what every answer must be --------------------------------------------------------------------

def check_answer(verb: str, response: urllib3.BaseHTTPResponse) -> dict | list:
    assert response.status in (200, 400, 413), (response.status, response.data[:300])
    assert response.headers["Content-Type"] == "application/json"
    answer = json.loads(response.data)
    if response.status != 200:
        message = answer["error"]
        assert message and "Traceback" not in message and "internal error" not in message
        return answer
    if verb == "filter":
        assert list(answer) == FILTER_KEYS
        assert answer["Error"] == "", answer["Error"]
    else:
        assert isinstance(answer, list)
        for entry in answer:
            assert list(entry) == ["Host", "Score"]
            assert isinstance(entry["Score"], int) and 0 <= entry["Score"] <= 10
    return answer


def post(server: Served, verb: str, body: bytes) -> dict | list:
    return check_answer(verb, server.post(f"/{verb}", body))


# --- the fuzz tests --------------------------------------------------------------------------------

@FUZZ
@given(body=st.binary(max_size=2000) | json_values.map(dumps))
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_random_bodies(server: Served, verb: str, body: bytes) -> None:
    post(server, verb, body)


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
@pytest.mark.parametrize("mode", ["cache", "full"])
def test_wrong_type_at_every_field(server: Served, verb: str, mode: str, data: st.DataObject) -> None:
    document, where = (CACHE_ARGS, CACHE_PATHS) if mode == "cache" else (FULL_ARGS, FULL_PATHS)
    path = data.draw(st.sampled_from(where), label="path")
    value = data.draw(json_values, label="value")

    post(server, verb, dumps(replaced(document, path, value)))


@FUZZ
@given(vm=vm_requests, form=st.sampled_from(["json", "yaml"]))
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_vm_requests(server: Served, verb: str, vm: dict, form: str) -> None:
    args = copy.deepcopy(CACHE_ARGS)
    try:
        args["Pod"]["metadata"]["annotations"][VM_ANNOTATION] = annotation_text(vm, form)
    except ValueError:  # a lone surrogate cannot be written: not a body anyone can send
        return
    answer = post(server, verb, dumps(args))

    if verb == "filter" and isinstance(answer, dict) and "error" not in answer:
        decided = answer["NodeNames"] + list(answer["FailedNodes"]) + list(answer["FailedAndUnresolvableNodes"])
        assert sorted(decided) == sorted(args["NodeNames"])  # every node answered for, once


@FUZZ
@given(vm=vm_requests)
def test_vm_request_in_pod_spec(server: Served, vm: dict) -> None:
    args = copy.deepcopy(CACHE_ARGS)
    del args["Pod"]["metadata"]["annotations"][VM_ANNOTATION]
    args["Pod"]["spec"]["virtualMachine"] = vm
    body = dumps(args)
    answer = post(server, "filter", body)

    if any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(vm)):
        assert "error" in answer  # NaN/Infinity are not JSON: 400


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


# --- adversarial cases, each named --------------------------------------------------------------------

def _annotated(text: str) -> bytes:
    args = copy.deepcopy(CACHE_ARGS)
    args["Pod"]["metadata"]["annotations"][VM_ANNOTATION] = text
    return dumps(args)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


YAML_BOMB = "\n".join(
    [f"l0: &l0 [{', '.join(['x'] * 9)}]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["flavors: [{flavorID: c6.large.2}]", "resourceCommonInfo: {selector: {regions: *l8}}"]
)


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        pytest.param(_deep(100_000).encode(), 400, "Expected `object`, got `array`", id="deep-array-body"),
        pytest.param(b'{"Pod": {"spec": {"virtualMachine": ' + _deep(100_000).encode() + b"}}, \"NodeNames\": []}",
                     400, "JSON nested too deeply", id="deep-in-any-field"),
        pytest.param(b'{"Pod": {"metadata": {"unknown": ' + _deep(100_000).encode() + b"}}, \"NodeNames\": []}",
                     400, "JSON nested too deeply", id="deep-in-skipped-field"),
        pytest.param(_annotated(_deep(20_000)), 200, "nested too deeply", id="deep-json-annotation"),
        pytest.param(_annotated("- " * 10_000 + "x"), 200, "nested too deeply", id="deep-yaml-annotation"),
        pytest.param(_annotated(YAML_BOMB), 200, BAD_VM_PREFIX, id="yaml-alias-bomb"),
        pytest.param(_annotated('{"flavors": [{"flavorID": "c6.large.2"}], "storage": {"SAS": NaN}}'), 200,
                     BAD_VM_PREFIX, id="nan-in-annotation"),
        pytest.param(_annotated('{"flavors": [{"flavorID": "c6.large.2"}], "storage": {"SAS": 1.5}}'), 200,
                     "Expected `int`, got `float`", id="fraction-in-annotation"),
        pytest.param(_annotated('{"flavors": [{"flavorID": "c6.large.2"}], "storage": {"SAS": -1}}'), 200,
                     BAD_VM_PREFIX, id="negative-in-annotation"),
        pytest.param(b'{"Pod": {}, "NodeNames": [NaN]}', 400, "body is not valid JSON", id="nan-token"),
        pytest.param(b'{"Pod": {}, "NodeNames": ["\\ud800"]}', 400, "body is not valid JSON", id="lone-surrogate"),
        pytest.param(b'{"Pod": {"metadata": {"name": "' + b"x" * 3_000_000 + b'"}}, "NodeNames": ["site1"]}', 400,
                     "Expected `str` of length <= 253 - at `$.Pod.metadata.name`", id="huge-name"),
        pytest.param(b'{"Pod": {"metadata": {"name": "a\xffb"}}, "NodeNames": ["site1"]}', 400,
                     "body is not valid JSON: a string is not UTF-8 (invalid start byte, byte 0xff)",
                     id="invalid-utf8-in-a-string"),
        pytest.param(b'{"Pod": {}, "NodeNames": ["a\xc3"]}', 400, "a string is not UTF-8", id="invalid-utf8-node-name"),
        pytest.param(b'{"Pod": {}, "NodeNames": ["site1", "site1", "site1"]}', 200, "", id="duplicate-node-names"),
        pytest.param(b'{"Pod": {}, "Pod": {"metadata": []}, "NodeNames": []}', 400, "at `$.Pod.metadata`",
                     id="duplicate-keys-last-wins"),
        pytest.param('{"Pod": {"metadata": {"name": "ポッド👾"}}, "NodeNames": ["サイト"]}'.encode(), 200, "",
                     id="unicode"),
        pytest.param(b"\xff\xfe{}", 400, "body is not valid JSON", id="not-utf8"),
    ],
)
def test_adversarial_bodies(server: Served, body: bytes, status: int, expected: str) -> None:
    response = server.post("/filter", body)
    answer = check_answer("filter", response)

    assert response.status == status
    text = answer["error"] if status != 200 else json.dumps(answer, ensure_ascii=False)
    assert expected in text
