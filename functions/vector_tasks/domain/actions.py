"""What the worker does with a chunk, per task kind: the one place upsert and delete differ."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vector_tasks.domain.embedder import TextEmbedder
from vector_tasks.domain.errors import TaskCannotRun, UnknownEmbeddingModel
from vector_tasks.domain.limits import EMBED_WRITE_MAX_ITEMS
from vector_tasks.domain.model import ChunkOutcome, IndexWrite, Item, ItemFailure, Task, item_object_id
from vector_tasks.domain.ports import VectorIndex
from vector_tasks.domain.registry import EmbeddingModelSpec, InputSource, ModelRegistry
from vector_tasks.domain.vectorize import vectorize


def _model_of(registry: ModelRegistry, task: Task) -> EmbeddingModelSpec:
    try:
        return registry.get(task.embedding_model_id)
    except UnknownEmbeddingModel as exc:
        raise TaskCannotRun(f"{exc.message}; it was removed after the task was created") from exc


def outcomes_by_chunk(
    chunks: Sequence[Sequence[Item]],
    attempted: Sequence[str],
    not_attempted: Sequence[ItemFailure],
    written: IndexWrite,
) -> list[ChunkOutcome]:
    """Split what one write of several chunks' items produced back into each chunk's outcome.

    `attempted`: the object ids sent to the index; `not_attempted`: the items refused before
    (not embeddable). Object ids are unique within a task (create refuses duplicates), so each
    result belongs to exactly one chunk; one chunk gives the outcome a write of it alone gives.
    """
    chunk_of = {item_object_id(item): n for n, items in enumerate(chunks) for item in items}
    sent = [0] * len(chunks)
    for object_id in attempted:
        sent[chunk_of[object_id]] += 1
    refused: list[list[ItemFailure]] = [[] for _ in chunks]
    for failure in written.failures:
        refused[chunk_of[failure.object_id]].append(failure)
    failed: list[list[ItemFailure]] = [[] for _ in chunks]
    for failure in not_attempted:
        failed[chunk_of[failure.object_id]].append(failure)
    superseded = [0] * len(chunks)
    for object_id in written.superseded:
        superseded[chunk_of[object_id]] += 1
    return [
        ChunkOutcome(
            succeeded=sent[n] - len(refused[n]), failures=tuple(failed[n] + refused[n]), superseded=superseded[n]
        )
        for n in range(len(chunks))
    ]


class UpsertChunk:
    def __init__(
        self,
        registry: ModelRegistry,
        index: VectorIndex,
        embedder_for: Callable[[EmbeddingModelSpec], TextEmbedder],
    ) -> None:
        self._registry = registry
        self._index = index
        self._embedder_for = embedder_for

    def apply(self, task: Task, chunks: Sequence[list[Item]], deadline: float) -> list[ChunkOutcome]:
        """Vectors given are written in one go; texts are embedded and written
        EMBED_WRITE_MAX_ITEMS at a time (consecutive chunks, at least one a write)."""
        spec = _model_of(self._registry, task)
        if spec.input.source is InputSource.VECTOR:
            return self._write(spec, None, task, chunks, deadline)
        embedder = self._embedder_for(spec)
        outcomes: list[ChunkOutcome] = []
        for group in _groups_of_items(chunks, EMBED_WRITE_MAX_ITEMS):
            outcomes.extend(self._write(spec, embedder, task, group, deadline))
        return outcomes

    def _write(
        self,
        spec: EmbeddingModelSpec,
        embedder: TextEmbedder | None,
        task: Task,
        chunks: Sequence[list[Item]],
        deadline: float,
    ) -> list[ChunkOutcome]:
        items = [i for chunk in chunks for i in chunk if isinstance(i, dict)]
        documents, failures = vectorize(spec, embedder, items, deadline)
        written = self._index.upsert(spec, documents, task.task_id, task.write_version, deadline)
        return outcomes_by_chunk(chunks, [d.object_id for d in documents], failures, written)


def _groups_of_items(chunks: Sequence[list[Item]], max_items: int) -> list[list[list[Item]]]:
    """Consecutive chunks in groups of at most `max_items` items (a larger chunk alone)."""
    groups: list[list[list[Item]]] = []
    size = 0
    for chunk in chunks:
        if not groups or size + len(chunk) > max_items:
            groups.append([])
            size = 0
        groups[-1].append(chunk)
        size += len(chunk)
    return groups


class DeleteChunk:
    def __init__(self, registry: ModelRegistry, index: VectorIndex) -> None:
        self._registry = registry
        self._index = index

    def apply(self, task: Task, chunks: Sequence[list[Item]], deadline: float) -> list[ChunkOutcome]:
        spec = _model_of(self._registry, task)
        object_ids = [item_object_id(i) for chunk in chunks for i in chunk]
        written = self._index.delete(spec, object_ids, task.write_version, deadline)
        return outcomes_by_chunk(chunks, object_ids, [], written)
