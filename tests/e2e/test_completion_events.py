"""Completion events on the local stack: a subscriber's rule with an SQS target on moto's
EventBridge receives one event per final transition, as on AWS."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.event_tap import EventTap
from tests.support.http import wait_for
from tests.support.local_stack import RunningStack

MODEL = "local-hash-384"


def client(stack: RunningStack, service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def tap(local_stack: RunningStack) -> EventTap:
    return EventTap(client(local_stack, "events"), client(local_stack, "sqs"))


def test_done_and_canceled_tasks_are_announced_on_the_bus(local_stack: RunningStack, tap: EventTap) -> None:
    done, canceled = local_stack.task_id("announced"), local_stack.task_id("announced-cancel")
    items = [{"object_id": f"ev-{i}", "payload": {"text": f"event {i}"}} for i in range(3)] + [{"object_id": "ev-x"}]
    body = {"embedding_model_id": MODEL, "task_id": done, "items": items}
    assert local_stack.api.call("POST", "/internal/upsertion-tasks/run", body)[0] == 202
    body = {"embedding_model_id": MODEL, "task_id": canceled, "items": [{"object_id": "c", "payload": {"text": "t"}}]}
    assert local_stack.api.call("POST", "/internal/upsertion-tasks/run", body)[0] == 202
    local_stack.api.call("PUT", f"/internal/upsertion-tasks/cancel?task_id={canceled}")
    final = local_stack.api.get(f"/internal/upsertion-tasks/info?task_id={canceled}")["status"]

    received: list[dict[str, Any]] = []

    def both_announced() -> list[dict[str, Any]] | None:
        received.extend(tap.received())
        ids = {e["detail"]["id"] for e in received}
        return received if {done, canceled} <= ids else None

    events = wait_for(both_announced, timeout=60)
    by_id = {e["detail"]["id"]: e["detail"] for e in events}
    assert (by_id[done]["status"], by_id[done]["attempt"], by_id[done]["kind"]) == ("done", 1, "upsertion")
    assert by_id[done]["progress"] == {"total": 4, "succeeded": 3, "failed": 1, "pending": 0, "superseded": 0}
    assert by_id[canceled]["status"] == final  # canceled, or done if the worker finished first
    assert {e["source"] for e in events} == {"vector-ingestion.tasks"}
