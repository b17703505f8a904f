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


def json_bytes(value: object) -> bytes:
    """`value` as compact UTF-8 JSON. Raises UnicodeEncodeError for a string that is not
    Unicode (a lone surrogate, which JSON's \\ud800 escape can carry)."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
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
