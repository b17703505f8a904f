"""How the transition runner reads a Step Functions execution's end (Stubber, no emulator)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from vector_tasks.adapters.state_machines import StepFunctionsTransitions
from vector_tasks.domain.errors import TransitionStillRunning
from vector_tasks.domain.model import Task, TaskKind, TaskStatus

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:cancel"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:cancel:x"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TASK = Task(TaskKind.UPSERTION, "t", "m", TaskStatus.RUNNING, NOW, NOW, 1, 1, 1, "f")


def runner(*described: dict[str, Any], timeout: float = 5.0) -> tuple[StepFunctionsTransitions, Stubber]:
    client = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response(
        "start_execution",
        {"executionArn": EXECUTION, "startDate": NOW},
        {"stateMachineArn": ARN, "name": ANY, "input": ANY},
    )
    for answer in described:
        base = {"executionArn": EXECUTION, "stateMachineArn": ARN, "startDate": NOW}
        stub.add_response("describe_execution", {**base, **answer}, {"executionArn": EXECUTION})
    return StepFunctionsTransitions("unused", ARN, client=client, timeout=timeout, sleep=lambda _: None), stub


def test_a_succeeded_execution_is_a_transition_made() -> None:
    transitions, stub = runner({"status": "RUNNING"}, {"status": "SUCCEEDED"})
    with stub:
        assert transitions.cancel(TASK, NOW) is True


def test_a_refused_execution_is_a_transition_refused() -> None:
    """A lost race ends the execution successfully (so ExecutionsFailed alarms on real failures only)."""
    transitions, stub = runner({"status": "SUCCEEDED", "output": '{"refused": true, "cause": "no longer running"}'})
    with stub:
        assert transitions.cancel(TASK, NOW) is False


def test_a_failed_execution_is_an_error_whatever_its_error_name() -> None:
    transitions, stub = runner({"status": "FAILED", "error": "TransitionRefused", "cause": "an older definition"})
    with stub, pytest.raises(RuntimeError, match="TransitionRefused"):
        transitions.cancel(TASK, NOW)


def test_the_cancel_execution_carries_the_canceled_tasks_expiry() -> None:
    client = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    expected_input = (
        '{"pk": "upsertion#t", "attempt": 1, "status_pk": "upsertion#canceled", "now": "2026-01-01T00:00:00+00:00", '
        f'"expires_at": {int(NOW.timestamp()) + 365 * 86400}}}'
    )
    stub.add_response(
        "start_execution",
        {"executionArn": EXECUTION, "startDate": NOW},
        {"stateMachineArn": ARN, "name": ANY, "input": expected_input},
    )
    stub.add_response(
        "describe_execution",
        {"executionArn": EXECUTION, "stateMachineArn": ARN, "startDate": NOW, "status": "SUCCEEDED"},
        {"executionArn": EXECUTION},
    )
    transitions = StepFunctionsTransitions("unused", ARN, client=client, sleep=lambda _: None)
    with stub:
        assert transitions.cancel(TASK, NOW) is True


def test_any_other_failure_is_an_error_not_a_refusal() -> None:
    transitions, stub = runner({"status": "FAILED", "error": "States.Runtime", "cause": "bad path"})
    with stub, pytest.raises(RuntimeError, match=r"States\.Runtime"):
        transitions.cancel(TASK, NOW)


def test_an_execution_still_running_past_the_bound_is_a_503_domain_error() -> None:
    transitions, stub = runner(*({"status": "RUNNING"} for _ in range(3)), timeout=0.0)
    with stub, pytest.raises(TransitionStillRunning, match="still being applied"):
        transitions.cancel(TASK, NOW)
