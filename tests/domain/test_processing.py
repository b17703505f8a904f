"""ChunkProcessor: the Delivery outcome of every path, redelivery, fencing, cooperative cancel,
the races a worker can lose, and the last chunk finishing the task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.support.memory import MemoryTaskStore
from vector_tasks.domain.model import ChunkOutcome, ChunkRef, Item, ItemFailure, Task, TaskKind, TaskStatus
from vector_tasks.domain.processing import ChunkProcessor, Delivery, final_status, finish_if_complete

from .conftest import ScriptedAction

UPSERTION = TaskKind.UPSERTION
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DEADLINE = 1e12
CHUNKS: list[list[Item]] = [
    [{"object_id": "a0"}, {"object_id": "bad-a1"}],
    [{"object_id": "b0"}, {"object_id": "b1"}, {"object_id": "b2"}],
]


def raising(error: Exception) -> Callable[[], None]:
    """A `MemoryTaskStore.before` hook that makes that call fail."""

    def hook() -> None:
        raise error

    return hook


def put(store: MemoryTaskStore, status: TaskStatus = TaskStatus.PENDING, attempt: int = 1) -> Task:
    task = Task(
        kind=UPSERTION,
        task_id="t",
        embedding_model_id="m",
        status=status,
        created_at=T0,
        updated_at=T0,
        attempt=attempt,
        item_count=5,
        chunk_count=2,
        fingerprint="fp",
        original_item_count=5,
        original_chunk_count=2,
        dispatched=True,
    )
    assert store.insert_task(task) is None
    store.put_chunks(UPSERTION, "t", CHUNKS)
    return task


def ref(chunk: int, attempt: int = 1) -> ChunkRef:
    return ChunkRef(UPSERTION, "t", attempt, chunk)


def now(store: MemoryTaskStore) -> Task:
    task = store.get_task(UPSERTION, "t", with_failures=True)
    assert task is not None
    return task


def counters(task: Task) -> tuple[int, int, int, int]:
    return task.chunks_done, task.succeeded, task.failed, task.errors


def test_the_first_chunk_starts_the_task_and_the_last_finishes_it(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    task = now(store)
    assert task.status is TaskStatus.RUNNING
    assert counters(task) == (1, 1, 1, 1)
    assert task.failures == [ItemFailure("bad-a1", "bad item")]
    seen_task, seen_items = action.seen[0]
    assert seen_task.status is TaskStatus.RUNNING  # the action sees the task as it now is
    assert seen_items == CHUNKS[0]

    assert processor.process(ref(1), DEADLINE) is Delivery.RECORDED
    task = now(store)
    assert task.status is TaskStatus.DONE
    assert task.error is None
    assert counters(task) == (2, 4, 1, 1)


def test_a_task_whose_every_item_failed_ends_failed(processor: ChunkProcessor, store: MemoryTaskStore) -> None:
    put(store, TaskStatus.RUNNING)
    store.put_chunks(UPSERTION, "t", [[{"object_id": "bad-1"}, {"object_id": "bad-2"}], [{"object_id": "bad-3"}]])
    store.edit(UPSERTION, "t", item_count=3)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    assert now(store).status is TaskStatus.RUNNING
    assert processor.process(ref(1), DEADLINE) is Delivery.RECORDED
    task = now(store)
    assert task.status is TaskStatus.FAILED
    assert task.error == "All 3 items failed; see the failure list for each reason"


def test_a_chunk_redelivered_while_its_task_is_running_is_a_duplicate(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    assert processor.process(ref(0), DEADLINE) is Delivery.DUPLICATE
    assert len(action.seen) == 1  # not applied again
    assert counters(now(store)) == (1, 1, 1, 1)
    assert now(store).status is TaskStatus.RUNNING
    assert processor.abandon(ref(0), "poison") is Delivery.DUPLICATE


def test_a_duplicate_recorded_while_this_one_was_under_way_counts_once(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.RUNNING)
    other = ChunkProcessor(store, {UPSERTION: ScriptedAction()})
    others: list[Delivery] = []
    # The same message delivered twice at once: the other delivery records first.
    action.during = lambda: others.append(other.process(ref(0), DEADLINE))
    assert processor.process(ref(0), DEADLINE) is Delivery.DUPLICATE
    assert others == [Delivery.RECORDED]
    assert counters(now(store)) == (1, 1, 1, 1)


def test_a_chunk_redelivered_after_the_task_finished(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store)
    processor.process(ref(0), DEADLINE)
    processor.process(ref(1), DEADLINE)
    assert now(store).status is TaskStatus.DONE
    assert processor.process(ref(1), DEADLINE) is Delivery.ALREADY_FINISHED
    store.edit(UPSERTION, "t", status=TaskStatus.FAILED)
    assert processor.process(ref(0), DEADLINE) is Delivery.ALREADY_FINISHED
    assert processor.abandon(ref(0), "x") is Delivery.ALREADY_FINISHED
    assert len(action.seen) == 2


def test_a_message_of_an_older_attempt_is_fenced_off(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.RUNNING, attempt=2)
    assert processor.process(ref(0, attempt=1), DEADLINE) is Delivery.STALE_ATTEMPT
    assert processor.abandon(ref(0, attempt=1), "x") is Delivery.STALE_ATTEMPT
    assert processor.process(ref(0, attempt=3), DEADLINE) is Delivery.STALE_ATTEMPT
    assert action.seen == []
    assert counters(now(store)) == (0, 0, 0, 0)
    assert processor.process(ref(0, attempt=2), DEADLINE) is Delivery.RECORDED


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.RUNNING])
def test_a_queued_chunk_of_a_canceled_task_is_skipped(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction, status: TaskStatus
) -> None:
    put(store, status)
    store.edit(UPSERTION, "t", status=TaskStatus.CANCELED)
    assert processor.process(ref(0), DEADLINE) is Delivery.CANCELED
    assert processor.abandon(ref(1), "x") is Delivery.CANCELED
    assert action.seen == []
    assert now(store).status is TaskStatus.CANCELED
    assert counters(now(store)) == (0, 0, 0, 0)


def test_a_chunk_of_a_missing_task(processor: ChunkProcessor, action: ScriptedAction) -> None:
    assert processor.process(ref(0), DEADLINE) is Delivery.TASK_MISSING
    assert processor.abandon(ref(0), "x") is Delivery.TASK_MISSING
    assert action.seen == []


def test_a_worker_that_loses_the_start_to_a_cancel_skips_the_chunk(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.PENDING)
    store.before("transition", lambda: store.edit(UPSERTION, "t", status=TaskStatus.CANCELED))
    assert processor.process(ref(0), DEADLINE) is Delivery.CANCELED
    assert action.seen == []
    assert now(store).status is TaskStatus.CANCELED


def test_a_worker_that_loses_the_start_to_another_worker_goes_on(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.PENDING)
    store.before("transition", lambda: store.edit(UPSERTION, "t", status=TaskStatus.RUNNING))
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    assert len(action.seen) == 1
    assert action.seen[0][0].status is TaskStatus.RUNNING
    assert counters(now(store)) == (1, 1, 1, 1)


def test_a_chunk_under_way_when_the_task_is_canceled_still_counts(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.RUNNING)
    store.edit(UPSERTION, "t", chunk_count=1, item_count=2)
    action.during = lambda: store.edit(UPSERTION, "t", status=TaskStatus.CANCELED)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    task = now(store)
    assert task.status is TaskStatus.CANCELED  # not moved on to done, though every chunk is in
    assert counters(task) == (1, 1, 1, 1)


def test_a_chunk_under_way_when_the_task_is_restarted_is_not_counted(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.RUNNING)
    action.during = lambda: store.edit(UPSERTION, "t", status=TaskStatus.PENDING, attempt=2)
    assert processor.process(ref(0), DEADLINE) is Delivery.DUPLICATE
    task = now(store)
    assert (task.status, task.attempt) == (TaskStatus.PENDING, 2)
    assert counters(task) == (0, 0, 0, 0)


def test_the_last_chunk_of_an_attempt_restarted_meanwhile_does_not_finish_the_new_one(
    processor: ChunkProcessor, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.RUNNING)
    store.edit(UPSERTION, "t", chunk_count=1)

    def restarted_and_counted() -> None:  # attempt 2 is running, its one chunk recorded
        store.edit(UPSERTION, "t", attempt=2, status=TaskStatus.RUNNING, chunks_done=1)

    # The task is running already, so the only transition is the final one.
    store.before("transition", restarted_and_counted)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    task = now(store)
    assert (task.status, task.attempt) == (TaskStatus.RUNNING, 2)


def test_a_restart_between_recording_and_the_final_read_is_left_to_the_new_attempt(
    processor: ChunkProcessor, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.RUNNING)
    store.edit(UPSERTION, "t", chunk_count=1)

    def restarted_and_counted() -> None:
        store.edit(UPSERTION, "t", attempt=2, status=TaskStatus.RUNNING, chunks_done=1)

    # Once this delivery has recorded, the task it reads back is already attempt 2's: the
    # delivery that recorded attempt 2's last chunk finishes that attempt, not this one.
    store.before("record_chunk", lambda: store.before("get_task", restarted_and_counted))
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    task = now(store)
    assert (task.status, task.attempt) == (TaskStatus.RUNNING, 2)


def test_a_model_that_cannot_run_fails_the_task(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.PENDING)
    action.cannot_run = "Unknown embedding_model_id 'm'; it was removed after the task was created"
    assert processor.process(ref(0), DEADLINE) is Delivery.TASK_FAILED
    task = now(store)
    assert task.status is TaskStatus.FAILED
    assert task.error == action.cannot_run
    assert counters(task) == (0, 0, 0, 0)
    assert task.failures == []


def test_abandon_fails_every_item_of_the_chunk_with_the_detail(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.PENDING)
    assert processor.abandon(ref(1), "Could not be processed after 5 deliveries") is Delivery.RECORDED
    assert action.seen == []
    task = now(store)
    assert task.status is TaskStatus.RUNNING
    assert counters(task) == (1, 0, 3, 3)
    assert task.failures == [ItemFailure(f"b{i}", "Could not be processed after 5 deliveries") for i in range(3)]
    assert processor.abandon(ref(0), "gone") is Delivery.RECORDED
    task = now(store)
    assert task.status is TaskStatus.FAILED  # every item ended in error
    assert task.error == "All 5 items failed; see the failure list for each reason"
    assert counters(task) == (2, 0, 5, 5)


def test_final_status_rules() -> None:
    def task(items: int, errors: int) -> Task:
        return Task(UPSERTION, "t", "m", TaskStatus.RUNNING, T0, T0, 1, items, 1, "f", errors=errors)

    assert final_status(task(0, 0)) == (TaskStatus.DONE, None)
    assert final_status(task(2, 1)) == (TaskStatus.DONE, None)
    assert final_status(task(2, 2))[0] is TaskStatus.FAILED
    assert final_status(task(1, 1)) == (TaskStatus.FAILED, "All 1 items failed; see the failure list for each reason")


# -- no task left behind: finishing is idempotent, missing items end the task ----------------


def test_a_redelivery_finishes_a_task_whose_last_chunk_was_recorded_but_not_finished(
    processor: ChunkProcessor, store: MemoryTaskStore
) -> None:
    """The delivery that recorded the last chunk died before the final transition: the next
    delivery of any chunk of the attempt sees every chunk recorded and finishes the task."""
    put(store)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    store.before("transition", raising(ConnectionError("the final transition's answer was lost")))
    with pytest.raises(ConnectionError):
        processor.process(ref(1), DEADLINE)
    stuck = now(store)
    assert (stuck.status, stuck.chunks_done) == (TaskStatus.RUNNING, 2)

    assert processor.process(ref(1), DEADLINE) is Delivery.DUPLICATE
    finished = now(store)
    assert finished.status is TaskStatus.DONE
    assert counters(finished) == (2, 4, 1, 1)


def test_the_dead_letter_path_finishes_a_task_whose_chunks_are_all_recorded(
    processor: ChunkProcessor, store: MemoryTaskStore
) -> None:
    put(store)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    store.before("transition", raising(ConnectionError("the final transition's answer was lost")))
    with pytest.raises(ConnectionError):
        processor.process(ref(1), DEADLINE)
    assert processor.abandon(ref(1), "gave up") is Delivery.DUPLICATE
    assert now(store).status is TaskStatus.DONE


def test_a_duplicate_of_a_chunk_does_not_finish_a_task_with_chunks_still_to_record(
    processor: ChunkProcessor, store: MemoryTaskStore
) -> None:
    put(store)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    assert processor.process(ref(0), DEADLINE) is Delivery.DUPLICATE
    assert now(store).status is TaskStatus.RUNNING
    assert store.calls.count("transition") == 1  # the start only: no final write tried per chunk


@pytest.mark.parametrize(
    ("status", "chunks_done"),
    [(TaskStatus.RUNNING, 1), (TaskStatus.CANCELED, 2), (TaskStatus.DONE, 2), (TaskStatus.PENDING, 0)],
)
def test_finish_if_complete_leaves_a_task_that_is_not_running_with_every_chunk_in(
    store: MemoryTaskStore, status: TaskStatus, chunks_done: int
) -> None:
    put(store)
    store.edit(UPSERTION, "t", status=status, chunks_done=chunks_done)
    assert finish_if_complete(store, now(store)) is False
    assert now(store).status is status
    assert "transition" not in store.calls


def test_finish_if_complete_says_when_it_finished_the_task(store: MemoryTaskStore) -> None:
    put(store)
    store.edit(UPSERTION, "t", status=TaskStatus.RUNNING, chunks_done=2)
    read = now(store)
    assert finish_if_complete(store, read) is True
    assert finish_if_complete(store, read) is False  # the same read again: the write is refused
    assert now(store).status is TaskStatus.DONE


@pytest.mark.parametrize("path", ["process", "abandon"])
def test_a_chunk_whose_items_were_never_stored_fails_the_task_at_once(
    processor: ChunkProcessor, store: MemoryTaskStore, path: str
) -> None:
    task = put(store)
    store.forget_chunks(UPSERTION, "t", task.chunk_source)
    delivered = processor.process(ref(0), DEADLINE) if path == "process" else processor.abandon(ref(0), "gave up")
    assert delivered is Delivery.TASK_FAILED
    failed = now(store)
    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None
    assert "items are not stored (chunk 0 of CHUNK is missing)" in failed.error
    assert "Create the task again" in failed.error


def test_a_delivery_reads_task_result_and_items_once(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, status=TaskStatus.RUNNING)
    store.calls.clear()
    assert processor.process(ref(1), DEADLINE) is Delivery.RECORDED
    assert store.calls == ["read_delivery", "record_chunk", "get_task"]
    assert action.seen[0][1] == CHUNKS[1]


@pytest.mark.parametrize("path", ["process", "abandon"])
def test_a_message_that_does_not_name_the_attempts_source_reads_the_items_from_it(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction, path: str
) -> None:
    """A message sent before messages carried the source (attempt 2 of a `scope=failed`
    restart, whose items are a retry set) names the original chunks: the task says where the
    attempt's items are, and those are the ones applied."""
    put(store, status=TaskStatus.RUNNING, attempt=2)
    retry: list[list[Item]] = [[{"object_id": "retry-0"}], [{"object_id": "retry-1"}]]
    store.put_chunks(UPSERTION, "t", retry, source="RETRY#0002-abc")
    store.edit(UPSERTION, "t", chunk_source="RETRY#0002-abc")
    old_message = ChunkRef(UPSERTION, "t", 2, 0)  # source: the original chunks, by default
    if path == "process":
        assert processor.process(old_message, DEADLINE) is Delivery.RECORDED
        assert action.seen[0][1] == retry[0]
    else:
        assert processor.abandon(old_message, "gave up") is Delivery.RECORDED
        assert [f.object_id for f in now(store).failures or []] == ["retry-0"]
    assert "load_chunk" in store.calls
    # A message that names the source uses the items read with the task.
    store.calls.clear()
    assert processor.process(ChunkRef(UPSERTION, "t", 2, 1, "RETRY#0002-abc"), DEADLINE) is Delivery.RECORDED
    assert "load_chunk" not in store.calls


