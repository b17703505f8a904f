"""A cloud model through the whole worker path, its Bedrock client answered by botocore's Stubber."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from tests.support.in_process import InProcessStack
from vector_tasks import wiring
from vector_tasks.adapters.embedders.bedrock import TitanV2Embedder
from vector_tasks.adapters.retry import RetryPolicy
from vector_tasks.domain.registry import EmbeddingModelSpec

MODEL = "titan-v2-1024"


@pytest.fixture
def titan(stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    stubber = Stubber(client)

    def embedder_for(spec: EmbeddingModelSpec) -> TitanV2Embedder:
        return TitanV2Embedder(spec.model_copy(update={"max_concurrency": 1}), lambda: client, RetryPolicy(2, 0, 0))

    monkeypatch.setattr(wiring, "embedder_for", embedder_for)
    with stubber:
        yield stubber


def answer(vector: list[float]) -> dict[str, Any]:
    data = json.dumps({"embedding": vector, "inputTextTokenCount": 2}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def test_a_titan_task_indexes_1024_d_vectors_and_lists_rejected_texts(stack: InProcessStack, titan: Stubber) -> None:
    titan.add_response("invoke_model", answer([0.03] * 1024))
    titan.add_client_error("invoke_model", "ValidationException", "Too many input tokens", 400)
    task = stack.run_upsertion(MODEL, "titan-ok", ["short text", "an enormous text"])
    assert task["status"] == "done"
    assert task["progress"] == {"total": 2, "succeeded": 1, "failed": 1, "pending": 0, "superseded": 0}
    assert task["failed_items"] == [
        {
            "object_id": "titan-ok-1",
            "detail": "payload.text rejected by amazon.titan-embed-text-v2:0: Too many input tokens",
        }
    ]


def test_a_model_that_cannot_be_used_fails_the_task_with_its_reason(stack: InProcessStack, titan: Stubber) -> None:
    titan.add_client_error("invoke_model", "AccessDeniedException", "You don't have access to the model", 403)
    task = stack.run_upsertion(MODEL, "titan-denied", ["text"])
    assert task["status"] == "failed"
    assert task["error"].startswith(
        "Model 'titan-v2-1024' (bedrock-titan-v2 amazon.titan-embed-text-v2:0) cannot be used: the worker's role "
        "may not call it (AccessDeniedException); allow bedrock:InvokeModel on it"
    )
    assert "You don't have access" not in task["error"]  # AWS's own words stay in the log


def test_a_throttled_chunk_is_handed_back_to_the_queue_and_succeeds_later(
    stack: InProcessStack, titan: Stubber
) -> None:
    for _ in range(2):  # both attempts of the first delivery
        titan.add_client_error("invoke_model", "ThrottlingException", "Rate exceeded", 429)
    titan.add_response("invoke_model", answer([0.03] * 1024))  # the redelivery
    task = stack.run_upsertion(MODEL, "titan-busy", ["text"])
    assert task["status"] == "done"
    assert task["progress"]["succeeded"] == 1
