"""The worker's side of the lifecycle: one chunk at a time, safe under redelivery.

For every chunk message the processor reads the task, the chunk's result and the chunk in one
request, checks the task first (fencing on `attempt`, cooperative cancel), applies the chunk,
then records the result and the counters in one conditional write, so a chunk delivered twice
is counted once. The delivery that records the last chunk moves the task to its final status.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from vector_tasks.domain.errors import ChunkNotStored, TaskCannotRun
from vector_tasks.domain.model import (
    ChunkOutcome,
    ChunkRef,
    Item,
    ItemFailure,
    Task,
    TaskKind,
    TaskStatus,
    item_object_id,
    utc_now,
    without_internals,
)
from vector_tasks.domain.ports import ChunkMetrics, NoChunkMetrics, TaskStore


class ChunkAction(Protocol):
    def apply(self, task: Task, items: list[Item], deadline: float) -> ChunkOutcome:
        """`deadline` (time.monotonic()) is when the worker must be done with the chunk."""
        ...


class Delivery(enum.StrEnum):
    """What became of one delivery of a chunk message; logged, and asserted on in tests."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # this attempt already recorded the chunk
    STALE_ATTEMPT = "stale_attempt"  # the task was restarted since the message was sent
    CANCELED = "canceled"
    ALREADY_FINISHED = "already_finished"
    TASK_MISSING = "task_missing"
    TASK_FAILED = "task_failed"


def final_status(task: Task) -> tuple[TaskStatus, str | None]:
    """`failed` when every item ended in error, `done` otherwise (README, "API summary")."""
    if task.item_count and task.errors >= task.item_count:
        return TaskStatus.FAILED, f"All {task.item_count} items failed; see the failure list for each reason"
    return TaskStatus.DONE, None


def items_missing_error(source: str, chunk: int) -> str:
    return (
        f"The task's items are not stored (chunk {chunk} of {source} is missing): the request that made this "
        "attempt failed before storing them, or they expired. Create the task again."
    )


def finish_if_complete(store: TaskStore, task: Task) -> bool:
    """Move a running task whose every chunk of this attempt is recorded to its final status.

    Idempotent and safe to race: the write is conditional on the attempt, `running` and the
    counters, so of several deliveries (or the reconciler) finishing at once one wins and the
    others change nothing. True when this call finished it.
    """
    if task.status is not TaskStatus.RUNNING or not task.all_chunks_recorded:
        return False
    status, error = final_status(task)
    return store.transition(
        task, status, expect=(TaskStatus.RUNNING,), now=utc_now(), error=error, require_all_chunks=True
    )


class ChunkProcessor:
    def __init__(
        self,
        store: TaskStore,
        actions: Mapping[TaskKind, ChunkAction],
        metrics: ChunkMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`metrics` hears of every chunk recorded and given up; `monotonic` times them."""
        self._store = store
        self._actions = actions
        self._metrics = metrics or NoChunkMetrics()
        self._monotonic = monotonic

    def _admit(self, ref: ChunkRef) -> tuple[Task, list[Item] | None] | Delivery:
        """The task and the chunk's items as read with it, if this delivery should be worked on,
        else why not. Task, recorded check and items are one read (`TaskStore.read_delivery`).

        A chunk this attempt already recorded is a duplicate; the delivery that recorded it may
        have died before finishing the task, so this one finishes it if every chunk is in.
        """
        read = self._store.read_delivery(ref)
        task = read.task
        if task is None:
            return Delivery.TASK_MISSING
        if task.attempt != ref.attempt:
            return Delivery.STALE_ATTEMPT
        if task.status is TaskStatus.CANCELED:
            return Delivery.CANCELED
        if task.status in (TaskStatus.DONE, TaskStatus.FAILED):
            return Delivery.ALREADY_FINISHED
        if task.status is TaskStatus.PENDING:
            if not self._store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=utc_now()):
                return self._admit(ref)  # canceled or started by another worker meanwhile: look again
            task.status = TaskStatus.RUNNING
        if read.recorded:
            finish_if_complete(self._store, task)
            return Delivery.DUPLICATE
        return task, read.items

    def _items(self, ref: ChunkRef, task: Task, read: list[Item] | None) -> list[Item] | None:
        """The chunk's items; None when they are not stored, after failing the task (no delivery
        of this attempt can do anything, so waiting for redeliveries would only delay it).

        The items read with the task serve when the message named the task's chunk source; a
        message that did not (sent before messages carried it) has them read from that source.
        """
        if read is not None and ref.source == task.chunk_source:
            return read
        try:
            return self._store.load_chunk(ref, task.chunk_source)
        except ChunkNotStored:
            self._fail(task, items_missing_error(task.chunk_source, ref.chunk))
            return None

    def _fail(self, task: Task, error: str) -> None:
        """End the task failed with `error`, which may quote a provider (ARNs are left out)."""
        self._store.transition(
            task,
            TaskStatus.FAILED,
            expect=(TaskStatus.PENDING, TaskStatus.RUNNING),
            now=utc_now(),
            error=without_internals(error),
        )

    def process(self, ref: ChunkRef, deadline: float) -> Delivery:
        started = self._monotonic()
        admitted = self._admit(ref)
        if isinstance(admitted, Delivery):
            return admitted
        task, read = admitted
        items = self._items(ref, task, read)
        if items is None:
            return Delivery.TASK_FAILED
        try:
            outcome = self._actions[ref.kind].apply(task, items, deadline)
        except TaskCannotRun as exc:
            self._fail(task, exc.message)
            return Delivery.TASK_FAILED
        return self._record(ref, outcome, started)

    def abandon(self, ref: ChunkRef, detail: str) -> Delivery:
        """Give up on a chunk that could not be processed: each of its items fails with `detail`."""
        started = self._monotonic()
        admitted = self._admit(ref)
        if isinstance(admitted, Delivery):
            return admitted
        items = self._items(ref, *admitted)
        if items is None:
            return Delivery.TASK_FAILED
        outcome = ChunkOutcome(succeeded=0, failures=tuple(ItemFailure(item_object_id(i), detail) for i in items))
        delivery = self._record(ref, outcome, started)
        if delivery is Delivery.RECORDED:
            self._metrics.chunk_given_up(ref.kind)
        return delivery

    def _record(self, ref: ChunkRef, outcome: ChunkOutcome, started: float) -> Delivery:
        recorded = self._store.record_chunk(ref, outcome, utc_now())
        if recorded:
            self._metrics.chunk_recorded(ref.kind, outcome, self._monotonic() - started)
        # Finish even when another delivery recorded the chunk first: it may have died before.
        task = self._store.get_task(ref.kind, ref.task_id)
        if task is not None and task.attempt == ref.attempt:
            finish_if_complete(self._store, task)
        return Delivery.RECORDED if recorded else Delivery.DUPLICATE
