"""What the worker does with a chunk, per task kind: the one place upsert and delete differ."""

from __future__ import annotations

from collections.abc import Callable

from vector_tasks.domain.embedder import TextEmbedder
from vector_tasks.domain.errors import TaskCannotRun, UnknownEmbeddingModel
from vector_tasks.domain.model import ChunkOutcome, Item, Task, item_object_id
from vector_tasks.domain.ports import VectorIndex
from vector_tasks.domain.registry import EmbeddingModelSpec, InputSource, ModelRegistry
from vector_tasks.domain.vectorize import vectorize


def _model_of(registry: ModelRegistry, task: Task) -> EmbeddingModelSpec:
    try:
        return registry.get(task.embedding_model_id)
    except UnknownEmbeddingModel as exc:
        raise TaskCannotRun(f"{exc.message}; it was removed after the task was created") from exc


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

    def apply(self, task: Task, items: list[Item], deadline: float) -> ChunkOutcome:
        spec = _model_of(self._registry, task)
        embedder = None if spec.input.source is InputSource.VECTOR else self._embedder_for(spec)
        documents, failures = vectorize(spec, embedder, [i for i in items if isinstance(i, dict)], deadline)
        written = self._index.upsert(spec, documents, task.task_id, task.write_version, deadline)
        return ChunkOutcome(
            succeeded=len(documents) - len(written.failures),
            failures=tuple(failures + written.failures),
            superseded=written.superseded,
        )


class DeleteChunk:
    def __init__(self, registry: ModelRegistry, index: VectorIndex) -> None:
        self._registry = registry
        self._index = index

    def apply(self, task: Task, items: list[Item], deadline: float) -> ChunkOutcome:
        spec = _model_of(self._registry, task)
        object_ids = [item_object_id(i) for i in items]
        written = self._index.delete(spec, object_ids, task.write_version, deadline)
        return ChunkOutcome(
            succeeded=len(object_ids) - len(written.failures),
            failures=tuple(written.failures),
            superseded=written.superseded,
        )
