"""Chunks and items exactly at their bounds, and the create fingerprint."""

from __future__ import annotations

import hashlib
import itertools
import random
import zlib

import pytest

from vector_tasks.domain.chunking import compact_json, fingerprint_matches, request_fingerprint, split_into_chunks
from vector_tasks.domain.encoding import json_bytes, json_loads
from vector_tasks.domain.errors import ItemNotUnicode, ItemTooLarge
from vector_tasks.domain.limits import CHUNK_MAX_BYTES, CHUNK_MAX_ITEMS, CHUNK_MAX_STORED_BYTES, MAX_ITEM_BYTES
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
    quarter = CHUNK_MAX_BYTES // 4  # items of one repeated letter: they compress far below the stored bound
    items = [sized(f"i{n}", quarter) for n in range(4)]
    assert sum(map(size_of, items)) == CHUNK_MAX_BYTES
    assert split_into_chunks(items) == [items]
    one_more = [*items[:3], sized("i3", quarter - 40), sized("i4", 41)]
    assert split_into_chunks(one_more) == [one_more[:4], one_more[4:]]


def test_the_byte_bound_counts_from_the_start_of_each_chunk() -> None:
    big = [sized(f"b{n}", CHUNK_MAX_BYTES // 5) for n in range(11)]
    assert split_into_chunks(big) == [big[0:5], big[5:10], big[10:11]]


def incompressible(object_id: str, rng: random.Random, size: int = 4_000) -> dict[str, object]:
    # Characters drawn from 4,096 code points: zlib gains little on them.
    text = "".join(chr(0x4E00 + rng.randrange(4_096)) for _ in range(size // 3))
    return {"object_id": object_id, "payload": {"text": text}}


def stored_size(items: list[Item]) -> int:
    """What the store writes for a chunk (`task_codec.pack`)."""
    return len(zlib.compress(json_bytes(items), 1))


def test_chunks_of_items_that_do_not_compress_end_at_the_stored_bound() -> None:
    rng = random.Random(7)
    items = [incompressible(f"z{n}", rng) for n in range(400)]
    chunks = split_into_chunks(items)
    assert [i for c in chunks for i in c] == items
    assert len(chunks) > 2
    for chunk, following in itertools.pairwise(chunks):
        assert stored_size(chunk) <= CHUNK_MAX_STORED_BYTES
        # Tight: the next item would not have fitted (the flushed measure is a little larger
        # than the store's one-shot compression, never smaller).
        assert stored_size([*chunk, following[0]]) > CHUNK_MAX_STORED_BYTES - 6_000
        assert sum(map(size_of, chunk)) < CHUNK_MAX_BYTES


def test_vectors_are_chunked_by_their_compressed_size() -> None:
    """384-dimension vectors of 6 decimals as JSON compress to under half, so a chunk holds more
    than twice what 300 KB of JSON would (77 items), and its stored form stays bounded."""
    rng = random.Random(3)
    items: list[Item] = [
        {"object_id": f"v{n}", "vector": [round(rng.gauss(0, 1), 6) for _ in range(384)]} for n in range(1_000)
    ]
    chunks = split_into_chunks(items)
    assert all(stored_size(c) <= CHUNK_MAX_STORED_BYTES for c in chunks)
    assert min(len(c) for c in chunks[:-1]) > 160
    assert sum(map(size_of, chunks[0])) > CHUNK_MAX_STORED_BYTES


def test_explicit_stored_bound() -> None:
    rng = random.Random(11)
    items = [incompressible(f"s{n}", rng, size=900) for n in range(6)]  # 939 bytes of JSON, ~685 stored
    chunks = split_into_chunks(items, max_stored_bytes=1_500)
    assert [len(c) for c in chunks] == [2, 2, 2]
    # A lone item over a tiny stored bound is still a chunk of its own, never an empty one.
    assert split_into_chunks(items[:2], max_stored_bytes=100) == [[items[0]], [items[1]]]


def mixed_items(rng: random.Random, count: int) -> list[Item]:
    """Vectors, text that compresses well, text that does not, ids: sizes from tens of bytes up."""
    makers = [
        lambda n: {"object_id": f"v{n}", "payload": {"vector": [round(rng.gauss(0, 1), 6) for _ in range(96)]}},
        lambda n: {"object_id": f"t{n}", "payload": {"text": "lorem ipsum " * rng.randrange(1, 400)}},
        lambda n: incompressible(f"z{n}", rng, size=rng.randrange(30, 3_000)),
        lambda n: f"id-{n}",
    ]
    return [rng.choice(makers)(n) for n in range(count)]


@pytest.mark.parametrize("seed", range(8))
def test_stored_bytes_are_the_chunks_json_within_the_bound_and_the_next_item_would_not_fit(seed: int) -> None:
    rng = random.Random(seed)
    items = mixed_items(rng, 300)
    bound = rng.choice([2_000, 9_000, 40_000, 120_000])
    chunks = split_into_chunks(items, max_stored_bytes=bound)
    assert [i for c in chunks for i in c] == items
    for chunk, following in itertools.pairwise([*chunks, None]):
        assert zlib.decompress(chunk.stored) == json_bytes(list(chunk))
        assert chunk.orjson_exact
        assert len(chunk.stored) <= bound or len(chunk) == 1
        if following is not None and len(chunk) < CHUNK_MAX_ITEMS:
            # Ended by the stored bound, near it: a next item with room for its JSON and the
            # flush would have been taken (and, tried again, the split ends there again).
            assert len(chunk.stored) + len(json_bytes(following[0])) + 70 > bound
            assert split_into_chunks([*chunk, following[0]], max_stored_bytes=bound)[0] == chunk


def test_an_item_the_standard_library_writes_inside_a_compressed_chunk_reads_back_exactly() -> None:
    rng = random.Random(5)
    items: list[Item] = [
        {"object_id": f"v{n}", "vector": [round(rng.gauss(0, 1), 6) for _ in range(384)]} for n in range(400)
    ]
    items[250] = {"object_id": "wide", "payload": {"n": 2**70, "vector": items[250]["vector"]}}  # type: ignore[index]
    chunks = split_into_chunks(items)
    assert len(chunks) > 2 and sum(map(size_of, chunks[0])) > CHUNK_MAX_STORED_BYTES  # streamed chunks
    for chunk in chunks:
        assert chunk.orjson_exact is (items[250] not in chunk)
        assert json_loads(zlib.decompress(chunk.stored)) == list(chunk)


def test_a_chunk_with_an_integer_past_64_bits_is_not_marked_for_orjson() -> None:
    plain, wide = {"object_id": "a", "payload": {"n": 2**63}}, {"object_id": "b", "payload": {"n": 2**64}}
    assert split_into_chunks([plain])[0].orjson_exact
    (chunk,) = split_into_chunks([plain, wide])
    assert not chunk.orjson_exact
    assert json_loads(zlib.decompress(chunk.stored)) == [plain, wide]


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
    assert fingerprint == "v2:" + hashlib.sha256(body.encode()).hexdigest()
    assert request_fingerprint(TaskKind.DELETION, "m", items) != fingerprint
    assert request_fingerprint(TaskKind.UPSERTION, "m2", items) != fingerprint


def test_a_body_orjson_cannot_write_has_a_fingerprint_too() -> None:
    items: list[Item] = [{"object_id": "x", "payload": {"big": 2**70, "b": 1e-5}}]
    body = (
        '{"embedding_model_id":"m","items":[{"object_id":"x","payload":{"b":1e-05,"big":1180591620717411303424}}],'
        '"kind":"upsertion"}'
    )
    assert request_fingerprint(TaskKind.UPSERTION, "m", items) == "v2:" + hashlib.sha256(body.encode()).hexdigest()


def test_fingerprints_taken_either_way_match_their_request() -> None:
    """Tasks stored before the v2 fingerprint carry the standard library's digest: a replay of
    their create still matches (1e-05, as that library spells it, included), another body not."""
    items: list[Item] = [{"object_id": "x", "payload": {"v": [1e-05, 0.5], "é": "ü"}}]
    legacy = hashlib.sha256(compact_json({"kind": "upsertion", "embedding_model_id": "m", "items": items}).encode())
    assert fingerprint_matches(legacy.hexdigest(), TaskKind.UPSERTION, "m", items)
    assert not fingerprint_matches(legacy.hexdigest(), TaskKind.UPSERTION, "m", [{"object_id": "x"}])
    assert not fingerprint_matches(legacy.hexdigest(), TaskKind.DELETION, "m", items)
    current = request_fingerprint(TaskKind.UPSERTION, "m", items)
    assert fingerprint_matches(current, TaskKind.UPSERTION, "m", items)
    assert not fingerprint_matches(current, TaskKind.UPSERTION, "m2", items)
