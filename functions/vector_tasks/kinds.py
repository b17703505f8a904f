"""The two task kinds as the HTTP API presents them: path, request body, task body."""

from __future__ import annotations

from dataclasses import dataclass

from vector_tasks.domain.model import TaskKind
from vector_tasks.models.api import (
    CreateDeletionTaskRequest,
    CreateTaskRequest,
    CreateUpsertionTaskRequest,
    DeletionTask,
    TaskDetail,
    UpsertionTask,
)


@dataclass(frozen=True)
class KindApi:
    kind: TaskKind
    path: str
    create_request: type[CreateTaskRequest]
    task_body: type[TaskDetail]

    @property
    def tag(self) -> str:
        return f"{self.kind.value.capitalize()} tasks"

    def operation_id(self, verb: str) -> str:
        """Operation ids as the spec names them: create_upsertion_task, list_deletion_tasks, ..."""
        noun = f"{self.kind.value}_tasks" if verb == "list" else f"{self.kind.value}_task"
        return f"{verb}_{noun}"


KIND_APIS = (
    KindApi(TaskKind.UPSERTION, "/internal/upsertion-tasks", CreateUpsertionTaskRequest, UpsertionTask),
    KindApi(TaskKind.DELETION, "/internal/deletion-tasks", CreateDeletionTaskRequest, DeletionTask),
)
