"""OpenSearch answering 429 or 5xx: retried with backoff, then per-item failures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fault_proxy import FaultProxy
from tests.support.in_process import InProcessStack

MODEL = "local-hash-384"


@pytest.fixture
def proxy(stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    with FaultProxy(stack.environment["OPENSEARCH_ENDPOINT"]) as running:
        monkeypatch.setenv("OPENSEARCH_ENDPOINT", running.url)
        yield running


def test_transient_5xx_and_429_answers_are_retried_until_they_pass(stack: InProcessStack, proxy: FaultProxy) -> None:
    proxy.faults = [("status", 503), ("status", 429), ("items", 429)]
    task = stack.run_upsertion(MODEL, "flaky", [f"words {i}" for i in range(10)])
    assert task["status"] == "done"
    assert task["progress"] == {"total": 10, "succeeded": 10, "failed": 0, "pending": 0}
    assert proxy.bulk_requests >= 4


def test_an_opensearch_that_stays_down_gives_item_failures_not_a_stuck_task(
    stack: InProcessStack, proxy: FaultProxy
) -> None:
    proxy.permanent = ("status", 503)
    task = stack.run_upsertion(MODEL, "down", ["words 0", "words 1", "words 2"])
    assert task["status"] == "failed"
    assert task["progress"] == {"total": 3, "succeeded": 0, "failed": 3, "pending": 0}
    details = {f["detail"] for f in task["failed_items"]}
    assert len(details) == 1
    (detail,) = details
    assert detail.startswith("OpenSearch unavailable:")
    assert detail.endswith("(gave up after 4 attempts)")
    assert proxy.bulk_requests == 4  # the service's attempts only: the client's own retries are off


def test_items_rejected_with_429_every_time_fail_with_the_reason(stack: InProcessStack, proxy: FaultProxy) -> None:
    proxy.permanent = ("items", 429)
    task = stack.run_upsertion(MODEL, "busy", ["words 0", "words 1"])
    assert task["progress"]["failed"] == 2
    assert all("es_rejected_execution_exception" in f["detail"] for f in task["failed_items"])
