"""The TaskStore contract: TaskStore against Amazon's DynamoDB Local (conditions,
transactions and indexes as on AWS), and the in-memory MemoryTaskStore of the domain tier
against the very same tests (each test runs as `[dynamodb]` and `[memory]`; the `[dynamodb]`
ones are skipped with the reason where DynamoDB Local cannot run). The DynamoDB-only
assertions (which index a listing queries) are the ones guarded by `queries is not None`;
test_listing_scale.py is DynamoDB-only."""

from __future__ import annotations

import base64
import random
import threading
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.support.memory import MemoryTaskStore
from vector_tasks.adapters.task_codec import chunk_item
from vector_tasks.adapters.task_store import DynamoTaskStore
from vector_tasks.domain.chunking import split_into_chunks
from vector_tasks.domain.encoding import json_bytes
from vector_tasks.domain.errors import ChunkNotStored
from vector_tasks.domain.limits import CHUNK_MAX_BYTES, CHUNK_MAX_ITEMS, CHUNK_MAX_STORED_BYTES
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    WRITE_VERSION_BASE,
    ChunkOutcome,
    ChunkRef,
    ImportSource,
    Item,
    ItemFailure,
    Task,
    TaskKind,
    TaskStatus,
)
from vector_tasks.domain.ports import TaskStore
from vector_tasks.domain.sources import ImportStep, SourceObject, StepRead

UPSERTION = TaskKind.UPSERTION
DELETION = TaskKind.DELETION
T0 = datetime(2026, 3, 1, 12, 0, 0, 900_000, tzinfo=UTC)


def make_task(
    task_id: str,
    *,
    kind: TaskKind = UPSERTION,
    status: TaskStatus = TaskStatus.PENDING,
    created_at: datetime = T0,
    attempt: int = 1,
    item_count: int = 30,
    chunk_count: int = 3,
    fingerprint: str | None = None,
    **fields: Any,
) -> Task:
    return Task(
        kind=kind,
        task_id=task_id,
        embedding_model_id="all-MiniLM-L6-v2",
        status=status,
        created_at=created_at,
        updated_at=created_at,
        attempt=attempt,
        item_count=item_count,
        chunk_count=chunk_count,
        fingerprint=fingerprint or f"fp-{task_id}",
        **fields,
    )


def stored(store: TaskStore, task: Task, with_failures: bool = False) -> Task:
    found = store.get_task(task.kind, task.task_id, with_failures=with_failures)
    assert found is not None, f"task {task.task_id} is not stored"
    return found


def started(store: TaskStore, task: Task) -> Task:
    """Insert the task and move it to running, as the first worker does."""
    assert store.insert_task(task) is None
    assert store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=task.created_at)
    return stored(store, task)


def restart(store: TaskStore, request: pytest.FixtureRequest, task: Task) -> Task:
    """What a restart does to the task item (the restart state machine's conditional update)."""
    if isinstance(store, MemoryTaskStore):
        store.edit(
            task.kind,
            task.task_id,
            attempt=task.attempt + 1,
            status=TaskStatus.RUNNING,
            chunks_done=0,
            succeeded=0,
            failed=0,
            errors=0,
        )
        return replace(task, attempt=task.attempt + 1, status=TaskStatus.RUNNING)
    table = request.getfixturevalue("dynamodb").Table(request.getfixturevalue("task_table"))
    table.update_item(
        Key={"pk": f"{task.kind.value}#{task.task_id}", "sk": "TASK"},
        UpdateExpression="SET attempt = attempt + :one, #s = :running, status_pk = :status_pk, "
        "chunks_done = :zero, succeeded = :zero, failed = :zero, errors = :zero",
        ConditionExpression="attempt = :attempt",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":one": 1,
            ":zero": 0,
            ":attempt": task.attempt,
            ":running": TaskStatus.RUNNING.value,
            ":status_pk": f"{task.kind.value}#{TaskStatus.RUNNING.value}",
        },
    )
    return replace(task, attempt=task.attempt + 1, status=TaskStatus.RUNNING)


def counters(task: Task) -> tuple[int, int, int, int]:
    return task.chunks_done, task.succeeded, task.failed, task.errors


@pytest.fixture
def queries(request: pytest.FixtureRequest, backend: str) -> list[dict[str, Any]] | None:
    """The parameters of every Query the DynamoDB store's client sends (None in memory)."""
    if backend == "memory":
        return None
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    request.getfixturevalue("dynamodb").meta.client.meta.events.register("provide-client-params.dynamodb.Query", record)
    return sent


# -- insert / get ----------------------------------------------------------------------------


def test_insert_then_get_round_trips_every_field(store: TaskStore) -> None:
    task = make_task(
        "t-1",
        created_at=datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC),
        item_count=10_000,
        chunk_count=100,
        chunks_done=7,
        succeeded=650,
        failed=50,
        errors=48,
        error="embedding provider said: ünïcödé 🚫",
        dispatched=True,
    )
    task.updated_at = datetime(2026, 3, 1, 14, 30, 0, 1, tzinfo=timezone(timedelta(hours=2)))

    assert store.insert_task(task) is None
    got = stored(store, task)

    assert got == task  # dataclass equality: every field, failures (None) included
    assert got.updated_at.utcoffset() == timedelta(hours=2)
    assert got.created_at.tzinfo is not None
    assert got.created_at.utcoffset() == timedelta(0)
    for name in ("attempt", "item_count", "chunk_count", "chunks_done", "succeeded", "failed", "errors"):
        assert type(getattr(got, name)) is int, name
    assert got.dispatched is True


def test_defaults_round_trip(store: TaskStore) -> None:
    task = make_task("plain", kind=DELETION)
    assert store.insert_task(task) is None
    got = stored(store, task)
    assert got == task
    assert got.error is None
    assert got.dispatched is False


def test_insert_of_a_taken_id_returns_the_stored_task_and_leaves_it(store: TaskStore) -> None:
    first = make_task("dup", fingerprint="fp-first", item_count=5)
    assert store.insert_task(first) is None

    second = make_task("dup", fingerprint="fp-second", item_count=99, created_at=T0 + timedelta(hours=1))
    existing = store.insert_task(second)

    assert existing is not None
    assert existing.fingerprint == "fp-first"
    assert existing == first
    assert stored(store, first) == first


def test_the_same_id_of_another_kind_is_another_task(store: TaskStore) -> None:
    upsertion = make_task("shared-id", kind=UPSERTION, fingerprint="fp-u")
    deletion = make_task("shared-id", kind=DELETION, fingerprint="fp-d")
    assert store.insert_task(upsertion) is None
    assert store.insert_task(deletion) is None
    assert stored(store, upsertion).fingerprint == "fp-u"
    assert stored(store, deletion).fingerprint == "fp-d"


