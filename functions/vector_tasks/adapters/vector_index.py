"""A model's OpenSearch k-NN index: created on first use, written with `_bulk`.

Per-item results of `_bulk` are classified by `classify_bulk_items` (a pure function): an item
OpenSearch rejects becomes an ItemFailure with OpenSearch's own reason; items rejected for
back-pressure (429) and whole requests that fail transiently (429, 5xx, connection errors and
timeouts) are retried with backoff, by `OpenSearchVectorIndex._bulk` (the index checks and the
index creation by `_request`). Transient is never permanent: what is still unavailable after
the last retry hands the whole chunk back to the queue (StillUnavailable), as running out of
time does (OutOfTime), whether or not the container already knew the index. Access refused
(401/403) ends the task (TaskCannotRun). Retries happen here only (the client's own are off),
and no request or pause outlasts the worker's deadline.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from opensearchpy import OpenSearch, RequestsHttpConnection
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import RequestError, TransportError
from opensearchpy.helpers.signer import RequestsAWSV4SignerAuth

from vector_tasks.adapters.retry import OutOfTime, RetryPolicy, StillUnavailable
from vector_tasks.domain.encoding import json_bytes
from vector_tasks.domain.errors import TaskCannotRun
from vector_tasks.domain.model import IndexWrite, ItemFailure, TaskKind
from vector_tasks.domain.registry import EmbeddingModelSpec
from vector_tasks.domain.vectorize import VectorDocument

NOT_FOUND_DETAIL = "Object not found in index"
VECTOR_FIELD = "embedding"
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_ACCESS_REFUSED = frozenset({401, 403})
# How long OpenSearch keeps the version of a deleted document (its tombstone), so that a write
# older than the delete is still refused: longer than any chunk can take to reach the index.
# The longest is a message kept by the work queue for its whole retention (4 days), then
# delivered maxReceiveCount times (5 x the 720 s visibility timeout), after the reconciler sent
# it again for a stalled attempt (15 minutes): about 4.1 days, so 7 days. The indexes the
# service creates get it; tests/unit/test_vector_index_bulk.py checks it against template.yaml.
GC_DELETES = "7d"
_VERSION_CONFLICT = "version_conflict_engine_exception"
_CURRENT_VERSION = re.compile(r"current version \[(\d+)\]")
# The longest one OpenSearch request may take, and the least time worth starting one with.
REQUEST_TIMEOUT_SECONDS = 30.0
# The largest `_bulk` body sent: half the smallest request size Amazon OpenSearch Service takes
# (10 MiB, on the small instance types). A worker writes the chunks of one task it was handed
# together, up to this size a request, since OpenSearch's cost per document falls with the
# size of a bulk; a body of 1,024-dimension vectors outgrows a chunk's JSON several times over.
BULK_MAX_BYTES = 5 * 1024 * 1024
_MIN_REQUEST_SECONDS = 0.5


def make_client(endpoint: str, auth: str, region: str) -> OpenSearch:
    """An OpenSearch client for `endpoint`; auth "sigv4" signs requests for an AWS domain.

    `max_retries=0`: OpenSearchVectorIndex retries within the worker's deadline; the client's
    own retries of 502/503/504 would multiply those attempts and ignore the deadline.
    """
    http_auth = None
    if auth == "sigv4":
        http_auth = RequestsAWSV4SignerAuth(boto3.Session().get_credentials(), region, "es")
    return OpenSearch(
        hosts=[endpoint],
        http_auth=http_auth,
        connection_class=RequestsHttpConnection,
        timeout=REQUEST_TIMEOUT_SECONDS,
        max_retries=0,
        retry_on_timeout=False,
        # No gzip: measured on the local stack (make benchmark), compressing `_bulk` bodies at
        # opensearch-py's level 9 took a quarter of the worker's CPU and made the direct bulk
        # 2.6 times slower. Inside a VPC the bytes cost nothing; the Lambda's CPU is billed.
        http_compress=False,
    )


def index_body(spec: EmbeddingModelSpec) -> dict[str, Any]:
    """Mapping of a model's index: a knn_vector of the model's dimension and space type.

    `dynamic: strict` plus `flat_object` for payload and item_info: arbitrary caller keys are
    stored and filterable but never add fields to the mapping.
    """
    engine = "faiss" if spec.space_type == "innerproduct" else "lucene"
    return {
        "settings": {"index": {"knn": True, "gc_deletes": GC_DELETES}},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "object_id": {"type": "keyword"},
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": spec.dimension,
                    "method": {"name": "hnsw", "space_type": spec.space_type, "engine": engine},
                },
                "payload": {"type": "flat_object"},
                "item_info": {"type": "flat_object"},
                "task_id": {"type": "keyword"},
                "indexed_at": {"type": "date"},
            },
        },
    }


def _versioned(version: int) -> dict[str, Any]:
    """An operation's external version: OpenSearch refuses it if it holds that version or newer."""
    return {"version": version, "version_type": "external"}


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', json.dumps(error))}"
    return str(error)


