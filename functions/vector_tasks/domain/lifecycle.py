"""The lifecycle table (README, "Lifecycle: restart and cancel"), for the two caller actions."""

from __future__ import annotations

from vector_tasks.domain.model import TaskStatus

# The statuses each action starts from. Cancel of a canceled task is answered as a no-op.
CANCELABLE = (TaskStatus.PENDING, TaskStatus.RUNNING)
RESTARTABLE = (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED)
