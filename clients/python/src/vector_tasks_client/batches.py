"""How `vector-tasks submit` splits its input into tasks and names them.

A batch is a run of consecutive lines that fits one create request: at most 10,000 items, and
a request whose event (the body as a JSON string, plus an allowance for headers) stays within
Lambda's 6 MB. Its task id is derived from what it holds (kind, model and its items), so the
same input gives the same tasks: a second run replays each create (200, the existing task)
and resumes instead of duplicating; an input with lines added at the end keeps its earlier
tasks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from vector_tasks_client.jsonl import InputError, Line
from vector_tasks_client.kinds import Kind
from vector_tasks_client.limits import (
    EVENT_ALLOWANCE_BYTES,
    MAX_EVENT_BYTES,
    MAX_ITEMS_PER_TASK,
    MAX_TASK_ID_LENGTH,
)

DEFAULT_PREFIX = "vt"
MAX_PREFIX_LENGTH = 64
_PREFIX = re.compile(rf"^[A-Za-z0-9._:-]{{1,{MAX_PREFIX_LENGTH}}}$")
DIGEST_CHARS = 16


def escaped_size(text: str) -> int:
    """Bytes `text` takes inside the event, where the body is a JSON string (quotes excluded):
    escapes counted as ASCII escapes, the larger of the two ways of writing it."""
    return len(json.dumps(text)) - 2


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ValueError(f"a task prefix is 1..{MAX_PREFIX_LENGTH} characters of A-Z a-z 0-9 . _ : -")
    return prefix


@dataclass(frozen=True)
class Batch:
    index: int  # from 1, in input order
    task_id: str
    first_line: int
    last_line: int
    count: int


def _body_parts(kind: Kind, model: str, task_id: str) -> tuple[str, str]:
    head = f'{{"embedding_model_id":{json.dumps(model)},"task_id":{json.dumps(task_id)},"{kind.items_field}":['
    return head, "]}"


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _digest(kind: Kind, model: str) -> _Hasher:
    return hashlib.sha256(f"{kind.value}\n{model}\n".encode())


@dataclass
class _Open:
    first_line: int
    digest: _Hasher
    count: int = 0
    size: int = 0
    last_line: int = 0
    lines: list[Line] = field(default_factory=list)

    def add(self, line: Line, cost: int) -> None:
        self.digest.update(line.json.encode() + b"\n")
        self.count += 1
        self.size += cost
        self.last_line = line.number


class Splitter:
    """Batches of consecutive lines, planned in one pass over the input."""

    def __init__(self, kind: Kind, model: str, prefix: str = DEFAULT_PREFIX, source: str = "-") -> None:
        self.kind, self.model, self.prefix, self.source = kind, model, check_prefix(prefix), source
        head, tail = _body_parts(kind, model, "x" * MAX_TASK_ID_LENGTH)
        self.budget = MAX_EVENT_BYTES - EVENT_ALLOWANCE_BYTES - escaped_size(head + tail)

    def task_id(self, index: int, digest: str) -> str:
        return f"{self.prefix}-{index:04d}-{digest[:DIGEST_CHARS]}"

    def _close(self, batch: _Open, index: int) -> Batch:
        return Batch(
            index, self.task_id(index, batch.digest.hexdigest()), batch.first_line, batch.last_line, batch.count
        )

    def plan(self, lines: Iterable[Line]) -> list[Batch]:
        """The batches of `lines`; InputError for an object id that repeats (within a task the
        service would refuse it; across tasks the outcome would hang on their order)."""
        batches: list[Batch] = []
        seen: dict[str, int] = {}
        current: _Open | None = None
        for line in lines:
            if line.object_id in seen:
                raise InputError(
                    self.source, line.number, f"object id {line.object_id!r} repeats line {seen[line.object_id]}"
                )
            seen[line.object_id] = line.number
            cost = escaped_size(line.json) + 1  # and its comma
            if current is not None and (current.count >= MAX_ITEMS_PER_TASK or current.size + cost > self.budget):
                batches.append(self._close(current, len(batches) + 1))
                current = None
            if current is None:
                current = _Open(line.number, _digest(self.kind, self.model))
            current.add(line, cost)
        if current is not None:
            batches.append(self._close(current, len(batches) + 1))
        return batches

    def bodies(self, lines: Iterable[Line], batches: list[Batch]) -> Iterator[tuple[Batch, bytes]]:
        """Each batch with its create body, from a second read of the same input; InputError if
        the input is not what was planned (a file changed in between)."""
        pending = iter(batches)
        batch = next(pending, None)
        current: _Open | None = None
        for line in lines:
            if batch is None or line.number < batch.first_line:
                raise InputError(self.source, line.number, "the input changed while it was read")
            if current is None:
                current = _Open(line.number, _digest(self.kind, self.model))
            current.add(line, 0)
            current.lines.append(line)
            if line.number == batch.last_line:
                if self._close(current, batch.index) != batch:
                    raise InputError(self.source, line.number, "the input changed while it was read")
                head, tail = _body_parts(self.kind, self.model, batch.task_id)
                yield batch, (head + ",".join(item.json for item in current.lines) + tail).encode()
                batch, current = next(pending, None), None
        if batch is not None:
            raise InputError(self.source, None, "the input changed while it was read")
