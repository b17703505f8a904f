"""One line of an imported object as an item: the rules of the create body, line by line."""

from __future__ import annotations

import orjson
from pydantic import TypeAdapter, ValidationError

from vector_tasks.domain.encoding import json_bytes
from vector_tasks.domain.limits import MAX_ITEM_BYTES
from vector_tasks.domain.model import Item, TaskKind
from vector_tasks.models.api import DataItem, ObjectId

_OBJECT_ID: TypeAdapter[str] = TypeAdapter(ObjectId)


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def parse_line(kind: TaskKind, raw: bytes) -> Item:
    """An upsertion item ({"object_id", "payload"?, "item_info"?}) or an object id (a JSON
    string, or {"object_id": ...}); ValueError saying what is wrong with the line."""
    if len(raw) > MAX_ITEM_BYTES:
        raise ValueError(f"{len(raw)} bytes; an item is at most {MAX_ITEM_BYTES}")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    item: Item
    try:
        if kind is TaskKind.UPSERTION:
            item = DataItem.model_validate(value).model_dump(exclude_none=True)
        else:
            if isinstance(value, dict) and set(value) == {"object_id"}:
                value = value["object_id"]
            item = _OBJECT_ID.validate_python(value, strict=True)
    except ValidationError as exc:
        raise ValueError(_reason(exc)) from None
    try:
        json_bytes(item)
    except UnicodeEncodeError:
        raise ValueError("holds a string that is not Unicode (a lone surrogate)") from None
    return item
