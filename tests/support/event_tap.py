"""What a consumer of the completion events sees: a rule on the bus with an SQS target.

The same wiring a subscriber deploys (an EventBridge rule matching the service's source, its
target a queue), on moto's EventBridge, which delivers rule matches to SQS as AWS does.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from vector_tasks.models.events import TaskFinished


class EventTap:
    def __init__(self, events: Any, sqs: Any, bus: str = "default") -> None:
        self._sqs = sqs
        name = f"completion-tap-{uuid.uuid4().hex[:8]}"
        self.queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps({"source": [TaskFinished.event_source]}),
            State="ENABLED",
        )
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    def received(self) -> list[dict[str, Any]]:
        """The events delivered since the last call (EventBridge's envelope, `detail` decoded)."""
        events: list[dict[str, Any]] = []
        while messages := self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                events.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return events

    def transitions(self) -> list[tuple[str, str, int, str]]:
        """(kind, task id, attempt, status) of each event received since the last call."""
        return [
            (e["detail"]["kind"], e["detail"]["id"], e["detail"]["attempt"], e["detail"]["status"])
            for e in self.received()
        ]
