"""The metrics the functions publish, as CloudWatch receives them: embedded metric format
(EMF) documents on stdout, read here with metrics enabled (the local stack disables them)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from tests.support.in_process import InProcessStack
from vector_tasks import observability
from vector_tasks.domain.model import ChunkOutcome, ItemFailure, TaskKind

MODEL = "local-hash-384"


def published(output: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[float]]:
    """(metric name, its dimensions) -> every value, from the EMF documents in `output`."""
    values: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = defaultdict(list)
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == observability.NAMESPACE
        (dimension_names,) = directive["Dimensions"]
        dimensions = tuple(sorted((name, document[name]) for name in dimension_names))
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            values[(metric["Name"], dimensions)].extend(value if isinstance(value, list) else [value])
    return values


def kind(name: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"kind": name, "service": "vector-ingestion", **extra}.items()))


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def test_the_worker_the_dead_letter_handler_and_the_publisher_publish_per_kind(
    stack: InProcessStack, metrics_on: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [{"object_id": f"m{i}", "payload": {"text": "words"}} for i in range(3)] + [{"object_id": "no-payload"}]
    body: dict[str, Any] = {"embedding_model_id": MODEL, "task_id": "m1", "items": items}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    deletion = {"embedding_model_id": MODEL, "task_id": "m2", "object_ids": ["m0", "never-there"]}
    stack.drain()
    assert stack.request("POST", "/internal/deletion-tasks/run", body=deletion)[0] == 202
    stack.drain()
    values = published(capsys.readouterr().out)

    assert values[(observability.ITEMS_SUCCEEDED, kind("upsertion"))] == [3]
    assert values[(observability.ITEMS_FAILED, kind("upsertion"))] == [1]
    assert values[(observability.ITEMS_SUPERSEDED, kind("upsertion"))] == [0]  # no newer write was there
    assert values[(observability.ITEMS_SUCCEEDED, kind("deletion"))] == [1]
    assert values[(observability.ITEMS_FAILED, kind("deletion"))] == [1]  # listed as not found
    assert len(values[(observability.CHUNK_PROCESSING_TIME, kind("upsertion"))]) == 1
    assert len(values[(observability.EMBEDDING_LATENCY, kind("upsertion"))]) == 1
    assert values[(observability.TASKS_FINISHED, kind("upsertion", status="done"))] == [1]
    assert values[(observability.TASKS_FINISHED, kind("deletion", status="done"))] == [1]
    assert all(v >= 0 for v in values[(observability.CHUNK_PROCESSING_TIME, kind("upsertion"))])

    # A chunk the worker never gets through: given up by the dead-letter handler.
    monkeypatch.setenv("OPENSEARCH_ENDPOINT", "http://127.0.0.1:9")
    from vector_tasks import wiring

    wiring.reset()
    body = {"embedding_model_id": MODEL, "task_id": "m3", "items": [{"object_id": "z", "payload": {"text": "t"}}]}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    stack.drain()
    values = published(capsys.readouterr().out)
    assert values[(observability.CHUNKS_GIVEN_UP, kind("upsertion"))] == [1]
    assert values[(observability.ITEMS_FAILED, kind("upsertion"))] == [1]
    assert values[(observability.TASKS_FINISHED, kind("upsertion", status="failed"))] == [1]


def test_a_duplicate_delivery_counts_nothing_twice(
    stack: InProcessStack, metrics_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"embedding_model_id": MODEL, "task_id": "m4", "items": [{"object_id": "a", "payload": {"text": "t"}}]}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    stack.drain()
    stack.send_chunk_message({"kind": "upsertion", "task_id": "m4", "attempt": 1, "chunk": 0})
    stack.drain()
    values = published(capsys.readouterr().out)
    assert values[(observability.ITEMS_SUCCEEDED, kind("upsertion"))] == [1]


def test_superseded_items_are_published_with_the_chunk(
    metrics_on: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "vector-ingestion")
    work = observability.WorkMetrics()
    outcome = ChunkOutcome(succeeded=5, failures=(ItemFailure("x", "rejected"),), superseded=2)
    work.chunk_recorded(TaskKind.UPSERTION, outcome, 0.25)
    work.flush()
    values = published(capsys.readouterr().out)
    assert values[(observability.ITEMS_SUCCEEDED, kind("upsertion"))] == [5]
    assert values[(observability.ITEMS_SUPERSEDED, kind("upsertion"))] == [2]
    assert values[(observability.ITEMS_FAILED, kind("upsertion"))] == [1]
    assert values[(observability.CHUNK_PROCESSING_TIME, kind("upsertion"))] == [250]
