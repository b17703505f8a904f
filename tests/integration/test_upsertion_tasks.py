"""Upsertion tasks through the handlers: create, process through SQS, read, list."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.support.in_process import InProcessStack
from vector_tasks import observability

RUN = "/internal/upsertion-tasks/run"
INFO = "/internal/upsertion-tasks/info"
LIST = "/internal/upsertion-tasks/list"
MODEL = "local-hash-384"


def items(n: int, prefix: str = "doc") -> list[dict[str, Any]]:
    return [
        {"object_id": f"{prefix}-{i}", "payload": {"text": f"document number {i} about topic {i % 7}"}}
        for i in range(n)
    ]


def create(stack: InProcessStack, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return stack.request("POST", RUN, body=body)


def info(stack: InProcessStack, task_id: str) -> dict[str, Any]:
    status, body = stack.request("GET", INFO, f"task_id={task_id}")
    assert status == 200, body
    return body


def test_create_answers_202_with_the_spec_fields_then_processes_to_done(
    stack: InProcessStack, opensearch: OpenSearch
) -> None:
    status, task = create(
        stack,
        {
            "embedding_model_id": MODEL,
            "task_id": "upsert-001",
            "items": [
                {"object_id": "doc-1", "payload": {"text": "neural nets basics"}, "item_info": {"source": "wiki"}},
                {"object_id": "doc-2", "payload": {"text": "gradient descent"}},
            ],
        },
    )
    assert status == 202
    assert task["id"] == "upsert-001"
    assert task["embedding_model_id"] == MODEL
    assert task["status"] == "pending"
    assert task["failed_items"] == []
    assert task["created_at"].endswith("Z") and task["updated_at"].endswith("Z")
    assert task["progress"] == {"total": 2, "succeeded": 0, "failed": 0, "pending": 2, "superseded": 0}
    assert task["attempt"] == 1 and task["error"] is None

    stack.drain()

    done = info(stack, "upsert-001")
    assert done["status"] == "done"
    assert done["progress"] == {"total": 2, "succeeded": 2, "failed": 0, "pending": 0, "superseded": 0}
    assert done["failed_items"] == []
    document = opensearch.get(index=f"vectors-{MODEL}", id="doc-1")["_source"]
    assert document["object_id"] == "doc-1"
    assert len(document["embedding"]) == 384
    assert document["payload"] == {"text": "neural nets basics"}
    assert document["item_info"] == {"source": "wiki"}
    assert document["task_id"] == "upsert-001"


def test_index_is_created_with_the_models_knn_mapping(stack: InProcessStack, opensearch: OpenSearch) -> None:
    create(stack, {"embedding_model_id": MODEL, "items": items(3)})
    stack.drain()
    mapping = opensearch.indices.get_mapping(index=f"vectors-{MODEL}")[f"vectors-{MODEL}"]["mappings"]
    assert mapping["dynamic"] == "strict"
    vector = mapping["properties"]["embedding"]
    assert vector["type"] == "knn_vector"
    assert vector["dimension"] == 384
    assert vector["method"]["space_type"] == "cosinesimil"
    assert mapping["properties"]["payload"]["type"] == "flat_object"
    assert mapping["properties"]["item_info"]["type"] == "flat_object"


def test_arbitrary_payload_keys_do_not_grow_the_mapping(stack: InProcessStack, opensearch: OpenSearch) -> None:
    body = [
        {"object_id": f"k-{i}", "payload": {"text": "some words", f"key_{i}": {"nested": i}}, "item_info": {f"x{i}": i}}
        for i in range(20)
    ]
    _, task = create(stack, {"embedding_model_id": MODEL, "items": body})
    stack.drain()
    properties = opensearch.indices.get_mapping(index=f"vectors-{MODEL}")[f"vectors-{MODEL}"]["mappings"]["properties"]
    assert set(properties) == {"object_id", "embedding", "payload", "item_info", "task_id", "indexed_at"}
    assert info(stack, task["id"])["progress"]["succeeded"] == 20


def test_same_task_id_and_body_returns_the_existing_task_with_200(stack: InProcessStack) -> None:
    body = {"embedding_model_id": MODEL, "task_id": "idem-1", "items": items(3)}
    assert create(stack, body)[0] == 202
    stack.drain()
    status, again = create(stack, body)
    assert status == 200
    assert again["status"] == "done"
    assert again["progress"]["succeeded"] == 3


def test_same_task_id_with_a_different_body_is_409(stack: InProcessStack) -> None:
    assert create(stack, {"embedding_model_id": MODEL, "task_id": "idem-2", "items": items(3)})[0] == 202
    status, error = create(stack, {"embedding_model_id": MODEL, "task_id": "idem-2", "items": items(4)})
    assert status == 409
    assert error["error"]["code"] == "task_id_conflict"
    assert "idem-2" in error["error"]["message"]
    assert error["error"]["request_id"]


def test_without_task_id_the_service_generates_one(stack: InProcessStack) -> None:
    status, task = create(stack, {"embedding_model_id": MODEL, "items": items(1)})
    assert status == 202
    assert len(task["id"]) >= 32
    assert info(stack, task["id"])["id"] == task["id"]


def test_items_that_cannot_be_embedded_are_listed_and_the_rest_proceed(
    stack: InProcessStack, opensearch: OpenSearch
) -> None:
    body = {
        "embedding_model_id": MODEL,
        "task_id": "mixed",
        "items": [
            {"object_id": "ok", "payload": {"text": "fine text"}},
            {"object_id": "no-payload"},
            {"object_id": "no-text", "payload": {"title": "x"}},
            {"object_id": "not-string", "payload": {"text": 42}},
            {"object_id": "blank", "payload": {"text": "   "}},
            {"object_id": "no-words", "payload": {"text": "!!! ??? ..."}},
        ],
    }
    create(stack, body)
    stack.drain()
    task = info(stack, "mixed")
    assert task["status"] == "done"
    assert task["progress"] == {"total": 6, "succeeded": 1, "failed": 5, "pending": 0, "superseded": 0}
    details = {f["object_id"]: f["detail"] for f in task["failed_items"]}
    assert details == {
        "no-payload": "Item has no payload; model 'local-hash-384' reads its input from payload.text",
        "no-text": "payload.text is missing; model 'local-hash-384' reads its input from payload.text",
        "not-string": "payload.text must be a string, got int",
        "blank": "payload.text is empty",
        "no-words": "payload.text has no words to embed",
    }
    assert opensearch.exists(index=f"vectors-{MODEL}", id="ok")
    assert not opensearch.exists(index=f"vectors-{MODEL}", id="no-payload")


def test_precomputed_vectors_are_checked_against_the_model_dimension(
    stack: InProcessStack, opensearch: OpenSearch
) -> None:
    good = [0.1] * 384
    body = {
        "embedding_model_id": "precomputed-384",
        "task_id": "pre",
        "items": [
            {"object_id": "good", "payload": {"vector": good, "title": "kept"}},
            {"object_id": "short", "payload": {"vector": [0.1, 0.2, 0.3]}},
            {"object_id": "zeros", "payload": {"vector": [0.0] * 384}},
            {"object_id": "strings", "payload": {"vector": ["a"] * 384}},
        ],
    }
    create(stack, body)
    stack.drain()
    task = info(stack, "pre")
    details = {f["object_id"]: f["detail"] for f in task["failed_items"]}
    assert details == {
        "short": "payload.vector has 3 values; model 'precomputed-384' expects 384",
        "zeros": "payload.vector is all zeros, which has no direction under cosine similarity",
        "strings": "payload.vector must be a list of numbers",
    }
    stored = opensearch.get(index="vectors-precomputed-384", id="good")["_source"]
    assert stored["payload"] == {"title": "kept"}
    assert stored["embedding"][0] == pytest.approx(0.1)


def test_bulk_item_errors_become_item_failures_not_a_failed_task(stack: InProcessStack, opensearch: OpenSearch) -> None:
    # An index made elsewhere with item_info as a number: OpenSearch rejects those documents.
    index = "vectors-precomputed-384"
    opensearch.indices.create(
        index=index,
        body={
            "settings": {"index": {"knn": True}},
            "mappings": {
                "properties": {
                    "embedding": {"type": "knn_vector", "dimension": 384},
                    "item_info": {"type": "integer"},
                }
            },
        },
    )
    body = {
        "embedding_model_id": "precomputed-384",
        "task_id": "bulk-errors",
        "items": [
            {"object_id": "plain", "payload": {"vector": [0.5] * 384}},
            {"object_id": "bad-info", "payload": {"vector": [0.5] * 384}, "item_info": {"not": "a number"}},
        ],
    }
    create(stack, body)
    stack.drain()
    task = info(stack, "bulk-errors")
    assert task["status"] == "done"
    assert task["progress"] == {"total": 2, "succeeded": 1, "failed": 1, "pending": 0, "superseded": 0}
    (failure,) = task["failed_items"]
    assert failure["object_id"] == "bad-info"
    assert failure["detail"].startswith("OpenSearch rejected the item: ")


def test_a_task_whose_items_all_fail_ends_failed_with_an_error(stack: InProcessStack) -> None:
    create(
        stack, {"embedding_model_id": MODEL, "task_id": "all-bad", "items": [{"object_id": "a"}, {"object_id": "b"}]}
    )
    stack.drain()
    task = info(stack, "all-bad")
    assert task["status"] == "failed"
    assert task["error"] == "All 2 items failed; see the failure list for each reason"
    assert task["progress"] == {"total": 2, "succeeded": 0, "failed": 2, "pending": 0, "superseded": 0}


def test_a_chunk_delivered_twice_is_counted_once(stack: InProcessStack) -> None:
    create(stack, {"embedding_model_id": MODEL, "task_id": "dup", "items": items(5)})
    message = {"kind": "upsertion", "task_id": "dup", "attempt": 1, "chunk": 0}
    stack.send_chunk_message(message)
    stack.send_chunk_message(message)
    stack.drain()
    task = info(stack, "dup")
    assert task["status"] == "done"
    assert task["progress"] == {"total": 5, "succeeded": 5, "failed": 0, "pending": 0, "superseded": 0}


def test_a_large_task_is_chunked_and_every_item_indexed(stack: InProcessStack, opensearch: OpenSearch) -> None:
    create(stack, {"embedding_model_id": MODEL, "task_id": "big", "items": items(1050)})
    pending = info(stack, "big")
    assert pending["progress"]["pending"] == 1050
    stack.drain()
    task = info(stack, "big")
    assert task["status"] == "done"
    assert task["progress"] == {"total": 1050, "succeeded": 1050, "failed": 0, "pending": 0, "superseded": 0}
    opensearch.indices.refresh(index=f"vectors-{MODEL}")
    assert opensearch.count(index=f"vectors-{MODEL}")["count"] == 1050


def test_each_answered_request_is_logged_with_its_caller_task_and_status(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the API's access log (same request id), who created, canceled or restarted what."""
    # Read what the functions' logger writes, at its handler: its stream is whatever sys.stdout
    # was when a handler module first configured it, not this test's capture.
    written = io.StringIO()
    monkeypatch.setattr(observability.logger.registered_handler, "stream", written)
    body = {"embedding_model_id": "local-hash-384", "items": [{"object_id": "a", "payload": {"text": "t"}}]}
    status, created = stack.request("POST", "/internal/upsertion-tasks/run", body=body)
    assert status == 202
    stack.request("PUT", "/internal/upsertion-tasks/cancel", f"task_id={created['id']}")
    lines = [json.loads(line) for line in written.getvalue().splitlines() if '"Request answered"' in line]
    assert [(line["method"], line["task_id"], line["status"]) for line in lines] == [
        ("POST", created["id"], 202),  # the id the service generated
        ("PUT", created["id"], 200),
    ]
    # The request id ties the line to the access log; locally no request is signed, so there is
    # no caller ARN (on AWS, IAM auth puts it in requestContext.identity.userArn).
    assert all(line["correlation_id"] for line in lines)
