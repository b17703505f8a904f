"""Import by reference on the in-memory ports: reading a source a range at a time, exactly once."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.domain.conftest import MODEL, ScriptedAction
from tests.support.memory import MemoryImportQueue, MemoryObjects, MemoryTaskStore, MemoryTransitions, MemoryWorkQueue
from vector_tasks.domain.imports import ImportSplitter, StepOutcome
from vector_tasks.domain.model import ChunkRef, RestartScope, Task, TaskKind, TaskStatus, invalid_line_detail
from vector_tasks.domain.processing import ChunkProcessor
from vector_tasks.domain.reconcile import Reconciler
from vector_tasks.domain.registry import ModelRegistry
from vector_tasks.domain.sources import (
    MAX_LISTING_BYTES,
    MAX_OBJECTS_PER_IMPORT,
    ImportNotAllowed,
    SourceChanged,
    SourceIncomplete,
)
from vector_tasks.domain.tasks import TaskService
from vector_tasks.domain.transitions import TaskTransitions
from vector_tasks.models.import_lines import parse_line

BUCKET = "imports"
KIND = TaskKind.UPSERTION


def line(object_id: str) -> bytes:
    return json.dumps({"object_id": object_id, "payload": {"text": f"about {object_id}"}}).encode()


class Imports:
    """A service, a splitter with `range_bytes`-sized steps and a processor on memory ports."""

    def __init__(
        self, store: MemoryTaskStore, registry: ModelRegistry, range_bytes: int = 200, ranges_per_step: int = 1
    ) -> None:
        self.store = store
        self.objects = MemoryObjects()
        self.steps = MemoryImportQueue()
        self.chunks = MemoryWorkQueue()
        self.service = TaskService(store, self.chunks, registry, self.steps, frozenset({BUCKET}))
        self.splitter = ImportSplitter(
            store,
            self.objects,
            self.steps,
            self.chunks,
            parse_line,
            range_bytes,
            ranges_per_step,
            chunk_items=registry.chunk_items,
        )
        self.action = ScriptedAction()
        self.processor = ChunkProcessor(store, {KIND: self.action, TaskKind.DELETION: self.action})
        self.transitions = TaskTransitions(store, MemoryTransitions(store, self.chunks, self.steps), self.objects)

    def put(self, key: str, lines: list[bytes], compress: bool = False) -> None:
        data = b"".join(f + b"\n" for f in lines)
        self.objects.put(BUCKET, key, gzip.compress(data) if compress else data)

    def create(self, uri: str, task_id: str = "t") -> Task:
        task, created = self.service.create_import(KIND, MODEL, task_id, uri)
        assert created
        return task

    def read_all(self) -> list[StepOutcome]:
        outcomes = []
        while self.steps.sent:
            outcomes.append(self.splitter.run(self.steps.sent.pop(0)))
        return outcomes

    def process_all(self) -> None:
        for ref in self.chunks.drain():
            self.processor.process(ref, float("inf"))

    def task(self, task_id: str = "t") -> Task:
        task = self.store.get_task(KIND, task_id, with_failures=True)
        assert task is not None
        return task


@pytest.fixture
def imports(store: MemoryTaskStore, registry: ModelRegistry) -> Imports:
    return Imports(store, registry)


def test_objects_are_read_a_range_at_a_time_into_chunks_of_every_line(imports: Imports) -> None:
    imports.put("p/a.jsonl", [line(f"a{n}") for n in range(25)])
    imports.put("p/b.jsonl.gz", [line(f"b{n}") for n in range(25)], compress=True)
    imports.create(f"s3://{BUCKET}/p/")
    outcomes = imports.read_all()
    assert outcomes.count(StepOutcome.READ) == len(outcomes) > 10  # a 200-byte range each, of ~60-byte lines
    task = imports.task()
    assert task.source is not None and task.source.complete
    assert (task.source.objects_total, task.source.objects_read, task.source.lines_read) == (2, 2, 50)
    assert task.item_count == task.original_item_count == 50
    chunks = imports.chunks.sent
    assert [ref.chunk for ref in chunks] == list(range(task.chunk_count))  # numbered in order, no gap
    imports.process_all()
    seen = [item["object_id"] for _, items in imports.action.seen for item in items]  # type: ignore[index]
    assert seen == [f"a{n}" for n in range(25)] + [f"b{n}" for n in range(25)]
    task = imports.task()
    assert (task.status, task.succeeded, task.failed) == (TaskStatus.DONE, 50, 0)


def test_an_import_is_chunked_by_its_models_items_per_chunk(store: MemoryTaskStore, registry: ModelRegistry) -> None:
    spec = registry.get(MODEL).model_copy(update={"chunk_items": 3})
    imports = Imports(store, ModelRegistry([spec]), range_bytes=10_000)
    imports.put("a.jsonl", [line(f"a{n}") for n in range(10)])
    imports.create(f"s3://{BUCKET}/a.jsonl")
    imports.read_all()
    task = imports.task()
    assert (task.item_count, task.chunk_count) == (10, 4)
    imports.process_all()
    assert [len(items) for _, items in imports.action.seen] == [3, 3, 3, 1]


def test_a_bad_line_fails_alone_naming_its_object_and_line(store: MemoryTaskStore, registry: ModelRegistry) -> None:
    imports = Imports(store, registry, range_bytes=600)
    long_line = json.dumps({"object_id": "huge", "payload": {"text": "x" * 900}}).encode()
    lines = [line("ok1"), b"not json", b"", line("ok2"), line("ok1"), b'{"object_id": 5}', long_line, line("ok3")]
    imports.put("one.jsonl", lines)
    imports.create(f"s3://{BUCKET}/one.jsonl")
    imports.read_all()
    imports.process_all()
    task = imports.task()
    assert task.status is TaskStatus.DONE
    assert task.source is not None and task.source.lines_read == 7  # the blank line is no line of items
    assert (task.item_count, task.succeeded, task.failed) == (7, 3, 4)
    details = {f.object_id: f.detail for f in task.failures or []}
    where = f"s3://{BUCKET}/one.jsonl"
    assert set(details) == {f"{where}:2", f"{where}:5", f"{where}:6", f"{where}:7"}
    assert "not valid JSON" in details[f"{where}:2"]
    assert "object_id 'ok1' repeats line 1" in details[f"{where}:5"]
    assert "object_id" in details[f"{where}:6"]
    assert "longer than 600 bytes" in details[f"{where}:7"]
    sent = [i for _, items in imports.action.seen for i in items]
    assert all(invalid_line_detail(i) is None for i in sent)  # invalid lines never reach the index


def test_a_step_delivered_again_after_its_write_sends_what_it_owed_and_counts_nothing_twice(imports: Imports) -> None:
    imports.put("a.jsonl", [line(f"a{n}") for n in range(12)])
    imports.create(f"s3://{BUCKET}/a.jsonl")
    imports.splitter.run(imports.steps.sent.pop(0))  # listed and read the first range
    imports.chunks.drain()
    step = imports.steps.sent[0]
    imports.splitter.run(imports.steps.sent.pop(0))  # read the next range; say its messages were lost
    lost_chunks, lost_steps = imports.chunks.drain(), imports.steps.drain()
    before = imports.task()
    # Delivered again: the lost range's chunks go again, and this invocation reads on itself.
    assert imports.splitter.run(step) is StepOutcome.RESENT
    assert imports.chunks.sent[: len(lost_chunks)] == lost_chunks
    after = imports.task()
    assert after.item_count > before.item_count  # it read one more range
    assert imports.steps.sent != lost_steps
    imports.chunks.drain()
    assert imports.splitter.run(lost_steps[0]) is StepOutcome.STALE  # the lost step, had it come
    queued = imports.steps.drain()  # the step the redelivery queued
    # Delivered once more, the step is still the last writer: it reads on, and what its earlier
    # delivery queued finds the position gone past it. One chain reads, never two.
    assert imports.splitter.run(step) is StepOutcome.RESENT
    assert [imports.splitter.run(s) for s in queued] == [StepOutcome.STALE]
    imports.read_all()
    # Every chunk once more (the chunk messages this test threw away), as the reconciler would.
    total = imports.task().chunk_count
    imports.chunks.send(ChunkRef(KIND, "t", 1, n) for n in range(total))
    imports.process_all()
    task = imports.task()
    assert (task.status, task.item_count, task.succeeded) == (TaskStatus.DONE, 12, 12)


def test_a_canceled_import_stops_reading(imports: Imports) -> None:
    imports.put("a.jsonl", [line(f"a{n}") for n in range(12)])
    task = imports.create(f"s3://{BUCKET}/a.jsonl")
    imports.splitter.run(imports.steps.sent.pop(0))
    imports.transitions.cancel(KIND, task.task_id)
    reads = imports.objects.reads
    assert imports.read_all() == [StepOutcome.NOT_RUNNING]
    assert imports.objects.reads == reads
    assert imports.task().status is TaskStatus.CANCELED


def test_an_object_rewritten_after_the_listing_fails_the_task(imports: Imports) -> None:
    imports.put("a.jsonl", [line(f"a{n}") for n in range(12)])
    imports.create(f"s3://{BUCKET}/a.jsonl")
    imports.splitter.run(imports.steps.sent.pop(0))  # listed, and the first range read
    imports.put("a.jsonl", [line(f"b{n}") for n in range(12)])
    assert imports.read_all() == [StepOutcome.TASK_FAILED]
    task = imports.task()
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and "changed after its import started" in task.error


@pytest.mark.parametrize("uri", [f"s3://{BUCKET}/missing.jsonl", f"s3://{BUCKET}/empty-prefix/"])
def test_a_source_with_no_object_fails_the_task(imports: Imports, uri: str) -> None:
    imports.create(uri)
    assert imports.read_all() == [StepOutcome.TASK_FAILED]
    task = imports.task()
    assert task.status is TaskStatus.FAILED and task.error is not None and "no object is named" in task.error


def test_an_empty_object_ends_the_task_done_with_nothing_to_do(imports: Imports) -> None:
    imports.objects.put(BUCKET, "empty.jsonl", b"")
    imports.create(f"s3://{BUCKET}/empty.jsonl")
    imports.read_all()
    task = imports.task()
    assert (task.status, task.item_count, task.chunk_count) == (TaskStatus.DONE, 0, 0)


def test_only_the_buckets_named_may_be_read(imports: Imports) -> None:
    with pytest.raises(ImportNotAllowed, match="may not read bucket 'elsewhere'"):
        imports.service.create_import(KIND, MODEL, "t", "s3://elsewhere/a.jsonl")


def test_the_same_import_again_is_the_same_task_and_another_source_a_conflict(imports: Imports) -> None:
    imports.put("a.jsonl", [line("a")])
    imports.create(f"s3://{BUCKET}/a.jsonl")
    again, created = imports.service.create_import(KIND, MODEL, "t", f"s3://{BUCKET}/a.jsonl")
    assert not created and again.task_id == "t"
    with pytest.raises(Exception, match="different request body"):
        imports.service.create_import(KIND, MODEL, "t", f"s3://{BUCKET}/b.jsonl")


def test_restart_reads_an_unchanged_source_again_and_refuses_a_changed_one(imports: Imports) -> None:
    imports.put("p/a.jsonl", [line(f"a{n}") for n in range(5)])
    imports.create(f"s3://{BUCKET}/p/")
    imports.read_all()
    imports.process_all()
    restarted = imports.transitions.restart(KIND, "t", RestartScope.ALL)
    assert (restarted.status, restarted.attempt, restarted.item_count) == (TaskStatus.PENDING, 2, 0)
    assert restarted.source is not None and not restarted.source.complete
    imports.read_all()
    imports.process_all()
    task = imports.task()
    assert (task.status, task.attempt, task.succeeded, task.item_count) == (TaskStatus.DONE, 2, 5, 5)
    imports.put("p/b.jsonl", [line("b")])  # a new object under the prefix
    with pytest.raises(SourceChanged, match=r"p/b\.jsonl"):
        imports.transitions.restart(KIND, "t", RestartScope.ALL)


def test_restart_of_the_failed_items_needs_a_source_read_to_its_end(imports: Imports) -> None:
    imports.put("a.jsonl", [line(f"a{n}") for n in range(12)])
    task = imports.create(f"s3://{BUCKET}/a.jsonl")
    imports.splitter.run(imports.steps.sent.pop(0))
    imports.splitter.run(imports.steps.sent.pop(0))
    imports.transitions.cancel(KIND, task.task_id)
    with pytest.raises(SourceIncomplete):
        imports.transitions.restart(KIND, "t", RestartScope.FAILED)


def test_the_reconciler_sends_a_stalled_imports_next_step_again(imports: Imports) -> None:
    imports.put("a.jsonl", [line(f"a{n}") for n in range(12)])
    imports.create(f"s3://{BUCKET}/a.jsonl")
    imports.splitter.run(imports.steps.sent.pop(0))
    lost = imports.steps.drain()  # the listing's next step never arrived
    later = datetime.now(UTC) + timedelta(hours=1)
    report = Reconciler(
        imports.store, imports.chunks, timedelta(minutes=15), clock=lambda: later, imports=imports.steps
    ).run(float("inf"))
    assert report.redispatched_imports == 1
    assert imports.steps.sent == lost
    imports.read_all()
    imports.process_all()
    assert imports.task().status is TaskStatus.DONE


def test_one_invocation_reads_on_while_its_time_lasts(store: MemoryTaskStore, registry: ModelRegistry) -> None:
    imports = Imports(store, registry, ranges_per_step=1000)
    imports.put("p/a.jsonl", [line(f"a{n}") for n in range(25)])
    imports.put("p/b.jsonl.gz", [line(f"b{n}") for n in range(25)], compress=True)
    imports.create(f"s3://{BUCKET}/p/")
    assert imports.read_all() == [StepOutcome.READ]  # one step: listed, then every range of both
    assert imports.objects.reads == 2  # one GET per object
    task = imports.task()
    assert task.source is not None and task.source.complete and task.item_count == 50
    # With a clock that says each range takes 10 s, a deadline 45 s away leaves time for two
    # ranges: after the second, the next (10 s, twice over for safety) would not fit.
    clock = iter(float(n) for n in range(0, 10_000, 5))
    timed = ImportSplitter(
        store, imports.objects, imports.steps, imports.chunks, parse_line, 200, 1000, monotonic=lambda: next(clock)
    )
    imports.service.create_import(KIND, MODEL, "timed", f"s3://{BUCKET}/p/")
    assert timed.run(imports.steps.sent.pop(0), deadline=45.0) is StepOutcome.READ
    (following,) = imports.steps.drain()
    assert following.obj == 0 and following.offset > 0  # stopped inside the first object
    task = imports.task("timed")
    assert task.source is not None and not task.source.complete


def test_a_prefix_of_too_many_objects_or_too_long_keys_fails_the_task_naming_the_limit(imports: Imports) -> None:
    for n in range(MAX_OBJECTS_PER_IMPORT + 1):
        imports.objects.put(BUCKET, f"many/{n:05d}.jsonl", b"")
    imports.create(f"s3://{BUCKET}/many/", "many")
    long_key = "k" * 900
    for n in range(400):
        imports.objects.put(BUCKET, f"long/{n:03d}{long_key}", b"")
    imports.create(f"s3://{BUCKET}/long/", "long")
    assert imports.read_all() == [StepOutcome.TASK_FAILED, StepOutcome.TASK_FAILED]
    assert f"more than {MAX_OBJECTS_PER_IMPORT} objects" in (imports.task("many").error or "")
    assert f"more than the {MAX_LISTING_BYTES} an import can keep" in (imports.task("long").error or "")
