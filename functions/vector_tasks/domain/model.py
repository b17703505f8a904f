"""The task, its status and its parts as the domain sees them."""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vector_tasks.domain.limits import MAX_FAILURE_DETAIL_CHARS


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATUSES = frozenset({TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED})


class TaskKind(enum.StrEnum):
    """The two kinds of task; what differs between them is declared in `vector_tasks.kinds`."""

    UPSERTION = "upsertion"
    DELETION = "deletion"


# An upsertion item is {"object_id", "payload"?, "item_info"?}; a deletion item is an object id.
Item = dict[str, Any] | str


def item_object_id(item: Item) -> str:
    return item if isinstance(item, str) else str(item["object_id"])


# An entry of an imported chunk that stands for a line that is not a valid item: stored with the
# valid items, so that the worker records it as a failure of its chunk, exactly once, like any
# other (`{"object_id": ..., INVALID_LINE: detail}`; valid items never carry this key).
INVALID_LINE = "invalid_line"


def invalid_line(object_id: str, detail: str) -> dict[str, str]:
    return {"object_id": object_id, INVALID_LINE: detail}


def invalid_line_detail(item: Item) -> str | None:
    """The detail of an entry that stands for an invalid line; None for an item."""
    return item.get(INVALID_LINE) if isinstance(item, dict) else None


TRUNCATED_MARKER = " [truncated]"
_ARN = re.compile(r"arn:aws[a-z-]*:[^\s\"',;()]+")
_ACCOUNT_ID = re.compile(r"(account(?: id)?[\s:=#]*)\d{12}(?!\d)", re.IGNORECASE)


def without_internals(text: str) -> str:
    """`text` without AWS ARNs and account ids, which a provider's or AWS's message may carry
    (a role's, a model's): what a task's `error` and a failure's detail may tell the caller.
    The adapters log the original."""
    return _ACCOUNT_ID.sub(r"\1<account>", _ARN.sub("<arn>", text))


def _escaped_size(text: str) -> int:
    return len(json.dumps(text)) - 2  # ASCII-escaped, as the API serialises it


def cap_failure_detail(detail: str) -> str:
    """A failure's detail without internals (`without_internals`), cut to at most
    MAX_FAILURE_DETAIL_CHARS bytes of ASCII-escaped JSON (so at most that many characters),
    ending in TRUNCATED_MARKER when it was cut.

    Why: one info page holds up to FAILURES_MAX_LIMIT (1,000) failures and must stay under
    Lambda's 6 MB response limit whatever the details say. An object_id is at most 512 bytes of
    UTF-8, at most 3,072 bytes of JSON (control characters escape to six); a capped detail is at
    most 1,000. Even with the Lambda envelope escaping the body once more, a page of 1,000 such
    failures is < 5.7 MB. Applied where failures are recorded (`DynamoTaskStore.record_chunk`)
    and again where they are read (`DynamoTaskStore._failure_page`), so details stored before
    the cap existed are bounded too.
    """
    detail = without_internals(detail)
    if len(detail) <= MAX_FAILURE_DETAIL_CHARS // 12 or _escaped_size(detail) <= MAX_FAILURE_DETAIL_CHARS:
        return detail
    budget = MAX_FAILURE_DETAIL_CHARS - len(TRUNCATED_MARKER)
    used = 0
    for index, char in enumerate(detail):
        used += _escaped_size(char)
        if used > budget:
            return detail[:index] + TRUNCATED_MARKER
    return detail  # unreachable: the whole detail was over the limit


@dataclass(frozen=True)
class ItemFailure:
    object_id: str
    detail: str
    # False for outcomes that leave nothing to do (deleting an id that is not indexed): they are
    # listed for the caller but do not make a task whose items all ended that way `failed`.
    counts_as_error: bool = True


@dataclass(frozen=True)
class ChunkOutcome:
    """What applying one chunk of a task to the vector index produced. `superseded` counts the
    succeeded items whose write a newer attempt (of any task) had already overtaken."""

    succeeded: int
    failures: tuple[ItemFailure, ...] = ()
    superseded: int = 0

    @property
    def errors(self) -> int:
        return sum(1 for f in self.failures if f.counts_as_error)


@dataclass(frozen=True)
class Progress:
    total: int
    succeeded: int  # superseded ones included
    failed: int
    superseded: int = 0

    @property
    def pending(self) -> int:
        return self.total - self.succeeded - self.failed


@dataclass
class ImportSource:
    """Where an imported task's items come from (`source.s3_uri` of the create) and how far
    reading them has gone. `position` is where reading goes on (`ImportStep.position`),
    READ_COMPLETE once every object was read; `read_from` where the last range written
    started, and `read_by` the position of the step whose invocation wrote it."""

    uri: str
    objects_total: int | None = None  # None until the objects are listed
    objects_read: int = 0
    lines_read: int = 0
    position: str = ""
    read_from: str | None = None
    read_by: str | None = None

    @property
    def complete(self) -> bool:
        return self.position == READ_COMPLETE


