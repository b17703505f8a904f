"""OpenSearch answering 429 or 5xx: retried with backoff, then per-item failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fault_proxy import FaultProxy
from tests.support.in_process import InProcessStack

MODEL = "local-hash-384"


@pytest.fixture
def proxy(stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    with FaultProxy(stack.environment["OPENSEARCH_ENDPOINT"]) as running:
        monkeypatch.setenv("OPENSEARCH_ENDPOINT", running.url)
        yield running


def run(stack: InProcessStack, task_id: str, n: int = 10) -> dict[str, Any]:
    items = [{"object_id": f"{task_id}-{i}", "payload": {"text": f"words {i}"}} for i in range(n)]
    stack.request(
        "POST", "/internal/upsertion-tasks/run", body={"embedding_model_id": MODEL, "task_id": task_id, "items": items}
    )
    stack.drain()
    status, task = stack.request("GET", "/internal/upsertion-tasks/info", f"task_id={task_id}")
    assert status == 200
    return task


def test_transient_5xx_and_429_answers_are_retried_until_they_pass(stack: InProcessStack, proxy: FaultProxy) -> None:
    proxy.faults = [("status", 503), ("status", 429), ("items", 429)]
    task = run(stack, "flaky")
    assert task["status"] == "done"
    assert task["progress"] == {"total": 10, "succeeded": 10, "failed": 0, "pending": 0}
    assert proxy.bulk_requests >= 4


def test_an_opensearch_that_stays_down_gives_item_failures_not_a_stuck_task(
    stack: InProcessStack, proxy: FaultProxy
) -> None:
    proxy.permanent = ("status", 503)
    task = run(stack, "down", n=3)
    assert task["status"] == "failed"
    assert task["progress"] == {"total": 3, "succeeded": 0, "failed": 3, "pending": 0}
    details = {f["detail"] for f in task["failed_items"]}
    assert len(details) == 1
    (detail,) = details
    assert detail.startswith("OpenSearch unavailable:")
    assert detail.endswith("(gave up after 4 attempts)")


def test_items_rejected_with_429_every_time_fail_with_the_reason(stack: InProcessStack, proxy: FaultProxy) -> None:
    proxy.permanent = ("items", 429)
    task = run(stack, "busy", n=2)
    assert task["progress"]["failed"] == 2
    assert all("es_rejected_execution_exception" in f["detail"] for f in task["failed_items"])
