"""An HTTP front that turns requests into API Gateway REST proxy events for the routed function.

Routes come from the functions' `Api` events in template.yaml. As on API Gateway, a path or
method with no route answers 403 "Missing Authentication Token" without invoking anything.
The API's own IAM (SigV4) authorization of callers is not checked locally; what the
functions may call is (devstack.permissions).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.lambda_runtime import LocalFunction

# API Gateway's own payload limit for REST APIs; the functions enforce their lower limit.
API_GATEWAY_MAX_BODY = 10 * 1024 * 1024


def proxy_event(
    method: str, path: str, query: str, headers: dict[str, str], body: str | None, stage: str
) -> dict[str, Any]:
    multi_query = parse_qs(query, keep_blank_values=True)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
        },
        "body": body,
        "isBase64Encoded": False,
    }


class ApiGateway:
    def __init__(self, functions: list[LocalFunction], host: str, port: int, stage: str) -> None:
        self.routes = {route: fn for fn in functions for route in fn.spec.routes}
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                gateway.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_port}"
        self.server.daemon_threads = True
        self.stage = stage
        self._thread = threading.Thread(target=self.server.serve_forever, name="api-gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        split = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_MAX_BODY:
            request.rfile.read(length)
            return self._send(request, 413, {}, json.dumps({"message": "Request Too Long"}))
        raw = request.rfile.read(length) if length else b""
        function = self.routes.get((request.command, split.path))
        if function is None:
            return self._send(request, 403, {}, json.dumps({"message": "Missing Authentication Token"}))
        headers = dict(request.headers.items())
        event = proxy_event(
            request.command, split.path, split.query, headers, raw.decode() if raw else None, self.stage
        )
        try:
            result = function.invoke(event)
        except Exception:  # an unhandled exception in a handler is API Gateway's 502
            return self._send(request, 502, {}, json.dumps({"message": "Internal server error"}))
        response_headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            response_headers[name] = ", ".join(values)
        response_headers["x-amzn-RequestId"] = event["requestContext"]["requestId"]
        return self._send(request, int(result["statusCode"]), response_headers, result.get("body") or "")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: str) -> None:
        data = body.encode()
        request.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for name, value in headers.items():
            if name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
