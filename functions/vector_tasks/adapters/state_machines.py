"""Lifecycle transitions as Step Functions executions (statemachines/*.asl.json).

A Standard workflow is started and waited for with DescribeExecution, bounded by `timeout`,
because the caller answers with the task after the transition. (Express workflows'
StartSyncExecution would avoid the polling on AWS, but moto cannot run it; see README.)
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3

from vector_tasks.adapters.task_codec import Retention
from vector_tasks.adapters.task_keys import status_pk, task_pk, version_counter_pk
from vector_tasks.domain.errors import TransitionStillRunning
from vector_tasks.domain.model import RestartPlan, Task, TaskStatus
from vector_tasks.domain.sources import FIRST_POSITION

log = logging.getLogger(__name__)


class StepFunctionsTransitions:
    def __init__(
        self,
        restart_arn: str,
        cancel_arn: str,
        client: Any = None,
        timeout: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        retention: Retention | None = None,
    ) -> None:
        """`retention`: the canceled task's expiry, which the cancel machine writes with it."""
        self._retention = retention or Retention()
        self._restart_arn = restart_arn
        self._cancel_arn = cancel_arn
        self._client_instance = client
        self._timeout = timeout
        self._sleep = sleep

    @property
    def _client(self) -> Any:
        if self._client_instance is None:
            self._client_instance = boto3.client("stepfunctions")
        return self._client_instance

    def cancel(self, task: Task, now: datetime) -> bool:
        return self._run(
            self._cancel_arn,
            "cancel",
            task,
            {
                "pk": task_pk(task.kind, task.task_id),
                "attempt": task.attempt,
                "status_pk": status_pk(task.kind, TaskStatus.CANCELED),
                "now": now.isoformat(),
                "expires_at": self._retention.task_expires_at(now),
            },
        )

    def restart(self, task: Task, plan: RestartPlan, now: datetime) -> bool:
        return self._run(
            self._restart_arn,
            "restart",
            task,
            {
                "pk": task_pk(task.kind, task.task_id),
                "kind": task.kind.value,
                "task_id": task.task_id,
                "version_pk": version_counter_pk(task.embedding_model_id),
                "attempt": task.attempt,
                "next_attempt": plan.next_attempt,
                "chunk_source": plan.chunk_source,
                "item_count": plan.item_count,
                "chunk_count": plan.chunk_count,
                "last_chunk": plan.chunk_count - 1,
                "status_pk": status_pk(task.kind, TaskStatus.PENDING),
                "now": now.isoformat(),
                "reread": plan.reread,
                "first_position": FIRST_POSITION,
            },
        )

    def _run(self, arn: str, action: str, task: Task, execution_input: dict[str, Any]) -> bool:
        """True when the execution applied the transition, False when it refused it (a lost
        race: the execution succeeds with {"refused": true})."""
        execution = self._client.start_execution(
            stateMachineArn=arn,
            name=f"{task.kind.value}-{action}-{uuid.uuid4().hex}",
            input=json.dumps(execution_input),
        )["executionArn"]
        deadline = time.monotonic() + self._timeout
        delay = 0.02
        while True:
            described = self._client.describe_execution(executionArn=execution)
            status = described["status"]
            if status == "SUCCEEDED":
                output = json.loads(described.get("output") or "{}")
                if isinstance(output, dict) and output.get("refused") is True:
                    return False
                if isinstance(output, dict) and output.get("dispatch") == "incomplete":
                    # Applied, but some messages did not go out: the reconciler sends them.
                    log.warning("%s of task %s: dispatch incomplete (%s)", action, task.task_id, output.get("error"))
                return True
            if status != "RUNNING":
                raise RuntimeError(
                    f"{action} execution {execution} ended {status}: {described.get('error')} {described.get('cause')}"
                )
            if time.monotonic() >= deadline:
                raise TransitionStillRunning(action, task.task_id)
            self._sleep(delay)
            delay = min(delay * 2, 0.5)
