"""What a worker does with a chunk per kind (UpsertChunk, DeleteChunk), on a fake index."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pytest

from vector_tasks.domain.actions import DeleteChunk, UpsertChunk
from vector_tasks.domain.embedder import EmbedOutcome, TextEmbedder
from vector_tasks.domain.errors import TaskCannotRun
from vector_tasks.domain.model import (
    WRITE_VERSION_BASE,
    ChunkOutcome,
    IndexWrite,
    Item,
    ItemFailure,
    Task,
    TaskKind,
    TaskStatus,
)
from vector_tasks.domain.registry import EmbeddingModelSpec, ModelInput, ModelRegistry
from vector_tasks.domain.vectorize import VectorDocument

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DEADLINE = 1e12
TEXT = EmbeddingModelSpec(
    id="text-2",
    provider="local-hash",
    dimension=2,
    space_type="cosinesimil",
    input=ModelInput(source="text", field="text"),  # type: ignore[arg-type]
)
VECTOR = EmbeddingModelSpec(
    id="vector-2",
    provider="precomputed",
    dimension=2,
    space_type="l2",
    input=ModelInput(source="vector", field="v"),  # type: ignore[arg-type]
)
REGISTRY = ModelRegistry([TEXT, VECTOR])


@dataclass
class FakeIndex:
    """Fails the object ids it is told to refuse, counts those it holds newer versions of as
    superseded; remembers every call with the version it carried."""

    refuse: set[str] = field(default_factory=set)
    newer: set[str] = field(default_factory=set)
    upserts: list[tuple[str, list[VectorDocument], str, int]] = field(default_factory=list)
    deletes: list[tuple[str, list[str], int]] = field(default_factory=list)

    def upsert(
        self, spec: EmbeddingModelSpec, documents: list[VectorDocument], task_id: str, version: int, deadline: float
    ) -> IndexWrite:
        self.upserts.append((spec.id, documents, task_id, version))
        failures = [ItemFailure(d.object_id, "refused") for d in documents if d.object_id in self.refuse]
        return IndexWrite(failures, superseded=tuple(d.object_id for d in documents if d.object_id in self.newer))

    def delete(self, spec: EmbeddingModelSpec, object_ids: list[str], version: int, deadline: float) -> IndexWrite:
        self.deletes.append((spec.id, object_ids, version))
        failures = [ItemFailure(o, "Object not found in index", False) for o in object_ids if o in self.refuse]
        return IndexWrite(failures, superseded=tuple(o for o in object_ids if o in self.newer))


class FakeEmbedder:
    def embed(self, texts: list[str], deadline: float) -> list[EmbedOutcome]:
        return ["is too long" if t == "long" else np.array([1.0, float(len(t))], dtype=np.float32) for t in texts]


VERSION = WRITE_VERSION_BASE + 42


def task(model: str, kind: TaskKind = TaskKind.UPSERTION) -> Task:
    return Task(kind, "t", model, TaskStatus.RUNNING, T0, T0, 1, 3, 1, "fp", write_version=VERSION)


def test_upsert_of_text_embeds_writes_and_counts() -> None:
    index = FakeIndex(refuse={"w"})
    asked: list[str] = []

    def embedder_for(spec: EmbeddingModelSpec) -> TextEmbedder:
        asked.append(spec.id)
        return FakeEmbedder()

    items: list[Item] = [
        {"object_id": "ok", "payload": {"text": "abc"}, "item_info": {"k": 1}},
        {"object_id": "long", "payload": {"text": "long"}},
        {"object_id": "none"},
        {"object_id": "w", "payload": {"text": "x"}},
    ]
    [outcome] = UpsertChunk(REGISTRY, index, embedder_for).apply(task("text-2"), [items], DEADLINE)

    assert asked == ["text-2"]
    [(model, documents, task_id, version)] = index.upserts
    assert (model, task_id, version) == ("text-2", "t", VERSION)
    assert documents == [
        VectorDocument("ok", [1.0, 3.0], {"text": "abc"}, {"k": 1}),
        VectorDocument("w", [1.0, 1.0], {"text": "x"}, None),
    ]
    assert outcome.succeeded == 1
    assert [f.object_id for f in outcome.failures] == [
        "none",
        "long",
        "w",
    ]  # input rules first, then the embedder, then the index
    assert outcome.failures[1].detail == "payload.text is too long"
    assert outcome.errors == 3


def test_upsert_of_vectors_needs_no_embedder() -> None:
    index = FakeIndex()

    def no_embedder(spec: EmbeddingModelSpec) -> TextEmbedder:
        raise AssertionError("a precomputed model needs no embedder")

    items: list[Item] = [{"object_id": "v", "payload": {"v": [1, 2], "keep": True}}]
    [outcome] = UpsertChunk(REGISTRY, index, no_embedder).apply(task("vector-2"), [items], DEADLINE)
    assert outcome == ChunkOutcome(succeeded=1)
    assert index.upserts[0][1] == [VectorDocument("v", [1.0, 2.0], {"keep": True}, None)]


def test_delete_counts_what_the_index_removed() -> None:
    index = FakeIndex(refuse={"gone"})
    [outcome] = DeleteChunk(REGISTRY, index).apply(task("vector-2", TaskKind.DELETION), [["a", "gone", "b"]], DEADLINE)
    assert index.deletes == [("vector-2", ["a", "gone", "b"], VERSION)]
    assert outcome.succeeded == 2
    assert outcome.failures == (ItemFailure("gone", "Object not found in index", False),)
    assert outcome.errors == 0


def test_superseded_writes_count_as_succeeded_and_are_counted_apart() -> None:
    index = FakeIndex(newer={"old"})
    items: list[Item] = [{"object_id": "old", "payload": {"v": [1, 2]}}, {"object_id": "new", "payload": {"v": [3, 4]}}]
    [outcome] = UpsertChunk(REGISTRY, index, lambda spec: FakeEmbedder()).apply(task("vector-2"), [items], DEADLINE)
    assert outcome == ChunkOutcome(succeeded=2, superseded=1)
    [deleted] = DeleteChunk(REGISTRY, index).apply(task("vector-2", TaskKind.DELETION), [["old", "x"]], DEADLINE)
    assert deleted == ChunkOutcome(succeeded=2, superseded=1)


@pytest.mark.parametrize("kind", list(TaskKind))
def test_a_model_removed_since_the_task_was_created_cannot_run(kind: TaskKind) -> None:
    index = FakeIndex()
    action: UpsertChunk | DeleteChunk = (
        UpsertChunk(REGISTRY, index, lambda spec: FakeEmbedder())
        if kind is TaskKind.UPSERTION
        else DeleteChunk(REGISTRY, index)
    )
    with pytest.raises(TaskCannotRun, match="it was removed after the task was created") as refused:
        action.apply(task("gone-model", kind), [["a"]], DEADLINE)
    assert refused.value.message.startswith("Unknown embedding_model_id 'gone-model'")
    assert index.upserts == index.deletes == []


def test_chunks_applied_together_are_one_write_and_each_gets_the_outcome_it_gets_alone() -> None:
    chunks: list[list[Item]] = [
        [{"object_id": "a", "payload": {"text": "abc"}}, {"object_id": "long", "payload": {"text": "long"}}],
        [
            {"object_id": "none"},
            {"object_id": "w", "payload": {"text": "x"}},
            {"object_id": "old", "payload": {"text": "y"}},
        ],
        [{"object_id": "b", "payload": {"text": "b"}}],
    ]
    index = FakeIndex(refuse={"w"}, newer={"old"})
    together = UpsertChunk(REGISTRY, index, lambda spec: FakeEmbedder()).apply(task("text-2"), chunks, DEADLINE)
    assert len(index.upserts) == 1
    alone = [
        UpsertChunk(REGISTRY, FakeIndex(refuse={"w"}, newer={"old"}), lambda spec: FakeEmbedder()).apply(
            task("text-2"), [chunk], DEADLINE
        )[0]
        for chunk in chunks
    ]
    assert together == alone
    assert [(o.succeeded, o.errors, o.superseded) for o in together] == [(1, 1, 0), (1, 2, 1), (1, 0, 0)]

    deletes = FakeIndex(refuse={"gone"}, newer={"old"})
    deleted = DeleteChunk(REGISTRY, deletes).apply(
        task("vector-2", TaskKind.DELETION), [["a", "gone"], ["old"]], DEADLINE
    )
    assert deletes.deletes == [("vector-2", ["a", "gone", "old"], VERSION)]
    assert deleted == [
        ChunkOutcome(succeeded=1, failures=(ItemFailure("gone", "Object not found in index", False),)),
        ChunkOutcome(succeeded=1, superseded=1),
    ]


def test_texts_are_embedded_and_written_a_thousand_at_a_time_and_vectors_in_one_write() -> None:
    # 10 chunks of 200 (a full batch): texts in writes of 5 chunks, what a batch was before.
    texts = [[{"object_id": f"{c}-{n}", "payload": {"text": "abc"}} for n in range(200)] for c in range(10)]
    index = FakeIndex()
    outcomes = UpsertChunk(REGISTRY, index, lambda spec: FakeEmbedder()).apply(task("text-2"), texts, DEADLINE)
    assert [len(documents) for _, documents, _, _ in index.upserts] == [1_000, 1_000]
    assert [d.object_id for _, documents, _, _ in index.upserts for d in documents] == [
        i["object_id"] for chunk in texts for i in chunk
    ]
    assert outcomes == [ChunkOutcome(succeeded=200)] * 10

    # A chunk that alone passes the bound is a write of its own; one that fits joins the next.
    big = [[{"object_id": f"big-{n}", "payload": {"text": "x"}} for n in range(1_200)]]
    index = FakeIndex()
    UpsertChunk(REGISTRY, index, lambda spec: FakeEmbedder()).apply(
        task("text-2"), texts[:1] + big + texts[1:3], DEADLINE
    )
    assert [len(documents) for _, documents, _, _ in index.upserts] == [200, 1_200, 400]

    vectors = [[{"object_id": f"{c}-{n}", "payload": {"v": [1, 2]}} for n in range(200)] for c in range(10)]
    index = FakeIndex()
    UpsertChunk(REGISTRY, index, lambda spec: FakeEmbedder()).apply(task("vector-2"), vectors, DEADLINE)
    assert [len(documents) for _, documents, _, _ in index.upserts] == [2_000]
