"""Splitting a task's items into chunks, and the fingerprint that makes create idempotent."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence

from vector_tasks.domain.encoding import json_bytes, sorted_json_bytes
from vector_tasks.domain.errors import ItemNotUnicode, ItemTooLarge
from vector_tasks.domain.limits import CHUNK_MAX_BYTES, CHUNK_MAX_ITEMS, CHUNK_MAX_STORED_BYTES, MAX_ITEM_BYTES
from vector_tasks.domain.model import Item, TaskKind, item_object_id


def compact_json(value: object) -> str:
    """Sorted, for the fingerprints stored before FINGERPRINT_PREFIX: the standard library's
    JSON, so that a replay of such a create still matches."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class _StoredSize:
    """The size of a chunk's JSON array compressed as the store packs it (zlib, level 1), grown
    an item at a time: each item is flushed (Z_SYNC_FLUSH), so the bytes out so far are the
    compressed size up to it, to within the few bytes of the stream's end."""

    def __init__(self, parts: list[bytes]) -> None:
        self._deflate = zlib.compressobj(1)
        self.size = 0
        for part in parts:
            self.add(part)

    def add(self, part: bytes) -> int:
        self.size += len(self._deflate.compress(part)) + len(self._deflate.flush(zlib.Z_SYNC_FLUSH))
        return self.size


def split_into_chunks(
    items: Sequence[Item],
    max_items: int = CHUNK_MAX_ITEMS,
    max_bytes: int = CHUNK_MAX_BYTES,
    max_stored_bytes: int = CHUNK_MAX_STORED_BYTES,
) -> list[list[Item]]:
    """Consecutive chunks of at most `max_items` items, `max_bytes` bytes of JSON and
    `max_stored_bytes` bytes compressed (see CHUNK_MAX_STORED_BYTES) each.

    Items are compressed only once a chunk's JSON outgrows `max_stored_bytes`: below it the
    compressed size cannot exceed the bound. Raises ItemTooLarge for an item that alone exceeds
    MAX_ITEM_BYTES, so no chunk can outgrow the store's item size whatever the payloads look like.
    """
    chunks: list[list[Item]] = []
    current: list[Item] = []
    encoded: list[bytes] = []  # the current chunk's items as JSON, until `stored` takes over
    current_bytes = 0
    stored: _StoredSize | None = None
    for item in items:
        try:
            data = json_bytes(item)
        except UnicodeEncodeError:
            raise ItemNotUnicode(item_object_id(item)) from None
        size = len(data)
        if size > MAX_ITEM_BYTES:
            raise ItemTooLarge(item_object_id(item), size, MAX_ITEM_BYTES)
        if current and (len(current) >= max_items or current_bytes + size > max_bytes):
            full = True
        elif current_bytes + size <= max_stored_bytes:
            full = False
        else:
            if stored is None:
                stored, encoded = _StoredSize(encoded), []
            full = stored.add(data) > max_stored_bytes and bool(current)
        if full:
            chunks.append(current)
            current, encoded, current_bytes, stored = [], [], 0, None
        current.append(item)
        current_bytes += size
        if stored is None:
            encoded.append(data)
    if current:
        chunks.append(current)
    return chunks


# Fingerprints taken with orjson (sorted keys) carry this prefix; those without it were taken
# with the standard library's JSON (`compact_json`), ten times slower on a body of vectors.
FINGERPRINT_PREFIX = "v2:"


def _request(kind: TaskKind, embedding_model_id: str, items: Sequence[Item]) -> dict[str, object]:
    return {"kind": kind.value, "embedding_model_id": embedding_model_id, "items": list(items)}


def request_fingerprint(kind: TaskKind, embedding_model_id: str, items: Sequence[Item]) -> str:
    """A digest of what a create request asks for; equal bodies give equal fingerprints."""
    body = sorted_json_bytes(_request(kind, embedding_model_id, items))
    return FINGERPRINT_PREFIX + hashlib.sha256(body).hexdigest()


def source_fingerprint(kind: TaskKind, embedding_model_id: str, s3_uri: str) -> str:
    """The fingerprint of an import's create: what it reads, not the items (not read yet)."""
    body = sorted_json_bytes({"kind": kind.value, "embedding_model_id": embedding_model_id, "source": s3_uri})
    return FINGERPRINT_PREFIX + hashlib.sha256(body).hexdigest()


def fingerprint_matches(stored: str, kind: TaskKind, embedding_model_id: str, items: Sequence[Item]) -> bool:
    """Whether a create request is the one a stored task was created from, whichever way its
    fingerprint was taken."""
    if stored.startswith(FINGERPRINT_PREFIX):
        return stored == request_fingerprint(kind, embedding_model_id, items)
    body = compact_json(_request(kind, embedding_model_id, items))
    return stored == hashlib.sha256(body.encode()).hexdigest()
