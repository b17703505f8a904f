"""Typed models of the API's bodies (openapi.json `components/schemas`).

Responses ignore fields they do not know, so a service that adds fields (the API's additions
are additive) does not break an older client; requests forbid unknown fields, as the service
does. tests/unit/test_client_contract.py compares every model here with its schema in
openapi.json, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from vector_tasks_client.limits import (
    LIST_MAX_LIMIT,
    MAX_EMBEDDING_MODEL_ID_LENGTH,
    MAX_ITEMS_PER_TASK,
    MAX_OBJECT_ID_BYTES,
    MAX_TASK_ID_LENGTH,
    TASK_ID_PATTERN,
)


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        """Whether the workers are finished with the task (until a restart)."""
        return self in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED)


class RestartScope(StrEnum):
    ALL = "all"
    FAILED = "failed"


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------------------

ObjectId = Annotated[str, Field(min_length=1, json_schema_extra={"maxLength": MAX_OBJECT_ID_BYTES})]
TaskId = Annotated[str, Field(min_length=1, max_length=MAX_TASK_ID_LENGTH, pattern=TASK_ID_PATTERN)]
EmbeddingModelId = Annotated[str, Field(min_length=1, max_length=MAX_EMBEDDING_MODEL_ID_LENGTH)]


class DataItem(_Request):
    object_id: ObjectId
    payload: dict[str, Any] | None = None
    item_info: dict[str, Any] | None = None


# S3's bucket naming rules, then the key or prefix (the service's ImportSourceIn).
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.{0,1024})?$"


class ImportSourceIn(_Request):
    """An import's source: one object (s3://bucket/key) or every object under a prefix."""

    s3_uri: str = Field(pattern=S3_URI_PATTERN, max_length=1100)


def _one_of(field: str) -> ConfigDict:
    """Exactly one of the items and the source, as the service's schema states it."""
    exactly_one: dict[str, Any] = {
        "if": {"required": ["source"]},
        "then": {"not": {"required": [field]}},
        "else": {"required": [field]},
    }
    return ConfigDict(extra="forbid", json_schema_extra=exactly_one)


class CreateUpsertionTaskRequest(_Request):
    model_config = _one_of("items")

    embedding_model_id: EmbeddingModelId
    task_id: TaskId | None = None
    source: ImportSourceIn = Field(default=None)  # type: ignore[assignment]
    items: list[DataItem] = Field(default=None, min_length=1, max_length=MAX_ITEMS_PER_TASK)  # type: ignore[arg-type]


class CreateDeletionTaskRequest(_Request):
    model_config = _one_of("object_ids")

    embedding_model_id: EmbeddingModelId
    task_id: TaskId | None = None
    source: ImportSourceIn = Field(default=None)  # type: ignore[assignment]
    object_ids: list[ObjectId] = Field(
        default=None,  # type: ignore[arg-type]
        min_length=1,
        max_length=MAX_ITEMS_PER_TASK,
        json_schema_extra={"uniqueItems": True},
    )


# -- responses -----------------------------------------------------------------------------------


class Progress(_Response):
    total: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    pending: int
    # Of `succeeded`: writes a more recently accepted attempt had already overtaken.
    superseded: int = Field(ge=0)

    @property
    def processed(self) -> int:
        """Items attempted in this attempt: succeeded or failed."""
        return self.succeeded + self.failed


class ItemFailure(_Response):
    object_id: str
    detail: str


class SourceOut(_Response):
    """How far reading an imported task's source has gone; `complete`: progress.total is final."""

    s3_uri: str
    objects_total: int | None = Field(ge=0)
    objects_read: int = Field(ge=0)
    lines_read: int = Field(ge=0)
    complete: bool


class TaskSummary(_Response):
    """A task as listed: everything but the failure list."""

    id: str
    embedding_model_id: str
    status: TaskStatus
    created_at: datetime
    updated_at: datetime
    progress: Progress
    attempt: int = Field(ge=1)
    error: str | None
    source: SourceOut | None = None  # imported tasks only


class _TaskWithFailures(TaskSummary):
    """A task with one page of its current attempt's failures (the field's name is the kind's)."""

    failures_next_offset: int | None = Field(ge=0)


class UpsertionTask(_TaskWithFailures):
    failed_items: list[ItemFailure]

    @property
    def failures(self) -> list[ItemFailure]:
        """This page of the current attempt's failures (`failed_items`)."""
        return self.failed_items


class DeletionTask(_TaskWithFailures):
    failed_item_ids: list[ItemFailure]

    @property
    def failures(self) -> list[ItemFailure]:
        """This page of the current attempt's failures (`failed_item_ids`)."""
        return self.failed_item_ids


Task = UpsertionTask | DeletionTask


class TaskList(_Response):
    tasks: list[TaskSummary]
    offset: int = Field(ge=0)
    limit: int = Field(ge=1, le=LIST_MAX_LIMIT)
    next_offset: int | None = Field(ge=0)


class ErrorDetail(_Response):
    field: str
    reason: str
    type: str


class ErrorBody(_Response):
    code: str
    message: str
    request_id: str | None = None
    details: list[ErrorDetail] | None = None
    status: TaskStatus | None = None
    attempt: int | None = None  # attempt_mismatch: the attempt the task is at
    task_id: str | None = None  # create_interrupted: the id to send the same create again with


class ErrorResponse(_Response):
    error: ErrorBody


class GatewayMessage(_Response):
    """What API Gateway answers itself, before or instead of the function."""

    message: str
