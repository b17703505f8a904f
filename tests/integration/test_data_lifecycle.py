"""Data lifecycle: what the store writes carries its DynamoDB TTL (`expires_at`, epoch seconds),
and a task whose items are gone still answers info, and a restart of it is 409 items_expired.

Neither moto nor DynamoDB Local deletes expired items on time, so expiry is simulated the two
ways it shows on AWS: the items deleted (TTL ran), or still there past their expiry (TTL has
not run yet; readers treat them as gone).
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from tests.support.in_process import InProcessStack
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS

MODEL = "local-hash-384"
DAY = 86400


def table_of(stack: InProcessStack, sk: str) -> Any:
    """Where an item is: chunks and retry sets in the chunk table, the rest in the task table."""
    chunk = sk.startswith(("CHUNK#", "RETRY#"))
    return boto3.resource("dynamodb").Table(stack.chunk_table_name if chunk else stack.table_name)


def items_of(stack: InProcessStack, task_id: str, kind: str = "upsertion") -> dict[str, dict[str, Any]]:
    """The task's items in both tables, each found in the table `table_of` names."""
    found: dict[str, dict[str, Any]] = {}
    for name in (stack.table_name, stack.chunk_table_name):
        table = boto3.resource("dynamodb").Table(name)
        for item in table.query(KeyConditionExpression=Key("pk").eq(f"{kind}#{task_id}"))["Items"]:
            assert table_of(stack, str(item["sk"])).name == name, (name, item["sk"])
            found[str(item["sk"])] = item
    return found


def run(stack: InProcessStack, task_id: str, texts: list[str | None]) -> None:
    items = [
        {"object_id": f"{task_id}-{i}", **({"payload": {"text": t}} if t is not None else {})}
        for i, t in enumerate(texts)
    ]
    body = {"embedding_model_id": MODEL, "task_id": task_id, "items": items}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    stack.drain()


def days_from_now(item: dict[str, Any]) -> float:
    return (int(item["expires_at"]) - time.time()) / DAY


def test_chunks_results_and_the_final_task_carry_their_expiry(stack: InProcessStack) -> None:
    run(stack, "l1", ["a"] * (CHUNK_MAX_ITEMS + 50) + [None])
    stored = items_of(stack, "l1")
    chunks = [i for sk, i in stored.items() if sk.startswith("CHUNK#")]
    results = [i for sk, i in stored.items() if sk.startswith("RESULT#")]
    assert len(chunks) == len(results) == 2
    for item in chunks + results:
        assert 29.9 < days_from_now(item) <= 30  # RetentionDays (default 30) after they were written
    assert 364.9 < days_from_now(stored["TASK"]) <= 365  # TaskRetentionDays after it became final

    # A restart makes the task unfinished again: no expiry until it is final once more; the
    # retry set of a scope=failed restart carries the items' expiry.
    status, restarted = stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=l1&scope=failed")
    assert status == 200, restarted
    stored = items_of(stack, "l1")
    assert "expires_at" not in stored["TASK"]
    (retry,) = [i for sk, i in stored.items() if sk.startswith("RETRY#")]
    assert 29.9 < days_from_now(retry) <= 30
    stack.drain()
    assert 364.9 < days_from_now(items_of(stack, "l1")["TASK"]) <= 365


def test_a_pending_task_never_expires_and_a_canceled_one_does(stack: InProcessStack) -> None:
    body = {"embedding_model_id": MODEL, "task_id": "l2", "items": [{"object_id": "x", "payload": {"text": "t"}}]}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    assert "expires_at" not in items_of(stack, "l2")["TASK"]
    assert stack.request("PUT", "/internal/upsertion-tasks/cancel", "task_id=l2")[0] == 200
    assert 364.9 < days_from_now(items_of(stack, "l2")["TASK"]) <= 365


def test_a_restart_of_every_item_renews_the_chunks_expiry(stack: InProcessStack) -> None:
    run(stack, "l3", ["a", "b"])
    table = table_of(stack, "CHUNK#00000")
    soon = int(time.time()) + DAY  # a day left of its retention
    table.update_item(
        Key={"pk": "upsertion#l3", "sk": "CHUNK#00000"},
        UpdateExpression="SET expires_at = :soon",
        ExpressionAttributeValues={":soon": soon},
    )
    assert stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=l3")[0] == 200
    assert 29.9 < days_from_now(items_of(stack, "l3")["CHUNK#00000"]) <= 30


def _expire_by_deleting(stack: InProcessStack, task_id: str) -> None:
    for sk in items_of(stack, task_id):
        if sk != "TASK":
            table_of(stack, sk).delete_item(Key={"pk": f"upsertion#{task_id}", "sk": sk})


def _expire_in_place(stack: InProcessStack, task_id: str) -> None:
    for sk in items_of(stack, task_id):
        if sk != "TASK":
            table_of(stack, sk).update_item(
                Key={"pk": f"upsertion#{task_id}", "sk": sk},
                UpdateExpression="SET expires_at = :past",
                ExpressionAttributeValues={":past": int(time.time()) - 60},
            )


@pytest.mark.parametrize("expire", [_expire_by_deleting, _expire_in_place], ids=["deleted", "past-expiry"])
@pytest.mark.parametrize("scope", ["all", "failed"])
def test_a_task_whose_items_expired_answers_info_and_refuses_a_restart_with_409(
    stack: InProcessStack, expire: Any, scope: str
) -> None:
    run(stack, "l4", ["a", None])
    expire(stack, "l4")
    status, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=l4")
    assert status == 200
    assert (task["status"], task["progress"]) == (
        "done",
        {"total": 2, "succeeded": 1, "failed": 1, "pending": 0, "superseded": 0},
    )
    assert task["failed_items"] == []  # the failure details expired with the results

    status, answer = stack.request("PUT", "/internal/upsertion-tasks/restart", f"task_id=l4&scope={scope}")
    assert status == 409, answer
    assert answer["error"]["code"] == "items_expired"
    assert "no longer stored" in answer["error"]["message"]
    assert stack.executions("RestartTaskStateMachine") == []  # nothing was started
    status, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=l4")
    assert (task["status"], task["attempt"]) == ("done", 1)
