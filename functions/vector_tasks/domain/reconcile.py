"""The reconciler: no task stays unfinished, whatever step of its lifecycle failed.

Run on a schedule (ReconcilerFunction), it reads the tasks that are `pending` or `running`,
oldest first, a bounded number per run, resuming where the previous run stopped, and:

- finishes a running task whose every chunk of this attempt is recorded (a delivery recorded
  the last chunk, then died before the final transition);
- for a task that made no progress for `stall_after` (no chunk recorded, no status change, no
  range of its source read, no resend): sends an import's step at its read position again
  while its source is not read to the end (a splitter that died before queueing it); fails it
  with a clear reason when its items were never stored (a create that died before storing
  them), else sends the messages of the chunks this attempt has not recorded again (a create
  or restart that died before all of them went out, a purged queue, a message lost for any
  other reason).

It is idempotent and safe beside workers and other runs: finishing is a conditional write, a
resend is claimed first with a conditional write on the task (`reconciled_at`), and a chunk
message delivered twice is counted once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from vector_tasks.domain.model import ChunkRef, Task, TaskKind, TaskStatus, utc_now
from vector_tasks.domain.ports import TaskStore, WorkQueue
from vector_tasks.domain.processing import finish_if_complete, items_missing_error
from vector_tasks.domain.sources import ImportQueue, ImportStep

UNFINISHED = (TaskStatus.PENDING, TaskStatus.RUNNING)


@dataclass
class ReconcileReport:
    """What one run looked at and repaired (logged and published as metrics)."""

    examined: int = 0
    finished: int = 0
    failed_items_missing: int = 0
    redispatched_tasks: int = 0
    redispatched_chunks: int = 0
    redispatched_imports: int = 0
    out_of_budget: bool = False  # stopped early; the next run goes on from there

    @property
    def repaired(self) -> int:
        return self.finished + self.failed_items_missing + self.redispatched_tasks + self.redispatched_imports


class Reconciler:
    def __init__(
        self,
        store: TaskStore,
        queue: WorkQueue,
        stall_after: timedelta,
        per_partition: int = 500,
        max_repairs: int = 100,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        imports: ImportQueue | None = None,
    ) -> None:
        """`per_partition`: tasks read per kind and status per run; `max_repairs`: tasks
        repaired per run at most (each repair is a few more requests). `clock` tells the stall
        period, `monotonic` the run's deadline (tests inject both). `imports`: where a stalled
        import's next step is sent again."""
        self._store = store
        self._queue = queue
        self._stall_after = stall_after
        self._per_partition = per_partition
        self._max_repairs = max_repairs
        self._clock = clock
        self._monotonic = monotonic
        self._imports = imports

    def run(self, deadline: float) -> ReconcileReport:
        """One pass over the unfinished tasks, within the budgets and `deadline` (monotonic)."""
        report = ReconcileReport()
        for kind in TaskKind:
            for status in UNFINISHED:
                if not self._partition(kind, status, deadline, report):
                    report.out_of_budget = True
                    return report
        return report

    def _partition(self, kind: TaskKind, status: TaskStatus, deadline: float, report: ReconcileReport) -> bool:
        """Examine the next tasks of one kind and status; False when a budget ran out."""
        after = self._store.reconcile_cursor(kind, status)
        page = self._store.unfinished_tasks(kind, status, after, self._per_partition)
        cursor = after
        for position, task in page.entries:
            if self._monotonic() >= deadline or report.repaired >= self._max_repairs:
                self._store.save_reconcile_cursor(kind, status, cursor)
                return False
            report.examined += 1
            self._examine(task, report)
            cursor = position
        # The whole partition was read: the next run starts again from its oldest task.
        self._store.save_reconcile_cursor(kind, status, cursor if page.more else None)
        return True

    def _examine(self, task: Task, report: ReconcileReport) -> None:
        if task.status is TaskStatus.RUNNING and task.all_chunks_recorded:
            if finish_if_complete(self._store, task):
                report.finished += 1
            return
        now = self._clock()
        if now - task.last_activity < self._stall_after:
            return
        missing = sorted(set(range(task.chunk_count)) - self._store.stored_chunks(task))
        if missing:
            error = items_missing_error(task.chunk_source, missing[0])
            if self._store.transition(task, TaskStatus.FAILED, expect=UNFINISHED, now=now, error=error):
                report.failed_items_missing += 1
            return
        source = task.source
        if source is not None and not source.complete and self._imports is not None:
            # Reading goes on from where it stopped; the chunks read so far are looked at below.
            if self._store.mark_reconciled(task, now):
                step = ImportStep.at(task.kind, task.task_id, task.attempt, source.position)
                self._imports.send_steps([step])
                report.redispatched_imports += 1
                task.reconciled_at = now
            else:
                return
        recorded = self._store.recorded_chunks(task)
        unrecorded = [n for n in range(task.chunk_count) if n not in recorded]
        # Claimed first: of two runs (or a run and a late worker), one resends, and only once per
        # stall period; if the send then fails, the next period sends again.
        if unrecorded and self._store.mark_reconciled(task, now):
            self._queue.send(ChunkRef(task.kind, task.task_id, task.attempt, n, task.chunk_source) for n in unrecorded)
            report.redispatched_tasks += 1
            report.redispatched_chunks += len(unrecorded)
