"""Retrying calls to a remote service: exponential backoff with full jitter, within a deadline."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class RetriesExhausted(Exception):
    """Every attempt failed transiently; `last` is the last error."""

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last}")
        self.last = last
        self.attempts = attempts


def call_with_retries(
    call: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried while it raises transient errors, at most `policy.attempts` times and
    never sleeping past `deadline` (time.monotonic()); then RetriesExhausted."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            pause = policy.delay(attempt)
            out_of_time = deadline is not None and time.monotonic() + pause >= deadline
            if attempt >= policy.attempts or out_of_time:
                raise RetriesExhausted(exc, attempt) from exc
            sleep(pause)
