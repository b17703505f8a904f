"""An HTTP front that turns requests into API Gateway REST proxy events for the routed function.

Routes come from the functions' `Api` events in template.yaml. What API Gateway answers before
or instead of the function, this front answers the same way: a path or method with no route
(HEAD, OPTIONS, TRACE, any verb) 403 "Missing Authentication Token"; a body over API Gateway's
10 MB or an event over Lambda's 6 MB 413; a response over 6 MB or a function error 502; no
answer within the 29 s integration timeout 504. A body that is not UTF-8 reaches the function
as API Gateway passes text, with each invalid byte replaced by U+FFFD.
The API's own IAM (SigV4) authorization of callers is not checked locally; what the functions
may call is (devstack.permissions).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.lambda_runtime import EventTooLarge, FunctionTimedOut, LocalFunction

# API Gateway's own payload limit for REST APIs; Lambda's lower limit applies to the event.
API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
# REST API integrations time out after 29 s, whatever the function's own Timeout.
INTEGRATION_TIMEOUT_SECONDS = 29.0
# Pending connections the listening socket queues (socketserver's default is 5).
LISTEN_BACKLOG = 128

MISSING_TOKEN = (403, {"message": "Missing Authentication Token"})
TOO_LARGE = (413, {"message": "Request Too Long"})
INTERNAL_ERROR = (502, {"message": "Internal server error"})
TIMED_OUT = (504, {"message": "Endpoint request timed out"})
_ERROR_TYPES = {
    403: "MissingAuthenticationTokenException",
    413: "RequestTooLargeException",
    502: "InternalServerErrorException",
    504: "IntegrationTimeoutException",
}


def _gateway_answer(status: int, body: dict[str, str]) -> tuple[int, dict[str, str], str]:
    return status, {"x-amzn-ErrorType": _ERROR_TYPES[status]}, json.dumps(body)


def integrate(
    function: LocalFunction, event: dict[str, Any], timeout: float = INTEGRATION_TIMEOUT_SECONDS
) -> tuple[int, dict[str, str], str]:
    """API Gateway's Lambda proxy integration: the function's answer as (status, headers, body),
    or API Gateway's own where Lambda refuses or cuts the invocation."""
    try:
        result = function.invoke(event, timeout=timeout)
    except EventTooLarge:
        return _gateway_answer(*TOO_LARGE)
    except FunctionTimedOut:
        return _gateway_answer(*TIMED_OUT)
    except Exception:  # a function error or a response over 6 MB
        return _gateway_answer(*INTERNAL_ERROR)
    headers = dict(result.get("headers") or {})
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    headers["x-amzn-RequestId"] = event["requestContext"]["requestId"]
    return int(result["statusCode"]), headers, result.get("body") or ""


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


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
    def __init__(
        self,
        functions: Sequence[LocalFunction],
        host: str,
        port: int,
        stage: str,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self.routes = {route: fn for fn in functions for route in fn.spec.routes}
        self.integration_timeout = integration_timeout
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __getattr__(self, name: str) -> Any:
                # http.server looks up do_<METHOD>; every method reaches the gateway, which
                # answers unrouted ones as API Gateway does rather than with a 501 page.
                if name.startswith("do_"):
                    return lambda: gateway.handle(self)
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self.server = _Server((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_port}"
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
            return self._send_json(request, *TOO_LARGE)
        raw = request.rfile.read(length) if length else b""
        function = self.routes.get((request.command, split.path))
        if function is None:
            return self._send_json(request, *MISSING_TOKEN)
        headers = dict(request.headers.items())
        body = raw.decode("utf-8", errors="replace") if raw else None
        event = proxy_event(request.command, split.path, split.query, headers, body, self.stage)
        status, response_headers, response_body = integrate(function, event, self.integration_timeout)
        return self._send(request, status, response_headers, response_body)

    @classmethod
    def _send_json(cls, request: BaseHTTPRequestHandler, status: int, body: dict[str, str]) -> None:
        cls._send(request, status, *_gateway_answer(status, body)[1:])

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
        if request.command != "HEAD":
            request.wfile.write(data)