def test_get_of_an_unknown_task_is_none(store: TaskStore) -> None:
    assert store.get_task(UPSERTION, "nope") is None
    assert store.get_task(UPSERTION, "nope", with_failures=True) is None


def test_mark_dispatched(store: TaskStore) -> None:
    task = make_task("d")
    store.insert_task(task)
    store.mark_dispatched(UPSERTION, "d")
    assert stored(store, task).dispatched is True


# -- listing ---------------------------------------------------------------------------------

TOTAL = 250


@pytest.fixture
def listed(store: TaskStore) -> list[Task]:
    """250 upsertion tasks created 1 ms apart (crossing a whole second), inserted out of order,
    plus deletion tasks that must never show up in upsertion listings. Newest first."""
    tasks = [make_task(f"task-{i:03d}", created_at=T0 + timedelta(milliseconds=i)) for i in range(TOTAL)]
    for task in random.Random(7).sample(tasks, len(tasks)):
        assert store.insert_task(task) is None
    for i in range(5):
        assert store.insert_task(make_task(f"del-{i}", kind=DELETION, created_at=T0 + timedelta(days=1))) is None
    return sorted(tasks, key=lambda t: t.created_at, reverse=True)


def ids(tasks: list[Task]) -> list[str]:
    return [t.task_id for t in tasks]


def test_list_is_newest_first(store: TaskStore, listed: list[Task], queries: list[dict[str, Any]] | None) -> None:
    page = store.list_tasks(UPSERTION, None, 0, 100)
    assert ids(page.tasks) == ids(listed[:100])
    assert page.next_offset == 100
    assert page.tasks[0] == listed[0]  # full tasks, not just ids
    if queries is not None:
        assert queries
        assert {q["IndexName"] for q in queries} == {"ByCreated"}


@pytest.mark.parametrize(
    ("offset", "limit", "count", "next_offset"),
    [
        (0, 1, 1, 1),
        (100, 100, 100, 200),
        (199, 50, 50, 249),  # one left after this page
        (200, 50, 50, None),  # ends exactly at the last task
        (249, 50, 1, None),
        (240, 100, 10, None),
        (250, 10, 0, None),
        (1000, 10, 0, None),
    ],
)
def test_list_pages_at_the_edges(
    store: TaskStore, listed: list[Task], offset: int, limit: int, count: int, next_offset: int | None
) -> None:
    page = store.list_tasks(UPSERTION, None, offset, limit)
    assert ids(page.tasks) == ids(listed[offset : offset + limit])
    assert len(page.tasks) == count
    assert page.next_offset == next_offset


def test_walking_the_pages_visits_every_task_once(store: TaskStore, listed: list[Task]) -> None:
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = store.list_tasks(UPSERTION, None, offset, 37)
        seen.extend(ids(page.tasks))
        offset = page.next_offset
        pages += 1
    assert seen == ids(listed)
    assert pages == -(-TOTAL // 37)


def test_other_kinds_are_listed_apart(store: TaskStore, listed: list[Task]) -> None:
    page = store.list_tasks(DELETION, None, 0, 100)
    assert sorted(ids(page.tasks)) == [f"del-{i}" for i in range(5)]
    assert page.next_offset is None


def test_status_filter_uses_the_status_index_and_follows_transitions(
    store: TaskStore, listed: list[Task], queries: list[dict[str, Any]] | None
) -> None:
    running = [t for t in listed if int(t.task_id[-3:]) % 5 == 0]
    for task in running:
        assert store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=T0 + timedelta(hours=1))
    if queries is not None:
        queries.clear()

    page = store.list_tasks(UPSERTION, TaskStatus.RUNNING, 0, 100)
    assert ids(page.tasks) == ids(running)
    assert all(t.status is TaskStatus.RUNNING for t in page.tasks)
    assert page.next_offset is None
    if queries is not None:
        assert queries
        assert {q["IndexName"] for q in queries} == {"ByStatus"}

    pending = store.list_tasks(UPSERTION, TaskStatus.PENDING, 0, 100)
    assert ids(pending.tasks) == ids([t for t in listed if t not in running][:100])
    assert pending.next_offset == 100
    assert store.list_tasks(UPSERTION, TaskStatus.PENDING, 150, 100).next_offset is None
    assert len(store.list_tasks(UPSERTION, TaskStatus.PENDING, 150, 100).tasks) == TOTAL - len(running) - 150

    # Two of them finish: they leave `running` and appear under `done`, newest first.
    finished = [running[3], running[10]]
    for task in finished:
        assert store.transition(task, TaskStatus.DONE, expect=(TaskStatus.RUNNING,), now=T0 + timedelta(hours=2))
    assert ids(store.list_tasks(UPSERTION, TaskStatus.RUNNING, 0, 100).tasks) == ids(
        [t for t in running if t not in finished]
    )
    assert ids(store.list_tasks(UPSERTION, TaskStatus.DONE, 0, 100).tasks) == ids(finished)
    assert store.list_tasks(UPSERTION, TaskStatus.CANCELED, 0, 100).tasks == []
    assert store.list_tasks(DELETION, TaskStatus.RUNNING, 0, 100).tasks == []
    # The unfiltered listing still has all of them, each with its current status.
    everything = store.list_tasks(UPSERTION, None, 0, TOTAL).tasks
    assert ids(everything) == ids(listed)
    assert {t.task_id for t in everything if t.status is TaskStatus.DONE} == set(ids(finished))


# -- transitions -----------------------------------------------------------------------------


def test_transition_from_an_expected_status(store: TaskStore) -> None:
    task = make_task("tr")
    store.insert_task(task)
    now = T0 + timedelta(minutes=5)

    assert store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=now) is True

    got = stored(store, task)
    assert got.status is TaskStatus.RUNNING
    assert got.updated_at == now
    assert got.error is None
    assert counters(got) == (0, 0, 0, 0)


def test_transition_from_another_status_is_refused(store: TaskStore) -> None:
    task = make_task("tr")
    store.insert_task(task)
    assert store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=T0)

    later = T0 + timedelta(minutes=1)
    assert store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=later) is False
    assert store.transition(task, TaskStatus.PENDING, expect=(TaskStatus.DONE, TaskStatus.FAILED), now=later) is False
    got = stored(store, task)
    assert got.status is TaskStatus.RUNNING
    assert got.updated_at == T0

    # Any of several expected statuses will do.
    assert (
        store.transition(task, TaskStatus.CANCELED, expect=(TaskStatus.PENDING, TaskStatus.RUNNING), now=later) is True
    )
    assert stored(store, task).status is TaskStatus.CANCELED


def test_transition_of_another_attempt_is_refused(store: TaskStore) -> None:
    task = make_task("tr", attempt=2)
    store.insert_task(task)
    for attempt in (1, 3):
        assert (
            store.transition(replace(task, attempt=attempt), TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=T0)
            is False
        )
    assert stored(store, task).status is TaskStatus.PENDING
    assert store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=T0) is True


