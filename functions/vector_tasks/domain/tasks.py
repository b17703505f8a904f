"""Creating, reading and listing tasks: the API's side of the lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from vector_tasks.domain.chunking import (
    fingerprint_matches,
    request_fingerprint,
    source_fingerprint,
    split_into_chunks,
)
from vector_tasks.domain.errors import CreateInterrupted, DomainError, TaskIdConflict, TaskNotFound
from vector_tasks.domain.limits import FAILURES_DEFAULT_LIMIT, PREVIOUS_CHUNK_BOUNDS
from vector_tasks.domain.model import ChunkRef, ImportSource, Item, Task, TaskKind, TaskPage, TaskStatus, utc_now
from vector_tasks.domain.ports import TaskStore, WorkQueue
from vector_tasks.domain.registry import ModelRegistry
from vector_tasks.domain.sources import FIRST_POSITION, ImportNotAllowed, ImportQueue, ImportStep, parse_s3_uri


class TaskService:
    def __init__(
        self,
        store: TaskStore,
        queue: WorkQueue,
        registry: ModelRegistry,
        imports: ImportQueue | None = None,
        import_buckets: frozenset[str] = frozenset(),
    ) -> None:
        """`imports`: where an import's first step goes; `import_buckets`: the buckets it may
        read (none: imports are refused)."""
        self._store = store
        self._queue = queue
        self._registry = registry
        self._imports = imports
        self._import_buckets = import_buckets

    def create(
        self, kind: TaskKind, embedding_model_id: str, task_id: str | None, items: list[Item]
    ) -> tuple[Task, bool]:
        """Create and dispatch a task; returns (task, created).

        Same task_id and same body returns the stored task (created False); a different body is
        a TaskIdConflict. A create that stopped between storing the task and queueing its chunks
        is finished by the retry, so a client retrying after a timeout never strands a task.
        Anything that fails once the request is known to be valid is a CreateInterrupted naming
        the task_id (generated or not), so the client can send the same request again with it.
        """
        chunk_items = self._registry.get(embedding_model_id).chunk_items
        chunks = split_into_chunks(items, max_items=chunk_items)
        task_id = task_id or str(uuid.uuid4())
        try:
            return self._create(kind, embedding_model_id, task_id, items, chunks)
        except DomainError:
            raise
        except Exception as exc:
            raise CreateInterrupted(kind.value, task_id) from exc

    def _create(
        self, kind: TaskKind, embedding_model_id: str, task_id: str, items: list[Item], chunks: Sequence[list[Item]]
    ) -> tuple[Task, bool]:
        now = utc_now()
        # Taken before the conditional insert: a replay of the create takes one too and leaves
        # it unused (a gap in the versions, harmless); the stored task keeps its first one.
        version = self._store.next_write_version(embedding_model_id)
        task = Task(
            kind=kind,
            task_id=task_id,
            embedding_model_id=embedding_model_id,
            status=TaskStatus.PENDING,
            created_at=now,
            updated_at=now,
            attempt=1,
            item_count=len(items),
            chunk_count=len(chunks),
            original_item_count=len(items),
            original_chunk_count=len(chunks),
            fingerprint=request_fingerprint(kind, embedding_model_id, items),
            write_version=version,
        )
        existing = self._store.insert_task(task)
        if existing is not None:
            if existing.fingerprint != task.fingerprint and not fingerprint_matches(
                existing.fingerprint, kind, embedding_model_id, items
            ):
                raise TaskIdConflict(task.task_id)
            if existing.dispatched:
                return self.get(kind, existing.task_id), False
            task = existing
            if self._store.stored_chunks(task) == set(range(task.chunk_count)):
                # The first attempt stored every chunk and may have queued some: those are what
                # its workers read, whatever split made them (another release's bounds or
                # measure), so they stay, and every item is counted once.
                chunks = []
            elif len(chunks) != task.chunk_count:
                # Stored by a release that split with other bounds: queueing this layout would
                # leave items out of the count, or count chunks that are not there.
                chunks = split_into_chunks(items, **PREVIOUS_CHUNK_BOUNDS)
                if len(chunks) != task.chunk_count:
                    raise RuntimeError(
                        f"task '{task.task_id}' counts {task.chunk_count} chunks; its items split into {len(chunks)}"
                    )
        if chunks:
            self._store.put_chunks(kind, task.task_id, chunks)
        self._queue.send(
            ChunkRef(kind, task.task_id, task.attempt, n, task.chunk_source) for n in range(task.chunk_count)
        )
        self._store.mark_dispatched(kind, task.task_id)
        task.dispatched = True
        task.failures = []
        return task, existing is None

    def create_import(
        self, kind: TaskKind, embedding_model_id: str, task_id: str | None, s3_uri: str
    ) -> tuple[Task, bool]:
        """Create a task whose items are read from `s3_uri` (README, "Import from S3"): stored
        with none, its first step queued; it answers at once. Idempotent as `create` is."""
        self._registry.get(embedding_model_id)
        bucket, _ = parse_s3_uri(s3_uri)
        if bucket not in self._import_buckets or self._imports is None:
            allowed = ", ".join(sorted(self._import_buckets)) or "none (the ImportBuckets parameter is empty)"
            raise ImportNotAllowed(f"The service may not read bucket '{bucket}'; the buckets it may read: {allowed}")
        task_id = task_id or str(uuid.uuid4())
        try:
            return self._create_import(kind, embedding_model_id, task_id, s3_uri)
        except DomainError:
            raise
        except Exception as exc:
            raise CreateInterrupted(kind.value, task_id) from exc

    def _create_import(self, kind: TaskKind, embedding_model_id: str, task_id: str, s3_uri: str) -> tuple[Task, bool]:
        assert self._imports is not None
        now = utc_now()
        task = Task(
            kind=kind,
            task_id=task_id,
            embedding_model_id=embedding_model_id,
            status=TaskStatus.PENDING,
            created_at=now,
            updated_at=now,
            attempt=1,
            item_count=0,
            chunk_count=0,
            fingerprint=source_fingerprint(kind, embedding_model_id, s3_uri),
            write_version=self._store.next_write_version(embedding_model_id),
            source=ImportSource(uri=s3_uri, position=FIRST_POSITION),
        )
        existing = self._store.insert_task(task)
        if existing is not None:
            if existing.fingerprint != task.fingerprint:
                raise TaskIdConflict(task.task_id)
            if existing.dispatched:
                return self.get(kind, existing.task_id), False
            task = existing
        # A replay sends the first step again; the one that does not find the task at the first
        # position changes nothing.
        self._imports.send_steps([ImportStep(kind, task.task_id, task.attempt)])
        self._store.mark_dispatched(kind, task.task_id)
        task.dispatched = True
        task.failures = []
        return task, existing is None

    def get(
        self, kind: TaskKind, task_id: str, failures_offset: int = 0, failures_limit: int = FAILURES_DEFAULT_LIMIT
    ) -> Task:
        """The task with one page of its current attempt's failures."""
        task = self._store.get_task(
            kind, task_id, with_failures=True, failures_offset=failures_offset, failures_limit=failures_limit
        )
        if task is None:
            raise TaskNotFound(kind.value, task_id)
        return task

    def list(self, kind: TaskKind, status: TaskStatus | None, offset: int, limit: int) -> TaskPage:
        return self._store.list_tasks(kind, status, offset, limit)
