"""Crash points: for every AWS and OpenSearch call on the paths create, worker (a chunk alone,
and chunks together), dead-letter, restart, cancel, reconcile, the completion event and an
import from S3 (its create, the listing of its objects, the reading of one), one scenario per
way that one call can fail (it raises before it is sent; it is applied and its answer is lost;
the process dies right after it). Then the system goes on as on AWS: the client retries as the
README says (the same create with the task_id it sent or was given; a transition with the
attempt it saw), SQS redelivers, the stream is read again from the last record done with, the
reconciler runs. After each scenario every task is final, its progress exact, every item is in
the index or listed failed exactly once, the index holds exactly what succeeded, and the task's
final transition was announced on the bus (at least once).

The calls of each path are declared in SITES; a call a path makes that SITES does not list (a
new call site, which would have no scenarios) fails `test_every_call_site_has_its_scenarios`.
In-process on moto (mock_aws, state machines executed) with each function's role, and an
osmem of the module's own.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError
from moto import mock_aws
from opensearchpy import OpenSearch

from devstack.event_sources import StreamPoller
from devstack.lambda_runtime import FunctionError, InProcessFunction
from devstack.processes import start_osmem
from devstack.template import LOCAL_IMPORT_BUCKET
from tests.support.crash_points import FaultPlan, ProcessDied, armed, hooks_installed, parse_site, site_modes
from tests.support.event_tap import EventTap
from tests.support.in_process import InProcessStack
from vector_tasks import wiring
from vector_tasks.domain import sources
from vector_tasks.domain.limits import CHUNK_MAX_ITEMS
from vector_tasks.handlers.dead_letter import ABANDONED_DETAIL

MODEL = "local-hash-384"
INDEX = f"vectors-{MODEL}"
ITEMS = CHUNK_MAX_ITEMS + 1  # two chunks
FINAL = ("done", "failed", "canceled")
# How many times the client sends a request that failed with a 5xx (README: retry the same request).
CLIENT_ATTEMPTS = 5
# Rounds of "SQS redelivers everything, then the reconciler runs" before a task must be final.
ROUNDS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def opensearch_url() -> Iterator[str]:
    port = _free_port()
    server = start_osmem(port, None)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def harness(opensearch_url: str) -> Iterator[Harness]:
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "CRITICAL",
    }
    with pytest.MonkeyPatch.context() as patch, hooks_installed():
        for name, value in environment.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        # A process that dies is Lambda's function error; the next invocation starts cold.
        real_run = InProcessFunction._run

        def run_or_die(self: InProcessFunction, event: dict[str, Any], encoded: bytes, wait: float) -> Any:
            try:
                return real_run(self, event, encoded, wait)
            except ProcessDied as died:
                wiring.reset()
                raise FunctionError("Runtime.ExitError", f"the runtime died after {died}", []) from None

        patch.setattr(InProcessFunction, "_run", run_or_die)
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            stack = InProcessStack(opensearch_url)
            for name, value in stack.environment.items():
                patch.setenv(name, value)
            patch.setenv("RECONCILE_STALL_AFTER_SECONDS", "0")  # every unfinished task counts as stalled
            # An import's step reads one range, so that its two objects take two steps.
            patch.setattr(sources, "RANGES_PER_STEP", 1)
            wiring.reset()
            yield Harness(stack, OpenSearch(hosts=[opensearch_url]), stack.event_tap())
    wiring.reset()


@dataclass
class Created:
    task_id: str
    object_ids: list[str]
    # The client never learned this task's id (the create died with no answer), so it created
    # another: this one may end failed for its items were never stored.
    orphan: bool = False


class Harness:
    def __init__(self, stack: InProcessStack, opensearch: OpenSearch, tap: EventTap) -> None:
        self.stack = stack
        self.opensearch = opensearch
        self.tap = tap
        self.announced: set[tuple[str, int, str]] = set()  # (task id, attempt, status) on the bus
        self.table = boto3.resource("dynamodb").Table(stack.table_name)
        self.scenarios = 0

    # -- the client, as the README tells it to behave --------------------------------------

    def body(self, name: str, task_id: str | None = None) -> dict[str, Any]:
        items = [{"object_id": f"{name}-{i}", "payload": {"text": f"{name} words {i}"}} for i in range(ITEMS)]
        body: dict[str, Any] = {"embedding_model_id": MODEL, "items": items}
        if task_id is not None:
            body["task_id"] = task_id
        return body

    def create(self, name: str, plan: FaultPlan | None = None) -> list[Created]:
        """A create without task_id: on a 5xx the client sends the same request again with the
        task_id the error names. A 502 (the process died) names none, so the client can only
        create another task; what the first one stored is an orphan the reconciler ends."""
        body = self.body(name)
        ids = [f"{name}-{i}" for i in range(ITEMS)]
        before = self.task_ids()
        for attempt in range(CLIENT_ATTEMPTS):
            with armed(plan if attempt == 0 else None):
                status, answer = self.stack.request("POST", "/internal/upsertion-tasks/run", body=body)
            if status in (200, 202):
                known = answer["id"]
                return [Created(t, ids, orphan=t != known) for t in sorted(self.task_ids() - before)]
            assert status in (500, 502), answer
            error = answer.get("error")
            if isinstance(error, dict) and error.get("task_id"):
                body = self.body(name, error["task_id"])
        raise AssertionError(f"create {name} still failing after {CLIENT_ATTEMPTS} attempts")

    def create_import(self, name: str, plan: FaultPlan | None = None) -> list[Created]:
        """An import of the same items from two objects under a prefix, created as `create`
        creates (the same request again, with the task_id an error names)."""
        items = self.body(name)["items"]
        for part, lines in enumerate((items[: ITEMS // 2], items[ITEMS // 2 :])):
            body = "".join(json.dumps(item) + "\n" for item in lines).encode()
            self.stack.s3.put_object(Bucket=LOCAL_IMPORT_BUCKET, Key=f"crash/{name}/part-{part}.jsonl", Body=body)
        body = {"embedding_model_id": MODEL, "source": {"s3_uri": f"s3://{LOCAL_IMPORT_BUCKET}/crash/{name}/"}}
        ids = [f"{name}-{i}" for i in range(ITEMS)]
        before = self.task_ids()
        for attempt in range(CLIENT_ATTEMPTS):
            with armed(plan if attempt == 0 else None):
                status, answer = self.stack.request("POST", "/internal/upsertion-tasks/run", body=body)
            if status in (200, 202):
                known = answer["id"]
                return [Created(t, ids, orphan=t != known) for t in sorted(self.task_ids() - before)]
            assert status in (500, 502), answer
            error = answer.get("error")
            if isinstance(error, dict) and error.get("task_id"):
                body["task_id"] = error["task_id"]
        raise AssertionError(f"import {name} still failing after {CLIENT_ATTEMPTS} attempts")

    def task_ids(self) -> set[str]:
        """The newest upsertion tasks (a scenario creates a few at most)."""
        newest = self.table.query(
            IndexName="ByCreated",
            KeyConditionExpression=Key("list_pk").eq("upsertion"),
            ScanIndexForward=False,
            Limit=10,
            ProjectionExpression="task_id",
        )["Items"]
        return {str(i["task_id"]) for i in newest}

    def transition(self, action: str, task_id: str, attempt: int, plan: FaultPlan | None = None) -> dict[str, Any]:
        """PUT cancel or restart naming the attempt the client saw, sent again on a 5xx."""
        query = f"task_id={task_id}&attempt={attempt}"
        for n in range(CLIENT_ATTEMPTS):
            with armed(plan if n == 0 else None):
                status, answer = self.stack.request("PUT", f"/internal/upsertion-tasks/{action}", query)
            if status == 200:
                return answer
            assert status in (500, 502, 503), answer
        raise AssertionError(f"{action} of {task_id} still failing after {CLIENT_ATTEMPTS} attempts")

    def info(self, task_id: str, offset: int = 0) -> dict[str, Any]:
        status, task = self.stack.request(
            "GET", "/internal/upsertion-tasks/info", f"task_id={task_id}&failures_offset={offset}"
        )
        assert status == 200, task
        return task

    # -- the platform going on -------------------------------------------------------------

    def deliver(self, function: str, plan: FaultPlan | None = None, messages: int = 1) -> None:
        """One invocation of a queue consumer with at most `messages` records. When the event
        source's own receive or delete fails, it polls again later, as the Lambda service does;
        a message it received and lost comes back after the visibility timeout (here: the
        reconciler finds the task stalled first)."""
        with armed(plan), contextlib.suppress(BotoCoreError, ClientError):
            if function == "TaskWorkerFunction":
                self.stack.deliver_to_worker(messages)
            elif function == "CompletionEventsFunction":
                (stream,) = [p for p in self.stack.pollers if isinstance(p, StreamPoller)]
                stream.restart()  # a poller that starts now: every call of its first read counts
                stream.poll_once()
            else:
                (poller,) = [p for p in self.stack.pollers if p.function.spec.logical_id == function]
                poller.poll_once()

    def reconcile(self, plan: FaultPlan | None = None) -> None:
        # A run that fails is logged by the Scheduler, and the next one comes.
        with armed(plan), contextlib.suppress(Exception):
            self.stack.functions["ReconcilerFunction"].invoke({"action": "reconcile"})

    def go_on(self, created: list[Created]) -> None:
        """SQS redelivers until the queues are empty, then the reconciler runs; until final."""
        for _ in range(ROUNDS):
            self.stack.drain()
            if all(self.info(c.task_id)["status"] in FINAL for c in created):
                return
            self.reconcile()
        raise AssertionError(f"not final after {ROUNDS} rounds: {[self.info(c.task_id) for c in created]}")

    def lose_messages(self) -> None:
        """Every work message gone (a purge; moto allows one a minute, so they are taken)."""
        sqs, work = self.stack.sqs, self.stack.queue_url("WorkQueue")
        while messages := sqs.receive_message(QueueUrl=work, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                sqs.delete_message(QueueUrl=work, ReceiptHandle=message["ReceiptHandle"])

    def to_dead_letters(self) -> None:
        """What SQS does after maxReceiveCount: every work message moves to the DLQ."""
        sqs, work, dlq = self.stack.sqs, self.stack.queue_url("WorkQueue"), self.stack.queue_url("WorkDeadLetterQueue")
        while messages := sqs.receive_message(QueueUrl=work, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=work, ReceiptHandle=message["ReceiptHandle"])

    # -- what must hold after every scenario -----------------------------------------------

    def indexed(self, object_ids: list[str]) -> set[str]:
        self.opensearch.indices.refresh(index=INDEX)
        found = self.opensearch.mget(index=INDEX, body={"ids": object_ids})["docs"]
        return {d["_id"] for d in found if d.get("found")}

    def failures(self, task_id: str) -> list[tuple[str, str]]:
        listed: list[tuple[str, str]] = []
        offset: int | None = 0
        while offset is not None:
            page = self.info(task_id, offset)
            listed.extend((f["object_id"], f["detail"]) for f in page["failed_items"])
            offset = page["failures_next_offset"]
        return listed

    def check(self, created: list[Created], expect: str) -> None:
        """`expect`: "done" (everything succeeded), "abandoned" (what failed, failed through the
        dead-letter path), "canceled" (whatever was under way counted, the rest never written)."""
        self.announced |= {(task_id, attempt, status) for _, task_id, attempt, status in self.tap.transitions()}
        for task in created:
            answer = self.info(task.task_id)
            assert (task.task_id, answer["attempt"], answer["status"]) in self.announced, answer
            progress = answer["progress"]
            failed = self.failures(task.task_id)
            failed_ids = [oid for oid, _ in failed]
            in_index = self.indexed(task.object_ids)
            assert answer["status"] in FINAL, answer
            assert len(failed_ids) == len(set(failed_ids)) == progress["failed"], (answer, failed)
            if task.orphan and answer["status"] in ("pending", "failed") and answer["progress"]["total"] == 0:
                continue  # an import the client never learned of, which read nothing: see below
            if task.orphan and answer["status"] == "failed" and "are not stored" in (answer["error"] or ""):
                continue  # its items went with the client's next create, checked there
            if expect == "canceled":
                assert answer["status"] == "canceled", answer
                assert progress["succeeded"] + progress["failed"] <= progress["total"]
                assert len(in_index) >= progress["succeeded"]
                continue
            assert progress["pending"] == 0, answer
            assert progress["succeeded"] + progress["failed"] == progress["total"] == ITEMS, answer
            assert set(failed_ids) | in_index == set(task.object_ids)
            assert not set(failed_ids) & in_index
            if expect == "done":
                assert (answer["status"], progress["succeeded"]) == ("done", ITEMS), answer
            else:  # dead-lettered chunks fail their items; chunks the reconciler sent again may pass
                assert {detail for _, detail in failed} <= {ABANDONED_DETAIL}
                assert answer["status"] == ("failed" if len(failed) == ITEMS else "done"), answer
        self.scenarios += 1
        self.forget(created)

    def forget(self, created: list[Created]) -> None:
        """Start the next scenario from an empty table: moto's queries read every item, and its
        transactions copy the table with every stream record, so a table that grew with each
        scenario would slow down every later one."""
        self.stack.recreate_table()


# -- the paths -------------------------------------------------------------------------------
# Each runs its one armed step with `plan` (None: nothing fails) after an unarmed set-up, lets
# the system go on, and returns what to check and how.

Path = Callable[["Harness", str, FaultPlan | None], tuple[list[Created], str]]


def path_create(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    created = h.create(name, plan)
    h.go_on(created)
    return created, "done"


def path_worker_first(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    """The first chunk, in a cold container, of a model whose index does not exist yet."""
    created = h.create(name)
    h.opensearch.indices.delete(index=INDEX, ignore_unavailable=True)
    wiring.reset()
    h.deliver("TaskWorkerFunction", plan)
    h.go_on(created)
    return created, "done"


def path_worker_last(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    """The last chunk, in a warm container: the delivery that finishes the task."""
    created = h.create(name)
    h.deliver("TaskWorkerFunction")
    h.deliver("TaskWorkerFunction", plan)
    h.go_on(created)
    return created, "done"


def path_worker_group(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    """Both chunks in one invocation, in a cold container (whatever the scenario before left):
    read together, one `_bulk`, recorded in one transaction, and the task finished."""
    created = h.create(name)
    wiring.reset()
    h.deliver("TaskWorkerFunction", plan, messages=2)
    h.go_on(created)
    return created, "done"


def path_dead_letter(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    created = h.create(name)
    h.to_dead_letters()
    h.deliver("DeadLetterFunction", plan, messages=10)
    h.go_on(created)
    return created, "abandoned"


def path_restart(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    created = h.create(name)
    h.go_on(created)
    h.transition("restart", created[0].task_id, attempt=1, plan=plan)
    h.go_on(created)
    assert h.info(created[0].task_id)["attempt"] == 2  # never restarted twice
    return created, "done"


def path_cancel(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    created = h.create(name)
    h.transition("cancel", created[0].task_id, attempt=1, plan=plan)
    h.go_on(created)
    return created, "canceled"


def path_reconcile(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    created = h.create(name)
    h.lose_messages()
    h.reconcile(plan)
    h.go_on(created)
    return created, "done"


def path_completion_event(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    """The stream record of the final transition, read and published (the records before it
    are the create's and the chunks' writes, filtered out)."""
    created = h.create(name)
    h.stack.drain(streams=False)
    h.deliver("CompletionEventsFunction", plan)
    h.go_on(created)
    return created, "done"


def path_import_create(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    created = h.create_import(name, plan)
    h.go_on(created)
    return created, "done"


def path_import_listing(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    """The import's first step: its objects listed and stored with its read position, then its
    first range (the first object) read, stored, counted and queued, then the next step."""
    created = h.create_import(name)
    h.deliver("ImportSplitterFunction", plan)
    h.go_on(created)
    return created, "done"


def path_import_read(h: Harness, name: str, plan: FaultPlan | None) -> tuple[list[Created], str]:
    """The second step: the last object read, its chunks stored, counted and queued, the task
    finished if every chunk is recorded."""
    created = h.create_import(name)
    h.deliver("ImportSplitterFunction")
    h.deliver("ImportSplitterFunction", plan)
    h.go_on(created)
    return created, "done"


PATHS: dict[str, Path] = {
    "create": path_create,
    "worker, first chunk": path_worker_first,
    "worker, last chunk": path_worker_last,
    "worker, both chunks together": path_worker_group,
    "dead-letter": path_dead_letter,
    "restart": path_restart,
    "cancel": path_cancel,
    "reconcile": path_reconcile,
    "completion event": path_completion_event,
    "import, create": path_import_create,
    "import, listing": path_import_listing,
    "import, read": path_import_read,
}


def recorded_sites(h: Harness, path: str) -> set[str]:
    """The sites `path` calls, each once (a call the transition API repeats while it waits for
    its execution, DescribeExecution, counts as its first occurrence: how many there are depends
    on timing)."""
    plan = FaultPlan()
    created, expect = PATHS[path](h, f"record-{path}", plan)
    h.check(created, expect)
    return {str(site) for site in plan.seen if not (site.call in VARIABLE_COUNT and site.occurrence)}


VARIABLE_COUNT = {"stepfunctions.DescribeExecution"}


# Every call each path makes, as `recorded_sites` names them. A path that makes a call not
# listed here fails test_every_call_site_has_its_scenarios: list it, and it gets its scenarios.
SITES: dict[str, list[str]] = {
    "create": [
        "dynamodb.BatchWriteItem @ DynamoTaskStore.put_chunks #0",
        "dynamodb.PutItem @ DynamoTaskStore.insert_task #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.mark_dispatched #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.next_write_version #0",
        "sqs.SendMessageBatch @ SqsWorkQueue.send_bodies #0",
    ],
    "worker, first chunk": [
        "dynamodb.BatchGetItem @ DynamoTaskStore.read_delivery #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #0",
        "dynamodb.TransactWriteItems @ DynamoTaskStore.record_chunk #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.transition #0",
        "opensearch.HEAD /{index} @ OpenSearchVectorIndex.index_exists #0",
        "opensearch.POST /{index}/_bulk @ OpenSearchVectorIndex.upsert #0",
        "opensearch.PUT /{index} @ OpenSearchVectorIndex.ensure_index #0",
        "sqs.DeleteMessageBatch @ event source #0",
        "sqs.ReceiveMessage @ event source #0",
    ],
    "worker, last chunk": [
        "dynamodb.BatchGetItem @ DynamoTaskStore.read_delivery #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #0",
        "dynamodb.TransactWriteItems @ DynamoTaskStore.record_chunk #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.transition #0",
        "opensearch.POST /{index}/_bulk @ OpenSearchVectorIndex.upsert #0",
        "sqs.DeleteMessageBatch @ event source #0",
        "sqs.ReceiveMessage @ event source #0",
    ],
    "worker, both chunks together": [
        "dynamodb.BatchGetItem @ DynamoTaskStore.read_deliveries #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #0",
        "dynamodb.TransactWriteItems @ DynamoTaskStore.record_chunks #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.transition #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.transition #1",
        "opensearch.HEAD /{index} @ OpenSearchVectorIndex.index_exists #0",
        "opensearch.POST /{index}/_bulk @ OpenSearchVectorIndex.upsert #0",
        "sqs.DeleteMessageBatch @ event source #0",
        "sqs.ReceiveMessage @ event source #0",
    ],
    "dead-letter": [
        "dynamodb.BatchGetItem @ DynamoTaskStore.read_delivery #0",
        "dynamodb.BatchGetItem @ DynamoTaskStore.read_delivery #1",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #1",
        "dynamodb.TransactWriteItems @ DynamoTaskStore.record_chunk #0",
        "dynamodb.TransactWriteItems @ DynamoTaskStore.record_chunk #1",
        "dynamodb.UpdateItem @ DynamoTaskStore.transition #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.transition #1",
        "sqs.DeleteMessageBatch @ event source #0",
        "sqs.ReceiveMessage @ event source #0",
    ],
    "restart": [
        "dynamodb.TransactWriteItems @ DynamoTaskStore.renew_chunks #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #1",
        "dynamodb.Query @ DynamoTaskStore.get_task #0",
        "dynamodb.UpdateItem @ state machine #0",
        "dynamodb.UpdateItem @ state machine #1",
        "sqs.SendMessage @ state machine #0",
        "sqs.SendMessage @ state machine #1",
        "stepfunctions.DescribeExecution @ StepFunctionsTransitions.restart #0",
        "stepfunctions.StartExecution @ StepFunctionsTransitions.restart #0",
    ],
    "cancel": [
        "dynamodb.GetItem @ DynamoTaskStore.get_task #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #1",
        "dynamodb.Query @ DynamoTaskStore.get_task #0",
        "dynamodb.UpdateItem @ state machine #0",
        "stepfunctions.DescribeExecution @ StepFunctionsTransitions.cancel #0",
        "stepfunctions.StartExecution @ StepFunctionsTransitions.cancel #0",
    ],
    "reconcile": [
        "dynamodb.GetItem @ DynamoTaskStore.reconcile_cursor #0",
        "dynamodb.GetItem @ DynamoTaskStore.reconcile_cursor #1",
        "dynamodb.GetItem @ DynamoTaskStore.reconcile_cursor #2",
        "dynamodb.GetItem @ DynamoTaskStore.reconcile_cursor #3",
        "dynamodb.PutItem @ DynamoTaskStore.save_reconcile_cursor #0",
        "dynamodb.PutItem @ DynamoTaskStore.save_reconcile_cursor #1",
        "dynamodb.PutItem @ DynamoTaskStore.save_reconcile_cursor #2",
        "dynamodb.PutItem @ DynamoTaskStore.save_reconcile_cursor #3",
        "dynamodb.Query @ DynamoTaskStore.recorded_chunks #0",
        "dynamodb.Query @ DynamoTaskStore.stored_chunks #0",
        "dynamodb.Query @ DynamoTaskStore.stored_chunks #1",
        "dynamodb.Query @ DynamoTaskStore.unfinished_tasks #0",
        "dynamodb.Query @ DynamoTaskStore.unfinished_tasks #1",
        "dynamodb.Query @ DynamoTaskStore.unfinished_tasks #2",
        "dynamodb.Query @ DynamoTaskStore.unfinished_tasks #3",
        "dynamodb.UpdateItem @ DynamoTaskStore.mark_reconciled #0",
        "sqs.SendMessageBatch @ SqsWorkQueue.send_bodies #0",
    ],
    "completion event": [
        "dynamodbstreams.DescribeStream @ event source #0",
        "dynamodbstreams.GetRecords @ event source #0",
        "dynamodbstreams.GetShardIterator @ event source #0",
        "events.PutEvents @ EventBridgeCompletionEvents.publish #0",
    ],
    "import, create": [
        "dynamodb.PutItem @ DynamoTaskStore.insert_task #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.mark_dispatched #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.next_write_version #0",
        "sqs.SendMessageBatch @ SqsWorkQueue.send_bodies #0",
    ],
    "import, listing": [
        "dynamodb.BatchWriteItem @ DynamoTaskStore.append_read #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #0",
        "dynamodb.TransactWriteItems @ DynamoTaskStore.save_source_objects #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.append_read #0",
        "s3.GetObject @ S3ObjectStore.open #0",
        "s3.ListObjectsV2 @ S3ObjectStore.list_objects #0",
        "sqs.DeleteMessageBatch @ event source #0",
        "sqs.ReceiveMessage @ event source #0",
        "sqs.SendMessageBatch @ SqsWorkQueue.send_bodies #0",
        "sqs.SendMessageBatch @ SqsWorkQueue.send_bodies #1",
    ],
    "import, read": [
        "dynamodb.BatchWriteItem @ DynamoTaskStore.append_read #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #0",
        "dynamodb.GetItem @ DynamoTaskStore.get_task #1",
        "dynamodb.GetItem @ DynamoTaskStore.source_objects #0",
        "dynamodb.UpdateItem @ DynamoTaskStore.append_read #0",
        "s3.GetObject @ S3ObjectStore.open #0",
        "sqs.DeleteMessageBatch @ event source #0",
        "sqs.ReceiveMessage @ event source #0",
        "sqs.SendMessageBatch @ SqsWorkQueue.send_bodies #0",
    ],
}
SCENARIOS = [
    pytest.param(path, site, mode, id=f"{path}: {site} [{mode}]")
    for path, sites in SITES.items()
    for site in sites
    for mode in site_modes(site)
]


def test_every_call_site_has_its_scenarios(harness: Harness) -> None:
    for path in PATHS:
        recorded = recorded_sites(harness, path)
        assert recorded == set(SITES[path]), (
            f"{path}: calls without scenarios {sorted(recorded - set(SITES[path]))}; "
            f"listed but no longer made {sorted(set(SITES[path]) - recorded)}"
        )


@pytest.mark.parametrize(("path", "site", "mode"), SCENARIOS)
def test_one_failing_call_leaves_no_task_behind(harness: Harness, path: str, site: str, mode: str) -> None:
    plan = FaultPlan(target=parse_site(site), mode=mode)
    created, expect = PATHS[path](harness, f"s{harness.scenarios:03d}", plan)
    assert plan.fired is not None, f"{site} was never called on {path}"
    harness.check(created, expect)


def test_the_crash_points_covered(harness: Harness) -> None:
    """Prints what the scenarios above covered (run last: pytest keeps the file's order)."""
    sites = sum(len(s) for s in SITES.values())
    print(
        f"\ncrash points: {len(PATHS)} paths, {sites} call sites, {len(SCENARIOS)} scenarios, "
        f"{harness.scenarios} checked"
    )
    assert harness.scenarios >= len(SCENARIOS)
