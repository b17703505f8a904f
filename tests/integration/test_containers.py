"""The local stack's functions run as on Lambda: each in a process of its own, with only its own
environment and its role, reset after a timeout; the stack changes nothing in its own process."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from devstack.lambda_runtime import (
    ContainerFunction,
    FunctionError,
    FunctionTimedOut,
    ScaledFunction,
    cpu_share_environment,
    runtime_environment,
)
from devstack.stack import DevStack, DevStackConfig
from devstack.template import FunctionSpec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # pytest's own


@pytest.fixture(scope="module")
def environment_before() -> dict[str, str]:
    return _environment()


@pytest.fixture(scope="module")
def served(environment_before: dict[str, str]) -> Iterator[DevStack]:
    config = DevStackConfig(
        port=_free_port(),
        opensearch_port=_free_port(),
        moto_port=_free_port(),
        start_pollers=False,
        function_overrides={"POWERTOOLS_LOG_LEVEL": "WARNING"},
    )
    with DevStack(config) as stack:
        yield stack


def _probe(function: ContainerFunction | ScaledFunction, handler: str, timeout: int = 29) -> ContainerFunction:
    """The function's own container set-up (environment, role) running a probe handler instead."""
    spec = FunctionSpec(
        function.spec.logical_id, f"tests.support.stub_handlers.{handler}", timeout, function.spec.memory_size, {}
    )
    return ContainerFunction(spec, function.role, function.environment)


def test_the_stack_changes_nothing_in_its_own_process(served: DevStack, environment_before: dict[str, str]) -> None:
    assert _environment() == environment_before
    assert os.environ.get("AWS_ENDPOINT_URL") != served.aws_endpoint_url


