"""Running a template function's handler, one invocation at a time per container.

Two runtimes share Lambda's limits (an event or a response over 6 MB is refused; an
invocation that outlasts the function's Timeout is cut):

- `ContainerFunction` (the local stack, `make run`): a process of its own per function, started
  with the function's own environment (its template variables, the runtime's variables, the
  stack's endpoints and credentials) and nothing else, as a Lambda container is. Its AWS calls
  are checked against the function's role for the whole process (devstack.permissions). A
  handler exception comes back as a FunctionError; a timeout kills the process and the next
  invocation starts a new one (a cold start), as Lambda resets a timed-out container.
- `InProcessFunction` (the integration tier, where moto lives in the test process as
  `mock_aws`): the handler is called in this process, under the function's role; all functions
  share the process, so they share one environment (Template.shared_environment).

One lock per function stands in for one warm container: Powertools resolvers and batch
processors keep per-invocation state on module-level objects, as Lambda allows.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from devstack.permissions import Permissions, Role, acting_as
from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION, FunctionSpec, Template

# Lambda's limit for a synchronous invocation's request and response payloads.
PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
REPO = Path(__file__).resolve().parent.parent
# Lambda's init phase (importing the handler) has a limit of its own, not counted in the
# function's Timeout.
INIT_SECONDS = 10.0
# The root of the Lambda package (`CodeUri: functions/`): the handlers import from here.
TASK_ROOT = REPO / "functions"


class InvocationError(Exception):
    """The invocation failed in the Lambda service, not in the handler."""


class EventTooLarge(InvocationError):
    pass


class ResponseTooLarge(InvocationError):
    pass


class FunctionTimedOut(InvocationError):
    pass


class FunctionError(Exception):
    """The handler raised (or its module failed to import): Lambda's function error."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str]) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.stack_trace = stack_trace


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float  # time.monotonic(); the monotonic clock is the same in every process here
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def payload_json(value: Any) -> bytes:
    """`value` as the compact JSON whose size Lambda limits; a container is sent these bytes."""
    return json.dumps(value, separators=(",", ":")).encode()


def function_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{logical_id}"


def runtime_environment(spec: FunctionSpec) -> dict[str, str]:
    """The variables the Lambda runtime itself sets for every function (besides the role's
    credentials and the region, which the stack supplies)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(TASK_ROOT),
        "_HANDLER": spec.handler,
        "PYTHONPATH": str(TASK_ROOT),
        "PATH": os.defpath,
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }


def cpu_share_environment(concurrency: int) -> dict[str, str]:
    """Thread pools (OpenMP, OpenBLAS, MKL: numpy's BLAS reads them) sized to one environment's
    share of this machine's cores. Each Lambda environment has CPUs of its own; here `concurrency` environments share
    the machine's, and each sizing its pools to all of them would make them fight over every
    core. A variable the function's template sets wins."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, concurrency)))
    # numpy's OpenBLAS (the MiniLM encoder's products) reads OPENBLAS_NUM_THREADS before OMP's.
    return {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


class LocalFunction:
    """What both runtimes share: the spec, the role, Lambda's payload limits and the timeout."""

    concurrency = 1  # invocations it runs at once (ScaledFunction: more)

    def __init__(self, spec: FunctionSpec, role: Role | None) -> None:
        """`role`: what the function's AWS calls may do; None leaves them unchecked."""
        self.spec = spec
        self.role = role
        self.arn = function_arn(spec.logical_id)

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> Any:
        """The handler's answer to `event`; InvocationError where Lambda would refuse or cut it,
        the handler's error as the runtime reports it.

        `timeout` (seconds): how long the caller waits, at most the function's Timeout (API
        Gateway passes its 29 s); the function itself runs until its own Timeout either way.
        """
        encoded = payload_json(event)
        size = len(encoded)
        if size > PAYLOAD_LIMIT_BYTES:
            raise EventTooLarge(
                f"{self.spec.logical_id}: the event is {size} bytes; the limit is {PAYLOAD_LIMIT_BYTES}"
            )
        wait = self.spec.timeout if timeout is None else min(timeout, self.spec.timeout)
        result = self._run(event, encoded, wait)
        size = len(payload_json(result))
        if size > PAYLOAD_LIMIT_BYTES:
            raise ResponseTooLarge(
                f"{self.spec.logical_id}: Response payload size ({size} bytes) exceeded maximum allowed payload "
                f"size ({PAYLOAD_LIMIT_BYTES} bytes)"
            )
        return result

    def _context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self.arn,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self.spec.timeout,
        )

    def _run(self, event: dict[str, Any], encoded: bytes, wait: float) -> Any:
        """The handler's answer to `event` (`encoded`: its JSON, which a container is sent)."""
        raise NotImplementedError

    def start(self) -> None:
        """Make the function ready to take its first invocation (nothing to do in-process)."""

    def stop(self) -> None:
        """Release what the function holds (nothing in-process)."""


class InProcessFunction(LocalFunction):
    def __init__(self, spec: FunctionSpec, role: Role | None) -> None:
        super().__init__(spec, role)
        self._lock = threading.Lock()
        self._handler: Any = None

    def _load(self) -> Any:
        if self._handler is None:
            module_name, _, attribute = self.spec.handler.rpartition(".")
            self._handler = getattr(importlib.import_module(module_name), attribute)
        return self._handler

    def _run(self, event: dict[str, Any], encoded: bytes, wait: float) -> Any:
        outcome: dict[str, Any] = {}
        self._lock.acquire()
        context = self._context()

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
        runner.join(wait)
        if runner.is_alive():
            raise FunctionTimedOut(f"{self.spec.logical_id}: Task timed out after {wait:.2f} seconds")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")


class _Container:
    """One `python -m devstack.function_host` process and the two pipes it answers on."""

    def __init__(self, spec: FunctionSpec, role: Role | None, environment: Mapping[str, str]) -> None:
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        # A session of its own: Ctrl-C in the terminal reaches the stack alone, which stops the
        # containers after the work under way. stdout and stderr are the terminal's, as a
        # function's logs are CloudWatch's.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.function_host", str(to_child_read), str(from_child_write)],
            env=dict(environment),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            pass_fds=(to_child_read, from_child_write),
            start_new_session=True,
        )
        os.close(to_child_read)
        os.close(from_child_write)
        self.requests = Connection(to_child_write, readable=False)
        self.answers = Connection(from_child_read, writable=False)
        init = {
            "handler": spec.handler,
            "name": spec.logical_id,
            "memory": spec.memory_size,
            "role": role.to_json() if role is not None else None,
        }
        self.requests.send_bytes(json.dumps(init).encode())
        self.ready = False

    def answer(self, timeout: float) -> dict[str, Any] | None:
        """The next message from the process; None when none came within `timeout` seconds."""
        if not self.answers.poll(max(0.0, timeout)):
            return None
        try:
            message: dict[str, Any] = json.loads(self.answers.recv_bytes())
        except (EOFError, OSError):
            code = self.process.wait()
            raise FunctionError("Runtime.ExitError", f"the runtime exited with status {code}", []) from None
        return message

    def kill(self) -> None:
        for connection in (self.requests, self.answers):
            connection.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def close(self, grace: float = 1.0) -> None:
        """Close the request pipe (the host exits when it reads its end), then make sure."""
        self.requests.close()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.answers.close()


