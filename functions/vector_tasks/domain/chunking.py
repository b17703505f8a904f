"""Splitting a task's items into chunks, and the fingerprint that makes create idempotent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from vector_tasks.domain.encoding import json_bytes
from vector_tasks.domain.errors import ItemNotUnicode, ItemTooLarge
from vector_tasks.domain.limits import CHUNK_MAX_BYTES, CHUNK_MAX_ITEMS, MAX_ITEM_BYTES
from vector_tasks.domain.model import Item, TaskKind, item_object_id


def compact_json(value: object) -> str:
    """Sorted, for the fingerprint: the standard library's JSON, so that fingerprints stored by
    earlier versions still match a replay."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def split_into_chunks(
    items: Sequence[Item],
    max_items: int = CHUNK_MAX_ITEMS,
    max_bytes: int = CHUNK_MAX_BYTES,
) -> list[list[Item]]:
    """Consecutive chunks of at most `max_items` items and `max_bytes` bytes of JSON each.

    Raises ItemTooLarge for an item that alone exceeds MAX_ITEM_BYTES, so no chunk can
    outgrow the store's item size whatever the payloads look like.
    """
    chunks: list[list[Item]] = []
    current: list[Item] = []
    current_bytes = 0
    for item in items:
        try:
            size = len(json_bytes(item))
        except UnicodeEncodeError:
            raise ItemNotUnicode(item_object_id(item)) from None
        if size > MAX_ITEM_BYTES:
            raise ItemTooLarge(item_object_id(item), size, MAX_ITEM_BYTES)
        if current and (len(current) >= max_items or current_bytes + size > max_bytes):
            chunks.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += size
    if current:
        chunks.append(current)
    return chunks


def request_fingerprint(kind: TaskKind, embedding_model_id: str, items: Sequence[Item]) -> str:
    """A digest of what a create request asks for; equal bodies give equal fingerprints."""
    body = compact_json({"kind": kind.value, "embedding_model_id": embedding_model_id, "items": list(items)})
    return hashlib.sha256(body.encode()).hexdigest()
