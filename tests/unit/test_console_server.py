"""The console's server: the page and its files from this machine alone, the page's API calls
forwarded and signed with the operator's credentials, and nothing else let through."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from tests.support.local_stack import free_port
from tests.support.sigv4 import verify
from tests.support.stub_api import Reply, Request, StubApi, stub_api, task_json
from vector_tasks_client import SigV4Signer, VectorTasksClient
from vector_tasks_client.console import TOKEN_HEADER, ConsoleServer
from vector_tasks_client.transport import NO_RETRIES

ACCESS_KEY, SECRET, SESSION = "AKIDCONSOLE", "console/secret/KEY", "console-session-token"


def answer(request: Request) -> Reply:
    verdict = verify(request.method, request.target, request.headers, request.body, {ACCESS_KEY: SECRET})
    if not verdict.valid:
        return Reply(403, {"message": verdict.reason})
    if request.query.get("task_id") == "missing":
        message = "No upsertion task with task_id 'missing'"
        error = {"error": {"code": "task_not_found", "message": message, "request_id": "r-404"}}
        return Reply(404, error, {"x-amzn-RequestId": "r-404"})
    return Reply(200, task_json(request.query.get("task_id") or request.json()["task_id"]), {"x-amzn-RequestId": "r-1"})


@pytest.fixture
def upstream() -> Iterator[StubApi]:
    with stub_api(answer) as api:
        yield api


@pytest.fixture
def console(upstream: StubApi) -> Iterator[ConsoleServer]:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET, SESSION), region="eu-west-1")
    server = ConsoleServer(VectorTasksClient(upstream.url + "/prod", signer=signer), port=0).start()
    try:
        yield server
    finally:
        server.stop()


def call(
    console: ConsoleServer, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(console.url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def api(console: ConsoleServer, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    headers = {TOKEN_HEADER: console.token, "Content-Type": "application/json"}
    status, response_headers, data = call(console, method, "/api" + path, body, headers)
    return status, response_headers, json.loads(data)


def test_the_page_and_its_files_come_from_here_with_no_secret_in_them(console: ConsoleServer) -> None:
    status, headers, page = call(console, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = page.decode()
    assert f'content="{console.token}"' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources == ["/static/favicon.svg", "/static/console.css", "/static/console.js"]  # nothing from elsewhere
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for path in sources:
        status, _, content = call(console, "GET", path)
        assert status == 200
        assert not re.search(rb"https?://(?!www\.w3\.org/2000/svg)", content)
    for secret in (SECRET, SESSION, ACCESS_KEY):
        assert secret not in html


def test_api_calls_are_forwarded_signed_and_answered_as_the_service_answers(
    console: ConsoleServer, upstream: StubApi
) -> None:
    status, headers, task = api(console, "GET", "/internal/upsertion-tasks/info?task_id=a:b&failures_limit=50")
    assert (status, task["id"], headers["x-amzn-RequestId"]) == (200, "a:b", "r-1")
    status, _, task = api(console, "POST", "/internal/deletion-tasks/run", {"embedding_model_id": "m", "task_id": "d"})
    assert (status, task["id"]) == (200, "d")
    status, _, error = api(console, "PUT", "/internal/upsertion-tasks/cancel?task_id=missing")
    assert (status, error["error"]["message"], error["error"]["request_id"]) == (
        404,
        "No upsertion task with task_id 'missing'",
        "r-404",
    )
    assert [r.target for r in upstream.requests] == [
        "/prod/internal/upsertion-tasks/info?task_id=a%3Ab&failures_limit=50",
        "/prod/internal/deletion-tasks/run",
        "/prod/internal/upsertion-tasks/cancel?task_id=missing",
    ]
    assert all(r.headers["x-amz-security-token"] == SESSION for r in upstream.requests)


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", "/api/internal/upsertion-tasks/info?task_id=t", {}, 403, "console_token"),
        ("GET", "/api/internal/upsertion-tasks/info?task_id=t", {TOKEN_HEADER: "guess"}, 403, "console_token"),
        (
            "PUT",
            "/api/internal/upsertion-tasks/cancel?task_id=t",
            {"Origin": "http://evil.example"},
            403,
            "cross_origin",
        ),
        ("GET", "/api/internal/upsertion-tasks/cancel?task_id=t", {}, 405, "method_not_allowed"),
        ("GET", "/api/moto-api/reset", {}, 404, "not_found"),
        ("GET", "/api/internal/upsertion-tasks/info?task_id=t", {"Host": "evil.example:80"}, 421, "wrong_host"),
        ("POST", "/", {}, 405, "method_not_allowed"),
        ("GET", "/static/../console.py", {}, 404, "not_found"),
    ],
)
def test_nothing_but_the_pages_own_api_calls_get_through(
    console: ConsoleServer, upstream: StubApi, method: str, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    sent = {TOKEN_HEADER: console.token, **headers} if code not in ("console_token",) else headers
    answered, _, body = call(console, method, path, {} if method == "POST" else None, sent)
    assert (answered, json.loads(body)["error"]["code"]) == (status, code)
    assert upstream.requests == []


def test_an_endpoint_that_does_not_answer_is_a_502_in_the_services_error_shape() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    server = ConsoleServer(VectorTasksClient(closed, retry=NO_RETRIES), port=0).start()
    try:
        status, _, error = api(server, "GET", "/internal/upsertion-tasks/list")
    finally:
        server.stop()
    assert (status, error["error"]["code"]) == (502, "endpoint_unreachable")
    assert error["error"]["message"].startswith(f"cannot connect to {closed}")


def test_a_port_in_use_fails_at_once() -> None:
    first = ConsoleServer(VectorTasksClient("http://127.0.0.1:1"), port=0)
    try:
        with pytest.raises(OSError):
            ConsoleServer(VectorTasksClient("http://127.0.0.1:1"), port=first.port)
    finally:
        first.stop()


def test_a_browser_that_goes_away_mid_answer_prints_nothing(
    console: ConsoleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """socketserver would print the traceback on the terminal `make run` shares."""
    try:
        raise BrokenPipeError(32, "Broken pipe")
    except BrokenPipeError:
        console._httpd.handle_error(None, ("127.0.0.1", 50000))
    assert capsys.readouterr().err == ""
