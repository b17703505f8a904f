"""Import by reference: a task's items read from objects in S3, a bounded range at a time.

A create with `source.s3_uri` stores the task with no items and queues its first step. Each
step is one message of the import queue, handled by the splitter:

- the first lists the objects (one, or every object under a prefix) and stores them with their
  ETags, once;
- each next one reads at most `range_bytes` of one object from a byte offset (a ranged GET; a
  gzip object is decompressed from its start and read past the offset), cuts at the last line
  end, turns the lines into chunks (a line that is not a valid item becomes an entry that the
  worker records as that item's failure), stores them and adds them to the task in one
  conditional write on the task's read position, then queues the chunks and the step after it.

So memory stays bounded by one range whatever the objects' sizes, and a step delivered twice
counts nothing twice: its write is conditioned on the position it starts from. A step whose
write landed but whose messages did not go (the splitter died in between) is recognised on
redelivery (the task's `read_from` is its position) and sends them again; the reconciler
resends the step at a stalled task's position.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import replace

from vector_tasks.domain import sources
from vector_tasks.domain.chunking import split_into_chunks
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
    without_internals,
)
from vector_tasks.domain.ports import TaskStore, WorkQueue
from vector_tasks.domain.processing import finish_if_complete
from vector_tasks.domain.sources import (
    MAX_OBJECTS_PER_IMPORT,
    ImportQueue,
    ImportStep,
    ObjectRead,
    ObjectStore,
    SourceUnreadable,
    StepRead,
    parse_s3_uri,
)


class StepOutcome(enum.StrEnum):
    LISTED = "listed"
    READ = "read"
    RESENT = "resent"  # redelivered after its write: the messages it owed went out again
    STALE = "stale"  # the task is past this step (a duplicate) or at another attempt
    TASK_GONE = "task_gone"
    NOT_RUNNING = "not_running"  # canceled, failed or done: reading stops
    TASK_FAILED = "task_failed"  # the source could not be read


LineParser = Callable[[TaskKind, bytes], Item]
"""Turns one line into an item of the task's kind; ValueError with a message saying why not."""


def _cut_lines(
    kind: TaskKind, got: ObjectRead, step: ImportStep, where: str, range_bytes: int, parse: LineParser
) -> tuple[list[Item], int, int, int, bool]:
    """The entries of the whole lines in `got`, the lines they are, the bytes consumed (up to the
    last line end, or all at the object's end), the next line's number, and whether a line
    longer than a range is still being skipped."""
    data, line, skipping, pos = got.data, step.line, step.skipping, 0
    entries: list[Item] = []
    lines = 0
    if skipping:  # the rest of a line longer than a range, already counted as invalid
        end = data.find(b"\n")
        if end < 0:
            return [], 0, len(data), line, not got.at_end
        pos, skipping, line = end + 1, False, line + 1
    body = data[pos:]
    cut = len(body) if got.at_end else body.rfind(b"\n") + 1
    if cut == 0 and pos == 0 and body and not got.at_end:
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
    ) -> None:
        """`range_bytes`: read per step (RANGE_BYTES when None, as this module has it then)."""
        self._store = store
        self._objects = objects
        self._steps = steps
        self._chunks = chunks
        self._parse = parse_line
        self._range = range_bytes or sources.RANGE_BYTES

    def run(self, step: ImportStep) -> StepOutcome:
        task = self._store.get_task(step.kind, step.task_id)
        if task is None:
            return StepOutcome.TASK_GONE
        if task.attempt != step.attempt or task.source is None:
            return StepOutcome.STALE
        if task.status not in (TaskStatus.PENDING, TaskStatus.RUNNING):
            return StepOutcome.NOT_RUNNING
        source = task.source
        if source.position != step.position:
            if source.read_from == step.position:
                following = (
                    None if source.complete else ImportStep.at(step.kind, step.task_id, step.attempt, source.position)
                )
                end = following.chunk if following is not None else task.chunk_count
                self._send_after(task, step, following, end - step.chunk)
                return StepOutcome.RESENT
            return StepOutcome.STALE
        try:
            if step.obj < 0:
                return self._list(task, source, step)
            return self._read(task, source, step)
        except SourceUnreadable as exc:
            self._fail(task, f"The source could not be read: {exc.reason}")
            return StepOutcome.TASK_FAILED

    def give_up(self, step: ImportStep, reason: str) -> StepOutcome:
        """Fail the task of a step that failed on every delivery, if it is still at that step."""
        task = self._store.get_task(step.kind, step.task_id)
        if task is None or task.attempt != step.attempt or task.source is None or task.source.position != step.position:
            return StepOutcome.STALE
        self._fail(task, f"The source could not be read: {reason}")
        return StepOutcome.TASK_FAILED

    def _fail(self, task: Task, error: str) -> None:
        self._store.transition(
            task,
            TaskStatus.FAILED,
            expect=(TaskStatus.PENDING, TaskStatus.RUNNING),
            now=utc_now(),
            error=without_internals(error),
        )

    def _list(self, task: Task, source: ImportSource, step: ImportStep) -> StepOutcome:
        bucket, key = parse_s3_uri(source.uri)
        objects = self._objects.list_objects(bucket, key, MAX_OBJECTS_PER_IMPORT)
        if not objects:
            raise SourceUnreadable(f"no object is named {source.uri} or stored under it")
        if len(objects) > MAX_OBJECTS_PER_IMPORT:
            raise SourceUnreadable(
                f"more than {MAX_OBJECTS_PER_IMPORT} objects are stored under {source.uri}; "
                "import them in tasks of a narrower prefix each"
            )
        following = replace(step, obj=0)
        if not self._store.save_source_objects(task, objects, step.position, following.position):
            return StepOutcome.STALE
        self._send_after(task, step, following, 0)
        return StepOutcome.LISTED

    def _read(self, task: Task, source: ImportSource, step: ImportStep) -> StepOutcome:
        bucket, _ = parse_s3_uri(source.uri)
        objects = self._store.source_objects(task)
        obj = objects[step.obj]
        got = self._objects.read(bucket, obj, step.offset, self._range, step.gzip)
        entries, lines, consumed, line, skipping = _cut_lines(
            task.kind, got, step, f"s3://{bucket}/{obj.key}", self._range, self._parse
        )
        following: ImportStep | None
        if not got.at_end:
            following = replace(step, offset=step.offset + consumed, line=line, gzip=got.gzip, skipping=skipping)
        elif step.obj + 1 < len(objects):
            following = replace(step, obj=step.obj + 1, offset=0, line=1, gzip=None, skipping=False)
        else:
            following = None
        chunks = split_into_chunks(entries)
        if following is not None:
            following = replace(following, chunk=step.chunk + len(chunks))
        result = StepRead(step, chunks, lines, 1 if got.at_end else 0, following)
        if not self._store.append_read(task, result):
            return StepOutcome.STALE
        self._send_after(task, step, following, len(chunks))
        return StepOutcome.READ

    def _send_after(self, task: Task, step: ImportStep, following: ImportStep | None, chunks: int) -> None:
        """What a step owes once its write landed: its `chunks` to the workers, then the next
        step, or, after the last, the end of the task if every chunk is already recorded."""
        self._chunks.send(
            ChunkRef(task.kind, task.task_id, task.attempt, n, ORIGINAL_CHUNKS)
            for n in range(step.chunk, step.chunk + chunks)
        )
        if following is not None:
            self._steps.send_steps([following])
            return
        self._finish(task)

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
