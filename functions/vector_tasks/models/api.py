"""Request and response bodies of the HTTP API, as the README ("API summary", "Limits") describes
them; openapi.json is generated from these models (handlers/openapi.py)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from vector_tasks.domain.limits import (
    LIST_MAX_LIMIT,
    MAX_EMBEDDING_MODEL_ID_LENGTH,
    MAX_ITEMS_PER_TASK,
    MAX_OBJECT_ID_BYTES,
    MAX_TASK_ID_LENGTH,
    TASK_ID_PATTERN,
)
from vector_tasks.domain.model import ImportSource, Item, Task, TaskStatus


def _object_id_bytes(value: str) -> str:
    if len(value.encode()) > MAX_OBJECT_ID_BYTES:
        raise PydanticCustomError(
            "object_id_too_long",
            "object_id is {size} bytes of UTF-8; the limit is {limit}",
            {"size": len(value.encode()), "limit": MAX_OBJECT_ID_BYTES},
        )
    return value


ObjectId = Annotated[
    str,
    Field(
        min_length=1,
        description=f"1..{MAX_OBJECT_ID_BYTES} bytes of UTF-8 (so at most {MAX_OBJECT_ID_BYTES} characters)",
        # The limit is in bytes (checked below, error type object_id_too_long); the schema's
        # maxLength states the character bound that follows from it.
        json_schema_extra={"maxLength": MAX_OBJECT_ID_BYTES},
    ),
    AfterValidator(_object_id_bytes),
]
TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TASK_ID_LENGTH,
        pattern=TASK_ID_PATTERN,
        description="1..128 characters of A-Z a-z 0-9 . _ : -",
    ),
]
EmbeddingModelId = Annotated[str, Field(min_length=1, max_length=MAX_EMBEDDING_MODEL_ID_LENGTH)]


def _reject_duplicates(object_ids: list[str]) -> None:
    duplicates = [oid for oid, n in Counter(object_ids).items() if n > 1]
    if duplicates:
        shown = ", ".join(repr(d) for d in duplicates[:20])
        more = f" and {len(duplicates) - 20} more" if len(duplicates) > 20 else ""
        raise PydanticCustomError(
            "duplicate_object_ids",
            "object_id values must be unique within a task; repeated: {shown}{more}",
            {"shown": shown, "more": more},
        )


# S3's bucket naming rules (3..63 of a-z 0-9 . -, a letter or digit at each end); the key or
# prefix after it is up to S3's 1,024 bytes.
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.{0,1024})?$"


class ImportSourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s3_uri: str = Field(
        pattern=S3_URI_PATTERN,
        max_length=1100,
        description="s3://bucket/key names one object; s3://bucket/prefix every object under the prefix. "
        "JSON Lines, gzip allowed (told by the content): one item, or one object id, per line",
    )


class CreateTaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedding_model_id: EmbeddingModelId
    task_id: TaskId | None = Field(default=None, description="Makes the create idempotent; generated when absent")
    # Absent or given, never null (as `items`): the schema states exactly one of the two.
    source: ImportSourceIn = Field(  # type: ignore[assignment]
        default=None,
        description="Read the task's items from S3 instead of the body (README, 'Import from S3'); "
        "give either this or the items, never both",
    )

    # The name of the field that holds the items inline (items, object_ids).
    items_field: ClassVar[str]

    def task_items(self) -> list[Item]:
        raise NotImplementedError

    @model_validator(mode="after")
    def _items_or_source(self) -> CreateTaskRequest:
        inline = getattr(self, self.items_field) is not None
        if inline == (self.source is not None):
            raise PydanticCustomError(
                "items_or_source",
                "give either {field} or source, exactly one of them",
                {"field": self.items_field},
            )
        return self

    def __repr_args__(self) -> Any:
        # Powertools formats the route's arguments into a debug message whatever the log level:
        # a repr of 10,000 items (megabytes of vectors) cost more than validating them.
        for name, value in super().__repr_args__():
            yield name, f"<{len(value)} values>" if isinstance(value, list) else value


class DataItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object_id: ObjectId
    payload: dict[str, Any] | None = Field(default=None, description="Input for vectorization, stored with the vector")
    item_info: dict[str, Any] | None = Field(default=None, description="Internal metadata, stored with the vector")


def _one_of(field: str) -> dict[str, Any]:
    """The schema's statement of `_items_or_source`: exactly one of the two is given. As
    if/then/else rather than a oneOf: client generators (openapi-python-client) make a body
    whose schema is a oneOf an untyped `Any`, and keep the model with this."""
    return {"if": {"required": ["source"]}, "then": {"not": {"required": [field]}}, "else": {"required": [field]}}


class CreateUpsertionTaskRequest(CreateTaskRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of("items"))
    items_field = "items"
    items: list[DataItem] = Field(default=None, min_length=1, max_length=MAX_ITEMS_PER_TASK)  # type: ignore[arg-type]

    @field_validator("items")
    @classmethod
    def _unique_object_ids(cls, items: list[DataItem] | None) -> list[DataItem] | None:
        _reject_duplicates([item.object_id for item in items or []])
        return items

    def task_items(self) -> list[Item]:
        # What model_dump(exclude_none=True) gives, without its copy of every payload (19 ms
        # for 1,000 vectors): the fields that are set, their values as validated.
        return [{name: value for name, value in item if value is not None} for item in self.items or []]


class CreateDeletionTaskRequest(CreateTaskRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of("object_ids"))
    items_field = "object_ids"
    object_ids: list[ObjectId] = Field(
        default=None,  # type: ignore[arg-type]
        min_length=1,
        max_length=MAX_ITEMS_PER_TASK,
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("object_ids")
    @classmethod
    def _unique_object_ids(cls, object_ids: list[str] | None) -> list[str] | None:
        _reject_duplicates(object_ids or [])
        return object_ids

    def task_items(self) -> list[Item]:
        return list(self.object_ids or [])


def _timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class ItemFailureOut(BaseModel):
    object_id: str
    detail: str


class ProgressOut(BaseModel):
    total: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    pending: int
    superseded: int = Field(
        ge=0,
        description="Of `succeeded`: items whose write a more recently accepted task attempt had already "
        "overtaken, so they changed nothing in the index (README, 'Ordering across tasks')",
    )


class SourceOut(BaseModel):
    """How far reading an imported task's source has gone."""

    s3_uri: str
    objects_total: int | None = Field(ge=0, description="Objects to read; null until they are listed")
    objects_read: int = Field(ge=0)
    lines_read: int = Field(ge=0, description="Lines read so far, blank ones aside; progress.total grows with them")
    complete: bool = Field(description="Every object is read: progress.total is final")

    @classmethod
    def of(cls, source: ImportSource) -> SourceOut:
        return cls(
            s3_uri=source.uri,
            objects_total=source.objects_total,
            objects_read=source.objects_read,
            lines_read=source.lines_read,
            complete=source.complete,
        )


