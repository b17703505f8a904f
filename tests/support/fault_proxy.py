"""An HTTP proxy in front of osmem that injects OpenSearch failures on `_bulk` requests."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultProxy:
    """Forwards to `upstream`; each queued fault answers (or rewrites) one `_bulk` request.

    A fault is ("status", 503): answer that status without forwarding; ("items", 429): forward,
    then report every item of the response with that status (OpenSearch's per-item rejection).
    `permanent` repeats the last fault forever.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[tuple[str, int]] = []
        self.permanent: tuple[str, int] | None = None
        self.bulk_requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_fault(self) -> tuple[str, int] | None:
        with self._lock:
            self.bulk_requests += 1
            if self.faults:
                return self.faults.pop(0)
            return self.permanent

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        fault = self._next_fault() if "_bulk" in request.path else None
        if fault is not None and fault[0] == "status":
            return self._send(request, fault[1], {"Content-Type": "application/json"}, b'{"error": "injected"}')
        forwarded = urllib.request.Request(self.upstream + request.path, data=body, method=request.command)
        for name in ("Content-Type", "Content-Encoding", "Accept-Encoding"):
            if request.headers.get(name):
                forwarded.add_header(name, request.headers[name])
        forwarded.add_header("Accept-Encoding", "identity")
        try:
            with urllib.request.urlopen(forwarded, timeout=30) as response:
                status, headers, data = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, headers, data = error.code, dict(error.headers), error.read()
        if fault is not None and fault[0] == "items":
            parsed = json.loads(data)
            for entry in parsed["items"]:
                result = next(iter(entry.values()))
                result["status"] = fault[1]
                result["error"] = {"type": "es_rejected_execution_exception", "reason": "injected"}
            parsed["errors"] = True
            data = json.dumps(parsed).encode()
        return self._send(request, status, {"Content-Type": headers.get("Content-Type", "application/json")}, data)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)
