"""The `_bulk` result classification (a pure function) and retries, against a scripted client (unit tier)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from devstack.template import load_template
from tests.support.determinism import FakeClock, FixedJitter
from vector_tasks.adapters.retry import OutOfTime, RetryPolicy, StillUnavailable
from vector_tasks.adapters.vector_index import (
    BULK_MAX_BYTES,
    GC_DELETES,
    NOT_FOUND_DETAIL,
    REQUEST_TIMEOUT_SECONDS,
    OpenSearchVectorIndex,
    classify_bulk_items,
    index_body,
    make_client,
)
from vector_tasks.domain.errors import TaskCannotRun
from vector_tasks.domain.model import WRITE_VERSION_BASE, IndexWrite, TaskKind
from vector_tasks.domain.registry import default_registry
from vector_tasks.domain.vectorize import VectorDocument

SPEC = default_registry().get("local-hash-384")
VERSION = WRITE_VERSION_BASE + 7
NOW = FakeClock().now
LATER = NOW + 3600


class ScriptedIndices:
    def exists(self, index: str, request_timeout: float) -> bool:
        return True


class ScriptedClient:
    """Answers each bulk call with the next scripted response (a dict, or an exception to raise)."""

    def __init__(self, *responses: Any) -> None:
        self.responses = list(responses)
        self.bodies: list[list[dict[str, Any]]] = []
        self.paths: list[str] = []
        self.timeouts: list[float] = []
        self.indices = ScriptedIndices()

    def bulk(self, body: bytes, index: str, request_timeout: float) -> dict[str, Any]:
        assert body.endswith(b"\n")  # NDJSON, as _bulk reads it
        self.bodies.append([json.loads(line) for line in body.splitlines()])
        self.paths.append(f"/{index}/_bulk")
        self.timeouts.append(request_timeout)
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response


def index_with(
    client: ScriptedClient,
    attempts: int = 3,
    clock: FakeClock | None = None,
    jitter: float = 0.5,
    retried: list[TaskKind] | None = None,
) -> OpenSearchVectorIndex:
    clock = clock or FakeClock()
    policy = RetryPolicy(attempts=attempts, rng=FixedJitter(jitter), clock=clock)
    on_retry = retried.append if retried is not None else None
    return OpenSearchVectorIndex(lambda: client, retry=policy, sleep=clock.sleep, on_bulk_retry=on_retry)  # type: ignore[arg-type,return-value]


def docs(*ids: str) -> list[VectorDocument]:
    return [VectorDocument(i, [0.1] * 384, {"text": i}, None) for i in ids]


def ok(op: str = "index") -> dict[str, Any]:
    return {op: {"status": 201}}


def test_rejected_items_become_failures_with_the_opensearch_reason() -> None:
    bad = {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse"}}}
    client = ScriptedClient({"items": [ok(), bad]})
    failures = index_with(client).upsert(SPEC, docs("a", "b"), "t", VERSION, LATER).failures
    assert [(f.object_id, f.detail) for f in failures] == [
        ("b", "OpenSearch rejected the item: mapper_parsing_exception: failed to parse")
    ]


def test_items_rejected_with_429_are_retried_alone() -> None:
    busy = {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}
    client = ScriptedClient({"items": [ok(), busy]}, {"items": [ok()]})
    retried: list[TaskKind] = []
    assert index_with(client, retried=retried).upsert(SPEC, docs("a", "b"), "t", VERSION, LATER) == IndexWrite([])
    assert [line["index"]["_id"] for line in client.bodies[1] if "index" in line] == ["b"]
    assert retried == [TaskKind.UPSERTION]  # one _bulk sent again: BulkRetries


def test_bulk_names_its_index_in_the_path_never_in_the_actions() -> None:
    """The domain refuses explicit indexes (allow_explicit_index false): the path is what the
    access policy and the worker's es permission scope (domain/NAME/vectors-*)."""
    client = ScriptedClient({"items": [ok()]}, {"items": [ok("delete")]})
    index = index_with(client)
    index.upsert(SPEC, docs("a"), "t", VERSION, LATER)
    index.delete(SPEC, ["a"], VERSION, LATER)
    assert client.paths == [f"/{SPEC.index_name}/_bulk"] * 2
    actions = [line for body in client.bodies for line in body if "index" in line or "delete" in line]
    versioned = {"version": VERSION, "version_type": "external"}
    assert actions == [{"index": {"_id": "a", **versioned}}, {"delete": {"_id": "a", **versioned}}]


