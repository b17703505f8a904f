"""The two servers the local stack runs as child processes: moto and osmem-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from osmem_server import resolve_binary

REPO = Path(__file__).resolve().parent.parent


def _wait_http(url: str, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode} during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class ChildServer:
    def __init__(self, name: str, args: list[str], ready_url: str, env: dict[str, str], log: IO[bytes] | None) -> None:
        self.name = name
        # stdin stays open: osmem-server exits when it closes, so it cannot outlive the stack.
        # A session of its own: Ctrl-C in the terminal reaches the stack alone, which stops the
        # servers after the work that uses them (not under it, with pages of tracebacks).
        self.process = subprocess.Popen(
            args, env=env, cwd=REPO, stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True
        )
        _wait_http(ready_url, 60, self.process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin:
            self.process.stdin.close()


def start_moto(port: int, log: IO[bytes] | None) -> ChildServer:
    env = {**os.environ, "MOTO_PORT": str(port)}
    server = ChildServer(
        "moto",
        [sys.executable, "-m", "devstack.moto_server", "127.0.0.1", str(port)],
        f"http://127.0.0.1:{port}/moto-api/",
        env,
        log,
    )
    # Step Functions definitions are executed for real, not only stored.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()
    return server


def start_osmem(port: int, log: IO[bytes] | None) -> ChildServer:
    args = [resolve_binary(), "-addr", f"127.0.0.1:{port}", "-no-ja", "-parent-pid", str(os.getpid())]
    return ChildServer("osmem", args, f"http://127.0.0.1:{port}/", dict(os.environ), log)
