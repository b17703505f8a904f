"""OpenSearch answering 429 or 5xx: retried with backoff, then the chunk comes back from the
queue; only past the redrive limit do its items fail (the dead-letter path)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.template import load_template
from tests.support.fault_proxy import FaultProxy
from tests.support.in_process import InProcessStack
from vector_tasks.handlers.dead_letter import ABANDONED_DETAIL

MODEL = "local-hash-384"
MAX_RECEIVES = load_template()["Resources"]["WorkQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]


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


def test_an_outage_longer_than_one_delivery_redelivers_the_chunk_and_loses_nothing(
    stack: InProcessStack, proxy: FaultProxy
) -> None:
    """Transient is not permanent: the first delivery gives up after its 4 attempts, the chunk
    comes back from the queue, and the next delivery writes it once OpenSearch answers again."""
    proxy.faults = [("status", 503)] * 6
    task = stack.run_upsertion(MODEL, "outage", ["words 0", "words 1", "words 2"])
    assert task["status"] == "done"
    assert task["progress"] == {"total": 3, "succeeded": 3, "failed": 0, "pending": 0}
    assert proxy.bulk_requests == 7  # 4 on the first delivery, 2 failing and 1 passing on the second


def test_an_opensearch_that_stays_down_ends_in_the_dead_letter_path_not_a_stuck_task(
    stack: InProcessStack, proxy: FaultProxy
) -> None:
    proxy.permanent = ("status", 503)
    task = stack.run_upsertion(MODEL, "down", ["words 0", "words 1", "words 2"])
    assert task["status"] == "failed"
    assert task["progress"] == {"total": 3, "succeeded": 0, "failed": 3, "pending": 0}
    assert {f["detail"] for f in task["failed_items"]} == {ABANDONED_DETAIL}
    # Every delivery (maxReceiveCount of them) made the service's 4 attempts, no more: the
    # client's own retries are off.
    assert proxy.bulk_requests == 4 * MAX_RECEIVES


def test_items_rejected_with_429_every_time_end_in_the_dead_letter_path(
    stack: InProcessStack, proxy: FaultProxy
) -> None:
    proxy.permanent = ("items", 429)
    task = stack.run_upsertion(MODEL, "busy", ["words 0", "words 1"])
    assert task["progress"]["failed"] == 2
    assert {f["detail"] for f in task["failed_items"]} == {ABANDONED_DETAIL}
