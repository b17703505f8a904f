"""Completion events to EventBridge, from the task table's stream (CompletionEventsFunction).

A stream record holds the task item before and after a write; `final_transition` reads the
pair and keeps the writes that moved a task into done, failed or canceled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

from vector_tasks.adapters.task_codec import task_from
from vector_tasks.adapters.task_keys import TASK_SK
from vector_tasks.domain.lifecycle import reached_final_status
from vector_tasks.domain.model import Task
from vector_tasks.models.events import TaskFinished


def final_transition(old_image: Mapping[str, Any] | None, new_image: Mapping[str, Any] | None) -> Task | None:
    """The task a stream record moved into a final status, else None (another item, another
    write). Images are the record's items, deserialized."""
    if not new_image or new_image.get("sk") != TASK_SK:
        return None
    after = task_from(dict(new_image))
    before = task_from(dict(old_image)) if old_image else None
    return after if reached_final_status(before, after) else None


class EventBridgeCompletionEvents:
    def __init__(self, bus_name: str, client: Any = None) -> None:
        self._bus_name = bus_name
        self._client_instance = client

    @property
    def _client(self) -> Any:
        if self._client_instance is None:
            self._client_instance = boto3.client("events")
        return self._client_instance

    def publish(self, task: Task) -> None:
        """One event; raises when EventBridge did not take it (the stream delivers it again)."""
        response = self._client.put_events(
            Entries=[
                {
                    "EventBusName": self._bus_name,
                    "Source": TaskFinished.event_source,
                    "DetailType": TaskFinished.detail_type,
                    "Detail": TaskFinished.from_task(task).model_dump_json(),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            failed = response["Entries"][0]
            raise RuntimeError(f"EventBridge refused the event: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}")
