"""Handlers that misbehave on purpose, for tests of what the local front and runtime enforce."""

from __future__ import annotations

import threading
from typing import Any

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
