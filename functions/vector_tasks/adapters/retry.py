"""Retrying calls to a remote service: exponential backoff with full jitter, within a deadline."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    # The jitter's random source and the clock deadlines are read from: injected by tests so
    # that no outcome depends on real randomness or on how fast the machine is.
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)]."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def time_left(self, deadline: float) -> float:
        return deadline - self.clock()


class RetriesExhausted(Exception):
    """Every attempt failed transiently; `last` is the last error."""

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last}")
        self.last = last
        self.attempts = attempts


class OutOfTime(Exception):
    """The invocation's deadline came before the work was done. Nothing is decided about the
    items: the chunk's message is reported as failed and comes back from the queue."""


class StillUnavailable(Exception):
    """A service stayed unavailable (connection errors, timeouts, throttling, 5xx) through every
    retry within the deadline. Transient is never permanent: nothing is decided about the
    items, the chunk's message is reported as failed and comes back from the queue (past the
    redrive limit, the dead-letter path fails its items)."""


def call_with_retries(
    call: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried while it raises transient errors, at most `policy.attempts` times and
    never sleeping past `deadline` (on `policy.clock`); then RetriesExhausted."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            pause = policy.delay(attempt)
            out_of_time = deadline is not None and policy.time_left(deadline) <= pause
            if attempt >= policy.attempts or out_of_time:
                raise RetriesExhausted(exc, attempt) from exc
            sleep(pause)
