"""The domain tier: TaskService, TaskTransitions and ChunkProcessor on the in-memory ports of
tests/support/memory.py (the store passes the contract suite DynamoTaskStore passes).
Deterministic, no I/O, no sleeps, no threads: races are staged with `MemoryTaskStore.before`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from tests.support.memory import MemoryTaskStore, MemoryTransitions, MemoryWorkQueue
from vector_tasks.domain.errors import TaskCannotRun
from vector_tasks.domain.model import ChunkOutcome, Item, ItemFailure, Task, TaskKind, item_object_id
from vector_tasks.domain.processing import ChunkProcessor
from vector_tasks.domain.registry import EmbeddingModelSpec, ModelInput, ModelRegistry
from vector_tasks.domain.tasks import TaskService
from vector_tasks.domain.transitions import TaskTransitions

MODEL = "local-hash-384"


@dataclass
class ScriptedAction:
    """A ChunkAction that fails the items whose object_id starts with "bad", succeeds the rest,
    and remembers what it was given. `during` runs inside apply (another process acting while
    the chunk is under way); `cannot_run` makes apply raise TaskCannotRun."""

    seen: list[tuple[Task, list[Item]]] = field(default_factory=list)  # a chunk each
    calls: int = 0  # applies, each of one or more chunks
    during: Callable[[], None] | None = None
    cannot_run: str | None = None

    def apply(self, task: Task, chunks: Sequence[list[Item]], deadline: float) -> list[ChunkOutcome]:
        self.calls += 1
        self.seen.extend((task, items) for items in chunks)
        if self.during is not None:
            during, self.during = self.during, None
            during()
        if self.cannot_run is not None:
            raise TaskCannotRun(self.cannot_run)
        return [self._outcome(items) for items in chunks]

    @staticmethod
    def _outcome(items: list[Item]) -> ChunkOutcome:
        bad = tuple(ItemFailure(item_object_id(i), "bad item") for i in items if item_object_id(i).startswith("bad"))
        return ChunkOutcome(succeeded=len(items) - len(bad), failures=bad)


@pytest.fixture
def registry() -> ModelRegistry:
    spec = EmbeddingModelSpec(
        id=MODEL,
        provider="local-hash",
        dimension=8,
        space_type="cosinesimil",
        input=ModelInput(source="text", field="text"),  # type: ignore[arg-type]
    )
    return ModelRegistry([spec])


@pytest.fixture
def store() -> MemoryTaskStore:
    return MemoryTaskStore()


@pytest.fixture
def queue() -> MemoryWorkQueue:
    return MemoryWorkQueue()


@pytest.fixture
def runner(store: MemoryTaskStore, queue: MemoryWorkQueue) -> MemoryTransitions:
    return MemoryTransitions(store, queue)


@pytest.fixture
def service(store: MemoryTaskStore, queue: MemoryWorkQueue, registry: ModelRegistry) -> TaskService:
    return TaskService(store, queue, registry)


@pytest.fixture
def transitions(store: MemoryTaskStore, runner: MemoryTransitions) -> TaskTransitions:
    return TaskTransitions(store, runner)


@pytest.fixture
def action() -> ScriptedAction:
    return ScriptedAction()


@pytest.fixture
def processor(store: MemoryTaskStore, action: ScriptedAction) -> ChunkProcessor:
    return ChunkProcessor(store, {TaskKind.UPSERTION: action, TaskKind.DELETION: action})
