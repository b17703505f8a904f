"""What the benchmarks share to drive the local stack they start: a free loopback port, and a
JSON call that answers (status, body) whatever the status."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def call(method: str, url: str, body: Any = None, timeout: float = 120) -> tuple[int, Any]:
    """`body`: bytes as they are, anything else as JSON. Loopback only: the stack the benchmark
    started."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