def test_transition_of_an_unknown_task_is_refused_and_creates_nothing(store: TaskStore) -> None:
    ghost = make_task("ghost")
    assert store.transition(ghost, TaskStatus.CANCELED, expect=(TaskStatus.PENDING,), now=T0) is False
    assert store.get_task(UPSERTION, "ghost") is None


def test_transition_records_the_error(store: TaskStore) -> None:
    task = started(store, make_task("tr"))
    assert store.transition(
        task, TaskStatus.FAILED, expect=(TaskStatus.RUNNING,), now=T0, error="model 'x' is not deployed"
    )
    got = stored(store, task)
    assert got.status is TaskStatus.FAILED
    assert got.error == "model 'x' is not deployed"
    # Restarting (to pending, without an error) clears it.
    assert store.transition(task, TaskStatus.PENDING, expect=(TaskStatus.FAILED,), now=T0)
    assert stored(store, task).error is None


def test_require_all_chunks_refuses_until_every_chunk_is_recorded(store: TaskStore) -> None:
    task = started(store, make_task("all", chunk_count=2, item_count=4))
    finish: dict[str, Any] = {"expect": (TaskStatus.RUNNING,), "now": T0, "require_all_chunks": True}

    assert store.transition(task, TaskStatus.DONE, **finish) is False
    assert store.record_chunk(ChunkRef(UPSERTION, "all", 1, 0), ChunkOutcome(succeeded=2), now=T0)
    assert store.transition(task, TaskStatus.DONE, **finish) is False
    assert stored(store, task).status is TaskStatus.RUNNING

    assert store.record_chunk(ChunkRef(UPSERTION, "all", 1, 1), ChunkOutcome(succeeded=2), now=T0)
    assert store.transition(task, TaskStatus.DONE, **finish) is True
    got = stored(store, task)
    assert got.status is TaskStatus.DONE
    assert counters(got) == (2, 4, 0, 0)


# -- chunks ----------------------------------------------------------------------------------


def test_chunks_round_trip(store: TaskStore) -> None:
    upsertion_chunks: list[list[Item]] = [
        [
            {"object_id": "naïve-1", "payload": {"text": "Grüße aus Köln — 日本語 🚀", "tags": ["a", "ß"]}},
            {
                "object_id": "nested",
                "payload": {"deep": {"list": [1, 2.5, None, True, {"x": [[], {}]}], "n": -3}},
                "item_info": {"source": "s3://bucket/key", "page": 7, "score": 0.125},
            },
            {"object_id": "bare"},
        ],
        [{"object_id": f"o-{i}", "payload": {"text": f"item {i}"}} for i in range(100)],
        [{"object_id": "emoji-🙂", "payload": {"text": "\u0000 nul, \u2028 separators, \U0001f600 astral"}}],
    ]
    store.put_chunks(UPSERTION, "c", upsertion_chunks)
    store.put_chunks(DELETION, "c", [["id-1", "ïd-2"], ["🙂"]])

    for number, items in enumerate(upsertion_chunks):
        assert store.load_chunk(ChunkRef(UPSERTION, "c", 1, number), ORIGINAL_CHUNKS) == items
    assert store.load_chunk(ChunkRef(DELETION, "c", 1, 0), ORIGINAL_CHUNKS) == ["id-1", "ïd-2"]
    assert store.load_chunk(ChunkRef(DELETION, "c", 1, 1), ORIGINAL_CHUNKS) == ["🙂"]
    # The attempt does not matter for reading a chunk: a restart with scope=all reuses them.
    assert store.load_chunk(ChunkRef(UPSERTION, "c", 4, 1), ORIGINAL_CHUNKS) == upsertion_chunks[1]


def test_more_chunks_than_one_batch_write(store: TaskStore) -> None:
    chunks: list[list[Item]] = [[{"object_id": f"{n}-{i}"} for i in range(3)] for n in range(60)]
    store.put_chunks(UPSERTION, "many", chunks)
    for number in (0, 24, 25, 26, 59):
        assert store.load_chunk(ChunkRef(UPSERTION, "many", 1, number), ORIGINAL_CHUNKS) == chunks[number]


def test_the_largest_chunks_store(store: TaskStore) -> None:
    """A chunk at the stored bound of poorly compressible payloads, and one at the JSON bound of
    payloads that compress well, each fit a 400 KB item (DynamoDB Local refuses larger ones)."""
    rng = random.Random(42)
    poor: list[Item] = [
        {"object_id": f"big-{n}", "payload": {"text": base64.b64encode(rng.randbytes(2_000)).decode(), "n": n}}
        for n in range(400)
    ]
    dense = split_into_chunks(poor)[0]
    assert len(zlib.compress(json_bytes(dense), 1)) > CHUNK_MAX_STORED_BYTES - 10_000
    repetitive: list[Item] = [{"object_id": f"r-{n}", "payload": {"text": "ab" * 40_000}} for n in range(30)]
    wide = split_into_chunks(repetitive)[0]
    assert len(json_bytes(wide)) > CHUNK_MAX_BYTES - 100_000

    store.put_chunks(UPSERTION, "big", [dense, wide])
    assert store.load_chunk(ChunkRef(UPSERTION, "big", 1, 0), ORIGINAL_CHUNKS) == dense
    assert store.load_chunk(ChunkRef(UPSERTION, "big", 1, 1), ORIGINAL_CHUNKS) == wide


def test_a_chunk_of_the_most_failures_records(store: TaskStore) -> None:
    """CHUNK_MAX_ITEMS failures, each with a 512-byte id and a detail at its cap, none of which
    compresses much, fit one result item."""
    rng = random.Random(5)
    task = started(store, make_task("worst", chunk_count=1, item_count=CHUNK_MAX_ITEMS))

    def noise(length: int) -> str:
        return "".join(chr(0x4E00 + rng.randrange(4_096)) for _ in range(length))

    failures = tuple(ItemFailure(noise(170) + "ab", noise(333)) for _ in range(CHUNK_MAX_ITEMS))
    assert all(len(f.object_id.encode()) == 512 for f in failures)
    ref = ChunkRef(UPSERTION, "worst", 1, 0)
    assert store.record_chunk(ref, ChunkOutcome(succeeded=0, failures=failures), now=T0)
    got = stored(store, task, with_failures=True)
    assert got.failed == CHUNK_MAX_ITEMS
    assert [f.object_id for f in got.failures or []] == [f.object_id for f in failures]


