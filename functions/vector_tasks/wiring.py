"""The composition root: builds services from settings on first use, never at import.

Each factory imports the adapters it builds, so a function loads only what it uses: the API
functions never load numpy, opensearch-py or the embedding providers, which only the worker
needs.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from vector_tasks.settings import settings

if TYPE_CHECKING:
    from vector_tasks.adapters.task_store import DynamoTaskStore
    from vector_tasks.domain.embedder import TextEmbedder
    from vector_tasks.domain.processing import ChunkProcessor
    from vector_tasks.domain.reconcile import Reconciler
    from vector_tasks.domain.registry import EmbeddingModelSpec
    from vector_tasks.domain.tasks import TaskService
    from vector_tasks.domain.transitions import TaskTransitions


@cache
def task_store() -> DynamoTaskStore:
    from vector_tasks.adapters.task_store import DynamoTaskStore

    return DynamoTaskStore(settings().task_table_name)


@cache
def task_service() -> TaskService:
    from vector_tasks.adapters.work_queue import SqsWorkQueue
    from vector_tasks.domain.registry import default_registry
    from vector_tasks.domain.tasks import TaskService

    return TaskService(task_store(), SqsWorkQueue(settings().work_queue_url), default_registry())


@cache
def task_transitions() -> TaskTransitions:
    from vector_tasks.adapters.state_machines import StepFunctionsTransitions
    from vector_tasks.domain.transitions import TaskTransitions

    s = settings()
    if not s.restart_state_machine_arn or not s.cancel_state_machine_arn:
        raise RuntimeError("RESTART_STATE_MACHINE_ARN and CANCEL_STATE_MACHINE_ARN must be set (template.yaml)")
    return TaskTransitions(
        task_store(), StepFunctionsTransitions(s.restart_state_machine_arn, s.cancel_state_machine_arn)
    )


@cache
def reconciler() -> Reconciler:
    from vector_tasks.adapters.work_queue import SqsWorkQueue
    from vector_tasks.domain.reconcile import Reconciler

    s = settings()
    if s.reconcile_stall_after_seconds is None:
        raise RuntimeError("RECONCILE_STALL_AFTER_SECONDS must be set (template.yaml)")
    return Reconciler(task_store(), SqsWorkQueue(s.work_queue_url), timedelta(seconds=s.reconcile_stall_after_seconds))


def embedder_for(spec: EmbeddingModelSpec) -> TextEmbedder:
    """The provider that embeds with `spec` (tests replace this function to inject one)."""
    from vector_tasks.adapters.embedders import embedder_for as provider_for

    return provider_for(spec)


@cache
def chunk_processor() -> ChunkProcessor:
    from vector_tasks.adapters.vector_index import OpenSearchVectorIndex, make_client
    from vector_tasks.domain.actions import DeleteChunk, UpsertChunk
    from vector_tasks.domain.model import TaskKind
    from vector_tasks.domain.processing import ChunkProcessor
    from vector_tasks.domain.registry import default_registry

    s = settings()
    index = OpenSearchVectorIndex(lambda: make_client(s.opensearch_endpoint, s.opensearch_auth, s.aws_region))
    registry = default_registry()
    return ChunkProcessor(
        task_store(),
        {
            TaskKind.UPSERTION: UpsertChunk(registry, index, cache(embedder_for)),
            TaskKind.DELETION: DeleteChunk(registry, index),
        },
    )


def reset() -> None:
    """Forget built services and settings (tests that change the environment call this)."""
    for built in (task_store, task_service, task_transitions, chunk_processor, reconciler, settings):
        built.cache_clear()
