"""The Python client: one object per endpoint, one sub-client per task kind.

client = VectorTasksClient.aws("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")
task = client.upsertion.create("local-hash-384", [DataItem(object_id="doc-1", payload={"text": "hi"})])
done = client.upsertion.wait(task.id, timeout=600)
for failure in client.upsertion.iter_failures(done.id):
    print(failure.object_id, failure.detail)
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from vector_tasks_client.errors import ApiError, TaskChanged, UnexpectedAnswer, WaitTimeout
from vector_tasks_client.kinds import Kind
from vector_tasks_client.limits import FAILURES_MAX_LIMIT, LIST_MAX_LIMIT
from vector_tasks_client.models import (
    CreateDeletionTaskRequest,
    CreateUpsertionTaskRequest,
    DataItem,
    DeletionTask,
    ImportSourceIn,
    ItemFailure,
    RestartScope,
    TaskList,
    TaskStatus,
    TaskSummary,
    UpsertionTask,
)
from vector_tasks_client.transport import Query, Response, RetryPolicy, Signer, Transport

LOCAL_ENDPOINT = "http://127.0.0.1:3000"  # `make run`
TaskT = TypeVar("TaskT", bound=UpsertionTask | DeletionTask)


@dataclass(frozen=True)
class Operation:
    """One route of a kind. `repeatable`: whether the service acting on it twice is harmless,
    so that a 5xx or a lost answer may be retried."""

    method: str
    route: str
    repeatable: bool


CREATE = Operation("POST", "run", repeatable=True)  # idempotent by task_id, which create always sends
GET = Operation("GET", "info", repeatable=True)
LIST = Operation("GET", "list", repeatable=True)
CANCEL = Operation("PUT", "cancel", repeatable=True)  # a canceled task answers 200, unchanged
# Sent with the attempt it restarts, which the service moves on at most once: the same
# request again answers with the attempt it made (README, "Retrying safely").
RESTART = Operation("PUT", "restart", repeatable=True)
OPERATIONS = {f"{kind.path}/{op.route}": op for kind in Kind for op in (CREATE, GET, LIST, CANCEL, RESTART)}


ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(model: type[ModelT], response: Response) -> ModelT:
    try:
        return model.model_validate_json(response.body)
    except ValidationError as exc:
        rid = f" (request id {response.request_id})" if response.request_id else ""
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3])
        raise UnexpectedAnswer(f"the answer is not a {model.__name__}{rid}: {problems}") from None


def new_task_id() -> str:
    """A task id for a create that names none, chosen before the first attempt so that every
    retry of that create is the same request (the service's own would differ per attempt)."""
    return f"task-{uuid.uuid4().hex}"


class TaskKindClient(Generic[TaskT]):
    """The operations on one kind of task (see UpsertionTasks and DeletionTasks for create)."""

    kind: ClassVar[Kind]
    task_model: type[TaskT]

    def __init__(self, transport: Transport, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._transport = transport
        self._clock = clock
        self._sleep = sleep

    def _call(self, operation: Operation, query: Query | None = None, body: bytes | None = None) -> Response:
        response = self._transport.send(
            operation.method,
            f"{self.kind.path}/{operation.route}",
            query=query,
            body=body,
            repeatable=operation.repeatable,
        )
        if response.status >= 400:
            raise ApiError.from_response(response)
        return response

    def _task(self, response: Response) -> TaskT:
        return _parse(self.task_model, response)

    # -- the API's operations -------------------------------------------------------------------

    def _create(self, request: CreateUpsertionTaskRequest | CreateDeletionTaskRequest) -> TaskT:
        task, _ = self.create_from_body(request.model_dump_json(exclude_none=True).encode())
        return task

    def create_from_body(self, body: bytes) -> tuple[TaskT, bool]:
        """Create from a request body serialised by the caller (it must name its task_id, or
        retries could create it twice). Returns the task and whether it is new (202) rather
        than an existing task with that id and body (200)."""
        parsed = json.loads(body)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("task_id"), str):
            raise ValueError("a create body sent as is must carry its task_id")
        response = self._call(CREATE, body=body)
        return self._task(response), response.status == 202

    def get(self, task_id: str, failures_offset: int = 0, failures_limit: int = FAILURES_MAX_LIMIT) -> TaskT:
        """The task with one page of its current attempt's failures."""
        query: Query = {"task_id": task_id, "failures_offset": failures_offset, "failures_limit": failures_limit}
        return self._task(self._call(GET, query))

    def list_tasks(self, status: TaskStatus | None = None, offset: int = 0, limit: int = 20) -> TaskList:
        """One page of tasks, newest first."""
        query: Query = {"offset": offset, "limit": limit, "status": status.value if status else None}
        return _parse(TaskList, self._call(LIST, query))

    def cancel(self, task_id: str, attempt: int | None = None) -> TaskT:
        """Cancel the task; with `attempt`, only while it is at that attempt (else ApiError
        attempt_mismatch), so that a retry never cancels an attempt a restart made since."""
        return self._task(self._call(CANCEL, {"task_id": task_id, "attempt": attempt}))

    def restart(self, task_id: str, scope: RestartScope = RestartScope.ALL, attempt: int | None = None) -> TaskT:
        """Restart `attempt` (default: the task's attempt, read first) as the next one. Safe to
        retry after a 5xx or a lost answer: the service restarts that attempt at most once and
        answers every request for it with the attempt it made."""
        if attempt is None:
            attempt = self.get(task_id, failures_limit=1).attempt
        return self._task(self._call(RESTART, {"task_id": task_id, "scope": scope.value, "attempt": attempt}))

    # -- waiting and paging ---------------------------------------------------------------------

    def wait(
        self,
        task_id: str,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        on_update: Callable[[Sequence[TaskSummary]], None] | None = None,
    ) -> TaskT:
        """Poll until the task is done, failed or canceled; raises WaitTimeout after `timeout`
        seconds (None: no limit). Returns the task as `get` answers it."""
        return self.wait_all([task_id], timeout, poll_interval, on_update)[0]

    def wait_all(
        self,
        task_ids: Iterable[str],
        timeout: float | None = None,
        poll_interval: float = 1.0,
        on_update: Callable[[Sequence[TaskSummary]], None] | None = None,
    ) -> list[TaskT]:
        """`wait` for several tasks at once; `on_update` gets them all after each round of polls.

        A round reads the newest page of the list, which answers for every task on it in one
        request (an `info` reads the task's failures too); a task not on it is read alone.
        """
        ids = list(dict.fromkeys(task_ids))
        deadline = None if timeout is None else self._clock() + timeout
        latest: dict[str, TaskSummary] = {}
        listed = True  # whether the newest page held any of them last round
        while True:
            unfinished = [i for i in ids if i not in latest or not latest[i].status.is_final]
            found: dict[str, TaskSummary] = {}
            if listed:
                found = {t.id: t for t in self.list_tasks(limit=LIST_MAX_LIMIT).tasks if t.id in unfinished}
                listed = bool(found)
            for task_id in unfinished:
                latest[task_id] = found.get(task_id) or self.get(task_id, failures_limit=1)
            tasks = [latest[task_id] for task_id in ids]
            if on_update is not None:
                on_update(tasks)
            if all(task.status.is_final for task in tasks):
                return [self.get(task_id) for task_id in ids]
            now = self._clock()
            if deadline is not None and now >= deadline:
                running = [t.id for t in tasks if not t.status.is_final]
                raise WaitTimeout(f"not finished within {timeout:g} s: {', '.join(running)}", tasks)
            self._sleep(poll_interval if deadline is None else min(poll_interval, deadline - now))

    def list_pages(self, status: TaskStatus | None = None, page_size: int = LIST_MAX_LIMIT) -> Iterator[TaskList]:
        """Every page of the list, newest first, until the last."""
        offset: int | None = 0
        while offset is not None:
            page = self.list_tasks(status, offset, page_size)
            yield page
            offset = page.next_offset

    def iter_tasks(self, status: TaskStatus | None = None, page_size: int = LIST_MAX_LIMIT) -> Iterator[TaskSummary]:
        """Every task, newest first. The list moves while it is read (a new task pushes the
        others one place back): a task already yielded is not yielded again."""
        seen: set[str] = set()
        for page in self.list_pages(status, page_size):
            for task in page.tasks:
                if task.id not in seen:
                    seen.add(task.id)
                    yield task

    def failure_pages(self, task_id: str, page_size: int = FAILURES_MAX_LIMIT) -> Iterator[TaskT]:
        """The task once per page of its current attempt's failures; raises TaskChanged if it is
        restarted meanwhile (the pages would mix two attempts)."""
        offset: int | None = 0
        attempt: int | None = None
        while offset is not None:
            task = self.get(task_id, failures_offset=offset, failures_limit=page_size)
            if attempt is not None and task.attempt != attempt:
                raise TaskChanged(
                    f"task {task_id!r} was restarted (attempt {task.attempt}) while its failures were read"
                )
            attempt = task.attempt
            yield task
            offset = task.failures_next_offset

    def iter_failures(self, task_id: str, page_size: int = FAILURES_MAX_LIMIT) -> Iterator[ItemFailure]:
        for page in self.failure_pages(task_id, page_size):
            yield from page.failures


class UpsertionTasks(TaskKindClient[UpsertionTask]):
    kind = Kind.UPSERTION
    task_model = UpsertionTask

    def create(self, embedding_model_id: str, items: Sequence[DataItem], task_id: str | None = None) -> UpsertionTask:
        """Create a task that embeds `items` into the model's index.

        Without `task_id` one is chosen here. The same task_id with the same body answers the
        existing task, whatever its status; with another body it is a 409 ApiError.
        """
        return self._create(
            CreateUpsertionTaskRequest(
                embedding_model_id=embedding_model_id, task_id=task_id or new_task_id(), items=list(items)
            )
        )

    def import_from(self, embedding_model_id: str, s3_uri: str, task_id: str | None = None) -> UpsertionTask:
        """Create a task that embeds the items read from `s3_uri` (JSON Lines, one item per line;
        gzip allowed): one object, or every object under a prefix (README, "Import from S3").
        It answers at once; `wait` follows it while the source is read (its `source` block)."""
        return self._create(
            CreateUpsertionTaskRequest(
                embedding_model_id=embedding_model_id,
                task_id=task_id or new_task_id(),
                source=ImportSourceIn(s3_uri=s3_uri),
            )
        )


class DeletionTasks(TaskKindClient[DeletionTask]):
    kind = Kind.DELETION
    task_model = DeletionTask

    def import_from(self, embedding_model_id: str, s3_uri: str, task_id: str | None = None) -> DeletionTask:
        """Create a task that removes the object ids read from `s3_uri` (JSON Lines, one id per
        line; gzip allowed): one object, or every object under a prefix."""
        return self._create(
            CreateDeletionTaskRequest(
                embedding_model_id=embedding_model_id,
                task_id=task_id or new_task_id(),
                source=ImportSourceIn(s3_uri=s3_uri),
            )
        )

    def create(self, embedding_model_id: str, object_ids: Sequence[str], task_id: str | None = None) -> DeletionTask:
        """Create a task that removes `object_ids` from the model's index (task_id: as upsertion's)."""
        return self._create(
            CreateDeletionTaskRequest(
                embedding_model_id=embedding_model_id, task_id=task_id or new_task_id(), object_ids=list(object_ids)
            )
        )


class VectorTasksClient:
    """The service at `endpoint` (its API URL, stage included). Unsigned unless given a signer:
    use `VectorTasksClient.aws(...)` for a deployed stack, `VectorTasksClient.local()` for
    `make run`."""

    def __init__(
        self,
        endpoint: str,
        *,
        signer: Signer | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = Transport(
            endpoint, signer=signer, retry=retry or RetryPolicy(), sleep=sleep, rng=rng or random.Random()
        )
        self.upsertion = UpsertionTasks(self.transport, clock, sleep)
        self.deletion = DeletionTasks(self.transport, clock, sleep)

    @property
    def endpoint(self) -> str:
        return self.transport.endpoint

    @classmethod
    def aws(
        cls, endpoint: str, *, region: str | None = None, profile: str | None = None, **options: Any
    ) -> VectorTasksClient:
        """Signed with SigV4 from the caller's AWS credentials (as the AWS CLI finds them, or
        the named `profile`); the region is read from an execute-api endpoint unless given."""
        from vector_tasks_client.signing import SigV4Signer  # botocore: only for a signed client

        return cls(endpoint, signer=SigV4Signer.from_aws_config(endpoint, region, profile), **options)

    @classmethod
    def local(cls, endpoint: str = LOCAL_ENDPOINT, **options: Any) -> VectorTasksClient:
        """The local stack (`make run`), which takes unsigned requests."""
        return cls(endpoint, **options)

    def kind(self, kind: Kind) -> UpsertionTasks | DeletionTasks:
        return self.upsertion if kind is Kind.UPSERTION else self.deletion

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> VectorTasksClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