def test_read_delivery_reads_task_result_and_chunk_together(store: TaskStore) -> None:
    task = started(store, make_task("rd", chunk_count=2))
    store.put_chunks(UPSERTION, "rd", [[{"object_id": "a"}], [{"object_id": "b"}]])
    first = ChunkRef(UPSERTION, "rd", 1, 0)

    read = store.read_delivery(first)
    assert read.task is not None and (read.task.task_id, read.task.status) == ("rd", TaskStatus.RUNNING)
    assert read.task.failures is None  # no failure page: the worker never needs one
    assert (read.recorded, read.items) == (False, [{"object_id": "a"}])

    assert store.record_chunk(first, OUTCOME, now=T0)
    after = store.read_delivery(first)
    assert after.recorded is True and after.task is not None and after.task.chunks_done == 1
    assert store.read_delivery(ChunkRef(UPSERTION, "rd", 2, 0)).recorded is False  # a later attempt
    # Items come from the message's source only: nothing stored there is None, not an error.
    assert store.read_delivery(ChunkRef(UPSERTION, "rd", 1, 1, "RETRY#0002-abc")).items is None
    assert store.read_delivery(ChunkRef(UPSERTION, "rd", 1, 5)).items is None
    gone = store.read_delivery(ChunkRef(DELETION, "rd", 1, 0))
    assert (gone.task, gone.recorded, gone.items) == (None, False, None)
    assert stored(store, task).chunks_done == 1


def test_loading_a_chunk_that_is_not_stored_raises(store: TaskStore) -> None:
    store.put_chunks(UPSERTION, "c", [["only"]])
    with pytest.raises(LookupError, match="chunk CHUNK 1"):
        store.load_chunk(ChunkRef(UPSERTION, "c", 1, 1), ORIGINAL_CHUNKS)
    with pytest.raises(LookupError):
        store.load_chunk(ChunkRef(DELETION, "c", 1, 0), ORIGINAL_CHUNKS)


# -- recording chunk results -----------------------------------------------------------------

OUTCOME = ChunkOutcome(
    succeeded=7,
    failures=(
        ItemFailure("bad-1", "Embedding failed: text too long"),
        ItemFailure("gone", "Object not found in index", counts_as_error=False),
        ItemFailure("bad-2", "mapper_parsing_exception: ünïcödé"),
    ),
)


def test_record_chunk_counts_once(store: TaskStore) -> None:
    task = started(store, make_task("r", chunk_count=3))
    ref = ChunkRef(UPSERTION, "r", 1, 0)
    first_at = T0 + timedelta(minutes=1)

    assert store.read_delivery(ref).recorded is False
    assert store.record_chunk(ref, OUTCOME, now=first_at) is True
    got = stored(store, task)
    assert counters(got) == (1, 7, 3, 2)
    assert got.updated_at == first_at
    assert store.read_delivery(ref).recorded is True

    # Redelivery of the same chunk: the transaction's condition refuses it, nothing changes.
    assert store.record_chunk(ref, OUTCOME, now=T0 + timedelta(minutes=2)) is False
    again = stored(store, task)
    assert counters(again) == (1, 7, 3, 2)
    assert again.updated_at == first_at

    # Another chunk adds up.
    other = ChunkRef(UPSERTION, "r", 1, 1)
    assert store.read_delivery(other).recorded is False
    assert store.record_chunk(other, ChunkOutcome(succeeded=10), now=first_at) is True
    assert counters(stored(store, task)) == (2, 17, 3, 2)
    assert store.read_delivery(ChunkRef(UPSERTION, "r", 1, 2)).recorded is False


def test_record_chunk_while_pending_is_refused_entirely(store: TaskStore) -> None:
    task = make_task("p")
    store.insert_task(task)
    ref = ChunkRef(UPSERTION, "p", 1, 0)

    assert store.record_chunk(ref, OUTCOME, now=T0) is False
    assert counters(stored(store, task)) == (0, 0, 0, 0)
    # The result item is part of the same transaction: it was not written either.
    assert store.read_delivery(ref).recorded is False
    assert stored(store, task, with_failures=True).failures == []


@pytest.mark.parametrize("status", [TaskStatus.DONE, TaskStatus.FAILED])
def test_record_chunk_of_a_finished_task_is_refused(store: TaskStore, status: TaskStatus) -> None:
    task = started(store, make_task("f"))
    assert store.transition(task, status, expect=(TaskStatus.RUNNING,), now=T0)
    ref = ChunkRef(UPSERTION, "f", 1, 0)
    assert store.record_chunk(ref, OUTCOME, now=T0) is False
    assert counters(stored(store, task)) == (0, 0, 0, 0)
    assert store.read_delivery(ref).recorded is False


def test_record_chunk_of_a_canceled_task_still_counts(store: TaskStore) -> None:
    task = started(store, make_task("x"))
    assert store.transition(task, TaskStatus.CANCELED, expect=(TaskStatus.RUNNING,), now=T0)
    ref = ChunkRef(UPSERTION, "x", 1, 0)

    assert store.record_chunk(ref, OUTCOME, now=T0) is True
    got = stored(store, task)
    assert got.status is TaskStatus.CANCELED
    assert counters(got) == (1, 7, 3, 2)
    assert store.read_delivery(ref).recorded is True
    assert store.record_chunk(ref, OUTCOME, now=T0) is False
    assert counters(stored(store, task)) == (1, 7, 3, 2)


def test_record_chunk_of_an_unknown_task_is_refused(store: TaskStore) -> None:
    ref = ChunkRef(UPSERTION, "ghost", 1, 0)
    assert store.record_chunk(ref, OUTCOME, now=T0) is False
    assert store.read_delivery(ref).recorded is False
    assert store.get_task(UPSERTION, "ghost") is None


# -- chunks of one task read and recorded together --------------------------------------------


def test_read_deliveries_answers_as_read_delivery_for_each_chunk(store: TaskStore) -> None:
    started(store, make_task("rds", chunk_count=3))
    store.put_chunks(UPSERTION, "rds", [[{"object_id": "a"}], [{"object_id": "b"}], [{"object_id": "c"}]])
    assert store.record_chunk(ChunkRef(UPSERTION, "rds", 1, 1), OUTCOME, now=T0)
    refs = [
        ChunkRef(UPSERTION, "rds", 1, 2),
        ChunkRef(UPSERTION, "rds", 1, 1),
        ChunkRef(UPSERTION, "rds", 1, 0),
        ChunkRef(UPSERTION, "rds", 1, 7),  # not stored
        ChunkRef(UPSERTION, "rds", 1, 0, "RETRY#0002-abc"),  # the same chunk under another source
    ]
    together = store.read_deliveries(refs)
    assert together == [store.read_delivery(ref) for ref in refs]
    assert [(d.recorded, d.items) for d in together] == [
        (False, [{"object_id": "c"}]),
        (True, [{"object_id": "b"}]),
        (False, [{"object_id": "a"}]),
        (False, None),
        (False, None),
    ]
    assert all(d.task is not None and d.task.chunks_done == 1 for d in together)
    gone = store.read_deliveries([ChunkRef(DELETION, "rds", 1, 0), ChunkRef(DELETION, "rds", 1, 1)])
    assert [(d.task, d.recorded, d.items) for d in gone] == [(None, False, None)] * 2
    with pytest.raises(ValueError, match="one task"):
        store.read_deliveries([ChunkRef(UPSERTION, "rds", 1, 0), ChunkRef(UPSERTION, "other", 1, 0)])


