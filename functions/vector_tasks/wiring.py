"""The composition root: builds services from settings on first use, never at import."""

from __future__ import annotations

from functools import cache

from vector_tasks.adapters.task_store import DynamoTaskStore
from vector_tasks.adapters.vector_index import OpenSearchVectorIndex, make_client
from vector_tasks.adapters.work_queue import SqsWorkQueue
from vector_tasks.domain.actions import DeleteChunk, UpsertChunk
from vector_tasks.domain.model import TaskKind
from vector_tasks.domain.processing import ChunkProcessor
from vector_tasks.domain.tasks import TaskService
from vector_tasks.embedding.registry import default_registry
from vector_tasks.settings import settings


@cache
def task_store() -> DynamoTaskStore:
    return DynamoTaskStore(settings().task_table_name)


@cache
def task_service() -> TaskService:
    return TaskService(task_store(), SqsWorkQueue(settings().work_queue_url), default_registry())


@cache
def chunk_processor() -> ChunkProcessor:
    s = settings()
    index = OpenSearchVectorIndex(lambda: make_client(s.opensearch_endpoint, s.opensearch_auth, s.aws_region))
    registry = default_registry()
    return ChunkProcessor(
        task_store(),
        {TaskKind.UPSERTION: UpsertChunk(registry, index), TaskKind.DELETION: DeleteChunk(registry, index)},
    )


def reset() -> None:
    """Forget built services and settings (tests that change the environment call this)."""
    for built in (task_store, task_service, chunk_processor, settings):
        built.cache_clear()
