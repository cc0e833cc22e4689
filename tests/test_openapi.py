"""extender/openapi.yaml describes the service: schemathesis generates requests from it (valid and
invalid ones) against the real gunicorn server and checks every answer against it."""

from __future__ import annotations

import os

import schemathesis
import yaml
from hypothesis import HealthCheck, settings

from extender.app import create_app
from tests.server import REPO, Served

SPEC = REPO / "extender" / "openapi.yaml"
schema = schemathesis.openapi.from_path(str(SPEC))


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=list(HealthCheck))
def test_service_conforms_to_its_openapi_description(case, server: Served) -> None:
    case.call_and_validate(base_url=server.url)


def test_every_route_is_described(app) -> None:
    described = {
        (path, method.upper())
        for path, operations in yaml.safe_load(SPEC.read_text())["paths"].items()
        for method in operations
    }
    served = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }

    missing = served - described
    assert not missing, f"routes served but not described in extender/openapi.yaml: {sorted(missing)}"
    assert not described - served, f"described but not served: {sorted(described - served)}"


__all__ = ["create_app"]
