"""The reconciler on the local stack as `make run` starts it, with RECONCILE_EVERY and
RECONCILE_STALL_AFTER from its environment: tasks left unfinished by a step that died are
finished or sent again within seconds, and the caller sees that over HTTP.

The broken states are written straight into the stack's table (moto), as the dead step would
have left them: nothing over HTTP can make a process die at the right moment."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.stack import LocalAws
from tests.support.http import HttpClient, wait_for
from tests.support.local_stack import SpawnedStack, spawn_devstack
from vector_tasks.adapters.task_store import DynamoTaskStore
from vector_tasks.domain.chunking import request_fingerprint, split_into_chunks
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS
from vector_tasks.domain.model import Task, TaskKind, TaskStatus

MODEL = "local-hash-384"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SpawnedStack, DynamoTaskStore]]:
    """The stack, and its task table through the adapter (the table named in the functions'
    environment, which the stack writes for `make invoke`)."""
    logs = tmp_path_factory.mktemp("reconciler")
    sam_env = logs / "sam-env.json"
    spawned = spawn_devstack(
        "--server-log",
        str(logs / "servers.log"),
        "--sam-env-file",
        str(sam_env),
        env={"RECONCILE_EVERY": "1", "RECONCILE_STALL_AFTER": "2", "RETRY_AFTER": "1"},
    )
    drain = subprocess.Popen(["cat"], stdin=spawned.process.stdout, stdout=subprocess.DEVNULL)
    try:
        table = json.loads(sam_env.read_text())["ReconcilerFunction"]["TASK_TABLE_NAME"]
        aws = LocalAws(spawned.aws_url)
        yield spawned, DynamoTaskStore(table, resource=aws.resource("dynamodb"))
    finally:
        spawned.process.terminate()
        spawned.process.wait(timeout=30)
        drain.wait(timeout=10)


def info(api: HttpClient, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = api.get(f"/internal/upsertion-tasks/info?task_id={task_id}")
    return task


def final(api: HttpClient, task_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task = info(api, task_id)
        return task if task["status"] in ("done", "failed", "canceled") else None

    result: dict[str, Any] = wait_for(check, timeout=60)
    return result


def test_a_create_that_died_after_storing_its_items_is_sent_by_the_reconciler(
    stack: tuple[SpawnedStack, DynamoTaskStore],
) -> None:
    spawned, store = stack
    items = [{"object_id": f"r-{i}", "payload": {"text": f"reconciled {i}"}} for i in range(CHUNK_MAX_ITEMS + 50)]
    chunks = split_into_chunks(items)
    now = datetime.now(UTC)
    task = Task(
        kind=TaskKind.UPSERTION,
        task_id="died-sending",
        embedding_model_id=MODEL,
        status=TaskStatus.PENDING,
        created_at=now,
        updated_at=now,
        attempt=1,
        item_count=len(items),
        chunk_count=len(chunks),
        original_item_count=len(items),
        original_chunk_count=len(chunks),
        fingerprint=request_fingerprint(TaskKind.UPSERTION, MODEL, items),
    )
    assert store.insert_task(task) is None
    store.put_chunks(task.kind, task.task_id, chunks)  # ...and no message ever went out

    api = HttpClient(spawned.api_url)
    done = final(api, "died-sending")
    assert (done["status"], done["progress"]) == (
        "done",
        {"total": len(items), "succeeded": len(items), "failed": 0, "pending": 0, "superseded": 0},
    )
    opensearch = HttpClient(spawned.opensearch_url)
    opensearch.call("POST", "/vectors-local-hash-384/_refresh")
    counted = opensearch.call("POST", "/vectors-local-hash-384/_count", {"query": {"prefix": {"object_id": "r-"}}})[1][
        "count"
    ]
    assert counted == len(items)


def test_a_task_left_running_after_its_last_chunk_is_finished_by_the_reconciler(
    stack: tuple[SpawnedStack, DynamoTaskStore],
) -> None:
    spawned, store = stack
    api = HttpClient(spawned.api_url)
    items = [{"object_id": f"s-{i}", "payload": {"text": f"stuck {i}"}} for i in range(3)]
    status, _ = api.call(
        "POST", "/internal/upsertion-tasks/run", {"embedding_model_id": MODEL, "task_id": "stuck", "items": items}
    )
    assert status == 202
    assert final(api, "stuck")["status"] == "done"
    # What a delivery that recorded the last chunk and died before the final transition leaves.
    stuck = store.get_task(TaskKind.UPSERTION, "stuck")
    assert stuck is not None
    assert store.transition(stuck, TaskStatus.RUNNING, expect=(TaskStatus.DONE,), now=datetime.now(UTC))
    assert info(api, "stuck")["status"] == "running"
    assert final(api, "stuck")["status"] == "done"
