"""TaskTransitions: cancel and restart, the lifecycle table, and the races lost to other writers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.memory import MemoryTaskStore, MemoryTransitions, MemoryWorkQueue
from vector_tasks.domain.errors import AttemptMismatch, InvalidTransition, ItemsExpired, NothingToRetry, TaskNotFound
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    WRITE_VERSION_BASE,
    ChunkOutcome,
    ChunkRef,
    Item,
    ItemFailure,
    RestartScope,
    Task,
    TaskKind,
    TaskStatus,
)
from vector_tasks.domain.transitions import TaskTransitions

UPSERTION = TaskKind.UPSERTION
T0 = datetime(2026, 3, 1, tzinfo=UTC)
CHUNKS: list[list[Item]] = [
    [{"object_id": "a0"}, {"object_id": "a1"}, {"object_id": "a2"}],
    [{"object_id": "b0"}, {"object_id": "b1"}],
    [{"object_id": "c0"}],
]


def put(store: MemoryTaskStore, status: TaskStatus, task_id: str = "t", attempt: int = 1) -> Task:
    """A task of CHUNKS (6 items, 3 chunks) in `status`, as the store holds it."""
    task = Task(
        kind=UPSERTION,
        task_id=task_id,
        embedding_model_id="m",
        status=TaskStatus.RUNNING,
        created_at=T0,
        updated_at=T0,
        attempt=attempt,
        item_count=6,
        chunk_count=3,
        fingerprint="fp",
        original_item_count=6,
        original_chunk_count=3,
        dispatched=True,
    )
    assert store.insert_task(task) is None
    store.put_chunks(UPSERTION, task_id, CHUNKS)
    store.edit(UPSERTION, task_id, status=status)
    return task


def record(store: MemoryTaskStore, chunk: int, failures: tuple[ItemFailure, ...] = (), attempt: int = 1) -> None:
    succeeded = len(CHUNKS[chunk]) - len(failures)
    assert store.record_chunk(ChunkRef(UPSERTION, "t", attempt, chunk), ChunkOutcome(succeeded, failures), now=T0)


def status_of(store: MemoryTaskStore, task_id: str = "t") -> TaskStatus:
    task = store.get_task(UPSERTION, task_id)
    assert task is not None
    return task.status


# -- cancel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.RUNNING])
def test_cancel_of_a_pending_or_running_task(
    transitions: TaskTransitions, store: MemoryTaskStore, status: TaskStatus
) -> None:
    put(store, status)
    answer = transitions.cancel(UPSERTION, "t")
    assert answer.status is TaskStatus.CANCELED
    assert answer.updated_at > T0
    assert answer.failures == []
    assert status_of(store) is TaskStatus.CANCELED


def test_cancel_answers_with_the_failures_so_far(transitions: TaskTransitions, store: MemoryTaskStore) -> None:
    put(store, TaskStatus.RUNNING)
    record(store, 0, (ItemFailure("a1", "bad"),))
    answer = transitions.cancel(UPSERTION, "t")
    assert answer.status is TaskStatus.CANCELED
    assert answer.failures == [ItemFailure("a1", "bad")]
    assert answer.failures_next_offset is None
    assert (answer.chunks_done, answer.succeeded, answer.failed) == (1, 2, 1)


@pytest.mark.parametrize("action", ["cancel", "restart"])
def test_only_the_answer_reads_the_failure_list(
    transitions: TaskTransitions, store: MemoryTaskStore, action: str
) -> None:
    put(store, TaskStatus.RUNNING if action == "cancel" else TaskStatus.DONE)
    if action == "cancel":
        transitions.cancel(UPSERTION, "t")
    else:
        transitions.restart(UPSERTION, "t", RestartScope.ALL)
    assert store.failure_reads == 1


def test_cancel_of_a_canceled_task_is_answered_unchanged(transitions: TaskTransitions, store: MemoryTaskStore) -> None:
    put(store, TaskStatus.RUNNING)
    record(store, 0, (ItemFailure("a2", "bad"),))
    store.edit(UPSERTION, "t", status=TaskStatus.CANCELED)
    store.calls.clear()

    answer = transitions.cancel(UPSERTION, "t")

    assert answer.status is TaskStatus.CANCELED
    assert answer.updated_at == T0
    assert answer.failures == [ItemFailure("a2", "bad")]
    assert "cancel" not in store.calls  # no transition was run


@pytest.mark.parametrize("status", [TaskStatus.DONE, TaskStatus.FAILED])
def test_cancel_of_a_finished_task_is_refused_with_its_status(
    transitions: TaskTransitions, store: MemoryTaskStore, status: TaskStatus
) -> None:
    put(store, status)
    with pytest.raises(InvalidTransition, match=f"Cannot cancel task 't' while it is {status.value}") as refused:
        transitions.cancel(UPSERTION, "t")
    assert refused.value.status == status.value
    assert "cancel" not in store.calls
    assert status_of(store) is status


def test_cancel_that_loses_the_race_to_the_last_chunk_is_a_409(
    transitions: TaskTransitions, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.RUNNING)
    store.before("cancel", lambda: store.edit(UPSERTION, "t", status=TaskStatus.DONE))
    with pytest.raises(InvalidTransition) as refused:
        transitions.cancel(UPSERTION, "t")
    assert refused.value.status == "done"
    assert status_of(store) is TaskStatus.DONE


def test_cancel_that_loses_the_race_to_another_cancel_is_answered(
    transitions: TaskTransitions, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.PENDING)
    store.before("cancel", lambda: store.edit(UPSERTION, "t", status=TaskStatus.CANCELED))
    answer = transitions.cancel(UPSERTION, "t")
    assert answer.status is TaskStatus.CANCELED
    assert answer.failures == []


def test_cancel_of_an_unknown_task(transitions: TaskTransitions) -> None:
    with pytest.raises(TaskNotFound):
        transitions.cancel(UPSERTION, "nope")


# -- restart ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED])
def test_restart_all_queues_every_original_chunk_as_the_next_attempt(
    transitions: TaskTransitions, store: MemoryTaskStore, queue: MemoryWorkQueue, status: TaskStatus
) -> None:
    put(store, TaskStatus.RUNNING)
    record(store, 0, (ItemFailure("a0", "bad"),))
    store.edit(UPSERTION, "t", status=status, error="boom" if status is TaskStatus.FAILED else None)

    answer = transitions.restart(UPSERTION, "t", RestartScope.ALL)

    assert answer.status is TaskStatus.PENDING
    assert answer.attempt == 2
    assert (answer.item_count, answer.chunk_count, answer.chunk_source) == (6, 3, ORIGINAL_CHUNKS)
    assert (answer.chunks_done, answer.succeeded, answer.failed, answer.errors) == (0, 0, 0, 0)
    assert answer.error is None
    assert answer.failures == []  # the new attempt's (none yet), not the last attempt's
    assert answer.failures_next_offset is None
    assert queue.sent == [ChunkRef(UPSERTION, "t", 2, n) for n in range(3)]


def test_restart_failed_chunks_the_retry_by_its_models_items_per_chunk(
    store: MemoryTaskStore, runner: MemoryTransitions, queue: MemoryWorkQueue
) -> None:
    put(store, TaskStatus.RUNNING)
    record(store, 0, (ItemFailure("a0", "bad"), ItemFailure("a1", "bad")))
    record(store, 1)
    store.edit(UPSERTION, "t", status=TaskStatus.CANCELED)  # chunk 2 never reached
    asked: list[str] = []
    transitions = TaskTransitions(store, runner, chunk_items=lambda model_id: asked.append(model_id) or 1)

    answer = transitions.restart(UPSERTION, "t", RestartScope.FAILED)

    assert asked == ["m"]
    assert (answer.item_count, answer.chunk_count) == (3, 3)  # a0, a1 and chunk 2's one item
    assert queue.sent == [ChunkRef(UPSERTION, "t", 2, n) for n in range(3)]


def test_restart_failed_queues_only_what_did_not_succeed(
    transitions: TaskTransitions, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    put(store, TaskStatus.RUNNING)
    record(store, 0, (ItemFailure("a1", "bad"),))
    record(store, 1)
    store.edit(UPSERTION, "t", status=TaskStatus.CANCELED)  # chunk 2 never reached

    answer = transitions.restart(UPSERTION, "t", RestartScope.FAILED)

    assert answer.attempt == 2
    assert (answer.item_count, answer.chunk_count) == (2, 1)
    assert answer.chunk_source.startswith("RETRY#0002-")
    assert queue.sent == [ChunkRef(UPSERTION, "t", 2, 0)]
    assert store.load_chunk(ChunkRef(UPSERTION, "t", 2, 0), answer.chunk_source) == [
        {"object_id": "a1"},
        {"object_id": "c0"},
    ]
    assert answer.original_item_count == 6

    # scope=all afterwards is the whole task again, from the original chunks.
    store.edit(UPSERTION, "t", status=TaskStatus.DONE)
    queue.drain()
    again = transitions.restart(UPSERTION, "t", RestartScope.ALL)
    assert (again.attempt, again.item_count, again.chunk_count, again.chunk_source) == (3, 6, 3, ORIGINAL_CHUNKS)
    assert queue.sent == [ChunkRef(UPSERTION, "t", 3, n) for n in range(3)]


def test_restart_failed_with_nothing_to_retry(
    transitions: TaskTransitions, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    put(store, TaskStatus.RUNNING)
    for chunk in range(3):
        record(store, chunk)
    store.edit(UPSERTION, "t", status=TaskStatus.DONE)
    with pytest.raises(NothingToRetry, match="Task 't' has no failed"):
        transitions.restart(UPSERTION, "t", RestartScope.FAILED)
    assert "restart" not in store.calls
    assert queue.sent == []
    assert status_of(store) is TaskStatus.DONE


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.RUNNING])
@pytest.mark.parametrize("scope", list(RestartScope))
def test_restart_of_an_unfinished_task_is_refused(
    transitions: TaskTransitions,
    store: MemoryTaskStore,
    queue: MemoryWorkQueue,
    status: TaskStatus,
    scope: RestartScope,
) -> None:
    put(store, status)
    store.calls.clear()
    with pytest.raises(InvalidTransition, match=f"Cannot restart task 't' while it is {status.value}") as refused:
        transitions.restart(UPSERTION, "t", scope)
    assert refused.value.status == status.value
    assert "restart" not in store.calls
    assert "put_chunks" not in store.calls  # no retry set written
    assert queue.sent == []


def test_restart_that_loses_the_race_answers_the_status_now(
    transitions: TaskTransitions, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    put(store, TaskStatus.DONE)
    # Another restart wins between the check and the conditional write.
    store.before("restart", lambda: store.edit(UPSERTION, "t", status=TaskStatus.RUNNING, attempt=2))
    with pytest.raises(InvalidTransition) as refused:
        transitions.restart(UPSERTION, "t", RestartScope.ALL)
    assert refused.value.status == "running"
    assert queue.sent == []


def test_restart_of_an_unknown_task(transitions: TaskTransitions) -> None:
    with pytest.raises(TaskNotFound):
        transitions.restart(UPSERTION, "nope", RestartScope.ALL)


# -- retry-safe transitions: the attempt the caller saw ---------------------------------------


def attempt_of(store: MemoryTaskStore, task_id: str = "t") -> int:
    task = store.get_task(UPSERTION, task_id)
    assert task is not None
    return task.attempt


def test_a_restart_naming_its_attempt_happens_once_however_often_it_is_sent(
    transitions: TaskTransitions, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    put(store, TaskStatus.DONE)
    first = transitions.restart(UPSERTION, "t", RestartScope.ALL, attempt=1)
    sent = queue.drain()
    assert (first.attempt, first.status, len(sent)) == (2, TaskStatus.PENDING, 3)
    # The answer was lost (a 503, a dropped connection): the client sends the same request.
    again = transitions.restart(UPSERTION, "t", RestartScope.ALL, attempt=1)
    assert (again.attempt, again.status) == (2, TaskStatus.PENDING)
    assert again.failures == []  # answered as any restart is: with its first page of failures
    assert queue.drain() == []  # nothing restarted twice
    assert store.calls.count("restart") == 1


def test_a_restart_retried_after_the_attempt_finished_still_answers_with_it(
    transitions: TaskTransitions, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    put(store, TaskStatus.DONE)
    transitions.restart(UPSERTION, "t", RestartScope.ALL, attempt=1)
    store.edit(UPSERTION, "t", status=TaskStatus.DONE)
    again = transitions.restart(UPSERTION, "t", RestartScope.ALL, attempt=1)
    assert (again.attempt, again.status) == (2, TaskStatus.DONE)
    assert attempt_of(store) == 2


def test_a_restart_naming_an_older_attempt_is_refused_with_the_current_one(
    transitions: TaskTransitions, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.DONE, attempt=4)
    with pytest.raises(AttemptMismatch) as raised:
        transitions.restart(UPSERTION, "t", RestartScope.ALL, attempt=2)
    assert (raised.value.attempt, raised.value.status) == (4, "done")
    assert "at attempt 2: it is at attempt 4 (done) now" in raised.value.message
    assert attempt_of(store) == 4


def test_a_restart_that_loses_the_race_to_the_same_restart_answers_with_the_winner(
    transitions: TaskTransitions, store: MemoryTaskStore, runner: MemoryTransitions
) -> None:
    """Two requests to restart attempt 1 (the client's retry while its first execution still
    runs): one conditional write wins, and the other answers with the attempt it made."""
    task = put(store, TaskStatus.DONE)
    other = TaskTransitions(store, runner)
    store.before("restart", lambda: other.restart(UPSERTION, "t", RestartScope.ALL, attempt=1))
    answer = transitions.restart(UPSERTION, "t", RestartScope.ALL, attempt=1)
    assert answer.attempt == 2
    assert answer.failures == []
    assert attempt_of(store) == 2
    assert task.attempt == 1


def test_a_restart_without_its_attempt_that_loses_the_race_is_still_a_409(
    transitions: TaskTransitions, store: MemoryTaskStore, runner: MemoryTransitions
) -> None:
    put(store, TaskStatus.DONE)
    other = TaskTransitions(store, runner)
    store.before("restart", lambda: other.restart(UPSERTION, "t", RestartScope.ALL))
    with pytest.raises(InvalidTransition):
        transitions.restart(UPSERTION, "t", RestartScope.ALL)


def test_a_cancel_naming_its_attempt_never_cancels_a_newer_one(
    transitions: TaskTransitions, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.PENDING, attempt=3)
    with pytest.raises(AttemptMismatch) as raised:
        transitions.cancel(UPSERTION, "t", attempt=2)
    assert (raised.value.attempt, raised.value.status) == (3, "pending")
    assert status_of(store) is TaskStatus.PENDING
    assert transitions.cancel(UPSERTION, "t", attempt=3).status is TaskStatus.CANCELED
    assert transitions.cancel(UPSERTION, "t", attempt=3).status is TaskStatus.CANCELED  # a retry: 200, unchanged


def test_a_cancel_that_loses_the_race_to_a_restart_is_an_attempt_mismatch(
    transitions: TaskTransitions, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.RUNNING)

    def cancel_then_restart() -> None:
        store.edit(UPSERTION, "t", status=TaskStatus.PENDING, attempt=2)

    store.before("cancel", cancel_then_restart)
    with pytest.raises(AttemptMismatch):
        transitions.cancel(UPSERTION, "t", attempt=1)
    assert status_of(store) is TaskStatus.PENDING


def test_a_restart_is_given_a_newer_write_version_and_its_superseded_count_starts_again(
    transitions: TaskTransitions, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.DONE)
    store.edit(UPSERTION, "t", write_version=WRITE_VERSION_BASE + 1, superseded=2)
    other = store.next_write_version("m")  # another task of the model accepted meanwhile
    restarted = transitions.restart(UPSERTION, "t", RestartScope.ALL)
    assert restarted.write_version > other
    assert restarted.superseded == 0


@pytest.mark.parametrize("scope", [RestartScope.ALL, RestartScope.FAILED])
def test_a_restart_whose_items_expired_is_refused_and_changes_nothing(
    transitions: TaskTransitions, store: MemoryTaskStore, queue: MemoryWorkQueue, scope: RestartScope
) -> None:
    put(store, TaskStatus.DONE)
    store.forget_chunks(UPSERTION, "t", ORIGINAL_CHUNKS)  # DynamoDB's TTL deleted them
    with pytest.raises(ItemsExpired, match="no longer stored"):
        transitions.restart(UPSERTION, "t", scope)
    assert (status_of(store), store.get_task(UPSERTION, "t").attempt) == (TaskStatus.DONE, 1)  # type: ignore[union-attr]
    assert "restart" not in store.calls
    assert queue.drain() == []


def test_a_restart_of_every_item_renews_them_before_the_transition(
    transitions: TaskTransitions, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.DONE)
    transitions.restart(UPSERTION, "t", RestartScope.ALL)
    assert store.calls.index("renew_chunks") < store.calls.index("restart")
