"""`python -m devstack.function_host REQUEST_FD ANSWER_FD`: one function's container.

Started by `ContainerFunction` with the function's environment and nothing else. It reads
an init message (handler, role), imports the handler module (Lambda's init phase), answers
`{"ready": true}` or the import's error, then serves one invocation per request until its
request pipe closes (the stack stopped or died), when it exits. Every AWS call made in this
process is checked against the function's role.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from devstack.lambda_runtime import LambdaContext, function_arn
from devstack.permissions import Role, act_as_for_process


def _error(exc: BaseException) -> dict[str, Any]:
    """Lambda's function error: type, message and stack trace; also logged, as Lambda does."""
    trace = traceback.format_exception(exc)
    print(f"[ERROR] {type(exc).__name__}: {exc}\n{''.join(trace)}", file=sys.stderr, flush=True)
    return {"error": {"error_type": type(exc).__name__, "message": str(exc), "stack_trace": trace}}


def _load(handler: str) -> Any:
    module_name, _, attribute = handler.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def serve(requests: Connection, answers: Connection) -> None:
    init = json.loads(requests.recv_bytes())
    name = init["name"]
    if init["role"] is not None:
        act_as_for_process(Role.from_json(init["role"]), name)
    try:
        handler = _load(init["handler"])
    except Exception as exc:
        answers.send_bytes(json.dumps(_error(exc)).encode())
        return
    answers.send_bytes(b'{"ready": true}')
    while True:
        try:
            request = json.loads(requests.recv_bytes())
        except EOFError:
            return
        context = LambdaContext(
            function_name=name,
            memory_limit_in_mb=int(init.get("memory", 0)),
            invoked_function_arn=function_arn(name),
            aws_request_id=request["request_id"],
            deadline=request["deadline"],
        )
        try:
            answer = {"result": handler(request["event"], context)}
            data = json.dumps(answer).encode()
        except Exception as exc:  # the runtime reports it; the container stays warm
            data = json.dumps(_error(exc)).encode()
        answers.send_bytes(data)


def main() -> None:
    # As the Lambda runtime does: warnings and up from the standard logging module reach the log.
    logging.basicConfig(level=logging.WARNING, format="[%(levelname)s] %(name)s: %(message)s")
    requests = Connection(int(sys.argv[1]), writable=False)
    answers = Connection(int(sys.argv[2]), readable=False)
    with contextlib.suppress(BrokenPipeError, EOFError, KeyboardInterrupt):  # the stack went away
        serve(requests, answers)


if __name__ == "__main__":
    main()
