"""The worker's side of the lifecycle: chunk by chunk, safe under redelivery.

For every chunk message the processor reads the task, the chunk's result and the chunk in one
request, checks the task first (fencing on `attempt`, cooperative cancel), applies the chunk,
then records the result and the counters in one conditional write, so a chunk delivered twice
is counted once. The delivery that records the last chunk moves the task to its final status.
Chunks of one task and attempt delivered together are read in one request, applied in one
write to the index (a larger `_bulk`) and recorded in one transaction: each is still admitted
as if alone, and recorded once (a group whose transaction finds one recorded already records
each on its own).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from vector_tasks.domain.errors import ChunkNotStored, TaskCannotRun
from vector_tasks.domain.model import (
    ChunkDelivery,
    ChunkOutcome,
    ChunkRef,
    Item,
    ItemFailure,
    Task,
    TaskKind,
    TaskStatus,
    invalid_line_detail,
    item_object_id,
    utc_now,
    without_internals,
)
from vector_tasks.domain.ports import ChunkMetrics, NoChunkMetrics, TaskStore


class ChunkAction(Protocol):
    def apply(self, task: Task, chunks: Sequence[list[Item]], deadline: float) -> list[ChunkOutcome]:
        """Apply chunks of one attempt of `task` together (one write to the index), each
        chunk's outcome in order. `deadline` (time.monotonic()) is when the worker must be done."""
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


def fail_task(store: TaskStore, task: Task, error: str) -> None:
    """End a pending or running task of `task.attempt` failed with `error`, which may quote a
    provider or AWS (ARNs and account ids are left out)."""
    store.transition(
        task,
        TaskStatus.FAILED,
        expect=(TaskStatus.PENDING, TaskStatus.RUNNING),
        now=utc_now(),
        error=without_internals(error),
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

    def _admit(self, ref: ChunkRef, read: ChunkDelivery | None = None) -> tuple[Task, list[Item] | None] | Delivery:
        """The task and the chunk's items as read with it, if this delivery should be worked on,
        else why not. Task, recorded check and items are one read (`TaskStore.read_delivery`),
        or `read`, made with the other chunks of its group.

        A chunk this attempt already recorded is a duplicate; the delivery that recorded it may
        have died before finishing the task, so this one finishes it if every chunk is in.
        """
        if read is None:
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
        fail_task(self._store, task, error)

    def process(self, ref: ChunkRef, deadline: float) -> Delivery:
        (delivery,) = self.process_chunks([ref], deadline)
        return delivery

    def process_chunks(self, refs: Sequence[ChunkRef], deadline: float) -> list[Delivery]:
        """Deliveries of chunks of one task and attempt, applied together: read together, each
        is admitted (fencing, cancel, duplicates) as if alone, the admitted ones are written to
        the index in one action, then recorded together, each once. What a delivery is, per
        chunk."""
        if len({(ref.kind, ref.task_id, ref.attempt) for ref in refs}) > 1:
            raise ValueError("process_chunks takes the chunks of one task and attempt")
        # A message delivered twice in one batch (SQS is at least once) is handled once.
        first_of: dict[int, int] = {}
        for n, ref in enumerate(refs):
            first_of.setdefault(ref.chunk, n)
        started = self._monotonic()
        deliveries: dict[int, Delivery] = {}
        admitted: list[tuple[int, ChunkRef, list[Item]]] = []
        task: Task | None = None
        firsts = [(n, ref) for n, ref in enumerate(refs) if first_of[ref.chunk] == n]
        stale = False  # once the task failed, what the group read of it is: the rest read again
        for (n, ref), read in zip(firsts, self._read([ref for _, ref in firsts]), strict=True):
            if task is not None and read.task is not None:
                # The group's task as the chunks before this one left it (started, say).
                read = ChunkDelivery(task, read.recorded, read.items)
            admission = self._admit(ref, None if stale else read)
            if isinstance(admission, Delivery):
                deliveries[n] = admission
                continue
            task, from_read = admission
            items = self._items(ref, task, from_read)
            if items is None:
                deliveries[n] = Delivery.TASK_FAILED
                stale = True
                continue
            admitted.append((n, ref, items))
        if admitted and task is not None:
            try:
                outcomes = self._apply(task, [items for _, _, items in admitted], deadline)
            except TaskCannotRun as exc:
                self._fail(task, exc.message)
                deliveries.update({n: Delivery.TASK_FAILED for n, _, _ in admitted})
            else:
                recorded = self._record_group([ref for _, ref, _ in admitted], outcomes, started)
                deliveries.update({n: delivery for (n, _, _), delivery in zip(admitted, recorded, strict=True)})
                self._finish(refs[0])
        again = {Delivery.RECORDED: Delivery.DUPLICATE}
        for n, ref in enumerate(refs):
            if n not in deliveries:
                first = deliveries[first_of[ref.chunk]]
                deliveries[n] = again.get(first, first)
        return [deliveries[n] for n in range(len(refs))]

    def _apply(self, task: Task, chunks: list[list[Item]], deadline: float) -> list[ChunkOutcome]:
        """The action's outcomes, with the entries that stand for invalid lines of an import
        (`invalid_line`) failed as they say instead of being sent."""
        invalid: list[list[ItemFailure]] = []
        valid: list[list[Item]] = []
        for items in chunks:
            details = [(item, invalid_line_detail(item)) for item in items]
            invalid.append([ItemFailure(item_object_id(i), d) for i, d in details if d is not None])
            valid.append([i for i, d in details if d is None])
        if any(valid):
            outcomes = self._actions[task.kind].apply(task, valid, deadline)
        else:
            outcomes = [ChunkOutcome(succeeded=0) for _ in chunks]
        return [
            ChunkOutcome(o.succeeded, o.failures + tuple(bad), o.superseded) if bad else o
            for o, bad in zip(outcomes, invalid, strict=True)
        ]

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
        delivery = self._record_only(ref, outcome, started)
        self._finish(ref)
        return delivery

    def _read(self, refs: list[ChunkRef]) -> list[ChunkDelivery]:
        """A group of one is read as one chunk; a larger one in one call (TaskStore.read_deliveries)."""
        if len(refs) <= 1:
            return [self._store.read_delivery(ref) for ref in refs]
        return self._store.read_deliveries(refs)

    def _record_group(self, refs: list[ChunkRef], outcomes: list[ChunkOutcome], started: float) -> list[Delivery]:
        """A group of one is recorded as one chunk; a larger one in one call (TaskStore.record_chunks)."""
        if len(refs) == 1:
            return [self._record_only(refs[0], outcomes[0], started)]
        recorded = self._store.record_chunks(refs, outcomes, utc_now())
        seconds = self._monotonic() - started
        for ref, outcome, done in zip(refs, outcomes, recorded, strict=True):
            if done:
                self._metrics.chunk_recorded(ref.kind, outcome, seconds)
        return [Delivery.RECORDED if done else Delivery.DUPLICATE for done in recorded]

    def _record_only(self, ref: ChunkRef, outcome: ChunkOutcome, started: float) -> Delivery:
        recorded = self._store.record_chunk(ref, outcome, utc_now())
        if recorded:
            self._metrics.chunk_recorded(ref.kind, outcome, self._monotonic() - started)
        return Delivery.RECORDED if recorded else Delivery.DUPLICATE

    def _finish(self, ref: ChunkRef) -> None:
        """Finish the task if every chunk is in, even when another delivery recorded this one
        first: it may have died before. One read after a group's chunks are recorded."""
        task = self._store.get_task(ref.kind, ref.task_id)
        if task is not None and task.attempt == ref.attempt:
            finish_if_complete(self._store, task)
