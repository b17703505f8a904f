"""JSON Lines input of the CLI: one upsertion item, or one deletion object id, per line.

Each line is checked as the service would check it, so that a bad line is reported with its
number before anything is sent (the service would refuse the whole request, naming no line).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from vector_tasks_client.kinds import Kind
from vector_tasks_client.limits import MAX_ITEM_BYTES, MAX_JSON_DEPTH, MAX_OBJECT_ID_BYTES

UPSERTION_FIELDS = ("object_id", "payload", "item_info")
# The line's value sits two levels down in a create body: {"items": [value]}.
MAX_LINE_DEPTH = MAX_JSON_DEPTH - 2


class InputError(Exception):
    """A line that cannot be sent, or a file that cannot be read; says where."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        super().__init__(f"{source}:{line}: {message}" if line is not None else f"{source}: {message}")


@dataclass(frozen=True)
class Line:
    number: int
    object_id: str
    json: str  # the item (upsertion) or object id (deletion) as sent: compact JSON, keys sorted


def canonical_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


def _depth(value: Any) -> int:
    """How deep arrays and objects nest (iteratively: a line may nest deeper than the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth)
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _object_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string")
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > MAX_OBJECT_ID_BYTES:
        raise ValueError(f"{where} is {size} bytes of UTF-8; the limit is {MAX_OBJECT_ID_BYTES}")
    return value


def _upsertion_item(value: Any) -> tuple[str, Any]:
    if not isinstance(value, dict):
        raise ValueError('an upsertion line is an object: {"object_id": ..., "payload": {...}, "item_info": {...}}')
    unknown = sorted(set(value) - set(UPSERTION_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {', '.join(map(repr, unknown))} (an item has {', '.join(UPSERTION_FIELDS)})")
    object_id = _object_id(value.get("object_id"), "object_id")
    for name in ("payload", "item_info"):
        if value.get(name) is not None and not isinstance(value[name], dict):
            raise ValueError(f"{name} must be an object")
    # The service leaves out null fields before it measures and stores an item; so does this.
    return object_id, {k: v for k, v in value.items() if v is not None}


def _deletion_id(value: Any) -> tuple[str, Any]:
    if isinstance(value, dict) and set(value) == {"object_id"}:
        value = value["object_id"]
    elif not isinstance(value, str):
        raise ValueError('a deletion line is an object id as a JSON string ("doc-1") or {"object_id": "doc-1"}')
    object_id = _object_id(value, "the object id")
    return object_id, object_id


def parse_line(kind: Kind, text: str) -> tuple[str, str]:
    """The object id and the canonical JSON of one line; ValueError says what is wrong."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"not JSON: nesting is deeper than {MAX_LINE_DEPTH} levels") from None
    except ValueError as exc:  # json.JSONDecodeError among them
        raise ValueError(f"not JSON: {exc}") from None
    if _depth(value) > MAX_LINE_DEPTH:
        raise ValueError(f"nesting is deeper than {MAX_LINE_DEPTH} levels")
    object_id, item = _upsertion_item(value) if kind is Kind.UPSERTION else _deletion_id(value)
    encoded = canonical_json(item)
    try:
        size = len(encoded.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff), which is not valid Unicode") from None
    if kind is Kind.UPSERTION and size > MAX_ITEM_BYTES:
        raise ValueError(f"the item is {size} bytes as JSON; the limit is {MAX_ITEM_BYTES}")
    return object_id, encoded


def read_lines(stream: IO[bytes], kind: Kind, source: str) -> Iterator[Line]:
    """Every non-blank line of `stream`, checked; raises InputError at the first bad one."""
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(source, number, f"not UTF-8: {exc.reason} at byte {exc.start}") from None
        if not text.strip():
            continue
        try:
            object_id, encoded = parse_line(kind, text)
        except ValueError as exc:
            raise InputError(source, number, str(exc)) from None
        yield Line(number, object_id, encoded)
