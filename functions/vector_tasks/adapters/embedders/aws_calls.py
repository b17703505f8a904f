"""How calls to Bedrock and SageMaker runtimes fail, and what each failure means for a task."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

from botocore.exceptions import ClientError, HTTPClientError

from vector_tasks.adapters.retry import RetriesExhausted, RetryPolicy, StillUnavailable, call_with_retries
from vector_tasks.domain.errors import TaskCannotRun
from vector_tasks.domain.registry import EmbeddingModelSpec

T = TypeVar("T")

# Worth another try after a pause: throttling, capacity and the service's own 5xx.
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalServerException",
        "InternalFailure",
        "ModelTimeoutException",
        "ModelNotReadyException",
    }
)
# The model cannot be used by this deployment at all: no retry helps, the task fails. Each
# code's reason for the task's `error`: what went wrong and what to fix, never AWS's own
# message, which names the role's ARN and the account (it goes to the worker's log).
_CREDENTIALS_REFUSED = "the worker's credentials were refused ({code}); check the worker's role and its trust policy"
_FATAL_REASONS = {
    "AccessDeniedException": (
        "the worker's role may not call it ({code}); allow {action} on it in the worker's role"
        " (template.yaml) and, for Bedrock, enable access to the model in the Bedrock console"
    ),
    "ResourceNotFoundException": (
        "it does not exist in this account and region ({code}); deploy it or correct its provider_model in models.json"
    ),
    "UnrecognizedClientException": _CREDENTIALS_REFUSED,
    "ExpiredTokenException": _CREDENTIALS_REFUSED,
    "InvalidSignatureException": _CREDENTIALS_REFUSED,
}
log = logging.getLogger(__name__)
# SageMaker wraps what the model container answered in ModelError, with the container's own
# status: a 5xx or 429 from the container is its trouble, not the input's.
_CONTAINER_ERROR = "ModelError"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


def _container_status(exc: ClientError) -> int:
    return int(exc.response.get("OriginalStatusCode") or 0)


def is_transient(exc: BaseException) -> bool:
    """Worth another try: throttling, capacity, 5xx (the container's too), timeouts and every
    connection error (an endpoint that cannot be reached now may be reachable in a minute)."""
    if isinstance(exc, ClientError):
        if error_code(exc) == _CONTAINER_ERROR:
            container = _container_status(exc)
            return container == 429 or container >= 500
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in _TRANSIENT_CODES or status == 429 or 500 <= status < 600
    # Connection refused or closed, DNS, connect and read timeouts: all HTTPClientError.
    return isinstance(exc, HTTPClientError)


def unusable(spec: EmbeddingModelSpec, reason: str) -> TaskCannotRun:
    return TaskCannotRun(f"Model '{spec.id}' ({spec.provider} {spec.provider_model}) cannot be used: {reason}")


def _invoke_action(spec: EmbeddingModelSpec) -> str:
    return "sagemaker:InvokeEndpoint" if spec.provider.startswith("sagemaker") else "bedrock:InvokeModel"


def refused(spec: EmbeddingModelSpec, exc: ClientError, reason: str) -> TaskCannotRun:
    """TaskCannotRun with `reason` for the task; AWS's own message (ARNs, account) is logged."""
    log.warning(
        "Model %s cannot be used: %s: %s", spec.id, error_code(exc), error_message(exc), extra={"model": spec.id}
    )
    return unusable(spec, reason)


def invoke(
    spec: EmbeddingModelSpec,
    call: Callable[[], T],
    policy: RetryPolicy,
    deadline: float,
    sleep: Callable[[float], None],
) -> T:
    """`call()` with retries; fatal errors become TaskCannotRun, transient ones that outlast the
    retries or the deadline StillUnavailable (the chunk comes back from the queue). Other
    ClientErrors (a text the model rejects) propagate for the caller to attribute."""
    try:
        return call_with_retries(call, is_transient, policy, deadline, sleep)
    except RetriesExhausted as exc:
        raise StillUnavailable(
            f"model '{spec.id}' still unavailable after {exc.attempts} attempts: {exc.last}"
        ) from exc
    except ClientError as exc:
        code = error_code(exc)
        if code in _FATAL_REASONS:
            raise refused(spec, exc, _FATAL_REASONS[code].format(code=code, action=_invoke_action(spec))) from exc
        raise


class RuntimeEmbedder:
    """What the Bedrock and SageMaker embedders share: the model, a lazily made runtime
    client, and `call` with the retry policy and failure classes above."""

    def __init__(
        self,
        spec: EmbeddingModelSpec,
        client_factory: Callable[[], Any],
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec = spec
        self._client_factory = client_factory
        self._policy = policy or RetryPolicy(attempts=6, base_delay=0.5, max_delay=8.0)
        self._sleep = sleep

    @cached_property
    def client(self) -> Any:
        return self._client_factory()

    def call(self, request: Callable[[], T], deadline: float) -> T:
        return invoke(self.spec, request, self._policy, deadline, self._sleep)


def check_dimension(spec: EmbeddingModelSpec, size: int) -> None:
    if size != spec.dimension:
        raise unusable(spec, f"it returned {size}-dimensional vectors; the registry declares {spec.dimension}")
