"""CLI tier: the installed `vector-tasks` command against the local stack started as `make run`
starts it, as a person runs it (a subprocess, its output and exit code)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.local_stack import RunningStack, start_local_stack

VECTOR_TASKS = Path(sys.executable).parent / "vector-tasks"  # the entry point pip installed
# What the tier measured, printed at the end of the run (pytest hides a passing test's output).
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for figure in FIGURES:
        terminalreporter.write_line(f"cli tier: {figure}")


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with start_local_stack(tmp_path_factory.mktemp("devstack")) as stack:
        yield stack


VectorTasks = Callable[..., Ran]


def runner(stack: RunningStack, directory: Path) -> VectorTasks:
    """`run(*args)`: the command run against the stack in `directory`, with no config file."""
    env = {**os.environ, "VECTOR_TASKS_CONFIG": str(directory / "no-config.toml"), "COLUMNS": "100"}

    def run(*args: str, timeout: float = 120) -> Ran:
        argv = [str(VECTOR_TASKS), "--endpoint", stack.api.base_url, *args]
        done = subprocess.run(
            argv, cwd=directory, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        ran = Ran(done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in ran.err, ran.err
        return ran

    return run


@pytest.fixture
def vector_tasks(local_stack: RunningStack, tmp_path: Path) -> VectorTasks:
    return runner(local_stack, tmp_path)
