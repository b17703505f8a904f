"""A chunk the worker keeps failing on ends in the DLQ, and its items end failed: no stuck task."""

from __future__ import annotations

import json

import pytest

from tests.support.in_process import InProcessStack
from vector_tasks.handlers.dead_letter import ABANDONED_DETAIL


def test_a_chunk_that_always_crashes_the_worker_ends_as_failed_items(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens here: every delivery raises before the chunk is recorded.
    monkeypatch.setenv("OPENSEARCH_ENDPOINT", "http://127.0.0.1:9")
    body = {
        "embedding_model_id": "local-hash-384",
        "task_id": "doomed",
        "items": [{"object_id": f"d{i}", "payload": {"text": "words"}} for i in range(3)],
    }
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202

    delivered = stack.drain()

    redrive = json.loads(
        stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url("WorkQueue"), AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    # maxReceiveCount deliveries to the worker, then one to the dead-letter handler.
    assert delivered == int(redrive["maxReceiveCount"]) + 1
    status, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=doomed")
    assert status == 200
    assert task["status"] == "failed"
    assert task["progress"] == {"total": 3, "succeeded": 0, "failed": 3, "pending": 0, "superseded": 0}
    assert {f["object_id"] for f in task["failed_items"]} == {"d0", "d1", "d2"}
    assert {f["detail"] for f in task["failed_items"]} == {ABANDONED_DETAIL}


def test_a_malformed_message_is_dropped_by_the_dead_letter_handler(stack: InProcessStack) -> None:
    stack.sqs.send_message(QueueUrl=stack.queue_url("WorkQueue"), MessageBody='{"not": "a chunk"}')
    stack.drain()
    for queue in ("WorkQueue", "WorkDeadLetterQueue"):
        attributes = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url(queue), AttributeNames=["All"])[
            "Attributes"
        ]
        assert attributes["ApproximateNumberOfMessages"] == "0"
