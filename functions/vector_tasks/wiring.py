"""The composition root: builds services from settings on first use, never at import.

Each factory imports the adapters it builds, so a function loads only what it uses: the API
functions never load numpy, opensearch-py or the embedding providers, which only the worker
needs. Inside a Lambda runtime a handler module builds its services while the environment
initialises (`build_at_init`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Protocol

from vector_tasks.settings import settings

if TYPE_CHECKING:
    from vector_tasks.adapters.completion_events import EventBridgeCompletionEvents
    from vector_tasks.adapters.task_codec import Retention
    from vector_tasks.adapters.task_store import DynamoTaskStore
    from vector_tasks.adapters.vector_index import OpenSearchVectorIndex
    from vector_tasks.adapters.work_queue import SqsImportQueue, SqsWorkQueue
    from vector_tasks.domain.embedder import TextEmbedder
    from vector_tasks.domain.imports import ImportSplitter
    from vector_tasks.domain.processing import ChunkProcessor
    from vector_tasks.domain.reconcile import Reconciler
    from vector_tasks.domain.registry import EmbeddingModelSpec
    from vector_tasks.domain.tasks import TaskService
    from vector_tasks.domain.transitions import TaskTransitions


def retention() -> Retention:
    from vector_tasks.adapters.task_codec import Retention

    s = settings()
    return Retention(items=timedelta(days=s.item_retention_days), tasks=timedelta(days=s.task_retention_days))


@cache
def task_store() -> DynamoTaskStore:
    from vector_tasks.adapters.task_store import DynamoTaskStore

    s = settings()
    return DynamoTaskStore(s.task_table_name, retention=retention(), chunk_table_name=s.chunk_table_name)


@cache
def work_queue() -> SqsWorkQueue:
    from vector_tasks.adapters.work_queue import SqsWorkQueue

    return SqsWorkQueue(settings().work_queue_url)


def import_queue() -> SqsImportQueue | None:
    from vector_tasks.adapters.work_queue import SqsImportQueue

    url = settings().import_queue_url
    return SqsImportQueue(url) if url else None


@cache
def task_service() -> TaskService:
    from vector_tasks.domain.registry import default_registry
    from vector_tasks.domain.tasks import TaskService

    s = settings()
    return TaskService(task_store(), work_queue(), default_registry(), import_queue(), s.import_bucket_names)


@cache
def import_splitter() -> ImportSplitter:
    from vector_tasks.adapters.object_store import S3ObjectStore
    from vector_tasks.domain.imports import ImportSplitter
    from vector_tasks.domain.registry import default_registry
    from vector_tasks.models.import_lines import parse_line

    steps = import_queue()
    if steps is None:
        raise RuntimeError("IMPORT_QUEUE_URL must be set (template.yaml)")
    return ImportSplitter(
        task_store(),
        S3ObjectStore(),
        steps,
        work_queue(),
        parse_line,
        chunk_items=default_registry().chunk_items,
    )


@cache
def task_transitions() -> TaskTransitions:
    from vector_tasks.adapters.object_store import S3ObjectStore
    from vector_tasks.adapters.state_machines import StepFunctionsTransitions
    from vector_tasks.domain.registry import default_registry
    from vector_tasks.domain.transitions import TaskTransitions

    s = settings()
    if not s.restart_state_machine_arn or not s.cancel_state_machine_arn:
        raise RuntimeError("RESTART_STATE_MACHINE_ARN and CANCEL_STATE_MACHINE_ARN must be set (template.yaml)")
    runner = StepFunctionsTransitions(s.restart_state_machine_arn, s.cancel_state_machine_arn, retention=retention())
    return TaskTransitions(task_store(), runner, S3ObjectStore(), chunk_items=default_registry().chunk_items)


@cache
def reconciler() -> Reconciler:
    from vector_tasks.domain.reconcile import Reconciler

    s = settings()
    if s.reconcile_stall_after_seconds is None:
        raise RuntimeError("RECONCILE_STALL_AFTER_SECONDS must be set (template.yaml)")
    return Reconciler(
        task_store(),
        work_queue(),
        timedelta(seconds=s.reconcile_stall_after_seconds),
        imports=import_queue(),
    )


@cache
def completion_events() -> EventBridgeCompletionEvents:
    from vector_tasks.adapters.completion_events import EventBridgeCompletionEvents

    s = settings()
    if not s.event_bus_name:
        raise RuntimeError("EVENT_BUS_NAME must be set (template.yaml)")
    return EventBridgeCompletionEvents(s.event_bus_name)


def embedder_for(spec: EmbeddingModelSpec) -> TextEmbedder:
    """The provider that embeds with `spec` (tests replace this function to inject one)."""
    from vector_tasks.adapters.embedders import embedder_for as provider_for

    return provider_for(spec)


@cache
def worker_embedder(spec: EmbeddingModelSpec) -> TextEmbedder:
    """The worker's provider for `spec` (`embedder_for`'s, looked up when first called, so a
    test's replacement counts): one per process, so an in-process model loads once."""
    return embedder_for(spec)


