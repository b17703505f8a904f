"""Cancel and restart: the caller's side of the lifecycle.

The checks here answer the common cases quickly (404, 409, cancel of a canceled task); the
transition itself is a conditional write run by the TransitionRunner, so a race lost between
the check and the write is still a 409 with the status the task has now, never an overwrite.
"""

from __future__ import annotations

from collections.abc import Callable

from vector_tasks.domain.chunking import split_into_chunks
from vector_tasks.domain.errors import (
    AttemptMismatch,
    ChunkNotStored,
    InvalidTransition,
    ItemsExpired,
    NothingToRetry,
    TaskNotFound,
)
from vector_tasks.domain.lifecycle import CANCELABLE, RESTARTABLE
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    RestartPlan,
    RestartScope,
    Task,
    TaskKind,
    TaskStatus,
    chunk_source_for_retry,
    utc_now,
)
from vector_tasks.domain.ports import TaskStore, TransitionRunner
from vector_tasks.domain.sources import (
    MAX_OBJECTS_PER_IMPORT,
    ObjectStore,
    SourceChanged,
    SourceIncomplete,
    SourceUnreadable,
    parse_s3_uri,
)


def _expect_attempt(action: str, task: Task, attempt: int | None) -> None:
    if attempt is not None and task.attempt != attempt:
        raise AttemptMismatch(action, task.task_id, attempt, task.attempt, task.status.value)


class TaskTransitions:
    def __init__(
        self,
        store: TaskStore,
        runner: TransitionRunner,
        objects: ObjectStore | None = None,
        chunk_items: Callable[[str], int] = lambda model_id: CHUNK_MAX_ITEMS,
    ) -> None:
        """`objects`: where an import's source is looked at before it is read again;
        `chunk_items`: a model's items per chunk (ModelRegistry.chunk_items)."""
        self._store = store
        self._runner = runner
        self._objects = objects
        self._chunk_items = chunk_items

    def _task(self, kind: TaskKind, task_id: str, with_failures: bool = False) -> Task:
        """The task; its failure list (a query of every chunk result) only for the answer."""
        task = self._store.get_task(kind, task_id, with_failures=with_failures)
        if task is None:
            raise TaskNotFound(kind.value, task_id)
        return task

    def cancel(self, kind: TaskKind, task_id: str, attempt: int | None = None) -> Task:
        """Cancel the task; with `attempt`, only if the task is still at that attempt (a retried
        cancel never cancels an attempt a restart made since)."""
        task = self._task(kind, task_id)
        _expect_attempt("cancel", task, attempt)
        if task.status in CANCELABLE:
            if self._runner.cancel(task, utc_now()):
                return self._task(kind, task_id, with_failures=True)
            task = self._task(kind, task_id)  # lost a race: judge by the status it has now
            _expect_attempt("cancel", task, attempt)
        if task.status is not TaskStatus.CANCELED:  # canceled already (by anyone): 200, unchanged
            raise InvalidTransition("cancel", task_id, task.status.value)
        return self._task(kind, task_id, with_failures=True)

    def restart(self, kind: TaskKind, task_id: str, scope: RestartScope, attempt: int | None = None) -> Task:
        """Restart the task as its next attempt. With `attempt` (the attempt the caller saw),
        restarting is idempotent: attempt N becomes N + 1 at most once, and every request for N
        (a retry after a 503 or a dropped connection included) answers with attempt N + 1."""
        task = self._task(kind, task_id)
        if attempt is not None and task.attempt == attempt + 1:
            return self._task(kind, task_id, with_failures=True)  # already restarted from `attempt`
        _expect_attempt("restart", task, attempt)
        if task.status not in RESTARTABLE:
            raise InvalidTransition("restart", task_id, task.status.value)
        plan = self._plan(task, scope)
        if not self._runner.restart(task, plan, utc_now()):
            now = self._task(kind, task_id)
            if attempt is not None and now.attempt == attempt + 1:
                return self._task(kind, task_id, with_failures=True)  # a concurrent restart of it won
            raise InvalidTransition("restart", task_id, now.status.value)
        return self._task(kind, task_id, with_failures=True)

    def _plan(self, task: Task, scope: RestartScope) -> RestartPlan:
        """What the next attempt works through. The items it redoes must still be stored: a
        task's items expire (README, "Data lifecycle"), and a restart past that is ItemsExpired.
        An import is first checked against its source, which must be as it was read."""
        if task.source is not None:
            self._check_source_unchanged(task)
            if scope is RestartScope.ALL:
                return RestartPlan(task.attempt + 1, ORIGINAL_CHUNKS, 0, 0, reread=True)
            if not task.source.complete:
                raise SourceIncomplete(task.task_id)
        try:
            return self._plan_stored(task, scope)
        except ChunkNotStored as exc:
            raise ItemsExpired(task.task_id) from exc

    def _check_source_unchanged(self, task: Task) -> None:
        """SourceChanged unless the objects under the source are those listed when it was read,
        with the same ETags. A source never listed (the first step failed) has nothing to
        compare: it is read afresh."""
        assert task.source is not None
        try:
            listed = {(o.key, o.etag) for o in self._store.source_objects(task)}
        except ChunkNotStored:
            return
        if self._objects is None:
            raise RuntimeError("restarting an import needs an object store (wiring)")
        bucket, key = parse_s3_uri(task.source.uri)
        try:
            now = {(o.key, o.etag) for o in self._objects.list_objects(bucket, key, MAX_OBJECTS_PER_IMPORT)}
        except SourceUnreadable as exc:
            raise SourceChanged(task.task_id, exc.reason) from exc
        if now != listed:
            changed = sorted({k for k, _ in now ^ listed})
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise SourceChanged(task.task_id, f"objects added, removed or rewritten: {shown}")

    def _plan_stored(self, task: Task, scope: RestartScope) -> RestartPlan:
        next_attempt = task.attempt + 1
        if scope is RestartScope.ALL:
            # The new attempt keeps the task's own chunks for another retention period.
            self._store.renew_chunks(task, ORIGINAL_CHUNKS, task.original_chunk_count, utc_now())
            return RestartPlan(next_attempt, ORIGINAL_CHUNKS, task.original_item_count, task.original_chunk_count)
        retry = self._store.items_not_succeeded(task)
        if not retry:
            raise NothingToRetry(task.task_id)
        chunks = split_into_chunks(retry, max_items=self._chunk_items(task.embedding_model_id))
        # Stored under the next attempt's own source before the transition, so the attempt
        # never starts without its chunks; a refused transition leaves them unreferenced.
        source = chunk_source_for_retry(next_attempt)
        self._store.put_chunks(task.kind, task.task_id, chunks, source)
        return RestartPlan(next_attempt, source, len(retry), len(chunks))
