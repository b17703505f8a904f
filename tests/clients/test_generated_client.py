"""A client generated from openapi.json by openapi-python-client, imported with no edits, drives
the whole lifecycle of both task kinds against the local stack."""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tests.support.local_stack import RunningStack

FINAL = {"done", "failed", "canceled"}


class Api:
    """The generated operations of one task kind, called through `sync_detailed`."""

    def __init__(self, package: ModuleType, stack: RunningStack, kind: str) -> None:
        client_module = importlib.import_module(f"{package.__name__}.client")
        # Any status the document does not declare raises errors.UnexpectedStatus.
        self.client = client_module.Client(base_url=stack.api.base_url, raise_on_unexpected_status=True, timeout=60)
        self.models = importlib.import_module(f"{package.__name__}.models")
        self.kind = kind

        def op(verb: str) -> Callable[..., Any]:
            plural = "tasks" if verb == "list" else "task"
            module = importlib.import_module(f"{package.__name__}.api.{kind}_tasks.{verb}_{kind}_{plural}")
            sync_detailed: Callable[..., Any] = module.sync_detailed
            return lambda **kwargs: sync_detailed(client=self.client, **kwargs)

        self.create, self.get, self.list, self.cancel, self.restart = (
            op(v) for v in ("create", "get", "list", "cancel", "restart")
        )

    def call(self, operation: Callable[..., Any], expect: int, model: str, /, **kwargs: Any) -> Any:
        response = operation(**kwargs)
        assert response.status_code == expect, (response.status_code, response.content[:500])
        assert type(response.parsed).__name__ == model, type(response.parsed)
        return response.parsed

    @property
    def task_model(self) -> str:
        return "UpsertionTask" if self.kind == "upsertion" else "DeletionTask"

    def failures(self, task: Any) -> list[Any]:
        return list(task.failed_items if self.kind == "upsertion" else task.failed_item_ids)

    def wait_final(self, task_id: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.call(self.get, 200, self.task_model, task_id=task_id)
            if task.status.value in FINAL:
                return task
            time.sleep(0.2)
        raise AssertionError(f"{task_id} not final within {timeout} s")

    def all_failures(self, task_id: str, limit: int) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        offset: int | None = 0
        while offset is not None:
            page = self.call(
                self.get, 200, self.task_model, task_id=task_id, failures_offset=offset, failures_limit=limit
            )
            assert len(self.failures(page)) <= limit
            seen.extend((f.object_id, f.detail) for f in self.failures(page))
            offset = page.failures_next_offset
        return seen

    def cancel_while_running(self, create_body: Callable[[str], Any]) -> Any:
        """Cancel a task before the workers finish it (a big one; retried if they win the race)."""
        for _ in range(5):
            task_id = f"cancel-{uuid.uuid4().hex[:8]}"
            self.call(self.create, 202, self.task_model, body=create_body(task_id))
            response = self.cancel(task_id=task_id)
            if response.status_code == 200:
                assert response.parsed.status.value == "canceled"
                return response.parsed
            assert response.status_code == 409, response.content
            assert type(response.parsed).__name__ == "ErrorResponse"
        raise AssertionError("the workers finished every task before the cancel")


def test_upsertion_lifecycle_through_the_generated_client(
    generated_client: ModuleType, local_stack: RunningStack
) -> None:
    api = Api(generated_client, local_stack, "upsertion")
    m = api.models
    task_id = f"gen-up-{uuid.uuid4().hex[:8]}"
    items = [
        m.DataItem(object_id=f"{task_id}-{i}", payload=m.DataItemPayloadType0.from_dict({"text": f"doc {i}"}))
        for i in range(5)
    ]
    items += [m.DataItem(object_id=f"{task_id}-bare-{i}") for i in range(3)]  # no payload: listed as failures
    body = m.CreateUpsertionTaskRequest(embedding_model_id="local-hash-384", task_id=task_id, items=items)

    created = api.call(api.create, 202, "UpsertionTask", body=body)
    assert (created.id, created.status.value, created.failed_items, created.failures_next_offset) == (
        task_id,
        "pending",
        [],
        None,
    )
    assert created.created_at.tzinfo is not None  # format: date-time, parsed by the client
    replayed = api.call(api.create, 200, "UpsertionTask", body=body)
    assert replayed.id == task_id
    other = m.CreateUpsertionTaskRequest(embedding_model_id="local-hash-384", task_id=task_id, items=items[:1])
    conflict = api.call(api.create, 409, "ErrorResponse", body=other)
    assert conflict.error.code == "task_id_conflict"

    done = api.wait_final(task_id)
    assert done.status.value == "done"
    assert (done.progress.total, done.progress.succeeded, done.progress.failed) == (8, 5, 3)
    assert sorted(oid for oid, _ in api.all_failures(task_id, limit=2)) == [f"{task_id}-bare-{i}" for i in range(3)]

    listed = api.call(api.list, 200, "TaskList", status=m.TaskStatus.DONE, limit=100)
    assert task_id in {t.id for t in listed.tasks}

    retried = api.call(api.restart, 200, "UpsertionTask", task_id=task_id, scope=m.RestartScope.FAILED)
    assert (retried.attempt, retried.progress.total) == (2, 3)
    assert api.wait_final(task_id).status.value == "failed"  # the same three still have no payload
    again = api.call(api.restart, 200, "UpsertionTask", task_id=task_id, scope=m.RestartScope.ALL)
    assert (again.attempt, again.progress.total) == (3, 8)
    assert api.wait_final(task_id).progress.succeeded == 5

    refused = api.call(api.cancel, 409, "ErrorResponse", task_id=task_id)
    assert (refused.error.code, refused.error.status.value) == ("invalid_transition", "done")
    missing = api.call(api.get, 404, "ErrorResponse", task_id="no-such-task")
    assert missing.error.code == "task_not_found"

    def big(tid: str) -> Any:
        texts = [
            m.DataItem(object_id=str(i), payload=m.DataItemPayloadType0.from_dict({"text": f"t {i}"}))
            for i in range(3_000)
        ]
        return m.CreateUpsertionTaskRequest(embedding_model_id="local-hash-384", task_id=tid, items=texts)

    canceled = api.cancel_while_running(big)
    unchanged = api.call(api.cancel, 200, "UpsertionTask", task_id=canceled.id)
    assert unchanged.status.value == "canceled"
    restarted = api.call(api.restart, 200, "UpsertionTask", task_id=canceled.id)
    assert restarted.attempt == 2
    # The task after the transition: the workers may already have taken its first chunks.
    assert restarted.status.value in ("pending", "running", "done")


def test_deletion_lifecycle_through_the_generated_client(
    generated_client: ModuleType, local_stack: RunningStack
) -> None:
    api = Api(generated_client, local_stack, "deletion")
    m = api.models
    upsertion = Api(generated_client, local_stack, "upsertion")
    prefix = f"gen-del-{uuid.uuid4().hex[:8]}"
    vector = [1.0] + [0.0] * 383
    indexed = [
        m.DataItem(object_id=f"{prefix}-{i}", payload=m.DataItemPayloadType0.from_dict({"vector": vector}))
        for i in range(4)
    ]
    stored = upsertion.call(
        upsertion.create,
        202,
        "UpsertionTask",
        body=m.CreateUpsertionTaskRequest(embedding_model_id="precomputed-384", task_id=f"{prefix}-up", items=indexed),
    )
    assert upsertion.wait_final(stored.id).progress.succeeded == 4

    task_id = f"{prefix}-task"
    object_ids = [f"{prefix}-{i}" for i in range(4)] + [f"{prefix}-never-{i}" for i in range(3)]
    body = m.CreateDeletionTaskRequest(embedding_model_id="precomputed-384", task_id=task_id, object_ids=object_ids)
    created = api.call(api.create, 202, "DeletionTask", body=body)
    assert (created.status.value, created.failed_item_ids) == ("pending", [])
    assert api.call(api.create, 200, "DeletionTask", body=body).id == task_id

    done = api.wait_final(task_id)
    assert done.status.value == "done"  # ids not in the index are listed, not errors
    assert (done.progress.succeeded, done.progress.failed) == (4, 3)
    pages = api.all_failures(task_id, limit=1)
    assert pages == [(f"{prefix}-never-{i}", "Object not found in index") for i in range(3)]

    listed = api.call(api.list, 200, "TaskList", limit=100)
    assert task_id in {t.id for t in listed.tasks}
    assert api.call(api.list, 422, "ErrorResponse", limit=101).error.code == "validation_error"

    retried = api.call(api.restart, 200, "DeletionTask", task_id=task_id, scope=m.RestartScope.FAILED)
    assert (retried.attempt, retried.progress.total) == (2, 3)
    assert api.wait_final(task_id).progress.failed == 3
    again = api.call(api.restart, 200, "DeletionTask", task_id=task_id)
    assert (again.attempt, again.progress.total) == (3, 7)
    assert api.wait_final(task_id).status.value == "done"

    def big(tid: str) -> Any:
        return m.CreateDeletionTaskRequest(
            embedding_model_id="precomputed-384", task_id=tid, object_ids=[f"gone-{i}" for i in range(5_000)]
        )

    canceled = api.cancel_while_running(big)
    assert api.call(api.cancel, 200, "DeletionTask", task_id=canceled.id).status.value == "canceled"
    assert api.call(api.restart, 200, "DeletionTask", task_id=canceled.id, scope=m.RestartScope.FAILED).attempt == 2