def test_each_function_sees_its_own_variables_and_nothing_else(
    served: DevStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK_CANARY", "from the test process")
    assert served.template is not None
    seen: dict[str, dict[str, str]] = {}
    for function in served.functions:
        probe = _probe(function, "environment")
        try:
            seen[function.spec.logical_id] = probe.invoke({})
        finally:
            probe.stop()
        # A scaled function's environments size their thread pools to their share of the cores.
        cpu_share = cpu_share_environment(function.concurrency) if isinstance(function, ScaledFunction) else {}
        expected = {
            **cpu_share,
            **runtime_environment(function.spec),
            **served.aws.environment(),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **served.template.function_environment(function.spec),
        }
        # Python adds LC_CTYPE when it coerces the C locale; nothing else may appear.
        assert {k: v for k, v in seen[function.spec.logical_id].items() if k != "LC_CTYPE"} == expected
    assert "RESTART_STATE_MACHINE_ARN" in seen["TaskTransitionFunction"]
    for other in (
        "TaskSubmitFunction",
        "TaskReadFunction",
        "TaskWorkerFunction",
        "DeadLetterFunction",
        "ReconcilerFunction",
    ):
        assert "RESTART_STATE_MACHINE_ARN" not in seen[other]
        assert "CANCEL_STATE_MACHINE_ARN" not in seen[other]


def test_a_container_acts_as_its_role_in_every_thread(served: DevStack) -> None:
    worker = next(f for f in served.functions if f.spec.logical_id == "TaskWorkerFunction")
    probe = _probe(worker, "list_queues_from_a_thread")
    try:
        answer = probe.invoke({})
    finally:
        probe.stop()
    assert answer["outcome"] == "AccessDenied"
    assert "TaskWorkerFunction is not authorized to perform: sqs:ListQueues" in answer["message"]


def _napper(timeout: int) -> ContainerFunction:
    spec = FunctionSpec("Napper", "tests.support.stub_handlers.nap", timeout, 128, {})
    return ContainerFunction(spec, None, runtime_environment(spec))


def test_a_function_past_its_timeout_is_cut_and_the_next_invocation_starts_a_new_container() -> None:
    napper = _napper(timeout=1)
    try:
        first = napper.invoke({"seconds": 0})["pid"]
        assert napper.invoke({"seconds": 0})["pid"] == first  # warm: the same container
        with pytest.raises(FunctionTimedOut, match=r"Task timed out after 1\.00 seconds"):
            napper.invoke({"seconds": 30})
        assert napper.invoke({"seconds": 0})["pid"] != first
    finally:
        napper.stop()


def test_a_caller_that_stops_waiting_leaves_the_container_busy_until_it_is_done() -> None:
    napper = _napper(timeout=10)
    try:
        first = napper.invoke({"seconds": 0})["pid"]
        with pytest.raises(FunctionTimedOut):
            napper.invoke({"seconds": 1}, timeout=0.2)  # API Gateway gave up; the function goes on
        assert napper.invoke({"seconds": 0})["pid"] == first  # it finished in time: still warm
    finally:
        napper.stop()


def test_a_handler_that_cannot_be_imported_is_a_function_error() -> None:
    spec = FunctionSpec("Broken", "tests.support.no_such_module.handler", 3, 128, {})
    broken = ContainerFunction(spec, None, runtime_environment(spec))
    try:
        with pytest.raises(FunctionError, match="ModuleNotFoundError"):
            broken.invoke({})
    finally:
        broken.stop()


def test_a_handler_error_comes_back_as_a_function_error_and_the_container_stays_warm() -> None:
    spec = FunctionSpec("Crash", "tests.support.stub_handlers.crash", 3, 128, {})
    crash = ContainerFunction(spec, None, runtime_environment(spec))
    try:
        for _ in range(2):
            with pytest.raises(FunctionError, match="RuntimeError: the handler failed") as raised:
                crash.invoke({})
            assert any("stub_handlers.py" in line for line in raised.value.stack_trace)
    finally:
        crash.stop()


def test_the_containers_end_with_the_stack() -> None:
    config = DevStackConfig(
        port=_free_port(), opensearch_port=_free_port(), moto_port=_free_port(), start_pollers=False
    )
    stack = DevStack(config).start()
    environments = [e for f in stack.functions for e in (f.environments if isinstance(f, ScaledFunction) else [f])]
    # The first environment of each function started with the stack; a scaled one's others start on demand.
    processes = [e._container.process for e in environments if e._container is not None]
    assert len(processes) == len(stack.functions) == len(stack.template.functions())  # type: ignore[union-attr]
    stack.stop()
    assert all(p.poll() is not None for p in processes)


def test_the_worker_scales_to_its_maximum_concurrency_capped_by_the_stack(served: DevStack) -> None:
    worker = next(f for f in served.functions if f.spec.logical_id == "TaskWorkerFunction")
    assert isinstance(worker, ScaledFunction)
    assert worker.concurrency == min(served.config.max_concurrency, 10)  # WorkerMaxConcurrency's default
    splitter = next(f for f in served.functions if f.spec.logical_id == "ImportSplitterFunction")
    assert isinstance(splitter, ScaledFunction)
    assert splitter.concurrency == min(served.config.max_concurrency, 5)  # its MaximumConcurrency
    scaled = ("TaskWorkerFunction", "ImportSplitterFunction")
    others = [f for f in served.functions if f.spec.logical_id not in scaled]
    assert all(isinstance(f, ContainerFunction) for f in others)  # no MaximumConcurrency: one at a time


def test_a_scaled_function_runs_invocations_side_by_side_and_reuses_warm_environments() -> None:
    spec = FunctionSpec("Napper", "tests.support.stub_handlers.nap", 10, 128, {})
    napper = ScaledFunction(spec, None, runtime_environment(spec), concurrency=2)
    answers: list[int] = []
    try:
        napper.start()
        napper.wait_ready(10)
        first = napper.invoke({"seconds": 0})["pid"]
        assert napper.invoke({"seconds": 0})["pid"] == first  # one after the other: the warm one
        assert napper.environments[1]._container is None  # never needed, never started
        sleeper = threading.Thread(target=lambda: answers.append(napper.invoke({"seconds": 2})["pid"]))
        sleeper.start()
        while napper._idle.qsize() == 2:  # until the sleeper holds the first environment
            time.sleep(0.01)
        beside = napper.invoke({"seconds": 0})["pid"]  # the second environment, cold-started
        sleeper.join()
        assert beside != answers[0]
        assert {napper.invoke({"seconds": 0})["pid"] for _ in range(3)} <= {beside, answers[0]}  # warm ones
    finally:
        napper.stop()
    assert all(e._container is None for e in napper.environments)


def test_each_scaled_environment_sizes_its_thread_pools_to_its_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As each Lambda environment has CPUs of its own: two environments on 8 cores get 4 threads
    each (numpy's OpenBLAS reads these); a variable the template sets is kept."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    spec = FunctionSpec("Napper", "tests.support.stub_handlers.nap", 10, 128, {})
    shared = ScaledFunction(spec, None, runtime_environment(spec), concurrency=2)
    pools = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    assert [shared.environment[name] for name in pools] == ["4", "4", "4"]
    assert all(e.environment == shared.environment for e in shared.environments)
    assert ScaledFunction(spec, None, runtime_environment(spec), concurrency=16).environment["OMP_NUM_THREADS"] == "1"
    chosen = ScaledFunction(spec, None, {**runtime_environment(spec), "OMP_NUM_THREADS": "3"}, concurrency=2)
    assert chosen.environment["OMP_NUM_THREADS"] == "3"


def test_a_scaled_function_leaves_an_environment_its_caller_abandoned_to_finish() -> None:
    spec = FunctionSpec("Napper", "tests.support.stub_handlers.nap", 20, 128, {})
    napper = ScaledFunction(spec, None, runtime_environment(spec), concurrency=2)
    try:
        first = napper.invoke({"seconds": 0})["pid"]
        with pytest.raises(FunctionTimedOut):
            napper.invoke({"seconds": 8}, timeout=0.5)  # the first environment stays busy
        assert napper.invoke({"seconds": 0})["pid"] != first  # so the other one answers, at once
        napper.environments[0].wait_idle()
        while napper._idle.qsize() < 2:  # given back once its invocation ended
            time.sleep(0.01)
    finally:
        napper.stop()
