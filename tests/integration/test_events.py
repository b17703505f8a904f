"""The events in events/ (what `sam local invoke -e` takes) drive their functions as documented."""

from __future__ import annotations

import json
from typing import Any

from devstack.template import LOCAL_IMPORT_BUCKET
from tests.support.events import load_event
from tests.support.in_process import InProcessStack


def invoke(stack: InProcessStack, function: str, event_name: str) -> Any:
    return stack.functions[function].invoke(load_event(event_name))


def test_each_event_is_accepted_by_its_function(stack: InProcessStack) -> None:
    created = invoke(stack, "TaskSubmitFunction", "submit_upsertion_task")
    assert created["statusCode"] == 202
    assert json.loads(created["body"])["id"] == "upsert-001"
    assert invoke(stack, "TaskSubmitFunction", "submit_deletion_task")["statusCode"] == 202

    # The worker event names chunk 0 of upsert-001, attempt 1: exactly what the queue holds.
    assert invoke(stack, "TaskWorkerFunction", "worker_chunk") == {"batchItemFailures": []}
    info = invoke(stack, "TaskReadFunction", "read_upsertion_task_info")
    assert info["statusCode"] == 200
    assert json.loads(info["body"])["status"] == "done"
    listed = invoke(stack, "TaskReadFunction", "read_upsertion_task_list")
    assert [t["id"] for t in json.loads(listed["body"])["tasks"]] == ["upsert-001"]

    # The dead-letter event for a chunk already recorded changes nothing.
    assert invoke(stack, "DeadLetterFunction", "dead_letter_chunk") == {"batchItemFailures": []}
    assert json.loads(invoke(stack, "TaskReadFunction", "read_upsertion_task_info")["body"])["progress"]["failed"] == 0

    stack.drain()  # the deletion task, so it can be restarted
    restarted = invoke(stack, "TaskTransitionFunction", "transition_restart_deletion_task")
    assert restarted["statusCode"] == 200
    assert json.loads(restarted["body"])["attempt"] == 2
    canceled = invoke(stack, "TaskTransitionFunction", "transition_cancel_upsertion_task")
    assert canceled["statusCode"] == 409  # upsert-001 is done
    assert json.loads(canceled["body"])["error"]["status"] == "done"

    # An import: its create, then its first step (the listing of the objects under its prefix).
    stack.s3.put_object(Bucket=LOCAL_IMPORT_BUCKET, Key="catalog/part-0.jsonl", Body=b'{"object_id": "c-1"}\n')
    assert invoke(stack, "TaskSubmitFunction", "submit_upsertion_import")["statusCode"] == 202
    assert invoke(stack, "ImportSplitterFunction", "import_step") == {"batchItemFailures": []}
    imported = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=catalog-2026-12")[1]
    assert imported["source"]["objects_total"] == 1

    # The schedule's event: a reconciler run over what is left unfinished.
    report = invoke(stack, "ReconcilerFunction", "reconciler_schedule")
    assert report["out_of_budget"] is False
