"""EventBridge Scheduler schedules (SAM `ScheduleV2` events): invoke a function every period.

`rate(N minutes|hours|days)` as the template declares it; the local stack can run every
schedule faster (`make run` reads RECONCILE_EVERY, seconds). The Scheduler invokes a Lambda
asynchronously: a failed run is logged and the next one comes at its time, as the template's
`MaximumRetryAttempts: 0` asks.
"""

from __future__ import annotations

import json
import logging
import re
import threading

from devstack.lambda_runtime import LocalFunction
from devstack.template import ScheduleSource

log = logging.getLogger("devstack.schedules")
_RATE = re.compile(r"rate\((?P<count>\d+) (?P<unit>minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """The period of a `rate(...)` expression; cron and at expressions are not run locally."""
    matched = _RATE.fullmatch(expression.strip())
    if matched is None:
        raise ValueError(f"schedule expression {expression!r}: only rate(N minutes|hours|days) runs locally")
    return int(matched["count"]) * _UNIT_SECONDS[matched["unit"].rstrip("s")]


class ScheduledInvoker:
    def __init__(self, function: LocalFunction, source: ScheduleSource, every: float | None = None) -> None:
        """`every` (seconds) replaces the expression's period."""
        self.function = function
        self.period = every if every is not None else rate_seconds(source.expression)
        self.event = json.loads(source.input)
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{function.spec.logical_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.function.invoke(self.event)
            except Exception:
                log.exception("scheduled run of %s failed", self.function.spec.logical_id)
            self.runs += 1
