"""`strict_json_loads`: orjson's fast parse gives exactly what the standard library gives, and
whatever it cannot read exactly (long integers, NaN, lone surrogates, deep nesting) takes the
standard library's path, with its answers and messages (unit tier)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from vector_tasks.adapters.task_codec import CHUNK_CODEC, ORJSON_CODEC, chunk_item, chunk_items, pack
from vector_tasks.domain.encoding import json_bytes, json_loads, may_misread_integers, may_overflow
from vector_tasks.domain.model import TaskKind
from vector_tasks.handlers.http import MAX_JSON_DEPTH, strict_json_loads


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, the sign of a zero included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 4 else 6)
    if pick == 0:
        return rng.choice([None, True, False])
    if pick == 1:
        return rng.randrange(-(10**17), 10**17)
    if pick == 2:
        return rng.uniform(-1e6, 1e6) * rng.choice([1, 1e-300, 1e300, 1e-7])
    if pick == 3:
        return round(rng.gauss(0, 1), rng.randrange(1, 9))
    if pick == 4:
        return rng.choice([0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e16, 123456789.0])
    if pick == 5:
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x2FFF), 0x1F642, 0])) for _ in range(5)
        )
    if pick in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {f"k{rng.randrange(4)}": random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_the_fast_parse_is_the_standard_librarys_on_random_documents() -> None:
    rng = random.Random(20261202)
    fast = 0
    for _ in range(2_000):
        doc = json.dumps(random_value(rng), ensure_ascii=rng.random() < 0.5)
        assert same(strict_json_loads(doc), json.loads(doc)), doc
        fast += not may_misread_integers(doc.encode(errors="replace"))
    assert fast > 1_000  # most of them took orjson's path


@pytest.mark.parametrize(
    "doc",
    [
        "[18446744073709551616, -9223372036854775809, 1000000000000000000000000000001]",  # past 64 bits
        "[1234567890123456789.5, 0.1000000000000000055511151231257827]",  # 19 digits in a row
        '{"a": 1, "a": 2}',  # the last one wins
        '"\\ud83d"',  # a lone surrogate, which the standard library accepts
        "[1E5, 1e-7, -0, -0.0, 2.5e+3]",
        " \n [1] \t",
    ],
)
def test_what_orjson_would_read_otherwise_is_read_as_before(doc: str) -> None:
    assert same(strict_json_loads(doc), json.loads(doc))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ('{"x": NaN}', "NaN is not a JSON value"),
        ("[-Infinity]", "-Infinity is not a JSON value"),
        ("[1e400]", "number 1e400 is out of range"),
        ("[1, 2", "Expecting"),
        ("[1]x", "Extra data"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "nesting is deeper than 64 levels"),
        ("[" * 5_000 + "]" * 5_000, "nesting is deeper than 64 levels"),
    ],
)
def test_refusals_say_what_is_wrong(doc: str, message: str) -> None:
    with pytest.raises(json.JSONDecodeError, match=message.replace("[", r"\[")):
        strict_json_loads(doc)


@pytest.mark.parametrize(
    "value",
    [
        [18446744073709551616, -9223372036854775809, 10**30 + 1],  # past 64 bits: the standard library's path
        [1234567890123456789, 0.1, 1e-7, 1.7976931348623157e308, -0.0],
        {"object_id": "a", "vector": [0.12345679, -1.5e-05], "payload": {"n": 2**63 - 1}},
    ],
)
def test_stored_json_reads_back_as_it_was_written(value: object) -> None:
    assert same(json_loads(json_bytes(value)), value)
    assert same(json_loads(json_bytes(value)), json.loads(json_bytes(value)))


@pytest.mark.parametrize(
    ("items", "written_by_orjson"),
    [
        ([{"object_id": "a", "payload": {"vector": [0.12345679, -1.5e-05, 1e300], "n": 2**64 - 1}}], True),
        ([{"object_id": "a", "payload": {"n": -(2**63)}}, "🙂"], True),
        ([{"object_id": "a", "payload": {"n": 2**64}}], False),  # past 64 bits: the standard library wrote it
    ],
)
def test_stored_chunks_say_which_codec_wrote_them_and_read_back_exactly(
    items: list[Any], written_by_orjson: bool
) -> None:
    stored = chunk_item(TaskKind.UPSERTION, "t", "ORIGINAL", 0, items, expires_at=1)
    assert (stored.get(CHUNK_CODEC) == ORJSON_CODEC) is written_by_orjson
    assert same(chunk_items(stored), items)


def test_chunks_stored_before_the_codec_attribute_read_as_before() -> None:
    items = [{"object_id": "a", "payload": {"n": 1234567890123456789012, "f": 0.1}}]
    stored = {"pk": "p", "sk": "s", "item_count": 1, "items": pack(items)}
    assert same(chunk_items(stored), items)


def test_overflow_is_found_in_exponents_past_99_however_they_are_spelled() -> None:
    for doc in (b"1e100", b"1E+100", b"[2.5e+1000]", b"1e0100", b"1" * 200):
        assert may_overflow(doc), doc
    for doc in (b"1e99", b"1e-400", b"[1E+05, 2e-100]", b'"e+1"', b"1" * 199):
        assert not may_overflow(doc), doc


def test_integers_orjson_may_misread_are_found_by_their_digits() -> None:
    assert may_misread_integers(b"[1234567890123456789]")
    assert may_misread_integers(b"[1.2345678901234567890]")  # conservative: any 19 digits in a row
    assert not may_misread_integers(b"[123456789012345678, 1e300, 0.12345678]")


@pytest.mark.parametrize("doc", ["[1e300, -2.5E+250, 1e-400, 4.9e-324]", '{"v": [1.7976931348623157e308]}'])
def test_large_finite_exponents_take_orjsons_path_and_read_as_the_standard_library_does(doc: str) -> None:
    assert not may_misread_integers(doc.encode())
    assert same(strict_json_loads(doc), json.loads(doc))
