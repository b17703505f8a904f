"""What a function builds during its init (wiring.build_at_init): only inside a Lambda runtime,
a failure logged and left to the first invocation; and the models the worker runs itself,
loaded then where they can be."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from vector_tasks import wiring
from vector_tasks.adapters.embedders import minilm, preload
from vector_tasks.adapters.embedders.hashing import HashingEmbedder
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
