"""Creating, reading and listing tasks: the API's side of the lifecycle."""

from __future__ import annotations

import uuid

from vector_tasks.domain.chunking import fingerprint_matches, request_fingerprint, split_into_chunks
from vector_tasks.domain.errors import CreateInterrupted, DomainError, TaskIdConflict, TaskNotFound
from vector_tasks.domain.limits import FAILURES_DEFAULT_LIMIT, PREVIOUS_CHUNK_BOUNDS
from vector_tasks.domain.model import ChunkRef, Item, Task, TaskKind, TaskPage, TaskStatus, utc_now
from vector_tasks.domain.ports import TaskStore, WorkQueue
from vector_tasks.domain.registry import ModelRegistry


class TaskService:
    def __init__(self, store: TaskStore, queue: WorkQueue, registry: ModelRegistry) -> None:
        self._store = store
        self._queue = queue
        self._registry = registry

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
        self._registry.get(embedding_model_id)
        chunks = split_into_chunks(items)
        task_id = task_id or str(uuid.uuid4())
        try:
            return self._create(kind, embedding_model_id, task_id, items, chunks)
        except DomainError:
            raise
        except Exception as exc:
            raise CreateInterrupted(kind.value, task_id) from exc

    def _create(
        self, kind: TaskKind, embedding_model_id: str, task_id: str, items: list[Item], chunks: list[list[Item]]
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
            if len(chunks) != task.chunk_count:
                # Stored by a release that split with other bounds: queueing this layout would
                # leave items out of the count, or count chunks that are not there.
                chunks = split_into_chunks(items, **PREVIOUS_CHUNK_BOUNDS)
                if len(chunks) != task.chunk_count:
                    raise RuntimeError(
                        f"task '{task.task_id}' counts {task.chunk_count} chunks; its items split into {len(chunks)}"
                    )
        self._store.put_chunks(kind, task.task_id, chunks)
        self._queue.send(
            ChunkRef(kind, task.task_id, task.attempt, n, task.chunk_source) for n in range(task.chunk_count)
        )
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
