"""Client, CLI (`vector-tasks`) and operator console of the vector ingestion task service."""

from vector_tasks_client.client import TaskKindClient, VectorTasksClient
from vector_tasks_client.errors import (
    ApiError,
    CredentialsError,
    TaskChanged,
    TransportError,
    VectorTasksError,
    WaitTimeout,
)
from vector_tasks_client.kinds import Kind
from vector_tasks_client.models import (
    DataItem,
    DeletionTask,
    ItemFailure,
    Progress,
    RestartScope,
    TaskList,
    TaskStatus,
    TaskSummary,
    UpsertionTask,
)
from vector_tasks_client.transport import RetryPolicy


def __getattr__(name: str) -> object:
    # SigV4Signer imports botocore, which an unsigned client (the local stack's) never needs.
    if name == "SigV4Signer":
        from vector_tasks_client.signing import SigV4Signer

        return SigV4Signer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ApiError",
    "CredentialsError",
    "DataItem",
    "DeletionTask",
    "ItemFailure",
    "Kind",
    "Progress",
    "RestartScope",
    "RetryPolicy",
    "SigV4Signer",
    "TaskChanged",
    "TaskKindClient",
    "TaskList",
    "TaskStatus",
    "TaskSummary",
    "TransportError",
    "UpsertionTask",
    "VectorTasksClient",
    "VectorTasksError",
    "WaitTimeout",
]
