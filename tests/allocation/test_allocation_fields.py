"""The original API's fields that must take effect or be refused, and its error codes beside ours.

The original (CentaurusInfra global-resource-scheduler, `globalscheduler/pkg/scheduler/service/
api_allocation.go`, `checkUtils.go`, `utils/error.go`, `utils/rest_helper.go`) keeps `allocation.id`
from the body when it is a uuid, checks names against `^[a-zA-Z0-9_.\u4e00-\u9fa5-]*$` (1..64),
and answers errors as `{"error_code": "GS.0<type><4 digits>", "error_message": ...}`.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path

import pytest

from extender.allocation.store import AllocationStore
from extender.app import create_app
from extender.config.settings import Settings
from tests.conftest import FIXTURES, POLICY_DIR

SAMPLE = json.loads((FIXTURES / "global-scheduler-conf" / "sample_allocation_req_body.json").read_text())
UUID = "2f4b3b1e-6a0c-4c8e-9d51-0b8c1e7a9f10"


def sample(selector: dict | None = None, **changes) -> dict:
    body = copy.deepcopy(SAMPLE)
    body["allocation"].update(changes)
    body["allocation"]["selector"].update(selector or {})
    return body


def sites(answer) -> list[str]:
    return [g["selected"]["node_id"] for g in answer.get_json()["allocation"]["resource_groups"]]


@pytest.fixture
def api(tmp_path: Path):
    app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, data_dir=tmp_path / "data"), "TESTING": True})
    return app.test_client()


def test_the_body_id_names_the_allocation(api) -> None:
    made = api.post("/v1/allocations", json=sample(id=UUID))
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["allocation"]["id"] == UUID
    assert made.headers["Location"] == f"/v1/allocations/{UUID}"
    assert api.get(f"/v1/allocations/{UUID}").get_json() == made.get_json()
    again = api.post("/v1/allocations", json=sample(id=UUID))  # the same id again: nothing more taken
    assert again.status_code == 409
    assert again.get_json()["error_code"] == "GS.000007"
    assert len(api.get("/v1/allocations").get_json()["allocations"]) == 1


@pytest.mark.parametrize("bad", ["rtc-1", UUID.upper(), f"x{UUID}", UUID[:-1]])
def test_a_body_id_that_is_not_a_uuid_is_refused(api, bad: str) -> None:
    answer = api.post("/v1/allocations", json=sample(id=bad))
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["fields"] == [{"field": "allocation.id", "message": f"{bad!r} is not a uuid (8-4-4-4-12 lower-case"
                                                                    " hex digits); leave it out to get a new one"}]
    assert body["error_code"] == "GS.000007"
    assert body["error_message"] == f"The request body parameter is illegal: allocation.id: {body['fields'][0]['message']}."


def test_put_with_another_id_in_the_body_is_refused(api) -> None:
    answer = api.put("/v1/allocations/rtc-1", json=sample(id=UUID))
    assert answer.status_code == 400
    assert answer.get_json()["fields"] == [{"field": "allocation.id", "message": f"{UUID!r} differs from the id in"
                                                                                 " the path 'rtc-1'; give one of them"}]
    assert api.put(f"/v1/allocations/{UUID}", json=sample(id=UUID)).status_code == 201


def test_labels_are_what_later_stack_antiaffinity_avoids(api) -> None:
    # The sample request goes to site2 (the fullest of region1: centralize packs); site2 holds 2.
    labelled = sample({"node_id": "site2"})
    labelled["allocation"]["resource_group"]["labels"] = {"app": "rtc"}
    assert sites(api.post("/v1/allocations", json=labelled)) == ["site2"]
    avoid = {"stack_antiaffinity": [{"key": "app", "operator": "=", "values": ["rtc"]}]}
    assert sites(api.post("/v1/allocations", json=sample(avoid))) == ["site1"]
    other = {"stack_antiaffinity": [{"key": "app", "operator": "in", "values": ["web"]}]}
    assert sites(api.post("/v1/allocations", json=sample(other))) == ["site2"]


def test_without_labels_the_antiaffinity_finds_nothing_to_avoid(api) -> None:
    assert sites(api.post("/v1/allocations", json=sample({"node_id": "site2"}))) == ["site2"]
    avoid = {"stack_antiaffinity": [{"key": "app", "operator": "exists"}]}
    assert sites(api.post("/v1/allocations", json=sample(avoid))) == ["site2"]


def test_labels_survive_a_restart_and_a_schema_1_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "allocations.db")
    db.executescript("""
        CREATE TABLE allocations (id TEXT PRIMARY KEY, created_at REAL NOT NULL, answer TEXT NOT NULL);
        CREATE TABLE placements (key TEXT PRIMARY KEY, allocation_id TEXT NOT NULL REFERENCES allocations(id)
            ON DELETE CASCADE, site_id TEXT NOT NULL, flavor_id TEXT NOT NULL, vcpus INTEGER NOT NULL,
            ram INTEGER NOT NULL, need_eip INTEGER NOT NULL, storage TEXT NOT NULL, grp TEXT NOT NULL);
        INSERT INTO allocations VALUES ('old', 0, '{"allocation": {"id": "old", "resource_groups": []}}');
        INSERT INTO placements VALUES ('old/0/0/0', 'old', 'site2', 'c6.large.2', 2, 4096, 0, '{}', 'allocation/old');
        PRAGMA user_version = 1;
    """)
    db.close()
    store = AllocationStore(data)
    assert [dict(p.labels) for p in store.placements()[1]] == [{}]  # read before any write
    app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, data_dir=data), "TESTING": True})
    labelled = sample({"node_id": "site2"})
    labelled["allocation"]["resource_group"]["labels"] = {"app": "rtc"}
    assert app.test_client().post("/v1/allocations", json=labelled).status_code == 201
    reopened = AllocationStore(data)
    assert [(p.key.split("/")[0] == "old", dict(p.labels)) for p in reopened.placements()[1]] == [
        (True, {}), (False, {"app": "rtc"})]
    with sqlite3.connect(data / "allocations.db") as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == 2


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda b: b["allocation"]["resource_group"].update(labels={"app": "a b"}),
     "allocation.resource_group.labels.app",
     "label value 'a b' must be 1 to 64 letters, digits, '_', '.', '-' or CJK characters"),
    (lambda b: b["allocation"]["resource_group"].update(name="RTC/1"),
     "allocation.resource_group.name", "'RTC/1' must be 1 to 64 letters, digits, '_', '.', '-' or CJK characters"),
    (lambda b: b["allocation"]["resource_group"]["resources"][0].update(name=""),
     "allocation.resource_group.resources[0].name",
     "'' must be 1 to 64 letters, digits, '_', '.', '-' or CJK characters"),
    (lambda b: b["allocation"]["selector"].update(stack_affinity=[{"key": "app", "operator": "In", "values": ["x"]}]),
     "allocation.selector.stack_affinity[0].operator",
     "unknown operator 'In', expected one of in, =, ==, notin, !=, exists, !, gt, lt"),
    (lambda b: b["allocation"]["selector"].update(stack_affinity=[{"key": "app", "operator": "in"}]),
     "allocation.selector.stack_affinity[0].values", "operator 'in' needs at least one value"),
    (lambda b: b["allocation"]["selector"].update(stack_antiaffinity=[{"key": "app", "operator": "gt",
                                                                       "values": ["ten"]}]),
     "allocation.selector.stack_antiaffinity[0].values[0]", "operator 'gt' compares integers, got 'ten'"),
    (lambda b: b["allocation"]["selector"].update(stack_antiaffinity=[{"key": "-app", "operator": "exists"}]),
     "allocation.selector.stack_antiaffinity[0].key",
     "label key '-app': the name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a"
     " letter or digit"),
    (lambda b: b["allocation"]["resource_group"]["resources"][0]["flavors"][0].update(
        spot={"max_price": "0.5", "spot_duration_hours": 1}),
     "allocation.resource_group.resources[0].flavors[0].spot",
     "spot instances cannot be placed here: no site reports spot capacity (the original's site spot_resources,"
     " which it never filled either), so a spot VM would fit nowhere; ask for the flavor without `spot`"),
], ids=["label-value", "group-name", "resource-name", "operator", "in-without-values", "gt-not-integer",
        "label-key", "spot"])
def test_fields_that_cannot_take_effect_are_refused(api, change, field: str, message: str) -> None:
    body = sample()
    change(body)
    answer = api.post("/v1/allocations", json=body)
    assert answer.status_code == 400
    assert answer.get_json()["fields"] == [{"field": field, "message": message}]
    assert answer.get_json()["error_code"] == "GS.000007"
    assert api.get("/v1/allocations").get_json() == {"allocations": []}


def test_stack_selectors_need_the_stack_affinity_priority(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy_without_stack_affinity())
    app = create_app({"SETTINGS": Settings(policy=policy, inventory=POLICY_DIR / "inventory",
                                           data_dir=tmp_path / "data"), "TESTING": True})
    body = sample({"stack_affinity": [{"key": "app", "operator": "exists"}]})
    answer = app.test_client().post("/v1/allocations", json=body)
    assert answer.status_code == 400
    assert answer.get_json()["fields"] == [{"field": "allocation.selector.stack_affinity", "message":
                                            f"the policy ({policy}) has no StackAffinity priority to weigh it; add"
                                            " it to the policy's priorities or leave this out"}]


def _policy_without_stack_affinity() -> str:
    import yaml

    policy = yaml.safe_load((POLICY_DIR / "policy.yaml").read_text())
    policy["priorities"] = [p for p in policy["priorities"] if p["name"] != "StackAffinity"]
    policy.setdefault("options", {})["inventory"] = str(POLICY_DIR / "inventory")
    return yaml.safe_dump(policy)


def test_no_fit_keeps_409_with_the_original_code(api) -> None:
    answer = api.post("/v1/allocations", json=sample({"node_id": "site2"}, replicas=3))  # site2 holds 2
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["error_code"] == "GS.000001"
    assert body["error_message"] == body["error"]
    assert body["error"].startswith("nothing allocated: ")
    assert set(body["reasons"]) >= {"site2"}


def test_unknown_allocations_answer_the_original_path_code(api) -> None:
    for answer in (api.get("/v1/allocations/nope"), api.delete("/v1/allocations/nope")):
        assert answer.status_code == 404
        assert answer.get_json() == {"error": "no allocation nope", "error_code": "GS.000030",
                                     "error_message": "no allocation nope"}


@pytest.mark.parametrize(("operator", "values", "labels", "matches"), [
    # The original's labels.Requirement.Matches, operator by operator.
    ("in", ["a", "b"], {"k": "b"}, True), ("in", ["a"], {"k": "c"}, False), ("in", ["a"], {}, False),
    ("=", ["a"], {"k": "a"}, True), ("==", ["a"], {"k": "b"}, False),
    ("notin", ["a"], {}, True), ("notin", ["a"], {"k": "a"}, False), ("!=", ["a"], {"k": "b"}, True),
    ("exists", [], {"k": ""}, True), ("exists", [], {}, False), ("!", [], {}, True), ("!", [], {"k": "a"}, False),
    ("gt", ["5"], {"k": "7"}, True), ("gt", ["5"], {"k": "5"}, False), ("gt", ["5"], {"k": "x"}, False),
    ("gt", ["5"], {}, False), ("lt", ["5"], {"k": "-3"}, True), ("lt", ["5"], {"k": "9"}, False),
])
def test_stack_selector_operators_match_as_the_originals(operator: str, values: list[str], labels: dict,
                                                         matches: bool) -> None:
    from extender.allocation.request import parse_allocation_request

    body = sample({"stack_affinity": [{"key": "k", "operator": operator, "values": values}]})
    request = parse_allocation_request(json.dumps(body).encode(), {"c6.large.2"})
    assert request.stack_affinity is not None
    assert request.stack_affinity.matches(labels) is matches
