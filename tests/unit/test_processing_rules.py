from __future__ import annotations

from datetime import UTC, datetime

from vector_tasks.domain.model import ChunkOutcome, ItemFailure, Task, TaskKind, TaskStatus
from vector_tasks.domain.processing import final_status


def task(items: int, errors: int) -> Task:
    now = datetime.now(UTC)
    return Task(
        kind=TaskKind.UPSERTION,
        task_id="t",
        embedding_model_id="m",
        status=TaskStatus.RUNNING,
        created_at=now,
        updated_at=now,
        attempt=1,
        item_count=items,
        chunk_count=1,
        fingerprint="f",
        errors=errors,
    )


def test_a_task_with_any_item_not_in_error_is_done() -> None:
    assert final_status(task(3, 2)) == (TaskStatus.DONE, None)


def test_a_task_whose_every_item_errored_is_failed_with_a_reason() -> None:
    status, error = final_status(task(3, 3))
    assert status is TaskStatus.FAILED
    assert error == "All 3 items failed; see the failure list for each reason"


def test_not_found_deletions_are_listed_but_are_not_errors() -> None:
    outcome = ChunkOutcome(
        succeeded=1,
        failures=(ItemFailure("a", "Object not found in index", counts_as_error=False), ItemFailure("b", "boom")),
    )
    assert outcome.errors == 1
    assert len(outcome.failures) == 2
