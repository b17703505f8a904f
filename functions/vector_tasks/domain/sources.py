"""What an import reads: objects in S3, the steps that read them, and the ports to both."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from vector_tasks.domain.errors import DomainError
from vector_tasks.domain.model import READ_COMPLETE, Item, TaskKind

S3_SCHEME = "s3://"
# At most this many objects under one prefix, and this many bytes of their keys and ETags:
# the listing is stored in one DynamoDB item (at most 400 KB, compressed; this bound holds
# before compression, so whatever the keys look like).
MAX_OBJECTS_PER_IMPORT = 1_000
MAX_LISTING_BYTES = 350_000
# Bytes read, cut into lines and committed at a time: about 1,000 items of 384-d vectors, or
# 40,000 short texts. What a splitter holds in memory is about ten times this.
RANGE_BYTES = 4 * 1024 * 1024
# Ranges one invocation reads at most (while its time lasts) before it queues the next step:
# 256 MiB, so that imports queued beside it get their turn, and a gzip object (which a new
# invocation must decompress again from its start up to where reading goes on) is entered
# once per 256 MiB rather than once per range.
RANGES_PER_STEP = 64


class ImportNotAllowed(DomainError):
    """The source names a bucket the service may not read (template parameter ImportBuckets)."""


class SourceChanged(DomainError):
    """A restart would read an import's source again, and its objects are not the ones the
    task read (an ETag, a key added or gone), or cannot be listed now."""

    def __init__(self, task_id: str, what: str) -> None:
        super().__init__(
            f"Cannot restart task '{task_id}': its source changed since it was read ({what}); "
            "create a new task to import it as it is now"
        )


class SourceIncomplete(DomainError):
    """A restart of only the failed items of an import whose source was not read to the end."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"Cannot restart only the failed items of task '{task_id}': its source was not read to the end; "
            "restart with scope=all to read it again"
        )


class SourceUnreadable(Exception):
    """An object could not be listed or read (missing, AccessDenied, changed since it was
    listed); `reason` is what the task's error says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key or prefix) of an s3:// URI; ValueError naming what is wrong."""
    if not uri.startswith(S3_SCHEME):
        raise ValueError("must start with s3://")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError("names no bucket")
    return bucket, key


@dataclass(frozen=True)
class SourceObject:
    key: str
    etag: str
    size: int


@dataclass(frozen=True)
class ObjectRead:
    """The next bytes of an object's content (decompressed, for gzip); `at_end` when they reach
    its end."""

    data: bytes
    at_end: bool


class ObjectReader(Protocol):
    """An object's content from an offset, read on in order; `gzip` whether it is compressed."""

    gzip: bool

    def read(self, length: int) -> ObjectRead:
        """The next bytes, `length` of them unless the object ends first; SourceUnreadable if
        they cannot be read."""
        ...

    def close(self) -> None: ...


class ObjectStore(Protocol):
    def list_objects(self, bucket: str, key_or_prefix: str, limit: int) -> list[SourceObject]:
        """The object named `key_or_prefix` if there is one, else up to `limit` + 1 objects
        under it (so that the caller can tell there are more); SourceUnreadable if it cannot."""
        ...

    def open(self, bucket: str, obj: SourceObject, offset: int, gzip: bool | None) -> ObjectReader:
        """`obj`'s content from `offset` on, if the object still has `obj.etag`; `gzip` None:
        not known yet (offset 0), told by the content. SourceUnreadable if it cannot."""
        ...


@dataclass(frozen=True)
class ImportStep:
    """One step of reading a source: list it (`obj` -1), or read object `obj` from `offset`,
    `line` (1-based) being the first line there and `chunk` the number of the next chunk.
    `gzip`: told at the object's offset 0; `skipping`: the rest of a line longer than a range
    is being skipped."""

    kind: TaskKind
    task_id: str
    attempt: int
    obj: int = -1
    offset: int = 0
    line: int = 1
    chunk: int = 0
    gzip: bool | None = None
    skipping: bool = False

    @property
    def position(self) -> str:
        """The task's read position while this step is the next one (`ImportSource.position`)."""
        gzip = "-" if self.gzip is None else "z" if self.gzip else "p"
        return f"{self.obj}/{self.offset}/{self.line}/{self.chunk}/{gzip}{'s' if self.skipping else ''}"

    @classmethod
    def at(cls, kind: TaskKind, task_id: str, attempt: int, position: str) -> ImportStep:
        obj, offset, line, chunk, flags = position.split("/")
        gzip = None if flags[0] == "-" else flags[0] == "z"
        return cls(kind, task_id, attempt, int(obj), int(offset), int(line), int(chunk), gzip, flags.endswith("s"))


FIRST_POSITION = "-1/0/1/0/-"


@dataclass(frozen=True)
class StepRead:
    """What one step read: its chunks (from chunk number `step.chunk`), the lines it read, the
    objects it finished and the step after it (None: the source is read to its end)."""

    step: ImportStep
    chunks: Sequence[list[Item]]
    lines: int
    objects_done: int
    next: ImportStep | None

    @property
    def items(self) -> int:
        return sum(len(c) for c in self.chunks)

    @property
    def next_position(self) -> str:
        return self.next.position if self.next is not None else READ_COMPLETE


class ImportQueue(Protocol):
    def send_steps(self, steps: Iterable[ImportStep]) -> None: ...
