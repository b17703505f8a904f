"""Handlers that misbehave on purpose or report on their process, for tests of what the local
front and runtime enforce."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import boto3
from botocore.exceptions import ClientError

release_slow = threading.Event()


def echo(event: dict[str, Any], _: Any) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": event["body"] or ""}


def huge_response(event: dict[str, Any], _: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": "x" * (6 * 1024 * 1024 + 1)}


def slow(event: dict[str, Any], _: Any) -> dict[str, Any]:
    release_slow.wait(30)
    return {"statusCode": 200, "body": "late"}


def crash(event: dict[str, Any], _: Any) -> dict[str, Any]:
    raise RuntimeError("the handler failed")


# -- probes of a function's container (devstack.function_host) --------------------------------


def environment(event: dict[str, Any], _: Any) -> dict[str, str]:
    """What the process the handler runs in has in its environment."""
    return dict(os.environ)


def nap(event: dict[str, Any], _: Any) -> dict[str, int]:
    """Sleeps `event["seconds"]`, then says which process it ran in."""
    time.sleep(event["seconds"])
    return {"pid": os.getpid()}


def list_queues_from_a_thread(event: dict[str, Any], _: Any) -> dict[str, str]:
    """An AWS call from a thread that did not copy the caller's context."""
    answer: dict[str, str] = {}

    def call() -> None:
        try:
            boto3.client("sqs").list_queues()
            answer["outcome"] = "allowed"
        except ClientError as exc:
            answer["outcome"] = exc.response["Error"]["Code"]
            answer["message"] = exc.response["Error"]["Message"]

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(30)
    return answer
