"""The `local-hash` provider: deterministic feature hashing, no download, no network."""

from __future__ import annotations

import hashlib
import itertools
import re

import numpy as np

from vector_tasks.domain.embedder import EmbedOutcome

_WORD = re.compile(r"\w+")
NO_WORDS = "has no words to embed"


class HashingEmbedder:
    """Feature hashing of lower-cased word unigrams and bigrams, signed, then L2-normalised.

    Deterministic across processes and machines (blake2b, not Python's salted hash), so the
    same text always gets the same vector. Texts sharing words land close under cosine.
    """

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]

    def _vector(self, text: str) -> EmbedOutcome:
        features = self._features(text)
        if not features:
            return NO_WORDS
        hashes = np.array(
            [int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little") for f in features],
            dtype=np.uint64,
        )
        columns = (hashes % np.uint64(self.dimension)).astype(np.intp)
        signs = np.where((hashes >> np.uint64(63)) == 1, -1.0, 1.0).astype(np.float32)
        row = np.zeros(self.dimension, dtype=np.float32)
        np.add.at(row, columns, signs)
        norm = float(np.linalg.norm(row))
        if norm == 0:  # every feature cancelled out
            return NO_WORDS
        return row / norm

    def embed(self, texts: list[str], deadline: float = 0.0) -> list[EmbedOutcome]:
        return [self._vector(text) for text in texts]
