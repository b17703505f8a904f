"""The local stack's SendMessage without counting the queue (devstack/moto_server.py, applied to
this process by tests/conftest.py): a send no longer looks at every message already queued,
and the queue's counts are still right wherever SQS answers them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Message


@pytest.fixture
def queue(aws_credentials: None) -> Any:
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        yield sqs, url


def counts(sqs: Any, url: str) -> tuple[int, int, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return (int(attributes[names[0]]), int(attributes[names[1]]), int(attributes[names[2]]))


def test_a_send_does_not_look_at_the_messages_queued(queue: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sqs, url = queue
    for start in range(0, 500, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"m{start + n}"} for n in range(10)]
        )
    looked = 0
    visible = Message.visible

    def counting(self: Message) -> bool:
        nonlocal looked
        looked += 1
        return bool(visible.fget(self))  # type: ignore[attr-defined]

    monkeypatch.setattr(Message, "visible", property(counting))
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": "more"} for n in range(10)])
    assert looked == 0
    assert counts(sqs, url) == (510, 0, 0)
    assert looked > 0  # GetQueueAttributes counts


def test_the_counts_follow_receives_and_delays(queue: Any) -> None:
    sqs, url = queue
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(4)])
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    assert counts(sqs, url) == (4, 0, 1)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
    assert len(received) == 3
    assert counts(sqs, url) == (1, 3, 1)
