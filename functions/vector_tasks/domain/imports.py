"""Import by reference: a task's items read from objects in S3, a bounded range at a time.

A create with `source.s3_uri` stores the task with no items and queues its first step, a
message of the import queue naming the task's read position. The splitter takes one step per
invocation:

- at the first position it lists the objects (one, or every object under a prefix) and stores
  them with their ETags, once;
- then it reads on from the position, one range (`range_bytes`) at a time, through the objects
  in order: each range is cut at its last line end (the rest is carried into the next), its
  lines become chunks (a line that is not a valid item becomes an entry the worker records as
  that item's failure), and the chunks are stored and added to the task's counts in one write
  conditioned on the task's read position, which moves on; then they are queued for the
  workers. After at most `ranges_per_step` ranges, or when the invocation's time runs short,
  it queues the step at the position reached. One GET is streamed per object and step (a gzip
  object is decompressed from its start and dropped up to the position).

So memory stays bounded by a range whatever the objects' sizes, and a step delivered twice
counts nothing twice: each write is conditioned on the position it starts from, and the
duplicate that loses stops. The task remembers which step's invocation wrote last
(`read_by`) and where its last range started (`read_from`): a step delivered again after its
invocation died (or lost a send) sends that range's chunks again and reads on from the task's
position. The reconciler sends the step at a stalled task's position.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from vector_tasks.domain import sources
from vector_tasks.domain.chunking import split_into_chunks
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS
from vector_tasks.domain.model import (
    ORIGINAL_CHUNKS,
    ChunkRef,
    ImportSource,
    Item,
    Task,
    TaskKind,
    TaskStatus,
    invalid_line,
    item_object_id,
    utc_now,
)
from vector_tasks.domain.ports import TaskStore, WorkQueue
from vector_tasks.domain.processing import fail_task, finish_if_complete
from vector_tasks.domain.sources import (
    MAX_LISTING_BYTES,
    MAX_OBJECTS_PER_IMPORT,
    ImportQueue,
    ImportStep,
    ObjectReader,
    ObjectStore,
    SourceObject,
    SourceUnreadable,
    StepRead,
    parse_s3_uri,
)


class StepOutcome(enum.StrEnum):
    READ = "read"  # listed and read on; the next step is queued, or the source is read to its end
    RESENT = "resent"  # delivered again after its invocation wrote: what it owed went out, and it read on
    STALE = "stale"  # the task is past this step (a duplicate) or at another attempt
    TASK_GONE = "task_gone"
    NOT_RUNNING = "not_running"  # canceled, failed or done: reading stops
    TASK_FAILED = "task_failed"  # the source could not be read


LineParser = Callable[[TaskKind, bytes], Item]
"""Turns one line into an item of the task's kind; ValueError with a message saying why not."""


def _cut_lines(
    kind: TaskKind, data: bytes, at_end: bool, step: ImportStep, where: str, range_bytes: int, parse: LineParser
) -> tuple[list[Item], int, int, int, bool]:
    """The entries of the whole lines in `data` (read from `step`'s position; `at_end`: to the
    object's end), the lines they are, the bytes consumed (up to the last line end, or all at
    the object's end), the next line's number, and whether a line longer than a range is still
    being skipped."""
    line, skipping, pos = step.line, step.skipping, 0
    entries: list[Item] = []
    lines = 0
    if skipping:  # the rest of a line longer than a range, already counted as invalid
        end = data.find(b"\n")
        if end < 0:
            return [], 0, len(data), line, not at_end
        pos, skipping, line = end + 1, False, line + 1
    body = data[pos:]
    cut = len(body) if at_end else body.rfind(b"\n") + 1
    if cut == 0 and pos == 0 and body and not at_end:
        # No line end in a whole range: the line cannot be an item (MAX_ITEM_BYTES is less).
        entries.append(invalid_line(f"{where}:{line}", f"{where} line {line}: longer than {range_bytes} bytes"))
        return entries, 1, len(data), line, True
    whole = body[:cut].split(b"\n")
    if whole and whole[-1] == b"":
        whole.pop()  # what follows the last line end
    parsed, lines = _line_entries(kind, whole, line, where, parse)
    entries.extend(parsed)
    return entries, lines, pos + cut, line + body[:cut].count(b"\n"), False


