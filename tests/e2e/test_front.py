"""What API Gateway and the terminal do around the handlers, on the stack `make run` starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.support.local_stack import REPO, RunningStack, free_port

RUN = "/internal/upsertion-tasks/run"
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("method", ["TRACE", "OPTIONS", "QUERY", "DELETE", "GET"])
def test_a_method_without_a_route_is_403_missing_authentication_token(local_stack: RunningStack, method: str) -> None:
    assert local_stack.api.call_raw(method, RUN, None, {}) == (403, {"message": "Missing Authentication Token"})


def test_head_without_a_route_is_403_without_a_body(local_stack: RunningStack) -> None:
    assert local_stack.api.call_raw("HEAD", RUN, None, {}) == (403, None)


def test_a_body_that_is_not_utf8_is_a_client_error(local_stack: RunningStack) -> None:
    status, body = local_stack.api.call_raw("POST", RUN, b"\xff\xfe{", JSON)
    assert status == 400
    assert body["error"]["code"] == "invalid_json"
    deletion = b'{"embedding_model_id": "\xffmodel", "object_ids": ["a"]}'
    status, body = local_stack.api.call_raw("POST", "/internal/deletion-tasks/run", deletion, JSON)
    assert status == 422
    assert body["error"]["code"] == "unknown_embedding_model"


def test_a_text_body_is_415(local_stack: RunningStack) -> None:
    status, body = local_stack.api.call_raw("POST", RUN, b"hello", {"Content-Type": "text/plain; charset=utf-8"})
    assert status == 415
    assert body["error"]["code"] == "unsupported_media_type"


def test_ctrl_c_stops_a_busy_stack_quickly_with_one_line() -> None:
    ports = {"PORT": free_port(), "OPENSEARCH_PORT": free_port(), "MOTO_PORT": free_port()}
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
        assert stack.api.call_raw("POST", RUN, body, JSON)[0] == 202
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


def test_servers_end_with_a_stack_that_is_killed() -> None:
    ports = {"PORT": free_port(), "OPENSEARCH_PORT": free_port(), "MOTO_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--server-log", os.devnull],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    while not (line := process.stdout.readline()).startswith("Local stack ready"):
        assert line, "the local stack exited during start-up"
    process.kill()  # no chance to stop its servers, which run in sessions of their own
    process.wait()

    def listening(port: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (listening(ports["MOTO_PORT"]) or listening(ports["OPENSEARCH_PORT"])):
        time.sleep(0.2)
    assert not listening(ports["MOTO_PORT"]), "moto outlived the stack"
    assert not listening(ports["OPENSEARCH_PORT"]), "osmem outlived the stack"
