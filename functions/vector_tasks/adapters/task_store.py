"""Tasks in one DynamoDB table.

Layout (partition key `pk` = "<kind>#<task_id>"):
  sk "TASK"               the task: status, counters, attempt, fingerprint; the only item the
                          list indexes see (sparse GSIs `ByCreated` and `ByStatus`)
  sk "CHUNK#00042"        one chunk of the task's items, zlib-compressed JSON
  sk "RETRY#0002-<id>#00007"  one chunk of the items a `scope=failed` restart retries in attempt 2
  sk "RESULT#00042"       what the latest attempt did with chunk 42 of its source: counts and
                          failures, tagged with the attempt

Every status change is a conditional write, and recording a chunk's result is one
transaction with the task's counters, so a redelivered chunk can never count twice.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from vector_tasks.domain.limits import FAILURES_DEFAULT_LIMIT
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    ChunkOutcome,
    ChunkRef,
    Item,
    ItemFailure,
    Task,
    TaskKind,
    TaskPage,
    TaskStatus,
    cap_failure_detail,
    item_object_id,
)

TASK_SK = "TASK"
BY_CREATED = "ByCreated"
BY_STATUS = "ByStatus"
_TRANSACTION_ATTEMPTS = 5


def task_pk(kind: TaskKind, task_id: str) -> str:
    return f"{kind.value}#{task_id}"


def status_pk(kind: TaskKind, status: TaskStatus) -> str:
    """The ByStatus partition of a task in `status` (state machines write it too)."""
    return f"{kind.value}#{status.value}"


def _chunk_sk(source: str, chunk: int) -> str:
    return f"{source}#{chunk:05d}"


def _result_sk(chunk: int) -> str:
    return f"RESULT#{chunk:05d}"


def _pack(value: object) -> bytes:
    return zlib.compress(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _unpack(value: Any) -> Any:
    raw = value.value if hasattr(value, "value") else value  # boto3 Binary
    return json.loads(zlib.decompress(raw))


def _is_transaction_conflict(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons", [])
    return exc.response["Error"]["Code"] == "TransactionCanceledException" and any(
        r.get("Code") == "TransactionConflict" for r in reasons
    )


def _is_condition_failure(exc: ClientError) -> bool:
    code = exc.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


class DynamoTaskStore:
    def __init__(self, table_name: str, resource: Any = None) -> None:
        self._table_name = table_name
        self._resource = resource

    @property
    def _table(self) -> Any:
        if self._resource is None:
            self._resource = boto3.resource("dynamodb")
        return self._resource.Table(self._table_name)

    @property
    def _client(self) -> Any:
        # The resource's client accepts plain Python values, transactions included.
        return self._table.meta.client

    # -- tasks -------------------------------------------------------------------------------

    def _task_item(self, task: Task) -> dict[str, Any]:
        list_sk = f"{task.created_at.isoformat()}#{task.task_id}"
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
            "error": task.error,
            "fingerprint": task.fingerprint,
            "dispatched": task.dispatched,
            "chunk_source": task.chunk_source,
            "original_item_count": task.original_item_count,
            "original_chunk_count": task.original_chunk_count,
            "list_pk": task.kind.value,
            "list_sk": list_sk,
            "status_pk": status_pk(task.kind, task.status),
        }

    @staticmethod
    def _task_from(item: dict[str, Any]) -> Task:
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
            error=item.get("error"),
            fingerprint=item["fingerprint"],
            dispatched=bool(item.get("dispatched", False)),
            chunk_source=item.get("chunk_source", ORIGINAL_CHUNKS),
            original_item_count=n("original_item_count"),
            original_chunk_count=n("original_chunk_count"),
        )

    def insert_task(self, task: Task) -> Task | None:
        """Store a new task; if its id is taken, leave it and return the task stored there."""
        try:
            self._table.put_item(Item=self._task_item(task), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            existing = self.get_task(task.kind, task.task_id)
            if existing is None:  # deleted between the two calls; nothing sensible to merge with
                raise
            return existing
        return None

    def get_task(
        self,
        kind: TaskKind,
        task_id: str,
        with_failures: bool = False,
        failures_offset: int = 0,
        failures_limit: int = FAILURES_DEFAULT_LIMIT,
    ) -> Task | None:
        """The task; with_failures adds one page of its current attempt's failures (in chunk
        order) and the offset of the next page."""
        response = self._table.get_item(Key={"pk": task_pk(kind, task_id), "sk": TASK_SK}, ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return None
        task = self._task_from(item)
        if with_failures:
            task.failures, task.failures_next_offset = self._failure_page(task, failures_offset, failures_limit)
        return task

    def _current_failures(self, task: Task) -> dict[int, list[tuple[str, str]]]:
        """Per chunk the current attempt recorded: its (object_id, detail) failures."""
        recorded: dict[int, list[tuple[str, str]]] = {}
        for item in self._query_all(
            KeyConditionExpression=Key("pk").eq(task_pk(task.kind, task.task_id)) & Key("sk").begins_with("RESULT#"),
            ConsistentRead=True,
        ):
            if int(item["attempt"]) == task.attempt:
                number = int(str(item["sk"]).rsplit("#", 1)[1])
                recorded[number] = (
                    [(oid, detail) for oid, detail in _unpack(item["failures"])] if "failures" in item else []
                )
        return recorded

    def _failure_page(self, task: Task, offset: int, limit: int) -> tuple[list[ItemFailure], int | None]:
        """Failures [offset, offset + limit) of the current attempt and the next page's offset.

        One query of the task's RESULT items (what any page needs); each records how many
        failures it holds, so only the chunks that overlap the page are decompressed.
        """
        results = sorted(
            (int(str(item["sk"]).rsplit("#", 1)[1]), item)
            for item in self._query_all(
                KeyConditionExpression=Key("pk").eq(task_pk(task.kind, task.task_id))
                & Key("sk").begins_with("RESULT#"),
                ConsistentRead=True,
            )
            if int(item["attempt"]) == task.attempt
        )
        page: list[ItemFailure] = []
        start = 0  # index of the chunk's first failure among all of the attempt's failures
        for _, item in results:
            count = int(item.get("failed", 0))
            if count and "failures" in item and start + count > offset and len(page) < limit:
                failures = _unpack(item["failures"])
                first = max(offset - start, 0)
                for oid, detail in failures[first : first + limit - len(page)]:
                    page.append(ItemFailure(oid, cap_failure_detail(detail)))
            start += count
        next_offset = offset + limit if offset + limit < start else None
        return page, next_offset

    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            response = self._table.query(**kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def list_tasks(self, kind: TaskKind, status: TaskStatus | None, offset: int, limit: int) -> TaskPage:
        """Newest first, from a sparse index; reads offset + limit + 1 index entries, never the table."""
        if status is None:
            query: dict[str, Any] = {"IndexName": BY_CREATED, "KeyConditionExpression": Key("list_pk").eq(kind.value)}
        else:
            query = {"IndexName": BY_STATUS, "KeyConditionExpression": Key("status_pk").eq(status_pk(kind, status))}
        query["ScanIndexForward"] = False
        # Skip `offset` entries fetching their keys only, then read the page (+1 to know if more).
        skipped = 0
        while skipped < offset:
            response = self._table.query(**query, Limit=min(offset - skipped, 1000), ProjectionExpression="pk")
            skipped += response["Count"]
            if "LastEvaluatedKey" not in response:
                return TaskPage(tasks=[], next_offset=None)
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        seen: list[dict[str, Any]] = []
        while len(seen) <= limit:
            response = self._table.query(**query, Limit=limit + 1 - len(seen))
            seen.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        has_more = len(seen) > limit
        return TaskPage(
            tasks=[self._task_from(i) for i in seen[:limit]], next_offset=offset + limit if has_more else None
        )

    def mark_dispatched(self, kind: TaskKind, task_id: str) -> None:
        self._table.update_item(
            Key={"pk": task_pk(kind, task_id), "sk": TASK_SK},
            UpdateExpression="SET dispatched = :t",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":t": True},
        )

    def transition(
        self,
        task: Task,
        to: TaskStatus,
        *,
        expect: tuple[TaskStatus, ...],
        now: datetime,
        error: str | None = None,
        require_all_chunks: bool = False,
    ) -> bool:
        """Move the task of `task.attempt` to `to` if its status is one of `expect`; False if not."""
        condition = "attempt = :attempt AND #status IN (" + ", ".join(f":e{i}" for i in range(len(expect))) + ")"
        values: dict[str, Any] = {f":e{i}": s.value for i, s in enumerate(expect)}
        if require_all_chunks:
            condition += " AND chunks_done = chunk_count"
        values.update(
            {
                ":attempt": task.attempt,
                ":to": to.value,
                ":status_pk": status_pk(task.kind, to),
                ":now": now.isoformat(),
                ":error": error,
            }
        )
        try:
            self._table.update_item(
                Key={"pk": task_pk(task.kind, task.task_id), "sk": TASK_SK},
                UpdateExpression="SET #status = :to, status_pk = :status_pk, updated_at = :now, #error = :error",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    # -- chunks ------------------------------------------------------------------------------

    def put_chunks(self, kind: TaskKind, task_id: str, chunks: list[list[Item]], source: str = ORIGINAL_CHUNKS) -> None:
        with self._table.batch_writer() as batch:
            for number, items in enumerate(chunks):
                batch.put_item(
                    Item={
                        "pk": task_pk(kind, task_id),
                        "sk": _chunk_sk(source, number),
                        "item_count": len(items),
                        "items": _pack(items),
                    }
                )

    def load_chunk(self, ref: ChunkRef, source: str) -> list[Item]:
        response = self._table.get_item(
            Key={"pk": task_pk(ref.kind, ref.task_id), "sk": _chunk_sk(source, ref.chunk)}, ConsistentRead=True
        )
        if "Item" not in response:
            raise LookupError(f"chunk {source} {ref.chunk} of {ref.kind.value} task '{ref.task_id}' is not stored")
        items: list[Item] = _unpack(response["Item"]["items"])
        return items

    def items_not_succeeded(self, task: Task) -> list[Item]:
        """The items of the task's current attempt that did not succeed: those listed as failed,
        and every item of a chunk the attempt never recorded (canceled before it was reached)."""
        pk = task_pk(task.kind, task.task_id)
        chunks = self._query_all(
            KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with(f"{task.chunk_source}#"),
            ConsistentRead=True,
        )
        recorded = self._current_failures(task)
        retry: list[Item] = []
        for chunk in sorted(chunks, key=lambda c: str(c["sk"])):
            number = int(str(chunk["sk"]).rsplit("#", 1)[1])
            if number >= task.chunk_count:
                continue
            items: list[Item] = _unpack(chunk["items"])
            if number not in recorded:
                retry.extend(items)
                continue
            failed = {oid for oid, _ in recorded[number]}
            retry.extend(i for i in items if item_object_id(i) in failed)
        return retry

    def chunk_recorded(self, ref: ChunkRef) -> bool:
        response = self._table.get_item(
            Key={"pk": task_pk(ref.kind, ref.task_id), "sk": _result_sk(ref.chunk)},
            ConsistentRead=True,
            ProjectionExpression="attempt",
        )
        item = response.get("Item")
        return item is not None and int(item["attempt"]) >= ref.attempt

    def record_chunk(self, ref: ChunkRef, outcome: ChunkOutcome, now: datetime) -> bool:
        """Record a chunk's result and add it to the task's counters, once per attempt.

        False when the chunk was already recorded for this attempt or the task has moved on to
        another attempt or to a status that no longer counts work.
        """
        pk = task_pk(ref.kind, ref.task_id)
        result: dict[str, Any] = {
            "pk": pk,
            "sk": _result_sk(ref.chunk),
            "attempt": ref.attempt,
            "succeeded": outcome.succeeded,
            "failed": len(outcome.failures),
        }
        if outcome.failures:
            # Each detail is capped here, where every failure is recorded (see cap_failure_detail).
            result["failures"] = _pack([[f.object_id, cap_failure_detail(f.detail)] for f in outcome.failures])
        transaction = [
            {
                "Put": {
                    "TableName": self._table_name,
                    "Item": result,
                    "ConditionExpression": "attribute_not_exists(pk) OR attempt < :attempt",
                    "ExpressionAttributeValues": {":attempt": ref.attempt},
                }
            },
            {
                "Update": {
                    "TableName": self._table_name,
                    "Key": {"pk": pk, "sk": TASK_SK},
                    "UpdateExpression": "ADD succeeded :s, failed :f, errors :e, chunks_done :one "
                    "SET updated_at = :now",
                    # A canceled task still counts a chunk that was already under way:
                    # its vectors are written, and progress should say so.
                    "ConditionExpression": "attempt = :attempt AND #status IN (:running, :canceled)",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":s": outcome.succeeded,
                        ":f": len(outcome.failures),
                        ":e": outcome.errors,
                        ":one": 1,
                        ":now": now.isoformat(),
                        ":attempt": ref.attempt,
                        ":running": TaskStatus.RUNNING.value,
                        ":canceled": TaskStatus.CANCELED.value,
                    },
                }
            },
        ]
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=transaction)
            except ClientError as exc:
                if _is_condition_failure(exc):
                    return False
                if not _is_transaction_conflict(exc) or attempt == _TRANSACTION_ATTEMPTS - 1:
                    raise
                # Another transaction held the task item (a sibling chunk, a transition): retry.
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
                continue
            return True
        return False
