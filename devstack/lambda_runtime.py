"""Running a template function's handler in this process, one invocation at a time.

One lock per function stands in for one warm container: Powertools resolvers and batch
processors keep per-invocation state on module-level objects, as Lambda allows. The handler's
AWS calls are checked against the function's role (devstack.permissions). Lambda's own limits
hold: an event or a response over 6 MB is refused, and an invocation that outlasts its timeout
is abandoned (the container stays busy until the handler returns, as a timed-out container is
not reused before it is reset).
"""

from __future__ import annotations

import contextvars
import importlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from devstack.permissions import Permissions, Role, acting_as
from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION, FunctionSpec, Template

# Lambda's limit for a synchronous invocation's request and response payloads.
PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024


class InvocationError(Exception):
    """The invocation failed in the Lambda service, not in the handler."""


class EventTooLarge(InvocationError):
    pass


class ResponseTooLarge(InvocationError):
    pass


class FunctionTimedOut(InvocationError):
    pass


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def payload_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


class LocalFunction:
    def __init__(self, spec: FunctionSpec, region: str, account: str, role: Role | None) -> None:
        """`role`: what the function's AWS calls may do; None leaves them unchecked."""
        self.spec = spec
        self.role = role
        self._arn = f"arn:aws:lambda:{region}:{account}:function:{spec.logical_id}"
        self._lock = threading.Lock()
        self._handler: Any = None

    def _load(self) -> Any:
        if self._handler is None:
            module_name, _, attribute = self.spec.handler.rpartition(".")
            self._handler = getattr(importlib.import_module(module_name), attribute)
        return self._handler

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> Any:
        """The handler's answer to `event`; InvocationError where Lambda would refuse or cut it.

        `timeout` (seconds) defaults to the function's Timeout; API Gateway passes its own.
        """
        size = payload_size(event)
        if size > PAYLOAD_LIMIT_BYTES:
            raise EventTooLarge(
                f"{self.spec.logical_id}: the event is {size} bytes; the limit is {PAYLOAD_LIMIT_BYTES}"
            )
        limit = self.spec.timeout if timeout is None else min(timeout, self.spec.timeout)
        outcome: dict[str, Any] = {}
        self._lock.acquire()
        context = LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self._arn,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + limit,
        )

        def run() -> None:
            try:
                with acting_as(self.role, self.spec.logical_id):
                    outcome["result"] = self._load()(event, context)
            except BaseException as exc:  # handed to the caller, as Lambda reports a function error
                outcome["error"] = exc
            finally:
                self._lock.release()  # only when the handler is done, even after a timeout

        # The caller's context (e.g. which function is calling) goes with the invocation.
        runner = threading.Thread(
            target=contextvars.copy_context().run, args=(run,), name=f"invoke-{self.spec.logical_id}", daemon=True
        )
        runner.start()
        runner.join(limit)
        if runner.is_alive():
            raise FunctionTimedOut(f"{self.spec.logical_id}: Task timed out after {limit:.2f} seconds")
        if "error" in outcome:
            raise outcome["error"]
        result = outcome.get("result")
        size = payload_size(result)
        if size > PAYLOAD_LIMIT_BYTES:
            raise ResponseTooLarge(
                f"{self.spec.logical_id}: Response payload size ({size} bytes) exceeded maximum allowed payload "
                f"size ({PAYLOAD_LIMIT_BYTES} bytes)"
            )
        return result


def local_functions(template: Template, permissions: Permissions) -> list[LocalFunction]:
    """The template's functions, each with its role (call after the resources exist)."""
    return [
        LocalFunction(spec, LOCAL_REGION, LOCAL_ACCOUNT, permissions.role(spec.logical_id))
        for spec in template.functions()
    ]
