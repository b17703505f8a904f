"""Each function's AWS calls are checked against its role in template.yaml, as on AWS: a role
with one action less makes the route fail, and a state machine whose role lacks an integration's
action fails its execution."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.permissions import Role
from devstack.stack import DevStack, DevStackConfig
from devstack.template import LOCAL_ACCOUNT, LOCAL_IMPORT_BUCKET
from tests.support.in_process import InProcessStack
from vector_tasks import wiring
from vector_tasks.adapters.embedders.bedrock import TitanV2Embedder
from vector_tasks.adapters.retry import RetryPolicy
from vector_tasks.domain.registry import EmbeddingModelSpec

MODEL = "local-hash-384"
Edit = Callable[[dict[str, Any]], None]


def statement_lists(document: dict[str, Any], function: str) -> list[list[dict[str, Any]]]:
    """The inline statement lists `function` runs with (to edit in place): its SAM `Policies`,
    or those of the role it names (`Role: !GetAtt SomeRole.Arn`)."""
    properties = document["Resources"][function]["Properties"]
    if "Role" in properties:
        role = document["Resources"][properties["Role"]["Fn::GetAtt"][0]]["Properties"]
        return [policy["PolicyDocument"]["Statement"] for policy in role.get("Policies", [])]
    return [policy["Statement"] for policy in properties.get("Policies", []) if "Statement" in policy]


def without_action(function: str, action: str) -> Edit:
    """template.yaml with `action` taken out of every inline statement of `function`'s policies."""

    def edit(document: dict[str, Any]) -> None:
        found = False
        for statements in statement_lists(document, function):
            for statement in statements:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if action in actions:
                    statement["Action"] = [a for a in actions if a != action]
                    found = True
        assert found, f"{function} has no {action} to remove"

    return edit


def without_policy_template(resource: str, name: str) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        policies = document["Resources"][resource]["Properties"]["Policies"]
        kept = [p for p in policies if name not in p]
        assert len(kept) < len(policies), f"{resource} has no {name}"
        document["Resources"][resource]["Properties"]["Policies"] = kept

    return edit


def denials(caplog: pytest.LogCaptureFixture) -> str:
    """What the local stack logged of the calls it denied (the handlers log the error too)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "devstack.permissions")


def create(stack: InProcessStack, task_id: str, texts: list[str]) -> tuple[int, dict[str, Any]]:
    items = [{"object_id": f"{task_id}-{i}", "payload": {"text": t}} for i, t in enumerate(texts)]
    body = {"embedding_model_id": MODEL, "task_id": task_id, "items": items}
    return stack.request("POST", "/internal/upsertion-tasks/run", body=body)


@pytest.mark.parametrize("template_document", [without_action("TaskReadFunction", "dynamodb:Query")], indirect=True)
def test_a_read_role_without_query_makes_listing_answer_500_with_access_denied_in_the_log(
    stack: InProcessStack, caplog: pytest.LogCaptureFixture
) -> None:
    assert create(stack, "perm-1", ["one"])[0] == 202
    status, body = stack.request("GET", "/internal/upsertion-tasks/list")
    assert status == 500
    assert "AccessDenied" not in str(body)  # the answer hides internals; the log says why
    log = denials(caplog)
    assert (
        "assumed-role/TaskReadFunctionRole/TaskReadFunction is not authorized to perform: dynamodb:Query on resource: "
        f"arn:aws:dynamodb:us-east-1:123456789012:table/{stack.table_name}/index/ByCreated" in log
    )


def test_replaying_a_create_reads_the_stored_task_with_its_failures(stack: InProcessStack) -> None:
    """Submit's role allows the Query that loads the failures of the task it answers with."""
    assert create(stack, "replay", ["fine", ""])[0] == 202
    stack.drain()
    status, task = create(stack, "replay", ["fine", ""])
    assert status == 200, task
    assert task["status"] in ("done", "failed")
    assert task["progress"]["failed"] == 1


@pytest.mark.parametrize("template_document", [without_action("TaskSubmitFunction", "dynamodb:Query")], indirect=True)
def test_without_query_the_replay_of_a_create_is_500_as_it_was_on_aws(stack: InProcessStack) -> None:
    assert create(stack, "replay", ["fine"])[0] == 202
    assert create(stack, "replay", ["fine"])[0] == 500


@pytest.mark.parametrize(
    "template_document", [without_policy_template("RestartTaskStateMachine", "SQSSendMessagePolicy")], indirect=True
)
def test_a_state_machine_whose_role_cannot_send_fails_its_sends_as_on_aws(stack: InProcessStack) -> None:
    """The restart itself is applied (the task is pending as attempt 2) and answered 200; the
    sends fail with AWS's error, and the execution says its dispatch is incomplete (the
    reconciler sends the chunks once the task stalls)."""
    assert create(stack, "sm", ["one"])[0] == 202
    stack.drain()
    status, task = stack.request("PUT", "/internal/upsertion-tasks/restart", "task_id=sm")
    assert (status, task["status"], task["attempt"]) == (200, "pending", 2)
    (execution,) = stack.executions("RestartTaskStateMachine")
    assert execution["status"] == "SUCCEEDED"
    (succeeded,) = [e for e in execution["events"] if e["type"] == "ExecutionSucceeded"]
    output = json.loads(succeeded["executionSucceededEventDetails"]["output"])
    assert output == {"dispatch": "incomplete", "error": "SQS.AccessDeniedException"}
    (map_exited,) = [e for e in execution["events"] if e["type"] == "MapStateExited"]
    cause = json.loads(map_exited["stateExitedEventDetails"]["output"])["dispatch_error"]["Cause"]
    assert "assumed-role/RestartTaskStateMachineRole/RestartTaskStateMachine is not authorized to perform: " in cause
    assert "sqs:SendMessage on resource: arn:aws:sqs:us-east-1:123456789012:" in cause


