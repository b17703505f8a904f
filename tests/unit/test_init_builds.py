"""What a function builds during its init (wiring.build_at_init): only inside a Lambda runtime,
a failure logged and left to the first invocation; the SDK clients of the adapters it names;
and the models the worker runs itself, loaded then where they can be."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from vector_tasks import wiring
from vector_tasks.adapters import work_queue
from vector_tasks.adapters.embedders import minilm, preload
from vector_tasks.adapters.embedders.hashing import HashingEmbedder
from vector_tasks.adapters.task_store import DynamoTaskStore
from vector_tasks.adapters.vector_index import OpenSearchVectorIndex
from vector_tasks.domain.registry import default_registry


@pytest.fixture(autouse=True)
def fresh_wiring() -> Iterator[None]:
    wiring.reset()
    yield
    wiring.reset()


def test_nothing_is_built_outside_a_lambda_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    built: list[str] = []
    wiring.build_at_init(lambda: built.append("x"))
    assert built == []


def test_inside_a_lambda_runtime_each_factory_is_built_and_a_failure_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "TaskWorkerFunction")
    built: list[str] = []

    def broken() -> None:
        raise RuntimeError("EVENT_BUS_NAME must be set")

    with caplog.at_level(logging.WARNING):
        wiring.build_at_init(broken, lambda: built.append("after"))
    assert built == ["after"]
    assert "building broken at init failed" in caplog.text
    assert "EVENT_BUS_NAME must be set" in caplog.text


def test_a_minilm_model_is_loaded_where_its_extra_is_installed_and_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[int] = []
    monkeypatch.setattr(minilm.MiniLMEmbedder, "load", lambda self: loaded.append(self.dimension))
    monkeypatch.setattr(minilm, "extra_installed", lambda: False)
    preload(minilm.MiniLMEmbedder(384))
    assert loaded == []  # the standard stack: nothing to load, nothing logged

    monkeypatch.setattr(minilm, "extra_installed", lambda: True)
    preload(HashingEmbedder(8))
    assert loaded == []
    wiring.in_process_models_loaded()  # every text model of the registry: local-minilm alone loads
    assert loaded == [384]
    spec = default_registry().get("local-minilm")
    assert isinstance(wiring.worker_embedder(spec), minilm.MiniLMEmbedder)  # the instance the worker uses


def test_the_clients_of_the_adapters_named_are_built_at_init(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "TaskSubmitFunction")
    opened: list[str] = []

    class Adapter:
        def __init__(self, name: str) -> None:
            self.name = name

        def open(self) -> None:
            if self.name == "broken":
                raise ValueError("no region")
            opened.append(self.name)

    def task_store() -> Adapter:
        return Adapter("store")

    def work_queue() -> Adapter:
        return Adapter("queue")

    def broken() -> Adapter:
        return Adapter("broken")

    with caplog.at_level(logging.WARNING):
        wiring.build_at_init(wiring.clients_opened(task_store, work_queue), wiring.clients_opened(broken))
    assert opened == ["store", "queue"]
    assert "building the clients of broken at init failed" in caplog.text


def test_each_adapter_opened_builds_its_clients_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `open` builds is what the first request would have: nothing is built again."""
    tables: list[str] = []

    class Resource:
        def Table(self, name: str) -> object:
            tables.append(name)
            return object()

    store = DynamoTaskStore("tasks", resource=Resource(), chunk_table_name="chunks")
    store.open()
    store.open()
    assert tables == ["tasks", "chunks"]

    clients: list[str] = []

    def sqs_client(service: str) -> Any:
        clients.append(service)
        return object()

    monkeypatch.setattr(work_queue.boto3, "client", sqs_client)
    queue = work_queue.SqsWorkQueue("https://sqs.example/queue")
    queue.open()
    queue.open()
    assert clients == ["sqs"]

    made: list[int] = []

    def client() -> Any:
        made.append(1)
        return object()

    index = OpenSearchVectorIndex(client)
    index.open()
    index.open()
    assert made == [1]
