"""local-minilm end to end where its extra is installed (`make test` runs this file from
.venv-minilm): texts upserted over HTTP are embedded by the worker's all-MiniLM-L6-v2, and the
vectors in the index find each paraphrase first. osmem has no k-NN query, so the test ranks the
stored vectors itself."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from tests.support.http import wait_for
from tests.support.local_stack import RunningStack
from vector_tasks.adapters.embedders.minilm import MiniLMEmbedder, extra_installed

pytestmark = pytest.mark.skipif(not extra_installed(), reason="MiniLM extra not installed: make minilm")

MODEL, INDEX = "local-minilm", "vectors-local-minilm"
DOCUMENTS = {
    "password": "Steps to change a forgotten password",
    "pizza": "The best pizza places in Naples",
    "train": "The night train to Vienna leaves before dawn",
    "invoice": "Please pay the quarterly invoice by Friday",
}
QUERIES = {
    "password": "how do I reset my password",
    "pizza": "where to eat pizza in naples",
    "train": "overnight rail connection to Vienna",
    "invoice": "the bill for this quarter is due",
}


def test_texts_embedded_by_the_worker_are_found_by_meaning(local_stack: RunningStack) -> None:
    task_id = local_stack.task_id("minilm-search")
    items = [{"object_id": key, "payload": {"text": text}} for key, text in DOCUMENTS.items()]
    status, answer = local_stack.api.call(
        "POST", "/internal/upsertion-tasks/run", {"embedding_model_id": MODEL, "task_id": task_id, "items": items}
    )
    assert status == 202, answer

    def final() -> dict[str, Any] | None:
        task: dict[str, Any] = local_stack.api.get(f"/internal/upsertion-tasks/info?task_id={task_id}")
        return task if task["status"] in ("done", "failed", "canceled") else None

    task = wait_for(final, timeout=120)
    assert (task["status"], task["progress"]["succeeded"]) == ("done", len(DOCUMENTS)), task

    local_stack.opensearch.call("POST", f"/{INDEX}/_refresh")
    body = {"size": len(DOCUMENTS), "_source": ["embedding"], "query": {"ids": {"values": list(DOCUMENTS)}}}
    status, found = local_stack.opensearch.call("POST", f"/{INDEX}/_search", body)
    assert status == 200, found
    stored = {hit["_id"]: np.array(hit["_source"]["embedding"], dtype=np.float32) for hit in found["hits"]["hits"]}
    assert sorted(stored) == sorted(DOCUMENTS)

    embedder = MiniLMEmbedder(384)
    deadline = time.monotonic() + 60
    for key, text in DOCUMENTS.items():  # what the worker stored is the model's vector of the text
        assert np.allclose(stored[key], embedder.embed([text], deadline)[0], atol=1e-5), key
    for expected, query in QUERIES.items():
        vector = embedder.embed([query], deadline)[0]
        assert not isinstance(vector, str)
        nearest = max(stored, key=lambda doc: float(stored[doc] @ vector))
        assert nearest == expected, (query, {doc: float(v @ vector) for doc, v in stored.items()})