def test_transient_failures_of_a_deletion_count_as_its_retries() -> None:
    client = ScriptedClient(TransportError(503, "unavailable"), {"items": [ok("delete")]})
    retried: list[TaskKind] = []
    assert index_with(client, retried=retried).delete(SPEC, ["a"], VERSION, LATER) == IndexWrite([])
    assert retried == [TaskKind.DELETION]


def test_transient_request_errors_are_retried_then_hand_the_chunk_back() -> None:
    """Transient is never permanent: no item is failed for an outage, the chunk comes back."""
    client = ScriptedClient(
        TransportError(503, "unavailable"),
        OpenSearchConnectionError("N/A", "refused"),
        TransportError(502, "bad gateway"),
    )
    with pytest.raises(StillUnavailable, match=r"OpenSearch unavailable: bad gateway \(gave up after 3 attempts"):
        index_with(client).upsert(SPEC, docs("a"), "t", VERSION, LATER)
    assert len(client.bodies) == 3


def test_items_rejected_with_429_past_the_retries_hand_the_chunk_back() -> None:
    busy = {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}
    client = ScriptedClient({"items": [ok(), busy]}, {"items": [busy]}, {"items": [busy]})
    with pytest.raises(StillUnavailable, match=r"es_rejected_execution_exception.*1 items pending"):
        index_with(client).upsert(SPEC, docs("a", "b"), "t", VERSION, LATER)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_access_makes_the_task_impossible(status: int) -> None:
    client = ScriptedClient(TransportError(status, "security_exception", {"error": "no permissions"}))
    with pytest.raises(TaskCannotRun, match=f"OpenSearch refused the worker's requests \\({status}\\)"):
        index_with(client).upsert(SPEC, docs("a"), "t", VERSION, LATER)
    assert len(client.bodies) == 1


class FlakyIndices:
    """`indices.exists` failing transiently `failures` times, then answering."""

    def __init__(self, failures: int, exists: bool = True) -> None:
        self.failures = failures
        self.exists_answer = exists
        self.calls = 0

    def exists(self, index: str, request_timeout: float) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise OpenSearchConnectionError("N/A", "refused")
        return self.exists_answer


def test_a_cold_container_retries_the_index_check_like_the_bulk() -> None:
    client = ScriptedClient({"items": [ok()]})
    client.indices = FlakyIndices(failures=2)  # type: ignore[assignment]
    assert index_with(client).upsert(SPEC, docs("a"), "t", VERSION, LATER) == IndexWrite([])


def test_a_cold_container_hands_the_chunk_back_when_the_index_check_never_answers() -> None:
    """The same outcome as a warm container whose _bulk fails: the chunk comes back."""
    client = ScriptedClient()
    client.indices = FlakyIndices(failures=99)  # type: ignore[assignment]
    with pytest.raises(StillUnavailable, match="gave up after 3 attempts"):
        index_with(client).upsert(SPEC, docs("a"), "t", VERSION, LATER)
    assert client.bodies == []


def test_a_deleted_id_that_is_not_there_is_reported_but_not_an_error() -> None:
    missing = {"delete": {"status": 404, "result": "not_found"}}
    client = ScriptedClient({"items": [ok("delete"), missing]})
    failures = index_with(client).delete(SPEC, ["a", "b"], VERSION, LATER).failures
    assert [(f.object_id, f.detail, f.counts_as_error) for f in failures] == [("b", NOT_FOUND_DETAIL, False)]


def test_retry_delays_are_bounded_full_jitter() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=2.0, rng=random.Random(1))
    assert all(0 <= policy.delay(n) <= min(2.0, 0.5 * 2**n) for n in range(10) for _ in range(20))


def test_the_client_leaves_retries_to_the_index() -> None:
    client = make_client("http://127.0.0.1:9", "none", "us-east-1")
    assert client.transport.max_retries == 0
    assert client.transport.retry_on_timeout is False


def test_no_request_outlasts_the_deadline() -> None:
    clock = FakeClock()
    client = ScriptedClient({"items": [ok()]})
    index_with(client, clock=clock).upsert(SPEC, docs("a"), "t", VERSION, NOW + 4.0)
    assert client.timeouts == [4.0]
    client = ScriptedClient({"items": [ok()]})
    index_with(client, clock=clock).upsert(SPEC, docs("a"), "t", VERSION, LATER)
    assert client.timeouts == [REQUEST_TIMEOUT_SECONDS]


