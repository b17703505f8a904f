"""Info answers failures a page at a time, so no answer can pass Lambda's 6 MB response limit."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.in_process import InProcessStack
from vector_tasks.domain.limits import MAX_FAILURE_DETAIL_CHARS
from vector_tasks.domain.model import TRUNCATED_MARKER, cap_failure_detail

INFO = "/internal/upsertion-tasks/info"
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def test_10000_failures_are_paged_each_exactly_once(stack: InProcessStack) -> None:
    # 506-byte object ids: unpaged, the failure list alone would be over 6 MB.
    ids = [f"{i:05d}-" + "x" * 500 for i in range(10_000)]
    body = {"embedding_model_id": "local-hash-384", "task_id": "all-fail", "items": [{"object_id": o} for o in ids]}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    stack.drain()

    started = time.monotonic()
    first = stack.invoke("GET", INFO, "task_id=all-fail")
    elapsed = time.monotonic() - started
    size = len(json.dumps(first))  # the whole Lambda response, as API Gateway receives it
    print(f"\ninfo of a task with 10,000 failures: {size:,} bytes ({elapsed:.2f} s)")
    assert first["statusCode"] == 200
    assert size < 2 * 1024 * 1024
    task = json.loads(first["body"])
    assert task["status"] == "failed"
    assert task["progress"] == {"total": 10_000, "succeeded": 0, "failed": 10_000, "pending": 0, "superseded": 0}
    assert len(task["failed_items"]) == 1_000
    assert task["failures_next_offset"] == 1_000

    for limit in (1_000, 777):  # 777: pages that start and end inside chunks
        seen: list[str] = []
        offset: int | None = 0
        while offset is not None:
            query = f"task_id=all-fail&failures_offset={offset}&failures_limit={limit}"
            status, page = stack.request("GET", INFO, query)
            assert status == 200
            assert len(page["failed_items"]) <= limit
            assert len(json.dumps(page)) < LAMBDA_RESPONSE_LIMIT
            seen.extend(f["object_id"] for f in page["failed_items"])
            offset = page["failures_next_offset"]
        assert seen == ids  # every failure exactly once, in order
        assert all(f["detail"].startswith("Item has no payload") for f in page["failed_items"])

    status, past = stack.request("GET", INFO, "task_id=all-fail&failures_offset=20000")
    assert status == 200
    assert past["failed_items"] == []
    assert past["failures_next_offset"] is None

    # The transitions answer with the first page.
    status, restarted = stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=all-fail&scope=failed")
    assert status == 200
    assert restarted["failed_items"] == []
    assert restarted["failures_next_offset"] is None


@pytest.mark.parametrize(
    ("detail", "capped_length"),
    [
        ("short", 5),
        ("x" * MAX_FAILURE_DETAIL_CHARS, MAX_FAILURE_DETAIL_CHARS),
        ("x" * 5_000, MAX_FAILURE_DETAIL_CHARS),
        ("\U0001f600" * 5_000, (MAX_FAILURE_DETAIL_CHARS - len(TRUNCATED_MARKER)) // 12 + len(TRUNCATED_MARKER)),
    ],
)
def test_a_failure_detail_is_capped_to_1000_bytes_of_json(detail: str, capped_length: int) -> None:
    capped = cap_failure_detail(detail)
    assert len(capped) == capped_length
    assert len(json.dumps(capped)) - 2 <= MAX_FAILURE_DETAIL_CHARS
    assert capped.endswith(TRUNCATED_MARKER) == (capped != detail)
