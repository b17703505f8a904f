"""Every task reaches a final status whatever step fails: over the API (an interrupted create
names its task_id, retried transitions happen once) and through the reconciler's scheduled
function, in-process on moto with each function's role."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.in_process import InProcessStack
from vector_tasks import wiring
from vector_tasks.adapters.work_queue import SqsWorkQueue
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS

MODEL = "local-hash-384"
RUN = "/internal/upsertion-tasks/run"


def body(task_id: str | None, n: int = 3) -> dict[str, Any]:
    items = [{"object_id": f"o{i}", "payload": {"text": f"words {i}"}} for i in range(n)]
    created: dict[str, Any] = {"embedding_model_id": MODEL, "items": items}
    if task_id is not None:
        created["task_id"] = task_id
    return created


def info(stack: InProcessStack, task_id: str) -> dict[str, Any]:
    status, task = stack.request("GET", "/internal/upsertion-tasks/info", f"task_id={task_id}")
    assert status == 200, task
    return task


def fail_sends_once(monkeypatch: pytest.MonkeyPatch) -> None:
    real = SqsWorkQueue.send
    calls = {"n": 0}

    def flaky(self: SqsWorkQueue, refs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("SQS unreachable")
        real(self, refs)

    monkeypatch.setattr(SqsWorkQueue, "send", flaky)


def test_an_interrupted_create_without_task_id_answers_with_the_id_to_retry_with(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_sends_once(monkeypatch)
    status, answer = stack.request("POST", RUN, body=body(None))
    assert status == 500
    error = answer["error"]
    assert error["code"] == "create_interrupted"
    task_id = error["task_id"]
    assert f'"task_id": "{task_id}"' in error["message"]
    assert error["request_id"]
    assert info(stack, task_id)["status"] == "pending"

    status, task = stack.request("POST", RUN, body=body(task_id))
    assert (status, task["id"]) == (200, task_id)
    stack.drain()
    assert info(stack, task_id)["progress"] == {"total": 3, "succeeded": 3, "failed": 0, "pending": 0, "superseded": 0}


def test_a_retried_restart_naming_its_attempt_restarts_once(stack: InProcessStack) -> None:
    assert stack.request("POST", RUN, body=body("r"))[0] == 202
    stack.drain()
    first = stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=r&attempt=1")
    again = stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=r&attempt=1")
    assert (first[0], first[1]["attempt"]) == (200, 2)
    assert (again[0], again[1]["attempt"]) == (200, 2)
    assert len(stack.executions("RestartTaskStateMachine")) == 1
    stack.drain()
    assert info(stack, "r")["status"] == "done"


def test_a_transition_naming_another_attempt_is_409_attempt_mismatch(stack: InProcessStack) -> None:
    assert stack.request("POST", RUN, body=body("m"))[0] == 202
    stack.drain()
    assert stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=m&attempt=1")[0] == 200
    status, answer = stack.request("PUT", "/internal/upsertion-tasks/cancel", "task_id=m&attempt=1")
    assert status == 409
    assert {k: answer["error"][k] for k in ("code", "status", "attempt")} == {
        "code": "attempt_mismatch",
        "status": "pending",
        "attempt": 2,
    }
    status, answer = stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=m&attempt=5")
    assert (status, answer["error"]["code"], answer["error"]["attempt"]) == (409, "attempt_mismatch", 2)


@pytest.mark.parametrize("attempt", ["0", "x", "-1"])
def test_an_attempt_that_is_not_a_positive_number_is_422(stack: InProcessStack, attempt: str) -> None:
    status, answer = stack.request("PUT", "/internal/upsertion-tasks/cancel", f"task_id=t&attempt={attempt}")
    assert (status, answer["error"]["code"]) == (422, "validation_error")


def reconcile(stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """One scheduled run of the reconciler, every unfinished task taken as stalled."""
    monkeypatch.setenv("RECONCILE_STALL_AFTER_SECONDS", "0")
    wiring.reset()
    report: dict[str, Any] = stack.functions["ReconcilerFunction"].invoke({})
    return report


def test_the_reconciler_sends_the_chunks_of_a_purged_queue_again(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.request("POST", RUN, body=body("lost", n=2 * CHUNK_MAX_ITEMS + 50))[0] == 202
    stack.sqs.purge_queue(QueueUrl=stack.queue_url("WorkQueue"))
    assert stack.drain() == 0
    report = reconcile(stack, monkeypatch)
    assert (report["redispatched_tasks"], report["redispatched_chunks"]) == (1, 3)
    stack.drain()
    task = info(stack, "lost")
    assert (task["status"], task["progress"]["succeeded"]) == ("done", 2 * CHUNK_MAX_ITEMS + 50)
    assert reconcile(stack, monkeypatch)["examined"] == 0  # nothing unfinished is left


def test_the_reconciler_finishes_a_task_left_running_with_every_chunk_recorded(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.request("POST", RUN, body=body("stuck"))[0] == 202
    stack.drain()
    # As a delivery that recorded the last chunk and died before the final transition leaves it.
    boto3.resource("dynamodb").Table(stack.table_name).update_item(
        Key={"pk": "upsertion#stuck", "sk": "TASK"},
        UpdateExpression="SET #s = :running, status_pk = :pk",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":running": "running", ":pk": "upsertion#running"},
    )
    assert reconcile(stack, monkeypatch)["finished"] == 1
    assert info(stack, "stuck")["status"] == "done"


def test_the_reconcilers_calls_are_within_its_role(stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call a run makes (query, cursor, claim, send) passes the role template.yaml gives it."""
    fail_sends_once(monkeypatch)
    assert stack.request("POST", RUN, body=body("roles"))[0] == 500
    report = reconcile(stack, monkeypatch)
    assert report["redispatched_chunks"] == 1
    stack.drain()
    assert info(stack, "roles")["status"] == "done"
