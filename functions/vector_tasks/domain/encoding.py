"""Compact JSON for what the service stores and sends (chunks, `_bulk` bodies) and digests
(create fingerprints), fast.

orjson writes the same JSON as the standard library, up to the spelling of a negative exponent
(1e-7, not 1e-07), five to ten times faster and numpy arrays included. It refuses integers past
64 bits, which JSON callers may send: those values take the standard library's path.
"""

from __future__ import annotations

import json

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY

# zlib's level for what the store keeps compressed (chunks, failure lists). Level 1: on a chunk
# of vectors (280 KB of JSON) 4 ms and 130 KB; the default level 6 takes 30 ms for 115 KB. A
# stored chunk is written once and read once or twice.
STORED_COMPRESSION_LEVEL = 1

# A number past a float's range (1.8e308) or past the integer digit limit needs a positive
# exponent of 100 or more, or 200 digits in a row (under 1e200 times at most 1e99 stays finite).
# orjson reads an integer past 64 bits as a float: with no 19 digits in a row, every integer is
# under 10**18, which it reads exactly, as it reads every float as the standard library does.
# Both are found by byte searches on the text with its digits made zeros, its exponent marks
# "e" and its "+" signs gone, 4 MB in about 15 ms (a regex took 150 ms).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
_OVERFLOW_RUN = b"0" * 200
_ORJSON_RUN = b"0" * 19
# Searched for in the text reversed: a needle ending in a digit is tried at nearly every byte
# of a body of numbers, one ending in "e" skips ahead by its length.
_EXPONENT_100_REVERSED = b"000e"


def orjson_bytes(value: object) -> bytes | None:
    """`value` as compact UTF-8 JSON by orjson; None where orjson cannot write it (an integer
    past 64 bits, a lone surrogate). `orjson.loads` reads back exactly what it wrote."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return None


def json_bytes(value: object) -> bytes:
    """`value` as compact UTF-8 JSON. Raises UnicodeEncodeError for a string that is not
    Unicode (a lone surrogate, which JSON's \\ud800 escape can carry)."""
    data = orjson_bytes(value)
    if data is not None:
        return data
    # An integer past 64 bits, or a lone surrogate, which encode() then names.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sorted_json_bytes(value: object) -> bytes:
    """`value` as compact UTF-8 JSON with every object's keys sorted: the same value always
    gives the same bytes (an integer past 64 bits takes the standard library's path, as
    deterministically)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _digits_as_zeros(data: bytes) -> bytes:
    return data.translate(_DIGITS_AS_ZERO, b"+")


def may_misread_integers(data: bytes) -> bool:
    """Whether JSON text `data` may hold an integer orjson would not read exactly (19 digits in
    a row): False for nearly every document, which orjson then reads as the standard library
    does, floats included (both round correctly)."""
    return _ORJSON_RUN in _digits_as_zeros(data)


def may_overflow(data: bytes) -> bool:
    """Whether JSON text `data` may hold a number past a float's range or past the integer digit
    limit. Asked only of a document orjson refused (it refuses such a number)."""
    digits = _digits_as_zeros(data)
    return _EXPONENT_100_REVERSED in digits[::-1] or _OVERFLOW_RUN in digits


def json_loads(data: bytes) -> object:
    """JSON that `json_bytes` wrote, read back as the standard library reads it: by orjson
    unless an integer in it may be past 64 bits."""
    if may_misread_integers(data):
        return json.loads(data)
    return orjson.loads(data)


def orjson_loads(data: bytes) -> object:
    """JSON that `orjson_bytes` wrote, read back exactly (no integer in it is past 64 bits)."""
    return orjson.loads(data)
