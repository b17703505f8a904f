"""Bedrock (Titan V2, Cohere v3) and SageMaker embedders against botocore's Stubber: the exact
request bodies, the documented response bodies, and every failure class."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from tests.support.determinism import FakeClock, FixedJitter
from vector_tasks.adapters.embedders.bedrock import CohereV3Embedder, TitanV2Embedder
from vector_tasks.adapters.embedders.sagemaker import SageMakerEmbedder
from vector_tasks.adapters.retry import RetryPolicy, StillUnavailable
from vector_tasks.domain.errors import TaskCannotRun
from vector_tasks.domain.registry import EmbeddingModelSpec, default_registry

LATER = time.monotonic() + 3600
NO_WAIT = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)


def spec(model_id: str, **changes: Any) -> EmbeddingModelSpec:
    return EmbeddingModelSpec.model_validate({**default_registry().get(model_id).model_dump(), **changes})


def streaming(value: Any) -> StreamingBody:
    data = json.dumps(value).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def bedrock() -> tuple[Any, Stubber]:
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def sagemaker() -> tuple[Any, Stubber]:
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def titan_call(text: str, dimension: int, normalize: bool = True) -> dict[str, Any]:
    return {
        "modelId": "amazon.titan-embed-text-v2:0",
        "body": json.dumps({"inputText": text, "dimensions": dimension, "normalize": normalize}),
        "contentType": "application/json",
        "accept": "application/json",
    }


def titan_answer(vector: list[float]) -> dict[str, Any]:
    return {"body": streaming({"embedding": vector, "inputTextTokenCount": 3}), "contentType": "application/json"}


# -- Titan Text Embeddings V2 ------------------------------------------------------------------


def test_titan_sends_one_documented_request_per_text_and_reads_the_embedding() -> None:
    model = spec("titan-v2-1024", dimension=256, max_concurrency=1)
    client, stub = bedrock()
    stub.add_response("invoke_model", titan_answer([0.5] * 256), titan_call("first text", 256))
    stub.add_response("invoke_model", titan_answer([0.25] * 256), titan_call("second text", 256))
    with stub:
        outcomes = TitanV2Embedder(model, lambda: client, NO_WAIT).embed(["first text", "second text"], LATER)
    stub.assert_no_pending_responses()
    assert [float(o[0]) for o in outcomes] == [0.5, 0.25]  # type: ignore[index]
    assert all(o.dtype == np.float32 and o.shape == (256,) for o in outcomes)  # type: ignore[union-attr]


def test_titan_retries_throttling_with_backoff_then_succeeds() -> None:
    model = spec("titan-v2-1024", dimension=512, max_concurrency=1)
    client, stub = bedrock()
    stub.add_client_error("invoke_model", "ThrottlingException", "Rate exceeded", 429)
    stub.add_client_error("invoke_model", "ServiceUnavailableException", "try later", 503)
    stub.add_response("invoke_model", titan_answer([1.0] * 512), titan_call("t", 512))
    pauses: list[float] = []
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=1.0, rng=FixedJitter(0.5))
    with stub:
        (vector,) = TitanV2Embedder(model, lambda: client, policy, sleep=pauses.append).embed(["t"], LATER)
    assert len(pauses) == 2
    assert pauses == pytest.approx([0.1, 0.2])  # half of each full-jitter range
    assert not isinstance(vector, str)


def test_titan_rejecting_a_text_fails_that_item_only() -> None:
    model = spec("titan-v2-1024", max_concurrency=1)
    client, stub = bedrock()
    stub.add_client_error("invoke_model", "ValidationException", "Too many input tokens. Max input tokens: 8192", 400)
    stub.add_response("invoke_model", titan_answer([0.1] * 1024), titan_call("fine", 1024))
    with stub:
        outcomes = TitanV2Embedder(model, lambda: client, NO_WAIT).embed(["x" * 60_000, "fine"], LATER)
    assert outcomes[0] == "rejected by amazon.titan-embed-text-v2:0: Too many input tokens. Max input tokens: 8192"
    assert not isinstance(outcomes[1], str)


def test_titan_without_access_makes_the_task_impossible() -> None:
    client, stub = bedrock()
    stub.add_client_error("invoke_model", "AccessDeniedException", "not authorized to invoke this model", 403)
    with stub, pytest.raises(TaskCannotRun) as raised:
        TitanV2Embedder(spec("titan-v2-1024", max_concurrency=1), lambda: client, NO_WAIT).embed(["t"], LATER)
    assert raised.value.message == (
        "Model 'titan-v2-1024' (bedrock-titan-v2 amazon.titan-embed-text-v2:0) cannot be used: the worker's role "
        "may not call it (AccessDeniedException); allow bedrock:InvokeModel on it in the worker's role "
        "(template.yaml) and, for Bedrock, enable access to the model in the Bedrock console"
    )


def test_titan_throttled_past_the_retries_hands_the_chunk_back() -> None:
    client, stub = bedrock()
    for _ in range(3):
        stub.add_client_error("invoke_model", "ThrottlingException", "Rate exceeded", 429)
    with stub, pytest.raises(StillUnavailable, match="after 3 attempts"):
        TitanV2Embedder(spec("titan-v2-1024", max_concurrency=1), lambda: client, NO_WAIT).embed(["t"], LATER)


@pytest.mark.parametrize(("jitter", "expected_pauses"), [(1.0, []), (0.001, [0.005])])
def test_titan_does_not_wait_past_the_deadline(jitter: float, expected_pauses: list[float]) -> None:
    client, stub = bedrock()
    stub.add_client_error("invoke_model", "ThrottlingException", "Rate exceeded", 429)
    stub.add_client_error("invoke_model", "ThrottlingException", "Rate exceeded", 429)
    clock = FakeClock()
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.sleep(seconds)

    policy = RetryPolicy(attempts=10, base_delay=5.0, max_delay=5.0, rng=FixedJitter(jitter), clock=clock)
    embedder = TitanV2Embedder(spec("titan-v2-1024", max_concurrency=1), lambda: client, policy, sleep=sleep)
    with stub, pytest.raises(StillUnavailable):
        # 0.01 s left: a pause of 5 s cannot fit, so it gives up at once; one of 0.005 s fits
        # once, and then only 0.005 s is left, too little for another.
        embedder.embed(["t"], clock.now + 0.01)
    assert pauses == pytest.approx(expected_pauses)


def test_titan_vectors_of_another_dimension_make_the_task_impossible() -> None:
    client, stub = bedrock()
    stub.add_response("invoke_model", titan_answer([0.1] * 512), titan_call("t", 1024))
    with stub, pytest.raises(TaskCannotRun, match="returned 512-dimensional vectors; the registry declares 1024"):
        TitanV2Embedder(spec("titan-v2-1024", max_concurrency=1), lambda: client, NO_WAIT).embed(["t"], LATER)


def test_titan_calls_run_concurrently_up_to_the_bound() -> None:
    class CountingClient:
        def __init__(self) -> None:
            self.active = 0
            self.peak = 0
            self.lock = threading.Lock()

        def invoke_model(self, **_: Any) -> dict[str, Any]:
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(0.02)
            with self.lock:
                self.active -= 1
            return {"body": streaming({"embedding": [0.1] * 1024})}

    client = CountingClient()
    outcomes = TitanV2Embedder(spec("titan-v2-1024", max_concurrency=3), lambda: client, NO_WAIT).embed(
        [f"t{i}" for i in range(12)], LATER
    )
    assert len(outcomes) == 12
    assert client.peak == 3


# -- Cohere Embed v3 on Bedrock ----------------------------------------------------------------


def cohere_call(texts: list[str]) -> dict[str, Any]:
    return {
        "modelId": "cohere.embed-english-v3",
        "body": json.dumps({"texts": texts, "input_type": "search_document", "truncate": "NONE"}),
        "contentType": "application/json",
        "accept": "application/json",
    }


def cohere_answer(n: int, by_type: bool = False) -> dict[str, Any]:
    embeddings: Any = [[0.01 * i] * 1024 for i in range(n)]
    body = {"id": "r1", "response_type": "embeddings_floats", "texts": [], "embeddings": embeddings}
    if by_type:
        body = {**body, "response_type": "embeddings_by_type", "embeddings": {"float": embeddings}}
    return {"body": streaming(body), "contentType": "application/json"}


def test_cohere_sends_batches_of_at_most_96_texts() -> None:
    texts = [f"text {i}" for i in range(100)]
    client, stub = bedrock()
    stub.add_response("invoke_model", cohere_answer(96), cohere_call(texts[:96]))
    stub.add_response("invoke_model", cohere_answer(4, by_type=True), cohere_call(texts[96:]))
    with stub:
        outcomes = CohereV3Embedder(spec("cohere-english-v3"), lambda: client, NO_WAIT).embed(texts, LATER)
    stub.assert_no_pending_responses()
    assert len(outcomes) == 100
    assert all(not isinstance(o, str) and o.shape == (1024,) for o in outcomes)


def test_cohere_isolates_the_text_a_rejected_batch_was_rejected_for() -> None:
    client, stub = bedrock()
    stub.add_client_error("invoke_model", "ValidationException", "invalid input", 400)
    stub.add_response("invoke_model", cohere_answer(1), cohere_call(["a"]))
    stub.add_client_error("invoke_model", "ValidationException", "text b is malformed", 400)
    stub.add_response("invoke_model", cohere_answer(1), cohere_call(["c"]))
    with stub:
        outcomes = CohereV3Embedder(spec("cohere-english-v3"), lambda: client, NO_WAIT).embed(["a", "b", "c"], LATER)
    assert outcomes[1] == "rejected by cohere.embed-english-v3: text b is malformed"
    assert not isinstance(outcomes[0], str) and not isinstance(outcomes[2], str)


def test_cohere_texts_over_its_character_limit_fail_without_a_call() -> None:
    client, stub = bedrock()
    stub.add_response("invoke_model", cohere_answer(1), cohere_call(["short"]))
    with stub:
        outcomes = CohereV3Embedder(spec("cohere-english-v3"), lambda: client, NO_WAIT).embed(
            ["y" * 2049, "short"], LATER
        )
    assert outcomes[0] == "is 2049 characters; cohere.embed-english-v3 accepts at most 2048"


# -- SageMaker endpoint with a Hugging Face container ------------------------------------------


def sagemaker_call(texts: list[str]) -> dict[str, Any]:
    return {
        "EndpointName": "vector-ingestion-embeddings",
        "ContentType": "application/json",
        "Accept": "application/json",
        "Body": json.dumps({"inputs": texts}),
    }


def test_sagemaker_sends_inputs_in_batches_and_normalises() -> None:
    model = spec("hf-endpoint-768", batch_size=2)
    client, stub = sagemaker()
    stub.add_response(
        "invoke_endpoint",
        {"Body": streaming([[3.0] + [0.0] * 767, [0.0, 4.0] + [0.0] * 766])},
        sagemaker_call(["a", "b"]),
    )
    stub.add_response("invoke_endpoint", {"Body": streaming([[1.0] * 768])}, sagemaker_call(["c"]))
    with stub:
        outcomes = SageMakerEmbedder(model, lambda: client, NO_WAIT).embed(["a", "b", "c"], LATER)
    stub.assert_no_pending_responses()
    assert [float(np.linalg.norm(o)) for o in outcomes] == pytest.approx([1.0, 1.0, 1.0])  # type: ignore[arg-type]
    assert float(outcomes[0][0]) == pytest.approx(1.0)  # type: ignore[index]


def test_sagemaker_token_embeddings_are_mean_pooled() -> None:
    client, stub = sagemaker()
    tokens = [[1.0] + [0.0] * 767, [0.0, 1.0] + [0.0] * 766]
    stub.add_response("invoke_endpoint", {"Body": streaming([tokens])}, sagemaker_call(["two tokens"]))
    with stub:
        (vector,) = SageMakerEmbedder(spec("hf-endpoint-768"), lambda: client, NO_WAIT).embed(["two tokens"], LATER)
    assert float(vector[0]) == pytest.approx(float(vector[1]))  # type: ignore[index]


def test_sagemaker_model_errors_fail_only_the_offending_text() -> None:
    client, stub = sagemaker()
    stub.add_client_error("invoke_endpoint", "ModelError", "Received client error (413) from primary", 424)
    stub.add_response("invoke_endpoint", {"Body": streaming([[1.0] * 768])}, sagemaker_call(["ok"]))
    stub.add_client_error("invoke_endpoint", "ModelError", "Received client error (413) from primary", 424)
    with stub:
        outcomes = SageMakerEmbedder(spec("hf-endpoint-768"), lambda: client, NO_WAIT).embed(["ok", "huge"], LATER)
    assert not isinstance(outcomes[0], str)
    assert outcomes[1] == "rejected by endpoint vector-ingestion-embeddings: Received client error (413) from primary"


def test_sagemaker_missing_endpoint_makes_the_task_impossible() -> None:
    client, stub = sagemaker()
    message = "Endpoint vector-ingestion-embeddings of account 123456789012 not found."
    stub.add_client_error("invoke_endpoint", "ValidationError", message, 400)
    with stub, pytest.raises(TaskCannotRun) as raised:
        SageMakerEmbedder(spec("hf-endpoint-768"), lambda: client, NO_WAIT).embed(["a"], LATER)
    assert "endpoint 'vector-ingestion-embeddings' does not exist in this account and region" in raised.value.message
    assert "123456789012" not in raised.value.message  # the account stays in the worker's log


def test_sagemaker_retries_5xx() -> None:
    client, stub = sagemaker()
    stub.add_client_error("invoke_endpoint", "ServiceUnavailable", "busy", 503)
    stub.add_response("invoke_endpoint", {"Body": streaming([[1.0] * 768])}, sagemaker_call(["a"]))
    with stub:
        (vector,) = SageMakerEmbedder(spec("hf-endpoint-768"), lambda: client, NO_WAIT).embed(["a"], LATER)
    assert not isinstance(vector, str)


def test_what_a_caller_sees_of_a_provider_message_has_no_arns_or_account_ids() -> None:
    from vector_tasks.domain.model import cap_failure_detail, without_internals

    aws = (
        "User: arn:aws:sts::123456789012:assumed-role/Worker/TaskWorkerFunction is not authorized to perform: "
        "bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/x because no policy allows it"
    )
    assert without_internals(aws) == (
        "User: <arn> is not authorized to perform: bedrock:InvokeModel on resource: <arn> because no policy allows it"
    )
    assert (
        without_internals("Endpoint e of account 123456789012 not found") == "Endpoint e of account <account> not found"
    )
    assert without_internals("object doc-123456789012 rejected") == "object doc-123456789012 rejected"  # ids stay
    assert "arn:" not in cap_failure_detail(f"rejected by model: {aws}")
