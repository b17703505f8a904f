"""What the client raises on purpose: every one a VectorTasksError, with a message to show."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vector_tasks_client.models import ErrorBody, ErrorDetail, ErrorResponse, GatewayMessage, TaskStatus

if TYPE_CHECKING:
    from vector_tasks_client.transport import Response


class VectorTasksError(Exception):
    """Base of the client's errors."""


class ApiError(VectorTasksError):
    """The service, or API Gateway in front of it, answered with an error status.

    `code` is the service's machine-readable code (None for API Gateway's own answers, which
    carry a message only); `request_id` is the service's request id, the one in its logs.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        details: Sequence[ErrorDetail] = (),
        task_status: TaskStatus | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.request_id = request_id
        self.details = list(details)
        self.task_status = task_status
        super().__init__(str(self))

    def __str__(self) -> str:
        what = f"HTTP {self.status}" + (f" {self.code}" if self.code else "")
        if self.request_id:
            what += f", request id {self.request_id}"
        lines = [f"{self.message} ({what})"]
        lines += [f"  {d.field}: {d.reason}" for d in self.details]
        return "\n".join(lines)

    @classmethod
    def from_response(cls, response: Response) -> ApiError:
        header_id = response.request_id
        try:
            body: Any = json.loads(response.body)
        except ValueError:
            body = None
        try:
            error: ErrorBody = ErrorResponse.model_validate(body).error
        except ValidationError:
            pass
        else:
            return cls(
                response.status,
                error.message,
                code=error.code,
                request_id=error.request_id or header_id,
                details=error.details or (),
                task_status=error.status,
            )
        try:
            message = GatewayMessage.model_validate(body).message
        except ValidationError:
            text = response.body.decode(errors="replace").strip()
            message = text[:300] if text else "(no body)"
        return cls(response.status, message, request_id=header_id)


class TransportError(VectorTasksError):
    """No answer from the endpoint after the retries the request allows.

    `sent` is False when no connection could be made, so the service cannot have acted on it.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        self.sent = sent
        super().__init__(message)


class UnexpectedAnswer(VectorTasksError):
    """A success status whose body is not what the API documents (a proxy's page, say)."""


class CredentialsError(VectorTasksError):
    """Requests cannot be signed: no AWS credentials, or no region to sign for."""


class WaitTimeout(VectorTasksError):
    """`wait` ran out of time; `tasks` are the tasks as last seen."""

    def __init__(self, message: str, tasks: Sequence[Any]) -> None:
        self.tasks = list(tasks)
        super().__init__(message)


class TaskChanged(VectorTasksError):
    """A task was restarted while its failures were being read page by page."""
