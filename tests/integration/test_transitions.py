"""Cancel and restart through the Step Functions state machines, executed for real by moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.support.in_process import InProcessStack
from vector_tasks import wiring
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS
from vector_tasks.domain.model import TaskKind

MODEL = "local-hash-384"
INDEX = f"vectors-{MODEL}"


def upsert(stack: InProcessStack, task_id: str, n: int, **item_overrides: Any) -> dict[str, Any]:
    items = [
        {"object_id": f"{task_id}-{i}", "payload": {"text": f"text number {i}"}, **item_overrides} for i in range(n)
    ]
    status, task = stack.request(
        "POST", "/internal/upsertion-tasks/run", body={"embedding_model_id": MODEL, "task_id": task_id, "items": items}
    )
    assert status == 202, task
    return task


def act(stack: InProcessStack, action: str, task_id: str, query: str = "", kind: str = "upsertion") -> tuple[int, Any]:
    return stack.request("PUT", f"/internal/{kind}-tasks/{action}", f"task_id={task_id}{query}")


def info(stack: InProcessStack, task_id: str) -> dict[str, Any]:
    status, task = stack.request("GET", "/internal/upsertion-tasks/info", f"task_id={task_id}")
    assert status == 200
    return task


def event_types(execution: dict[str, Any]) -> list[str]:
    return [e["type"] for e in execution["events"]]


def indexed(opensearch: OpenSearch, prefix: str) -> int:
    opensearch.indices.refresh(index=INDEX)
    count: int = opensearch.count(index=INDEX, body={"query": {"prefix": {"object_id": prefix}}})["count"]
    return count


def test_cancel_a_pending_task_runs_the_state_machine_and_skips_every_chunk(
    stack: InProcessStack, opensearch: OpenSearch
) -> None:
    upsert(stack, "c1", 250)
    status, task = act(stack, "cancel", "c1")
    assert status == 200
    assert task["status"] == "canceled"
    (execution,) = stack.executions("CancelTaskStateMachine")
    assert execution["status"] == "SUCCEEDED"
    assert "TaskSucceeded" in event_types(execution)

    stack.drain()
    after = info(stack, "c1")
    assert after["status"] == "canceled"
    assert after["progress"] == {"total": 250, "succeeded": 0, "failed": 0, "pending": 250, "superseded": 0}
    assert not opensearch.indices.exists(index=INDEX)


def test_cancel_of_a_canceled_task_is_200_and_changes_nothing(stack: InProcessStack) -> None:
    upsert(stack, "c2", 3)
    _, first = act(stack, "cancel", "c2")
    status, second = act(stack, "cancel", "c2")
    assert status == 200
    assert second == first
    assert len(stack.executions("CancelTaskStateMachine")) == 1


def test_refused_transitions_are_409_with_the_current_status(stack: InProcessStack) -> None:
    upsert(stack, "r1", 3)
    status, error = act(stack, "restart", "r1")
    assert status == 409
    assert error["error"]["code"] == "invalid_transition"
    assert error["error"]["status"] == "pending"
    assert error["error"]["message"] == "Cannot restart task 'r1' while it is pending"
    stack.drain()
    status, error = act(stack, "cancel", "r1")
    assert status == 409
    assert error["error"]["status"] == "done"


def test_transitions_of_unknown_tasks_are_404_and_bad_parameters_422(stack: InProcessStack) -> None:
    for action in ("cancel", "restart"):
        status, error = act(stack, action, "ghost", kind="deletion")
        assert status == 404
        assert error["error"]["message"] == "No deletion task with task_id 'ghost'"
    status, error = stack.request("PUT", "/internal/upsertion-tasks/cancel")
    assert status == 422
    upsert(stack, "r2", 1)
    stack.drain()
    status, error = act(stack, "restart", "r2", "&scope=some")
    assert status == 422
    assert error["error"]["details"][0]["field"] == "query.scope"


def test_state_machine_refusal_after_a_lost_race_is_409(stack: InProcessStack) -> None:
    upsert(stack, "race", 3)
    stack.drain()
    done = wiring.task_store().get_task(TaskKind.UPSERTION, "race")
    assert done is not None
    # A stale view (attempt 0) makes the conditional write in the state machine fail.
    done.attempt = 0
    assert wiring.task_transitions()._runner.cancel(done, done.updated_at) is False
    # A lost race is an outcome, not a failure: the execution succeeds through its Refused
    # state, so the state machines' ExecutionsFailed alarm counts real failures only.
    (execution,) = stack.executions("CancelTaskStateMachine")
    assert execution["status"] == "SUCCEEDED"
    assert any(e["type"] == "TaskFailed" for e in execution["events"])  # the conditional write refused
    entered = [e["stateEnteredEventDetails"]["name"] for e in execution["events"] if "stateEnteredEventDetails" in e]
    assert entered[-1] == "Refused"


def test_restart_all_requeues_every_chunk_as_the_next_attempt(stack: InProcessStack, opensearch: OpenSearch) -> None:
    total = 2 * CHUNK_MAX_ITEMS + 50  # three chunks
    upsert(stack, "ra", total)
    stack.drain()
    status, task = act(stack, "restart", "ra")
    assert status == 200
    assert task["status"] == "pending"
    assert task["attempt"] == 2
    assert task["progress"] == {"total": total, "succeeded": 0, "failed": 0, "pending": total, "superseded": 0}
    (execution,) = stack.executions("RestartTaskStateMachine")
    assert execution["status"] == "SUCCEEDED"
    assert event_types(execution).count("MapIterationSucceeded") == 3  # one message per chunk

    stack.drain()
    again = info(stack, "ra")
    assert again["status"] == "done"
    assert again["attempt"] == 2
    assert again["progress"] == {"total": total, "succeeded": total, "failed": 0, "pending": 0, "superseded": 0}
    assert indexed(opensearch, "ra-") == total


def test_restart_failed_retries_only_the_items_that_did_not_succeed(stack: InProcessStack) -> None:
    items = [{"object_id": "good", "payload": {"text": "fine words"}}, {"object_id": "bad-1"}, {"object_id": "bad-2"}]
    stack.request(
        "POST", "/internal/upsertion-tasks/run", body={"embedding_model_id": MODEL, "task_id": "rf", "items": items}
    )
    stack.drain()
    assert info(stack, "rf")["progress"]["failed"] == 2

    status, task = act(stack, "restart", "rf", "&scope=failed")
    assert status == 200
    assert task["progress"] == {"total": 2, "succeeded": 0, "failed": 0, "pending": 2, "superseded": 0}
    stack.drain()
    after = info(stack, "rf")
    assert after["attempt"] == 2
    assert after["status"] == "failed"  # both fail again, for the same reason
    assert sorted(f["object_id"] for f in after["failed_items"]) == ["bad-1", "bad-2"]
    assert after["progress"] == {"total": 2, "succeeded": 0, "failed": 2, "pending": 0, "superseded": 0}


def queued_bodies(stack: InProcessStack) -> list[dict[str, Any]]:
    """Every message on the work queue, taken off it."""
    queue = stack.queue_url("WorkQueue")
    bodies: list[dict[str, Any]] = []
    while batch := stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            bodies.append(json.loads(message["Body"]))
    return sorted(bodies, key=lambda b: int(b["chunk"]))


def test_chunk_messages_name_where_their_attempt_s_items_are(stack: InProcessStack) -> None:
    """The create's messages name the original chunks, a `scope=failed` restart's its retry set
    (the state machine sends them), so a worker reads task and items in one request."""
    items = [{"object_id": "good", "payload": {"text": "fine words"}}, {"object_id": "bad-1"}]
    body = {"embedding_model_id": MODEL, "task_id": "src", "items": items}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    created = queued_bodies(stack)
    assert created == [{"kind": "upsertion", "task_id": "src", "attempt": 1, "chunk": 0, "source": "CHUNK"}]
    for message in created:
        stack.send_chunk_message(message)
    stack.drain()

    assert act(stack, "restart", "src", "&scope=failed")[0] == 200
    stored = wiring.task_store().get_task(TaskKind.UPSERTION, "src")
    assert stored is not None and stored.chunk_source.startswith("RETRY#0002-")
    restarted = queued_bodies(stack)
    assert restarted == [
        {"kind": "upsertion", "task_id": "src", "attempt": 2, "chunk": 0, "source": stored.chunk_source}
    ]
    for message in restarted:
        stack.send_chunk_message(message)
    stack.drain()
    after = info(stack, "src")
    assert (after["attempt"], after["status"], after["progress"]["failed"]) == (2, "failed", 1)


def test_restart_failed_with_nothing_to_retry_is_409(stack: InProcessStack) -> None:
    upsert(stack, "clean", 2)
    stack.drain()
    status, error = act(stack, "restart", "clean", "&scope=failed")
    assert status == 409
    assert error["error"]["code"] == "nothing_to_retry"
    assert stack.executions("RestartTaskStateMachine") == []


def test_restart_failed_after_a_dead_lettered_chunk_recovers_every_item(
    stack: InProcessStack, opensearch: OpenSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = stack.environment["OPENSEARCH_ENDPOINT"]
    monkeypatch.setenv("OPENSEARCH_ENDPOINT", "http://127.0.0.1:9")
    upsert(stack, "dl", 120)
    stack.drain()
    assert info(stack, "dl")["status"] == "failed"

    monkeypatch.setenv("OPENSEARCH_ENDPOINT", endpoint)  # OpenSearch is back
    wiring.reset()
    status, task = act(stack, "restart", "dl", "&scope=failed")
    assert status == 200
    assert task["progress"]["total"] == 120
    stack.drain()
    after = info(stack, "dl")
    assert after["status"] == "done"
    assert after["progress"] == {"total": 120, "succeeded": 120, "failed": 0, "pending": 0, "superseded": 0}
    assert indexed(opensearch, "dl-") == 120


def test_cancel_mid_flight_keeps_written_vectors_and_skips_the_rest(
    stack: InProcessStack, opensearch: OpenSearch
) -> None:
    size = CHUNK_MAX_ITEMS
    upsert(stack, "mid", 5 * size)  # five chunks
    assert stack.deliver_to_worker(max_messages=2) == 2
    status, task = act(stack, "cancel", "mid")
    assert status == 200
    assert task["status"] == "canceled"
    progress = {"total": 5 * size, "succeeded": 2 * size, "failed": 0, "pending": 3 * size, "superseded": 0}
    assert task["progress"] == progress

    stack.drain()
    after = info(stack, "mid")
    assert after["status"] == "canceled"
    assert after["progress"] == task["progress"]
    assert indexed(opensearch, "mid-") == 2 * size

    # ...and scope=failed picks up exactly the items never reached.
    status, task = act(stack, "restart", "mid", "&scope=failed")
    assert status == 200
    assert task["progress"]["total"] == 3 * size
    stack.drain()
    assert info(stack, "mid")["progress"] == {
        "total": 3 * size,
        "succeeded": 3 * size,
        "failed": 0,
        "pending": 0,
        "superseded": 0,
    }
    assert indexed(opensearch, "mid-") == 5 * size


def test_messages_of_an_older_attempt_are_ignored_after_a_restart(stack: InProcessStack) -> None:
    upsert(stack, "fence", 3 * CHUNK_MAX_ITEMS)  # three chunks queued for attempt 1
    act(stack, "cancel", "fence")
    status, task = act(stack, "restart", "fence")  # three more for attempt 2
    assert status == 200
    assert task["attempt"] == 2
    # A late redelivery of attempt 1, and attempt 2's first chunk three times over.
    stack.send_chunk_message({"kind": "upsertion", "task_id": "fence", "attempt": 1, "chunk": 0})
    for _ in range(3):
        stack.send_chunk_message({"kind": "upsertion", "task_id": "fence", "attempt": 2, "chunk": 0})
    stack.drain()
    after = info(stack, "fence")
    assert after["status"] == "done"
    assert after["attempt"] == 2
    total = 3 * CHUNK_MAX_ITEMS
    assert after["progress"] == {"total": total, "succeeded": total, "failed": 0, "pending": 0, "superseded": 0}


def test_deletion_tasks_restart_and_cancel_the_same_way(stack: InProcessStack) -> None:
    upsert(stack, "d", 3)
    stack.drain()
    body = {"embedding_model_id": MODEL, "task_id": "del", "object_ids": ["d-0", "d-1", "missing"]}
    stack.request("POST", "/internal/deletion-tasks/run", body=body)
    stack.drain()
    status, task = act(stack, "restart", "del", "&scope=failed", kind="deletion")
    assert status == 200
    assert task["progress"]["total"] == 1
    stack.drain()
    status, task = stack.request("GET", "/internal/deletion-tasks/info", "task_id=del")
    assert task["status"] == "done"
    assert task["failed_item_ids"] == [{"object_id": "missing", "detail": "Object not found in index"}]
