"""Tasks in DynamoDB: the store (the key layout is in task_keys, the item codec in task_codec).

Tasks, chunk results, counters and cursors are in the task table, whose stream the completion
events read; the tasks' items (chunks) are in a table of their own, without a stream, so that
the stream carries no chunk images (about 600 KB a read during a bulk load, each read and
skipped by the completion events' event source).

Every status change is a conditional write, and recording a chunk's result is one
transaction with the task's counters, so a redelivered chunk can never count twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from vector_tasks.adapters.retry import RetriesExhausted, RetryPolicy, call_with_retries
from vector_tasks.adapters.task_codec import (
    EXPIRES_AT,
    Retention,
    chunk_item,
    chunk_items,
    expired,
    failures_of,
    pack,
    result_failures,
    result_item,
    task_from,
    task_item,
    unpack,
)
from vector_tasks.adapters.task_keys import (
    BY_CREATED,
    BY_STATUS,
    COUNTER_SK,
    RECONCILER_PK,
    RESULT_PREFIX,
    SOURCE_SK,
    TASK_SK,
    chunk_number,
    chunk_sk,
    list_pk,
    reconcile_cursor_sk,
    result_sk,
    status_pk,
    task_pk,
    version_counter_pk,
)
from vector_tasks.domain.errors import ChunkNotStored
from vector_tasks.domain.limits import CHUNK_MAX_STORED_BYTES, FAILURES_DEFAULT_LIMIT
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    READ_COMPLETE,
    TERMINAL_STATUSES,
    WRITE_VERSION_BASE,
    ChunkDelivery,
    ChunkOutcome,
    ChunkRef,
    Item,
    ItemFailure,
    Task,
    TaskKind,
    TaskPage,
    TaskStatus,
    UnfinishedPage,
    check_record_group,
    item_object_id,
    utc_now,
)
from vector_tasks.domain.sources import SourceObject, StepRead

# DynamoDB's limits on one TransactWriteItems: its actions, and the aggregate size of the items
# they write.
_TRANSACTION_ITEMS = 100
TRANSACTION_MAX_BYTES = 4 * 1024 * 1024
# What `record_chunks` leaves of that size for the task item its counters update (a few KB).
_TASK_ITEM_ALLOWANCE = 64 * 1024
# The chunks one transaction renews: DynamoDB counts the size of the items an Update changes,
# and a stored chunk may hold CHUNK_MAX_STORED_BYTES (13 chunks; 100 of them could be 30 MB).
RENEWALS_PER_TRANSACTION = min(_TRANSACTION_ITEMS, TRANSACTION_MAX_BYTES // (CHUNK_MAX_STORED_BYTES + 1024))
# BatchGetItem's limit is 100 keys: the task's, and two for each chunk (its result and itself).
DELIVERIES_PER_READ = 49


def _attribute_bytes(value: Any) -> int:
    """The size DynamoDB counts for a value of a result item, rounded up (a number at most 21)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int):
        return 21
    return len(value.value if hasattr(value, "value") else value)  # bytes, or boto3's Binary


def _result_bytes(result: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _attribute_bytes(value) for name, value in result.items())


def _transaction_groups(
    results: list[tuple[ChunkRef, dict[str, Any], ChunkOutcome]],
) -> list[list[tuple[ChunkRef, dict[str, Any], ChunkOutcome]]]:
    """Consecutive results in groups that one transaction holds with the task's update: at most
    _TRANSACTION_ITEMS - 1 puts, and TRANSACTION_MAX_BYTES with the task item's allowance."""
    budget = TRANSACTION_MAX_BYTES - _TASK_ITEM_ALLOWANCE
    groups: list[list[tuple[ChunkRef, dict[str, Any], ChunkOutcome]]] = []
    size = 0
    for entry in results:
        entry_size = _result_bytes(entry[1])
        if not groups or len(groups[-1]) == _TRANSACTION_ITEMS - 1 or size + entry_size > budget:
            groups.append([])
            size = 0
        groups[-1].append(entry)
        size += entry_size
    return groups


def conflict_retry_policy() -> RetryPolicy:
    """Retries of the chunk transaction when another transaction held the task item (a sibling
    chunk, a transition): five tries in all, pauses drawn from [0, 0.05], [0, 0.1], ... s."""
    return RetryPolicy(attempts=5, base_delay=0.025, max_delay=1.0)