def timed_embedder_for(spec: EmbeddingModelSpec) -> TextEmbedder:
    """The worker's provider for `spec`, timed."""
    from vector_tasks.observability import TimedEmbedder

    return TimedEmbedder(worker_embedder(spec))


def in_process_models_loaded() -> None:
    """Load the models the worker runs itself (local-minilm, where its extra is installed):
    at init, so that no environment's first batch waits for the model (0.15 s here; 4 to 8 s
    when it was torch's) while the others embed."""
    from vector_tasks.adapters.embedders import preload
    from vector_tasks.domain.registry import InputSource, default_registry

    registry = default_registry()
    for model_id in registry.ids():
        spec = registry.get(model_id)
        if spec.input.source is InputSource.TEXT:
            preload(worker_embedder(spec))


@cache
def vector_index() -> OpenSearchVectorIndex:
    from vector_tasks.adapters.vector_index import OpenSearchVectorIndex, make_client
    from vector_tasks.observability import work_metrics

    s = settings()
    return OpenSearchVectorIndex(
        lambda: make_client(s.opensearch_endpoint, s.opensearch_auth, s.aws_region),
        on_bulk_retry=work_metrics.bulk_retried,
    )


@cache
def chunk_processor() -> ChunkProcessor:
    from vector_tasks.domain.actions import DeleteChunk, UpsertChunk
    from vector_tasks.domain.model import TaskKind
    from vector_tasks.domain.processing import ChunkProcessor
    from vector_tasks.domain.registry import default_registry
    from vector_tasks.observability import work_metrics

    index = vector_index()
    registry = default_registry()
    return ChunkProcessor(
        task_store(),
        {
            TaskKind.UPSERTION: UpsertChunk(registry, index, cache(timed_embedder_for)),
            TaskKind.DELETION: DeleteChunk(registry, index),
        },
        metrics=work_metrics,
    )


class _Opens(Protocol):
    def open(self) -> None: ...


def clients_opened(*adapters: Callable[[], _Opens]) -> Callable[[], None]:
    """For `build_at_init`: the SDK clients of these adapters built during init. The adapters
    build them on first use, which was the first invocation's cost (60 ms of a create's first
    POST on the local stack, for the DynamoDB resource and the SQS client)."""

    def build() -> None:
        for adapter in adapters:
            adapter().open()

    build.__name__ = f"the clients of {', '.join(a.__name__ for a in adapters)}"
    return build


def build_at_init(*factories: Callable[[], object]) -> None:
    """Build what a function's invocations use during its init, as Lambda advises (SDK clients
    and imports outside the handler; the adapters' clients with `clients_opened`): the first
    invocation then costs nearly what the others do. On the local stack the worker's took
    0.25 s more before, the submit function's 0.13 s; with the services but not their clients
    built, a create's first POST of 1,000 vectors still took 0.44 s against 0.22, and 0.33 s
    with them (the rest is the process's first large allocations).

    Only inside a Lambda runtime (AWS_LAMBDA_FUNCTION_NAME: Lambda, `sam local invoke`, the
    local stack's containers); imported anywhere else (tests, tools) nothing is built. A
    failure is logged, not raised: the first invocation builds again and fails as it would
    have, with the function's error answer.
    """
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    for factory in factories:
        try:
            factory()
        except Exception:
            logging.getLogger(__name__).warning("building %s at init failed", factory.__name__, exc_info=True)


def reset() -> None:
    """Forget built services and settings (tests that change the environment call this)."""
    for built in (
        task_store,
        work_queue,
        vector_index,
        task_service,
        task_transitions,
        chunk_processor,
        worker_embedder,
        reconciler,
        completion_events,
        import_splitter,
        settings,
    ):
        built.cache_clear()
