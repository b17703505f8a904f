"""Every refused request: one error shape, a stable code, a message naming the problem."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.support.in_process import InProcessStack
from vector_tasks.domain.errors import DomainError, TaskNotFound
from vector_tasks.domain.tasks import TaskService
from vector_tasks.observability import logger

RUN = "/internal/upsertion-tasks/run"
DELETE_RUN = "/internal/deletion-tasks/run"
MODEL = "local-hash-384"


def refused(stack: InProcessStack, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    status, body = stack.request(method, path, **kwargs)
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"], body
    return status, body["error"]


def fields(error: dict[str, Any]) -> dict[str, str]:
    return {d["field"]: d["type"] for d in error["details"]}


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"items": [{"object_id": "a"}]}, "body.embedding_model_id", "missing"),
        ({"embedding_model_id": MODEL}, "body", "items_or_source"),
        ({"embedding_model_id": MODEL, "items": []}, "body.items", "too_short"),
        ({"embedding_model_id": MODEL, "items": [{"payload": {}}]}, "body.items.0.object_id", "missing"),
        ({"embedding_model_id": MODEL, "items": [{"object_id": ""}]}, "body.items.0.object_id", "string_too_short"),
        (
            {"embedding_model_id": MODEL, "items": [{"object_id": "é" * 257}]},
            "body.items.0.object_id",
            "object_id_too_long",
        ),
        (
            {"embedding_model_id": MODEL, "task_id": "has space", "items": [{"object_id": "a"}]},
            "body.task_id",
            "string_pattern_mismatch",
        ),
        (
            {"embedding_model_id": MODEL, "task_id": "x" * 129, "items": [{"object_id": "a"}]},
            "body.task_id",
            "string_too_long",
        ),
        (
            {"embedding_model_id": MODEL, "items": [{"object_id": "a", "payload": "text"}]},
            "body.items.0.payload",
            "dict_type",
        ),
        ({"embedding_model_id": MODEL, "items": [{"object_id": "a"}], "item": 1}, "body.item", "extra_forbidden"),
    ],
)
def test_invalid_create_bodies_are_422_with_the_failing_field(
    stack: InProcessStack, body: dict[str, Any], field: str, kind: str
) -> None:
    status, error = refused(stack, "POST", RUN, body=body)
    assert status == 422
    assert error["code"] == "validation_error"
    assert fields(error) == {field: kind}


def test_object_id_limit_is_counted_in_utf8_bytes(stack: InProcessStack) -> None:
    assert stack.request("POST", RUN, body={"embedding_model_id": MODEL, "items": [{"object_id": "é" * 256}]})[0] == 202
    status, error = refused(stack, "POST", RUN, body={"embedding_model_id": MODEL, "items": [{"object_id": "é" * 257}]})
    assert status == 422
    assert error["details"][0]["reason"] == "object_id is 514 bytes of UTF-8; the limit is 512"


def test_more_than_10000_items_is_422(stack: InProcessStack) -> None:
    body = {"embedding_model_id": MODEL, "items": [{"object_id": str(i)} for i in range(10_001)]}
    status, error = refused(stack, "POST", RUN, body=body)
    assert status == 422
    assert fields(error) == {"body.items": "too_long"}


def test_duplicate_object_ids_are_422_naming_them(stack: InProcessStack) -> None:
    body = {"embedding_model_id": MODEL, "items": [{"object_id": i} for i in ["a", "b", "a", "c", "b"]]}
    status, error = refused(stack, "POST", RUN, body=body)
    assert status == 422
    (detail,) = error["details"]
    assert detail["type"] == "duplicate_object_ids"
    assert detail["reason"] == "object_id values must be unique within a task; repeated: 'a', 'b'"

    status, error = refused(stack, "POST", DELETE_RUN, body={"embedding_model_id": MODEL, "object_ids": ["x", "x"]})
    assert status == 422
    assert error["details"][0]["type"] == "duplicate_object_ids"


def test_unknown_model_is_422_with_its_own_code(stack: InProcessStack) -> None:
    status, error = refused(stack, "POST", RUN, body={"embedding_model_id": "nope", "items": [{"object_id": "a"}]})
    assert status == 422
    assert error["code"] == "unknown_embedding_model"
    assert error["message"].startswith("Unknown embedding_model_id 'nope'; deployed models: ")
    assert "local-hash-384, local-minilm, precomputed-384" in error["message"]


def test_malformed_json_is_400(stack: InProcessStack) -> None:
    status, error = refused(stack, "POST", RUN, raw_body='{"embedding_model_id": ')
    assert status == 400
    assert error["code"] == "invalid_json"


def test_body_over_6_mb_is_413_from_the_gateway_and_creates_nothing(stack: InProcessStack) -> None:
    text = "w " * 1_600
    body = {
        "embedding_model_id": MODEL,
        "task_id": "huge",
        "items": [{"object_id": str(i), "payload": {"text": text}} for i in range(2_000)],
    }
    assert len(json.dumps(body)) > 6 * 1024 * 1024
    # Lambda refuses an event over 6 MB before the handler runs; API Gateway answers for it.
    assert stack.request("POST", RUN, body=body) == (413, {"message": "Request Too Long"})
    assert stack.request("GET", "/internal/upsertion-tasks/info", "task_id=huge")[0] == 404


def test_an_item_over_256_kb_is_422_naming_it(stack: InProcessStack) -> None:
    body = {"embedding_model_id": MODEL, "items": [{"object_id": "fat", "payload": {"text": "x" * 300_000}}]}
    status, error = refused(stack, "POST", RUN, body=body)
    assert status == 422
    assert error["code"] == "item_too_large"
    assert "'fat'" in error["message"]


def test_info_of_an_unknown_task_is_404(stack: InProcessStack) -> None:
    status, error = refused(stack, "GET", "/internal/upsertion-tasks/info", query="task_id=missing")
    assert status == 404
    assert error["code"] == "task_not_found"
    assert error["message"] == "No upsertion task with task_id 'missing'"


def test_info_without_task_id_is_422(stack: InProcessStack) -> None:
    status, error = refused(stack, "GET", "/internal/deletion-tasks/info")
    assert status == 422
    assert fields(error) == {"query.task_id": "missing"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=finished", "query.status"),
        ("limit=101", "query.limit"),
        ("limit=0", "query.limit"),
        ("offset=-1", "query.offset"),
        ("offset=x", "query.offset"),
    ],
)
def test_list_rejects_bad_parameters(stack: InProcessStack, query: str, field: str) -> None:
    status, error = refused(stack, "GET", "/internal/upsertion-tasks/list", query=query)
    assert status == 422
    assert list(fields(error)) == [field]


def test_an_unexpected_error_is_500_without_internals(stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(TaskService, "get", explode)
    status, error = refused(stack, "GET", "/internal/upsertion-tasks/info", query="task_id=x")
    assert status == 500
    assert error["code"] == "internal_error"
    assert "secret" not in json.dumps(error)


class UnlistedDomainError(DomainError):
    """A domain error the HTTP error table does not list."""


class DeletedTaskNotFound(TaskNotFound):
    """A subclass of a listed error, not listed itself."""


def test_a_domain_error_the_table_does_not_list_is_500_and_logged_with_its_traceback(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise UnlistedDomainError("secret domain detail")

    monkeypatch.setattr(TaskService, "get", refuse)
    output = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", output)
    status, error = refused(stack, "GET", "/internal/upsertion-tasks/info", query="task_id=x")
    assert status == 500
    assert error["code"] == "internal_error"
    assert "secret" not in json.dumps(error)
    logged = [json.loads(line) for line in output.getvalue().splitlines() if line.startswith("{")]
    unhandled = [entry for entry in logged if entry.get("message") == "Unhandled error"]
    assert len(unhandled) == 1
    assert unhandled[0]["exception_name"] == "UnlistedDomainError"
    assert "Traceback" in unhandled[0]["exception"]


def test_a_subclass_of_a_listed_domain_error_answers_as_its_parent(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise DeletedTaskNotFound("upsertion", "x")

    monkeypatch.setattr(TaskService, "get", refuse)
    status, error = refused(stack, "GET", "/internal/upsertion-tasks/info", query="task_id=x")
    assert status == 404
    assert error["code"] == "task_not_found"
    assert error["message"] == "No upsertion task with task_id 'x'"


def test_a_lone_surrogate_in_an_item_is_422_naming_it(stack: InProcessStack) -> None:
    raw = '{"embedding_model_id": "local-hash-384", "items": [{"object_id": "s", "payload": {"text": "a\\ud83d"}}]}'
    status, error = refused(stack, "POST", RUN, raw_body=raw)
    assert status == 422
    assert error["code"] == "invalid_text"
    assert "'s'" in error["message"]
    status, error = refused(
        stack, "POST", DELETE_RUN, raw_body='{"embedding_model_id": "local-hash-384", "object_ids": ["\\udc00"]}'
    )
    assert status == 422


# -- media types -------------------------------------------------------------------------------

CREATE_BODY = json.dumps({"embedding_model_id": MODEL, "items": [{"object_id": "a", "payload": {"text": "t"}}]})


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data",  # no boundary
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "",
    ],
)
def test_a_body_that_is_not_json_is_415(stack: InProcessStack, content_type: str) -> None:
    status, error = refused(stack, "POST", RUN, raw_body=CREATE_BODY, headers={"Content-Type": content_type})
    assert status == 415
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "APPLICATION/JSON"},
        {"content-type": "application/json; charset=utf-8"},
        {"CONTENT-TYPE": "Application/Json ;Charset=UTF-8"},
        {},  # no Content-Type: read as JSON
    ],
)
def test_json_media_type_is_matched_case_insensitively_with_parameters(
    stack: InProcessStack, headers: dict[str, str]
) -> None:
    status, task = stack.request("POST", RUN, raw_body=CREATE_BODY, headers=headers)
    assert status == 202, task


def test_a_form_content_type_without_a_body_is_not_judged(stack: InProcessStack) -> None:
    """`curl -X PUT -d ''` sends a form Content-Type and no body."""
    status, error = refused(
        stack,
        "PUT",
        "/internal/upsertion-tasks/cancel",
        query="task_id=none",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 404, error


# -- invalid JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"embedding_model_id": ', "Expecting value"),
        ('{"embedding_model_id": "m", "items": [{"object_id": "a", "payload": {"x": NaN}}]}', "NaN is not a JSON"),
        ('{"embedding_model_id": "m", "items": [{"object_id": "a", "payload": {"x": Infinity}}]}', "Infinity is not"),
        ('{"embedding_model_id": "m", "items": [{"object_id": "a", "payload": {"x": -Infinity}}]}', "Infinity is not"),
        ('{"embedding_model_id": "m", "items": [{"object_id": "a", "payload": {"x": 1e400}}]}', "1e400 is out of"),
        ('{"embedding_model_id": "m", "items": [{"object_id": "a", "payload": {"x": -1e400}}]}', "out of range"),
        ('{"embedding_model_id": "m", "items": [], "n": ' + "9" * 4_301 + "}", "4301 digits is too long"),
        ("[" * 10_000 + "]" * 10_000, "nesting is deeper than 64 levels"),
        ('{"a": ' * 10_000 + "1" + "}" * 10_000, "nesting is deeper than 64 levels"),
        ("[" * 65 + "]" * 65, "nesting is deeper than 64 levels"),
    ],
)
def test_invalid_json_is_400_saying_what_is_wrong(stack: InProcessStack, raw: str, reason: str) -> None:
    status, error = refused(stack, "POST", RUN, raw_body=raw)
    assert status == 400, error
    assert error["code"] == "invalid_json"
    assert error["message"].startswith("Request body is not valid JSON: ")
    assert reason in error["message"], error["message"]


def test_64_levels_of_nesting_are_valid_json(stack: InProcessStack) -> None:
    deep = "[" * 60 + "]" * 60  # under body, items, item and payload: 64 levels
    raw = '{"embedding_model_id": "local-hash-384", "items": [{"object_id": "a", "payload": {"d": ' + deep + "}}]}"
    status, _ = stack.request("POST", RUN, raw_body=raw)
    assert status == 202
    too_deep = raw.replace(deep, "[" + deep + "]")
    assert stack.request("POST", RUN, raw_body=too_deep)[0] == 400


# -- task_id in a query ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/internal/upsertion-tasks/info"),
        ("PUT", "/internal/deletion-tasks/cancel"),
        ("PUT", "/internal/upsertion-tasks/restart"),
    ],
)
@pytest.mark.parametrize(
    ("task_id", "kind"), [("has%20space", "string_pattern_mismatch"), ("x" * 129, "string_too_long")]
)
def test_task_id_in_a_query_follows_the_body_rule(
    stack: InProcessStack, method: str, path: str, task_id: str, kind: str
) -> None:
    status, error = refused(stack, method, path, query=f"task_id={task_id}")
    assert status == 422
    assert fields(error) == {"query.task_id": kind}


@pytest.mark.parametrize("query", ["failures_offset=-1", "failures_limit=0", "failures_limit=1001"])
def test_info_rejects_bad_failure_paging(stack: InProcessStack, query: str) -> None:
    status, error = refused(stack, "GET", "/internal/upsertion-tasks/info", query=f"task_id=x&{query}")
    assert status == 422
    assert list(fields(error)) == [f"query.{query.split('=')[0]}"]
