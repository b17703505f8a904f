"""The client (clients/python) in step with the service: its models against openapi.json's
schemas, its routes and query parameters against openapi.json's paths, its limits against
the service's own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

import vector_tasks_client.limits as client_limits
from devstack.lambda_runtime import PAYLOAD_LIMIT_BYTES
from tests.support.local_stack import REPO
from tests.support.stub_api import Reply, Request, stub_api, summary_json, task_json
from vector_tasks.domain import limits as service_limits
from vector_tasks.handlers.http import MAX_JSON_DEPTH
from vector_tasks_client import VectorTasksClient, models
from vector_tasks_client.client import OPERATIONS
from vector_tasks_client.kinds import Kind

OPENAPI = json.loads((REPO / "openapi.json").read_text())
SCHEMAS = OPENAPI["components"]["schemas"]
# Each client model and the schema it stands for.
MODELS: dict[type[BaseModel], str] = {
    models.DataItem: "DataItem",
    models.ImportSourceIn: "ImportSourceIn",
    models.SourceOut: "SourceOut",
    models.CreateUpsertionTaskRequest: "CreateUpsertionTaskRequest",
    models.CreateDeletionTaskRequest: "CreateDeletionTaskRequest",
    models.Progress: "ProgressOut",
    models.ItemFailure: "ItemFailureOut",
    models.TaskSummary: "TaskSummary",
    models.UpsertionTask: "UpsertionTask",
    models.DeletionTask: "DeletionTask",
    models.TaskList: "TaskList",
    models.ErrorDetail: "ErrorDetail",
    models.ErrorBody: "ErrorBody",
    models.ErrorResponse: "ErrorResponse",
    models.GatewayMessage: "GatewayMessage",
}
PROSE = {"title", "description", "default", "examples"}


def _shape(schema: Any, definitions: dict[str, Any]) -> Any:
    """`schema` with every $ref expanded and the prose left out, numbers as numbers."""
    if isinstance(schema, list):
        return [_shape(s, definitions) for s in schema]
    if isinstance(schema, float) and schema.is_integer():
        return int(schema)
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _shape(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    shaped = {k: _shape(v, definitions) for k, v in schema.items() if k not in PROSE and k != "$defs"}
    if "properties" in schema:  # property names are data, not keywords
        shaped["properties"] = {k: _shape(v, definitions) for k, v in schema["properties"].items()}
    if "required" in shaped:
        shaped["required"] = sorted(shaped["required"])
    return shaped


@pytest.mark.parametrize("model", list(MODELS), ids=lambda m: m.__name__)
def test_each_model_has_the_shape_of_its_schema_in_openapi_json(model: type[BaseModel]) -> None:
    ours = model.model_json_schema()
    assert _shape(ours, ours.get("$defs", {})) == _shape(SCHEMAS[MODELS[model]], SCHEMAS)


def test_every_schema_of_openapi_json_has_a_model_or_an_enum() -> None:
    enums = {"TaskStatus": models.TaskStatus, "RestartScope": models.RestartScope}
    assert set(SCHEMAS) == set(MODELS.values()) | set(enums)
    for name, enum in enums.items():
        assert [e.value for e in enum] == SCHEMAS[name]["enum"]


def test_the_clients_routes_are_the_documented_routes_with_their_methods() -> None:
    documented = {(path, method.upper()) for path, item in OPENAPI["paths"].items() for method in item}
    assert {(path, op.method) for path, op in OPERATIONS.items()} == documented
    for kind in Kind:
        request = SCHEMAS[f"Create{kind.value.title()}TaskRequest"]
        assert request["else"] == {"required": [kind.items_field]}  # the items, unless a source


def test_the_query_parameters_the_client_sends_are_documented_and_the_required_ones_sent() -> None:
    def answer(request: Request) -> Reply:
        kind = "deletion" if "deletion" in request.path else "upsertion"
        if request.path.endswith("/list"):
            return Reply(200, {"tasks": [summary_json(task_json("t"))], "offset": 0, "limit": 20, "next_offset": None})
        return Reply(200, task_json("t", kind=kind))

    with stub_api(answer) as api:
        client = VectorTasksClient(api.url)
        for kinds in (client.upsertion, client.deletion):
            kinds.get("t", failures_offset=1, failures_limit=2)
            kinds.list_tasks(models.TaskStatus.RUNNING, offset=1, limit=2)
            kinds.cancel("t")
            kinds.restart("t", models.RestartScope.FAILED, attempt=1)
    assert len(api.requests) == 8
    for request in api.requests:
        parameters = OPENAPI["paths"][request.path][request.method.lower()]["parameters"]
        assert set(request.query) <= {p["name"] for p in parameters}, request.target
        assert {p["name"] for p in parameters if p["required"]} <= set(request.query), request.target


def test_the_clients_limits_are_the_services() -> None:
    for name in (
        "MAX_ITEMS_PER_TASK",
        "MAX_OBJECT_ID_BYTES",
        "MAX_TASK_ID_LENGTH",
        "TASK_ID_PATTERN",
        "MAX_EMBEDDING_MODEL_ID_LENGTH",
        "MAX_ITEM_BYTES",
        "LIST_MAX_LIMIT",
        "FAILURES_MAX_LIMIT",
    ):
        assert getattr(client_limits, name) == getattr(service_limits, name), name
    assert client_limits.MAX_JSON_DEPTH == MAX_JSON_DEPTH
    assert client_limits.MAX_EVENT_BYTES == PAYLOAD_LIMIT_BYTES