@pytest.mark.parametrize("template_document", [without_action("TaskWorkerFunction", "dynamodb:PutItem")], indirect=True)
def test_a_transaction_needs_each_inner_action_on_the_workers_role(
    stack: InProcessStack, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker records a chunk with TransactWriteItems (a Put and an Update): without PutItem
    no delivery can record it, and the chunk ends dead-lettered."""
    assert create(stack, "tx", ["one"])[0] == 202
    stack.drain()
    _, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=tx")
    assert task["progress"]["succeeded"] == 0
    assert "TaskWorkerFunction is not authorized to perform: dynamodb:PutItem" in denials(caplog)


def _titan_stack_edit(document: dict[str, Any]) -> None:
    for statements in statement_lists(document, "TaskWorkerFunction"):
        statements[:] = [s for s in statements if s["Action"] != "bedrock:InvokeModel"]


@pytest.mark.parametrize("template_document", [_titan_stack_edit], indirect=True)
def test_calls_a_handler_makes_from_its_threads_are_checked_too(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Titan's embedder calls Bedrock from a thread pool: the calls still carry the worker's role."""
    # Nothing listens there: a call that got past the check would fail with a connection error.
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )

    def embedder_for(spec: EmbeddingModelSpec) -> TitanV2Embedder:
        return TitanV2Embedder(spec.model_copy(update={"max_concurrency": 2}), lambda: client, RetryPolicy(2, 0, 0))

    monkeypatch.setattr(wiring, "embedder_for", embedder_for)
    items = [{"object_id": f"t-{i}", "payload": {"text": f"text {i}"}} for i in range(2)]
    body = {"embedding_model_id": "titan-v2-1024", "task_id": "titan", "items": items}
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    stack.drain()
    _, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=titan")
    assert task["status"] == "failed"
    assert "AccessDeniedException" in task["error"]
    assert "allow bedrock:InvokeModel on it in the worker's role" in task["error"]
    # AWS's message names the role's ARN and the account: the worker's log has it, the task not.
    assert "arn:" not in task["error"] and LOCAL_ACCOUNT not in task["error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_local_stacks_pollers_receive_with_the_functions_role() -> None:
    """`make run`'s stack (moto server): the SQS event source acts with the function's role."""
    config = DevStackConfig(
        port=_free_port(), opensearch_port=_free_port(), moto_port=_free_port(), start_pollers=False
    )
    stack = DevStack(config).start()
    try:
        poller = next(p for p in stack.pollers if p.function.spec.logical_id == "DeadLetterFunction")
        role = poller.function.role
        assert role is not None
        assert poller.poll_once() == 0  # allowed: AWSLambdaSQSQueueExecutionRole, which SAM attaches
        poller.function.role = Role(
            role.name, tuple(s for s in role.statements if "sqs:ReceiveMessage" not in s.actions)
        )
        with pytest.raises(ClientError) as raised:
            poller.poll_once()
        assert raised.value.response["Error"]["Code"] == "AccessDenied"
        assert "DeadLetterFunction is not authorized to perform: sqs:ReceiveMessage" in str(raised.value)
    finally:
        stack.stop()


def _splitter_without_object_reads(document: dict[str, Any]) -> None:
    role = document["Resources"]["ImportSplitterRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    kept = [s for s in statements if not ("Fn::If" in s and s["Fn::If"][1]["Action"] == "s3:GetObject")]
    assert len(kept) == len(statements) - 1, "the splitter has no s3:GetObject statement"
    statements[:] = kept


@pytest.mark.parametrize("template_document", [_splitter_without_object_reads], indirect=True)
def test_an_import_the_splitter_may_not_read_fails_with_access_denied(
    stack: InProcessStack, caplog: pytest.LogCaptureFixture
) -> None:
    """As on AWS, where the role names the import buckets only: a read it may not make is S3's
    AccessDenied, and the task fails saying so rather than waiting for a read that never works."""
    stack.s3.put_object(Bucket=LOCAL_IMPORT_BUCKET, Key="denied.jsonl", Body=b'{"object_id": "a"}\n')
    body = {
        "embedding_model_id": "local-hash-384",
        "task_id": "denied",
        "source": {"s3_uri": f"s3://{LOCAL_IMPORT_BUCKET}/denied.jsonl"},
    }
    assert stack.request("POST", "/internal/upsertion-tasks/run", body=body)[0] == 202
    stack.drain()
    _, task = stack.request("GET", "/internal/upsertion-tasks/info", "task_id=denied")
    assert task["status"] == "failed"
    assert "AccessDenied" in task["error"] and "denied.jsonl" in task["error"]
    assert "ImportSplitterFunction is not authorized to perform: s3:GetObject" in denials(caplog)
