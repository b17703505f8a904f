"""The lifecycle table (README, "Lifecycle: restart and cancel"), for the two caller actions."""

from __future__ import annotations

from vector_tasks.domain.model import TERMINAL_STATUSES, Task, TaskStatus

# The statuses each action starts from. Cancel of a canceled task is answered as a no-op.
CANCELABLE = (TaskStatus.PENDING, TaskStatus.RUNNING)
RESTARTABLE = (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED)


def reached_final_status(before: Task | None, after: Task) -> bool:
    """Whether a write that turned `before` into `after` moved the task into done, failed or
    canceled: the transitions completion events announce. A write to a task that stays final
    (a chunk under way counted after a cancel) is none; a final status of a new attempt is one."""
    if after.status not in TERMINAL_STATUSES:
        return False
    return before is None or before.status is not after.status or before.attempt != after.attempt
