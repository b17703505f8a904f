"""Import by reference: tasks whose items are read from objects in S3 (README, "Import from S3")."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from opensearchpy import OpenSearch

from devstack.template import LOCAL_IMPORT_BUCKET
from tests.support.in_process import InProcessStack
from vector_tasks import wiring
from vector_tasks.domain import sources

MODEL = "local-hash-384"
INDEX = f"vectors-{MODEL}"
UPSERT = "/internal/upsertion-tasks"
DELETE = "/internal/deletion-tasks"


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges of 64 KiB, two a step, so that each object takes several ranges and steps (4 MiB
    would read it in one)."""
    monkeypatch.setattr(sources, "RANGE_BYTES", 64 * 1024)
    monkeypatch.setattr(sources, "RANGES_PER_STEP", 2)
    wiring.reset()


def _line(object_id: str) -> bytes:
    return json.dumps({"object_id": object_id, "payload": {"text": f"text of {object_id}"}}).encode()


def put(stack: InProcessStack, key: str, lines: list[bytes], compress: bool = False) -> None:
    body = b"\n".join(lines) + b"\n"
    stack.s3.put_object(Bucket=LOCAL_IMPORT_BUCKET, Key=key, Body=gzip.compress(body) if compress else body)


def create(stack: InProcessStack, path: str, uri: str, task_id: str) -> tuple[int, dict[str, Any]]:
    body = {"embedding_model_id": MODEL, "task_id": task_id, "source": {"s3_uri": uri}}
    return stack.request("POST", f"{path}/run", body=body)


def info(stack: InProcessStack, path: str, task_id: str, query: str = "") -> dict[str, Any]:
    status, task = stack.request("GET", f"{path}/info", f"task_id={task_id}{query}")
    assert status == 200, task
    return task


def all_failures(stack: InProcessStack, path: str, task_id: str, field: str) -> list[dict[str, str]]:
    failures: list[dict[str, str]] = []
    offset: int | None = 0
    while offset is not None:
        page = info(stack, path, task_id, f"&failures_offset={offset}")
        failures.extend(page[field])
        offset = page["failures_next_offset"]
    return failures


def test_twenty_thousand_lines_over_several_objects_with_gzip_and_bad_lines(
    stack: InProcessStack, opensearch: OpenSearch, small_ranges: None
) -> None:
    bad = {("catalog/part-1.jsonl", 17), ("catalog/part-2.jsonl.gz", 4000), ("catalog/part-3.jsonl", 5000)}
    expected: list[str] = []
    for part in range(4):
        key = f"catalog/part-{part}.jsonl" + (".gz" if part == 2 else "")
        lines = []
        for n in range(1, 5001):
            if (key, n) in bad:
                lines.append(b'{"object_id": "broken' if n != 5000 else b'{"object_id": "x", "colour": 1}')
            else:
                object_id = f"p{part}-{n}"
                lines.append(_line(object_id))
                expected.append(object_id)
        put(stack, key, lines, compress=part == 2)
    status, task = create(stack, UPSERT, f"s3://{LOCAL_IMPORT_BUCKET}/catalog/", "import-20k")
    assert status == 202, task
    assert task["status"] == "pending" and task["progress"]["total"] == 0
    assert task["source"] == {
        "s3_uri": f"s3://{LOCAL_IMPORT_BUCKET}/catalog/",
        "objects_total": None,
        "objects_read": 0,
        "lines_read": 0,
        "complete": False,
    }
    stack.drain()
    task = info(stack, UPSERT, "import-20k")
    assert task["status"] == "done", task["error"]
    assert task["progress"] == {"total": 20_000, "succeeded": 19_997, "failed": 3, "pending": 0, "superseded": 0}
    assert task["source"] == {
        "s3_uri": f"s3://{LOCAL_IMPORT_BUCKET}/catalog/",
        "objects_total": 4,
        "objects_read": 4,
        "lines_read": 20_000,
        "complete": True,
    }
    failures = {f["object_id"]: f["detail"] for f in all_failures(stack, UPSERT, "import-20k", "failed_items")}
    where = f"s3://{LOCAL_IMPORT_BUCKET}/catalog"
    assert set(failures) == {f"{where}/part-1.jsonl:17", f"{where}/part-2.jsonl.gz:4000", f"{where}/part-3.jsonl:5000"}
    assert "not valid JSON" in failures[f"{where}/part-1.jsonl:17"]
    assert "colour" in failures[f"{where}/part-3.jsonl:5000"]
    opensearch.indices.refresh(index=INDEX)
    assert opensearch.count(index=INDEX)["count"] == len(expected) == 19_997


def test_a_missing_object_fails_the_task_with_the_reason(stack: InProcessStack) -> None:
    status, _ = create(stack, UPSERT, f"s3://{LOCAL_IMPORT_BUCKET}/nothing/here.jsonl", "import-missing")
    assert status == 202
    stack.drain()
    task = info(stack, UPSERT, "import-missing")
    assert task["status"] == "failed"
    assert "no object is named" in task["error"] and "nothing/here.jsonl" in task["error"]


def test_a_deletion_imports_object_ids(stack: InProcessStack, opensearch: OpenSearch) -> None:
    put(stack, "keep/items.jsonl", [_line(f"d-{n}") for n in range(30)])
    assert create(stack, UPSERT, f"s3://{LOCAL_IMPORT_BUCKET}/keep/items.jsonl", "up")[0] == 202
    stack.drain()
    put(stack, "gone/ids.jsonl", [json.dumps(f"d-{n}").encode() for n in range(10)] + [b'{"object_id": "d-10"}', b"7"])
    assert create(stack, DELETE, f"s3://{LOCAL_IMPORT_BUCKET}/gone/ids.jsonl", "del")[0] == 202
    stack.drain()
    task = info(stack, DELETE, "del")
    assert task["status"] == "done"
    assert task["progress"] == {"total": 12, "succeeded": 11, "failed": 1, "pending": 0, "superseded": 0}
    assert task["failed_item_ids"][0]["object_id"].endswith("gone/ids.jsonl:12")
    opensearch.indices.refresh(index=INDEX)
    assert opensearch.count(index=INDEX)["count"] == 19


def test_a_bucket_not_named_by_import_buckets_is_refused(stack: InProcessStack) -> None:
    status, body = create(stack, UPSERT, "s3://someone-elses-bucket/data.jsonl", "elsewhere")
    assert status == 422
    assert body["error"]["code"] == "import_bucket_not_allowed"
    assert LOCAL_IMPORT_BUCKET in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (
            {"items": [{"object_id": "a", "payload": {"text": "t"}}], "source": {"s3_uri": "s3://vector-imports/x"}},
            "items_or_source",
        ),
        ({}, "items_or_source"),
        ({"source": None}, "model_attributes_type"),
    ],
    ids=["both", "neither", "null"],
)
def test_items_and_source_are_one_or_the_other(stack: InProcessStack, body: dict[str, Any], kind: str) -> None:
    status, answer = stack.request("POST", f"{UPSERT}/run", body={"embedding_model_id": MODEL, **body})
    assert status in (400, 422), answer
    assert kind in {d["type"] for d in answer["error"]["details"]}, answer