def test_read_deliveries_of_more_chunks_than_one_batch_get(store: TaskStore) -> None:
    """BatchGetItem takes 100 keys: 49 chunks and the task."""
    count = 120
    started(store, make_task("many", chunk_count=count))
    store.put_chunks(UPSERTION, "many", [[{"object_id": f"o{n}"}] for n in range(count)])
    read = store.read_deliveries([ChunkRef(UPSERTION, "many", 1, n) for n in range(count)])
    assert [d.items for d in read] == [[{"object_id": f"o{n}"}] for n in range(count)]


def test_record_chunks_counts_each_once(store: TaskStore) -> None:
    task = started(store, make_task("rcs", chunk_count=4))
    refs = [ChunkRef(UPSERTION, "rcs", 1, n) for n in range(4)]
    at = T0 + timedelta(minutes=1)
    assert store.record_chunks(refs[:2], [OUTCOME, ChunkOutcome(succeeded=10, superseded=4)], now=at) == [True, True]
    got = stored(store, task)
    assert (*counters(got), got.superseded, got.updated_at) == (2, 17, 3, 2, 4, at)
    # Chunk 1 again, with two new ones: chunk 1 is refused, the others are counted.
    again = store.record_chunks(refs[1:], [ChunkOutcome(succeeded=10), OUTCOME, ChunkOutcome(succeeded=1)], now=at)
    assert again == [False, True, True]
    got = stored(store, task, with_failures=True)
    assert counters(got) == (4, 25, 6, 4)
    assert [f.object_id for f in got.failures or []] == ["bad-1", "gone", "bad-2"] * 2
    assert all(d.recorded for d in store.read_deliveries(refs))
    assert store.record_chunks(refs[:2], [OUTCOME, OUTCOME], now=at) == [False, False]
    assert counters(stored(store, task)) == (4, 25, 6, 4)


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.DONE, TaskStatus.FAILED])
def test_record_chunks_of_a_task_that_does_not_count_them_records_none(store: TaskStore, status: TaskStatus) -> None:
    task = make_task("nc", chunk_count=2)
    if status is TaskStatus.PENDING:
        assert store.insert_task(task) is None
    else:
        task = started(store, task)
        assert store.transition(task, status, expect=(TaskStatus.RUNNING,), now=T0)
    refs = [ChunkRef(UPSERTION, "nc", 1, 0), ChunkRef(UPSERTION, "nc", 1, 1)]
    assert store.record_chunks(refs, [OUTCOME, OUTCOME], now=T0) == [False, False]
    assert counters(stored(store, task)) == (0, 0, 0, 0)
    assert not any(d.recorded for d in store.read_deliveries(refs))
    # Nor those of another attempt than the task's, nor of a task that is not there.
    started_task = started(store, make_task("other", chunk_count=2))
    late = [ChunkRef(UPSERTION, "other", 2, 0), ChunkRef(UPSERTION, "other", 2, 1)]
    assert store.record_chunks(late, [OUTCOME, OUTCOME], now=T0) == [False, False]
    assert counters(stored(store, started_task)) == (0, 0, 0, 0)
    ghost = [ChunkRef(UPSERTION, "ghost", 1, 0), ChunkRef(UPSERTION, "ghost", 1, 1)]
    assert store.record_chunks(ghost, [OUTCOME, OUTCOME], now=T0) == [False, False]


def test_record_chunks_of_a_canceled_task_still_counts(store: TaskStore) -> None:
    task = started(store, make_task("xc", chunk_count=2))
    assert store.transition(task, TaskStatus.CANCELED, expect=(TaskStatus.RUNNING,), now=T0)
    refs = [ChunkRef(UPSERTION, "xc", 1, 0), ChunkRef(UPSERTION, "xc", 1, 1)]
    assert store.record_chunks(refs, [OUTCOME, OUTCOME], now=T0) == [True, True]
    got = stored(store, task)
    assert (got.status, counters(got)) == (TaskStatus.CANCELED, (2, 14, 6, 4))


def test_record_chunks_refuses_what_is_not_one_group(store: TaskStore) -> None:
    started(store, make_task("g", chunk_count=2))
    one, two = ChunkRef(UPSERTION, "g", 1, 0), ChunkRef(UPSERTION, "g", 1, 1)
    with pytest.raises(ValueError, match="one task and attempt"):
        store.record_chunks([one, ChunkRef(UPSERTION, "g", 2, 1)], [OUTCOME, OUTCOME], now=T0)
    with pytest.raises(ValueError, match="each chunk once"):
        store.record_chunks([one, one], [OUTCOME, OUTCOME], now=T0)
    with pytest.raises(ValueError, match="each chunk once"):
        store.record_chunks([one, two], [OUTCOME], now=T0)
    assert not any(d.recorded for d in store.read_deliveries([one, two]))


def test_record_chunks_of_the_most_failures_each(store: TaskStore) -> None:
    """Forty chunks whose results are each as large as the results of the test above (130 KB
    stored): together 5 MB, past one transaction's 4 MB, so they take several."""
    rng = random.Random(7)
    count = 40

    def noise(length: int) -> str:
        return "".join(chr(0x4E00 + rng.randrange(4_096)) for _ in range(length))

    task = started(store, make_task("worst-many", chunk_count=count, item_count=count * CHUNK_MAX_ITEMS))
    outcomes = [
        ChunkOutcome(
            succeeded=0, failures=tuple(ItemFailure(noise(170) + "ab", noise(333)) for _ in range(CHUNK_MAX_ITEMS))
        )
        for _ in range(count)
    ]
    stored_bytes = sum(
        len(zlib.compress(json_bytes([[f.object_id, f.detail] for f in o.failures]), 1)) for o in outcomes
    )
    assert stored_bytes > 5_000_000
    refs = [ChunkRef(UPSERTION, "worst-many", 1, n) for n in range(count)]
    assert store.record_chunks(refs, outcomes, now=T0) == [True] * count
    got = stored(store, task)
    assert counters(got) == (count, 0, count * CHUNK_MAX_ITEMS, count * CHUNK_MAX_ITEMS)
    page = store.get_task(UPSERTION, "worst-many", with_failures=True, failures_offset=(count - 1) * CHUNK_MAX_ITEMS)
    assert page is not None
    assert [f.object_id for f in page.failures or []] == [f.object_id for f in outcomes[-1].failures]


