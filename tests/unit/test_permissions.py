"""How the local stack evaluates a role: IAM wildcards, explicit deny, per-request resources."""

from __future__ import annotations

import contextvars
import json
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.permissions import Role, Statement, acting_as, authorization_requests, guard_states, install_hook

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/tasks"
QUEUE_URL = "http://127.0.0.1:5000/123456789012/work"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:work"
# A client whose calls fail fast if they get past the check: nothing listens on port 9.
NOWHERE = Config(retries={"total_max_attempts": 1}, connect_timeout=1)


def role(*statements: dict[str, object]) -> Role:
    return Role("TestRole", tuple(Statement.parse(s) for s in statements))


def allow(action: str | list[str], resource: str | list[str] = "*") -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def test_action_wildcards_match_case_insensitively() -> None:
    r = role(allow("dynamodb:*", TABLE), allow("es:ESHttp*"), allow("sqs:SendMessage?", QUEUE))
    assert r.decide("dynamodb:Query", TABLE) == "allowed"
    assert r.decide("DynamoDB:query", TABLE) == "allowed"
    assert r.decide("es:ESHttpPost", "arn:aws:es:us-east-1:123456789012:domain/d/x") == "allowed"
    assert r.decide("sqs:SendMessage", QUEUE) == "no allow"  # `?` is exactly one character
    assert r.decide("s3:GetObject", "*") == "no allow"


def test_resources_match_with_wildcards_and_case() -> None:
    r = role(allow("dynamodb:Query", [TABLE, f"{TABLE}/index/*"]))
    assert r.decide("dynamodb:Query", f"{TABLE}/index/ByCreated") == "allowed"
    assert r.decide("dynamodb:Query", TABLE) == "allowed"
    assert r.decide("dynamodb:Query", f"{TABLE}-other") == "no allow"
    assert r.decide("dynamodb:Query", TABLE.upper()) == "no allow"
    assert role(allow("dynamodb:Query", TABLE)).decide("dynamodb:Query", f"{TABLE}/index/ByCreated") == "no allow"


def test_an_explicit_deny_wins_over_any_allow() -> None:
    r = role(allow("dynamodb:*", "*"), {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE})
    assert r.decide("dynamodb:PutItem", TABLE) == "allowed"
    assert r.decide("dynamodb:DeleteItem", TABLE) == "explicit deny"
    message = r.denial("Fn", [("dynamodb:DeleteItem", TABLE)])
    assert message is not None
    assert message.endswith("with an explicit deny in an identity-based policy")


def test_the_denial_names_role_session_action_and_resource_as_aws_does() -> None:
    message = role(allow("dynamodb:GetItem", TABLE)).denial("TaskReadFunction", [("dynamodb:Query", TABLE)])
    assert message == (
        "User: arn:aws:sts::123456789012:assumed-role/TestRole/TaskReadFunction is not authorized to perform: "
        f"dynamodb:Query on resource: {TABLE} because no identity-based policy allows the dynamodb:Query action"
    )


def test_unsupported_statement_keys_fail_loudly() -> None:
    with pytest.raises(ValueError, match="Condition"):
        Statement.parse({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}})


