"""Making one AWS or OpenSearch call fail, for the crash-point tests (tests/integration/test_crash_points.py).

Every call the code makes passes two hooks: botocore's `before-call` / `after-call` events (on
every session, as devstack.permissions installs its own) and opensearch-py's
`Transport.perform_request`. Each call is named by a *site*: what it is (`dynamodb.GetItem`,
`opensearch.POST /_bulk`) and where it comes from (the innermost function of the package on the
stack, or `state machine` for the calls moto's Step Functions makes for a Task state), and
counted per site while a `FaultPlan` is armed. The plan fails one occurrence of one site, once,
in one of three ways:

- `before`: the call raises before it is sent (a connection error once retries are spent);
- `lost`: the call is applied, then its answer is lost (a read timeout);
- `dies`: the call is applied, then the process dies (ProcessDied, which no `except
  Exception` catches; the test's runtime turns it into Lambda's function error).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.handlers
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import ConnectionTimeout
from opensearchpy.transport import Transport

MODES = ("before", "lost", "dies")
# Step Functions and the SQS event source run on AWS's side: their calls fail or lose their
# answers, but they never "die".
SERVICE_SIDE_MODES = ("before", "lost")
STATE_MACHINE = "state machine"
EVENT_SOURCE = "event source"


class ProcessDied(BaseException):
    """The process ended right after a call was applied."""


@dataclass(frozen=True)
class Site:
    call: str  # e.g. "dynamodb.TransactWriteItems", "opensearch.POST /_bulk"
    caller: str  # e.g. "DynamoTaskStore.record_chunk", or STATE_MACHINE
    occurrence: int  # 0 for the first such call while the plan is armed

    def __str__(self) -> str:
        return f"{self.call} @ {self.caller} #{self.occurrence}"

    @property
    def modes(self) -> tuple[str, ...]:
        return SERVICE_SIDE_MODES if self.caller in (STATE_MACHINE, EVENT_SOURCE) else MODES


def parse_site(text: str) -> Site:
    """The Site `str(site)` printed."""
    call, _, rest = text.partition(" @ ")
    caller, _, occurrence = rest.rpartition(" #")
    return Site(call, caller, int(occurrence))


def site_modes(text: str) -> tuple[str, ...]:
    return parse_site(text).modes


@dataclass
class FaultPlan:
    """Records the sites called while armed; fails `target` in `mode`, once."""

    target: Site | None = None
    mode: str = "before"
    armed: bool = False
    seen: list[Site] = field(default_factory=list)
    fired: Site | None = None
    _counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _site(self, call: str) -> Site | None:
        with self._lock:
            if not self.armed:
                return None
            caller = _caller()
            site = Site(call, caller, self._counts[(call, caller)])
            self._counts[(call, caller)] += 1
            self.seen.append(site)
            return site

    def _fires(self, site: Site | None, mode: str) -> bool:
        with self._lock:
            if site is None or self.fired is not None or site != self.target or self.mode != mode:
                return False
            self.fired = site
            return True

    def call(
        self, call: str, send: Callable[[], Any], before: Callable[[], BaseException], lost: Callable[[], BaseException]
    ) -> Any:
        """`send()` as the plan says: raising `before()` instead, `lost()` or ProcessDied after."""
        site = self._site(call)
        if self._fires(site, "before"):
            raise before()
        result = send()
        if self._fires(site, "lost"):
            raise lost()
        if self._fires(site, "dies"):
            raise ProcessDied(str(site))
        return result


_ACTIVE: FaultPlan | None = None


def _caller() -> str:
    """Who makes the call: the innermost public function of the package on this thread's stack
    (`DynamoTaskStore.get_task`, not the private helper it calls), the event source's poller,
    or the state machine (moto's Step Functions running a Task state)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        name = frame.f_code.co_qualname.replace(".<locals>.<lambda>", "")
        if module.startswith("vector_tasks.") and not name.rsplit(".", 1)[-1].startswith(("_", "<")):
            return name
        if module == "devstack.event_sources":
            return EVENT_SOURCE
        if module.startswith("moto.stepfunctions"):
            return STATE_MACHINE
        frame = frame.f_back  # type: ignore[assignment]
    raise AssertionError("a call from outside the package, the event source and the state machines")


# -- botocore ----------------------------------------------------------------------------------

_PENDING = threading.local()


def _before_call(model: Any, context: dict[str, Any], **_: Any) -> Any:
    plan = _ACTIVE
    if plan is None:
        return None
    call = f"{model.service_model.service_name}.{model.name}"
    site = plan._site(call)
    context["crash_site"] = site
    if plan._fires(site, "before"):
        raise EndpointConnectionError(endpoint_url=f"https://{model.service_model.endpoint_prefix}.amazonaws.com")
    return None


def _after_call(model: Any, context: dict[str, Any], **_: Any) -> None:
    plan = _ACTIVE
    site = context.get("crash_site")
    if plan is None or site is None:
        return
    if plan._fires(site, "lost"):
        raise ReadTimeoutError(endpoint_url=f"https://{model.service_model.endpoint_prefix}.amazonaws.com")
    if plan._fires(site, "dies"):
        raise ProcessDied(str(site))


_BOTOCORE_HANDLERS = (("before-call", _before_call), ("after-call", _after_call))


# -- opensearch-py -----------------------------------------------------------------------------

_real_perform_request = Transport.perform_request


def _opensearch_call(method: str, url: str) -> str:
    path = url.split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    shape = "/".join(p if p.startswith("_") else "{index}" for p in parts)
    return f"opensearch.{method} /{shape}"


def _perform_request(self: Transport, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
    plan = _ACTIVE
    if plan is None:
        return _real_perform_request(self, method, url, *args, **kwargs)
    return plan.call(
        _opensearch_call(method, url),
        lambda: _real_perform_request(self, method, url, *args, **kwargs),
        lambda: OpenSearchConnectionError("N/A", "injected: connection refused", None),
        lambda: ConnectionTimeout("TIMEOUT", "injected: read timed out", None),
    )


@contextmanager
def hooks_installed() -> Iterator[None]:
    """The hooks on every botocore session made from now on and on opensearch-py's transport."""
    for entry in _BOTOCORE_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(entry)
    Transport.perform_request = _perform_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        for entry in _BOTOCORE_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(entry)
        Transport.perform_request = _real_perform_request  # type: ignore[method-assign]


@contextmanager
def armed(plan: FaultPlan | None) -> Iterator[FaultPlan | None]:
    """Count (and fail) the calls made in this block; calls after it pass untouched. None: a
    block in which nothing is counted or failed."""
    global _ACTIVE
    if plan is None:
        yield None
        return
    _ACTIVE, plan.armed = plan, True
    try:
        yield plan
    finally:
        plan.armed = False
        _ACTIVE = None
