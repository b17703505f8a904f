"""What a user does over HTTP: upsert, poll, list, delete some, and find exactly what is left."""

from __future__ import annotations

from typing import Any

from tests.support.http import wait_for
from tests.support.local_stack import RunningStack

MODEL = "local-hash-384"
INDEX = f"vectors-{MODEL}"


def finished(stack: RunningStack, kind: str, task_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task: dict[str, Any] = stack.api.get(f"/internal/{kind}-tasks/info?task_id={task_id}")
        return task if task["status"] in ("done", "failed", "canceled") else None

    result: dict[str, Any] = wait_for(check, timeout=120)
    return result


def indexed_ids(stack: RunningStack, ids: list[str]) -> set[str]:
    stack.opensearch.call("POST", f"/{INDEX}/_refresh")
    body = {"size": len(ids), "_source": False, "query": {"ids": {"values": ids}}}
    status, found = stack.opensearch.call("POST", f"/{INDEX}/_search", body)
    assert status == 200, found
    return {hit["_id"] for hit in found["hits"]["hits"]}


def test_upsert_then_delete_half_plus_unknown_ids_leaves_exactly_the_rest(local_stack: RunningStack) -> None:
    upsert_id, delete_id = local_stack.task_id("walk-upsert"), local_stack.task_id("walk-delete")
    ids = [f"walk-{i}" for i in range(300)]
    status, task = local_stack.api.call(
        "POST",
        "/internal/upsertion-tasks/run",
        {
            "embedding_model_id": MODEL,
            "task_id": upsert_id,
            "items": [{"object_id": i, "payload": {"text": f"walkthrough document {i}"}} for i in ids],
        },
    )
    assert status == 202, task
    done = finished(local_stack, "upsertion", upsert_id)
    assert done["status"] == "done"
    assert done["progress"] == {"total": 300, "succeeded": 300, "failed": 0, "pending": 0, "superseded": 0}
    assert indexed_ids(local_stack, ids) == set(ids)

    never = [f"never-{i}" for i in range(5)]
    status, task = local_stack.api.call(
        "POST",
        "/internal/deletion-tasks/run",
        {"embedding_model_id": MODEL, "task_id": delete_id, "object_ids": ids[::2] + never},
    )
    assert status == 202, task
    deleted = finished(local_stack, "deletion", delete_id)
    assert deleted["status"] == "done"
    assert deleted["progress"] == {"total": 155, "succeeded": 150, "failed": 5, "pending": 0, "superseded": 0}
    assert sorted(deleted["failed_item_ids"], key=lambda f: f["object_id"]) == [
        {"object_id": n, "detail": "Object not found in index"} for n in never
    ]
    assert indexed_ids(local_stack, ids + never) == set(ids[1::2])

    listed = local_stack.api.get("/internal/deletion-tasks/list?status=done")
    assert delete_id in [t["id"] for t in listed["tasks"]]


def test_a_route_that_is_not_declared_answers_as_api_gateway_does(local_stack: RunningStack) -> None:
    status, body = local_stack.api.call("GET", "/internal/upsertion-tasks/nope")
    assert status == 403
    assert body == {"message": "Missing Authentication Token"}
    status, body = local_stack.api.call("DELETE", "/internal/upsertion-tasks/run")
    assert status == 403


def test_errors_reach_the_client_in_the_documented_shape(local_stack: RunningStack) -> None:
    status, body = local_stack.api.call("GET", "/internal/upsertion-tasks/info?task_id=absent")
    assert status == 404
    assert body["error"]["code"] == "task_not_found"
    assert body["error"]["request_id"]
