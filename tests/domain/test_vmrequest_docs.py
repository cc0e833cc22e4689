"""The VM request's JSON Schema, OpenAPI components and field reference are made from its one schema:
each published file must be what `python -m extender.domain.vmrequest_docs` writes."""

from __future__ import annotations

import json

import yaml

from extender.domain import vmrequest_docs as docs
from extender.domain.vmrequest import VirtualMachine

FIX = "run `python -m extender.domain.vmrequest_docs` after changing the schema in extender/domain/vmrequest.py"


def test_the_published_json_schema_is_the_schema() -> None:
    assert docs.SCHEMA_FILE.read_text() == docs.schema_text(), FIX


def test_the_doc_lists_every_field_of_the_schema() -> None:
    text = docs.DOC_FILE.read_text()

    assert docs.render_doc(text) == text, FIX
    for field in ("needEIP", "flavorID", "availablityZone", "geoLocation", "localStrategy", "spotDurationHours"):
        assert f"| `{field}` |" in text


def test_the_openapi_carries_the_schema() -> None:
    text = docs.OPENAPI_FILE.read_text()

    assert docs.render_openapi(text) == text, FIX
    schemas = yaml.safe_load(text)["components"]["schemas"]
    assert schemas["VirtualMachine"]["required"] == ["flavors"]
    assert schemas["VirtualMachine"]["additionalProperties"] is False


def test_the_json_schema_forbids_unknown_fields_everywhere() -> None:
    schema = json.loads(docs.schema_text())

    assert schema["$ref"] == f"#/$defs/{VirtualMachine.__name__}"
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values())
