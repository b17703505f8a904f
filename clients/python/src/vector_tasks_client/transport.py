"""HTTP to the service: one connection pool, optional signing, retries with backoff.

Which failures are retried depends on whether the request may be sent again (`repeatable`):
a request that no connection took, and a 429 (throttled before any function ran), are always
retried; a 5xx or a lost answer only when the service acting on the request twice is harmless.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from vector_tasks_client.errors import TransportError

Signer = Callable[[str, str, dict[str, str], bytes | None], dict[str, str]]
Query = Mapping[str, str | int | None]

USER_AGENT = "vector-tasks-client/0.1.0"
THROTTLED = 429
SERVER_ERRORS = frozenset({500, 502, 503, 504})
log = logging.getLogger("vector_tasks_client")


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` requests at most; between them exponential backoff with full jitter."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy makes at least one attempt")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds before retry number `retry` (1 for the first); a Retry-After header wins."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


NO_RETRIES = RetryPolicy(attempts=1)


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-amzn-requestid") or self.headers.get("apigw-requestid")

    def json(self) -> Any:
        return json.loads(self.body)


def encode_query(query: Query | None) -> str:
    """Every character but RFC 3986's unreserved ones percent-encoded: the form SigV4 signs, so
    the URL sent and the URL signed are the same string."""
    pairs = [(k, str(v)) for k, v in (query or {}).items() if v is not None]
    return urlencode(pairs, quote_via=quote, safe="")


@dataclass
class Transport:
    endpoint: str  # scheme, host and any stage prefix: https://abc.execute-api.eu-west-1.amazonaws.com/prod
    signer: Signer | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # API Gateway answers within 29 s, so a read timeout past that means a lost answer.
    timeout: urllib3.Timeout = field(default_factory=lambda: urllib3.Timeout(connect=5.0, read=35.0))
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.endpoint = self.endpoint.rstrip("/")
        self._pool = urllib3.PoolManager(maxsize=4, retries=False)

    def url(self, path: str, query: Query | None = None) -> str:
        encoded = encode_query(query)
        return f"{self.endpoint}{path}" + (f"?{encoded}" if encoded else "")

    def send(
        self, method: str, path: str, *, query: Query | None = None, body: bytes | None = None, repeatable: bool
    ) -> Response:
        """The answer, whatever its status, once no retry is left or allowed.

        Raises TransportError when no answer came.
        """
        url = self.url(path, query)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            # Signed afresh each time: a signature is dated, and credentials may have refreshed.
            signed = self.signer(method, url, dict(headers), body) if self.signer is not None else headers
            try:
                raw = self._pool.request(
                    method, url, body=body, headers=signed, timeout=self.timeout, retries=False, redirect=False
                )
            except (NewConnectionError, ConnectTimeoutError) as exc:
                if last:
                    raise TransportError(f"cannot connect to {self.endpoint}: {_reason(exc)}", sent=False) from None
                retry_after = None
                log.debug("%s %s: no connection (%s), retrying", method, path, _reason(exc))
            except HTTPError as exc:
                if last or not repeatable:
                    raise TransportError(
                        f"no answer from {self.endpoint} to {method} {path}: {_reason(exc)}", sent=True
                    ) from None
                retry_after = None
                log.debug("%s %s: no answer (%s), retrying", method, path, _reason(exc))
            else:
                response = Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw.data)
                retryable = response.status == THROTTLED or (response.status in SERVER_ERRORS and repeatable)
                if last or not retryable:
                    return response
                retry_after = _retry_after(response)
                log.debug("%s %s: HTTP %s, retrying", method, path, response.status)
            self.sleep(self.retry.delay(attempt, self.rng, retry_after))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        self._pool.clear()


def _retry_after(response: Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _reason(exc: Exception) -> str:
    """urllib3 wraps the socket's error: the innermost message is the one a person needs."""
    reason = getattr(exc, "reason", None)
    return str(reason or exc)