def test_failures_are_those_of_the_current_attempt(store: TaskStore, request: pytest.FixtureRequest) -> None:
    task = started(store, make_task("a", chunk_count=2))
    assert stored(store, task).failures is None
    assert stored(store, task, with_failures=True).failures == []

    assert store.record_chunk(ChunkRef(UPSERTION, "a", 1, 0), OUTCOME, now=T0)
    assert store.record_chunk(
        ChunkRef(UPSERTION, "a", 1, 1), ChunkOutcome(succeeded=9, failures=(ItemFailure("b1", "old"),)), now=T0
    )
    assert stored(store, task, with_failures=True).failures == [
        ItemFailure("bad-1", "Embedding failed: text too long"),
        ItemFailure("gone", "Object not found in index"),
        ItemFailure("bad-2", "mapper_parsing_exception: ünïcödé"),
        ItemFailure("b1", "old"),
    ]

    task2 = restart(store, request, task)
    assert store.read_delivery(ChunkRef(UPSERTION, "a", 2, 0)).recorded is False
    assert stored(store, task2, with_failures=True).failures == []

    # Attempt 2 records chunk 0 again (over attempt 1's result); chunk 1 still holds attempt 1's.
    ref2 = ChunkRef(UPSERTION, "a", 2, 0)
    assert store.record_chunk(ref2, ChunkOutcome(succeeded=9, failures=(ItemFailure("c1", "new"),)), now=T0)
    assert store.read_delivery(ref2).recorded is True
    assert store.read_delivery(ChunkRef(UPSERTION, "a", 2, 1)).recorded is False
    got = stored(store, task2, with_failures=True)
    assert got.attempt == 2
    assert got.failures == [ItemFailure("c1", "new")]
    assert counters(got) == (1, 9, 1, 1)

    # A message of attempt 1 delivered late is fenced off, whichever chunk it is for.
    for chunk in (0, 1):
        assert store.record_chunk(ChunkRef(UPSERTION, "a", 1, chunk), OUTCOME, now=T0) is False
    got = stored(store, task2, with_failures=True)
    assert got.failures == [ItemFailure("c1", "new")]
    assert counters(got) == (1, 9, 1, 1)


def record_concurrently(stores: list[TaskStore], ref: ChunkRef) -> tuple[list[bool], list[BaseException]]:
    """Each store records the same chunk in a thread of its own, all released at once."""
    barrier = threading.Barrier(len(stores))
    lock = threading.Lock()
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker(own: TaskStore) -> None:
        barrier.wait()
        try:
            outcome = own.record_chunk(ref, OUTCOME, now=T0)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=worker, args=(own,)) for own in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results, errors


def test_concurrent_records_of_one_chunk_count_once(store: TaskStore, make_store: Callable[[], TaskStore]) -> None:
    threads_n = 8
    task = started(store, make_task("race", chunk_count=3))
    for chunk in range(3):
        stores = [make_store() for _ in range(threads_n)]  # boto3 resources are not thread-safe
        results, errors = record_concurrently(stores, ChunkRef(UPSERTION, "race", 1, chunk))

        assert errors == []
        assert sorted(results) == [False] * (threads_n - 1) + [True], f"chunk {chunk}"
        n = chunk + 1
        assert counters(stored(store, task)) == (n, 7 * n, 3 * n, 2 * n)


def test_items_not_succeeded_are_the_failed_and_the_unreached(store: TaskStore) -> None:
    chunks: list[list[Item]] = [
        [{"object_id": "a0"}, {"object_id": "a1"}, {"object_id": "a2"}],
        [{"object_id": "b0"}, {"object_id": "b1"}],
        [{"object_id": "c0"}],
    ]
    task = started(store, make_task("ns", chunk_count=3))
    store.put_chunks(UPSERTION, "ns", chunks)
    failures = (ItemFailure("a1", "bad"),)
    assert store.record_chunk(ChunkRef(UPSERTION, "ns", 1, 0), ChunkOutcome(succeeded=2, failures=failures), now=T0)
    # Chunk 1 recorded without failures; chunk 2 never reached (a cancel, say).
    assert store.record_chunk(ChunkRef(UPSERTION, "ns", 1, 1), ChunkOutcome(succeeded=2), now=T0)
    assert store.items_not_succeeded(stored(store, task)) == [{"object_id": "a1"}, {"object_id": "c0"}]


def _lose_chunk(store: TaskStore, request: pytest.FixtureRequest, task_id: str, sk: str) -> None:
    """A chunk gone, as DynamoDB's TTL deletes an expired one."""
    if isinstance(store, MemoryTaskStore):
        store.forget_chunks(UPSERTION, task_id, ORIGINAL_CHUNKS)
        return
    table = request.getfixturevalue("dynamodb").Table(request.getfixturevalue("chunk_table"))
    table.delete_item(Key={"pk": f"upsertion#{task_id}", "sk": sk})


def test_a_missing_chunk_is_not_stored_for_a_retry_nor_for_a_renewal(
    store: TaskStore, request: pytest.FixtureRequest
) -> None:
    task = started(store, make_task("gone", chunk_count=2))
    store.put_chunks(UPSERTION, "gone", [[{"object_id": "a"}], [{"object_id": "b"}]])
    now = datetime.now(UTC)  # expiry runs on the wall clock, as DynamoDB's TTL does
    store.renew_chunks(task, ORIGINAL_CHUNKS, 2, now)  # all there: renewed, no error
    assert len(store.items_not_succeeded(stored(store, task))) == 2
    _lose_chunk(store, request, "gone", "CHUNK#00001")
    with pytest.raises(ChunkNotStored):
        store.items_not_succeeded(stored(store, task))
    with pytest.raises(ChunkNotStored):
        store.renew_chunks(task, ORIGINAL_CHUNKS, 2, now)


def test_items_past_their_expiry_are_gone_before_ttl_deletes_them(
    store: TaskStore, request: pytest.FixtureRequest, backend: str
) -> None:
    """DynamoDB only: the in-memory store keeps no expiry."""
    if backend != "dynamodb":
        pytest.skip("the in-memory store has no TTL: forgetting a chunk is its expiry")
    task = started(store, make_task("past", chunk_count=1))
    store.put_chunks(UPSERTION, "past", [[{"object_id": "a"}]])
    table = request.getfixturevalue("dynamodb").Table(request.getfixturevalue("chunk_table"))
    item = table.get_item(Key={"pk": "upsertion#past", "sk": "CHUNK#00000"})["Item"]
    assert int(item["expires_at"]) > int(datetime.now(UTC).timestamp()) + 29 * 86400
    table.update_item(
        Key={"pk": "upsertion#past", "sk": "CHUNK#00000"},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(T0.timestamp())},
    )
    with pytest.raises(ChunkNotStored):
        store.renew_chunks(task, ORIGINAL_CHUNKS, 1, datetime.now(UTC))
    with pytest.raises(ChunkNotStored):
        store.items_not_succeeded(stored(store, task))


