"""A clock and a jitter source for tests: retries and deadlines without real time or luck."""

from __future__ import annotations

import random


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FixedJitter(random.Random):
    """A jitter source that always draws `fraction` of the allowed range."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction
