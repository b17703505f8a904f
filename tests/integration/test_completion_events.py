"""Completion events: every task that reaches done, failed or canceled is announced on the bus,
read here as a subscriber would (a rule with an SQS target, on moto's EventBridge)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.event_tap import EventTap
from tests.support.in_process import InProcessStack
from vector_tasks.adapters.completion_events import EventBridgeCompletionEvents
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS

MODEL = "local-hash-384"


def upsert(stack: InProcessStack, task_id: str, texts: list[str | None]) -> None:
    items = [
        {"object_id": f"{task_id}-{i}", **({"payload": {"text": t}} if t is not None else {})}
        for i, t in enumerate(texts)
    ]
    body = {"embedding_model_id": MODEL, "task_id": task_id, "items": items}
    status, answer = stack.request("POST", "/internal/upsertion-tasks/run", body=body)
    assert status == 202, answer


@pytest.fixture
def tap(stack: InProcessStack) -> EventTap:
    return stack.event_tap()


def test_a_finished_task_is_announced_once_with_its_counters(stack: InProcessStack, tap: EventTap) -> None:
    upsert(stack, "e1", ["one", "two", None])
    stack.drain()
    (event,) = tap.received()
    assert (event["source"], event["detail-type"]) == ("vector-ingestion.tasks", "Task finished")
    detail = event["detail"]
    assert detail["id"] == "e1" and detail["kind"] == "upsertion" and detail["embedding_model_id"] == MODEL
    assert (detail["status"], detail["attempt"]) == ("done", 1)
    assert detail["progress"] == {"total": 3, "succeeded": 2, "failed": 1, "pending": 0, "superseded": 0}
    # Reading again, more writes (an info, a duplicate delivery) announce nothing more.
    stack.request("GET", "/internal/upsertion-tasks/info", "task_id=e1")
    stack.drain()
    assert tap.received() == []


def test_cancel_failed_and_every_restarted_attempt_are_announced(stack: InProcessStack, tap: EventTap) -> None:
    upsert(stack, "e2", ["a"] * (CHUNK_MAX_ITEMS + 50))  # two chunks
    assert stack.request("PUT", "/internal/upsertion-tasks/cancel", "task_id=e2")[0] == 200
    stack.drain()
    assert tap.transitions() == [("upsertion", "e2", 1, "canceled")]

    assert stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=e2")[0] == 200
    stack.drain()
    assert tap.transitions() == [("upsertion", "e2", 2, "done")]

    upsert(stack, "e3", [None, None])  # every item fails: the task ends failed
    body = {"embedding_model_id": MODEL, "task_id": "d1", "object_ids": ["x"]}
    assert stack.request("POST", "/internal/deletion-tasks/run", body=body)[0] == 202
    stack.drain()
    assert sorted(tap.transitions()) == [("deletion", "d1", 1, "done"), ("upsertion", "e3", 1, "failed")]


def test_a_publish_that_fails_is_retried_from_the_stream(
    stack: InProcessStack, tap: EventTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = EventBridgeCompletionEvents.publish
    failures = iter([RuntimeError("EventBridge refused the event: ThrottlingException")])

    def flaky(self: EventBridgeCompletionEvents, task: Any) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        real(self, task)

    monkeypatch.setattr(EventBridgeCompletionEvents, "publish", flaky)
    upsert(stack, "e4", ["x"])
    stack.drain()
    assert tap.transitions() == [("upsertion", "e4", 1, "done")]


def _retry_once(document: dict[str, Any]) -> None:
    events = document["Resources"]["CompletionEventsFunction"]["Properties"]["Events"]
    events["TaskTableChanges"]["Properties"]["MaximumRetryAttempts"] = 1


@pytest.mark.parametrize("template_document", [_retry_once], indirect=True)
def test_past_its_retries_a_batch_is_described_in_the_failure_queue_never_dropped_silently(
    stack: InProcessStack, tap: EventTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(self: EventBridgeCompletionEvents, task: Any) -> None:
        raise RuntimeError("EventBridge refused the event: AccessDeniedException")

    monkeypatch.setattr(EventBridgeCompletionEvents, "publish", refused)
    upsert(stack, "e5", ["x"])
    stack.drain()
    assert tap.received() == []
    url = stack.queue_url("CompletionEventsFailureQueue")
    (message,) = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    described = json.loads(message["Body"])
    assert described["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert described["DDBStreamBatchInfo"]["batchSize"] == 1


def _publish_elsewhere(document: dict[str, Any]) -> None:
    statements = document["Resources"]["CompletionEventsRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    for statement in statements["Statement"]:
        if statement["Action"] == "events:PutEvents":
            statement["Resource"] = {
                "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/other"
            }


@pytest.mark.parametrize("template_document", [_publish_elsewhere], indirect=True)
def test_the_publisher_may_put_events_on_its_bus_only(stack: InProcessStack, tap: EventTap) -> None:
    upsert(stack, "e6", ["x"])
    stack.drain()
    assert tap.received() == []  # denied as on AWS, so retried until it goes to the failure queue
    url = stack.queue_url("CompletionEventsFailureQueue")
    assert stack.sqs.receive_message(QueueUrl=url).get("Messages")
