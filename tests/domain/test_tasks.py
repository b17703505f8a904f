"""TaskService: create (idempotent, resumable), get and list."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.support.memory import MemoryTaskStore, MemoryWorkQueue
from vector_tasks.domain.chunking import compact_json, request_fingerprint, split_into_chunks
from vector_tasks.domain.errors import CreateInterrupted, TaskIdConflict, TaskNotFound, UnknownEmbeddingModel
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS, FAILURES_DEFAULT_LIMIT
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    WRITE_VERSION_BASE,
    ChunkOutcome,
    ChunkRef,
    Item,
    ItemFailure,
    TaskKind,
    TaskStatus,
)
from vector_tasks.domain.registry import ModelRegistry
from vector_tasks.domain.tasks import TaskService

from .conftest import MODEL

UPSERTION = TaskKind.UPSERTION


def items(n: int, prefix: str = "o") -> list[Item]:
    return [{"object_id": f"{prefix}-{i}", "payload": {"text": f"text {i}"}} for i in range(n)]


def refs(task_id: str, chunks: int, attempt: int = 1, kind: TaskKind = UPSERTION) -> list[ChunkRef]:
    return [ChunkRef(kind, task_id, attempt, n) for n in range(chunks)]


def test_create_stores_the_task_and_its_chunks_and_queues_each_chunk(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    body = items(CHUNK_MAX_ITEMS + 1)
    task, created = service.create(UPSERTION, MODEL, "t-1", body)

    assert created is True
    assert (task.task_id, task.kind, task.embedding_model_id) == ("t-1", UPSERTION, MODEL)
    assert (task.status, task.attempt, task.error) == (TaskStatus.PENDING, 1, None)
    assert (task.item_count, task.chunk_count) == (CHUNK_MAX_ITEMS + 1, 2)
    assert (task.original_item_count, task.original_chunk_count) == (CHUNK_MAX_ITEMS + 1, 2)
    assert task.fingerprint == request_fingerprint(UPSERTION, MODEL, body)
    assert task.created_at == task.updated_at
    assert task.dispatched is True
    assert task.failures == []
    assert queue.sent == refs("t-1", 2)
    expected_chunks = split_into_chunks(body)
    for n in range(2):
        assert store.load_chunk(ChunkRef(UPSERTION, "t-1", 1, n), ORIGINAL_CHUNKS) == expected_chunks[n]
    saved = store.get_task(UPSERTION, "t-1")
    assert saved is not None
    assert saved.dispatched is True
    assert saved.status is TaskStatus.PENDING
    assert saved.chunk_count == 2
    # Chunks are stored before the messages that name them are sent, and dispatched after.
    order = [c for c in store.calls if c in ("insert_task", "put_chunks", "mark_dispatched")]
    assert order == ["insert_task", "put_chunks", "mark_dispatched"]


def test_create_without_a_task_id_names_the_task(service: TaskService, queue: MemoryWorkQueue) -> None:
    task, created = service.create(TaskKind.DELETION, MODEL, None, ["a", "b"])
    assert created is True
    assert uuid.UUID(task.task_id).version == 4
    assert queue.sent == refs(task.task_id, 1, kind=TaskKind.DELETION)


def test_create_with_an_unknown_model_stores_and_queues_nothing(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    with pytest.raises(UnknownEmbeddingModel):
        service.create(UPSERTION, "nope", "t", items(1))
    assert store.get_task(UPSERTION, "t") is None
    assert queue.sent == []


def test_an_identical_retry_answers_the_stored_task_and_queues_nothing(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    first, _ = service.create(UPSERTION, MODEL, "t", items(3))
    assert store.transition(first, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=first.created_at)
    assert store.record_chunk(
        ChunkRef(UPSERTION, "t", 1, 0),
        ChunkOutcome(succeeded=2, failures=(ItemFailure("o-1", "bad"),)),
        now=first.created_at,
    )
    queue.drain()

    again, created = service.create(UPSERTION, MODEL, "t", items(3))

    assert created is False
    assert queue.sent == []  # delete the `dispatched` write and this retry re-queues everything
    assert again.status is TaskStatus.RUNNING
    assert again.created_at == first.created_at
    assert again.failures == [ItemFailure("o-1", "bad")]  # answered as info answers it
    assert (again.succeeded, again.failed) == (2, 1)


def test_a_replay_of_a_task_fingerprinted_before_v2_answers_the_stored_task(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    body = items(3)
    service.create(UPSERTION, MODEL, "legacy", body)
    legacy = hashlib.sha256(
        compact_json({"kind": "upsertion", "embedding_model_id": MODEL, "items": body}).encode()
    ).hexdigest()
    store.edit(UPSERTION, "legacy", fingerprint=legacy)
    queue.drain()
    task, created = service.create(UPSERTION, MODEL, "legacy", body)
    assert (task.task_id, created, queue.sent) == ("legacy", False, [])
    with pytest.raises(TaskIdConflict):
        service.create(UPSERTION, MODEL, "legacy", items(4))


def test_a_retry_with_another_body_is_a_conflict(service: TaskService, queue: MemoryWorkQueue) -> None:
    service.create(UPSERTION, MODEL, "t", items(3))
    queue.drain()
    with pytest.raises(TaskIdConflict, match="task_id 't' already names a task"):
        service.create(UPSERTION, MODEL, "t", items(4))
    with pytest.raises(TaskIdConflict):
        service.create(UPSERTION, MODEL, "t", items(3, prefix="x"))
    assert queue.sent == []


def test_a_create_stored_but_never_queued_is_finished_by_its_retry(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    body = items(CHUNK_MAX_ITEMS * 2 + 5)
    queue.fail_next = ConnectionError("SQS unreachable")
    with pytest.raises(CreateInterrupted) as raised:
        service.create(UPSERTION, MODEL, "t", body)
    assert raised.value.task_id == "t"
    assert isinstance(raised.value.__cause__, ConnectionError)
    stranded = store.get_task(UPSERTION, "t")
    assert stranded is not None
    assert stranded.dispatched is False
    assert queue.sent == []

    task, created = service.create(UPSERTION, MODEL, "t", body)

    assert created is False  # the task was created by the first call
    assert task.created_at == stranded.created_at
    assert task.chunk_count == 3
    assert task.dispatched is True
    assert task.failures == []
    assert queue.sent == refs("t", 3)
    saved = store.get_task(UPSERTION, "t")
    assert saved is not None
    assert saved.dispatched is True
    assert store.load_chunk(ChunkRef(UPSERTION, "t", 1, 2), ORIGINAL_CHUNKS) == body[CHUNK_MAX_ITEMS * 2 :]

    # And once dispatched, a third identical call queues nothing more.
    queue.drain()
    assert service.create(UPSERTION, MODEL, "t", body)[1] is False
    assert queue.sent == []


def test_a_retry_keeps_the_chunks_its_first_attempt_stored_whatever_the_split_gives_now(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt stored all its chunks and failed while queueing them (some may have
    gone out and been processed); the retry runs where the split draws other boundaries with the
    same count of chunks. It queues the stored chunks as they are, so no item moves between a
    chunk already counted and one that is not."""
    body = items(CHUNK_MAX_ITEMS + 50)
    queue.fail_next = ConnectionError("SQS unreachable")
    with pytest.raises(CreateInterrupted):
        service.create(UPSERTION, MODEL, "kept", body)
    first = [store.load_chunk(ChunkRef(UPSERTION, "kept", 1, n), ORIGINAL_CHUNKS) for n in range(2)]
    assert first == [body[:CHUNK_MAX_ITEMS], body[CHUNK_MAX_ITEMS:]]
    monkeypatch.setattr("vector_tasks.domain.tasks.split_into_chunks", lambda items, **_: [items[:10], items[10:]])

    task, created = service.create(UPSERTION, MODEL, "kept", body)

    assert (created, task.chunk_count, task.dispatched) == (False, 2, True)
    assert queue.sent == refs("kept", 2)
    assert [store.load_chunk(ChunkRef(UPSERTION, "kept", 1, n), ORIGINAL_CHUNKS) for n in range(2)] == first


