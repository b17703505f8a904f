"""In-memory twins of the domain's ports: a TaskStore, a WorkQueue and a TransitionRunner.

`MemoryTaskStore` keeps the semantics of `DynamoTaskStore` (every status change conditional on
attempt and status, a chunk's result recorded once per attempt together with the counters,
failures paged in chunk order with capped details), and `tests/contract` runs the same suite
against both, so the two cannot drift. `MemoryTransitions` applies the conditional writes the
state machines (statemachines/*.asl.json) apply. Every store call copies what goes in and
comes out, as a round trip through DynamoDB does.

Races are made deterministic with `MemoryTaskStore.before(method, hook)`: the hook runs once,
at the start of the next call of that method, as if another process had acted just then.
"""

from __future__ import annotations

import copy
import gzip as gzip_module
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from vector_tasks.domain.errors import ChunkNotStored
from vector_tasks.domain.limits import FAILURES_DEFAULT_LIMIT
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    WRITE_VERSION_BASE,
    ChunkDelivery,
    ChunkOutcome,
    ChunkRef,
    Item,
    ItemFailure,
    RestartPlan,
    Task,
    TaskKind,
    TaskPage,
    TaskStatus,
    UnfinishedPage,
    cap_failure_detail,
    check_record_group,
    item_object_id,
)
from vector_tasks.domain.sources import FIRST_POSITION, ImportStep, ObjectRead, SourceObject, SourceUnreadable, StepRead

TaskKey = tuple[TaskKind, str]


@dataclass
class _Result:
    attempt: int
    succeeded: int
    failures: list[tuple[str, str]] = field(default_factory=list)


def _stored_copy(task: Task) -> Task:
    """The task as the table holds it: no failure page."""
    return replace(task, failures=None, failures_next_offset=None)


def _round_trip(items: list[Item]) -> list[Item]:
    copied: list[Item] = json.loads(json.dumps(items, ensure_ascii=False))
    return copied


class MemoryTaskStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tasks: dict[TaskKey, Task] = {}
        self._chunks: dict[tuple[TaskKind, str, str], dict[int, list[Item]]] = {}
        self._results: dict[TaskKey, dict[int, _Result]] = {}
        self._cursors: dict[tuple[TaskKind, TaskStatus], str | None] = {}
        self._versions: dict[str, int] = {}
        self._sources: dict[TaskKey, list[SourceObject]] = {}
        self._hooks: dict[str, list[Callable[[], None]]] = {}
        self.calls: list[str] = []
        # How many times a failure page was read (a query of every chunk result on DynamoDB).
        self.failure_reads = 0

    # -- test controls ---------------------------------------------------------------------

    def before(self, method: str, hook: Callable[[], None]) -> None:
        """Run `hook` once, at the start of the next call of `method` (another process acting)."""
        self._hooks.setdefault(method, []).append(hook)

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        hooks = self._hooks.pop(method, [])
        for hook in hooks:
            hook()

    def edit(self, kind: TaskKind, task_id: str, **fields: Any) -> None:
        """Change stored fields directly (what another writer of the task item would do)."""
        with self._lock:
            key = (kind, task_id)
            self._tasks[key] = replace(self._tasks[key], **fields)

    def forget_chunks(self, kind: TaskKind, task_id: str, source: str, only: int | None = None) -> None:
        """Lose a task's stored chunks (a create that died before storing them, an expiry), or
        only chunk `only`."""
        with self._lock:
            if only is None:
                self._chunks.pop((kind, task_id, source), None)
            else:
                self._chunks.get((kind, task_id, source), {}).pop(only, None)

    # -- tasks -----------------------------------------------------------------------------

    def next_write_version(self, embedding_model_id: str) -> int:
        self._enter("next_write_version")
        with self._lock:
            self._versions[embedding_model_id] = self._versions.get(embedding_model_id, WRITE_VERSION_BASE) + 1
            return self._versions[embedding_model_id]

    def insert_task(self, task: Task) -> Task | None:
        self._enter("insert_task")
        with self._lock:
            key = (task.kind, task.task_id)
            if key in self._tasks:
                return copy.deepcopy(self._tasks[key])
            self._tasks[key] = _stored_copy(copy.deepcopy(task))
            return None

    def get_task(
        self,
        kind: TaskKind,
        task_id: str,
        with_failures: bool = False,
        failures_offset: int = 0,
        failures_limit: int = FAILURES_DEFAULT_LIMIT,
    ) -> Task | None:
        self._enter("get_task")
        with self._lock:
            stored = self._tasks.get((kind, task_id))
            if stored is None:
                return None
            task = copy.deepcopy(stored)
            if with_failures:
                self.failure_reads += 1
                task.failures, task.failures_next_offset = self._failure_page(task, failures_offset, failures_limit)
            return task

    def _current_results(self, task: Task) -> list[tuple[int, _Result]]:
        results = self._results.get((task.kind, task.task_id), {})
        return sorted((n, r) for n, r in results.items() if r.attempt == task.attempt)

    def _failure_page(self, task: Task, offset: int, limit: int) -> tuple[list[ItemFailure], int | None]:
        page: list[ItemFailure] = []
        start = 0
        for _, result in self._current_results(task):
            count = len(result.failures)
            if count and start + count > offset and len(page) < limit:
                first = max(offset - start, 0)
                chosen = result.failures[first : first + limit - len(page)]
                page.extend(ItemFailure(oid, cap_failure_detail(detail)) for oid, detail in chosen)
            start += count
        return page, offset + limit if offset + limit < start else None

    def list_tasks(self, kind: TaskKind, status: TaskStatus | None, offset: int, limit: int) -> TaskPage:
        self._enter("list_tasks")
        with self._lock:
            matching = [t for (k, _), t in self._tasks.items() if k is kind and (status is None or t.status is status)]
            # The ByCreated / ByStatus sort key: creation time as stored (ISO text), then the id.
            matching.sort(key=lambda t: f"{t.created_at.isoformat()}#{t.task_id}", reverse=True)
            page = [copy.deepcopy(t) for t in matching[offset : offset + limit]]
            return TaskPage(tasks=page, next_offset=offset + limit if len(matching) > offset + limit else None)

    def mark_dispatched(self, kind: TaskKind, task_id: str) -> None:
        self._enter("mark_dispatched")
        with self._lock:
            if (kind, task_id) not in self._tasks:
                raise LookupError(f"{kind.value} task '{task_id}' is not stored")
            self._tasks[(kind, task_id)].dispatched = True

    def transition(
        self,
        task: Task,
        to: TaskStatus,
        *,
        expect: tuple[TaskStatus, ...],
        now: datetime,
        error: str | None = None,
        require_all_chunks: bool = False,
    ) -> bool:
        self._enter("transition")
        with self._lock:
            stored = self._tasks.get((task.kind, task.task_id))
            if stored is None or stored.attempt != task.attempt or stored.status not in expect:
                return False
            if require_all_chunks and stored.chunks_done != stored.chunk_count:
                return False
            if require_all_chunks and stored.source is not None and not stored.source.complete:
                return False
            stored.status, stored.updated_at, stored.error = to, now, error
            return True

    # -- imports ---------------------------------------------------------------------------

    def _reading(self, task: Task, at: str) -> Task | None:
        """The stored task if it is still at read position `at` in its attempt, unfinished."""
        stored = self._tasks.get((task.kind, task.task_id))
        if stored is None or stored.attempt != task.attempt or stored.source is None:
            return None
        if stored.source.position != at or stored.status not in (TaskStatus.PENDING, TaskStatus.RUNNING):
            return None
        return stored

    def save_source_objects(
        self, task: Task, objects: list[SourceObject], at: str, next_position: str, by: str
    ) -> bool:
        self._enter("save_source_objects")
        with self._lock:
            stored = self._reading(task, at)
            if stored is None or stored.source is None:
                return False
            self._sources[(task.kind, task.task_id)] = list(objects)
            stored.source = replace(
                stored.source, position=next_position, read_from=at, read_by=by, objects_total=len(objects)
            )
            return True

    def source_objects(self, task: Task) -> list[SourceObject]:
        self._enter("source_objects")
        with self._lock:
            objects = self._sources.get((task.kind, task.task_id))
            if objects is None:
                raise ChunkNotStored(f"the objects of {task.kind.value} task '{task.task_id}' are not stored")
            return list(objects)

    def append_read(self, task: Task, read: StepRead, by: str) -> bool:
        self._enter("append_read")
        with self._lock:
            stored_chunks = self._chunks.setdefault((task.kind, task.task_id, ORIGINAL_CHUNKS), {})
            for number, items in enumerate(read.chunks, start=read.step.chunk):
                stored_chunks[number] = _round_trip(items)
            stored = self._reading(task, read.step.position)
            if stored is None or stored.source is None:
                return False
            stored.source = replace(
                stored.source,
                position=read.next_position,
                read_from=read.step.position,
                read_by=by,
                lines_read=stored.source.lines_read + read.lines,
                objects_read=stored.source.objects_read + read.objects_done,
            )
            stored.chunk_count += len(read.chunks)
            stored.original_chunk_count += len(read.chunks)
            stored.item_count += read.items
            stored.original_item_count += read.items
            return True

    # -- chunks ----------------------------------------------------------------------------

    def put_chunks(self, kind: TaskKind, task_id: str, chunks: list[list[Item]], source: str = ORIGINAL_CHUNKS) -> None:
        self._enter("put_chunks")
        with self._lock:
            stored = self._chunks.setdefault((kind, task_id, source), {})
            for number, items in enumerate(chunks):
                stored[number] = _round_trip(items)

    def load_chunk(self, ref: ChunkRef, source: str) -> list[Item]:
        self._enter("load_chunk")
        with self._lock:
            items = self._chunks.get((ref.kind, ref.task_id, source), {}).get(ref.chunk)
            if items is None:
                raise ChunkNotStored(
                    f"chunk {source} {ref.chunk} of {ref.kind.value} task '{ref.task_id}' is not stored"
                )
            return _round_trip(items)

    def items_not_succeeded(self, task: Task) -> list[Item]:
        self._enter("items_not_succeeded")
        with self._lock:
            chunks = self._chunks.get((task.kind, task.task_id, task.chunk_source), {})
            if any(number not in chunks for number in range(task.chunk_count)):
                raise ChunkNotStored(f"chunks of {task.chunk_source} of task '{task.task_id}' are gone")
            recorded = {n: r.failures for n, r in self._current_results(task)}
            retry: list[Item] = []
            for number in sorted(chunks):
                if number >= task.chunk_count:
                    continue
                items = _round_trip(chunks[number])
                if number not in recorded:
                    retry.extend(items)
                    continue
                failed = {oid for oid, _ in recorded[number]}
                retry.extend(i for i in items if item_object_id(i) in failed)
            return retry

    def renew_chunks(self, task: Task, source: str, chunk_count: int, now: datetime) -> None:
        """All there, or ChunkNotStored (this store keeps no expiry: `forget_chunks` is one)."""
        self._enter("renew_chunks")
        with self._lock:
            chunks = self._chunks.get((task.kind, task.task_id, source), {})
            if any(number not in chunks for number in range(chunk_count)):
                raise ChunkNotStored(f"a chunk of {source} of task '{task.task_id}' is gone")

    def read_delivery(self, ref: ChunkRef) -> ChunkDelivery:
        self._enter("read_delivery")
        return self._delivery(ref)

    def _delivery(self, ref: ChunkRef) -> ChunkDelivery:
        with self._lock:
            stored = self._tasks.get((ref.kind, ref.task_id))
            result = self._results.get((ref.kind, ref.task_id), {}).get(ref.chunk)
            items = self._chunks.get((ref.kind, ref.task_id, ref.source), {}).get(ref.chunk)
            return ChunkDelivery(
                task=_stored_copy(copy.deepcopy(stored)) if stored is not None else None,
                recorded=result is not None and result.attempt >= ref.attempt,
                items=_round_trip(items) if items is not None else None,
            )

    def read_deliveries(self, refs: Sequence[ChunkRef]) -> list[ChunkDelivery]:
        """Every chunk's delivery from one view of the store, as DynamoTaskStore's one read."""
        self._enter("read_deliveries")
        if len({(ref.kind, ref.task_id) for ref in refs}) > 1:
            raise ValueError("read_deliveries takes the chunks of one task")
        with self._lock:
            return [self._delivery(ref) for ref in refs]

    def record_chunks(self, refs: Sequence[ChunkRef], outcomes: Sequence[ChunkOutcome], now: datetime) -> list[bool]:
        """All of them, or, when one would not be recorded, each on its own (DynamoTaskStore's
        transaction, and its fallback)."""
        self._enter("record_chunks")
        check_record_group(refs, outcomes)
        with self._lock:
            return [self._record(ref, outcome, now) for ref, outcome in zip(refs, outcomes, strict=True)]

    def record_chunk(self, ref: ChunkRef, outcome: ChunkOutcome, now: datetime) -> bool:
        """The result and the counters together, or neither (DynamoTaskStore's transaction)."""
        self._enter("record_chunk")
        return self._record(ref, outcome, now)

    def _record(self, ref: ChunkRef, outcome: ChunkOutcome, now: datetime) -> bool:
        with self._lock:
            results = self._results.setdefault((ref.kind, ref.task_id), {})
            previous = results.get(ref.chunk)
            if previous is not None and previous.attempt >= ref.attempt:
                return False
            task = self._tasks.get((ref.kind, ref.task_id))
            if task is None or task.attempt != ref.attempt:
                return False
            if task.status not in (TaskStatus.RUNNING, TaskStatus.CANCELED):
                return False
            results[ref.chunk] = _Result(
                ref.attempt, outcome.succeeded, [(f.object_id, cap_failure_detail(f.detail)) for f in outcome.failures]
            )
            task.succeeded += outcome.succeeded
            task.failed += len(outcome.failures)
            task.errors += outcome.errors
            task.superseded += outcome.superseded
            task.chunks_done += 1
            task.updated_at = now
            return True

    # -- the reconciler's view -------------------------------------------------------------

    def unfinished_tasks(self, kind: TaskKind, status: TaskStatus, after: str | None, limit: int) -> UnfinishedPage:
        self._enter("unfinished_tasks")
        with self._lock:
            entries = sorted(
                [
                    (f"{t.created_at.isoformat()}#{t.task_id}", copy.deepcopy(t))
                    for (k, _), t in self._tasks.items()
                    if k is kind and t.status is status
                ],
                key=lambda entry: entry[0],
            )
            entries = [(position, task) for position, task in entries if after is None or position > after]
            return UnfinishedPage(entries=entries[:limit], more=len(entries) > limit)

    def reconcile_cursor(self, kind: TaskKind, status: TaskStatus) -> str | None:
        self._enter("reconcile_cursor")
        return self._cursors.get((kind, status))

    def save_reconcile_cursor(self, kind: TaskKind, status: TaskStatus, cursor: str | None) -> None:
        self._enter("save_reconcile_cursor")
        self._cursors[(kind, status)] = cursor

    def stored_chunks(self, task: Task) -> set[int]:
        self._enter("stored_chunks")
        with self._lock:
            return set(self._chunks.get((task.kind, task.task_id, task.chunk_source), {}))

    def recorded_chunks(self, task: Task) -> set[int]:
        self._enter("recorded_chunks")
        with self._lock:
            return {number for number, _ in self._current_results(task)}

    def mark_reconciled(self, task: Task, now: datetime) -> bool:
        self._enter("mark_reconciled")
        with self._lock:
            stored = self._tasks.get((task.kind, task.task_id))
            if stored is None or stored.attempt != task.attempt:
                return False
            if (
                stored.status not in (TaskStatus.PENDING, TaskStatus.RUNNING)
                or stored.reconciled_at != task.reconciled_at
            ):
                return False
            stored.reconciled_at, stored.dispatched = now, True
            return True


