"""extender/protocol/openapi.yaml describes the service: schemathesis generates requests from it (valid and
invalid ones) against the real gunicorn server and checks every answer against it."""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from extender.app import create_app
from tests.server import REPO, Served, serve

pytestmark = pytest.mark.process

SPEC = REPO / "extender" / "protocol" / "openapi.yaml"
schema = schemathesis.openapi.from_path(str(SPEC))


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory):
    """A server of its own: generated allocations must not use up the stock other tests count on."""
    directory = tmp_path_factory.mktemp("openapi")
    with serve(directory, env={"SITE_EXTENDER_DATA_DIR": str(directory / "data")}) as served:
        yield served


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=list(HealthCheck))
def test_service_conforms_to_its_openapi_description(case, own_server: Served) -> None:
    # An allocation request that fits the schema may still name a flavor the inventory lacks: 400.
    semantic = case.operation.path.startswith("/v1/allocations")
    case.call_and_validate(base_url=own_server.url, excluded_checks=[positive_data_acceptance] if semantic else None)


def test_every_route_is_described(app) -> None:
    described = {
        (path, method.upper())
        for path, operations in yaml.safe_load(SPEC.read_text())["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "delete", "patch")
    }
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }

    missing = served - described
    assert not missing, f"routes served but not described in extender/protocol/openapi.yaml: {sorted(missing)}"
    assert not described - served, f"described but not served: {sorted(described - served)}"


__all__ = ["create_app"]
