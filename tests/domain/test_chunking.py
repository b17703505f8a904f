"""Chunks and items exactly at their bounds, and the create fingerprint."""

from __future__ import annotations

import hashlib

import pytest

from vector_tasks.domain.chunking import compact_json, request_fingerprint, split_into_chunks
from vector_tasks.domain.errors import ItemNotUnicode, ItemTooLarge
from vector_tasks.domain.limits import CHUNK_MAX_BYTES, CHUNK_MAX_ITEMS, MAX_ITEM_BYTES
from vector_tasks.domain.model import Item, TaskKind


def sized(object_id: str, size: int, char: str = "a") -> dict[str, object]:
    """An item whose compact JSON is exactly `size` bytes of UTF-8 (`char` is 1 or 2 bytes)."""
    base = len(compact_json({"object_id": object_id, "payload": {"text": ""}}).encode())
    width = len(char.encode())
    assert (size - base) % width == 0
    item: dict[str, object] = {"object_id": object_id, "payload": {"text": char * ((size - base) // width)}}
    assert len(compact_json(item).encode()) == size
    return item


def size_of(item: Item) -> int:
    return len(compact_json(item).encode())


def test_no_items_no_chunks() -> None:
    assert split_into_chunks([]) == []


def test_an_item_exactly_at_the_limit_is_taken_and_one_byte_more_is_not() -> None:
    at_limit = sized("edge", MAX_ITEM_BYTES)
    assert split_into_chunks([at_limit]) == [[at_limit]]
    over = sized("edge", MAX_ITEM_BYTES + 1)
    with pytest.raises(ItemTooLarge) as refused:
        split_into_chunks([{"object_id": "ok"}, over])
    assert refused.value.message == (
        f"Item 'edge' is {MAX_ITEM_BYTES + 1} bytes as JSON; the limit per item is {MAX_ITEM_BYTES} bytes"
    )


def test_sizes_are_utf8_bytes_not_characters() -> None:
    # 2-byte characters: as characters (or as \\u escapes) this item would measure otherwise.
    at_limit = sized("é", MAX_ITEM_BYTES, char="é")
    assert split_into_chunks([at_limit]) == [[at_limit]]
    with pytest.raises(ItemTooLarge):
        split_into_chunks([sized("é", MAX_ITEM_BYTES + 2, char="é")])


def test_a_chunk_exactly_at_the_byte_bound_is_one_chunk() -> None:
    quarter = CHUNK_MAX_BYTES // 4
    items = [sized(f"i{n}", quarter) for n in range(4)]
    assert sum(map(size_of, items)) == CHUNK_MAX_BYTES
    assert split_into_chunks(items) == [items]
    one_more = [*items[:3], sized("i3", quarter + 1)]
    assert split_into_chunks(one_more) == [one_more[:3], one_more[3:]]


def test_the_byte_bound_counts_from_the_start_of_each_chunk() -> None:
    big = [sized(f"b{n}", CHUNK_MAX_BYTES // 2) for n in range(5)]
    assert split_into_chunks(big) == [big[0:2], big[2:4], big[4:5]]


def test_a_chunk_exactly_at_the_item_bound_is_one_chunk() -> None:
    ids: list[Item] = [f"id-{n}" for n in range(CHUNK_MAX_ITEMS)]
    assert split_into_chunks(ids) == [ids]
    more: list[Item] = [*ids, "last"]
    assert split_into_chunks(more) == [ids, ["last"]]
    assert split_into_chunks(more, max_items=2) == [more[i : i + 2] for i in range(0, len(more), 2)]


def test_explicit_bounds() -> None:
    items: list[Item] = ["a", "b", "c"]  # 3 bytes of JSON each
    assert split_into_chunks(items, max_bytes=6) == [["a", "b"], ["c"]]
    assert split_into_chunks(items, max_bytes=5) == [["a"], ["b"], ["c"]]
    assert split_into_chunks(items, max_items=1) == [["a"], ["b"], ["c"]]


def test_a_lone_surrogate_is_refused_by_name() -> None:
    with pytest.raises(ItemNotUnicode, match="Item 'bad'"):
        split_into_chunks([{"object_id": "ok"}, {"object_id": "bad", "payload": {"text": "\ud83d"}}])


def test_compact_json_is_compact_sorted_and_unescaped() -> None:
    assert compact_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'


def test_the_fingerprint_is_the_digest_of_the_request() -> None:
    items: list[Item] = [{"object_id": "x", "payload": {"text": "t", "n": 1}}]
    fingerprint = request_fingerprint(TaskKind.UPSERTION, "m", items)
    body = '{"embedding_model_id":"m","items":[{"object_id":"x","payload":{"n":1,"text":"t"}}],"kind":"upsertion"}'
    assert fingerprint == hashlib.sha256(body.encode()).hexdigest()
    assert request_fingerprint(TaskKind.DELETION, "m", items) != fingerprint
    assert request_fingerprint(TaskKind.UPSERTION, "m2", items) != fingerprint
