"""Concurrent cancels, restarts and worker deliveries (duplicates and stale attempts included)
against one task, on the local stack's servers: moto (requests applied one at a time, like
DynamoDB's atomic conditional writes) running the real state machines, and osmem.

After each round every delivery left is drained, then the invariants are checked: a final
status, counters that equal the recorded chunk results (nothing lost or counted twice) and
the item count once terminal, one failure listed per failed item, one attempt per restart.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key
from opensearchpy import OpenSearch

from devstack.stack import DevStack, DevStackConfig
from vector_tasks.adapters.embedders import embedder_for
from vector_tasks.adapters.state_machines import StepFunctionsTransitions
from vector_tasks.adapters.task_keys import task_pk
from vector_tasks.adapters.task_store import DynamoTaskStore
from vector_tasks.adapters.vector_index import OpenSearchVectorIndex
from vector_tasks.adapters.work_queue import SqsWorkQueue
from vector_tasks.domain.actions import DeleteChunk, UpsertChunk
from vector_tasks.domain.errors import InvalidTransition, NothingToRetry
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS
from vector_tasks.domain.model import RestartScope, TaskKind, TaskStatus
from vector_tasks.domain.processing import ChunkProcessor
from vector_tasks.domain.registry import default_registry
from vector_tasks.domain.tasks import TaskService
from vector_tasks.domain.transitions import TaskTransitions
from vector_tasks.models.messages import ChunkMessage

ROUNDS = 8
ITEMS = 3 * CHUNK_MAX_ITEMS  # three chunks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served() -> Iterator[DevStack]:
    config = DevStackConfig(
        port=_free_port(), opensearch_port=_free_port(), moto_port=_free_port(), start_pollers=False
    )
    stack = DevStack(config).start()
    try:
        yield stack
    finally:
        stack.stop()


@dataclass
class Services:
    """One set per thread: boto3 sessions and resources are not shared across threads."""

    store: DynamoTaskStore
    transitions: TaskTransitions
    processor: ChunkProcessor
    sqs: Any
    queue_url: str

    @classmethod
    def build(cls, stack: DevStack) -> Services:
        assert stack.template is not None
        physical = stack.template.physical
        store = DynamoTaskStore(physical["TaskTable"]["Ref"], resource=stack.aws.resource("dynamodb"))
        runner = StepFunctionsTransitions(
            physical["RestartTaskStateMachine"]["Arn"],
            physical["CancelTaskStateMachine"]["Arn"],
            client=stack.aws.client("stepfunctions"),
        )
        index = OpenSearchVectorIndex(lambda: OpenSearch(hosts=[stack.opensearch_url]))
        registry = default_registry()
        processor = ChunkProcessor(
            store,
            {
                TaskKind.UPSERTION: UpsertChunk(registry, index, embedder_for),
                TaskKind.DELETION: DeleteChunk(registry, index),
            },
        )
        return cls(
            store, TaskTransitions(store, runner), processor, stack.aws.client("sqs"), physical["WorkQueue"]["QueueUrl"]
        )

    def deliver(self, rng: random.Random, duplicate_rate: float) -> int:
        """One receive; each message processed, sometimes sent again first (a redelivery)."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            if rng.random() < duplicate_rate:
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=message["Body"])
            self.processor.process(ChunkMessage.model_validate_json(message["Body"]).ref(), time.monotonic() + 60)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)


@dataclass
class RoundLog:
    restarts: int = 0
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _actor(stack: DevStack, role: str, task_id: str, seed: int, start: threading.Barrier, log: RoundLog) -> None:
    rng = random.Random(seed)
    services = Services.build(stack)
    start.wait()
    try:
        if role == "worker":
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                if not services.deliver(rng, duplicate_rate=0.3):
                    time.sleep(0.02)
            return
        for _ in range(2):
            time.sleep(rng.uniform(0, 0.4))
            try:
                if role == "cancel":
                    services.transitions.cancel(TaskKind.UPSERTION, task_id)
                else:
                    scope = rng.choice([RestartScope.ALL, RestartScope.FAILED])
                    services.transitions.restart(TaskKind.UPSERTION, task_id, scope)
                    with log.lock:
                        log.restarts += 1
            except (InvalidTransition, NothingToRetry):
                pass  # the lifecycle said no: a valid outcome of a race
    except BaseException as exc:
        log.errors.append(exc)


def _check_invariants(services: Services, task_id: str, restarts: int) -> None:
    task = services.store.get_task(TaskKind.UPSERTION, task_id, with_failures=True)
    assert task is not None
    assert task.status in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED), task.status
    assert task.attempt == 1 + restarts
    assert task.succeeded + task.failed <= task.item_count
    assert task.chunks_done <= task.chunk_count
    if task.status is not TaskStatus.CANCELED:
        assert task.succeeded + task.failed == task.item_count
        assert task.chunks_done == task.chunk_count
    # The counters are exactly the sum of the chunk results recorded for this attempt.
    table = services.store._table
    results = table.query(
        KeyConditionExpression=Key("pk").eq(task_pk(TaskKind.UPSERTION, task_id)) & Key("sk").begins_with("RESULT#"),
        ConsistentRead=True,
    )["Items"]
    current = [r for r in results if int(r["attempt"]) == task.attempt]
    assert len(current) == task.chunks_done
    assert sum(int(r["succeeded"]) for r in current) == task.succeeded
    assert sum(int(r["failed"]) for r in current) == task.failed
    assert task.failures is not None
    assert len(task.failures) == task.failed
    assert len({f.object_id for f in task.failures}) == task.failed


def test_concurrent_cancels_restarts_and_deliveries_keep_the_invariants(served: DevStack) -> None:
    main = Services.build(served)
    service = TaskService(main.store, SqsWorkQueue(main.queue_url, client=main.sqs), default_registry())
    rng = random.Random(20261123)
    for round_number in range(ROUNDS):
        task_id = f"race-{round_number}"
        items: list[Any] = [
            {"object_id": f"{task_id}-{i}", "payload": {"text": f"item {i}"}}
            if i % 10
            else {"object_id": f"{task_id}-{i}"}
            for i in range(ITEMS)
        ]
        service.create(TaskKind.UPSERTION, "local-hash-384", task_id, items)
        roles = ["cancel", "cancel", "restart", "restart", "worker", "worker", "worker"]
        start = threading.Barrier(len(roles))
        log = RoundLog()
        threads = [
            threading.Thread(target=_actor, args=(served, role, task_id, rng.randrange(1 << 30), start, log))
            for role in roles
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not log.errors, log.errors
        while main.deliver(rng, duplicate_rate=0.0):
            pass
        _check_invariants(main, task_id, log.restarts)
