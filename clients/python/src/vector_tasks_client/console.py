"""The operator console: one page, served on 127.0.0.1 with everything it needs, whose API
calls this server forwards to the service through the client's transport, signing them. The
page holds no credential; it holds a token that this server made at start and that every API
call must carry, so that no other page the browser shows can use the console's credentials
(a cross-site form or script can send a request, but cannot read the token or set the header).
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import secrets
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from vector_tasks_client.client import CREATE, OPERATIONS, RESTART, VectorTasksClient
from vector_tasks_client.errors import CredentialsError, TransportError
from vector_tasks_client.limits import MAX_EVENT_BYTES

DEFAULT_PORT = 3001
API_PREFIX = "/api"
TOKEN_HEADER = "X-Console-Token"  # noqa: S105 - the header's name; the token is made at start
STATIC_FILES = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# Everything from this server, nothing inline, nothing from elsewhere (no CDN, no framing).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
log = logging.getLogger("vector_tasks_client.console")


def _static(name: str) -> bytes:
    return (files("vector_tasks_client") / "console_static" / name).read_bytes()


class ConsoleServer:
    """Binds at construction (so a port in use fails at once), serves from `start` to `stop`."""

    def __init__(self, client: VectorTasksClient, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
        self.client = client
        self.token = secrets.token_urlsafe(32)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.console = self
        self.host, self.port = host, self._httpd.server_port
        self._thread: threading.Thread | None = None
        page = _static("index.html").decode()
        self.page = page.replace("%%TOKEN%%", self.token).replace("%%ENDPOINT%%", html.escape(client.endpoint)).encode()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def origins(self) -> set[str]:
        """The names the page can be loaded by: anything else (DNS rebinding) is refused."""
        return {f"{self.host}:{self.port}", f"localhost:{self.port}"}

    def start(self) -> ConsoleServer:
        # A short poll: `stop` (Ctrl-C of `make run`) waits for the loop to see the request.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="console", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    console: ConsoleServer  # how a handler finds its console

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that goes away mid-answer (a closed tab, a reload) is no error to print;
        anything else is logged, not written to the terminal `make run` shares."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("%s went away", client_address)
        else:
            log.exception("console request from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    server_version = "vector-tasks-console"
    console: ConsoleServer

    def setup(self) -> None:
        super().setup()
        assert isinstance(self.server, _Server)
        self.console = self.server.console

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def _route(self) -> None:
        if self.headers.get("Host") not in self.console.origins:
            return self._error(
                HTTPStatus.MISDIRECTED_REQUEST, "wrong_host", f"This console answers at {self.console.url}"
            )
        path = urlsplit(self.path).path
        if path.startswith(API_PREFIX + "/"):
            return self._forward(path.removeprefix(API_PREFIX))
        if self.command != "GET":
            return self._error(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"{self.command} {path}")
        if path in ("/", "/index.html"):
            return self._send(HTTPStatus.OK, self.console.page, "text/html; charset=utf-8")
        name = path.removeprefix("/static/")
        if name in STATIC_FILES:
            return self._send(HTTPStatus.OK, _static(name), STATIC_FILES[name])
        return self._error(HTTPStatus.NOT_FOUND, "not_found", f"Nothing at {path}")

    def _forward(self, path: str) -> None:
        operation = OPERATIONS.get(path)
        if operation is None:
            return self._error(HTTPStatus.NOT_FOUND, "not_found", f"No API route {path}")
        if self.command != operation.method:
            return self._error(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"{path} takes {operation.method}")
        if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), self.console.token):
            return self._error(HTTPStatus.FORBIDDEN, "console_token", "API calls come from the console's own page")
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc not in self.console.origins:
            return self._error(HTTPStatus.FORBIDDEN, "cross_origin", f"API calls from {origin} are refused")
        body = None
        if operation.method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_EVENT_BYTES:
                return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request_too_large", "Request Too Long")
            body = self.rfile.read(length)
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        # A create is the same request again only with its task_id, a restart only with its attempt.
        repeatable = operation.repeatable and (
            (operation is not CREATE or _names_task_id(body)) and (operation is not RESTART or "attempt" in query)
        )
        try:
            answer = self.console.client.transport.send(
                operation.method, path, query=query, body=body, repeatable=repeatable
            )
        except (TransportError, CredentialsError) as exc:
            return self._error(HTTPStatus.BAD_GATEWAY, "endpoint_unreachable", str(exc))
        extra = {"x-amzn-RequestId": answer.request_id} if answer.request_id else {}
        content_type = answer.headers.get("content-type", "application/json")
        self._send(answer.status, answer.body, content_type, extra)

    def _error(self, status: HTTPStatus, code: str, message: str) -> None:
        """An error of the console itself, in the service's error shape so the page shows it alike."""
        body = json.dumps({"error": {"code": code, "message": message, "request_id": None}}).encode()
        self._send(status, body, "application/json")

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, **(extra or {}), "Content-Type": content_type}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _names_task_id(body: bytes | None) -> bool:
    try:
        return isinstance(json.loads(body or b"").get("task_id"), str)
    except (ValueError, AttributeError):
        return False
