"""SQS long polls on the local stack's moto server (devstack/moto_server.py): they wait for a
message without holding the server, which applies every other request one at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.processes import start_moto
from tests.support.local_stack import free_port


@pytest.fixture(scope="module")
def sqs() -> Iterator[Any]:
    port = free_port()
    server = start_moto(port, None)
    try:
        yield boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(read_timeout=30, retries={"max_attempts": 1}),
        )
    finally:
        server.stop()


def queue(sqs: Any, name: str) -> str:
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url


def receive(sqs: Any, url: str, wait: int, **extra: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=wait, **extra).get(
        "Messages", []
    )
    return messages


def test_a_long_poll_answers_with_the_message_sent_while_it_waits(sqs: Any) -> None:
    url = queue(sqs, "sent-while-waiting")
    received: list[list[dict[str, Any]]] = []
    poll = threading.Thread(target=lambda: received.append(receive(sqs, url, wait=20)))
    poll.start()
    time.sleep(0.5)  # the poll is waiting, mostly; either way the message is its answer
    sqs.send_message(QueueUrl=url, MessageBody="hello")  # served while the poll waits
    poll.join(timeout=30)
    assert [m["Body"] for m in received[0]] == ["hello"]


def test_other_requests_are_served_while_a_long_poll_waits(sqs: Any) -> None:
    waiting, other = queue(sqs, "waiting"), queue(sqs, "other")
    poll = threading.Thread(target=lambda: receive(sqs, waiting, wait=3))
    poll.start()
    sqs.send_message(QueueUrl=other, MessageBody="x")
    assert [m["Body"] for m in receive(sqs, other, wait=0)] == ["x"]
    assert poll.is_alive()  # the other queue's requests did not wait for it
    poll.join(timeout=10)


def test_a_long_poll_of_an_empty_queue_answers_nothing_after_its_wait(sqs: Any) -> None:
    url = queue(sqs, "empty")
    started = time.monotonic()
    assert receive(sqs, url, wait=1) == []
    assert time.monotonic() - started >= 1.0  # it waited (a lower bound: it cannot flake)


def test_a_message_whose_visibility_timeout_ends_during_the_wait_is_received(sqs: Any) -> None:
    url = queue(sqs, "redelivered")
    sqs.send_message(QueueUrl=url, MessageBody="again")
    assert len(receive(sqs, url, wait=0, VisibilityTimeout=1)) == 1  # received, not deleted
    assert [m["Body"] for m in receive(sqs, url, wait=10)] == ["again"]


def test_a_wait_past_sqs_bound_is_refused_as_sqs_refuses_it(sqs: Any) -> None:
    with pytest.raises(ClientError) as refused:
        receive(sqs, queue(sqs, "bound"), wait=21)
    assert refused.value.response["Error"]["Code"] in {"InvalidParameterValue", "InvalidParameterValueException"}
