"""The reconciler: finishes tasks whose chunks are all recorded, resends the unrecorded chunks of
stalled tasks, fails tasks whose items were never stored; within budgets, idempotent, safe to
run beside workers and other runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.memory import MemoryTaskStore, MemoryWorkQueue
from vector_tasks.domain.model import ChunkOutcome, ChunkRef, Item, Task, TaskKind, TaskStatus
from vector_tasks.domain.reconcile import Reconciler

UPSERTION, DELETION = TaskKind.UPSERTION, TaskKind.DELETION
T0 = datetime(2026, 3, 1, tzinfo=UTC)
STALL = timedelta(minutes=15)
NO_DEADLINE = float("inf")
CHUNKS: list[list[Item]] = [[{"object_id": "a"}], [{"object_id": "b"}], [{"object_id": "c"}]]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reconciler(store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock) -> Reconciler:
    return Reconciler(store, queue, STALL, clock=clock)


def put(
    store: MemoryTaskStore,
    task_id: str,
    status: TaskStatus,
    *,
    kind: TaskKind = UPSERTION,
    at: datetime = T0,
    chunks: bool = True,
    dispatched: bool = True,
) -> Task:
    task = Task(
        kind=kind,
        task_id=task_id,
        embedding_model_id="m",
        status=status,
        created_at=at,
        updated_at=at,
        attempt=1,
        item_count=3,
        chunk_count=3,
        fingerprint="fp",
        original_item_count=3,
        original_chunk_count=3,
        dispatched=dispatched,
    )
    assert store.insert_task(task) is None
    if chunks:
        store.put_chunks(kind, task_id, CHUNKS)
    return task


def record(store: MemoryTaskStore, task_id: str, chunk: int, kind: TaskKind = UPSERTION) -> None:
    assert store.record_chunk(ChunkRef(kind, task_id, 1, chunk), ChunkOutcome(succeeded=1), now=T0)


def stored(store: MemoryTaskStore, task_id: str, kind: TaskKind = UPSERTION) -> Task:
    task = store.get_task(kind, task_id)
    assert task is not None
    return task


def test_a_running_task_with_every_chunk_recorded_is_finished_at_once(
    reconciler: Reconciler, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    """The delivery that recorded the last chunk died before the final transition."""
    put(store, "t", TaskStatus.RUNNING)
    for chunk in range(3):
        record(store, "t", chunk)
    report = reconciler.run(NO_DEADLINE)
    assert (report.examined, report.finished, report.redispatched_tasks) == (1, 1, 0)
    assert stored(store, "t").status is TaskStatus.DONE
    assert queue.sent == []


def test_a_task_that_made_progress_within_the_stall_period_is_left_alone(
    reconciler: Reconciler, store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    put(store, "t", TaskStatus.RUNNING)
    clock.advance(STALL - timedelta(seconds=1))
    report = reconciler.run(NO_DEADLINE)
    assert (report.examined, report.repaired) == (1, 0)
    assert queue.sent == []


def test_a_stalled_task_gets_its_unrecorded_chunks_sent_again(
    reconciler: Reconciler, store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    """A restart whose sends failed, a purged queue, a message lost: whatever the cause."""
    put(store, "t", TaskStatus.RUNNING)
    record(store, "t", 1)
    clock.advance(STALL)
    report = reconciler.run(NO_DEADLINE)
    assert (report.redispatched_tasks, report.redispatched_chunks) == (1, 2)
    assert queue.drain() == [ChunkRef(UPSERTION, "t", 1, 0), ChunkRef(UPSERTION, "t", 1, 2)]
    assert stored(store, "t").reconciled_at == clock.now


def test_a_create_that_died_while_sending_is_dispatched_by_the_reconciler(
    reconciler: Reconciler, store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    put(store, "t", TaskStatus.PENDING, dispatched=False)
    clock.advance(STALL)
    reconciler.run(NO_DEADLINE)
    assert queue.drain() == [ChunkRef(UPSERTION, "t", 1, n) for n in range(3)]
    assert stored(store, "t").dispatched is True  # a late retry of the create sends nothing more


def test_a_resend_waits_another_stall_period_before_the_next(
    reconciler: Reconciler, store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    put(store, "t", TaskStatus.PENDING)
    clock.advance(STALL)
    reconciler.run(NO_DEADLINE)
    assert len(queue.drain()) == 3
    clock.advance(STALL - timedelta(seconds=1))
    assert reconciler.run(NO_DEADLINE).redispatched_tasks == 0
    assert queue.drain() == []
    clock.advance(timedelta(seconds=1))
    assert reconciler.run(NO_DEADLINE).redispatched_tasks == 1
    assert len(queue.drain()) == 3


def test_a_resend_whose_send_failed_is_sent_by_a_later_run(
    reconciler: Reconciler, store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    put(store, "t", TaskStatus.PENDING)
    clock.advance(STALL)
    queue.fail_next = ConnectionError("SQS unreachable")
    with pytest.raises(ConnectionError):
        reconciler.run(NO_DEADLINE)
    clock.advance(STALL)
    assert reconciler.run(NO_DEADLINE).redispatched_chunks == 3
    assert len(queue.drain()) == 3


def test_a_stalled_task_whose_items_were_never_stored_fails_with_the_reason(
    reconciler: Reconciler, store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    """A create that died between storing the task and storing its items, never retried."""
    put(store, "t", TaskStatus.PENDING, chunks=False, dispatched=False)
    clock.advance(STALL)
    report = reconciler.run(NO_DEADLINE)
    assert report.failed_items_missing == 1
    task = stored(store, "t")
    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert "items are not stored (chunk 0 of CHUNK is missing)" in task.error
    assert queue.sent == []


def test_two_runs_at_once_send_a_stalled_task_once(
    store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    put(store, "t", TaskStatus.PENDING)
    clock.advance(STALL)
    first, second = Reconciler(store, queue, STALL, clock=clock), Reconciler(store, queue, STALL, clock=clock)
    store.before("mark_reconciled", lambda: second.run(NO_DEADLINE))
    assert first.run(NO_DEADLINE).redispatched_tasks == 0  # the other run claimed it first
    assert len(queue.drain()) == 3


def test_a_task_that_moved_on_is_not_resent(store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock) -> None:
    """Read as stalled, then canceled (or restarted) before the claim: the claim is refused."""
    put(store, "t", TaskStatus.RUNNING)
    clock.advance(STALL)
    store.before("mark_reconciled", lambda: store.edit(UPSERTION, "t", status=TaskStatus.CANCELED))
    assert Reconciler(store, queue, STALL, clock=clock).run(NO_DEADLINE).redispatched_tasks == 0
    assert queue.sent == []


def test_both_kinds_and_both_unfinished_statuses_are_read_and_nothing_else(
    reconciler: Reconciler, store: MemoryTaskStore, clock: Clock
) -> None:
    put(store, "p", TaskStatus.PENDING)
    put(store, "r", TaskStatus.RUNNING)
    put(store, "d", TaskStatus.PENDING, kind=DELETION)
    for status in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED):
        put(store, f"final-{status.value}", status)
    assert reconciler.run(NO_DEADLINE).examined == 3


def test_each_run_reads_a_bounded_page_and_the_next_goes_on_from_there(
    store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    for n in range(5):
        put(store, f"t{n}", TaskStatus.RUNNING, at=T0 + timedelta(seconds=n))
    bounded = Reconciler(store, queue, STALL, per_partition=2, clock=clock)
    clock.advance(STALL + timedelta(minutes=1))
    resent: list[str] = []
    for _ in range(3):
        bounded.run(NO_DEADLINE)
        resent.extend(dict.fromkeys(r.task_id for r in queue.drain()))
    assert resent == ["t0", "t1", "t2", "t3", "t4"]  # oldest first, then wrapping round
    clock.advance(STALL)
    bounded.run(NO_DEADLINE)
    assert list(dict.fromkeys(r.task_id for r in queue.drain())) == ["t0", "t1"]


def test_a_run_stops_at_its_repair_budget_and_the_next_goes_on(
    store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    for n in range(3):
        put(store, f"t{n}", TaskStatus.PENDING, at=T0 + timedelta(seconds=n))
    bounded = Reconciler(store, queue, STALL, max_repairs=2, clock=clock)
    clock.advance(STALL + timedelta(minutes=1))
    report = bounded.run(NO_DEADLINE)
    assert (report.redispatched_tasks, report.out_of_budget) == (2, True)
    report = bounded.run(NO_DEADLINE)
    assert (report.redispatched_tasks, report.out_of_budget) == (1, False)
    assert sorted(dict.fromkeys(r.task_id for r in queue.drain())) == ["t0", "t1", "t2"]


def test_a_run_past_its_deadline_stops_before_the_next_task(
    reconciler: Reconciler, store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    put(store, "t", TaskStatus.PENDING)
    clock.advance(STALL)
    report = reconciler.run(deadline=0.0)
    assert (report.examined, report.out_of_budget) == (0, True)
    assert queue.sent == []
    assert reconciler.run(NO_DEADLINE).redispatched_tasks == 1


def test_a_run_stops_at_its_deadline_exactly(store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock) -> None:
    put(store, "t", TaskStatus.PENDING)
    clock.advance(STALL)
    at_deadline = Reconciler(store, queue, STALL, clock=clock, monotonic=lambda: 100.0)
    assert at_deadline.run(deadline=100.0).examined == 0
    assert at_deadline.run(deadline=100.5).redispatched_tasks == 1


def test_every_kind_of_repair_counts_against_the_budget(
    store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    put(store, "finish", TaskStatus.RUNNING)
    for chunk in range(3):
        record(store, "finish", chunk)
    put(store, "missing", TaskStatus.RUNNING, chunks=False, at=T0 + timedelta(seconds=1))
    put(store, "resend", TaskStatus.RUNNING, at=T0 + timedelta(seconds=2))
    clock.advance(STALL + timedelta(minutes=1))
    report = Reconciler(store, queue, STALL, max_repairs=2, clock=clock).run(NO_DEADLINE)
    assert (report.finished, report.failed_items_missing, report.redispatched_tasks) == (1, 1, 0)
    assert report.out_of_budget is True


def test_the_default_budget_is_100_repairs_a_run(store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock) -> None:
    """The README's figure."""
    for n in range(101):
        put(store, f"t{n:03d}", TaskStatus.RUNNING, at=T0 + timedelta(seconds=n))
        for chunk in range(3):
            record(store, f"t{n:03d}", chunk)
    report = Reconciler(store, queue, STALL, clock=clock).run(NO_DEADLINE)
    assert (report.finished, report.out_of_budget) == (100, True)


def test_the_default_budget_is_500_tasks_of_each_kind_and_status_a_run(
    store: MemoryTaskStore, queue: MemoryWorkQueue, clock: Clock
) -> None:
    """The README's figure: the 501st waits for the next run."""
    for n in range(501):
        put(store, f"t{n:03d}", TaskStatus.RUNNING, at=T0 + timedelta(seconds=n))
    reconciler = Reconciler(store, queue, STALL, clock=clock)
    assert reconciler.run(NO_DEADLINE).examined == 500
    assert reconciler.run(NO_DEADLINE).examined == 1