@dataclass
class BulkItemResults:
    """What one `_bulk` response says about each object id sent."""

    succeeded: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)  # of `succeeded`: a newer version was there
    failed: list[ItemFailure] = field(default_factory=list)
    retry_later: list[str] = field(default_factory=list)  # rejected for back-pressure (429)
    retry_reason: str = ""  # why the last of `retry_later` was rejected


def _overtaken(result: Mapping[str, Any], version: int) -> bool | None:
    """For a version conflict: True when the index holds a newer version than `version`, False
    when it holds `version` itself (this write, delivered again); None when it is not a version
    conflict. OpenSearch names the version it holds in the reason."""
    error = result.get("error")
    if not isinstance(error, Mapping) or error.get("type") != _VERSION_CONFLICT:
        return None
    found = _CURRENT_VERSION.search(str(error.get("reason", "")))
    # Unreadable: the index holds `version` or newer, so this write changed nothing either way.
    return found is None or int(found[1]) > version


def classify_bulk_items(
    response_items: Sequence[Mapping[str, Any]],
    object_ids: Sequence[str],
    on_not_found: str | None,
    version: int | None = None,
) -> BulkItemResults:
    """Sort a `_bulk` response's items (one per object id, in the order sent) into succeeded
    (superseded among them), failed (with OpenSearch's reason) and retry-later (429).

    `on_not_found`: the detail of a delete whose id is not in the index (a 404 without an
    error), listed but not counted as an error; None treats such a 404 as any rejection.
    `version`: the external version the writes carried. A version conflict is then no failure:
    the index already holds this write (a redelivery: succeeded) or a newer one (superseded).
    """
    results = BulkItemResults()
    for entry, object_id in zip(response_items, object_ids, strict=True):
        result = next(iter(entry.values()))
        status = int(result.get("status", 500))
        overtaken = _overtaken(result, version) if status == 409 and version is not None else None
        if 200 <= status < 300 or overtaken is not None:
            results.succeeded.append(object_id)
            if overtaken:
                results.superseded.append(object_id)
        elif status == 404 and on_not_found and "error" not in result:
            results.failed.append(ItemFailure(object_id, on_not_found, counts_as_error=False))
        elif status == 429:
            results.retry_later.append(object_id)
            results.retry_reason = f"OpenSearch rejected the write: {_reason(result.get('error'))}"
        else:
            results.failed.append(
                ItemFailure(object_id, f"OpenSearch rejected the item: {_reason(result.get('error'))}")
            )
    return results


