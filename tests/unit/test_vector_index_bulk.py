"""The `_bulk` result classification and retries, against a scripted client (unit tier)."""

from __future__ import annotations

from typing import Any

from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from vector_tasks.adapters.retry import RetryPolicy
from vector_tasks.adapters.vector_index import NOT_FOUND_DETAIL, OpenSearchVectorIndex
from vector_tasks.embedding.registry import default_registry
from vector_tasks.embedding.vectorize import VectorDocument

SPEC = default_registry().get("local-hash-384")


class ScriptedIndices:
    def exists(self, index: str) -> bool:
        return True


class ScriptedClient:
    """Answers each bulk call with the next scripted response (a dict, or an exception to raise)."""

    def __init__(self, *responses: Any) -> None:
        self.responses = list(responses)
        self.bodies: list[list[dict[str, Any]]] = []
        self.indices = ScriptedIndices()

    def bulk(self, body: list[dict[str, Any]]) -> dict[str, Any]:
        self.bodies.append(body)
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response


def index_with(client: ScriptedClient, attempts: int = 3) -> OpenSearchVectorIndex:
    return OpenSearchVectorIndex(lambda: client, retry=RetryPolicy(attempts=attempts), sleep=lambda _: None)  # type: ignore[arg-type,return-value]


def docs(*ids: str) -> list[VectorDocument]:
    return [VectorDocument(i, [0.1] * 384, {"text": i}, None) for i in ids]


def ok(op: str = "index") -> dict[str, Any]:
    return {op: {"status": 201}}


def test_rejected_items_become_failures_with_the_opensearch_reason() -> None:
    bad = {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse"}}}
    client = ScriptedClient({"items": [ok(), bad]})
    failures = index_with(client).upsert(SPEC, docs("a", "b"), "t")
    assert [(f.object_id, f.detail) for f in failures] == [
        ("b", "OpenSearch rejected the item: mapper_parsing_exception: failed to parse")
    ]


def test_items_rejected_with_429_are_retried_alone() -> None:
    busy = {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}
    client = ScriptedClient({"items": [ok(), busy]}, {"items": [ok()]})
    assert index_with(client).upsert(SPEC, docs("a", "b"), "t") == []
    assert [line["index"]["_id"] for line in client.bodies[1] if "index" in line] == ["b"]


def test_transient_request_errors_are_retried_then_become_item_failures() -> None:
    client = ScriptedClient(
        TransportError(503, "unavailable"),
        OpenSearchConnectionError("N/A", "refused"),
        TransportError(502, "bad gateway"),
    )
    failures = index_with(client).upsert(SPEC, docs("a"), "t")
    assert len(client.bodies) == 3
    (failure,) = failures
    assert failure.object_id == "a"
    assert failure.detail.startswith("OpenSearch unavailable") and failure.detail.endswith("(gave up after 3 attempts)")


def test_a_deleted_id_that_is_not_there_is_reported_but_not_an_error() -> None:
    missing = {"delete": {"status": 404, "result": "not_found"}}
    client = ScriptedClient({"items": [ok("delete"), missing]})
    failures = index_with(client).delete(SPEC, ["a", "b"])
    assert [(f.object_id, f.detail, f.counts_as_error) for f in failures] == [("b", NOT_FOUND_DETAIL, False)]


def test_retry_delays_are_bounded_full_jitter() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=2.0)
    assert all(0 <= policy.delay(n) <= min(2.0, 0.5 * 2**n) for n in range(10) for _ in range(20))
