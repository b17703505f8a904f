"""One worker invocation: its time budget, and what it logs when a record fails."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from opensearchpy import OpenSearch

from devstack.lambda_runtime import LambdaContext
from tests.support.events import load_event
from tests.support.in_process import InProcessStack
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS
from vector_tasks.handlers import worker
from vector_tasks.observability import logger


@dataclass
class ScriptedContext(LambdaContext):
    """A context whose remaining time is read from a script, one value per call."""

    remaining_ms: list[int] | None = None

    def get_remaining_time_in_millis(self) -> int:
        assert self.remaining_ms
        return self.remaining_ms.pop(0)


def chunk_records(stack: InProcessStack, count: int) -> dict[str, Any]:
    messages = stack.sqs.receive_message(QueueUrl=stack.queue_url("WorkQueue"), MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == count
    template = load_event("worker_chunk")["Records"][0]
    return {
        "Records": [
            {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in messages
        ]
    }


def context(*remaining_ms: int) -> ScriptedContext:
    return ScriptedContext(
        function_name="TaskWorkerFunction",
        memory_limit_in_mb=1024,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:TaskWorkerFunction",
        aws_request_id="req-1",
        deadline=0.0,
        remaining_ms=list(remaining_ms),
    )


def test_a_record_with_no_time_left_goes_back_alone(stack: InProcessStack) -> None:
    items = [
        {"object_id": f"o{i}", "payload": {"text": f"words {i}"}} for i in range(CHUNK_MAX_ITEMS + 50)
    ]  # two chunks
    body = {"embedding_model_id": "local-hash-384", "task_id": "budget", "items": items}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    event = chunk_records(stack, 2)

    # 60 s left for the first record; 5 s (under the 10 s margin) when the second one starts.
    answer = worker.lambda_handler(event, context(60_000, 5_000))

    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    status, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=budget")
    assert status == 200
    assert task["status"] == "running"
    assert task["progress"]["pending"] > 0  # nothing was failed for lack of time


def test_a_failing_record_is_logged_as_an_error_naming_its_chunk(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSEARCH_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: every write fails
    item = {"object_id": "a", "payload": {"text": "words"}}
    body = {"embedding_model_id": "local-hash-384", "task_id": "logged", "items": [item]}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    output = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", output)

    with pytest.raises(BatchProcessingError):  # a batch that fails whole fails the invocation
        worker.lambda_handler(chunk_records(stack, 1), context(60_000))

    lines = [json.loads(line) for line in output.getvalue().splitlines() if line.startswith("{")]
    worker_lines = [line for line in lines if line.get("function_name") == "TaskWorkerFunction"]
    assert worker_lines
    for line in worker_lines:
        assert (line["task_id"], line["attempt"], line["chunk"]) == ("logged", 1, 0), line
    (error,) = [line for line in worker_lines if line["level"] == "ERROR"]
    assert error["message"] == "Chunk delivery failed; the message will be delivered again"
    assert "exception" in error


def counted_bulks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The index of every `_bulk` request the worker sends, from now on."""
    bulks: list[str] = []
    real_bulk = OpenSearch.bulk

    def counted_bulk(self: OpenSearch, *args: Any, **kwargs: Any) -> Any:
        bulks.append(kwargs["index"])
        return real_bulk(self, *args, **kwargs)

    monkeypatch.setattr(OpenSearch, "bulk", counted_bulk)
    return bulks


def test_the_chunks_of_one_task_in_a_batch_are_one_bulk_and_counted_each(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulks = counted_bulks(monkeypatch)
    many = [{"object_id": f"m{i}", "payload": {"text": f"words {i}"}} for i in range(2 * CHUNK_MAX_ITEMS + 10)]
    one = [{"object_id": "bad", "payload": {}}, {"object_id": "fine", "payload": {"text": "fine"}}]
    for task_id, items in (("three-chunks", many), ("one-chunk", one)):
        body = {"embedding_model_id": "local-hash-384", "task_id": task_id, "items": items}
        assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    event = chunk_records(stack, 4)

    assert worker.lambda_handler(event, context(60_000, 60_000, 60_000, 60_000)) == {"batchItemFailures": []}

    assert len(bulks) == 2  # one per task, not one per chunk
    progress = {}
    for task_id in ("three-chunks", "one-chunk"):
        status, task = stack.request("GET", "/internal/upsertion-tasks/info", f"task_id={task_id}")
        assert status == 200
        progress[task_id] = (task["status"], task["progress"])
    assert progress == {
        "three-chunks": (
            "done",
            {"total": len(many), "succeeded": len(many), "failed": 0, "pending": 0, "superseded": 0},
        ),
        "one-chunk": ("done", {"total": 2, "succeeded": 1, "failed": 1, "pending": 0, "superseded": 0}),
    }


def test_chunks_delivered_again_are_written_each_on_its_own(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulks = counted_bulks(monkeypatch)
    items = [{"object_id": f"r{i}", "payload": {"text": f"words {i}"}} for i in range(CHUNK_MAX_ITEMS + 50)]
    body = {"embedding_model_id": "local-hash-384", "task_id": "again", "items": items}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    event = chunk_records(stack, 2)
    for record in event["Records"]:  # their first delivery failed together; neither may sink the other
        record["attributes"] = {**record["attributes"], "ApproximateReceiveCount": "2"}

    assert worker.lambda_handler(event, context(60_000, 60_000)) == {"batchItemFailures": []}

    assert len(bulks) == 2
    status, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=again")
    assert (status, task["status"], task["progress"]["succeeded"]) == (200, "done", len(items))
