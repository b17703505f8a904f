"""A scripted HTTP server on loopback that records each request: the service as the client's
tests need it (throttling, 5xx, pages, a signature check), answering from a function."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-serialised unless bytes
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return b"" if self.body is None else json.dumps(self.body).encode()


Answer = Callable[[Request], Reply]


@dataclass
class StubApi:
    url: str
    requests: list[Request]


@contextmanager
def stub_api(answer: Answer) -> Iterator[StubApi]:
    """Serve `answer` on 127.0.0.1 (a free port) until the block ends."""
    requests: list[Request] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
            )
            requests.append(request)
            reply = answer(request)
            data = reply.encoded()
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield StubApi(f"http://127.0.0.1:{server.server_port}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def task_json(
    task_id: str,
    status: str = "pending",
    total: int = 10,
    succeeded: int = 0,
    failed: int = 0,
    attempt: int = 1,
    failures: list[dict[str, str]] | None = None,
    failures_next_offset: int | None = None,
    kind: str = "upsertion",
    created_at: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    """A task as the service answers it (upsertion: failed_items; deletion: failed_item_ids)."""
    pending = total - succeeded - failed
    return {
        "id": task_id,
        "embedding_model_id": "local-hash-384",
        "status": status,
        "created_at": created_at,
        "updated_at": created_at,
        "progress": {"total": total, "succeeded": succeeded, "failed": failed, "pending": pending, "superseded": 0},
        "attempt": attempt,
        "error": None,
        "failures_next_offset": failures_next_offset,
        "failed_items" if kind == "upsertion" else "failed_item_ids": failures or [],
    }


def summary_json(task: dict[str, Any]) -> dict[str, Any]:
    """The task as `list` has it: without the failure list."""
    return {k: v for k, v in task.items() if k not in ("failures_next_offset", "failed_items", "failed_item_ids")}