class RecordingMetrics:
    """The ChunkMetrics port, remembering what it heard."""

    def __init__(self) -> None:
        self.recorded: list[tuple[TaskKind, int, int, float]] = []
        self.given_up: list[TaskKind] = []

    def chunk_recorded(self, kind: TaskKind, outcome: ChunkOutcome, seconds: float) -> None:
        self.recorded.append((kind, outcome.succeeded, len(outcome.failures), seconds))

    def chunk_given_up(self, kind: TaskKind) -> None:
        self.given_up.append(kind)


def test_metrics_hear_each_chunk_recorded_once_with_its_time(store: MemoryTaskStore, action: ScriptedAction) -> None:
    ticks = iter([10.0, 10.25, 20.0, 20.5, 30.0])
    metrics = RecordingMetrics()
    processor = ChunkProcessor(store, {UPSERTION: action}, metrics=metrics, monotonic=lambda: next(ticks))
    put(store)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    assert processor.abandon(ref(1), "gave up") is Delivery.RECORDED
    assert processor.process(ref(0), DEADLINE) is Delivery.ALREADY_FINISHED  # a redelivery counts nothing
    # chunk 0: a0 succeeded, bad-a1 failed; chunk 1 given up: its three items failed
    assert metrics.recorded == [(UPSERTION, 1, 1, 0.25), (UPSERTION, 0, 3, 0.5)]
    assert metrics.given_up == [UPSERTION]


