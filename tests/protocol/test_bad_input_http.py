"""Bodies that are not the protocol get HTTP 400 with a message that names the problem."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SCHEDULER_FIXTURES
from tests.server import Served

pytestmark = pytest.mark.process

POD = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"", "empty body", id="empty"),
        pytest.param(b"   \n", "empty body", id="whitespace"),
        pytest.param(b"{not json", "not valid JSON", id="not-json"),
        pytest.param(b"[]", "Expected `object`, got `array`", id="json-array"),
        pytest.param(b'"Pod"', "Expected `object`, got `str`", id="json-string"),
        pytest.param(json.dumps({"Nodes": None, "NodeNames": ["site1"]}), "missing required field `Pod`", id="pod-missing"),
        pytest.param(json.dumps({"Pod": None, "NodeNames": ["a"]}), "at `$.Pod`", id="pod-null"),
        pytest.param(json.dumps({"Pod": POD, "Nodes": []}), "got `array` - at `$.Nodes`", id="nodes-empty-array"),
        pytest.param(json.dumps({"Pod": POD, "Nodes": "site1"}), "got `str` - at `$.Nodes`", id="nodes-string"),
        pytest.param(json.dumps({"Pod": POD, "Nodes": {"items": {}}}), "at `$.Nodes.items`", id="items-object"),
        pytest.param(json.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": 3}}]}}),
                     "at `$.Nodes.items[0].metadata.name`", id="node-name-int"),
        pytest.param(json.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {}}]}}),
                     "node without a name - at `$.Nodes.items[0].metadata.name`", id="node-no-name"),
        pytest.param(json.dumps({"Pod": POD, "NodeNames": "site1"}), "got `str` - at `$.NodeNames`", id="nodenames-string"),
        pytest.param(json.dumps({"Pod": POD, "NodeNames": [1]}), "at `$.NodeNames[0]`", id="nodenames-int"),
        pytest.param(json.dumps({"Pod": {"metadata": {"labels": ["a"]}}, "NodeNames": []}),
                     "at `$.Pod.metadata.labels`", id="labels-list"),
        pytest.param(json.dumps({"Pod": {"metadata": {"annotations": {"site-extender.io/vm": 5}}}, "NodeNames": []}),
                     "at `$.Pod.metadata.annotations", id="annotation-int"),
    ],
)
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_malformed_body_is_400_with_message(server: Served, verb: str, body, expected: str) -> None:
    response = server.post(f"/{verb}", body)

    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json"
    message = json.loads(response.data)["error"]
    assert expected in message
    assert "Traceback" not in message


def _with_annotation(value: str) -> bytes:
    args = json.loads((SCHEDULER_FIXTURES / "cache-mode" / "filter-0005.json").read_text())
    args["Pod"]["metadata"]["annotations"]["site-extender.io/vm"] = value
    return json.dumps(args).encode()


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        pytest.param('{"flavors": "c6.large.2"}', "Expected `array`, got `str` - at `$.flavors`", id="flavors-string"),
        pytest.param('{"flavors": []}', "at `$.flavors`", id="flavors-empty"),
        pytest.param('{"flavors": [{"flavorID": "nope.1"}]}', "unknown flavor 'nope.1' - at `$.flavors[0].flavorID`",
                     id="unknown-flavor"),
        pytest.param('{"flavors": [{"flavorID": "c6.large.2"}], "needEIP": "yes"}', "at `$.needEIP`", id="eip-string"),
        pytest.param('{"flavors": [{"flavorID": "c6.large.2"}], "resourceCommonInfo": {"strategy": {"localStrategy": "pile"}}}',
                     "unknown strategy 'pile'", id="bad-strategy"),
        pytest.param('{"flavors": [{"flavorID": "c6.large.2"}], "storage": {"SAS": -1}}', "at `$.storage", id="negative-gb"),
        pytest.param("flavors: [\n  - {flavorID: c6.large.2", "neither JSON nor YAML", id="broken-yaml"),
        pytest.param("[1, 2]", "expected an object", id="array"),
    ],
)
def test_malformed_vm_request_fails_every_node_as_unresolvable(server: Served, annotation: str, expected: str) -> None:
    response = server.post("/filter", _with_annotation(annotation))

    assert response.status == 200
    answer = json.loads(response.data)
    assert answer["NodeNames"] == [] and answer["Error"] == ""
    assert set(answer["FailedAndUnresolvableNodes"]) == {"site1", "site2", "site3"}
    for reason in answer["FailedAndUnresolvableNodes"].values():
        assert reason.startswith("invalid VM request (annotation site-extender.io/vm): ")
        assert expected in reason


def test_yaml_vm_request_is_read(server: Served) -> None:
    annotation = "flavors:\n- flavorID: c6.large.2\nresourceCommonInfo:\n  selector:\n    regions:\n    - region: region2\n"

    answer = json.loads(server.post("/filter", _with_annotation(annotation)).data)

    assert answer["NodeNames"] == ["site3"]


def test_unknown_route_and_method(server: Served) -> None:
    assert server.post("/nope", b"{}").status == 404
    assert server.get("/filter").status == 405
    assert "error" in json.loads(server.get("/filter").data)
