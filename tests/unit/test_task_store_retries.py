"""`record_chunk`'s transaction retries: conflicts are retried, condition failures are not; and
`read_delivery` asking again for the keys DynamoDB left unprocessed (unit tier)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.determinism import FakeClock, FixedJitter
from vector_tasks.adapters.retry import RetryPolicy
from vector_tasks.adapters.task_store import DynamoTaskStore, conflict_retry_policy
from vector_tasks.domain.model import ChunkOutcome, ChunkRef, TaskKind

REF = ChunkRef(TaskKind.UPSERTION, "t", 1, 0)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def canceled(*reasons: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "canceled"},
            "CancellationReasons": [{"Code": r} for r in reasons],
        },
        "TransactWriteItems",
    )


class ScriptedDynamo:
    """Stands in for the boto3 resource: each transaction gets the next scripted answer."""

    def __init__(self, *answers: Any, rows: dict[str, dict[str, Any]] | None = None) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.rows = rows or {}
        self.asked: list[list[str]] = []
        self.meta = SimpleNamespace(client=self)

    def Table(self, name: str) -> ScriptedDynamo:
        return self

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        """Answers the first scripted number of the asked keys (table after table), leaves the
        rest unprocessed."""
        self.calls += 1
        assert all(asked["ConsistentRead"] is True for asked in RequestItems.values())
        keys = [(table, key) for table, asked in RequestItems.items() for key in asked["Keys"]]
        self.asked.append([f"{table}:{key['sk']}" for table, key in keys])
        answered = self.answers.pop(0)
        assert isinstance(answered, int)
        found: dict[str, list[dict[str, Any]]] = {}
        for table, key in keys[:answered]:
            if key["sk"] in self.rows:
                found.setdefault(table, []).append(self.rows[key["sk"]])
        unprocessed: dict[str, Any] = {}
        for table, key in keys[answered:]:
            unprocessed.setdefault(table, {"Keys": []})["Keys"].append(key)
        return {"Responses": found, "UnprocessedKeys": unprocessed}

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        self.calls += 1
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer


def store_with(dynamo: ScriptedDynamo, clock: FakeClock) -> DynamoTaskStore:
    policy = RetryPolicy(attempts=5, base_delay=0.025, max_delay=1.0, rng=FixedJitter(1.0), clock=clock)
    return DynamoTaskStore(
        "tasks", resource=dynamo, conflict_retry=policy, sleep=clock.sleep, chunk_table_name="chunks"
    )


def test_conflicts_are_retried_with_a_short_backoff() -> None:
    clock = FakeClock(0.0)
    conflict = canceled("None", "TransactionConflict")
    dynamo = ScriptedDynamo(conflict, conflict, None)
    assert store_with(dynamo, clock).record_chunk(REF, ChunkOutcome(succeeded=1), NOW) is True
    assert dynamo.calls == 3
    assert clock.now == pytest.approx(0.05 + 0.1)


def test_a_condition_failure_is_an_answer_not_retried() -> None:
    dynamo = ScriptedDynamo(canceled("ConditionalCheckFailed", "None"))
    assert store_with(dynamo, FakeClock()).record_chunk(REF, ChunkOutcome(succeeded=1), NOW) is False
    assert dynamo.calls == 1


def test_a_conflict_that_outlasts_every_attempt_is_raised_as_is() -> None:
    conflict = canceled("None", "TransactionConflict")
    dynamo = ScriptedDynamo(*[conflict] * 5)
    with pytest.raises(ClientError) as raised:
        store_with(dynamo, FakeClock()).record_chunk(REF, ChunkOutcome(succeeded=1), NOW)
    assert raised.value is conflict
    assert dynamo.calls == 5


def test_the_default_policy_tries_five_times_with_pauses_under_half_a_second() -> None:
    policy = conflict_retry_policy()
    assert policy.attempts == 5
    assert [min(policy.max_delay, policy.base_delay * 2**n) for n in range(1, 5)] == [0.05, 0.1, 0.2, 0.4]


def test_keys_left_unprocessed_are_asked_again_alone() -> None:
    clock = FakeClock(0.0)
    rows = {"RESULT#00000": {"pk": "p", "sk": "RESULT#00000", "attempt": 1}}
    dynamo = ScriptedDynamo(1, 0, 2, rows=rows)  # one key answered, then none, then the other two
    read = store_with(dynamo, clock).read_delivery(REF)
    assert dynamo.asked == [
        ["tasks:TASK", "tasks:RESULT#00000", "chunks:CHUNK#00000"],
        ["tasks:RESULT#00000", "chunks:CHUNK#00000"],
        ["tasks:RESULT#00000", "chunks:CHUNK#00000"],
    ]
    assert (read.task, read.recorded, read.items) == (None, True, None)
    assert clock.now == pytest.approx(0.05 + 0.1)


def test_keys_still_unprocessed_after_every_try_fail_the_delivery() -> None:
    dynamo = ScriptedDynamo(*[0] * 5)
    with pytest.raises(RuntimeError, match=r"left 3 keys .* unprocessed after 5 tries"):
        store_with(dynamo, FakeClock()).read_delivery(REF)
    assert dynamo.calls == 5