def test_chunks_delivered_together_are_applied_in_one_call_and_recorded_each(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store)
    assert processor.process_chunks([ref(0), ref(1)], DEADLINE) == [Delivery.RECORDED, Delivery.RECORDED]
    assert action.calls == 1
    assert [items for _, items in action.seen] == CHUNKS
    task = now(store)
    assert task.status is TaskStatus.DONE
    assert counters(task) == (2, 4, 1, 1)
    assert task.failures == [ItemFailure("bad-a1", "bad item")]


def test_in_a_group_each_chunk_is_admitted_as_if_alone(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store)
    assert processor.process(ref(0), DEADLINE) is Delivery.RECORDED
    # Chunk 0 again (a duplicate) with chunk 1: only chunk 1 is applied, and it finishes the task.
    assert processor.process_chunks([ref(0), ref(1)], DEADLINE) == [Delivery.DUPLICATE, Delivery.RECORDED]
    assert [items for _, items in action.seen] == CHUNKS
    assert now(store).status is TaskStatus.DONE
    assert counters(now(store)) == (2, 4, 1, 1)


def test_a_group_of_a_task_canceled_before_it_applies_nothing(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store, TaskStatus.CANCELED)
    assert processor.process_chunks([ref(0), ref(1)], DEADLINE) == [Delivery.CANCELED, Delivery.CANCELED]
    assert action.calls == 0
    assert counters(now(store)) == (0, 0, 0, 0)


