"""`python -m devstack.moto_server HOST PORT`: moto's server, one request at a time.

DynamoDB applies each conditional write and transaction atomically; moto's server handles
requests on several threads without a lock around them, so two conditional writes can both
pass their checks. Serialising requests gives the local stack AWS's guarantee. Step Functions
executions run on moto's own worker threads and call back over HTTP, so they are not blocked.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from devstack.event_sources import EVENT_SOURCE_AGENT

COUNTS_PATH = "/_devstack/requests"
_STATE_MACHINE_CREDENTIAL = "Credential=ak/"  # moto.stepfunctions.parser.asl.utils.boto_client


def _operation(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of a JSON-protocol request (`X-Amz-Target: DynamoDB_20120810.GetItem`)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    prefix, _, operation = target.rpartition(".")
    service = {"DynamoDB_20120810": "dynamodb", "AmazonSQS": "sqs", "AWSStepFunctions": "stepfunctions"}.get(
        prefix, prefix or "other"
    )
    return service, operation or environ.get("PATH_INFO", "")


def _caller(environ: dict[str, Any]) -> str:
    if EVENT_SOURCE_AGENT in environ.get("HTTP_USER_AGENT", ""):
        return "event source"
    if _STATE_MACHINE_CREDENTIAL in environ.get("HTTP_AUTHORIZATION", ""):
        return "state machine"
    return "function"


def counted(app: Any) -> Any:
    counts: Counter[tuple[str, str, str]] = Counter()

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            if environ["REQUEST_METHOD"] == "DELETE":
                counts.clear()
            body = json.dumps(
                [{"service": s, "operation": o, "caller": c, "count": n} for (s, o, c), n in counts.items()]
            )
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body.encode()]
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            counts[(*_operation(environ), _caller(environ))] += 1
        answer: Iterable[bytes] = app(environ, start_response)
        return answer

    return application


def serialised(app: Any) -> Any:
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            # Drain the body inside the lock: the write happens while it is produced.
            return list(app(environ, start_response))

    return application


def lighter_transaction_snapshots() -> None:
    """Make the snapshot moto takes before each TransactWriteItems (a deepcopy of every table it
    touches, to roll back) cost what the data costs, not what Python's generic copy costs.

    moto copies each item through pickle's protocol, its size-checked attribute dict one key at
    a time, and every stream record ever written. On a table holding a few thousand chunks a
    transaction took 100 ms and grew with the table; DynamoDB's do not. Stream records are never
    changed once written, so the copy shares them; items are copied attribute by attribute.
    """
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.models.table import StreamShard

    def copy_item(self: Item, memo: dict[int, Any]) -> Item:
        item: Item = object.__new__(Item)
        memo[id(self)] = item
        item.__dict__.update(self.__dict__)
        item.hash_key = copy.deepcopy(self.hash_key, memo)
        item.range_key = copy.deepcopy(self.range_key, memo)
        attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.update(attrs, {key: copy.deepcopy(value, memo) for key, value in self.attrs.items()})
        item.attrs = attrs
        return item

    def copy_shard(self: StreamShard, memo: dict[int, Any]) -> StreamShard:
        shard: StreamShard = object.__new__(StreamShard)
        memo[id(self)] = shard
        for name, value in self.__dict__.items():
            shard.__dict__[name] = list(value) if name == "items" else copy.deepcopy(value, memo)
        return shard

    setattr(Item, "__deepcopy__", copy_item)  # noqa: B010 - a method moto's classes lack
    setattr(StreamShard, "__deepcopy__", copy_shard)  # noqa: B010


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """End this server when the process that started it is gone, however it ended: the server
    runs in a session of its own (so Ctrl-C reaches the stack first) and would outlive it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    exit_with_parent()
    lighter_transaction_snapshots()
    run_simple(
        host,
        port,
        counted(serialised(DomainDispatcherApplication(create_backend_app))),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
