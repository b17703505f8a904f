"""The local front answers what API Gateway and Lambda answer before or instead of a function."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from devstack.api_gateway import LISTEN_BACKLOG, ApiGateway
from devstack.lambda_runtime import ContainerFunction, InProcessFunction, LocalFunction, runtime_environment
from devstack.template import FunctionSpec
from tests.support import stub_handlers

ROUTES = {"echo": "/echo", "huge_response": "/huge", "slow": "/slow", "crash": "/crash"}


def _function(runtime: str, spec: FunctionSpec) -> LocalFunction:
    if runtime == "container":
        return ContainerFunction(spec, None, runtime_environment(spec))
    return InProcessFunction(spec, None)


@pytest.fixture(params=["in_process", "container"])
def gateway(request: pytest.FixtureRequest) -> Iterator[ApiGateway]:
    """The front with the stub handlers, in this process (integration tier) or each in a
    container process of its own (the local stack)."""
    functions = [
        _function(
            request.param,
            FunctionSpec(
                logical_id=name,
                handler=f"tests.support.stub_handlers.{name}",
                timeout=29,
                memory_size=128,
                environment={},
                routes=[("POST", path)],
            ),
        )
        for name, path in ROUTES.items()
    ]
    front = ApiGateway(functions, "127.0.0.1", 0, "dev", integration_timeout=0.5)
    front.start()
    stub_handlers.release_slow.clear()
    yield front
    stub_handlers.release_slow.set()
    front.stop()
    for function in functions:
        function.stop()


def send(front: ApiGateway, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", front.server.server_port, timeout=30)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "GET", "PROPFIND"])
def test_a_method_with_no_route_is_a_missing_token(gateway: ApiGateway, method: str) -> None:
    status, body = send(gateway, method, "/echo")
    assert status == 403
    if method != "HEAD":
        assert json.loads(body) == {"message": "Missing Authentication Token"}


def test_an_event_over_six_mb_is_413_without_invoking(gateway: ApiGateway) -> None:
    status, body = send(gateway, "POST", "/echo", b"a" * (6 * 1024 * 1024))
    assert (status, json.loads(body)) == (413, {"message": "Request Too Long"})


def test_a_response_over_six_mb_is_502(gateway: ApiGateway) -> None:
    status, body = send(gateway, "POST", "/huge", b"{}")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_a_function_error_is_502(gateway: ApiGateway) -> None:
    status, body = send(gateway, "POST", "/crash", b"{}")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_a_function_past_the_integration_timeout_is_504(gateway: ApiGateway) -> None:
    status, body = send(gateway, "POST", "/slow", b"{}")
    assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})


def test_a_body_that_is_not_utf8_reaches_the_function_as_text(gateway: ApiGateway) -> None:
    status, body = send(gateway, "POST", "/echo", b'{"a": "\xff\xfe"}')
    assert (status, body.decode()) == (200, '{"a": "\ufffd\ufffd"}')


def test_the_listen_backlog_holds_many_clients_connecting_at_once(gateway: ApiGateway) -> None:
    # Connect them all before any request is read, then ask on each: none is reset. With a
    # short backlog the kernel drops SYNs and a connect waits for retransmissions (1 s, 3 s, ...).
    port = gateway.server.server_port
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=0.9) for _ in range(LISTEN_BACKLOG)]
    answers: list[int] = []
    lock = threading.Lock()

    def ask(sock: socket.socket) -> None:
        sock.settimeout(30)
        with sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        with lock:
            answers.append(int(reply.split(b" ", 2)[1]))

    threads = [threading.Thread(target=ask, args=(s,)) for s in sockets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [200] * LISTEN_BACKLOG
