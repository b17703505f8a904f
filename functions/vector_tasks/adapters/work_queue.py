"""The SQS queues: the work queue (one message per chunk) and the import queue (one message
per step of reading an import's source)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3

from vector_tasks.domain.model import ChunkRef
from vector_tasks.domain.sources import ImportStep
from vector_tasks.models.messages import ChunkMessage, ImportStepMessage

_SQS_BATCH = 10
_SEND_ATTEMPTS = 5


class SqsWorkQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._queue_url = queue_url
        self._client_instance = client

    def open(self) -> None:
        """Build the SDK client now (during a function's init), not in the first invocation."""
        self._client  # noqa: B018 - built on first access

    @property
    def _client(self) -> Any:
        if self._client_instance is None:
            self._client_instance = boto3.client("sqs")
        return self._client_instance

    def send(self, refs: Iterable[ChunkRef]) -> None:
        self.send_bodies([ChunkMessage.of(ref).model_dump_json() for ref in refs])

    def send_bodies(self, pending: list[str]) -> None:
        """Send every body, retrying the entries SQS reports as failed; raises if some never go."""
        for start in range(0, len(pending), _SQS_BATCH):
            batch = {str(i): body for i, body in enumerate(pending[start : start + _SQS_BATCH])}
            for _ in range(_SEND_ATTEMPTS):
                response = self._client.send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": key, "MessageBody": body} for key, body in batch.items()],
                )
                batch = {f["Id"]: batch[f["Id"]] for f in response.get("Failed", [])}
                if not batch:
                    break
            if batch:
                raise RuntimeError(f"SQS refused {len(batch)} messages after {_SEND_ATTEMPTS} attempts")


class SqsImportQueue(SqsWorkQueue):
    def send_steps(self, steps: Iterable[ImportStep]) -> None:
        self.send_bodies([ImportStepMessage.of(step).model_dump_json() for step in steps])