class OpenSearchVectorIndex:
    def __init__(
        self,
        client_factory: Callable[[], OpenSearch],
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_bulk_retry: Callable[[TaskKind], None] | None = None,
    ) -> None:
        """`on_bulk_retry` hears of every `_bulk` sent again (a transient failure or items
        rejected for back-pressure), with the kind of task it writes for."""
        self._client_factory = client_factory
        self._on_bulk_retry = on_bulk_retry
        self._client_instance: OpenSearch | None = None
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._known_indexes: set[str] = set()

    def open(self) -> None:
        """Build the client now (during a function's init), not in the first invocation."""
        self._client  # noqa: B018 - built on first access

    @property
    def _client(self) -> OpenSearch:
        if self._client_instance is None:
            self._client_instance = self._client_factory()
        return self._client_instance

    def _request_timeout(self, deadline: float) -> float:
        """Seconds the next request may take; OutOfTime when too little is left to start one."""
        left = self._retry.time_left(deadline)
        if left < _MIN_REQUEST_SECONDS:
            raise OutOfTime(f"{left:.1f} s left before the deadline; the chunk goes back to the queue")
        return min(REQUEST_TIMEOUT_SECONDS, left)

    def _pause_before(self, attempt: int, deadline: float, last_error: str) -> None:
        """The backoff before retry `attempt`; OutOfTime when it would not leave time to retry."""
        pause = self._retry.delay(attempt)
        if self._retry.time_left(deadline) <= pause + _MIN_REQUEST_SECONDS:
            raise OutOfTime(f"no time left to retry OpenSearch ({last_error}); the chunk goes back to the queue")
        self._sleep(pause)

    def _transient(self, exc: OpenSearchConnectionError | TransportError) -> str:
        """Why `exc` is worth a retry; raises TaskCannotRun for refused access, `exc` itself for
        any other definitive answer."""
        status = exc.status_code if isinstance(exc.status_code, int) else None
        if isinstance(exc, OpenSearchConnectionError) or status in _TRANSIENT_STATUSES:
            return f"OpenSearch unavailable: {exc.error}"
        if status in _ACCESS_REFUSED:
            raise TaskCannotRun(
                f"OpenSearch refused the worker's requests ({status}): check the domain's access policy and the "
                "worker role's es:ESHttp* permissions"
            ) from exc
        raise exc

    def _request(self, call: Callable[[float], Any], deadline: float) -> Any:
        """`call(timeout)`, one OpenSearch request, retried while it fails transiently."""
        last_error = ""
        for attempt in range(self._retry.attempts):
            if attempt:
                self._pause_before(attempt, deadline, last_error)
            try:
                return call(self._request_timeout(deadline))
            except (OpenSearchConnectionError, TransportError) as exc:
                last_error = self._transient(exc)
        raise StillUnavailable(f"{last_error} (gave up after {self._retry.attempts} attempts)")

    def index_exists(self, spec: EmbeddingModelSpec, deadline: float) -> bool:
        if spec.index_name in self._known_indexes:
            return True
        if self._request(
            lambda timeout: self._client.indices.exists(index=spec.index_name, request_timeout=timeout), deadline
        ):
            self._known_indexes.add(spec.index_name)
            return True
        return False

    def ensure_index(self, spec: EmbeddingModelSpec, deadline: float) -> None:
        if self.index_exists(spec, deadline):
            return
        try:
            self._request(
                lambda timeout: self._client.indices.create(
                    index=spec.index_name, body=index_body(spec), request_timeout=timeout
                ),
                deadline,
            )
        except RequestError as exc:
            # Another worker created it between our check and our create.
            if exc.error != "resource_already_exists_exception":
                raise
        self._known_indexes.add(spec.index_name)

    def upsert(
        self, spec: EmbeddingModelSpec, documents: list[VectorDocument], task_id: str, version: int, deadline: float
    ) -> IndexWrite:
        if not documents:
            return IndexWrite([])
        self.ensure_index(spec, deadline)
        now = datetime.now(UTC).isoformat()
        operations: dict[str, list[dict[str, Any]]] = {}
        for doc in documents:
            source: dict[str, Any] = {"object_id": doc.object_id, VECTOR_FIELD: doc.vector, "task_id": task_id}
            source["indexed_at"] = now
            if doc.payload is not None:
                source["payload"] = doc.payload
            if doc.item_info is not None:
                source["item_info"] = doc.item_info
            action = {"_id": doc.object_id, **_versioned(version)}
            operations[doc.object_id] = [{"index": action}, source]
        return self._bulk(
            spec.index_name, TaskKind.UPSERTION, operations, on_not_found=None, version=version, deadline=deadline
        )

    def delete(self, spec: EmbeddingModelSpec, object_ids: list[str], version: int, deadline: float) -> IndexWrite:
        if not object_ids:
            return IndexWrite([])
        # Made (with the k-NN mapping) even for a delete: the delete of a missing document leaves
        # its version behind (a tombstone), so an older upsert that arrives later is refused.
        self.ensure_index(spec, deadline)
        operations = {oid: [{"delete": {"_id": oid, **_versioned(version)}}] for oid in object_ids}
        return self._bulk(
            spec.index_name,
            TaskKind.DELETION,
            operations,
            on_not_found=NOT_FOUND_DETAIL,
            version=version,
            deadline=deadline,
        )

    def _bulk(
        self,
        index: str,
        kind: TaskKind,
        operations: dict[str, list[dict[str, Any]]],
        on_not_found: str | None,
        version: int,
        deadline: float,
    ) -> IndexWrite:
        """Run the operations (keyed by object id) as POST /<index>/_bulk requests of at most
        BULK_MAX_BYTES each; return the items that did not succeed and those superseded. The
        action lines name no index: the domain refuses explicit indexes
        (`rest.action.multi.allow_explicit_index: false`), so the path is what the worker's es
        permission and the access policy scope.
        """
        failures: list[ItemFailure] = []
        superseded: list[str] = []
        for batch in _batches(operations, BULK_MAX_BYTES):
            written = self._bulk_request(index, kind, batch, on_not_found, version, deadline)
            failures.extend(written.failures)
            superseded.extend(written.superseded)
        return IndexWrite(failures, tuple(superseded))

    def _bulk_request(
        self,
        index: str,
        kind: TaskKind,
        operations: dict[str, bytes],
        on_not_found: str | None,
        version: int,
        deadline: float,
    ) -> IndexWrite:
        """One `_bulk` body of operations (their NDJSON lines, keyed by object id).

        Whole requests that fail transiently and items rejected for back-pressure are sent
        again; if some are still pending after the last attempt the chunks come back
        (StillUnavailable), and what this call wrote is simply written again then.
        """
        failures: list[ItemFailure] = []
        superseded: list[str] = []
        pending = operations
        last_error = ""
        for attempt in range(self._retry.attempts):
            if attempt:
                self._pause_before(attempt, deadline, last_error)
                if self._on_bulk_retry is not None:
                    self._on_bulk_retry(kind)
            # One bytes body: opensearch-py sends bytes unchanged.
            body = b"".join(pending.values())
            try:
                response = self._client.bulk(body=body, index=index, request_timeout=self._request_timeout(deadline))
            except (OpenSearchConnectionError, TransportError) as exc:
                last_error = self._transient(exc)
                continue
            results = classify_bulk_items(response["items"], list(pending), on_not_found, version)
            failures.extend(results.failed)
            superseded.extend(results.superseded)
            if results.retry_later:
                last_error = results.retry_reason
            pending = {oid: pending[oid] for oid in results.retry_later}
            if not pending:
                return IndexWrite(failures, tuple(superseded))
        raise StillUnavailable(
            f"{last_error} (gave up after {self._retry.attempts} attempts; {len(pending)} items pending)"
        )


def _batches(operations: dict[str, list[dict[str, Any]]], max_bytes: int) -> list[dict[str, bytes]]:
    """The operations as NDJSON (orjson, vectors as they are), in consecutive batches of at
    most `max_bytes` each (a single operation larger than that goes alone)."""
    batches: list[dict[str, bytes]] = [{}]
    size = 0
    for object_id, lines in operations.items():
        data = b"".join(json_bytes(line) + b"\n" for line in lines)
        if batches[-1] and size + len(data) > max_bytes:
            batches.append({})
            size = 0
        batches[-1][object_id] = data
        size += len(data)
    return [batch for batch in batches if batch]
