"""An import from S3 over HTTP on the local stack, as the README's walk-through does it: the
objects put in moto's S3 (the bucket ImportBuckets names), the task created with their
prefix, polled until done."""

from __future__ import annotations

import gzip
import json
from typing import Any

import boto3
import pytest

from devstack.template import LOCAL_IMPORT_BUCKET
from tests.support.http import wait_for
from tests.support.local_stack import RunningStack

MODEL = "local-hash-384"


def test_an_import_of_two_objects_one_gzip_reaches_done_with_its_bad_line_listed(local_stack: RunningStack) -> None:
    if local_stack.aws_url is None:
        pytest.skip("puts its objects in the local stack's own S3 (moto)")
    s3 = boto3.client(
        "s3",
        endpoint_url=local_stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    lines = [json.dumps({"object_id": f"e2e-{n}", "payload": {"text": f"imported {n}"}}) for n in range(3000)]
    lines[1234] = '{"object_id": "e2e-1234", "payload": '
    s3.put_object(Bucket=LOCAL_IMPORT_BUCKET, Key="e2e/part-0.jsonl", Body="\n".join(lines[:1500]).encode())
    s3.put_object(
        Bucket=LOCAL_IMPORT_BUCKET, Key="e2e/part-1.jsonl.gz", Body=gzip.compress("\n".join(lines[1500:]).encode())
    )
    task_id = local_stack.task_id("e2e-import")
    body = {"embedding_model_id": MODEL, "task_id": task_id, "source": {"s3_uri": f"s3://{LOCAL_IMPORT_BUCKET}/e2e/"}}
    status, created = local_stack.api.call("POST", "/internal/upsertion-tasks/run", body)
    assert status == 202, created
    assert created["source"]["complete"] is False

    def finished() -> dict[str, Any] | None:
        task: dict[str, Any] = local_stack.api.get(f"/internal/upsertion-tasks/info?task_id={task_id}")
        return task if task["status"] in ("done", "failed") else None

    task = wait_for(finished, timeout=120)
    assert task["status"] == "done", task
    assert task["progress"] == {"total": 3000, "succeeded": 2999, "failed": 1, "pending": 0, "superseded": 0}
    assert task["source"] == {
        "s3_uri": f"s3://{LOCAL_IMPORT_BUCKET}/e2e/",
        "objects_total": 2,
        "objects_read": 2,
        "lines_read": 3000,
        "complete": True,
    }
    (failure,) = task["failed_items"]
    assert failure["object_id"] == f"s3://{LOCAL_IMPORT_BUCKET}/e2e/part-0.jsonl:1235"