def _line_entries(
    kind: TaskKind, lines: Sequence[bytes], first_line: int, where: str, parse: LineParser
) -> tuple[list[Item], int]:
    """The entries of `lines` (an item, or an invalid-line entry naming where the line is) and
    how many lines were not blank. A line repeating an object id of an earlier line of the same
    read is invalid: the index would otherwise take one and count both."""
    entries: list[Item] = []
    seen: dict[str, int] = {}
    read = 0
    for n, raw in enumerate(lines, start=first_line):
        if not raw.strip():
            continue
        read += 1
        try:
            item = parse(kind, raw)
        except ValueError as exc:
            entries.append(invalid_line(f"{where}:{n}", f"{where} line {n}: {exc}"))
            continue
        object_id = item_object_id(item)
        if object_id in seen:
            detail = f"{where} line {n}: object_id {object_id!r} repeats line {seen[object_id]}"
            entries.append(invalid_line(f"{where}:{n}", detail))
            continue
        seen[object_id] = n
        entries.append(item)
    return entries, read


class ImportSplitter:
    def __init__(
        self,
        store: TaskStore,
        objects: ObjectStore,
        steps: ImportQueue,
        chunks: WorkQueue,
        parse_line: LineParser,
        range_bytes: int | None = None,
        ranges_per_step: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        chunk_items: Callable[[str], int] = lambda model_id: CHUNK_MAX_ITEMS,
    ) -> None:
        """`range_bytes`, `ranges_per_step`: RANGE_BYTES and RANGES_PER_STEP when None (as the
        sources module has them then); `monotonic` tells the time left (tests inject it);
        `chunk_items`: a model's items per chunk (ModelRegistry.chunk_items)."""
        self._store = store
        self._objects = objects
        self._steps = steps
        self._chunks = chunks
        self._parse = parse_line
        self._range = range_bytes or sources.RANGE_BYTES
        self._ranges_per_step = ranges_per_step or sources.RANGES_PER_STEP
        self._monotonic = monotonic
        self._chunk_items = chunk_items

    def run(self, step: ImportStep, deadline: float = float("inf")) -> StepOutcome:
        """Take `step`; read on while ranges are left to read within `deadline` (monotonic)."""
        task = self._store.get_task(step.kind, step.task_id)
        if task is None:
            return StepOutcome.TASK_GONE
        if task.attempt != step.attempt or task.source is None:
            return StepOutcome.STALE
        if task.status not in (TaskStatus.PENDING, TaskStatus.RUNNING):
            return StepOutcome.NOT_RUNNING
        source = task.source
        outcome = StepOutcome.READ
        if source.position != step.position:
            if source.read_by != step.position or source.read_from is None:
                return StepOutcome.STALE
            # This step's invocation wrote, then died or lost a send: what its last range owed.
            last = ImportStep.at(step.kind, step.task_id, step.attempt, source.read_from)
            following = (
                None if source.complete else ImportStep.at(step.kind, step.task_id, step.attempt, source.position)
            )
            if last.obj >= 0:
                self._send_chunks(task, last.chunk, (following.chunk if following else task.chunk_count) - last.chunk)
            if following is None:
                self._finish(task)
                return StepOutcome.RESENT
            outcome, start = StepOutcome.RESENT, following
        else:
            start = step
        try:
            return self._read_on(task, source, start, step.position, deadline) or outcome
        except SourceUnreadable as exc:
            self._fail(task, f"The source could not be read: {exc.reason}")
            return StepOutcome.TASK_FAILED

    def give_up(self, step: ImportStep, reason: str) -> StepOutcome:
        """Fail the task of a step that failed on every delivery, unless reading went on since."""
        task = self._store.get_task(step.kind, step.task_id)
        if task is None or task.attempt != step.attempt or task.source is None:
            return StepOutcome.STALE
        if step.position not in (task.source.position, task.source.read_by):
            return StepOutcome.STALE
        self._fail(task, f"The source could not be read: {reason}")
        return StepOutcome.TASK_FAILED

    def _fail(self, task: Task, error: str) -> None:
        fail_task(self._store, task, error)

    def _read_on(
        self, task: Task, source: ImportSource, step: ImportStep, by: str, deadline: float
    ) -> StepOutcome | None:
        """List (at the first position), then read ranges from `step` on, each committed as
        `by`'s; None when this invocation read what it could and queued the next step."""
        bucket, key = parse_s3_uri(source.uri)
        if step.obj < 0:
            objects = self._list(bucket, key, source.uri)
            first = replace(step, obj=0)
            if not self._store.save_source_objects(task, objects, step.position, first.position, by):
                return StepOutcome.STALE
            step = first
        else:
            objects = self._store.source_objects(task)
        reader: ObjectReader | None = None
        carry = b""  # the start of a line the last range ended in
        longest = 0.0
        try:
            for _ in range(self._ranges_per_step):
                started = self._monotonic()
                obj = objects[step.obj]
                if reader is None:
                    reader = self._objects.open(bucket, obj, step.offset, step.gzip)
                    carry = b""
                got = reader.read(self._range - len(carry))
                data = carry + got.data
                entries, lines, consumed, line, skipping = _cut_lines(
                    task.kind, data, got.at_end, step, f"s3://{bucket}/{obj.key}", self._range, self._parse
                )
                carry = data[consumed:]
                following: ImportStep | None
                if not got.at_end:
                    following = replace(
                        step, offset=step.offset + consumed, line=line, gzip=reader.gzip, skipping=skipping
                    )
                elif step.obj + 1 < len(objects):
                    following = replace(step, obj=step.obj + 1, offset=0, line=1, gzip=None, skipping=False)
                else:
                    following = None
                chunks = split_into_chunks(entries, max_items=self._chunk_items(task.embedding_model_id))
                if following is not None:
                    following = replace(following, chunk=step.chunk + len(chunks))
                read = StepRead(step, chunks, lines, 1 if got.at_end else 0, following)
                if not self._store.append_read(task, read, by):
                    return StepOutcome.STALE  # another delivery of the step is reading: it goes on
                self._send_chunks(task, step.chunk, len(chunks))
                if following is None:
                    self._finish(task)
                    return None
                if following.obj != step.obj:
                    reader.close()
                    reader = None
                step = following
                longest = max(longest, self._monotonic() - started)
                if self._monotonic() + 2 * longest > deadline:
                    break
        finally:
            if reader is not None:
                reader.close()
        self._steps.send_steps([step])
        return None

    def _list(self, bucket: str, key: str, uri: str) -> list[SourceObject]:
        objects = self._objects.list_objects(bucket, key, MAX_OBJECTS_PER_IMPORT)
        if not objects:
            raise SourceUnreadable(f"no object is named {uri} or stored under it")
        if len(objects) > MAX_OBJECTS_PER_IMPORT:
            raise SourceUnreadable(
                f"more than {MAX_OBJECTS_PER_IMPORT} objects are stored under {uri}; "
                "import them in tasks of a narrower prefix each"
            )
        listing = sum(len(o.key.encode()) + len(o.etag) + 24 for o in objects)
        if listing > MAX_LISTING_BYTES:
            raise SourceUnreadable(
                f"the keys of the {len(objects)} objects under {uri} take {listing} bytes, more than the "
                f"{MAX_LISTING_BYTES} an import can keep; import them in tasks of a narrower prefix each"
            )
        return objects

    def _send_chunks(self, task: Task, first: int, count: int) -> None:
        self._chunks.send(
            ChunkRef(task.kind, task.task_id, task.attempt, n, ORIGINAL_CHUNKS) for n in range(first, first + count)
        )

    def _finish(self, task: Task) -> None:
        """Reading is complete: a task whose chunks are all recorded (or that has none) ends now,
        since no chunk delivery is left to end it."""
        current = self._store.get_task(task.kind, task.task_id)
        if current is None or current.attempt != task.attempt or not current.all_chunks_recorded:
            return
        if current.status is TaskStatus.PENDING:
            if not self._store.transition(current, TaskStatus.RUNNING, expect=(TaskStatus.PENDING,), now=utc_now()):
                return
            current.status = TaskStatus.RUNNING
        finish_if_complete(self._store, current)
