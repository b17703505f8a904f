from __future__ import annotations

import pytest

from vector_tasks.domain.chunking import request_fingerprint, split_into_chunks
from vector_tasks.domain.errors import ItemTooLarge
from vector_tasks.domain.limits import CHUNK_MAX_BYTES, CHUNK_MAX_ITEMS, MAX_ITEM_BYTES
from vector_tasks.domain.model import TaskKind


def test_chunks_hold_at_most_the_item_bound_and_keep_order() -> None:
    items = [{"object_id": str(i)} for i in range(CHUNK_MAX_ITEMS * 2 + 5)]
    chunks = split_into_chunks(items)
    assert [len(c) for c in chunks] == [CHUNK_MAX_ITEMS, CHUNK_MAX_ITEMS, 5]
    assert [i for c in chunks for i in c] == items


def test_chunks_hold_at_most_the_byte_bound() -> None:
    items = [{"object_id": str(i), "payload": {"text": "x" * 100_000}} for i in range(25)]
    chunks = split_into_chunks(items)
    assert all(sum(len(str(i)) for i in c) <= CHUNK_MAX_BYTES for c in chunks)
    assert [len(c) for c in chunks] == [10, 10, 5]


def test_an_item_over_the_limit_is_refused_by_name() -> None:
    with pytest.raises(ItemTooLarge, match="'big'"):
        split_into_chunks([{"object_id": "ok"}, {"object_id": "big", "payload": {"t": "x" * MAX_ITEM_BYTES}}])


def test_deletion_ids_are_chunked_too() -> None:
    assert split_into_chunks(["a", "b", "c"], max_items=2) == [["a", "b"], ["c"]]


def test_fingerprint_depends_on_content_not_key_order() -> None:
    a = request_fingerprint(TaskKind.UPSERTION, "m", [{"object_id": "1", "payload": {"x": 1, "y": 2}}])
    b = request_fingerprint(TaskKind.UPSERTION, "m", [{"payload": {"y": 2, "x": 1}, "object_id": "1"}])
    assert a == b
    assert a != request_fingerprint(TaskKind.UPSERTION, "m2", [{"object_id": "1", "payload": {"x": 1, "y": 2}}])
    assert a != request_fingerprint(TaskKind.DELETION, "m", [{"object_id": "1", "payload": {"x": 1, "y": 2}}])