def test_a_group_whose_task_cannot_run_fails_the_task_and_records_nothing(
    store: MemoryTaskStore,
) -> None:
    put(store)
    action = ScriptedAction(cannot_run="model gone")
    processor = ChunkProcessor(store, {UPSERTION: action})
    assert processor.process_chunks([ref(0), ref(1)], DEADLINE) == [Delivery.TASK_FAILED, Delivery.TASK_FAILED]
    task = now(store)
    assert (task.status, task.error) == (TaskStatus.FAILED, "model gone")
    assert counters(task) == (0, 0, 0, 0)


def test_a_group_failing_in_the_index_records_none_of_its_chunks(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store)
    action.during = raising(TimeoutError("the index did not answer"))
    with pytest.raises(TimeoutError):
        processor.process_chunks([ref(0), ref(1)], DEADLINE)
    assert counters(now(store)) == (0, 0, 0, 0)
    # Delivered again, both are applied and counted once.
    assert processor.process_chunks([ref(0), ref(1)], DEADLINE) == [Delivery.RECORDED, Delivery.RECORDED]
    assert counters(now(store)) == (2, 4, 1, 1)


def test_chunks_of_different_tasks_or_attempts_are_not_a_group(processor: ChunkProcessor) -> None:
    with pytest.raises(ValueError, match="one task and attempt"):
        processor.process_chunks([ref(0), ref(1, attempt=2)], DEADLINE)