class ContainerFunction(LocalFunction):
    """The function in a process of its own, with only its own environment."""

    def __init__(self, spec: FunctionSpec, role: Role | None, environment: Mapping[str, str]) -> None:
        super().__init__(spec, role)
        self.environment = dict(environment)
        self._lock = threading.Lock()  # held while the container runs an invocation
        self._container: _Container | None = None

    def start(self) -> None:
        """Start the container (its init: importing the handler module) without waiting for it."""
        with self._lock:
            if self._container is None:
                self._container = _Container(self.spec, self.role, self.environment)

    def wait_ready(self, timeout: float) -> None:
        """Wait for the container's init; FunctionError if the handler module failed to load."""
        with self._lock:
            self._ready(time.monotonic() + timeout)

    def _ready(self, deadline: float) -> _Container:
        """The container, initialised (called with the lock held); starts one if there is none."""
        if self._container is None:
            self._container = _Container(self.spec, self.role, self.environment)
        container = self._container
        if not container.ready:
            message = container.answer(deadline - time.monotonic())
            if message is None:
                self._discard()
                raise FunctionTimedOut(f"{self.spec.logical_id}: the runtime did not initialise in time")
            if "error" in message:
                self._discard()
                raise FunctionError(**message["error"])
            container.ready = True
        return container

    def _discard(self) -> None:
        if self._container is not None:
            self._container.kill()
            self._container = None

    def _run(self, event: dict[str, Any], encoded: bytes, wait: float) -> Any:
        self._lock.acquire()
        try:
            container = self._ready(time.monotonic() + INIT_SECONDS)
            context = self._context()  # the invocation's time starts once the runtime is up
            # The event's JSON as measured, not encoded again: a create's is megabytes.
            request = {"request_id": context.aws_request_id, "deadline": context.deadline}
            container.requests.send_bytes(b'{"event":' + encoded + b"," + json.dumps(request).encode()[1:])
            message = container.answer(min(wait, context.get_remaining_time_in_millis() / 1000))
        except BaseException:
            self._discard()
            self._lock.release()
            raise
        if message is None:
            # The caller stops waiting; the container stays busy until the function's own
            # timeout, when it is reset (killed; the next invocation starts a new one).
            threading.Thread(target=self._finish_abandoned, args=(container, context), daemon=True).start()
            raise FunctionTimedOut(f"{self.spec.logical_id}: Task timed out after {wait:.2f} seconds")
        self._lock.release()
        if "error" in message:
            raise FunctionError(**message["error"])
        return message.get("result")

    def _finish_abandoned(self, container: _Container, context: LambdaContext) -> None:
        try:
            if container.answer(context.get_remaining_time_in_millis() / 1000) is None:
                self._discard()
        except FunctionError:
            self._discard()
        finally:
            self._lock.release()

    @property
    def busy(self) -> bool:
        """Running an invocation, perhaps one whose caller stopped waiting."""
        return self._lock.locked()

    def wait_idle(self) -> None:
        with self._lock:
            pass

    def cpu_seconds(self) -> float:
        """User plus system CPU time its container has used so far (0 without one; Linux)."""
        container = self._container
        if container is None or container.process.poll() is not None:
            return 0.0
        fields = Path(f"/proc/{container.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_memory_bytes(self) -> int:
        """Its container's resident-memory high-water mark (VmHWM; 0 without one; Linux): what
        Lambda reports as Max Memory Used."""
        container = self._container
        if container is None or container.process.poll() is not None:
            return 0
        for line in Path(f"/proc/{container.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        """Let an invocation under way end (or be cut by the caller's grace), then end the process."""
        container, self._container = self._container, None
        if container is not None:
            container.close()


class ScaledFunction(LocalFunction):
    """A function that runs up to `concurrency` invocations at once, each in an execution
    environment of its own (a ContainerFunction), as Lambda scales an event source's function up
    to its MaximumConcurrency. The first environment starts with the stack; the others on the
    first invocation that finds every started one busy (a cold start, as on Lambda)."""

    def __init__(self, spec: FunctionSpec, role: Role | None, environment: Mapping[str, str], concurrency: int) -> None:
        super().__init__(spec, role)
        self.concurrency = concurrency
        self.environment = {**cpu_share_environment(concurrency), **environment}
        self.environments = [ContainerFunction(spec, role, self.environment) for _ in range(concurrency)]
        # Last in, first out: the warmest environment takes the next invocation, so one that has
        # never run is only started when every started one is busy.
        self._idle: queue.LifoQueue[ContainerFunction] = queue.LifoQueue()
        for environment_ in reversed(self.environments):
            self._idle.put(environment_)

    def start(self) -> None:
        self.environments[0].start()

    def wait_ready(self, timeout: float) -> None:
        self.environments[0].wait_ready(timeout)

    def _run(self, event: dict[str, Any], encoded: bytes, wait: float) -> Any:
        environment = self._idle.get()  # one that is not running an invocation of ours
        try:
            return environment._run(event, encoded, wait)
        finally:
            self._give_back(environment)

    def _give_back(self, environment: ContainerFunction) -> None:
        """Back to the idle ones, once it is: a caller that stopped waiting left it busy."""
        if not environment.busy:
            self._idle.put(environment)
            return

        def when_idle() -> None:
            environment.wait_idle()
            self._idle.put(environment)

        threading.Thread(target=when_idle, name=f"idle-{self.spec.logical_id}", daemon=True).start()

    def cpu_seconds(self) -> float:
        return sum(environment.cpu_seconds() for environment in self.environments)

    def peak_memory_bytes(self) -> int:
        return max((environment.peak_memory_bytes() for environment in self.environments), default=0)

    def stop(self) -> None:
        stop_all(self.environments)


def stop_all(functions: Sequence[LocalFunction]) -> None:
    """Stop every function at once: each may wait for an invocation under way to end."""
    stoppers = [threading.Thread(target=f.stop, name=f"stop-{f.spec.logical_id}") for f in functions]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()


def in_process_functions(template: Template, permissions: Permissions) -> list[InProcessFunction]:
    """The template's functions in this process, each with its role (after the resources exist)."""
    return [InProcessFunction(spec, permissions.role(spec.logical_id)) for spec in template.functions()]


def container_functions(
    template: Template, permissions: Permissions, stack_environment: Mapping[str, str], max_concurrency: int = 1
) -> list[ContainerFunction | ScaledFunction]:
    """The template's functions, each in its own process with its own environment: the runtime's
    variables, the stack's (endpoints, credentials, region) and its template variables.

    A function of an SQS event source with a MaximumConcurrency runs up to that many
    invocations at once, capped at `max_concurrency` (this machine's cores, not AWS's)."""
    functions: list[ContainerFunction | ScaledFunction] = []
    for spec in template.functions():
        role = permissions.role(spec.logical_id)
        environment = {**runtime_environment(spec), **stack_environment, **template.function_environment(spec)}
        concurrency = min(max_concurrency, max((s.maximum_concurrency or 1 for s in spec.sqs_sources), default=1))
        functions.append(
            ScaledFunction(spec, role, environment, concurrency)
            if concurrency > 1
            else ContainerFunction(spec, role, environment)
        )
    return functions
