"""A task and its chunks as DynamoDB items, and back (the key layout is in task_keys).

Chunk items and recorded failures are zlib-compressed JSON (`pack` / `unpack`): a chunk of
items or a list of failures can be large, and an item is at most 400 KB. A chunk whose JSON
orjson wrote says so (CHUNK_CODEC): orjson reads it back exactly, with no scan of the text for
integers past 64 bits, which was a third of the time spent reading a chunk of vectors.

Chunks, chunk results and final tasks carry `expires_at` (epoch seconds), the table's TTL
attribute: DynamoDB deletes such an item some time after it, so readers also treat an item
past it as gone (`expired`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from vector_tasks.adapters.task_keys import (
    TASK_SK,
    chunk_sk,
    list_pk,
    list_sk,
    result_sk,
    status_pk,
    task_pk,
)
from vector_tasks.domain.chunking import Chunk
from vector_tasks.domain.encoding import STORED_COMPRESSION_LEVEL, json_bytes, json_loads, orjson_bytes, orjson_loads
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    ChunkOutcome,
    ChunkRef,
    ImportSource,
    Item,
    ItemFailure,
    Task,
    TaskKind,
    TaskStatus,
    cap_failure_detail,
)

EXPIRES_AT = "expires_at"


@dataclass(frozen=True)
class Retention:
    """How long the store keeps what it writes (template.yaml: RetentionDays, TaskRetentionDays)."""

    items: timedelta = timedelta(days=30)  # chunks, retry chunks and chunk results, from their write
    tasks: timedelta = timedelta(days=365)  # a task record, from its final transition

    def items_expire_at(self, now: datetime) -> int:
        return epoch_seconds(now + self.items)

    def task_expires_at(self, now: datetime) -> int:
        return epoch_seconds(now + self.tasks)


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def expired(item: dict[str, Any], now: datetime) -> bool:
    """Past its TTL: DynamoDB deletes such items within days, not at once."""
    expires_at = item.get(EXPIRES_AT)
    return isinstance(expires_at, int | Decimal) and int(expires_at) <= epoch_seconds(now)


def pack(value: object) -> bytes:
    return zlib.compress(json_bytes(value), STORED_COMPRESSION_LEVEL)


def unpack(value: Any, written_by_orjson: bool = False) -> Any:
    raw = value.value if hasattr(value, "value") else value  # boto3 Binary
    data = zlib.decompress(raw)
    return orjson_loads(data) if written_by_orjson else json_loads(data)


# A stored chunk's `codec`: ORJSON_CODEC where orjson wrote its JSON; absent where the standard
# library did (an integer past 64 bits) and on chunks stored before the attribute existed.
CHUNK_CODEC = "codec"
ORJSON_CODEC = "zlib-orjson"


def task_item(task: Task) -> dict[str, Any]:
    return {
        "pk": task_pk(task.kind, task.task_id),
        "sk": TASK_SK,
        "kind": task.kind.value,
        "task_id": task.task_id,
        "embedding_model_id": task.embedding_model_id,
        "status": task.status.value,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
        "attempt": task.attempt,
        "item_count": task.item_count,
        "chunk_count": task.chunk_count,
        "chunks_done": task.chunks_done,
        "succeeded": task.succeeded,
        "failed": task.failed,
        "errors": task.errors,
        "superseded": task.superseded,
        "write_version": task.write_version,
        "error": task.error,
        "fingerprint": task.fingerprint,
        "dispatched": task.dispatched,
        "chunk_source": task.chunk_source,
        "original_item_count": task.original_item_count,
        "original_chunk_count": task.original_chunk_count,
        "reconciled_at": task.reconciled_at.isoformat() if task.reconciled_at else None,
        "list_pk": list_pk(task.kind),
        "list_sk": list_sk(task.created_at.isoformat(), task.task_id),
        "status_pk": status_pk(task.kind, task.status),
        **(source_attributes(task.source) if task.source is not None else {}),
    }


def source_attributes(source: ImportSource) -> dict[str, Any]:
    """An imported task's source as attributes of its item (updated where reading goes on)."""
    return {
        "source_uri": source.uri,
        "source_objects_total": source.objects_total,
        "source_objects_read": source.objects_read,
        "source_lines_read": source.lines_read,
        "read_position": source.position,
        "read_from": source.read_from,
        "read_by": source.read_by,
    }


