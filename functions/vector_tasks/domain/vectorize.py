"""The input rules: turning upsertion items into vectors with a registered model, item by item.

An item that cannot be embedded becomes an ItemFailure whose detail says what to fix;
the other items of the chunk go on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vector_tasks.domain.embedder import TextEmbedder
from vector_tasks.domain.model import ItemFailure
from vector_tasks.domain.registry import EmbeddingModelSpec, InputSource


@dataclass(frozen=True)
class VectorDocument:
    object_id: str
    vector: list[float]
    payload: dict[str, Any] | None
    item_info: dict[str, Any] | None


class NotEmbeddable(ValueError):
    pass


_MISSING = object()


def _lookup(payload: dict[str, Any], dotted: str) -> object:
    value: object = payload
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _without(payload: dict[str, Any], dotted: str) -> dict[str, Any]:
    """A copy of payload without the field at `dotted` (the vector is stored once, as the vector)."""
    head, _, rest = dotted.partition(".")
    copy = dict(payload)
    if rest and isinstance(copy.get(head), dict):
        copy[head] = _without(copy[head], rest)
    else:
        copy.pop(head, None)
    return copy


def _input_of(spec: EmbeddingModelSpec, item: dict[str, Any]) -> object:
    where = f"payload.{spec.input.field}"
    payload = item.get("payload")
    if payload is None:
        raise NotEmbeddable(f"Item has no payload; model '{spec.id}' reads its input from {where}")
    value = _lookup(payload, spec.input.field)
    if value is _MISSING:
        raise NotEmbeddable(f"{where} is missing; model '{spec.id}' reads its input from {where}")
    return value


def _text_of(spec: EmbeddingModelSpec, item: dict[str, Any]) -> str:
    value = _input_of(spec, item)
    where = f"payload.{spec.input.field}"
    if not isinstance(value, str):
        raise NotEmbeddable(f"{where} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise NotEmbeddable(f"{where} is empty")
    return value


_NUMBER_TYPES = frozenset({int, float})
_FLOAT_ONLY = frozenset({float})


def _vector_of(spec: EmbeddingModelSpec, item: dict[str, Any]) -> list[float]:
    value = _input_of(spec, item)
    where = f"payload.{spec.input.field}"
    # Exact types, gathered once in C (map, set): JSON gives int and float only, and bool is not
    # a number.
    types = set(map(type, value)) if isinstance(value, list) else {type(value)}
    if not isinstance(value, list) or not types <= _NUMBER_TYPES:
        raise NotEmbeddable(f"{where} must be a list of numbers")
    if len(value) != spec.dimension:
        raise NotEmbeddable(f"{where} has {len(value)} values; model '{spec.id}' expects {spec.dimension}")
    vector = value if types <= _FLOAT_ONLY else [float(x) for x in value]
    if not all(map(math.isfinite, vector)):
        raise NotEmbeddable(f"{where} contains a value that is not a finite number")
    if spec.space_type == "cosinesimil" and not any(vector):
        raise NotEmbeddable(f"{where} is all zeros, which has no direction under cosine similarity")
    return vector


def vectorize(
    spec: EmbeddingModelSpec, embedder: TextEmbedder | None, items: list[dict[str, Any]], deadline: float
) -> tuple[list[VectorDocument], list[ItemFailure]]:
    documents: list[VectorDocument] = []
    failures: list[ItemFailure] = []

    def document(item: dict[str, Any], vector: list[float], payload: dict[str, Any] | None) -> VectorDocument:
        return VectorDocument(item["object_id"], vector, payload, item.get("item_info"))

    if spec.input.source is InputSource.VECTOR:
        for item in items:
            try:
                vector = _vector_of(spec, item)
            except NotEmbeddable as exc:
                failures.append(ItemFailure(item["object_id"], str(exc)))
                continue
            documents.append(document(item, vector, _without(item["payload"], spec.input.field)))
        return documents, failures

    if embedder is None:
        raise ValueError(f"model '{spec.id}' embeds text but has no embedder")
    texts: list[str] = []
    embeddable: list[dict[str, Any]] = []
    for item in items:
        try:
            texts.append(_text_of(spec, item))
        except NotEmbeddable as exc:
            failures.append(ItemFailure(item["object_id"], str(exc)))
            continue
        embeddable.append(item)
    outcomes = embedder.embed(texts, deadline) if texts else []
    for item, outcome in zip(embeddable, outcomes, strict=True):
        if isinstance(outcome, str):
            failures.append(ItemFailure(item["object_id"], f"payload.{spec.input.field} {outcome}"))
            continue
        documents.append(document(item, outcome.tolist(), item.get("payload")))
    return documents, failures
