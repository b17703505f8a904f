"""The local stack started as a user starts it (`python -m devstack`, what `make run` runs), on
free loopback ports; shared by the tiers that drive it over HTTP (e2e, clients)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.http import HttpClient

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningStack:
    api: HttpClient
    opensearch: HttpClient
    # Tags the task ids of one run on a stack that outlives it (LocalStack, AWS), where the same
    # task_id from an earlier run would be a replay instead of a new task.
    run_tag: str = ""
    sam_env_file: Path | None = None  # `make invoke`'s env-vars file for this stack
    console_url: str | None = None  # the operator console `make run` serves beside the API
    aws_url: str | None = None  # the local stack's moto, where its events, queues and tables are

    @classmethod
    def at(cls, api_url: str, opensearch_url: str) -> RunningStack:
        return cls(HttpClient(api_url), HttpClient(opensearch_url))

    def task_id(self, name: str) -> str:
        return f"{name}-{self.run_tag}" if self.run_tag else name


@dataclass
class SpawnedStack:
    """A `python -m devstack` process that has printed "Local stack ready"."""

    process: subprocess.Popen[str]
    ports: dict[str, int]
    banner: list[str]  # what it printed up to and including the ready line

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['PORT']}"

    @property
    def opensearch_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['OPENSEARCH_PORT']}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['CONSOLE_PORT']}"

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['MOTO_PORT']}"


def spawn_devstack(
    *args: str, env: dict[str, str] | None = None, stderr: int = subprocess.DEVNULL, own_session: bool = False
) -> SpawnedStack:
    """Start `python -m devstack ARGS` on free ports and wait until it is ready (120 s at most).

    `own_session`: a process group of its own, as a terminal's foreground job is for Ctrl-C.
    """
    ports = {"PORT": free_port(), "OPENSEARCH_PORT": free_port(), "MOTO_PORT": free_port(), "CONSOLE_PORT": free_port()}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", *args],
        cwd=REPO,
        env={**os.environ, **(env or {}), **{k: str(v) for k, v in ports.items()}},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=own_session,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    banner: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            process.kill()
            process.wait()
            raise RuntimeError(f"the local stack exited during start-up: {banner}")
        banner.append(line)
        if line.startswith("Local stack ready"):
            return SpawnedStack(process, ports, banner)
    process.kill()
    process.wait()
    raise RuntimeError(f"the local stack was not ready within 120 s: {banner}")


@contextmanager
def start_local_stack(log_dir: Path) -> Iterator[RunningStack]:
    """Start the stack, wait for "Local stack ready", yield its clients; stop it on exit."""
    log, sam_env = log_dir / "servers.log", log_dir / "sam-env.json"
    spawned = spawn_devstack("--server-log", str(log), "--sam-env-file", str(sam_env), env={"RETRY_AFTER": "1"})
    process = spawned.process
    drain: subprocess.Popen[bytes] | None = None
    try:
        urls = dict(
            line.split(":", 1) for line in spawned.banner if line.startswith(("API:", "OpenSearch:", "Console:"))
        )
        assert urls["API"].strip() == spawned.api_url
        assert urls["OpenSearch"].strip() == spawned.opensearch_url
        assert urls["Console"].strip() == spawned.console_url
        # Keep draining stdout (handler logs) so the stack never blocks on a full pipe.
        drain = subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
        running = RunningStack.at(spawned.api_url, spawned.opensearch_url)
        running.sam_env_file = sam_env
        running.console_url = spawned.console_url
        running.aws_url = spawned.aws_url
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if drain is not None:
        drain.wait(timeout=10)
