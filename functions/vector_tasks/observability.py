"""Logger, Tracer and Metrics, created once; the service name comes from the template.

`metrics` carries the metrics without dimensions of their own (TasksCreated, the reconciler's);
`work_metrics` those per task kind (README, "Metrics"), one embedded-metric-format document per
set of dimensions, published when the invocation ends (`publishes_work_metrics`).
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from vector_tasks.domain.model import ChunkOutcome, TaskKind, TaskStatus

if TYPE_CHECKING:
    from vector_tasks.domain.embedder import EmbedOutcome, TextEmbedder

# Most invocations (reads, transitions) publish no custom metric; that is expected, not news.
warnings.filterwarnings("ignore", message="No application metrics to publish")

NAMESPACE = "VectorIngestion"

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=NAMESPACE)

# The metric names, stable: dashboards and alarms (template.yaml) and the README name them.
ITEMS_SUCCEEDED = "ItemsSucceeded"
ITEMS_FAILED = "ItemsFailed"
ITEMS_SUPERSEDED = "ItemsSuperseded"  # of ItemsSucceeded: a newer accepted write was there
CHUNK_PROCESSING_TIME = "ChunkProcessingTime"
EMBEDDING_LATENCY = "EmbeddingLatency"
BULK_RETRIES = "BulkRetries"
CHUNKS_GIVEN_UP = "ChunksGivenUp"
TASKS_FINISHED = "TasksFinished"


class WorkMetrics:
    """The per-kind metrics of the worker, the dead-letter handler and the event publisher.

    Values are gathered per set of dimensions and published by `flush` as one document each, so
    a batch of chunks of both kinds costs two documents, not one per value.
    """

    def __init__(self) -> None:
        self._sets: dict[tuple[tuple[str, str], ...], EphemeralMetrics] = {}

    def _add(self, name: str, unit: MetricUnit, value: float, **dimensions: str) -> None:
        key = tuple(sorted(dimensions.items()))
        if key not in self._sets:
            # The service dimension comes from POWERTOOLS_SERVICE_NAME, as for `metrics`.
            self._sets[key] = EphemeralMetrics(namespace=NAMESPACE)
            for dimension, dimension_value in key:
                self._sets[key].add_dimension(name=dimension, value=dimension_value)
        self._sets[key].add_metric(name=name, unit=unit, value=value)

    def chunk_recorded(self, kind: TaskKind, outcome: ChunkOutcome, seconds: float) -> None:
        self._add(ITEMS_SUCCEEDED, MetricUnit.Count, outcome.succeeded, kind=kind.value)
        self._add(ITEMS_FAILED, MetricUnit.Count, len(outcome.failures), kind=kind.value)
        self._add(ITEMS_SUPERSEDED, MetricUnit.Count, outcome.superseded, kind=kind.value)
        self._add(CHUNK_PROCESSING_TIME, MetricUnit.Milliseconds, seconds * 1000, kind=kind.value)

    def chunk_given_up(self, kind: TaskKind) -> None:
        self._add(CHUNKS_GIVEN_UP, MetricUnit.Count, 1, kind=kind.value)

    def embedded(self, seconds: float) -> None:
        self._add(EMBEDDING_LATENCY, MetricUnit.Milliseconds, seconds * 1000, kind=TaskKind.UPSERTION.value)

    def bulk_retried(self, kind: TaskKind) -> None:
        self._add(BULK_RETRIES, MetricUnit.Count, 1, kind=kind.value)

    def task_finished(self, kind: TaskKind, status: TaskStatus) -> None:
        self._add(TASKS_FINISHED, MetricUnit.Count, 1, kind=kind.value, status=status.value)

    def flush(self) -> None:
        sets, self._sets = self._sets, {}
        for gathered in sets.values():
            gathered.flush_metrics()


work_metrics = WorkMetrics()

Handler = TypeVar("Handler", bound=Callable[..., Any])


def traced(handler: Handler) -> Handler:
    """Tracer's segment of the invocation, without its response: answers hold task items and
    failure details, which traces must not keep (errors are still recorded)."""
    return cast(Handler, tracer.capture_lambda_handler(handler, capture_response=False))


def publishes_work_metrics(handler: Handler) -> Handler:
    """Publish what `work_metrics` gathered when the invocation ends, however it ends."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            work_metrics.flush()

    return wrapper  # type: ignore[return-value]


class TimedEmbedder:
    """An embedder whose calls publish EmbeddingLatency (one value per provider call)."""

    def __init__(self, inner: TextEmbedder, clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self._clock = clock

    def embed(self, texts: list[str], deadline: float) -> list[EmbedOutcome]:
        started = self._clock()
        try:
            return self._inner.embed(texts, deadline)
        finally:
            work_metrics.embedded(self._clock() - started)
