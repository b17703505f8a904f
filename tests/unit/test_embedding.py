from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from vector_tasks.adapters.embedders import embedder_for
from vector_tasks.adapters.embedders.hashing import NO_WORDS, HashingEmbedder
from vector_tasks.domain.errors import UnknownEmbeddingModel
from vector_tasks.domain.registry import EmbeddingModelSpec, ModelRegistry, default_registry
from vector_tasks.domain.vectorize import vectorize

DEADLINE = time.monotonic() + 3600


def vectors(texts: list[str], dimension: int = 384) -> np.ndarray:
    outcomes = HashingEmbedder(dimension).embed(texts, DEADLINE)
    assert all(not isinstance(o, str) for o in outcomes)
    return np.stack(outcomes)  # type: ignore[arg-type]


def test_hashing_embedder_is_deterministic_normalised_and_of_the_dimension() -> None:
    first = vectors(["neural nets basics", "something else entirely"])
    again = vectors(["neural nets basics", "something else entirely"])
    assert first.shape == (2, 384)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), [1.0, 1.0], rtol=1e-6)


def test_texts_sharing_words_land_closer_than_unrelated_ones() -> None:
    found = vectors(
        ["neural networks for image recognition", "image recognition with neural networks", "tax law of 1962"]
    )
    similar = float(found[0] @ found[1])
    unrelated = float(found[0] @ found[2])
    assert similar > 0.5 > unrelated


def test_a_text_without_words_is_not_embeddable() -> None:
    assert HashingEmbedder(8).embed(["?!"], DEADLINE) == [NO_WORDS]


def test_registry_ships_the_local_and_the_cloud_models() -> None:
    registry = default_registry()
    assert registry.ids() == [
        "cohere-english-v3",
        "hf-endpoint-768",
        "local-hash-384",
        "local-minilm",
        "precomputed-384",
        "titan-v2-1024",
    ]
    model = registry.get("local-hash-384")
    assert (model.dimension, model.space_type, model.input.field) == (384, "cosinesimil", "text")
    assert model.index_name == "vectors-local-hash-384"


def test_unknown_model_names_the_deployed_ones() -> None:
    with pytest.raises(UnknownEmbeddingModel, match="deployed models: cohere-english-v3, "):
        default_registry().get("gpt")


def test_registry_rejects_a_malformed_file(tmp_path: Path) -> None:
    bad = tmp_path / "models.json"
    bad.write_text(json.dumps({"models": [{"id": "UPPER", "provider": "local-hash", "dimension": 3}]}))
    with pytest.raises(ValueError, match="models"):
        ModelRegistry.from_file(bad)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"provider": "bedrock-titan-v2", "provider_model": "amazon.titan-embed-text-v2:0", "dimension": 384},
            "Titan V2 dimensions",
        ),
        (
            {"provider": "bedrock-cohere-v3", "provider_model": "cohere.embed-english-v3", "batch_size": 97},
            "at most 96",
        ),
        ({"provider": "sagemaker-hf"}, "needs provider_model"),
        ({"provider": "local-minilm", "dimension": 768}, "384-dimensional"),
        ({"provider": "precomputed"}, "needs input source vector"),
    ],
)
def test_registry_checks_each_model_against_its_provider(changes: dict[str, object], message: str) -> None:
    base = default_registry().get("local-hash-384").model_dump()
    with pytest.raises(ValueError, match=message):
        EmbeddingModelSpec.model_validate({**base, **changes})


def test_vectorize_reads_a_nested_input_field() -> None:
    spec = (
        default_registry()
        .get("local-hash-384")
        .model_copy(
            update={"input": default_registry().get("local-hash-384").input.model_copy(update={"field": "doc.body"})}
        )
    )
    documents, failures = vectorize(
        spec,
        embedder_for(spec),
        [{"object_id": "a", "payload": {"doc": {"body": "hello there"}}}, {"object_id": "b", "payload": {"doc": "x"}}],
        DEADLINE,
    )
    assert [d.object_id for d in documents] == ["a"]
    assert [(f.object_id, f.detail) for f in failures] == [
        ("b", "payload.doc.body is missing; model 'local-hash-384' reads its input from payload.doc.body")
    ]


def test_precomputed_vector_rejects_non_finite_values() -> None:
    spec = default_registry().get("precomputed-384")
    vector = [0.1] * 383 + [float("nan")]
    documents, failures = vectorize(spec, None, [{"object_id": "n", "payload": {"vector": vector}}], DEADLINE)
    assert documents == []
    assert failures[0].detail == "payload.vector contains a value that is not a finite number"
