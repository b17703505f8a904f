"""A small JSON-over-HTTP client for the end-to-end tiers (stdlib only, like a curl user), which
signs its requests with SigV4 when it talks to a stack on AWS."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class SigV4Signer:
    """Signs a request as `aws --region REGION` would for `service` (execute-api, es)."""

    def __init__(self, credentials: Credentials, region: str, service: str) -> None:
        self._auth = SigV4Auth(credentials, service, region)

    def __call__(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        self._auth.add_auth(request)
        return dict(request.headers.items())


Signer = Callable[[str, str, dict[str, str], bytes | None], dict[str, str]]


class HttpClient:
    def __init__(self, base_url: str, sign: Signer | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._sign = sign

    def call(self, method: str, path: str, body: Any = None, timeout: float = 120) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        return self.call_raw(method, path, data, {"Content-Type": "application/json"}, timeout)

    def call_raw(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str], timeout: float = 120
    ) -> tuple[int, Any]:
        """Send `data` exactly as given; the answer's JSON body (None when empty)."""
        url = self.base_url + path
        if self._sign is not None:
            headers = self._sign(method, url, headers, data)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
