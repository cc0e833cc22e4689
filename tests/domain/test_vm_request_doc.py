"""docs/vm-request.md: its example request is valid on the sample inventory, its field reference is the
schema's, and each error it shows is the reason the extender gives for that annotation."""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from extender.config.policy import load_policy
from extender.domain import vmrequest_docs
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


def test_the_field_reference_is_made_from_the_schema() -> None:
    """Every field of every object of the schema, generated (tests/domain/test_vmrequest_docs.py)."""
    assert vmrequest_docs.render_doc(DOC) == DOC


ERRORS = ERROR_ROW.findall(DOC)


def test_the_doc_shows_errors() -> None:
    assert len(ERRORS) >= 8


@pytest.mark.parametrize(("annotation", "reason"), ERRORS, ids=[a for a, _ in ERRORS])
def test_each_error_is_the_reason_given(policy, annotation: str, reason: str) -> None:
    json.loads(annotation)  # the doc shows JSON a user can paste
    with pytest.raises(VMRequestError) as raised:
        read_request(policy, pod(annotation))
    assert str(raised.value) == PREFIX + reason
