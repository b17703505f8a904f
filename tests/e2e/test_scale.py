"""A 10,000-item task of about 6 MB: accepted, chunked, every item indexed. Prints the time taken."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.http import wait_for
from tests.support.local_stack import RunningStack

MODEL = "local-hash-384"


@pytest.mark.slow
def test_ten_thousand_items_reach_done_with_every_item_indexed(local_stack: RunningStack) -> None:
    words = ["vector", "search", "ingestion", "pipeline", "embedding", "chunk", "index", "shard", "replica", "query"]
    items = [
        {
            "object_id": f"scale-{i:05d}",
            "payload": {"text": " ".join(words[(i + k) % len(words)] for k in range(60)), "n": i},
            "item_info": {"batch": "scale", "i": i},
        }
        for i in range(10_000)
    ]
    task_id = local_stack.task_id("scale-10k")
    body = {"embedding_model_id": MODEL, "task_id": task_id, "items": items}
    size = len(json.dumps(body).encode())
    assert 5_500_000 < size < 6 * 1024 * 1024, size

    started = time.monotonic()
    status, task = local_stack.api.call("POST", "/internal/upsertion-tasks/run", body)
    accepted = time.monotonic() - started
    assert status == 202, task

    def done() -> dict[str, object] | None:
        current = local_stack.api.get(f"/internal/upsertion-tasks/info?task_id={task_id}")
        return current if current["status"] != "pending" and current["status"] != "running" else None

    final = wait_for(done, timeout=900, interval=1)
    elapsed = time.monotonic() - started
    assert final["status"] == "done"
    assert final["progress"] == {"total": 10_000, "succeeded": 10_000, "failed": 0, "pending": 0, "superseded": 0}
    local_stack.opensearch.call("POST", f"/vectors-{MODEL}/_refresh")
    count = local_stack.opensearch.get(f"/vectors-{MODEL}/_count?q=task_id:{task_id}")["count"]
    assert count == 10_000
    print(
        f"\n[scale] 10,000 items, {size / 1e6:.2f} MB: accepted in {accepted:.2f} s, "
        f"done in {elapsed:.1f} s ({10_000 / elapsed:.0f} items/s)"
    )
