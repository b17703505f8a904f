"""Listing: newest first, offset/limit/next_offset, status filter, from the indexes only."""

from __future__ import annotations

from typing import Any

from tests.support.in_process import InProcessStack
from vector_tasks import wiring

MODEL = "local-hash-384"


def listing(stack: InProcessStack, kind: str, query: str = "") -> dict[str, Any]:
    status, body = stack.request("GET", f"/internal/{kind}-tasks/list", query=query)
    assert status == 200, body
    return body


def test_list_is_newest_first_with_offset_limit_and_next_offset(stack: InProcessStack) -> None:
    for i in range(7):
        stack.request(
            "POST",
            "/internal/upsertion-tasks/run",
            body={
                "embedding_model_id": MODEL,
                "task_id": f"t{i}",
                "items": [{"object_id": "a", "payload": {"text": "x y"}}],
            },
        )
    first = listing(stack, "upsertion", "limit=3")
    assert [t["id"] for t in first["tasks"]] == ["t6", "t5", "t4"]
    assert (first["offset"], first["limit"], first["next_offset"]) == (0, 3, 3)
    second = listing(stack, "upsertion", "offset=3&limit=3")
    assert [t["id"] for t in second["tasks"]] == ["t3", "t2", "t1"]
    assert second["next_offset"] == 6
    last = listing(stack, "upsertion", "offset=6&limit=3")
    assert [t["id"] for t in last["tasks"]] == ["t0"]
    assert last["next_offset"] is None
    assert listing(stack, "upsertion", "offset=50")["tasks"] == []
    default = listing(stack, "upsertion")
    assert default["limit"] == 20 and len(default["tasks"]) == 7


def test_list_entries_keep_progress_and_omit_failure_lists(stack: InProcessStack) -> None:
    stack.request(
        "POST",
        "/internal/upsertion-tasks/run",
        body={"embedding_model_id": MODEL, "task_id": "one", "items": [{"object_id": "a"}]},
    )
    (entry,) = listing(stack, "upsertion")["tasks"]
    assert "failed_items" not in entry
    assert entry["progress"] == {"total": 1, "succeeded": 0, "failed": 0, "pending": 1, "superseded": 0}
    assert set(entry) == {
        "id",
        "embedding_model_id",
        "status",
        "created_at",
        "updated_at",
        "progress",
        "attempt",
        "error",
        "source",
    }
    assert entry["source"] is None  # an inline task; imports say how far reading went


def test_status_filter_follows_the_lifecycle(stack: InProcessStack) -> None:
    ok = {
        "embedding_model_id": MODEL,
        "task_id": "good",
        "items": [{"object_id": "a", "payload": {"text": "words here"}}],
    }
    bad = {"embedding_model_id": MODEL, "task_id": "bad", "items": [{"object_id": "a"}]}
    stack.request("POST", "/internal/upsertion-tasks/run", body=ok)
    stack.request("POST", "/internal/upsertion-tasks/run", body=bad)
    assert [t["id"] for t in listing(stack, "upsertion", "status=pending")["tasks"]] == ["bad", "good"]
    stack.drain()
    assert listing(stack, "upsertion", "status=pending")["tasks"] == []
    assert [t["id"] for t in listing(stack, "upsertion", "status=done")["tasks"]] == ["good"]
    assert [t["id"] for t in listing(stack, "upsertion", "status=failed")["tasks"]] == ["bad"]
    assert listing(stack, "upsertion", "status=canceled")["tasks"] == []


def test_kinds_are_listed_separately(stack: InProcessStack) -> None:
    stack.request(
        "POST",
        "/internal/upsertion-tasks/run",
        body={"embedding_model_id": MODEL, "task_id": "same-id", "items": [{"object_id": "a"}]},
    )
    stack.request(
        "POST",
        "/internal/deletion-tasks/run",
        body={"embedding_model_id": MODEL, "task_id": "same-id", "object_ids": ["a"]},
    )
    assert [t["id"] for t in listing(stack, "upsertion")["tasks"]] == ["same-id"]
    assert [t["id"] for t in listing(stack, "deletion")["tasks"]] == ["same-id"]


def test_listing_never_scans_the_table(stack: InProcessStack) -> None:
    stack.request(
        "POST", "/internal/upsertion-tasks/run", body={"embedding_model_id": MODEL, "items": [{"object_id": "a"}]}
    )
    calls: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    # The client the read function's store uses: every operation it sends passes this hook.
    events = wiring.task_store()._client.meta.events
    events.register("before-call.dynamodb", record)
    try:
        listing(stack, "upsertion", "status=pending")
        listing(stack, "upsertion")
    finally:
        events.unregister("before-call.dynamodb", record)
    assert calls, "the listing made no DynamoDB call at all"
    assert set(calls) == {"Query"}
