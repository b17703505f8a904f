"""What API Gateway and the terminal do around the handlers, on the stack `make run` starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from tests.support.local_stack import RunningStack, spawn_devstack

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
    spawned = spawn_devstack("--server-log", os.devnull, stderr=subprocess.PIPE, own_session=True)
    process = spawned.process
    try:
        items = [{"object_id": f"o{i}", "payload": {"text": f"words {i}"}} for i in range(3000)]
        body = json.dumps({"embedding_model_id": "local-hash-384", "items": items}).encode()
        stack = RunningStack.at(spawned.api_url, spawned.opensearch_url)
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
    spawned = spawn_devstack("--server-log", os.devnull)
    spawned.process.kill()  # no chance to stop its servers, which run in sessions of their own
    spawned.process.wait()
    server_ports = (spawned.ports["MOTO_PORT"], spawned.ports["OPENSEARCH_PORT"])

    def listening(port: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(listening(port) for port in server_ports):
        time.sleep(0.2)
    assert not listening(spawned.ports["MOTO_PORT"]), "moto outlived the stack"
    assert not listening(spawned.ports["OPENSEARCH_PORT"]), "osmem outlived the stack"