def test_a_transaction_is_authorized_as_each_inner_action_on_each_table() -> None:
    params = {
        "TransactItems": [
            {"Put": {"TableName": "tasks", "Item": {}}},
            {"Update": {"TableName": "tasks", "Key": {}}},
            {"ConditionCheck": {"TableName": "other", "Key": {}}},
            {"Delete": {"TableName": "tasks", "Key": {}}},
        ]
    }
    assert authorization_requests("dynamodb", "TransactWriteItems", params, "us-east-1") == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:ConditionCheckItem", "arn:aws:dynamodb:us-east-1:123456789012:table/other"),
        ("dynamodb:DeleteItem", TABLE),
    ]
    gets = {"TransactItems": [{"Get": {"TableName": "tasks", "Key": {}}}]}
    assert authorization_requests("dynamodb", "TransactGetItems", gets, "us-east-1") == [("dynamodb:GetItem", TABLE)]
    r = role(allow(["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], TABLE))
    message = r.denial("Fn", authorization_requests("dynamodb", "TransactWriteItems", params, "us-east-1"))
    assert message is not None
    assert "dynamodb:ConditionCheckItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/other" in message


def test_batches_queries_on_indexes_and_queues_name_their_resources() -> None:
    batch = {"RequestItems": {"tasks": [{"PutRequest": {"Item": {}}}]}}
    assert authorization_requests("dynamodb", "BatchWriteItem", batch, "us-east-1") == [
        ("dynamodb:BatchWriteItem", TABLE)
    ]
    query = {"TableName": "tasks", "IndexName": "ByCreated"}
    assert authorization_requests("dynamodb", "Query", query, "us-east-1") == [
        ("dynamodb:Query", f"{TABLE}/index/ByCreated")
    ]
    for operation, action in [
        ("SendMessageBatch", "sqs:SendMessage"),
        ("DeleteMessageBatch", "sqs:DeleteMessage"),
        ("ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibility"),
        ("ReceiveMessage", "sqs:ReceiveMessage"),
    ]:
        assert authorization_requests("sqs", operation, {"QueueUrl": QUEUE_URL}, "us-east-1") == [(action, QUEUE)]
    execution = "arn:aws:states:us-east-1:123456789012:execution:sm:1"
    assert authorization_requests("states", "DescribeExecution", {"executionArn": execution}, "us-east-1") == [
        ("states:DescribeExecution", execution)
    ]
    assert authorization_requests("bedrock", "InvokeModel", {"modelId": "cohere.embed-english-v3"}, "us-east-1") == [
        ("bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-english-v3")
    ]
    assert authorization_requests("dynamodb", "ListTables", {}, "us-east-1") == [("dynamodb:ListTables", "*")]


def test_the_hook_turns_a_denied_call_into_the_client_error_aws_answers() -> None:
    install_hook()
    sqs = boto3.Session(region_name="us-east-1").client(
        "sqs", endpoint_url="http://127.0.0.1:9", aws_access_key_id="x", aws_secret_access_key="x", config=NOWHERE
    )
    with acting_as(role(allow("sqs:ReceiveMessage", QUEUE)), "Fn"), pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=QUEUE_URL, MessageBody="{}")
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert error["Message"].startswith("User: arn:aws:sts::123456789012:assumed-role/TestRole/Fn is not authorized")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_sessions_created_after_the_hook_is_installed_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    install_hook()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    boto3.setup_default_session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sqs = boto3.client("sqs", endpoint_url="http://127.0.0.1:9", config=NOWHERE)
    with acting_as(role(allow("sqs:SendMessage", QUEUE)), "Fn"), pytest.raises(ClientError) as raised:
        sqs.delete_message_batch(QueueUrl=QUEUE_URL, Entries=[{"Id": "1", "ReceiptHandle": "r"}])
    assert "not authorized to perform: sqs:DeleteMessage on resource: " + QUEUE in str(raised.value)


def test_work_in_a_copied_context_is_checked_and_outside_any_function_is_not() -> None:
    install_hook()
    dynamodb = boto3.Session(region_name="us-east-1").client(
        "dynamodb", endpoint_url="http://127.0.0.1:9", aws_access_key_id="x", aws_secret_access_key="x", config=NOWHERE
    )

    def get() -> str:
        try:
            dynamodb.get_item(TableName="tasks", Key={"pk": {"S": "a"}})
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        except Exception as exc:  # reached the (absent) endpoint: not checked
            return type(exc).__name__
        return "ok"

    with acting_as(role(allow("dynamodb:Query", TABLE)), "Fn"):
        context = contextvars.copy_context()
        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(lambda _: context.copy().run(get), range(2))) == ["AccessDeniedException"] * 2
    assert get() == "EndpointConnectionError"


def test_a_task_state_the_role_does_not_allow_becomes_the_failure_aws_raises() -> None:
    states = {
        "Update": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:updateItem",
            "Parameters": {"TableName": "tasks", "Key": {}},
            "Retry": [{"ErrorEquals": ["States.ALL"]}],
            "Next": "Queue",
        },
        "Queue": {
            "Type": "Map",
            "Iterator": {
                "StartAt": "Send",
                "States": {
                    "Send": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::sqs:sendMessage",
                        "Parameters": {"QueueUrl": QUEUE_URL, "MessageBody": {}},
                        "End": True,
                    }
                },
            },
            "End": True,
        },
    }
    guard_states(states, role(allow("dynamodb:UpdateItem", TABLE)), "Machine")
    assert states["Update"]["Type"] == "Task"
    send = json.loads(json.dumps(states["Queue"]["Iterator"]["States"]["Send"]))  # type: ignore[index]
    assert send["Type"] == "Fail"
    assert send["Error"] == "SQS.AccessDeniedException"
    assert "assumed-role/TestRole/Machine is not authorized to perform: sqs:SendMessage" in send["Cause"]
    assert QUEUE in send["Cause"]
