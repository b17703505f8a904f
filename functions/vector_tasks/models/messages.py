"""The queue messages: a pointer to one stored chunk of one attempt, never the items (work
queue), and one step of reading an import's source (import queue)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vector_tasks.domain.model import ORIGINAL_CHUNKS, ChunkRef, TaskKind
from vector_tasks.domain.sources import ImportStep


class ChunkMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TaskKind
    task_id: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    chunk: int = Field(ge=0)
    # Absent from messages sent before it existed: those name an attempt's original chunks or,
    # when they do not, the worker reads the source from the task.
    source: str = Field(default=ORIGINAL_CHUNKS, min_length=1, max_length=64)

    @classmethod
    def of(cls, ref: ChunkRef) -> ChunkMessage:
        return cls(kind=ref.kind, task_id=ref.task_id, attempt=ref.attempt, chunk=ref.chunk, source=ref.source)

    def ref(self) -> ChunkRef:
        return ChunkRef(
            kind=self.kind, task_id=self.task_id, attempt=self.attempt, chunk=self.chunk, source=self.source
        )


class ImportStepMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TaskKind
    task_id: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    # The task's read position while this step is the next one (ImportStep.position).
    position: str = Field(min_length=1, max_length=80)

    @classmethod
    def of(cls, step: ImportStep) -> ImportStepMessage:
        return cls(kind=step.kind, task_id=step.task_id, attempt=step.attempt, position=step.position)

    def step(self) -> ImportStep:
        return ImportStep.at(self.kind, self.task_id, self.attempt, self.position)