def test_chunks_stored_with_the_tasks_before_the_chunk_table_are_still_read_and_renewed(
    store: TaskStore, request: pytest.FixtureRequest, backend: str
) -> None:
    """DynamoDB only: a stack deployed before ChunkTable wrote chunks to the task table; its
    tasks in flight are read, restarted and reconciled from there until those chunks expire."""
    if backend != "dynamodb":
        pytest.skip("the in-memory store has one place for chunks")
    before = DynamoTaskStore(request.getfixturevalue("task_table"), resource=request.getfixturevalue("dynamodb"))
    task = started(store, make_task("old", chunk_count=3))
    before.put_chunks(UPSERTION, "old", [[{"object_id": "a"}], [{"object_id": "b"}]])
    # Chunk 2 written after the change (an import read across it): in the chunk table.
    chunk_table = request.getfixturevalue("dynamodb").Table(request.getfixturevalue("chunk_table"))
    expires_at = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
    chunk_table.put_item(Item=chunk_item(UPSERTION, "old", ORIGINAL_CHUNKS, 2, [{"object_id": "c"}], expires_at))

    ref = ChunkRef(UPSERTION, "old", 1, 1)
    assert store.read_delivery(ref).items is None  # not in the chunk table: the processor loads it
    assert store.load_chunk(ref, ORIGINAL_CHUNKS) == [{"object_id": "b"}]
    assert store.stored_chunks(task) == {0, 1, 2}
    assert store.items_not_succeeded(stored(store, task)) == [{"object_id": o} for o in "abc"]
    store.renew_chunks(task, ORIGINAL_CHUNKS, 3, datetime.now(UTC))  # across both tables
    task_table = request.getfixturevalue("dynamodb").Table(request.getfixturevalue("task_table"))
    renewed = task_table.get_item(Key={"pk": "upsertion#old", "sk": "CHUNK#00001"})["Item"]
    assert int(renewed["expires_at"]) > int(datetime.now(UTC).timestamp()) + 29 * 86400
    task_table.delete_item(Key={"pk": "upsertion#old", "sk": "CHUNK#00001"})
    with pytest.raises(ChunkNotStored):
        store.renew_chunks(task, ORIGINAL_CHUNKS, 3, datetime.now(UTC))
    with pytest.raises(ChunkNotStored):
        store.load_chunk(ref, ORIGINAL_CHUNKS)


def test_retry_chunks_live_under_their_own_source(store: TaskStore) -> None:
    store.put_chunks(UPSERTION, "rs", [[{"object_id": "orig"}]])
    store.put_chunks(UPSERTION, "rs", [[{"object_id": "retry"}]], source="RETRY#0002-abc")
    assert store.load_chunk(ChunkRef(UPSERTION, "rs", 2, 0), "RETRY#0002-abc") == [{"object_id": "retry"}]
    assert store.load_chunk(ChunkRef(UPSERTION, "rs", 2, 0), ORIGINAL_CHUNKS) == [{"object_id": "orig"}]


# -- the reconciler's view ---------------------------------------------------------------------


def test_unfinished_tasks_come_oldest_first_a_page_at_a_time(store: TaskStore) -> None:
    for n in range(5):
        assert store.insert_task(make_task(f"p{n}", created_at=T0 + timedelta(seconds=n))) is None
    started(store, make_task("running", created_at=T0 - timedelta(hours=1)))
    assert store.insert_task(make_task("other-kind", kind=DELETION)) is None
    done = started(store, make_task("done", created_at=T0 - timedelta(hours=2)))
    assert store.transition(done, TaskStatus.DONE, expect=(TaskStatus.RUNNING,), now=T0)

    first = store.unfinished_tasks(UPSERTION, TaskStatus.PENDING, None, 2)
    assert [task.task_id for _, task in first.entries] == ["p0", "p1"]
    assert first.more is True
    rest = store.unfinished_tasks(UPSERTION, TaskStatus.PENDING, first.entries[-1][0], 10)
    assert [task.task_id for _, task in rest.entries] == ["p2", "p3", "p4"]
    assert rest.more is False
    exact = store.unfinished_tasks(UPSERTION, TaskStatus.PENDING, first.entries[-1][0], 3)
    assert (len(exact.entries), exact.more) == (3, False)
    running = store.unfinished_tasks(UPSERTION, TaskStatus.RUNNING, None, 10)
    assert [(task.task_id, task.status) for _, task in running.entries] == [("running", TaskStatus.RUNNING)]
    assert [t.task_id for _, t in store.unfinished_tasks(DELETION, TaskStatus.PENDING, None, 10).entries] == [
        "other-kind"
    ]


def test_the_reconcile_cursors_are_kept_per_kind_and_status(store: TaskStore) -> None:
    assert store.reconcile_cursor(UPSERTION, TaskStatus.PENDING) is None
    store.save_reconcile_cursor(UPSERTION, TaskStatus.PENDING, "2026-03-01T12:00:00+00:00#p1")
    store.save_reconcile_cursor(DELETION, TaskStatus.RUNNING, "2026-03-01T12:00:00+00:00#d9")
    assert store.reconcile_cursor(UPSERTION, TaskStatus.PENDING) == "2026-03-01T12:00:00+00:00#p1"
    assert store.reconcile_cursor(UPSERTION, TaskStatus.RUNNING) is None
    assert store.reconcile_cursor(DELETION, TaskStatus.RUNNING) == "2026-03-01T12:00:00+00:00#d9"
    store.save_reconcile_cursor(UPSERTION, TaskStatus.PENDING, None)
    assert store.reconcile_cursor(UPSERTION, TaskStatus.PENDING) is None


def test_stored_chunks_are_those_of_the_tasks_current_source(store: TaskStore) -> None:
    task = make_task("s", chunk_count=3)
    assert store.insert_task(task) is None
    assert store.stored_chunks(task) == set()
    store.put_chunks(UPSERTION, "s", [[{"object_id": "a"}], [{"object_id": "b"}]])
    store.put_chunks(UPSERTION, "s", [[{"object_id": "r"}]], "RETRY#0002-abc")
    assert store.stored_chunks(task) == {0, 1}
    assert store.stored_chunks(replace(task, chunk_source="RETRY#0002-abc")) == {0}


