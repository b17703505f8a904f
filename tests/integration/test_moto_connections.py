"""The local stack's moto server (devstack/moto_server.py) keeps HTTP/1.1 connections open, as
AWS's endpoints do: one connection serves request after request, whatever the application
left of a body unread; a body of unknown length (chunked) and a request refused before moto
runs still end the connection."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from devstack.processes import start_moto
from tests.support.local_stack import free_port

LIST_TABLES = {
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0",
}


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    server = start_moto(port, None)
    try:
        yield port
    finally:
        server.stop()


def list_tables(connection: http.client.HTTPConnection) -> dict[str, object]:
    connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    response = connection.getresponse()
    assert response.status == 200
    answer: dict[str, object] = json.loads(response.read())
    return answer


def test_one_connection_serves_many_requests(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    list_tables(connection)
    local_address = connection.sock.getsockname()
    for _ in range(5):
        assert list_tables(connection) == {"TableNames": []}
        assert connection.sock is not None and connection.sock.getsockname() == local_address
    connection.close()


def test_a_body_left_unread_does_not_reach_the_next_request(port: int) -> None:
    """moto's own API ignores a GET's body; the next request on the connection is read whole."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/moto-api/data.json", body=b"POST / HTTP/1.1\r\n\r\n" * 100)
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    assert list_tables(connection) == {"TableNames": []}
    connection.close()


def test_a_chunked_body_ends_the_connection(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/", body=iter([b"{", b"}"]), headers=LIST_TABLES, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == {"TableNames": []}
    assert response.getheader("Connection") == "close"
    connection.close()


def test_a_malformed_request_after_a_good_one_ends_the_connection(port: int) -> None:
    """The first request kept the connection open; the next one, refused by http.server before
    moto runs, is answered 431 and the connection closed, not read on from inside it."""
    good = b"GET /moto-api/data.json HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(good)
        first = http.client.HTTPResponse(connection)
        first.begin()
        first.read()
        assert first.status == 200
        # A header line past http.server's 64 KB, refused before moto runs.
        connection.sendall(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n")
        second = http.client.HTTPResponse(connection)
        second.begin()
        assert second.status == 431
        assert second.getheader("Connection") == "close"
        second.read()
        assert connection.recv(1) == b""  # closed by the server