def test_a_create_is_chunked_by_its_models_items_per_chunk(
    store: MemoryTaskStore, queue: MemoryWorkQueue, registry: ModelRegistry
) -> None:
    spec = registry.get(MODEL).model_copy(update={"id": "in-worker", "chunk_items": 100})
    registry = ModelRegistry([spec])
    service = TaskService(store, queue, registry)

    task, _ = service.create(UPSERTION, "in-worker", "small", items(250))

    assert task.chunk_count == 3
    assert queue.sent == refs("small", 3)
    assert store.load_chunk(ChunkRef(UPSERTION, "small", 1, 2), ORIGINAL_CHUNKS) == items(250)[200:]
    assert registry.chunk_items("in-worker") == 100
    assert registry.chunk_items("gone") == CHUNK_MAX_ITEMS  # a model no longer registered


def test_a_create_stored_by_a_release_with_other_chunk_bounds_is_finished_in_its_layout(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    """A create interrupted before chunks were bounded by their stored size (100 items) and
    retried after: its task item counts 2 chunks where today's bounds make 1; the retry stores
    and queues the 2 the task counts, so every item is counted once."""
    body = items(150)
    queue.fail_next = ConnectionError("SQS unreachable")
    with pytest.raises(CreateInterrupted):
        service.create(UPSERTION, MODEL, "old", body)
    store.forget_chunks(UPSERTION, "old", ORIGINAL_CHUNKS)
    store.edit(UPSERTION, "old", chunk_count=2, original_chunk_count=2)

    task, created = service.create(UPSERTION, MODEL, "old", body)

    assert (created, task.chunk_count, task.dispatched) == (False, 2, True)
    assert queue.sent == refs("old", 2)
    assert store.load_chunk(ChunkRef(UPSERTION, "old", 1, 0), ORIGINAL_CHUNKS) == body[:100]
    assert store.load_chunk(ChunkRef(UPSERTION, "old", 1, 1), ORIGINAL_CHUNKS) == body[100:]


def test_a_stored_layout_no_known_bounds_give_is_an_interrupted_create(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    queue.fail_next = ConnectionError("SQS unreachable")
    with pytest.raises(CreateInterrupted):
        service.create(UPSERTION, MODEL, "odd", items(3))
    store.edit(UPSERTION, "odd", chunk_count=3)
    with pytest.raises(CreateInterrupted) as raised:
        service.create(UPSERTION, MODEL, "odd", items(3))
    assert "counts 3 chunks; its items split into 1" in str(raised.value.__cause__)
    assert queue.sent == []


def test_get_answers_a_page_of_failures(service: TaskService, store: MemoryTaskStore) -> None:
    task, _ = service.create(UPSERTION, MODEL, "t", items(3))
    assert store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=task.created_at)
    failures = tuple(ItemFailure(f"o-{i}", f"bad {i}") for i in range(3))
    assert store.record_chunk(ChunkRef(UPSERTION, "t", 1, 0), ChunkOutcome(0, failures), now=task.created_at)

    whole = service.get(UPSERTION, "t")
    assert whole.failures == list(failures)
    assert whole.failures_next_offset is None
    page = service.get(UPSERTION, "t", failures_offset=1, failures_limit=1)
    assert page.failures == [failures[1]]
    assert page.failures_next_offset == 2


@pytest.mark.parametrize(
    ("failed", "next_offset"), [(FAILURES_DEFAULT_LIMIT, None), (FAILURES_DEFAULT_LIMIT + 1, 1000)]
)
def test_get_answers_the_first_page_by_default(
    service: TaskService, store: MemoryTaskStore, failed: int, next_offset: int | None
) -> None:
    task, _ = service.create(UPSERTION, MODEL, "t", items(1))
    assert store.transition(task, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=task.created_at)
    failures = tuple(ItemFailure(f"o-{i}", "bad") for i in range(failed))
    assert store.record_chunk(ChunkRef(UPSERTION, "t", 1, 0), ChunkOutcome(0, failures), now=task.created_at)
    got = service.get(UPSERTION, "t")
    assert got.failures == list(failures[:FAILURES_DEFAULT_LIMIT])
    assert got.failures_next_offset == next_offset


def test_get_of_an_unknown_task_is_not_found(service: TaskService) -> None:
    with pytest.raises(TaskNotFound, match="No deletion task with task_id 'nope'"):
        service.get(TaskKind.DELETION, "nope")


def test_list_passes_kind_status_and_paging_through(service: TaskService, store: MemoryTaskStore) -> None:
    for n in range(3):
        service.create(UPSERTION, MODEL, f"t-{n}", items(1))
    service.create(TaskKind.DELETION, MODEL, "d", ["x"])
    first = store.get_task(UPSERTION, "t-0")
    assert first is not None
    assert store.transition(first, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=first.created_at)

    page = service.list(UPSERTION, None, 0, 2)
    assert len(page.tasks) == 2
    assert page.next_offset == 2
    assert [t.task_id for t in service.list(UPSERTION, TaskStatus.RUNNING, 0, 10).tasks] == ["t-0"]
    assert len(service.list(UPSERTION, TaskStatus.PENDING, 1, 10).tasks) == 1
    assert [t.task_id for t in service.list(TaskKind.DELETION, None, 0, 10).tasks] == ["d"]


def test_a_create_without_task_id_that_fails_names_the_id_it_generated(
    service: TaskService, store: MemoryTaskStore, queue: MemoryWorkQueue
) -> None:
    """The client learns the id from the error and completes the create with the same request."""
    body = items(3)
    queue.fail_next = ConnectionError("SQS unreachable")
    with pytest.raises(CreateInterrupted) as raised:
        service.create(UPSERTION, MODEL, None, body)
    generated = raised.value.task_id
    assert f'send the same request again with "task_id": "{generated}"' in raised.value.message
    stranded = store.get_task(UPSERTION, generated)
    assert stranded is not None and stranded.dispatched is False

    task, created = service.create(UPSERTION, MODEL, generated, body)
    assert (task.task_id, created, task.dispatched) == (generated, False, True)
    assert queue.sent == refs(generated, 1)


def test_a_create_that_fails_before_storing_anything_names_its_id_too(
    service: TaskService, store: MemoryTaskStore
) -> None:
    store.before("insert_task", lambda: (_ for _ in ()).throw(TimeoutError("DynamoDB timed out")))
    with pytest.raises(CreateInterrupted) as raised:
        service.create(UPSERTION, MODEL, "t", items(2))
    assert raised.value.task_id == "t"
    assert store.get_task(UPSERTION, "t") is None


def test_refusals_of_a_create_are_not_interruptions(service: TaskService) -> None:
    service.create(UPSERTION, MODEL, "t", items(2))
    with pytest.raises(TaskIdConflict):
        service.create(UPSERTION, MODEL, "t", items(3))
    with pytest.raises(UnknownEmbeddingModel):
        service.create(UPSERTION, "nope", "u", items(1))


def test_each_create_is_given_a_newer_write_version_of_its_model(service: TaskService, store: MemoryTaskStore) -> None:
    first, _ = service.create(UPSERTION, MODEL, "a", items(2))
    second, _ = service.create(TaskKind.DELETION, MODEL, "b", ["o0"])
    assert WRITE_VERSION_BASE < first.write_version < second.write_version
    replayed, created = service.create(UPSERTION, MODEL, "a", items(2))
    assert (created, replayed.write_version) == (False, first.write_version)  # the stored task keeps its own
    stored = store.get_task(UPSERTION, "a")
    assert stored is not None and stored.write_version == first.write_version
