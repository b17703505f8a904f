"""Running a template function's handler in this process, one invocation at a time.

One lock per function stands in for one warm container: Powertools resolvers and batch
processors keep per-invocation state on module-level objects, as Lambda allows. The handler's
AWS calls are checked against the function's role (devstack.permissions).
"""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from devstack.permissions import Permissions, Role, acting_as
from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION, FunctionSpec, Template


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

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock, acting_as(self.role, self.spec.logical_id):
            handler = self._load()
            context = LambdaContext(
                function_name=self.spec.logical_id,
                memory_limit_in_mb=self.spec.memory_size,
                invoked_function_arn=self._arn,
                aws_request_id=str(uuid.uuid4()),
                deadline=time.monotonic() + self.spec.timeout,
            )
            return handler(event, context)


def local_functions(template: Template, permissions: Permissions) -> list[LocalFunction]:
    """The template's functions, each with its role (call after the resources exist)."""
    return [
        LocalFunction(spec, LOCAL_REGION, LOCAL_ACCOUNT, permissions.role(spec.logical_id))
        for spec in template.functions()
    ]
