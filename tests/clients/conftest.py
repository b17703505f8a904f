"""Clients tier: the committed openapi.json read by tools nobody here wrote (a validator, a
generated client, schemathesis), which then drive the local stack as `make run` starts it."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.local_stack import REPO, RunningStack, start_local_stack

OPENAPI = REPO / "openapi.json"
# Not vector_tasks_client, the package of clients/python this tier must not shadow.
CLIENT_PACKAGE = "generated_vector_tasks_client"


_TIER = Path(__file__).parent
_timing: dict[str, float] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    if Path(str(item.fspath)).is_relative_to(_TIER):
        _timing.setdefault("start", time.monotonic())


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if Path(str(item.fspath)).is_relative_to(_TIER):
        _timing["end"] = time.monotonic()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if "start" in _timing:
        seconds = _timing.get("end", time.monotonic()) - _timing["start"]
        terminalreporter.write_line(f"clients tier: {seconds:.0f} s (local stack start-up included)")


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with start_local_stack(tmp_path_factory.mktemp("devstack")) as stack:
        yield stack


@pytest.fixture(scope="package")
def generated_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """A client generated now, from openapi.json, by openapi-python-client; imported as is.

    `post_hooks: []`: the generator would otherwise run `ruff` on its output; nothing here needs
    the network either way, and the generated code is imported without any edit.
    """
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.yaml"
    config.write_text(
        f"post_hooks: []\nproject_name_override: {CLIENT_PACKAGE}\npackage_name_override: {CLIENT_PACKAGE}\n"
    )
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(OPENAPI),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(out / CLIENT_PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == CLIENT_PACKAGE or n.startswith(CLIENT_PACKAGE + ".")]:
            del sys.modules[name]
