"""The last accepted write wins: for each model and object, the index ends as the most recently
accepted task attempt that includes the object asked, whatever order its chunks arrive in.

Randomized with a fixed seed per run (ORDERING_SEED, printed): upsertion and deletion tasks
over overlapping object ids with different payloads are created in a known order, restarted
(all or failed) in between, and their chunk messages delivered shuffled, duplicated and
delayed. An oracle replays the deliveries in the order they were made against a model of
OpenSearch's external versioning (tombstones included) to know which writes changed nothing.
After every round: the index equals what each object's last accepted attempt asked for, and
every counter (succeeded, failed, superseded) is exact. With the versions taken out of the
writes the same run fails, so the test can tell.

In-process: moto (mock_aws, the restart state machine executed), an osmem clone; the chunks
are processed by the worker's ChunkProcessor as the queue hands them out.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.support.in_process import InProcessStack
from vector_tasks import wiring
from vector_tasks.adapters import vector_index
from vector_tasks.domain.model import ChunkRef, TaskKind
from vector_tasks.domain.processing import Delivery
from vector_tasks.models.messages import ChunkMessage

MODEL = "local-hash-384"
INDEX = f"vectors-{MODEL}"
SEED = int(os.environ.get("ORDERING_SEED", "20261201"))
OBJECTS = [f"obj-{n:03d}" for n in range(240)]
ROUNDS = 4
NOT_FOUND = vector_index.NOT_FOUND_DETAIL


@dataclass
class Attempt:
    """One accepted attempt: what it asked for each of its objects."""

    kind: TaskKind
    task_id: str
    number: int
    version: int
    wants: dict[str, str | None]  # object id -> payload text, None for a delete
    # The oracle's count of what the attempt's recorded chunks did.
    succeeded: int = 0
    superseded: int = 0
    not_found: set[str] = field(default_factory=set)


@dataclass
class Oracle:
    """OpenSearch's external versioning: per object the highest version written or deleted."""

    versions: dict[str, int] = field(default_factory=dict)
    present: dict[str, str] = field(default_factory=dict)  # object id -> payload text

    def apply(self, attempt: Attempt, objects: list[str]) -> None:
        for oid in objects:
            held = self.versions.get(oid)
            attempt.succeeded += 1
            if held is not None and held > attempt.version:
                attempt.superseded += 1
                continue
            self.versions[oid] = attempt.version
            wanted = attempt.wants[oid]
            if wanted is None:
                if oid not in self.present:
                    attempt.succeeded -= 1
                    attempt.not_found.add(oid)
                self.present.pop(oid, None)
            else:
                self.present[oid] = wanted


class Run:
    def __init__(self, stack: InProcessStack, opensearch: OpenSearch, rng: random.Random) -> None:
        self.stack = stack
        self.opensearch = opensearch
        self.rng = rng
        self.oracle = Oracle()
        self.attempts: dict[tuple[TaskKind, str], Attempt] = {}  # the current attempt of each task
        self.accepted: list[Attempt] = []  # in the order they were accepted
        self.created = 0

    def path(self, kind: TaskKind) -> str:
        return f"/internal/{kind.value}-tasks"

    def task(self, kind: TaskKind, task_id: str) -> dict[str, Any]:
        status, task = self.stack.request("GET", f"{self.path(kind)}/info", f"task_id={task_id}")
        assert status == 200, task
        return task

    def accept(self, kind: TaskKind, task_id: str, wants: dict[str, str | None]) -> None:
        stored = wiring.task_store().get_task(kind, task_id)
        assert stored is not None
        attempt = Attempt(kind, task_id, stored.attempt, stored.write_version, wants)
        if self.accepted:
            assert attempt.version > self.accepted[-1].version  # accepted later: a newer version
        self.attempts[(kind, task_id)] = attempt
        self.accepted.append(attempt)

    def create(self) -> None:
        self.created += 1
        objects = self.rng.sample(OBJECTS, self.rng.randint(40, 230))
        if self.rng.random() < 0.35:
            kind, task_id = TaskKind.DELETION, f"del-{self.created}"
            body: dict[str, Any] = {"embedding_model_id": MODEL, "task_id": task_id, "object_ids": objects}
            wants: dict[str, str | None] = dict.fromkeys(objects)
        else:
            kind, task_id = TaskKind.UPSERTION, f"up-{self.created}"
            texts = {oid: f"{oid} as written by {task_id}" for oid in objects}
            items = [{"object_id": oid, "payload": {"text": text}} for oid, text in texts.items()]
            body = {"embedding_model_id": MODEL, "task_id": task_id, "items": items}
            wants = dict(texts)
        status, answer = self.stack.request("POST", f"{self.path(kind)}/run", body=body)
        assert status == 202, answer
        self.accept(kind, task_id, wants)

    def restart(self) -> None:
        finished = [a for a in self.attempts.values() if self.task(a.kind, a.task_id)["status"] in ("done", "failed")]
        if not finished:
            return
        previous = self.rng.choice(finished)
        scope = "failed" if previous.not_found and self.rng.random() < 0.5 else "all"
        query = f"task_id={previous.task_id}&scope={scope}&attempt={previous.number}"
        status, answer = self.stack.request("PUT", f"{self.path(previous.kind)}/restart", query)
        assert status == 200, answer
        wants = {oid: previous.wants[oid] for oid in previous.not_found} if scope == "failed" else previous.wants
        self.accept(previous.kind, previous.task_id, dict(wants))

    def deliver(self) -> None:
        """Everything queued, shuffled; some twice; some held back to the end of the round."""
        queue = self.stack.queue_url("WorkQueue")
        messages: list[dict[str, Any]] = []
        while batch := self.stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                self.stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                messages.append(json.loads(message["Body"]))
        messages += [m for m in messages if self.rng.random() < 0.3]  # redeliveries
        self.rng.shuffle(messages)
        held = [m for m in messages if self.rng.random() < 0.2]
        for body in [m for m in messages if m not in held] + held:
            self.process(ChunkMessage.model_validate(body).ref())

    def process(self, ref: ChunkRef) -> None:
        attempt = self.attempts[(ref.kind, ref.task_id)]
        stored = wiring.task_store().get_task(ref.kind, ref.task_id)
        assert stored is not None
        items = wiring.task_store().load_chunk(ref, stored.chunk_source) if ref.attempt == attempt.number else []
        delivery = wiring.chunk_processor().process(ref, time.monotonic() + 60)
        if delivery is Delivery.RECORDED:
            self.oracle.apply(attempt, [i if isinstance(i, str) else str(i["object_id"]) for i in items])

    def check(self) -> None:
        """Every delivery of the round is in: the index and every counter as the oracle says."""
        self.opensearch.indices.refresh(index=INDEX)
        found = self.opensearch.mget(index=INDEX, body={"ids": OBJECTS})["docs"]
        index = {d["_id"]: d["_source"]["payload"]["text"] for d in found if d.get("found")}
        last: dict[str, str | None] = {}
        for attempt in self.accepted:  # the last accepted attempt that includes an object wins
            last.update(attempt.wants)
        expected = {oid: text for oid, text in last.items() if text is not None}
        assert index == expected
        assert index == self.oracle.present
        for attempt in self.attempts.values():
            task = self.task(attempt.kind, attempt.task_id)
            progress = task["progress"]
            assert task["attempt"] == attempt.number
            assert task["status"] == "done", task
            assert progress["pending"] == 0
            assert (progress["succeeded"], progress["superseded"]) == (attempt.succeeded, attempt.superseded), (
                attempt.task_id
            )
            listed = {f["object_id"]: f["detail"] for f in task.get("failed_items", task.get("failed_item_ids", []))}
            assert listed == dict.fromkeys(attempt.not_found, NOT_FOUND)


