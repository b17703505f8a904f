"""The OpenAPI document of every route, from the routers themselves (`make openapi` writes it).

Powertools writes the routes, parameters, bodies and our own responses from the code. What it
cannot say is added here, in this one place: what API Gateway answers before (or instead of)
our code on every operation, the SigV4 security scheme, the links from a task answer to the
operations on that task, and the pruning of schemas nothing uses.
"""

from __future__ import annotations

import json
from typing import Any

from vector_tasks.handlers import read_api, submit_api, transition_api
from vector_tasks.handlers.http import build_resolver

TITLE = "Vector ingestion tasks"
VERSION = "1.0.0"
DESCRIPTION = (
    "Asynchronous upsertion and deletion tasks against the OpenSearch k-NN index of a deployed "
    "embedding model. Requests are signed with AWS SigV4 (IAM auth on API Gateway)."
)

GATEWAY_MESSAGE = "GatewayMessage"
SIGV4 = "sigv4"
_REF_PREFIX = "#/components/schemas/"

# API Gateway's own answers, {"message": ...}: the operation's Lambda never sees the request.
_GATEWAY_RESPONSES = {
    "403": "API Gateway: the IAM (SigV4) authorization failed, or no such route "
    '({"message": "Missing Authentication Token"})',
    "502": "API Gateway: the function failed or its response was over 6 MB",
    "504": "API Gateway: no answer within 29 s",
}


def _gateway_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": GATEWAY_MESSAGE,
        "description": "What API Gateway answers itself, before or instead of the function",
        "properties": {"message": {"type": "string", "title": "Message"}},
        "required": ["message"],
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF_PREFIX + name}


def _links(operation_id: str) -> dict[str, Any]:
    """A task answer's `id` is the `task_id` of that kind's info, cancel and restart."""
    kind = operation_id.split("_")[1]
    return {
        verb.capitalize(): {
            "operationId": f"{verb}_{kind}_task",
            "parameters": {"task_id": "$response.body#/id"},
            "description": f"The task's id is the task_id of {verb}_{kind}_task",
        }
        for verb in ("get", "cancel", "restart")
    }


def _complete(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    schemas[GATEWAY_MESSAGE] = _gateway_schema()
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            if operation["operationId"].split("_")[0] in ("create", "get", "cancel", "restart"):
                for status in ("200", "202"):
                    if status in responses:
                        responses[status]["links"] = _links(operation["operationId"])
            for status, description in _GATEWAY_RESPONSES.items():
                responses[status] = {
                    "description": description,
                    "content": {"application/json": {"schema": _ref(GATEWAY_MESSAGE)}},
                }
            # 413: API Gateway's own (a request over its 10 MB) or ours (over Lambda's 6 MB).
            responses["413"] = {
                "description": "Request too large: API Gateway's answer or request_too_large",
                "content": {"application/json": {"schema": {"anyOf": [_ref("ErrorResponse"), _ref(GATEWAY_MESSAGE)]}}},
            }
            operation["responses"] = dict(sorted(responses.items()))
    document["components"]["securitySchemes"] = {
        SIGV4: {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "AWS Signature Version 4 (IAM auth on API Gateway)",
            "x-amazon-apigateway-authtype": "awsSigv4",
        }
    }
    document["security"] = [{SIGV4: []}]
    _drop_unused_schemas(document)
    return document


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    schemas: dict[str, Any] = document["components"]["schemas"]

    def refs(node: Any) -> set[str]:
        found: set[str] = set()
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, dict):
                ref = current.get("$ref")
                if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
                    found.add(ref.removeprefix(_REF_PREFIX))
                stack.extend(current.values())
            elif isinstance(current, list):
                stack.extend(current)
        return found

    used = refs(document["paths"])
    pending = set(used)
    while pending:
        more = refs(schemas[pending.pop()]) - used
        used |= more
        pending |= more
    document["components"]["schemas"] = {name: schema for name, schema in sorted(schemas.items()) if name in used}


def document() -> str:
    app = build_resolver(submit_api.router, read_api.router, transition_api.router)
    generated = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION, description=DESCRIPTION))
    return json.dumps(_complete(generated), indent=2) + "\n"


if __name__ == "__main__":
    print(document(), end="")