def test_a_chunk_delivered_twice_in_one_group_is_applied_and_counted_once(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store)
    deliveries = processor.process_chunks([ref(0), ref(1), ref(0), ref(1)], DEADLINE)
    assert deliveries == [Delivery.RECORDED, Delivery.RECORDED, Delivery.DUPLICATE, Delivery.DUPLICATE]
    assert [items for _, items in action.seen] == CHUNKS
    task = now(store)
    assert task.status is TaskStatus.DONE
    assert counters(task) == (2, 4, 1, 1)


def test_a_group_is_read_in_one_call_started_once_and_recorded_in_one_call(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    put(store)
    store.calls.clear()
    assert processor.process_chunks([ref(0), ref(1)], DEADLINE) == [Delivery.RECORDED, Delivery.RECORDED]
    # One read; the task started once (the second chunk sees it running); one record; the
    # final read, and the move to done.
    assert store.calls == ["read_deliveries", "transition", "record_chunks", "get_task", "transition"]
    assert action.seen[0][0].status is TaskStatus.RUNNING
    assert counters(now(store)) == (2, 4, 1, 1)


def test_a_group_whose_chunk_another_delivery_records_meanwhile_counts_it_once(
    processor: ChunkProcessor, store: MemoryTaskStore
) -> None:
    put(store, TaskStatus.RUNNING)
    elsewhere = ChunkProcessor(store, {UPSERTION: ScriptedAction()})
    store.before("record_chunks", lambda: elsewhere.process(ref(1), DEADLINE))
    assert processor.process_chunks([ref(0), ref(1)], DEADLINE) == [Delivery.RECORDED, Delivery.DUPLICATE]
    task = now(store)
    assert task.status is TaskStatus.DONE
    assert counters(task) == (2, 4, 1, 1)
    assert task.failures == [ItemFailure("bad-a1", "bad item")]


def test_a_group_whose_first_chunk_is_not_stored_fails_the_task_and_applies_nothing_after(
    processor: ChunkProcessor, store: MemoryTaskStore, action: ScriptedAction
) -> None:
    """The first chunk fails the task; the second reads again (the group's read is stale) and
    finds it finished."""
    task = put(store, TaskStatus.RUNNING)
    store.forget_chunks(UPSERTION, "t", task.chunk_source, only=0)
    deliveries = processor.process_chunks([ref(0), ref(1)], DEADLINE)
    assert deliveries == [Delivery.TASK_FAILED, Delivery.ALREADY_FINISHED]
    assert action.calls == 0
    assert now(store).status is TaskStatus.FAILED


def test_metrics_hear_each_chunk_of_a_group_with_the_groups_time(
    store: MemoryTaskStore, action: ScriptedAction
) -> None:
    ticks = iter([10.0, 10.5])
    metrics = RecordingMetrics()
    processor = ChunkProcessor(store, {UPSERTION: action}, metrics=metrics, monotonic=lambda: next(ticks))
    put(store)
    assert processor.process_chunks([ref(0), ref(1)], DEADLINE) == [Delivery.RECORDED, Delivery.RECORDED]
    assert metrics.recorded == [(UPSERTION, 1, 1, 0.5), (UPSERTION, 3, 0, 0.5)]


def test_an_empty_group_asks_the_store_nothing(processor: ChunkProcessor, store: MemoryTaskStore) -> None:
    """The worker passes none when its invocation has no time left for any chunk."""
    put(store)
    store.calls.clear()
    assert processor.process_chunks([], DEADLINE) == []
    assert store.calls == []