def run(stack: InProcessStack, opensearch: OpenSearch, seed: int) -> Run:
    rng = random.Random(seed)
    scenario = Run(stack, opensearch, rng)
    for _ in range(ROUNDS):
        for _ in range(rng.randint(2, 4)):
            if scenario.created and rng.random() < 0.3:
                scenario.restart()
            else:
                scenario.create()
        scenario.deliver()
        scenario.check()
    return scenario


def test_the_last_accepted_attempt_wins_whatever_order_the_chunks_arrive_in(
    stack: InProcessStack, opensearch: OpenSearch
) -> None:
    print(f"\nORDERING_SEED={SEED}")
    scenario = run(stack, opensearch, SEED)
    superseded = sum(a.superseded for a in scenario.attempts.values())
    print(f"{len(scenario.accepted)} attempts accepted, {superseded} writes superseded")
    assert superseded > 0  # the shuffle did overtake older writes, so the run tested something


def test_without_versions_the_same_run_fails(
    stack: InProcessStack, opensearch: OpenSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test can fail: writes without their version let an older one land last."""
    monkeypatch.setattr(vector_index, "_versioned", lambda version: {})
    with pytest.raises(AssertionError):
        run(stack, opensearch, SEED)


def test_documents_written_without_versions_are_overwritten_by_the_first_versioned_write(
    stack: InProcessStack, opensearch: OpenSearch
) -> None:
    """An index that already holds documents from elsewhere (OpenSearch's internal versions,
    which count the writes) keeps working: the service's writes win over them."""
    items = [{"object_id": f"pre-{n}", "payload": {"text": "ours"}} for n in range(3)]
    body = {"embedding_model_id": MODEL, "task_id": "warm-up", "items": [{"object_id": "w", "payload": {"text": "x"}}]}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    stack.drain()  # the index exists, as the service creates it
    for n in range(3):
        for write in range(5):
            opensearch.index(
                index=INDEX, id=f"pre-{n}", body={"object_id": f"pre-{n}", "task_id": f"elsewhere-{write}"}
            )
    body = {"embedding_model_id": MODEL, "task_id": "ours", "items": items}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    deletion = {"embedding_model_id": MODEL, "task_id": "del-pre", "object_ids": ["pre-2"]}
    assert stack.request("POST", "/internal/deletion-tasks/run", body=deletion)[0] == 202
    stack.drain()
    _, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=ours")
    assert task["progress"] == {"total": 3, "succeeded": 3, "failed": 0, "pending": 0, "superseded": 0}
    opensearch.indices.refresh(index=INDEX)
    assert opensearch.get(index=INDEX, id="pre-0")["_source"]["payload"] == {"text": "ours"}
    assert not opensearch.exists(index=INDEX, id="pre-2")
