"""The numpy encoder's own kernels (adapters/embedders/bert.py), which need numpy only: they run
in every venv, the encoder itself where the MiniLM extra is (test_minilm.py)."""

from __future__ import annotations

import math

import numpy as np

from vector_tasks.adapters.embedders.bert import _gelu_in_place, _layer_norm


def test_gelu_is_the_exact_erf_form_to_float32_precision() -> None:
    x = np.linspace(-12.0, 12.0, 200_001, dtype=np.float32)
    expected = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.astype(np.float64)])
    actual = x.copy()
    _gelu_in_place(actual)
    assert actual.dtype == np.float32
    assert float(np.abs(actual - expected).max()) < 1e-6
    # Not the tanh approximation, which is off by up to 5e-4 around |x| = 2.
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert float(np.abs(tanh_form - expected).max()) > 1e-4


def test_gelu_works_on_a_block_of_a_larger_array_in_place() -> None:
    rows = np.arange(-6.0, 6.0, 0.5, dtype=np.float32).reshape(4, 6)
    block = rows[1:3]  # a view, as the feed-forward passes its blocks
    untouched = rows[[0, 3]].copy()
    expected = np.array([[0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in row] for row in block.tolist()])
    _gelu_in_place(block)
    assert np.allclose(rows[1:3], expected, atol=1e-6)
    assert np.array_equal(rows[[0, 3]], untouched)


def test_layer_norm_centres_scales_and_applies_weight_and_bias() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(3.0, 5.0, size=(5, 384)).astype(np.float32)
    weight, bias = rng.normal(size=384).astype(np.float32), rng.normal(size=384).astype(np.float32)
    mean = x.mean(axis=-1, keepdims=True)
    expected = (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-12) * weight + bias
    original = x.copy()
    assert np.allclose(_layer_norm(x, (weight, bias), 1e-12), expected, atol=1e-5)
    assert np.array_equal(x, original)  # the input is left as it was