def _is_transaction_conflict(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError) or _is_condition_failure(exc):
        return False
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


def _applied(write: Callable[[], object]) -> bool:
    """Make a conditional write: True when it was applied, False when its condition did not
    hold (another writer got there first, or the item is gone); any other error is raised."""
    try:
        write()
    except ClientError as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


def _query_pages(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a query, page after page."""
    items: list[dict[str, Any]] = []
    while True:
        response = table.query(**kwargs)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class DynamoTaskStore:
    def __init__(
        self,
        table_name: str,
        resource: Any = None,
        conflict_retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retention: Retention | None = None,
        chunk_table_name: str | None = None,
    ) -> None:
        """`conflict_retry` and `sleep`: how `record_chunk` retries transaction conflicts
        (tests inject a seeded or fixed jitter and a fake sleep). `retention`: the expiry the
        store sets on what it writes (the template's RetentionDays and TaskRetentionDays).

        `chunk_table_name`: where chunks are written (the template's ChunkTable); None keeps
        them in the task table. Chunks a stack wrote to the task table before it had a chunk
        table are still found there (`_chunk_tables`) until they expire (RetentionDays).
        """
        self._table_name = table_name
        self._chunk_table_name = chunk_table_name or table_name
        self._retention = retention or Retention()
        self._resource = resource
        self._table_instance: Any = None
        self._chunk_table_instance: Any = None
        self._conflict_retry = conflict_retry or conflict_retry_policy()
        self._sleep = sleep

    def open(self) -> None:
        """Build the SDK resource and its tables now (during a function's init), not in the
        first invocation: on the local stack that was 60 ms of a create's first POST."""
        self._table  # noqa: B018 - built on first access
        self._chunk_table  # noqa: B018

    def _dynamodb(self) -> Any:
        if self._resource is None:
            self._resource = boto3.resource("dynamodb")
        return self._resource

    @property
    def _table(self) -> Any:
        # Made once: building a Table resource costs tens of milliseconds, every time.
        if self._table_instance is None:
            self._table_instance = self._dynamodb().Table(self._table_name)
        return self._table_instance

    @property
    def _chunk_table(self) -> Any:
        if self._chunk_table_name == self._table_name:
            return self._table
        if self._chunk_table_instance is None:
            self._chunk_table_instance = self._dynamodb().Table(self._chunk_table_name)
        return self._chunk_table_instance

    def _chunk_tables(self) -> list[Any]:
        """Where a task's chunks may be, in the order to look: the chunk table, then the task
        table (chunks written before the chunk table existed)."""
        return [self._chunk_table] if self._chunk_table_name == self._table_name else [self._chunk_table, self._table]

    @property
    def _client(self) -> Any:
        # The resource's client accepts plain Python values, transactions included.
        return self._table.meta.client

    # -- tasks -------------------------------------------------------------------------------

    def next_write_version(self, embedding_model_id: str) -> int:
        """One atomic increment of the model's counter (the restart state machine makes the same
        one, statemachines/restart_task.asl.json)."""
        response = self._table.update_item(
            Key={"pk": version_counter_pk(embedding_model_id), "sk": COUNTER_SK},
            UpdateExpression="SET n = if_not_exists(n, :base) + :one",
            ExpressionAttributeValues={":base": WRITE_VERSION_BASE, ":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["n"])

    def insert_task(self, task: Task) -> Task | None:
        """Store a new task; if its id is taken, leave it and return the task stored there."""
        try:
            self._table.put_item(Item=task_item(task), ConditionExpression="attribute_not_exists(pk)")
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
        task = task_from(item)
        if with_failures:
            task.failures, task.failures_next_offset = self._failure_page(task, failures_offset, failures_limit)
        return task

    def _current_results(self, task: Task, **query: Any) -> list[tuple[int, dict[str, Any]]]:
        """The RESULT items the task's current attempt recorded and still keeps (not past their
        expiry), by chunk number, in chunk order (`query`: more Query parameters, e.g. a
        projection, which must include the expiry)."""
        now = utc_now()
        return sorted(
            (
                (chunk_number(str(item["sk"])), item)
                for item in self._query_all(
                    KeyConditionExpression=Key("pk").eq(task_pk(task.kind, task.task_id))
                    & Key("sk").begins_with(RESULT_PREFIX),
                    ConsistentRead=True,
                    **query,
                )
                if int(item["attempt"]) == task.attempt and not expired(item, now)
            ),
            key=lambda numbered: numbered[0],
        )

    def _failure_page(self, task: Task, offset: int, limit: int) -> tuple[list[ItemFailure], int | None]:
        """Failures [offset, offset + limit) of the current attempt and the next page's offset.

        One query of the task's RESULT items (what any page needs); each records how many
        failures it holds, so only the chunks that overlap the page are decompressed.
        """
        page: list[ItemFailure] = []
        start = 0  # index of the chunk's first failure among all of the attempt's failures
        for _, item in self._current_results(task):
            count = int(item.get("failed", 0))
            if count and "failures" in item and start + count > offset and len(page) < limit:
                page.extend(failures_of(item, max(offset - start, 0), limit - len(page)))
            start += count
        next_offset = offset + limit if offset + limit < start else None
        return page, next_offset

    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        return _query_pages(self._table, **kwargs)

    def list_tasks(self, kind: TaskKind, status: TaskStatus | None, offset: int, limit: int) -> TaskPage:
        """Newest first, from a sparse index; reads offset + limit + 1 index entries, never the table."""
        if status is None:
            query: dict[str, Any] = {
                "IndexName": BY_CREATED,
                "KeyConditionExpression": Key("list_pk").eq(list_pk(kind)),
            }
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
        return TaskPage(tasks=[task_from(i) for i in seen[:limit]], next_offset=offset + limit if has_more else None)

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
        """Move the task of `task.attempt` to `to` if its status is one of `expect`; False if not.
        A final status starts the task record's retention (`expires_at`); any other clears it."""
        condition = "attempt = :attempt AND #status IN (" + ", ".join(f":e{i}" for i in range(len(expect))) + ")"
        values: dict[str, Any] = {f":e{i}": s.value for i, s in enumerate(expect)}
        if require_all_chunks:
            # An import ends only once its source is read to the end.
            condition += (
                " AND chunks_done = chunk_count AND (attribute_not_exists(read_position) OR read_position = :read)"
            )
            values[":read"] = READ_COMPLETE
        values.update(
            {
                ":attempt": task.attempt,
                ":to": to.value,
                ":status_pk": status_pk(task.kind, to),
                ":now": now.isoformat(),
                ":error": error,
            }
        )
        update = "SET #status = :to, status_pk = :status_pk, updated_at = :now, #error = :error"
        if to in TERMINAL_STATUSES:
            update += f", {EXPIRES_AT} = :expires_at"
            values[":expires_at"] = self._retention.task_expires_at(utc_now())
        else:
            update += f" REMOVE {EXPIRES_AT}"
        return _applied(
            lambda: self._table.update_item(
                Key={"pk": task_pk(task.kind, task.task_id), "sk": TASK_SK},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues=values,
            )
        )

    # -- chunks ------------------------------------------------------------------------------

    def put_chunks(
        self, kind: TaskKind, task_id: str, chunks: Sequence[list[Item]], source: str = ORIGINAL_CHUNKS
    ) -> None:
        expires_at = self._retention.items_expire_at(utc_now())
        with self._chunk_table.batch_writer() as batch:
            for number, items in enumerate(chunks):
                batch.put_item(Item=chunk_item(kind, task_id, source, number, items, expires_at))

    def renew_chunks(self, task: Task, source: str, chunk_count: int, now: datetime) -> None:
        """One transaction per RENEWALS_PER_TRANSACTION chunks, each update conditioned on the
        chunk being stored and not past its expiry (chunks written before expiry existed have
        none). A group the chunk table lacks is renewed where it was written before that table
        existed."""
        pk = task_pk(task.kind, task.task_id)
        expires_at = self._retention.items_expire_at(now)
        tables = self._chunk_tables()
        for start in range(0, chunk_count, RENEWALS_PER_TRANSACTION):
            numbers = list(range(start, min(start + RENEWALS_PER_TRANSACTION, chunk_count)))
            if any(self._renew_group(table, pk, source, numbers, expires_at, now) for table in tables):
                continue
            # An import read across the change to a chunk table has chunks in both tables.
            parts = self._where_chunks_are(pk, source, numbers) if len(tables) > 1 else None
            if parts is None or not all(
                self._renew_group(table, pk, source, part, expires_at, now) for table, part in parts
            ):
                raise ChunkNotStored(f"a chunk of {source} of {task.kind.value} task '{task.task_id}' is gone")

    def _renew_group(
        self, table: Any, pk: str, source: str, numbers: list[int], expires_at: int, now: datetime
    ) -> bool:
        """One transaction renewing these chunks in `table`; False when one is not there."""
        values = {":expires_at": expires_at, ":now": int(now.timestamp())}
        updates = [
            {
                "Update": {
                    "TableName": table.name,
                    "Key": {"pk": pk, "sk": chunk_sk(source, number)},
                    "UpdateExpression": f"SET {EXPIRES_AT} = :expires_at",
                    "ConditionExpression": f"attribute_exists(pk) AND (attribute_not_exists({EXPIRES_AT}) "
                    f"OR {EXPIRES_AT} > :now)",
                    "ExpressionAttributeValues": values,
                }
            }
            for number in numbers
        ]
        return _applied(lambda: self._client.transact_write_items(TransactItems=updates))

    def _where_chunks_are(self, pk: str, source: str, numbers: list[int]) -> list[tuple[Any, list[int]]] | None:
        """`numbers` (ascending) by the table that holds them, the chunk table first; None when
        one of them is in neither."""
        wanted = set(numbers)
        parts: list[tuple[Any, list[int]]] = []
        for table in self._chunk_tables():
            rows = _query_pages(
                table,
                KeyConditionExpression=Key("pk").eq(pk)
                & Key("sk").between(chunk_sk(source, numbers[0]), chunk_sk(source, numbers[-1])),
                ProjectionExpression="sk",
                ConsistentRead=True,
            )
            here = sorted(wanted & {chunk_number(str(row["sk"])) for row in rows})
            if here:
                parts.append((table, here))
            wanted -= set(here)
        return None if wanted else parts

    def load_chunk(self, ref: ChunkRef, source: str) -> list[Item]:
        key = {"pk": task_pk(ref.kind, ref.task_id), "sk": chunk_sk(source, ref.chunk)}
        for table in self._chunk_tables():
            response = table.get_item(Key=key, ConsistentRead=True)
            if "Item" in response:
                return chunk_items(response["Item"])
        raise ChunkNotStored(f"chunk {source} {ref.chunk} of {ref.kind.value} task '{ref.task_id}' is not stored")

    def _stored_chunks_of(self, task: Task, **query: Any) -> list[dict[str, Any]]:
        """The chunks of the task's current source, each once (the chunk table's copy first)."""
        condition = Key("pk").eq(task_pk(task.kind, task.task_id)) & Key("sk").begins_with(f"{task.chunk_source}#")
        found: dict[str, dict[str, Any]] = {}
        for table in self._chunk_tables():
            for chunk in _query_pages(table, KeyConditionExpression=condition, ConsistentRead=True, **query):
                found.setdefault(str(chunk["sk"]), chunk)
        return list(found.values())

    def items_not_succeeded(self, task: Task) -> list[Item]:
        """The items of the task's current attempt that did not succeed: those listed as failed,
        and every item of a chunk the attempt never recorded (canceled before it was reached)."""
        now = utc_now()
        chunks = [
            chunk
            for chunk in self._stored_chunks_of(task)
            if chunk_number(str(chunk["sk"])) < task.chunk_count and not expired(chunk, now)
        ]
        if len(chunks) < task.chunk_count:
            raise ChunkNotStored(f"chunks of {task.chunk_source} of {task.kind.value} task '{task.task_id}' are gone")
        recorded = {number: result_failures(item) for number, item in self._current_results(task)}
        retry: list[Item] = []
        for chunk in sorted(chunks, key=lambda c: str(c["sk"])):
            number = chunk_number(str(chunk["sk"]))
            items = chunk_items(chunk)
            if number not in recorded:
                retry.extend(items)
                continue
            failed = {oid for oid, _ in recorded[number]}
            retry.extend(i for i in items if item_object_id(i) in failed)
        return retry

    def read_delivery(self, ref: ChunkRef) -> ChunkDelivery:
        """One BatchGetItem, strongly consistent, of the task and the chunk's result (task table)
        and the chunk (chunk table). A chunk written to the task table before the chunk table
        existed is not looked for here: without items, the processor loads it (`load_chunk`).

        Keys DynamoDB leaves unprocessed (throttling, a response past 16 MB) are asked again
        after the pauses of `conflict_retry`; still unprocessed after its tries, this raises
        and the delivery comes back.
        """
        (delivery,) = self._read_deliveries([ref])
        return delivery

    def read_deliveries(self, refs: Sequence[ChunkRef]) -> list[ChunkDelivery]:
        """`read_delivery` of chunks of one task, in one BatchGetItem for every
        DELIVERIES_PER_READ of them (the task once, each chunk's result and the chunk)."""
        return [
            delivery
            for start in range(0, len(refs), DELIVERIES_PER_READ)
            for delivery in self._read_deliveries(refs[start : start + DELIVERIES_PER_READ])
        ]

    def _read_deliveries(self, refs: Sequence[ChunkRef]) -> list[ChunkDelivery]:
        pks = {task_pk(ref.kind, ref.task_id) for ref in refs}
        if len(pks) != 1:
            raise ValueError("read_deliveries takes the chunks of one task")
        (pk,) = pks
        task_key = (self._table_name, TASK_SK)
        # In order, each once (BatchGetItem refuses a key asked twice).
        wanted_keys = dict.fromkeys([task_key])
        for ref in refs:
            wanted_keys.update(
                dict.fromkeys(
                    [
                        (self._table_name, result_sk(ref.chunk)),
                        (self._chunk_table_name, chunk_sk(ref.source, ref.chunk)),
                    ]
                )
            )
        wanted: dict[str, Any] = {}
        for table, sk in wanted_keys:
            wanted.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append({"pk": pk, "sk": sk})
        found: dict[tuple[str, str], dict[str, Any]] = {}
        policy = self._conflict_retry
        for attempt in range(policy.attempts):
            response = self._client.batch_get_item(RequestItems=wanted)
            for table, rows in response.get("Responses", {}).items():
                found.update(((table, str(row["sk"])), row) for row in rows if (table, str(row["sk"])) in wanted_keys)
            # Asked again as strongly consistent reads, whatever the answer repeats of the request.
            wanted = {
                table: {"Keys": left["Keys"], "ConsistentRead": True}
                for table, left in (response.get("UnprocessedKeys") or {}).items()
                if left.get("Keys")
            }
            if not wanted:
                break
            if attempt + 1 < policy.attempts:
                self._sleep(policy.delay(attempt + 1))
        else:
            left = sum(len(table["Keys"]) for table in wanted.values())
            raise RuntimeError(f"DynamoDB left {left} keys of {list(refs)} unprocessed after {policy.attempts} tries")
        task_row = found.get(task_key)
        deliveries = []
        for ref in refs:
            result = found.get((self._table_name, result_sk(ref.chunk)))
            chunk = found.get((self._chunk_table_name, chunk_sk(ref.source, ref.chunk)))
            deliveries.append(
                ChunkDelivery(
                    task=task_from(task_row) if task_row is not None else None,
                    recorded=result is not None and int(result["attempt"]) >= ref.attempt,
                    items=chunk_items(chunk) if chunk is not None else None,
                )
            )
        return deliveries

    def record_chunk(self, ref: ChunkRef, outcome: ChunkOutcome, now: datetime) -> bool:
        """Record a chunk's result and add it to the task's counters, once per attempt.

        False when the chunk was already recorded for this attempt or the task has moved on to
        another attempt or to a status that no longer counts work.
        """
        # Expiry runs on the wall clock, as DynamoDB's TTL does (`now` is the caller's event time).
        expires_at = self._retention.items_expire_at(utc_now())
        transaction = self._record_transaction([(ref, result_item(ref, outcome, expires_at), outcome)], now)
        return self._transacted(lambda: self._client.transact_write_items(TransactItems=transaction))

    def record_chunks(self, refs: Sequence[ChunkRef], outcomes: Sequence[ChunkOutcome], now: datetime) -> list[bool]:
        """`record_chunk` of chunks of one task and attempt, in one transaction for as many as
        fit in one (_TRANSACTION_ITEMS, TRANSACTION_MAX_BYTES), all of them or none. When a
        condition does not hold (one of them was recorded already, or the task moved on), each
        of that transaction's chunks is recorded on its own, so each answer is record_chunk's."""
        check_record_group(refs, outcomes)
        expires_at = self._retention.items_expire_at(utc_now())
        recorded: list[bool] = []
        for group in _transaction_groups(
            [(ref, result_item(ref, outcome, expires_at), outcome) for ref, outcome in zip(refs, outcomes, strict=True)]
        ):
            transaction = self._record_transaction(group, now)
            # The lambda is called before the loop moves on; made here, it names the call site.
            if self._transacted(lambda: self._client.transact_write_items(TransactItems=transaction)):  # noqa: B023
                recorded.extend(True for _ in group)
            elif len(group) == 1:
                recorded.append(False)
            else:
                recorded.extend(self.record_chunk(ref, outcome, now) for ref, _, outcome in group)
        return recorded

    def _record_transaction(
        self, results: Sequence[tuple[ChunkRef, dict[str, Any], ChunkOutcome]], now: datetime
    ) -> list[dict[str, Any]]:
        """Each result put, if its chunk is not recorded for this attempt, and their sums added
        to the task's counters, if the task still counts this attempt's work: all or none."""
        ref = results[0][0]
        outcomes = [outcome for _, _, outcome in results]
        transaction: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table_name,
                    "Item": result,
                    "ConditionExpression": "attribute_not_exists(pk) OR attempt < :attempt",
                    "ExpressionAttributeValues": {":attempt": ref.attempt},
                }
            }
            for _, result, _ in results
        ]
        transaction.append(
            {
                "Update": {
                    "TableName": self._table_name,
                    "Key": {"pk": task_pk(ref.kind, ref.task_id), "sk": TASK_SK},
                    "UpdateExpression": "ADD succeeded :s, failed :f, errors :e, superseded :sup, chunks_done :n "
                    "SET updated_at = :now",
                    # A canceled task still counts a chunk that was already under way:
                    # its vectors are written, and progress should say so.
                    "ConditionExpression": "attempt = :attempt AND #status IN (:running, :canceled)",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":s": sum(o.succeeded for o in outcomes),
                        ":f": sum(len(o.failures) for o in outcomes),
                        ":e": sum(o.errors for o in outcomes),
                        ":sup": sum(o.superseded for o in outcomes),
                        ":n": len(outcomes),
                        ":now": now.isoformat(),
                        ":attempt": ref.attempt,
                        ":running": TaskStatus.RUNNING.value,
                        ":canceled": TaskStatus.CANCELED.value,
                    },
                }
            }
        )
        return transaction

    def _transacted(self, write: Callable[[], object]) -> bool:
        """A chunk transaction (`write`, made in the public method, which names the call site):
        retried while another transaction holds the task item; False when a condition failed."""
        try:
            return _applied(
                lambda: call_with_retries(write, _is_transaction_conflict, self._conflict_retry, sleep=self._sleep)
            )
        except RetriesExhausted as exc:
            raise exc.last from None  # still conflicting after every attempt: the chunk comes back

    # -- imports -----------------------------------------------------------------------------

    def _reading_condition(self, task: Task, at: str) -> tuple[str, dict[str, Any]]:
        """Still at read position `at` in the attempt, and unfinished."""
        return (
            "attempt = :attempt AND read_position = :at AND #status IN (:pending, :running)",
            {
                ":attempt": task.attempt,
                ":at": at,
                ":pending": TaskStatus.PENDING.value,
                ":running": TaskStatus.RUNNING.value,
            },
        )

    def save_source_objects(
        self, task: Task, objects: list[SourceObject], at: str, next_position: str, by: str
    ) -> bool:
        """One transaction: the SOURCE item (the objects, compressed) and the task's position."""
        pk = task_pk(task.kind, task.task_id)
        condition, values = self._reading_condition(task, at)
        listed = pack([[o.key, o.etag, o.size] for o in objects])
        transaction = [
            {"Put": {"TableName": self._table_name, "Item": {"pk": pk, "sk": SOURCE_SK, "objects": listed}}},
            {
                "Update": {
                    "TableName": self._table_name,
                    "Key": {"pk": pk, "sk": TASK_SK},
                    "UpdateExpression": "SET read_position = :next, read_from = :at, read_by = :by, "
                    "source_objects_total = :n",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {**values, ":next": next_position, ":n": len(objects), ":by": by},
                }
            },
        ]
        return _applied(lambda: self._client.transact_write_items(TransactItems=transaction))

    def source_objects(self, task: Task) -> list[SourceObject]:
        response = self._table.get_item(
            Key={"pk": task_pk(task.kind, task.task_id), "sk": SOURCE_SK}, ConsistentRead=True
        )
        if "Item" not in response:
            raise ChunkNotStored(f"the objects of {task.kind.value} task '{task.task_id}' are not stored")
        return [SourceObject(key, etag, int(size)) for key, etag, size in unpack(response["Item"]["objects"])]

    def append_read(self, task: Task, read: StepRead, by: str) -> bool:
        """The chunks first (a rewrite of the same chunks if this step is a duplicate), then the
        task's counts and position in one conditional update."""
        expires_at = self._retention.items_expire_at(utc_now())
        with self._chunk_table.batch_writer() as batch:
            for number, items in enumerate(read.chunks, start=read.step.chunk):
                batch.put_item(Item=chunk_item(task.kind, task.task_id, ORIGINAL_CHUNKS, number, items, expires_at))
        condition, values = self._reading_condition(task, read.step.position)
        values.update(
            {
                ":next": read.next_position,
                ":now": utc_now().isoformat(),
                ":chunks": len(read.chunks),
                ":items": read.items,
                ":lines": read.lines,
                ":objects": read.objects_done,
                ":by": by,
            }
        )
        return _applied(
            lambda: self._table.update_item(
                Key={"pk": task_pk(task.kind, task.task_id), "sk": TASK_SK},
                UpdateExpression="SET read_position = :next, read_from = :at, read_by = :by, updated_at = :now "
                "ADD chunk_count :chunks, original_chunk_count :chunks, item_count :items, "
                "original_item_count :items, source_lines_read :lines, source_objects_read :objects",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        )

    # -- the reconciler's view ---------------------------------------------------------------

    def unfinished_tasks(self, kind: TaskKind, status: TaskStatus, after: str | None, limit: int) -> UnfinishedPage:
        """Oldest first from the sparse ByStatus index; the cursor is the entry's `list_sk`."""
        condition = Key("status_pk").eq(status_pk(kind, status))
        if after is not None:
            condition &= Key("list_sk").gt(after)
        query: dict[str, Any] = {"IndexName": BY_STATUS, "KeyConditionExpression": condition}
        seen: list[dict[str, Any]] = []
        while len(seen) <= limit:
            response = self._table.query(**query, Limit=limit + 1 - len(seen))
            seen.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        entries = [(str(i["list_sk"]), task_from(i)) for i in seen[:limit]]
        return UnfinishedPage(entries=entries, more=len(seen) > limit)

    def reconcile_cursor(self, kind: TaskKind, status: TaskStatus) -> str | None:
        response = self._table.get_item(
            Key={"pk": RECONCILER_PK, "sk": reconcile_cursor_sk(kind, status)}, ConsistentRead=True
        )
        after = response.get("Item", {}).get("after")
        return str(after) if after else None

    def save_reconcile_cursor(self, kind: TaskKind, status: TaskStatus, cursor: str | None) -> None:
        self._table.put_item(Item={"pk": RECONCILER_PK, "sk": reconcile_cursor_sk(kind, status), "after": cursor})

    def stored_chunks(self, task: Task) -> set[int]:
        return {chunk_number(str(c["sk"])) for c in self._stored_chunks_of(task, ProjectionExpression="sk")}

    def recorded_chunks(self, task: Task) -> set[int]:
        return {number for number, _ in self._current_results(task, ProjectionExpression=f"sk, attempt, {EXPIRES_AT}")}

    def mark_reconciled(self, task: Task, now: datetime) -> bool:
        values: dict[str, Any] = {
            ":now": now.isoformat(),
            ":t": True,
            ":attempt": task.attempt,
            ":pending": TaskStatus.PENDING.value,
            ":running": TaskStatus.RUNNING.value,
        }
        condition = "attempt = :attempt AND #status IN (:pending, :running) AND "
        if task.reconciled_at is None:
            condition += "(attribute_not_exists(reconciled_at) OR attribute_type(reconciled_at, :null))"
            values[":null"] = "NULL"
        else:
            condition += "reconciled_at = :seen"
            values[":seen"] = task.reconciled_at.isoformat()
        return _applied(
            lambda: self._table.update_item(
                Key={"pk": task_pk(task.kind, task.task_id), "sk": TASK_SK},
                UpdateExpression="SET reconciled_at = :now, dispatched = :t",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        )
