"""Splitting a task's items into chunks, and the fingerprint that makes create idempotent."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from typing import Any

from vector_tasks.domain.encoding import STORED_COMPRESSION_LEVEL, json_bytes, orjson_bytes, sorted_json_bytes
from vector_tasks.domain.errors import ItemNotUnicode, ItemTooLarge
from vector_tasks.domain.limits import CHUNK_MAX_BYTES, CHUNK_MAX_ITEMS, CHUNK_MAX_STORED_BYTES, MAX_ITEM_BYTES
from vector_tasks.domain.model import Item, TaskKind, item_object_id


def compact_json(value: object) -> str:
    """Sorted, for the fingerprints stored before FINGERPRINT_PREFIX: the standard library's
    JSON, so that a replay of such a create still matches."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class Chunk(list[Item]):
    """A chunk's items, and its JSON array as the store keeps it: `stored`, compressed with
    zlib at STORED_COMPRESSION_LEVEL while the split measured the chunk, so the store writes
    these bytes rather than compressing again; `orjson_exact` when orjson wrote every item
    (`orjson_loads` then reads it back exactly)."""

    stored: bytes = b""
    orjson_exact: bool = False


def _compressed_at_most(size: int) -> int:
    """An upper bound of what deflate makes of `size` bytes anywhere in a stream, with the sync
    flush after them: at worst stored blocks, 5 bytes per 64 KB, and the flush's few bytes."""
    return size + (size >> 10) + 64


# A zlib stream's own bytes: its header, and the Adler-32 after the last block.
_ZLIB_HEADER_BYTES, _ZLIB_TRAILER_BYTES = 2, 4


class _ChunkBuilder:
    """One chunk as it grows: its items, their JSON, and once that JSON could outgrow the stored
    bound, a zlib stream of the array. An item is taken while an upper bound of the stored size
    shows that it fits; near the bound the size is measured exactly (a sync flush, then the
    item and the stream's end tried on copies of the stream), so a chunk ends where the next
    item would make its stored bytes exceed the bound, as they are written."""

    def __init__(self) -> None:
        self.items = Chunk()
        self.json_size = 0  # the items' JSON, separators left out
        self._parts: list[bytes] = []  # the items' JSON until the stream starts
        self._deflate: Any = None
        self._out: list[bytes] = []
        self._out_at_flush = _ZLIB_HEADER_BYTES  # compressed bytes up to the last flush (or to come)
        self._since_flush = 0  # bytes of JSON fed since then
        self._orjson_exact = True

    def add(self, item: Item, data: bytes, orjson_exact: bool) -> None:
        """Take the item whatever it costs (the first of a chunk)."""
        if self._deflate is None:
            self._parts.append(data)
        else:
            self._compress((b"," if self.items else b"[") + data)
        self._taken(item, data, orjson_exact)

    def take(self, item: Item, data: bytes, orjson_exact: bool, max_stored_bytes: int) -> bool:
        """Take the item if the chunk's stored bytes stay within `max_stored_bytes` with it."""
        more = len(data) + 2  # its separator, and the array's closing bracket
        if self._deflate is None:
            json_so_far = self.json_size + len(self.items) + 1  # "[" and the separators
            if _ZLIB_HEADER_BYTES + _compressed_at_most(json_so_far + more) + _ZLIB_TRAILER_BYTES <= max_stored_bytes:
                self.add(item, data, orjson_exact)
                return True
            self._deflate = zlib.compressobj(STORED_COMPRESSION_LEVEL)
            self._compress(b"[" + b",".join(self._parts))
            self._parts = []
        if self._out_at_flush + _compressed_at_most(self._since_flush + more) + _ZLIB_TRAILER_BYTES <= max_stored_bytes:
            self.add(item, data, orjson_exact)
            return True
        if self._since_flush:
            self._out.append(self._deflate.flush(zlib.Z_SYNC_FLUSH))
            self._out_at_flush, self._since_flush = sum(map(len, self._out)), 0
        trial = self._deflate.copy()
        added = [trial.compress(b"," + data), trial.flush(zlib.Z_SYNC_FLUSH)]
        ending = trial.copy()
        stored = self._out_at_flush + sum(map(len, added)) + len(ending.compress(b"]")) + len(ending.flush())
        if stored > max_stored_bytes:
            return False
        self._deflate = trial
        self._out.extend(added)
        self._out_at_flush += sum(map(len, added))
        self._taken(item, data, orjson_exact)
        return True

    def finish(self) -> Chunk:
        chunk = self.items
        if self._deflate is None:
            chunk.stored = zlib.compress(b"[" + b",".join(self._parts) + b"]", STORED_COMPRESSION_LEVEL)
        else:
            chunk.stored = b"".join([*self._out, self._deflate.compress(b"]"), self._deflate.flush()])
        chunk.orjson_exact = self._orjson_exact
        return chunk

    def _compress(self, data: bytes) -> None:
        self._out.append(self._deflate.compress(data))
        self._since_flush += len(data)

    def _taken(self, item: Item, data: bytes, orjson_exact: bool) -> None:
        self.items.append(item)
        self.json_size += len(data)
        self._orjson_exact = self._orjson_exact and orjson_exact


def _item_json(item: Item) -> tuple[bytes, bool]:
    """The item's compact JSON, and whether orjson wrote it; ItemNotUnicode for a lone surrogate."""
    data = orjson_bytes(item)
    if data is not None:
        return data, True
    try:
        return json_bytes(item), False
    except UnicodeEncodeError:
        raise ItemNotUnicode(item_object_id(item)) from None


def split_into_chunks(
    items: Sequence[Item],
    max_items: int = CHUNK_MAX_ITEMS,
    max_bytes: int = CHUNK_MAX_BYTES,
    max_stored_bytes: int = CHUNK_MAX_STORED_BYTES,
) -> list[Chunk]:
    """Consecutive chunks of at most `max_items` items, `max_bytes` bytes of JSON and
    `max_stored_bytes` bytes compressed (see CHUNK_MAX_STORED_BYTES) each, each with the bytes
    the store keeps (`Chunk.stored`).

    A chunk's JSON is compressed while it grows only once it could outgrow `max_stored_bytes`,
    and measured exactly only near it (`_ChunkBuilder`). Raises ItemTooLarge for an item that alone
    exceeds MAX_ITEM_BYTES, so no chunk can outgrow the store's item size whatever the payloads
    look like.
    """
    chunks: list[Chunk] = []
    current = _ChunkBuilder()
    for item in items:
        data, orjson_exact = _item_json(item)
        size = len(data)
        if size > MAX_ITEM_BYTES:
            raise ItemTooLarge(item_object_id(item), size, MAX_ITEM_BYTES)
        if not current.items:
            current.add(item, data, orjson_exact)
        elif not (
            len(current.items) < max_items
            and current.json_size + size <= max_bytes
            and current.take(item, data, orjson_exact, max_stored_bytes)
        ):
            chunks.append(current.finish())
            current = _ChunkBuilder()
            current.add(item, data, orjson_exact)
    if current.items:
        chunks.append(current.finish())
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
