"""What API Gateway and the terminal do around the handlers, on the stack `make run` starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from tests.e2e.conftest import REPO, RunningStack, _free_port


def raw_post(stack: RunningStack, path: str, body: bytes) -> tuple[int, Any]:
    return stack.api.call_raw("POST", path, body, {"Content-Type": "application/json"})


def test_a_body_that_is_not_utf8_is_a_client_error(local_stack: RunningStack) -> None:
    status, body = raw_post(local_stack, "/internal/upsertion-tasks/run", b"\xff\xfe{")
    assert status == 400
    assert body["error"]["code"] == "invalid_json"
    status, body = raw_post(
        local_stack,
        "/internal/deletion-tasks/run",
        b'{"embedding_model_id": "\xffmodel", "object_ids": ["a"]}',
    )
    assert status == 422
    assert body["error"]["code"] == "unknown_embedding_model"


def test_ctrl_c_stops_a_busy_stack_quickly_with_one_line() -> None:
    ports = {"PORT": _free_port(), "OPENSEARCH_PORT": _free_port(), "MOTO_PORT": _free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--server-log", os.devnull],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a terminal's process group of its own, as Ctrl-C sees it
    )
    try:
        assert process.stdout is not None
        while not (line := process.stdout.readline()).startswith("Local stack ready"):
            assert line, "the local stack exited during start-up"
        items = [{"object_id": f"o{i}", "payload": {"text": f"words {i}"}} for i in range(3000)]
        body = json.dumps({"embedding_model_id": "local-hash-384", "items": items}).encode()
        stack = RunningStack.at(f"http://127.0.0.1:{ports['PORT']}", f"http://127.0.0.1:{ports['OPENSEARCH_PORT']}")
        assert raw_post(stack, "/internal/upsertion-tasks/run", body)[0] == 202
        time.sleep(1)  # workers are busy with its chunks

        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        _, stderr = process.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    print(f"Ctrl-C to exit: {stopped_in:.1f} s")
    assert process.returncode == 0
    assert stderr.splitlines() == ["Stopping the local stack."]
    assert stopped_in < 5