def _source_from(item: dict[str, Any]) -> ImportSource | None:
    if not item.get("source_uri"):
        return None
    total = item.get("source_objects_total")
    return ImportSource(
        uri=item["source_uri"],
        objects_total=None if total is None else int(total),
        objects_read=int(item.get("source_objects_read", 0)),
        lines_read=int(item.get("source_lines_read", 0)),
        position=str(item.get("read_position") or ""),
        read_from=item.get("read_from"),
        read_by=item.get("read_by"),
    )


def task_from(item: dict[str, Any]) -> Task:
    def n(name: str) -> int:
        return int(item.get(name, Decimal(0)))

    return Task(
        kind=TaskKind(item["kind"]),
        task_id=item["task_id"],
        embedding_model_id=item["embedding_model_id"],
        status=TaskStatus(item["status"]),
        created_at=datetime.fromisoformat(item["created_at"]),
        updated_at=datetime.fromisoformat(item["updated_at"]),
        attempt=n("attempt"),
        item_count=n("item_count"),
        chunk_count=n("chunk_count"),
        chunks_done=n("chunks_done"),
        succeeded=n("succeeded"),
        failed=n("failed"),
        errors=n("errors"),
        superseded=n("superseded"),
        write_version=n("write_version"),
        error=item.get("error"),
        fingerprint=item["fingerprint"],
        dispatched=bool(item.get("dispatched", False)),
        chunk_source=item.get("chunk_source", ORIGINAL_CHUNKS),
        original_item_count=n("original_item_count"),
        original_chunk_count=n("original_chunk_count"),
        reconciled_at=datetime.fromisoformat(item["reconciled_at"]) if item.get("reconciled_at") else None,
        source=_source_from(item),
    )


def chunk_item(
    kind: TaskKind, task_id: str, source: str, number: int, items: list[Item], expires_at: int
) -> dict[str, Any]:
    item = {"pk": task_pk(kind, task_id), "sk": chunk_sk(source, number), "item_count": len(items)}
    if isinstance(items, Chunk):  # as the split compressed it
        item["items"], orjson_exact = items.stored, items.orjson_exact
    else:
        data = orjson_bytes(items)
        orjson_exact = data is not None
        item["items"] = pack(items) if data is None else zlib.compress(data, STORED_COMPRESSION_LEVEL)
    if orjson_exact:
        item[CHUNK_CODEC] = ORJSON_CODEC
    item[EXPIRES_AT] = expires_at
    return item


def chunk_items(item: dict[str, Any]) -> list[Item]:
    items: list[Item] = unpack(item["items"], written_by_orjson=item.get(CHUNK_CODEC) == ORJSON_CODEC)
    return items


def result_item(ref: ChunkRef, outcome: ChunkOutcome, expires_at: int) -> dict[str, Any]:
    """What an attempt did with a chunk: counts, and the failures if any."""
    result: dict[str, Any] = {
        "pk": task_pk(ref.kind, ref.task_id),
        "sk": result_sk(ref.chunk),
        "attempt": ref.attempt,
        "succeeded": outcome.succeeded,
        "failed": len(outcome.failures),
        "superseded": outcome.superseded,
        EXPIRES_AT: expires_at,
    }
    if outcome.failures:
        # Each detail is capped here, where every failure is recorded (see cap_failure_detail).
        result["failures"] = pack([[f.object_id, cap_failure_detail(f.detail)] for f in outcome.failures])
    return result


def result_failures(item: dict[str, Any]) -> list[tuple[str, str]]:
    """The (object_id, detail) failures a result item records, in the order they were recorded."""
    if "failures" not in item:
        return []
    return [(oid, detail) for oid, detail in unpack(item["failures"])]


def failures_of(item: dict[str, Any], first: int, count: int) -> list[ItemFailure]:
    """Failures [first, first + count) of a result item, each detail capped."""
    return [
        ItemFailure(oid, cap_failure_detail(detail)) for oid, detail in result_failures(item)[first : first + count]
    ]
