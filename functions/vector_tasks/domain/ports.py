"""What the domain needs from storage, the queue and the vector index (adapters/ implements)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from vector_tasks.domain.model import (
    ChunkDelivery,
    ChunkOutcome,
    ChunkRef,
    IndexWrite,
    Item,
    RestartPlan,
    Task,
    TaskKind,
    TaskPage,
    TaskStatus,
    UnfinishedPage,
)
from vector_tasks.domain.registry import EmbeddingModelSpec
from vector_tasks.domain.sources import SourceObject, StepRead
from vector_tasks.domain.vectorize import VectorDocument


class TaskStore(Protocol):
    def next_write_version(self, embedding_model_id: str) -> int:
        """A version greater than every one given before for this model (an atomic counter)."""
        ...

    def insert_task(self, task: Task) -> Task | None: ...
    def get_task(
        self,
        kind: TaskKind,
        task_id: str,
        with_failures: bool = False,
        failures_offset: int = ...,
        failures_limit: int = ...,
    ) -> Task | None: ...
    def list_tasks(self, kind: TaskKind, status: TaskStatus | None, offset: int, limit: int) -> TaskPage: ...
    def mark_dispatched(self, kind: TaskKind, task_id: str) -> None: ...
    def transition(
        self,
        task: Task,
        to: TaskStatus,
        *,
        expect: tuple[TaskStatus, ...],
        now: datetime,
        error: str | None = None,
        require_all_chunks: bool = False,
    ) -> bool: ...
    def put_chunks(self, kind: TaskKind, task_id: str, chunks: Sequence[list[Item]], source: str = ...) -> None: ...
    def load_chunk(self, ref: ChunkRef, source: str) -> list[Item]:
        """The chunk's items; ChunkNotStored when they are not stored."""
        ...

    def items_not_succeeded(self, task: Task) -> list[Item]:
        """The items of the task's current attempt that did not succeed; ChunkNotStored when a
        chunk of that attempt is no longer stored (it expired)."""
        ...

    def renew_chunks(self, task: Task, source: str, chunk_count: int, now: datetime) -> None:
        """Restart the expiry of chunks 0..chunk_count-1 of `source` from `now`, all or none;
        ChunkNotStored when one of them is no longer stored (it expired)."""
        ...

    def read_delivery(self, ref: ChunkRef) -> ChunkDelivery:
        """The task, whether `ref.attempt` recorded the chunk, and the chunk's items under
        `ref.source` (None when not stored there), in one read."""
        ...

    def read_deliveries(self, refs: Sequence[ChunkRef]) -> list[ChunkDelivery]:
        """`read_delivery` of each of chunks of one task, in as few reads as the store allows."""
        ...

    def record_chunk(self, ref: ChunkRef, outcome: ChunkOutcome, now: datetime) -> bool:
        """Record a chunk's result with the task's counters, once per attempt: False when this
        attempt recorded it already, or the task no longer counts this attempt's work."""
        ...

    def record_chunks(self, refs: Sequence[ChunkRef], outcomes: Sequence[ChunkOutcome], now: datetime) -> list[bool]:
        """`record_chunk` of each of chunks of one task and attempt (each chunk once), each
        answer as record_chunk would give it, in as few writes as the store allows."""
        ...

    # -- imports -----------------------------------------------------------------------------
    def save_source_objects(
        self, task: Task, objects: list[SourceObject], at: str, next_position: str, by: str
    ) -> bool:
        """Store an import's listed objects and move its read position from `at` to
        `next_position` (written by step `by`), if the task is still at `at` in its attempt and
        unfinished; else False."""
        ...

    def source_objects(self, task: Task) -> list[SourceObject]: ...
    def append_read(self, task: Task, read: StepRead, by: str) -> bool:
        """Store `read.chunks` as the task's chunks from number `read.step.chunk` on and, if the
        task is still at `read.step.position` in its attempt and unfinished, add them to its
        counts and move its read position on (`read_from` := that position, `read_by` := `by`,
        the step whose invocation read them); else False."""
        ...

    # -- the reconciler's view -------------------------------------------------------------
    def unfinished_tasks(self, kind: TaskKind, status: TaskStatus, after: str | None, limit: int) -> UnfinishedPage:
        """At most `limit` tasks in `status` (pending or running), oldest first, after `after`."""
        ...

    def reconcile_cursor(self, kind: TaskKind, status: TaskStatus) -> str | None: ...
    def save_reconcile_cursor(self, kind: TaskKind, status: TaskStatus, cursor: str | None) -> None: ...
    def stored_chunks(self, task: Task) -> set[int]:
        """The numbers of the chunks of the task's current source that are stored."""
        ...

    def recorded_chunks(self, task: Task) -> set[int]:
        """The numbers of the chunks the task's current attempt has recorded."""
        ...

    def mark_reconciled(self, task: Task, now: datetime) -> bool:
        """Claim a resend of `task`'s attempt: set `reconciled_at` (and `dispatched`) if the task
        is still pending or running in that attempt and no one claimed one since it was read."""
        ...


class ChunkMetrics(Protocol):
    """What the worker's side reports about the chunks it records (published as metrics)."""

    def chunk_recorded(self, kind: TaskKind, outcome: ChunkOutcome, seconds: float) -> None:
        """A chunk's outcome was recorded (once per chunk and attempt), `seconds` after its
        delivery was taken up."""
        ...

    def chunk_given_up(self, kind: TaskKind) -> None:
        """A chunk's items were failed after its message exhausted its deliveries."""
        ...


class NoChunkMetrics:
    def chunk_recorded(self, kind: TaskKind, outcome: ChunkOutcome, seconds: float) -> None:
        pass

    def chunk_given_up(self, kind: TaskKind) -> None:
        pass


class TransitionRunner(Protocol):
    """Runs the conditional lifecycle transitions (Step Functions on AWS and locally)."""

    def cancel(self, task: Task, now: datetime) -> bool:
        """Move `task` (of its attempt) to canceled; False if its status no longer allows it."""
        ...

    def restart(self, task: Task, plan: RestartPlan, now: datetime) -> bool:
        """Move `task` to pending as `plan.next_attempt` and queue its chunks; False if refused."""
        ...


class WorkQueue(Protocol):
    def send(self, refs: Iterable[ChunkRef]) -> None: ...


class VectorIndex(Protocol):
    """`deadline` (time.monotonic()) bounds every request and retry pause. `version` is the
    attempt's write version: a write older than what the index holds for an object changes
    nothing and is counted superseded."""

    def upsert(
        self, spec: EmbeddingModelSpec, documents: list[VectorDocument], task_id: str, version: int, deadline: float
    ) -> IndexWrite: ...
    def delete(self, spec: EmbeddingModelSpec, object_ids: list[str], version: int, deadline: float) -> IndexWrite: ...
