"""Ordering across tasks over HTTP only: a big older task and a small newer one write the same
object; the index ends with the newer one's payload, and a newer deletion is not undone by the
older upsertion's late chunk. (tests/integration/test_ordering.py shuffles the deliveries to
prove the rule; here the local stack delivers as it does.)"""

from __future__ import annotations

from typing import Any

from tests.support.http import wait_for
from tests.support.local_stack import RunningStack

MODEL = "local-hash-384"
SHARED = "ordering-shared"
GONE = "ordering-gone"


def final(stack: RunningStack, kind: str, task_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task: dict[str, Any] = stack.api.get(f"/internal/{kind}-tasks/info?task_id={task_id}")
        return task if task["status"] in ("done", "failed", "canceled") else None

    result: dict[str, Any] = wait_for(check, timeout=180)
    return result


def create(stack: RunningStack, kind: str, body: dict[str, Any]) -> None:
    status, answer = stack.api.call("POST", f"/internal/{kind}-tasks/run", {"embedding_model_id": MODEL, **body})
    assert status == 202, answer


def test_the_newer_task_wins_over_a_big_older_one_on_a_shared_object(local_stack: RunningStack) -> None:
    older, newer, deletion = (local_stack.task_id(n) for n in ("ordering-older", "ordering-newer", "ordering-delete"))
    # The shared objects come last in the big task: its chunk with them is among the last written.
    items = [{"object_id": f"ordering-{i}", "payload": {"text": f"older {i}"}} for i in range(4998)]
    items += [{"object_id": oid, "payload": {"text": "older"}} for oid in (SHARED, GONE)]
    create(local_stack, "upsertion", {"task_id": older, "items": items})
    create(local_stack, "upsertion", {"task_id": newer, "items": [{"object_id": SHARED, "payload": {"text": "newer"}}]})
    create(local_stack, "deletion", {"task_id": deletion, "object_ids": [GONE]})

    old, new = final(local_stack, "upsertion", older), final(local_stack, "upsertion", newer)
    deleted = final(local_stack, "deletion", deletion)
    assert old["status"] == new["status"] == deleted["status"] == "done"
    assert old["progress"]["succeeded"] == 5000
    assert new["progress"]["superseded"] == 0  # nothing newer than it touched the object
    local_stack.opensearch.call("POST", "/vectors-local-hash-384/_refresh")
    shared = local_stack.opensearch.get(f"/vectors-local-hash-384/_doc/{SHARED}")
    assert shared["_source"]["payload"] == {"text": "newer"}
    status, _ = local_stack.opensearch.call("GET", f"/vectors-local-hash-384/_doc/{GONE}")
    assert status == 404
    # The older task's writes of the two objects changed nothing if they came after the newer ones.
    assert old["progress"]["superseded"] in (0, 1, 2)
    assert deleted["progress"]["failed"] + deleted["progress"]["succeeded"] == 1
