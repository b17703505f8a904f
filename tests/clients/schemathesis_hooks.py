"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by test_schemathesis.py).

What JSON Schema cannot say about a create body, supplied here so that data the document calls
valid is data the service accepts:
- `embedding_model_id` must name a deployed model: any string is schema-valid, but only the
  ids in models.json are deployed. Generated ids are mapped onto the two the local stack can
  run without extras (deterministically, so a seeded run stays reproducible).
- `source.s3_uri` must name a bucket the service may read (ImportBuckets): generated URIs are
  moved onto the local stack's bucket, their keys kept.
- `object_id`s must be unique within a task: `uniqueItems` says so for `object_ids`, but for
  `items` uniqueness is of one field, which JSON Schema cannot express; repeats are dropped.
Schemathesis re-validates a case after a hook changes it, so a negative case that the mapping
happens to make valid is judged as positive.
"""

from __future__ import annotations

import zlib
from typing import Any

import schemathesis

from devstack.template import LOCAL_IMPORT_BUCKET
from vector_tasks.domain.limits import MAX_EMBEDDING_MODEL_ID_LENGTH

DEPLOYED_MODELS = ("local-hash-384", "precomputed-384")


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """On every case of every phase (`map_body` does not reach the coverage phase)."""
    case.body = _deployable(case.body)
    return case


def _deployable(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    model = body.get("embedding_model_id")
    if isinstance(model, str) and 1 <= len(model) <= MAX_EMBEDDING_MODEL_ID_LENGTH:  # leave invalid ones invalid
        body = {**body, "embedding_model_id": DEPLOYED_MODELS[zlib.crc32(model.encode(errors="replace")) % 2]}
    source = body.get("source")
    if isinstance(source, dict) and isinstance(source.get("s3_uri"), str) and source["s3_uri"].startswith("s3://"):
        _, _, key = source["s3_uri"][len("s3://") :].partition("/")
        body = {**body, "source": {**source, "s3_uri": f"s3://{LOCAL_IMPORT_BUCKET}/{key}"}}
    items = body.get("items")
    if isinstance(items, list) and all(isinstance(i, dict) and isinstance(i.get("object_id"), str) for i in items):
        seen: set[str] = set()
        unique = []
        for item in items:
            if item["object_id"] not in seen:
                seen.add(item["object_id"])
                unique.append(item)
        body = {**body, "items": unique}
    return body
