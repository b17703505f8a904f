"""Where a task's items live in the one DynamoDB table: the key layout.

Partition key `pk` = "<kind>#<task_id>"; per task:
  sk "TASK"               the task: status, counters, attempt, fingerprint; the only item the
                          list indexes see (sparse GSIs `ByCreated` and `ByStatus`)
  sk "CHUNK#00042"        one chunk of the task's items, zlib-compressed JSON
  sk "RETRY#0002-<id>#00007"  one chunk of the items a `scope=failed` restart retries in attempt 2
  sk "RESULT#00042"       what the latest attempt did with chunk 42 of its source: counts and
                          failures, tagged with the attempt
  sk "SOURCE"             an imported task's objects (key, ETag, size), listed once
and one partition of the reconciler's own: pk "RECONCILER", sk "CURSOR#<kind>#<status>", where
its last run stopped reading the tasks of that kind and status (a `list_sk`); and per model its
write-version counter: pk "VERSION#<model id>", sk "COUNTER", attribute `n` (the restart state
machine increments it too).

The state machines (statemachines/*.asl.json, through adapters/state_machines.py) write the
task item too, so they take `task_pk` and `status_pk` from here.
"""

from __future__ import annotations

from vector_tasks.domain.model import TaskKind, TaskStatus

TASK_SK = "TASK"
SOURCE_SK = "SOURCE"
RESULT_PREFIX = "RESULT#"
BY_CREATED = "ByCreated"
BY_STATUS = "ByStatus"


def task_pk(kind: TaskKind, task_id: str) -> str:
    return f"{kind.value}#{task_id}"


def status_pk(kind: TaskKind, status: TaskStatus) -> str:
    """The ByStatus partition of a task in `status` (state machines write it too)."""
    return f"{kind.value}#{status.value}"


def list_pk(kind: TaskKind) -> str:
    """The ByCreated partition: every task of a kind."""
    return kind.value


def list_sk(created_at_iso: str, task_id: str) -> str:
    """The ByCreated sort key: creation time, then the id (newest first when read backwards)."""
    return f"{created_at_iso}#{task_id}"


def chunk_sk(source: str, chunk: int) -> str:
    """A chunk of `source` (ORIGINAL_CHUNKS, or a `scope=failed` restart's RETRY source)."""
    return f"{source}#{chunk:05d}"


def result_sk(chunk: int) -> str:
    return f"{RESULT_PREFIX}{chunk:05d}"


RECONCILER_PK = "RECONCILER"
COUNTER_SK = "COUNTER"


def version_counter_pk(embedding_model_id: str) -> str:
    return f"VERSION#{embedding_model_id}"


def reconcile_cursor_sk(kind: TaskKind, status: TaskStatus) -> str:
    return f"CURSOR#{kind.value}#{status.value}"


def chunk_number(sk: str) -> int:
    """The chunk number at the end of a chunk or result sort key."""
    return int(sk.rsplit("#", 1)[1])
