"""Deletion tasks on the lifecycle upsertion uses."""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

from tests.support.in_process import InProcessStack

MODEL = "local-hash-384"
INDEX = f"vectors-{MODEL}"


def upsert(stack: InProcessStack, ids: list[str]) -> None:
    body = {"embedding_model_id": MODEL, "items": [{"object_id": i, "payload": {"text": f"text of {i}"}} for i in ids]}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    stack.drain()


def delete(stack: InProcessStack, task_id: str, ids: list[str], model: str = MODEL) -> dict[str, Any]:
    status, task = stack.request(
        "POST",
        "/internal/deletion-tasks/run",
        body={"embedding_model_id": model, "task_id": task_id, "object_ids": ids},
    )
    assert status == 202, task
    assert task["failed_item_ids"] == [] and task["status"] == "pending"
    stack.drain()
    status, task = stack.request("GET", "/internal/deletion-tasks/info", f"task_id={task_id}")
    assert status == 200
    return task


def test_deletion_removes_ids_and_reports_the_missing_ones(stack: InProcessStack, opensearch: OpenSearch) -> None:
    ids = [f"obj-{i}" for i in range(40)]
    upsert(stack, ids)
    to_delete = [*ids[:20], "never-1", "never-2"]
    task = delete(stack, "delete-xyz", to_delete)
    assert task["status"] == "done"
    assert task["progress"] == {"total": 22, "succeeded": 20, "failed": 2, "pending": 0, "superseded": 0}
    assert sorted(task["failed_item_ids"], key=lambda f: f["object_id"]) == [
        {"object_id": "never-1", "detail": "Object not found in index"},
        {"object_id": "never-2", "detail": "Object not found in index"},
    ]
    opensearch.indices.refresh(index=INDEX)
    remaining = {
        hit["_id"] for hit in opensearch.search(index=INDEX, body={"size": 100, "_source": False})["hits"]["hits"]
    }
    assert remaining == set(ids[20:])


def test_deleting_from_a_model_with_no_index_yet_ends_done(stack: InProcessStack, opensearch: OpenSearch) -> None:
    task = delete(stack, "nothing-there", ["a", "b"], model="precomputed-384")
    assert task["status"] == "done"
    assert task["error"] is None
    assert {f["detail"] for f in task["failed_item_ids"]} == {"Object not found in index"}
    # The delete made the index, with the service's k-NN mapping, so that it could record its
    # versions (an older upsert of these ids arriving later is refused): README, "Ordering".
    settings = opensearch.indices.get_settings(index="vectors-precomputed-384")["vectors-precomputed-384"]
    assert settings["settings"]["index"]["knn"] == "true"
    mapping = opensearch.indices.get_mapping(index="vectors-precomputed-384")["vectors-precomputed-384"]
    assert mapping["mappings"]["properties"]["embedding"]["type"] == "knn_vector"


def test_deletion_create_is_idempotent_on_task_id(stack: InProcessStack) -> None:
    body = {"embedding_model_id": MODEL, "task_id": "d-1", "object_ids": ["a", "b"]}
    assert stack.request("POST", "/internal/deletion-tasks/run", body=body)[0] == 202
    assert stack.request("POST", "/internal/deletion-tasks/run", body=body)[0] == 200
    status, error = stack.request("POST", "/internal/deletion-tasks/run", body={**body, "object_ids": ["a"]})
    assert status == 409 and error["error"]["code"] == "task_id_conflict"


def test_deletion_tasks_do_not_see_upsertion_tasks(stack: InProcessStack) -> None:
    stack.request(
        "POST",
        "/internal/upsertion-tasks/run",
        body={"embedding_model_id": MODEL, "task_id": "u-only", "items": [{"object_id": "a"}]},
    )
    status, error = stack.request("GET", "/internal/deletion-tasks/info", "task_id=u-only")
    assert status == 404
    assert error["error"]["message"] == "No deletion task with task_id 'u-only'"