class TaskSummary(BaseModel):
    """A task as listed: everything but the failure list."""

    id: str
    embedding_model_id: str
    status: TaskStatus
    created_at: str = Field(description="RFC 3339, UTC", json_schema_extra={"format": "date-time"})
    updated_at: str = Field(description="RFC 3339, UTC", json_schema_extra={"format": "date-time"})
    progress: ProgressOut
    attempt: int = Field(ge=1, description="1 + the number of restarts")
    error: str | None = Field(description="Why the task could not be carried out, when it could not")
    source: SourceOut | None = Field(default=None, description="Imported tasks only: reading their source")

    @classmethod
    def common_fields(cls, task: Task) -> dict[str, Any]:
        p = task.progress
        return {
            "id": task.task_id,
            "embedding_model_id": task.embedding_model_id,
            "status": task.status,
            "created_at": _timestamp(task.created_at),
            "updated_at": _timestamp(task.updated_at),
            "progress": ProgressOut(
                total=p.total, succeeded=p.succeeded, failed=p.failed, pending=p.pending, superseded=p.superseded
            ),
            "attempt": task.attempt,
            "error": task.error,
            "source": SourceOut.of(task.source) if task.source is not None else None,
        }

    @classmethod
    def from_task(cls, task: Task) -> TaskSummary:
        return cls(**cls.common_fields(task))


class TaskDetail(TaskSummary):
    """A task with the items of its current attempt that did not succeed."""

    failures_field: ClassVar[str]

    failures_next_offset: int | None = Field(
        ge=0,
        description="failures_offset of the next page of failures, or null on the last page "
        "(progress.failed is the total)",
    )

    @classmethod
    def from_task(cls, task: Task) -> TaskDetail:
        failures = [ItemFailureOut(object_id=f.object_id, detail=f.detail) for f in task.failures or []]
        return cls.model_validate(
            {
                **cls.common_fields(task),
                cls.failures_field: failures,
                "failures_next_offset": task.failures_next_offset,
            }
        )


class UpsertionTask(TaskDetail):
    failures_field = "failed_items"
    failed_items: list[ItemFailureOut]


class DeletionTask(TaskDetail):
    failures_field = "failed_item_ids"
    failed_item_ids: list[ItemFailureOut]


class TaskList(BaseModel):
    tasks: list[TaskSummary]
    offset: int = Field(ge=0)
    limit: int = Field(ge=1, le=LIST_MAX_LIMIT)
    next_offset: int | None = Field(ge=0, description="Offset of the next page, or null on the last page")


class ErrorDetail(BaseModel):
    field: str = Field(description="Where the problem is, e.g. body.items.3.object_id")
    reason: str
    type: str = Field(description="Machine-readable kind of problem, e.g. missing, duplicate_object_ids")


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable, stable")
    message: str
    request_id: str | None = None
    details: list[ErrorDetail] | None = None
    status: TaskStatus | None = Field(default=None, description="Current task status, on a refused transition")
    attempt: int | None = Field(
        default=None, description="The task's current attempt, when it is not the one the request named"
    )
    task_id: str | None = Field(
        default=None,
        description="On an interrupted create: the task's id (also when generated); send the same request "
        "again with it to complete the create",
    )


class ErrorResponse(BaseModel):
    error: ErrorBody