def test_a_chunk_out_of_time_is_handed_back_not_failed() -> None:
    clock = FakeClock()
    client = ScriptedClient(TransportError(503, "unavailable"), TransportError(503, "unavailable"))
    with pytest.raises(OutOfTime):
        # 0.7 s: enough for one request, not for a pause of 0.4 s and another.
        index_with(client, attempts=10, clock=clock, jitter=1.0).upsert(SPEC, docs("a"), "t", VERSION, NOW + 0.7)
    assert len(client.bodies) == 1
    with pytest.raises(OutOfTime):
        index_with(ScriptedClient(), clock=clock).upsert(SPEC, docs("a"), "t", VERSION, clock.now + 0.1)


def test_classify_bulk_items_sorts_each_result_in_the_order_sent() -> None:
    response_items = [
        ok(),
        {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
        {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse"}}},
        {"delete": {"status": 404, "result": "not_found"}},
        {"index": {"status": 200}},
    ]
    results = classify_bulk_items(response_items, ["a", "b", "c", "d", "e"], on_not_found=NOT_FOUND_DETAIL)
    assert results.succeeded == ["a", "e"]
    assert results.retry_later == ["b"]
    assert results.retry_reason == "OpenSearch rejected the write: es_rejected_execution_exception: queue full"
    assert [(f.object_id, f.detail, f.counts_as_error) for f in results.failed] == [
        ("c", "OpenSearch rejected the item: mapper_parsing_exception: failed to parse", True),
        ("d", NOT_FOUND_DETAIL, False),
    ]


def test_classify_bulk_items_without_a_not_found_detail_fails_a_404() -> None:
    results = classify_bulk_items([{"index": {"status": 404}}], ["a"], on_not_found=None)
    assert [(f.object_id, f.counts_as_error) for f in results.failed] == [("a", True)]
    assert results.succeeded == [] and results.retry_later == []


def test_classify_bulk_items_needs_one_result_per_id() -> None:
    with pytest.raises(ValueError, match="zip"):
        classify_bulk_items([ok()], ["a", "b"], on_not_found=None)


@pytest.mark.parametrize(
    ("space_type", "engine"), [("cosinesimil", "lucene"), ("l2", "lucene"), ("innerproduct", "faiss")]
)
def test_the_index_mapping_is_a_knn_vector_of_the_model(space_type: str, engine: str) -> None:
    spec = SPEC.model_copy(update={"space_type": space_type, "dimension": 256})
    body = index_body(spec)
    assert body["settings"] == {"index": {"knn": True, "gc_deletes": GC_DELETES}}
    assert body["mappings"]["dynamic"] == "strict"
    properties = body["mappings"]["properties"]
    assert properties["embedding"] == {
        "type": "knn_vector",
        "dimension": 256,
        "method": {"name": "hnsw", "space_type": space_type, "engine": engine},
    }
    assert properties["payload"] == properties["item_info"] == {"type": "flat_object"}
    assert {name: field["type"] for name, field in properties.items()} == {
        "object_id": "keyword",
        "embedding": "knn_vector",
        "payload": "flat_object",
        "item_info": "flat_object",
        "task_id": "keyword",
        "indexed_at": "date",
    }


# -- ordering across tasks: external versions --------------------------------------------------


def conflict(op: str, current: int, provided: int) -> dict[str, Any]:
    reason = f"[x]: version conflict, current version [{current}] is higher or equal to the one provided [{provided}]"
    return {op: {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": reason}}}


def test_every_write_carries_the_attempts_version_as_an_external_version() -> None:
    client = ScriptedClient({"items": [ok()]}, {"items": [ok("delete")]})
    index = index_with(client)
    index.upsert(SPEC, docs("a"), "t", VERSION, LATER)
    index.delete(SPEC, ["a"], VERSION + 1, LATER)
    (upsert_action, _), (delete_action,) = client.bodies
    assert upsert_action["index"] == {
        "_id": "a",
        "version": VERSION,
        "version_type": "external",
    }
    assert delete_action["delete"] == {
        "_id": "a",
        "version": VERSION + 1,
        "version_type": "external",
    }


def test_a_write_the_index_already_holds_a_newer_version_of_is_superseded_not_failed() -> None:
    client = ScriptedClient(
        {"items": [ok(), conflict("index", VERSION + 3, VERSION), conflict("index", VERSION, VERSION)]}
    )
    written = index_with(client).upsert(SPEC, docs("a", "b", "c"), "t", VERSION, LATER)
    # b: a newer attempt wrote it; c: this very write, delivered again.
    assert written == IndexWrite([], superseded=("b",))


def test_a_delete_overtaken_by_a_newer_write_is_superseded() -> None:
    client = ScriptedClient({"items": [conflict("delete", VERSION + 1, VERSION), conflict("delete", VERSION, VERSION)]})
    assert index_with(client).delete(SPEC, ["a", "b"], VERSION, LATER) == IndexWrite([], superseded=("a",))


def test_a_version_conflict_whose_reason_cannot_be_read_changed_nothing_either() -> None:
    unreadable = {"index": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "?"}}}
    client = ScriptedClient({"items": [unreadable]})
    assert index_with(client).upsert(SPEC, docs("a"), "t", VERSION, LATER) == IndexWrite([], superseded=("a",))


def test_another_conflict_is_a_rejection_as_before() -> None:
    other = {"index": {"status": 409, "error": {"type": "some_other_exception", "reason": "no"}}}
    written = classify_bulk_items([other], ["a"], None, VERSION)
    assert (written.succeeded, [f.detail for f in written.failed]) == (
        [],
        ["OpenSearch rejected the item: some_other_exception: no"],
    )
    assert classify_bulk_items([conflict("index", 9, 8)], ["a"], None).failed  # no version sent: a rejection


def test_a_delete_creates_the_index_with_its_mapping_so_it_leaves_a_tombstone() -> None:
    """A delete that finds no index must still record its version: else an older upsert that
    arrives later would bring the object back."""
    created: list[dict[str, Any]] = []

    class NoIndexYet:
        def exists(self, index: str, request_timeout: float) -> bool:
            return bool(created)

        def create(self, index: str, body: dict[str, Any], request_timeout: float) -> None:
            created.append(body)

    client = ScriptedClient({"items": [{"delete": {"status": 404, "result": "not_found"}}]})
    client.indices = NoIndexYet()  # type: ignore[assignment]
    index_with(client).delete(SPEC, ["a"], VERSION, LATER)
    assert created == [index_body(SPEC)]
    assert len(client.bodies) == 1


def test_tombstones_outlive_the_longest_a_chunk_can_take_to_reach_the_index() -> None:
    template = load_template()
    queue = template["Resources"]["WorkQueue"]["Properties"]
    stall = template["Parameters"]["ReconcileStallAfterSeconds"]["Default"]
    longest = (
        queue["MessageRetentionPeriod"] + queue["VisibilityTimeout"] * queue["RedrivePolicy"]["maxReceiveCount"] + stall
    )
    assert GC_DELETES.endswith("d")
    assert int(GC_DELETES[:-1]) * 86400 >= longest
    assert index_body(SPEC)["settings"]["index"]["gc_deletes"] == GC_DELETES


def test_a_write_larger_than_one_bulk_goes_in_consecutive_bulks_each_within_the_bound() -> None:
    # 1,024-dimension vectors as the embedders give them (17-digit floats): about 20 KB a document.
    many = [VectorDocument(f"d{i}", [0.12345678901234567] * 1024, {"text": "x"}, None) for i in range(600)]
    conflict_at = {"d5", "d599"}

    class SizedClient(ScriptedClient):
        def __init__(self) -> None:
            super().__init__()
            self.sizes: list[int] = []

        def bulk(self, body: bytes, index: str, request_timeout: float) -> dict[str, Any]:
            self.sizes.append(len(body))
            lines = [json.loads(line) for line in body.splitlines()]
            ids = [line["index"]["_id"] for line in lines[::2]]
            self.bodies.append(lines)
            return {"items": [conflict("index", VERSION + 1, VERSION) if oid in conflict_at else ok() for oid in ids]}

    client = SizedClient()
    written = index_with(client).upsert(SPEC, many, "t", VERSION, LATER)
    assert len(client.sizes) >= 3
    assert max(client.sizes) <= BULK_MAX_BYTES
    sent = [line["index"]["_id"] for body in client.bodies for line in body[::2]]
    assert sent == [d.object_id for d in many]  # each once, in order
    assert written == IndexWrite([], superseded=("d5", "d599"))
