"""Text embedders, one per `provider` of a registered model."""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vector_tasks.embedding.registry import EmbeddingModelSpec

_WORD = re.compile(r"\w+")


class TextEmbedder(Protocol):
    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One row per text, each of the model's dimension."""
        ...


class HashingEmbedder:
    """Feature hashing of lower-cased word unigrams and bigrams, signed, then L2-normalised.

    Deterministic across processes and machines (blake2b, not Python's salted hash), so the
    same text always gets the same vector. Texts sharing words land close under cosine.
    A text with no word characters gives a zero row; callers treat that as not embeddable.
    """

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            features = self._features(text)
            if not features:
                continue
            hashes = np.array(
                [int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little") for f in features],
                dtype=np.uint64,
            )
            columns = (hashes % np.uint64(self.dimension)).astype(np.intp)
            signs = np.where((hashes >> np.uint64(63)) == 1, -1.0, 1.0).astype(np.float32)
            np.add.at(out[row], columns, signs)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def text_embedder_for(spec: EmbeddingModelSpec) -> TextEmbedder:
    if spec.provider == "local-hash":
        return HashingEmbedder(spec.dimension)
    raise ValueError(f"model '{spec.id}' (provider {spec.provider}) does not embed text")
