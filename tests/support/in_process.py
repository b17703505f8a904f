"""The stack in this process: template resources on moto (mock_aws), handlers called directly.

Built from the same devstack pieces as `make run` (template reader, roles, resource creation, proxy
events, SQS pollers), so the integration tier exercises what the local stack runs.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from devstack.api_gateway import integrate, proxy_event
from devstack.event_sources import SqsPoller, StreamPoller, poller_for, pollers_for
from devstack.lambda_runtime import in_process_functions
from devstack.permissions import Permissions
from devstack.resources import create_import_buckets, create_resources
from devstack.template import (
    LOCAL_PSEUDO_PARAMETERS,
    SqsEventSource,
    Template,
    load_template,
    local_import_parameters,
    local_opensearch_parameters,
)
from tests.support.event_tap import EventTap


class InProcessStack:
    def __init__(self, opensearch_url: str, document: dict[str, Any] | None = None) -> None:
        """`document`: template.yaml as loaded, or a variant of it (e.g. a role with an action less)."""
        self.template = Template(
            document if document is not None else load_template(),
            parameters={**local_opensearch_parameters(opensearch_url), **local_import_parameters()},
            pseudo=LOCAL_PSEUDO_PARAMETERS,
        )
        self.permissions = Permissions(self.template)  # each function's calls checked against its role
        self._session = boto3.Session()  # kept: a session's first client of a service costs 0.2 s
        create_resources(self.template, self._session, permissions=self.permissions)
        self.import_buckets = create_import_buckets(self.template, self._session)
        self.s3 = self._session.client("s3")
        self.environment = self.template.shared_environment()
        self.functions = {fn.spec.logical_id: fn for fn in in_process_functions(self.template, self.permissions)}
        self.routes = {route: fn for fn in self.functions.values() for route in fn.spec.routes}
        self.sqs = boto3.client("sqs")
        self.sfn = boto3.client("stepfunctions")
        self.events = boto3.client("events")
        self.pollers = pollers_for(
            self.template, self.functions.values(), self.sqs, boto3.client("dynamodbstreams"), retry_after=0
        )

    def event_tap(self) -> EventTap:
        """A consumer of the completion events on the bus the template names (the default bus)."""
        return EventTap(self.events, self.sqs, self.template.values["EventBusName"])

    def recreate_table(self) -> None:
        """The task and chunk tables made anew, empty, the task table with a new stream that its
        consumer's role and poller follow. moto copies the table with every stream record it
        ever made on each transaction, so a long-lived stack (the crash points) starts each
        scenario from here."""
        client = self._session.client("dynamodb")
        for logical_id in ("TaskTable", "ChunkTable"):
            name = self.template.physical[logical_id]["Ref"]
            client.update_table(TableName=name, DeletionProtectionEnabled=False)
            client.delete_table(TableName=name)
        create_resources(self.template, self._session, only={"AWS::DynamoDB::Table"}, permissions=self.permissions)
        for poller in self.pollers:
            if isinstance(poller, StreamPoller):
                poller.function.role = self.permissions.role(poller.function.spec.logical_id)
                poller.follow(self.template.physical["TaskTable"]["StreamArn"])

    def queue_url(self, logical_id: str) -> str:
        return self.template.physical[logical_id]["QueueUrl"]

    @property
    def table_name(self) -> str:
        return self.template.physical["TaskTable"]["Ref"]

    @property
    def chunk_table_name(self) -> str:
        return self.template.physical["ChunkTable"]["Ref"]

    def invoke(
        self,
        method: str,
        path: str,
        query: str = "",
        body: Any = None,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """What API Gateway would do with the request: route it, invoke the function; the
        answer (statusCode, headers, body as text): the function's, or API Gateway's own where Lambda
        refuses or cuts the invocation."""
        text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
        sent = {"Content-Type": "application/json"} if headers is None else headers
        event = proxy_event(method, path, query, sent, text, "dev")
        status, answer_headers, answer = integrate(self.routes[(method, path)], event)
        return {"statusCode": status, "headers": answer_headers, "body": answer}

    def request(
        self,
        method: str,
        path: str,
        query: str = "",
        body: Any = None,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """The request through `invoke`, its body decoded."""
        result = self.invoke(method, path, query, body, raw_body, headers)
        return int(result["statusCode"]), json.loads(result["body"])

    def run_upsertion(self, model: str, task_id: str, texts: list[str]) -> dict[str, Any]:
        """Create an upsertion task of one item per text, deliver everything, return the task."""
        items = [{"object_id": f"{task_id}-{i}", "payload": {"text": t}} for i, t in enumerate(texts)]
        body = {"embedding_model_id": model, "task_id": task_id, "items": items}
        status, created = self.request("POST", "/internal/upsertion-tasks/run", body=body)
        assert status == 202, created
        self.drain()
        status, task = self.request("GET", "/internal/upsertion-tasks/info", f"task_id={task_id}")
        assert status == 200, task
        return task

    def drain(self, max_batches: int = 2000, streams: bool = True) -> int:
        """Deliver queued messages (retries and dead letters included) and the table's stream
        records until every queue is empty and the stream read to its end; returns the queue
        messages delivered. `streams=False` leaves the stream unread (its records wait)."""
        pollers = [p for p in self.pollers if streams or isinstance(p, SqsPoller)]
        delivered = 0
        for _ in range(max_batches):
            read = {poller: poller.poll_once() for poller in pollers}
            if not any(read.values()):
                return delivered
            delivered += sum(n for poller, n in read.items() if isinstance(poller, SqsPoller))
        raise AssertionError(f"queues still not empty after {max_batches} batches")

    def deliver_to_worker(self, max_messages: int) -> int:
        """One worker invocation with at most `max_messages` queued messages (for mid-flight tests)."""
        worker = self.functions["TaskWorkerFunction"]
        (source,) = worker.spec.sqs_sources
        narrow = SqsEventSource(source.queue_logical_id, max_messages, source.report_batch_item_failures)
        return poller_for(self.template, worker, narrow, self.sqs, retry_after=0).poll_once()

    def executions(self, state_machine_logical_id: str) -> list[dict[str, Any]]:
        """Executions of a template state machine, oldest first, each with its history events."""
        arn = self.template.physical[state_machine_logical_id]["Arn"]
        listed = self.sfn.list_executions(stateMachineArn=arn)["executions"]
        out = []
        for execution in sorted(listed, key=lambda e: e["startDate"]):
            events = self.sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
            out.append({**execution, "events": events})
        return out

    def send_chunk_message(self, body: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url("WorkQueue"), MessageBody=json.dumps(body))
