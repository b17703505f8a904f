"""The local stack's moto server (devstack/moto_server.py) keeps HTTP/1.1 connections open, as
AWS's endpoints do: one connection serves request after request, whatever the application
left of a body unread, and a body of unknown length (chunked) still ends the connection."""

from __future__ import annotations

import http.client
import json
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