class MemoryObjects:
    """An ObjectStore of objects in memory, plain or gzip by their content, as S3ObjectStore
    reads them; `reads` counts the objects opened (GETs)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.reads = 0

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.objects[(bucket, key)] = data

    def _etag(self, data: bytes) -> str:
        return f'"{hashlib.md5(data).hexdigest()}"'

    def list_objects(self, bucket: str, key_or_prefix: str, limit: int) -> list[SourceObject]:
        exact = self.objects.get((bucket, key_or_prefix))
        if exact is not None and key_or_prefix:
            return [SourceObject(key_or_prefix, self._etag(exact), len(exact))]
        return [
            SourceObject(key, self._etag(data), len(data))
            for (b, key), data in sorted(self.objects.items())
            if b == bucket and key.startswith(key_or_prefix)
        ][: limit + 1]

    def open(self, bucket: str, obj: SourceObject, offset: int, gzip: bool | None) -> MemoryReader:
        self.reads += 1
        data = self.objects.get((bucket, obj.key))
        if data is None:
            raise SourceUnreadable(f"s3://{bucket}/{obj.key} does not exist")
        if self._etag(data) != obj.etag:
            raise SourceUnreadable(f"s3://{bucket}/{obj.key} changed after its import started")
        compressed = data[:2] == b"\x1f\x8b"
        return MemoryReader(gzip_module.decompress(data) if compressed else data, offset, compressed)


@dataclass
class MemoryReader:
    content: bytes
    offset: int
    gzip: bool

    def read(self, length: int) -> ObjectRead:
        piece = self.content[self.offset : self.offset + length]
        self.offset += len(piece)
        return ObjectRead(piece, self.offset >= len(self.content))

    def close(self) -> None:
        pass


class MemoryImportQueue:
    def __init__(self) -> None:
        self.sent: list[ImportStep] = []

    def send_steps(self, steps: Iterable[ImportStep]) -> None:
        self.sent.extend(steps)

    def drain(self) -> list[ImportStep]:
        sent, self.sent = self.sent, []
        return sent


class MemoryWorkQueue:
    """Keeps what was sent, in order. `fail_next` makes the next send raise before sending."""

    def __init__(self) -> None:
        self.sent: list[ChunkRef] = []
        self.fail_next: Exception | None = None

    def send(self, refs: Iterable[ChunkRef]) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.sent.extend(refs)

    def drain(self) -> list[ChunkRef]:
        sent, self.sent = self.sent, []
        return sent


class MemoryTransitions:
    """The state machines' conditional writes (statemachines/*.asl.json) on a MemoryTaskStore."""

    def __init__(
        self, store: MemoryTaskStore, queue: MemoryWorkQueue, imports: MemoryImportQueue | None = None
    ) -> None:
        self._store = store
        self._queue = queue
        self._imports = imports

    def cancel(self, task: Task, now: datetime) -> bool:
        """pending or running -> canceled in this attempt; `error` is left as it is."""
        self._store._enter("cancel")
        with self._store._lock:
            stored = self._store._tasks.get((task.kind, task.task_id))
            if stored is None or stored.attempt != task.attempt or stored.status not in CANCELABLE_FROM:
                return False
            stored.status, stored.updated_at = TaskStatus.CANCELED, now
        return True

    def restart(self, task: Task, plan: RestartPlan, now: datetime) -> bool:
        self._store._enter("restart")
        with self._store._lock:
            stored = self._store._tasks.get((task.kind, task.task_id))
            if stored is None or stored.attempt != task.attempt or stored.status not in RESTARTABLE_FROM:
                return False
            if plan.reread:
                if stored.source is None:
                    return False
                self._store.edit(
                    task.kind,
                    task.task_id,
                    source=replace(
                        stored.source,
                        position=FIRST_POSITION,
                        read_from=None,
                        read_by=None,
                        objects_total=None,
                        objects_read=0,
                        lines_read=0,
                    ),
                    original_item_count=0,
                    original_chunk_count=0,
                )
            self._store.edit(
                task.kind,
                task.task_id,
                status=TaskStatus.PENDING,
                attempt=plan.next_attempt,
                chunk_source=plan.chunk_source,
                item_count=plan.item_count,
                chunk_count=plan.chunk_count,
                chunks_done=0,
                succeeded=0,
                failed=0,
                errors=0,
                superseded=0,
                write_version=self._store.next_write_version(stored.embedding_model_id),
                error=None,
                updated_at=now,
            )
        if plan.reread and self._imports is not None:
            self._imports.send_steps([ImportStep(task.kind, task.task_id, plan.next_attempt)])
        self._queue.send(ChunkRef(task.kind, task.task_id, plan.next_attempt, n) for n in range(plan.chunk_count))
        return True


CANCELABLE_FROM = (TaskStatus.PENDING, TaskStatus.RUNNING)
RESTARTABLE_FROM = (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED)
