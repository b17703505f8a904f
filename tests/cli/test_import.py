"""`vector-tasks import` on the local stack: objects put in its S3, one command that creates the
task and waits for it, and the same command again showing the same task."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3

from devstack.template import LOCAL_IMPORT_BUCKET
from tests.cli.conftest import runner
from tests.support.local_stack import RunningStack

MODEL = "local-hash-384"


def test_import_creates_one_task_waits_for_it_and_resumes_it(local_stack: RunningStack, tmp_path: Path) -> None:
    assert local_stack.aws_url is not None
    s3 = boto3.client(
        "s3",
        endpoint_url=local_stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    lines = [json.dumps({"object_id": f"cli-{n}", "payload": {"text": f"line {n}"}}) for n in range(2000)]
    s3.put_object(Bucket=LOCAL_IMPORT_BUCKET, Key="cli/a.jsonl", Body="\n".join(lines[:1000]).encode())
    s3.put_object(
        Bucket=LOCAL_IMPORT_BUCKET, Key="cli/b.jsonl.gz", Body=gzip.compress("\n".join(lines[1000:]).encode())
    )
    run = runner(local_stack, tmp_path)
    uri = f"s3://{LOCAL_IMPORT_BUCKET}/cli/"
    first = run("import", uri, "--model", MODEL, "--wait", timeout=300)
    assert first.code == 0, first
    assert "importing s3://vector-imports/cli/" in first.out
    assert "2,000/2,000 items (100%), 0 failed" in first.err, first.err
    task_id = first.out.split()[2].rstrip(":")
    assert task_id.startswith("vt-import-")
    status = run("status", task_id)
    assert status.code == 0, status
    assert "source    s3://vector-imports/cli/: 2/2 objects, 2,000 lines, read to its end" in status.out
    again = run("import", uri, "--model", MODEL)  # the same command: the same task, not a new one
    assert again.code == 0 and f"task {task_id}: importing" in again.out and "(done)" in again.out

    refused = run("import", "s3://not-an-import-bucket/x.jsonl", "--model", MODEL)
    assert refused.code != 0 and "import_bucket_not_allowed" in refused.err + refused.out, refused