def test_recorded_chunks_are_those_of_the_current_attempt(store: TaskStore, request: pytest.FixtureRequest) -> None:
    task = started(store, make_task("r", chunk_count=3))
    assert store.record_chunk(ChunkRef(UPSERTION, "r", 1, 2), OUTCOME, now=T0)
    assert store.recorded_chunks(task) == {2}
    again = restart(store, request, task)
    assert store.recorded_chunks(stored(store, again)) == set()
    assert store.record_chunk(ChunkRef(UPSERTION, "r", 2, 0), OUTCOME, now=T0)
    assert store.recorded_chunks(stored(store, again)) == {0}


def test_mark_reconciled_claims_a_resend_once(store: TaskStore) -> None:
    task = started(store, make_task("m"))
    assert stored(store, task).reconciled_at is None
    assert store.mark_reconciled(task, T0 + timedelta(minutes=20)) is True
    claimed = stored(store, task)
    assert claimed.reconciled_at == T0 + timedelta(minutes=20)
    assert claimed.dispatched is True
    assert claimed.updated_at == task.updated_at  # a resend is not progress
    # Another run that read the task before the claim is refused; one that read it after may claim.
    assert store.mark_reconciled(task, T0 + timedelta(minutes=21)) is False
    assert store.mark_reconciled(claimed, T0 + timedelta(minutes=40)) is True
    assert stored(store, task).reconciled_at == T0 + timedelta(minutes=40)


def test_mark_reconciled_is_refused_once_the_task_moved_on(store: TaskStore, request: pytest.FixtureRequest) -> None:
    task = started(store, make_task("moved"))
    assert store.transition(task, TaskStatus.CANCELED, expect=(TaskStatus.RUNNING,), now=T0)
    assert store.mark_reconciled(task, T0) is False
    other = started(store, make_task("restarted"))
    restart(store, request, other)
    assert store.mark_reconciled(other, T0) is False
    assert stored(store, other).reconciled_at is None


# -- ordering across tasks ---------------------------------------------------------------------


def test_write_versions_grow_per_model_from_above_the_base(store: TaskStore) -> None:
    a1, a2 = store.next_write_version("model-a"), store.next_write_version("model-a")
    b1 = store.next_write_version("model-b")
    assert a1 == b1 == WRITE_VERSION_BASE + 1
    assert a2 == a1 + 1


def test_write_versions_taken_at_once_are_all_different(make_store: Callable[[], TaskStore]) -> None:
    stores = [make_store() for _ in range(8)]
    taken: list[int] = []
    lock = threading.Lock()

    def take(own: TaskStore) -> None:
        for _ in range(10):
            version = own.next_write_version("contended")
            with lock:
                taken.append(version)

    threads = [threading.Thread(target=take, args=(own,)) for own in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(taken) == list(range(WRITE_VERSION_BASE + 1, WRITE_VERSION_BASE + 81))


def test_the_write_version_and_superseded_count_are_stored_with_the_task(store: TaskStore) -> None:
    task = started(store, make_task("v", write_version=WRITE_VERSION_BASE + 9))
    assert task.write_version == WRITE_VERSION_BASE + 9
    assert store.record_chunk(ChunkRef(UPSERTION, "v", 1, 0), ChunkOutcome(succeeded=5, superseded=2), now=T0)
    assert store.record_chunk(ChunkRef(UPSERTION, "v", 1, 1), ChunkOutcome(succeeded=1, superseded=1), now=T0)
    again = stored(store, task)
    assert (again.succeeded, again.superseded, again.progress.superseded) == (6, 3, 3)


# -- imports ---------------------------------------------------------------------------------


def _import_task(task_id: str) -> Task:
    return make_task(
        task_id,
        item_count=0,
        chunk_count=0,
        source=ImportSource(uri="s3://imports/p/", position=ImportStep(UPSERTION, task_id, 1).position),
    )


def test_an_import_is_listed_once_and_read_on_only_from_the_position_it_is_at(store: TaskStore) -> None:
    task = _import_task("imp")
    assert store.insert_task(task) is None
    first = ImportStep(UPSERTION, "imp", 1)
    reading = ImportStep(UPSERTION, "imp", 1, obj=0)
    objects = [SourceObject("p/a.jsonl", '"e1"', 10), SourceObject("p/b.jsonl", '"e2"', 20)]
    assert store.save_source_objects(task, objects, first.position, reading.position, first.position)
    assert not store.save_source_objects(task, objects, first.position, reading.position, first.position)  # a duplicate
    assert store.source_objects(task) == objects
    chunks: list[list[Item]] = [["a", "b"], ["c"]]
    following = ImportStep(UPSERTION, "imp", 1, obj=1, chunk=2)
    read = StepRead(reading, chunks, lines=3, objects_done=1, next=following)
    assert store.append_read(task, read, first.position)
    assert not store.append_read(task, read, first.position)  # delivered again: counted once
    last = StepRead(following, [["d"]], lines=1, objects_done=1, next=None)
    assert store.append_read(task, last, following.position)
    now = stored(store, task)
    assert (now.item_count, now.chunk_count, now.original_item_count, now.original_chunk_count) == (4, 3, 4, 3)
    assert now.source == ImportSource(
        uri="s3://imports/p/",
        objects_total=2,
        objects_read=2,
        lines_read=4,
        position="complete",
        read_from=following.position,
        read_by=following.position,
    )
    assert store.load_chunk(ChunkRef(UPSERTION, "imp", 1, 2), ORIGINAL_CHUNKS) == ["d"]


def test_an_import_ends_only_once_its_source_is_read(store: TaskStore) -> None:
    task = _import_task("imp-end")
    started(store, task)
    reading = ImportStep(UPSERTION, "imp-end", 1, obj=0)
    assert store.save_source_objects(
        task, [SourceObject("k", '"e"', 1)], task.source.position, reading.position, reading.position
    )  # type: ignore[union-attr]
    # No chunk yet and every one recorded: still not final while reading goes on.
    assert not store.transition(task, TaskStatus.DONE, expect=(TaskStatus.RUNNING,), now=T0, require_all_chunks=True)
    assert store.append_read(task, StepRead(reading, [], lines=0, objects_done=1, next=None), reading.position)
    assert store.transition(task, TaskStatus.DONE, expect=(TaskStatus.RUNNING,), now=T0, require_all_chunks=True)


def test_reading_stops_once_the_task_is_canceled(store: TaskStore) -> None:
    task = _import_task("imp-cancel")
    assert store.insert_task(task) is None
    assert store.transition(task, TaskStatus.CANCELED, expect=(TaskStatus.PENDING,), now=T0)
    reading = ImportStep(UPSERTION, "imp-cancel", 1, obj=0)
    assert not store.save_source_objects(
        task, [SourceObject("k", '"e"', 1)], task.source.position, reading.position, reading.position
    )  # type: ignore[union-attr]
    assert not store.append_read(task, StepRead(ImportStep(UPSERTION, "imp-cancel", 1), [["a"]], 1, 0, None), "x")
    assert stored(store, task).item_count == 0
