"""The completion event: what EventBridge carries when a task reaches a final status."""

from __future__ import annotations

from typing import ClassVar

from vector_tasks.domain.model import Task, TaskKind
from vector_tasks.models.api import TaskSummary


class TaskFinished(TaskSummary):
    """The event's `detail`: the task as `list` shows it (id, model, status, attempt, progress,
    error, timestamps) and its kind. Delivery is at least once: (kind, id, attempt, status)
    names the transition, so a consumer drops a repeat by it."""

    event_source: ClassVar[str] = "vector-ingestion.tasks"
    detail_type: ClassVar[str] = "Task finished"

    kind: TaskKind

    @classmethod
    def from_task(cls, task: Task) -> TaskFinished:
        return cls(**cls.common_fields(task), kind=task.kind)