READ_COMPLETE = "complete"


@dataclass
class Task:
    kind: TaskKind
    task_id: str
    embedding_model_id: str
    status: TaskStatus
    created_at: datetime
    updated_at: datetime
    attempt: int
    item_count: int
    chunk_count: int
    fingerprint: str
    # Where this attempt's chunks are stored: the task's own items, or the retry set a
    # `scope=failed` restart built (see chunk_source_for_retry).
    chunk_source: str = "CHUNK"
    # The size of the task as created; `item_count` and `chunk_count` are this attempt's.
    original_item_count: int = 0
    original_chunk_count: int = 0
    chunks_done: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: int = 0
    superseded: int = 0
    # The order of this attempt among every accepted attempt writing to the model's index: what
    # its writes carry to OpenSearch as their external version (README, "Ordering across tasks").
    write_version: int = 0
    error: str | None = None
    # Attempt 1's chunk messages all went out (the create finished); restarts send their own.
    dispatched: bool = False
    # When the reconciler last sent this attempt's unrecorded chunks again (None: never).
    reconciled_at: datetime | None = None
    # Imported tasks only: the objects their items are read from (None: the items came inline).
    source: ImportSource | None = None
    # Loaded only when a caller asks for the full task (info), never for listings.
    failures: list[ItemFailure] | None = field(default=None)
    # With `failures`: the offset of the next page of failures, None on the last page.
    failures_next_offset: int | None = None

    @property
    def progress(self) -> Progress:
        return Progress(total=self.item_count, succeeded=self.succeeded, failed=self.failed, superseded=self.superseded)

    @property
    def all_chunks_recorded(self) -> bool:
        """Every chunk of this attempt is recorded, and an import has no more to read."""
        return self.chunks_done >= self.chunk_count and (self.source is None or self.source.complete)

    @property
    def last_activity(self) -> datetime:
        """The last sign of life: a status change, a chunk recorded, the reconciler's resend."""
        if self.reconciled_at is not None and self.reconciled_at > self.updated_at:
            return self.reconciled_at
        return self.updated_at


ORIGINAL_CHUNKS = "CHUNK"

# Write versions start above 2**40: a document written with OpenSearch's internal versioning
# (before this service, or by another writer) has a version that counts its writes, far below,
# so the first versioned write wins over it.
WRITE_VERSION_BASE = 2**40


def chunk_source_for_retry(attempt: int) -> str:
    """A chunk source of its own for each restart request: two restarts racing for the same
    attempt write different retry sets, and only the winner's source is ever referenced."""
    return f"RETRY#{attempt:04d}-{uuid.uuid4().hex[:12]}"


class RestartScope(enum.StrEnum):
    ALL = "all"  # every item of the task again
    FAILED = "failed"  # only the items the previous attempt did not succeed with


@dataclass(frozen=True)
class RestartPlan:
    """What a restart sets up: the next attempt and the chunks it will work through."""

    next_attempt: int
    chunk_source: str
    item_count: int
    chunk_count: int
    # An import that reads its source again from the start (its counts grow as it reads).
    reread: bool = False


@dataclass(frozen=True)
class IndexWrite:
    """What one write of documents or deletes to the index produced."""

    failures: list[ItemFailure]
    superseded: tuple[str, ...] = ()  # the objects a newer attempt had already written or deleted


@dataclass(frozen=True)
class ChunkRef:
    """The unit of work on the queue: one stored chunk of one attempt of a task. `source` is
    where the attempt's chunks are stored (`Task.chunk_source`), carried so that a worker can
    read the task and the chunk in one request."""

    kind: TaskKind
    task_id: str
    attempt: int
    chunk: int
    source: str = ORIGINAL_CHUNKS


def check_record_group(refs: Sequence[ChunkRef], outcomes: Sequence[ChunkOutcome]) -> None:
    """What `TaskStore.record_chunks` takes: chunks of one task and attempt, each once, with an
    outcome each; ValueError otherwise (every store refuses the same)."""
    if len({(ref.kind, ref.task_id, ref.attempt) for ref in refs}) > 1:
        raise ValueError("record_chunks takes the chunks of one task and attempt")
    if len({ref.chunk for ref in refs}) != len(refs) or len(refs) != len(outcomes):
        raise ValueError("record_chunks takes each chunk once, with its outcome")


@dataclass(frozen=True)
class ChunkDelivery:
    """What a worker reads for one chunk message, in one request: the task (None when it is
    gone), whether the message's attempt already recorded the chunk, and the chunk's items as
    stored under the message's source (None when nothing is stored there)."""

    task: Task | None
    recorded: bool
    items: list[Item] | None


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    next_offset: int | None


@dataclass(frozen=True)
class UnfinishedPage:
    """Pending or running tasks, oldest first, each with the position to resume after it (an
    opaque cursor of the store's); `more` when tasks past the page remain."""

    entries: list[tuple[str, Task]]
    more: bool


def utc_now() -> datetime:
    return datetime.now(UTC)
