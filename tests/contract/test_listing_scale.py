"""Listing with 100,000 tasks stored, on DynamoDB Local: only index Queries, reading at most
offset + limit + 1 entries whatever the table holds. Prints the latencies it measures
(figures, not assertions: a noisy machine must not fail the suite)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vector_tasks.adapters.task_codec import task_item
from vector_tasks.adapters.task_store import DynamoTaskStore
from vector_tasks.domain.model import Task, TaskKind, TaskStatus

from .conftest import dynamodb_local_unavailable

# Each test is collected and skipped with the reason where DynamoDB Local cannot run, so a
# run without it reports skips rather than "no tests collected".
_UNAVAILABLE = dynamodb_local_unavailable()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")

TASKS = int(os.environ.get("LISTING_SCALE_TASKS", "100000"))  # at least 20,000 for the deepest page
STATUSES = (TaskStatus.DONE, TaskStatus.DONE, TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _task(n: int) -> Task:
    created = T0 + timedelta(milliseconds=n)
    return Task(
        kind=TaskKind.UPSERTION,
        task_id=f"scale-{n:06d}",
        embedding_model_id="local-hash-384",
        status=STATUSES[n % len(STATUSES)],
        created_at=created,
        updated_at=created,
        attempt=1,
        item_count=10,
        chunk_count=1,
        fingerprint="f",
    )


@pytest.fixture
def store(dynamodb: Any, task_table: str) -> DynamoTaskStore:
    """DynamoDB only: this measures the adapter's index queries (the shared `store` fixture
    also runs the in-memory store)."""
    return DynamoTaskStore(task_table, resource=dynamodb)


def test_listing_reads_only_what_a_page_needs_with_100k_tasks(store: DynamoTaskStore) -> None:
    started = time.monotonic()
    # A bulk load through the store's own item shape: insert_task one by one would take minutes.
    with store._table.batch_writer() as batch:
        for n in range(TASKS):
            batch.put_item(Item=task_item(_task(n)))
    loaded = time.monotonic() - started

    calls: list[tuple[str, int]] = []

    def record(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, int(parsed.get("ScannedCount", 0))))

    events = store._client.meta.events  # every call the store makes passes this hook
    events.register("after-call.dynamodb", record)
    figures = []
    try:
        for label, status, offset, limit in [
            ("first page", None, 0, 20),
            ("first page, status=failed", TaskStatus.FAILED, 0, 20),
            ("offset 1,000", None, 1_000, 100),
            ("offset 10,000, status=done", TaskStatus.DONE, 10_000, 100),
        ]:
            calls.clear()
            begin = time.monotonic()
            page = store.list_tasks(TaskKind.UPSERTION, status, offset, limit)
            elapsed = time.monotonic() - begin
            assert len(page.tasks) == limit
            assert page.next_offset == offset + limit
            assert {name for name, _ in calls} == {"Query"}
            # Every entry read is an index entry the page needed: never more than offset+limit+1.
            assert sum(scanned for _, scanned in calls) <= offset + limit + 1
            if status is not None:
                assert {t.status for t in page.tasks} == {status}
            candidates = [n for n in range(TASKS - 10, TASKS) if status is None or STATUSES[n % 5] is status]
            newest = max(candidates)
            if offset == 0:
                assert page.tasks[0].task_id == f"scale-{newest:06d}"
            figures.append(f"{label}: {elapsed * 1000:.0f} ms, {len(calls)} Query call(s)")
    finally:
        events.unregister("after-call.dynamodb", record)
    print(f"\n[listing] {TASKS:,} tasks loaded in {loaded:.0f} s; " + "; ".join(figures))
