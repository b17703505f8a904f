"""A BERT sentence encoder in numpy: what sentence-transformers computes for a model made of a
BERT transformer, mean pooling and normalisation (all-MiniLM-L6-v2), without torch.

Why not torch: importing torch and sentence-transformers and loading the model took 4.5 CPU s
of every worker environment's init here, and a new environment starts when every started one
is busy, inside a task; this loads in 0.15 s. torch with sentence-transformers is also about
1.5 GB, past Lambda's 250 MB for a function and its layers; numpy, tokenizers, safetensors
and the model's 90 MB fit. On one core it embeds as fast as torch did (97 against 98 texts/s).

The vectors match sentence-transformers' to 2e-7 (tests/unit/test_minilm.py compares them
with vectors it computed). GELU's erf is Abramowitz and Stegun's 7.1.26, exact to 1.5e-7,
since numpy has no erf; the feed-forward runs in blocks of rows that stay in the cache.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

# Rows of tokens per feed-forward block: its 1,536-wide activations (0.8 MB) stay in L2.
_FFN_ROWS = 128
_SQRT_HALF = 1 / math.sqrt(2)
# What the encoder implements; a model directory that says otherwise is refused when loaded.
_SUPPORTED = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}


class _Layer(NamedTuple):
    qkv: np.ndarray  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_bias: np.ndarray
    attention_out: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    intermediate: np.ndarray
    intermediate_bias: np.ndarray
    output: np.ndarray
    output_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


def _gelu_in_place(x: np.ndarray) -> None:
    """x * Phi(x) = (x + |x| erf(|x| / sqrt 2)) / 2, exact GELU as BERT's "gelu" is."""
    a = np.abs(x)
    u = a * _SQRT_HALF
    t = u * 0.3275911
    t += 1.0
    np.divide(1.0, t, out=t)
    np.multiply(u, u, out=u)
    np.negative(u, out=u)
    np.exp(u, out=u)
    # 1 - erf(u) = t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-u^2), Horner's rule, in place.
    p = t * 1.061405429
    p -= 1.453152027
    p *= t
    p += 1.421413741
    p *= t
    p -= 0.284496736
    p *= t
    p += 0.254829592
    p *= t
    p *= u
    np.subtract(1.0, p, out=p)
    p *= a
    p += x
    p *= 0.5
    x[...] = p


def _layer_norm(x: np.ndarray, norm: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    centred: np.ndarray = x - x.mean(axis=-1, keepdims=True)
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    centred /= np.sqrt(variance + eps)
    centred *= norm[0]
    centred += norm[1]
    return centred


class BertSentenceEncoder:
    """Unit-length mean-pooled vectors of texts, batch by batch, texts sorted by length so
    that a batch pads little (as sentence-transformers does). Not safe to share across threads:
    the tokenizer is not."""

    def __init__(self, directory: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = _json(directory / "config.json")
        for key, value in _SUPPORTED.items():
            if config.get(key, value) != value:
                raise ValueError(f"{directory}: {key} is {config.get(key)!r}, the encoder supports {value!r}")
        _check_modules(directory)
        self.dimension = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        max_tokens = int(_json(directory / "sentence_bert_config.json")["max_seq_length"])

        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()  # the file pads every text to 128; a batch pads to its longest
        self.tokenizer.enable_truncation(max_tokens)  # the model's limit, special tokens included

        weights = load_file(str(directory / "model.safetensors"))
        self.words = weights["embeddings.word_embeddings.weight"]
        self.positions = weights["embeddings.position_embeddings.weight"][:max_tokens]
        self.token_type = weights["embeddings.token_type_embeddings.weight"][0]  # one segment
        self.embedding_norm = _norm(weights, "embeddings.LayerNorm")
        self.layers = [_layer(weights, f"encoder.layer.{i}.") for i in range(int(config["num_hidden_layers"]))]

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """(len(texts), dimension) float32, row i the vector of texts[i]."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in rows])
            length = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for r, encoding in enumerate(encodings):
                ids[r, : len(encoding.ids)] = encoding.ids
                mask[r, : len(encoding.ids)] = 1.0
            out[rows] = self._forward(ids, mask)
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        hidden, heads = self.dimension, self.heads
        x = self.words[ids] + self.positions[:length] + self.token_type
        x = _layer_norm(x, self.embedding_norm, self.eps).reshape(batch * length, hidden)
        # Padding gets the lowest score, so no token attends to it (transformers adds finfo.min).
        padding = ((mask - 1.0) * np.finfo(np.float32).max)[:, None, None, :]
        scale = 1 / math.sqrt(hidden // heads)
        for layer in self.layers:
            qkv = x @ layer.qkv
            qkv += layer.qkv_bias
            q, k, v = qkv.reshape(batch, length, 3, heads, hidden // heads).transpose(2, 0, 3, 1, 4)
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += padding
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
            attended = context @ layer.attention_out
            attended += layer.attention_out_bias
            attended += x
            x = _layer_norm(attended, layer.attention_norm, self.eps)
            x = _layer_norm(self._feed_forward(x, layer), layer.output_norm, self.eps)
        tokens = x.reshape(batch, length, hidden) * mask[:, :, None]
        pooled = tokens.sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        unit: np.ndarray = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return unit

    @staticmethod
    def _feed_forward(x: np.ndarray, layer: _Layer) -> np.ndarray:
        """x + output(gelu(intermediate(x))), block by block of rows."""
        out = np.empty_like(x)
        for start in range(0, x.shape[0], _FFN_ROWS):
            block = x[start : start + _FFN_ROWS]
            inner = block @ layer.intermediate
            inner += layer.intermediate_bias
            _gelu_in_place(inner)
            result = inner @ layer.output
            result += layer.output_bias
            result += block
            out[start : start + _FFN_ROWS] = result
        return out


def _json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


def _check_modules(directory: Path) -> None:
    """A transformer, mean pooling and normalisation, in that order: what `encode` computes."""
    kinds = [module["type"].rsplit(".", 1)[-1] for module in json.loads((directory / "modules.json").read_text())]
    pooling = _json(directory / "1_Pooling" / "config.json")
    modes = sorted(key for key, value in pooling.items() if key.startswith("pooling_mode") and value)
    if kinds != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"{directory}: modules {kinds} with pooling {modes}; the encoder computes mean, normalised")


def _norm(weights: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    return weights[f"{prefix}.weight"], weights[f"{prefix}.bias"]


def _layer(weights: dict[str, np.ndarray], prefix: str) -> _Layer:
    def w(name: str) -> np.ndarray:
        return weights[prefix + name]

    # Weights are stored (out, in); transposed once here so every product is x @ W.
    def t(name: str) -> np.ndarray:
        return np.ascontiguousarray(w(name).T)

    attention = "attention.self."
    return _Layer(
        qkv=np.ascontiguousarray(np.concatenate([w(f"{attention}{n}.weight") for n in ("query", "key", "value")]).T),
        qkv_bias=np.concatenate([w(f"{attention}{n}.bias") for n in ("query", "key", "value")]),
        attention_out=t("attention.output.dense.weight"),
        attention_out_bias=w("attention.output.dense.bias"),
        attention_norm=_norm(weights, f"{prefix}attention.output.LayerNorm"),
        intermediate=t("intermediate.dense.weight"),
        intermediate_bias=w("intermediate.dense.bias"),
        output=t("output.dense.weight"),
        output_bias=w("output.dense.bias"),
        output_norm=_norm(weights, f"{prefix}output.LayerNorm"),
    )
