"""Cancel and restart over HTTP on the local stack, as a user drives them."""

from __future__ import annotations

from typing import Any

from tests.support.http import wait_for
from tests.support.local_stack import RunningStack

MODEL = "local-hash-384"


def terminal(stack: RunningStack, task_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task: dict[str, Any] = stack.api.get(f"/internal/upsertion-tasks/info?task_id={task_id}")
        return task if task["status"] in ("done", "failed") else None

    result: dict[str, Any] = wait_for(check, timeout=120)
    return result


def test_cancel_then_restart_failed_then_restart_all(local_stack: RunningStack) -> None:
    life = local_stack.task_id("life")
    # 30 chunks, so the cancel lands while they are under way.
    items = [{"object_id": f"life-{i}", "payload": {"text": f"lifecycle {i}"}} for i in range(3000)]
    items.append({"object_id": "life-broken"})
    status, _ = local_stack.api.call(
        "POST", "/internal/upsertion-tasks/run", {"embedding_model_id": MODEL, "task_id": life, "items": items}
    )
    assert status == 202

    status, canceled = local_stack.api.call("PUT", f"/internal/upsertion-tasks/cancel?task_id={life}")
    assert status == 200
    assert canceled["status"] == "canceled"
    status, again = local_stack.api.call("PUT", f"/internal/upsertion-tasks/cancel?task_id={life}")
    assert (status, again["status"]) == (200, "canceled")

    status, restarted = local_stack.api.call("PUT", f"/internal/upsertion-tasks/restart?task_id={life}&scope=failed")
    assert status == 200
    assert restarted["attempt"] == 2
    # The task after the transition: the workers may already have started on it.
    assert restarted["status"] in ("pending", "running", "done")
    done = terminal(local_stack, life)
    assert done["status"] == "done"
    assert done["progress"]["succeeded"] + done["progress"]["failed"] == done["progress"]["total"]
    assert [f["object_id"] for f in done["failed_items"]] == ["life-broken"]

    status, error = local_stack.api.call("PUT", f"/internal/upsertion-tasks/cancel?task_id={life}")
    assert status == 409
    assert error["error"]["status"] == "done"

    status, full = local_stack.api.call("PUT", f"/internal/upsertion-tasks/restart?task_id={life}")
    assert status == 200
    assert full["attempt"] == 3
    assert full["progress"]["total"] == 3001
    final = terminal(local_stack, life)
    assert final["progress"] == {"total": 3001, "succeeded": 3000, "failed": 1, "pending": 0, "superseded": 0}
