from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vector_tasks.domain.errors import UnknownEmbeddingModel
from vector_tasks.embedding.providers import HashingEmbedder, text_embedder_for
from vector_tasks.embedding.registry import ModelRegistry, default_registry
from vector_tasks.embedding.vectorize import vectorize


def test_hashing_embedder_is_deterministic_normalised_and_of_the_dimension() -> None:
    embedder = HashingEmbedder(384)
    first = embedder.embed(["neural nets basics", "something else entirely"])
    again = HashingEmbedder(384).embed(["neural nets basics", "something else entirely"])
    assert first.shape == (2, 384)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), [1.0, 1.0], rtol=1e-6)


def test_texts_sharing_words_land_closer_than_unrelated_ones() -> None:
    vectors = HashingEmbedder(384).embed(
        ["neural networks for image recognition", "image recognition with neural networks", "tax law of 1962"]
    )
    similar = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[2])
    assert similar > 0.5 > unrelated


def test_a_text_without_words_embeds_to_zero() -> None:
    assert not HashingEmbedder(8).embed(["?!"]).any()


def test_registry_ships_the_two_local_models() -> None:
    registry = default_registry()
    assert registry.ids() == ["local-hash-384", "precomputed-384"]
    model = registry.get("local-hash-384")
    assert (model.dimension, model.space_type, model.input.field) == (384, "cosinesimil", "text")
    assert model.index_name == "vectors-local-hash-384"


def test_unknown_model_names_the_deployed_ones() -> None:
    with pytest.raises(UnknownEmbeddingModel, match="deployed models: local-hash-384, precomputed-384"):
        default_registry().get("gpt")


def test_registry_rejects_a_malformed_file(tmp_path: Path) -> None:
    bad = tmp_path / "models.json"
    bad.write_text(json.dumps({"models": [{"id": "UPPER", "provider": "local-hash", "dimension": 3}]}))
    with pytest.raises(ValueError, match="models"):
        ModelRegistry.from_file(bad)


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
        text_embedder_for(spec),
        [{"object_id": "a", "payload": {"doc": {"body": "hello there"}}}, {"object_id": "b", "payload": {"doc": "x"}}],
    )
    assert [d.object_id for d in documents] == ["a"]
    assert [(f.object_id, f.detail) for f in failures] == [
        ("b", "payload.doc.body is missing; model 'local-hash-384' reads its input from payload.doc.body")
    ]


def test_precomputed_vector_rejects_non_finite_values() -> None:
    spec = default_registry().get("precomputed-384")
    vector = [0.1] * 383 + [float("nan")]
    documents, failures = vectorize(spec, None, [{"object_id": "n", "payload": {"vector": vector}}])
    assert documents == []
    assert failures[0].detail == "payload.vector contains a value that is not a finite number"
