"""docs/vm-request.md: its example request is valid on the sample inventory, every field of the request
type is in its table, and each error it shows is the reason the extender gives for that annotation."""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from extender.config.policy import load_policy
from extender.domain import vmrequest
from extender.engine.decide import read_request
from extender.errors import VMRequestError
from extender.protocol.wire import Pod
from tests.conftest import POLICY_DIR
from tests.server import REPO

DOC = (REPO / "docs" / "vm-request.md").read_text()
PREFIX = "invalid VM request (annotation site-extender.io/vm): "
ERROR_ROW = re.compile(r"^\| `(\{.*\}|\[.*\])` \| ``(.+)`` \|$", re.M)


def pod(annotation: str) -> Pod:
    return msgspec.convert({"metadata": {"name": "vm", "annotations": {"site-extender.io/vm": annotation}},
                            "spec": {}}, Pod)


@pytest.fixture(scope="module")
def policy():
    return load_policy(POLICY_DIR)


def test_the_example_request_is_valid(policy) -> None:
    example = re.search(r"```json\n(.*?)\n```", DOC, re.S).group(1)
    request = read_request(policy, pod(example))
    assert request.flavors == ("c6.large.2", "c6.xlarge.2") and request.need_eip
    assert request.stack_antiaffinity.match_expressions[0].operator == "In"
    assert request.regions[0].availability_zones == ("az1", "az2") and request.domain_id == "domain-finance"


def field_paths(struct: type, prefix: str = "") -> set[str]:
    """The wire names of a request struct's fields, dotted through nested structs."""
    paths = set()
    for field in msgspec.structs.fields(struct):
        path = prefix + field.encode_name
        paths.add(path)
        for t in getattr(field.type, "__args__", (field.type,)):
            if isinstance(t, type) and issubclass(t, msgspec.Struct):
                paths |= field_paths(t, path + ".")
    return paths


def test_every_field_is_documented() -> None:
    """Each field is in the table itself, or as part of a documented parent (`geo_location`) or child
    (`resourceCommonInfo` through `resourceCommonInfo.selector.regions`)."""
    documented = set(re.findall(r"^\| `([A-Za-z_.]+)` \|", DOC, re.M))
    missing = {p for p in field_paths(vmrequest._VM)
               if not any(d == p or p.startswith(d + ".") or d.startswith(p + ".") for d in documented)}
    assert not missing, f"fields of the VM request missing from docs/vm-request.md: {missing}"
    unknown = {d for d in documented if d not in field_paths(vmrequest._VM)}
    assert not unknown, f"docs/vm-request.md documents fields the request does not have: {unknown}"


ERRORS = ERROR_ROW.findall(DOC)


def test_the_doc_shows_errors() -> None:
    assert len(ERRORS) >= 8


@pytest.mark.parametrize(("annotation", "reason"), ERRORS, ids=[a for a, _ in ERRORS])
def test_each_error_is_the_reason_given(policy, annotation: str, reason: str) -> None:
    json.loads(annotation)  # the doc shows JSON a user can paste
    with pytest.raises(VMRequestError) as raised:
        read_request(policy, pod(annotation))
    assert str(raised.value) == PREFIX + reason
