"""openapi.json is a valid OpenAPI 3.1 document, and says what the API promises."""

from __future__ import annotations

import json
from typing import Any

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from tests.clients.conftest import OPENAPI

GATEWAY_STATUSES = {"403", "413", "502", "504"}


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


def test_openapi_json_is_a_valid_openapi_document() -> None:
    spec, _ = read_from_filename(str(OPENAPI))
    validate(spec)


def test_every_operation_documents_its_successes_and_every_error() -> None:
    for path, operations in _document()["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            success = {"200", "202"} if path.endswith("/run") else {"200"}
            expected = success | GATEWAY_STATUSES | {"415", "422", "500"}
            assert expected <= statuses, (method, path, sorted(statuses))
            for status in statuses:
                assert "application/json" in operation["responses"][status]["content"], (method, path, status)


def test_sigv4_is_the_security_scheme_of_every_operation() -> None:
    document = _document()
    (name,) = document["components"]["securitySchemes"]
    scheme = document["components"]["securitySchemes"][name]
    assert scheme["type"] == "apiKey"
    assert scheme["in"] == "header"
    assert scheme["name"] == "Authorization"
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert document["security"] == [{name: []}]


def test_no_schema_is_unused() -> None:
    document = _document()
    text = json.dumps(document["paths"]) + json.dumps(document["components"]["schemas"])
    for name in document["components"]["schemas"]:
        assert f'"#/components/schemas/{name}"' in text, name


def test_limits_are_schema_constraints() -> None:
    schemas = _document()["components"]["schemas"]
    object_id = schemas["DataItem"]["properties"]["object_id"]
    assert (object_id["minLength"], object_id["maxLength"]) == (1, 512)
    assert "bytes of UTF-8" in object_id["description"]
    for request, field in (("CreateUpsertionTaskRequest", "items"), ("CreateDeletionTaskRequest", "object_ids")):
        items = schemas[request]["properties"][field]
        assert (items["minItems"], items["maxItems"]) == (1, 10_000)
    for name in ("UpsertionTask", "DeletionTask", "TaskSummary"):
        assert schemas[name]["properties"]["created_at"]["format"] == "date-time"
        assert schemas[name]["properties"]["updated_at"]["format"] == "date-time"
