"""Domain errors. `handlers/http.py` maps each class (or its nearest listed base) to one HTTP status and
error code."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `message` is safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TaskNotFound(DomainError):
    def __init__(self, kind: str, task_id: str) -> None:
        super().__init__(f"No {kind} task with task_id '{task_id}'")
        self.task_id = task_id


class TaskIdConflict(DomainError):
    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"task_id '{task_id}' already names a task created with a different request body; "
            "use a new task_id or resend the original body"
        )
        self.task_id = task_id


class InvalidTransition(DomainError):
    def __init__(self, action: str, task_id: str, status: str) -> None:
        super().__init__(f"Cannot {action} task '{task_id}' while it is {status}")
        self.status = status


class AttemptMismatch(DomainError):
    """The caller named the attempt it expects the task to be at, and the task is elsewhere."""

    def __init__(self, action: str, task_id: str, expected: int, actual: int, status: str) -> None:
        super().__init__(
            f"Cannot {action} task '{task_id}' at attempt {expected}: it is at attempt {actual} ({status}) now"
        )
        self.status = status
        self.attempt = actual


class CreateInterrupted(DomainError):
    """A create failed after its task_id was settled: the same request again with that task_id
    completes it (the error answer carries the id, generated ones included)."""

    def __init__(self, kind: str, task_id: str) -> None:
        super().__init__(
            f"Creating {kind} task '{task_id}' was interrupted by an internal error; send the same request "
            f'again with "task_id": "{task_id}" to complete it'
        )
        self.task_id = task_id


class ItemsExpired(DomainError):
    """A restart needs the items it redoes, and they are no longer stored."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"Task '{task_id}' cannot be restarted: the items it would redo are no longer stored (a task's "
            "items are kept for a limited time after they were written, see the service's RetentionDays). "
            "Create a new task with the items instead."
        )
        self.task_id = task_id


class NothingToRetry(DomainError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task '{task_id}' has no failed or unprocessed items to retry; use scope=all")


class TransitionStillRunning(DomainError):
    def __init__(self, action: str, task_id: str) -> None:
        super().__init__(f"The {action} of task '{task_id}' is still being applied; check the task's status shortly")


class UnknownEmbeddingModel(DomainError):
    def __init__(self, model_id: str, known: list[str]) -> None:
        super().__init__(f"Unknown embedding_model_id '{model_id}'; deployed models: {', '.join(known)}")
        self.model_id = model_id


class TaskCannotRun(DomainError):
    """The task as a whole cannot be carried out: a definitive answer (access denied, the model
    or endpoint does not exist, vectors of the wrong dimension, its items are gone); it ends
    `failed` with this message as its `error`. Transient trouble (timeouts, throttling, 5xx,
    connection errors) is never this: the chunk goes back to the queue instead."""


class ChunkNotStored(LookupError):
    """A chunk a message points at is not in the store: the create or restart that made the
    attempt died before storing it, or it expired (or is past its expiry, not yet deleted)."""


class ItemTooLarge(DomainError):
    def __init__(self, object_id: str, size: int, limit: int) -> None:
        super().__init__(f"Item '{object_id}' is {size} bytes as JSON; the limit per item is {limit} bytes")


class ItemNotUnicode(DomainError):
    def __init__(self, object_id: str) -> None:
        super().__init__(
            f"Item '{object_id}' contains a lone UTF-16 surrogate escape (such as \\ud83d), which is not "
            "valid Unicode text"
        )


class RequestTooLarge(DomainError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"Request body is {size} bytes; the limit is {limit} bytes")
