"""`python -m devstack.moto_server HOST PORT`: moto's server, one request at a time.

DynamoDB applies each conditional write and transaction atomically; moto's server handles
requests on several threads without a lock around them, so two conditional writes can both
pass their checks. Serialising requests gives the local stack AWS's guarantee. Step Functions
executions run on moto's own worker threads and call back over HTTP, so they are not blocked.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import socket
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.responses import BaseResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.utilities.aws_headers import gen_amzn_requestid_long
from werkzeug.serving import run_simple

from devstack.event_sources import EVENT_SOURCE_AGENT

COUNTS_PATH = "/_devstack/requests"
# SQS's bound on ReceiveMessage's WaitTimeSeconds.
MAX_LONG_POLL_SECONDS = 20
# A long poll looks again this often when no send woke it: messages also become visible when
# their visibility timeout or delay ends.
LONG_POLL_RECHECK_SECONDS = 0.5
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
    """One request at a time, except an SQS long poll's wait (`long_polled`)."""
    lock = threading.Lock()
    arrivals = _Arrivals()

    def one_at_a_time(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:
            # Drain the body inside the lock: the write happens while it is produced.
            return list(app(environ, start_response))

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        service, operation = _operation(environ)
        if (service, operation) == ("sqs", "ReceiveMessage"):
            return long_polled(one_at_a_time, arrivals, environ, start_response)
        answer = one_at_a_time(environ, start_response)
        if service == "sqs":
            arrivals.changed()
        return answer

    return application


class _Arrivals:
    """A count of the SQS requests that may have made messages receivable (a send, a visibility
    change), and a condition to wait for the next one."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.count = 0

    def changed(self) -> None:
        with self._condition:
            self.count += 1
            self._condition.notify_all()

    def wait_past(self, seen: int, timeout: float) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self.count != seen, min(timeout, LONG_POLL_RECHECK_SECONDS))


def long_polled(
    app: Callable[[dict[str, Any], Any], list[bytes]],
    arrivals: _Arrivals,
    environ: dict[str, Any],
    start_response: Any,
) -> list[bytes]:
    """SQS long polling without holding the server: the receive runs as a short poll (moto's
    own long poll sleeps inside the request, so inside the lock, blocking every other caller),
    and again after each send or visibility change, and every LONG_POLL_RECHECK_SECONDS (a
    message whose visibility timeout ends), until a message comes or the wait is over. A request
    without a valid WaitTimeSeconds goes to moto as it is, which answers or refuses it as SQS
    does."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    try:
        request = json.loads(body)
        wait = request.get("WaitTimeSeconds")
    except (ValueError, AttributeError):
        wait = None
    if not isinstance(wait, int) or not 0 < wait <= MAX_LONG_POLL_SECONDS:
        return app(_with_body(environ, body), start_response)
    short_poll = json.dumps({**request, "WaitTimeSeconds": 0}).encode()
    deadline = time.monotonic() + wait
    captured: list[Any] = []  # the last short poll's status, headers and exc_info

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured[:] = [status, headers, exc_info]
        return lambda data: None

    while True:
        seen = arrivals.count
        answer = app(_with_body(environ, short_poll), capture)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not captured[0].startswith("200") or json.loads(b"".join(answer)).get("Messages"):
            start_response(*captured)
            return answer
        arrivals.wait_past(seen, remaining)


def _with_body(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    return {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}


# While a TransactWriteItems takes its snapshot: per table, the keys its Update operations
# name (the only items a transaction changes in place).
_snapshotting = threading.local()


def lighter_transaction_snapshots() -> None:
    """Make the snapshot moto takes before each TransactWriteItems (a deepcopy of every table it
    touches, to roll back) cost what the transaction writes, not what the table holds.

    moto deep-copies every item of the table, through pickle's protocol, and every stream
    record ever written: on a table holding a few thousand chunks a transaction took 100 ms and
    grew with the table; DynamoDB's do not. A Put or a Delete replaces or removes an item
    without changing it, and stream records never change once written, so the snapshot shares
    them; it copies only the items the transaction's Updates change in place (attribute by
    attribute), and the table's own small state. A copy outside a transaction (a backup) still
    copies every item.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.models.table import StreamShard, Table

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

    def copy_table(self: Table, memo: dict[int, Any]) -> Table:
        updated = getattr(_snapshotting, "updated", None)
        table: Table = object.__new__(type(self))
        memo[id(self)] = table
        for name, value in self.__dict__.items():
            if name != "items" or updated is None:
                table.__dict__[name] = copy.deepcopy(value, memo)
        if updated is None:
            return table
        ranged = self.range_key_attr is not None
        items = defaultdict(dict, {h: dict(r) for h, r in self.items.items()} if ranged else self.items)
        for hash_key, range_key in updated.get(self.name, ()):
            holder = items.get(hash_key) if ranged else items
            key = range_key if ranged else hash_key
            if holder is not None and key in holder:
                holder[key] = copy.deepcopy(holder[key], memo)
        table.items = items
        return table

    transact_write_items = DynamoDBBackend.transact_write_items

    def transact_with_light_snapshot(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        updated: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
        for entry in transact_items:
            for op_type, op in entry.items():
                table = self.tables.get(str(op.get("TableName"))) if isinstance(op, dict) else None
                if op_type == "Update" and table is not None:
                    # A key moto refuses is refused before anything changes.
                    with contextlib.suppress(Exception):
                        updated[table.name].append(self.get_keys_value(table, op["Key"]))
        _snapshotting.updated = updated
        try:
            transact_write_items(self, transact_items)
        finally:
            _snapshotting.updated = None

    setattr(Item, "__deepcopy__", copy_item)  # noqa: B010 - methods moto's classes lack
    setattr(StreamShard, "__deepcopy__", copy_shard)  # noqa: B010
    setattr(Table, "__deepcopy__", copy_table)  # noqa: B010
    DynamoDBBackend.transact_write_items = transact_with_light_snapshot  # type: ignore[method-assign]
    # moto puts the request id into XML answers with a regex run over every answer; on the JSON
    # answers of DynamoDB, SQS and streams (hundreds of KB of chunks) it finds nothing, slowly.
    # Elsewhere, what moto's own does: the status as text, the request id header.
    enrich_response = BaseResponse._enrich_response

    def enrich_xml_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" in body:
            return enrich_response(headers, body)
        if "status" in headers:
            headers["status"] = str(headers["status"])
        gen_amzn_requestid_long(headers)
        return headers, body

    BaseResponse._enrich_response = staticmethod(enrich_xml_response)  # type: ignore[method-assign]


# DynamoDB's bound on the aggregate size of the items of one TransactWriteItems. Stated here on
# its own, not taken from the task store's twin: the emulator must not share the code's mistakes.
TRANSACTION_MAX_BYTES = 4 * 1024 * 1024


def transactions_limited_to_4_mb() -> None:
    """Refuse a TransactWriteItems whose items add up to more than 4 MB, as DynamoDB does
    (moto checks only the count of actions). DynamoDB Local refuses Puts past 4 MB with this
    message and lets 30 Updates of 380 KB items through; AWS documents "the aggregate size of
    the items", so this counts the stricter way: a Put's new item, and the item as stored for
    an Update, a Delete or a ConditionCheck (an Update's new attributes are small wherever
    this code makes one)."""
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    transact_write_items = DynamoDBBackend.transact_write_items

    def item_bytes(self: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> int:
        if op_type == "Put":
            return sum(bytesize(name) + DynamoType(value).size() for name, value in op["Item"].items())
        with contextlib.suppress(Exception):  # a table or key moto refuses is refused by moto
            stored = self.get_item(op["TableName"], op["Key"])
            if stored is not None:
                return int(stored.size())
        return 0

    def limited(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        total = sum(item_bytes(self, op_type, op) for entry in transact_items for op_type, op in entry.items())
        if total > TRANSACTION_MAX_BYTES:
            raise MockValidationException(f"Transaction payload size cannot exceed 4MB. Payload Size: {total}")
        transact_write_items(self, transact_items)

    DynamoDBBackend.transact_write_items = limited  # type: ignore[method-assign]


def attribute_values_picked_directly() -> None:
    """Serialise DynamoDB's AttributeValues without moto's attribute picker.

    moto serialises a response by its botocore shapes, and for every member of every structure
    asks a chain of alias providers where the value might be (`Name`, `name`, the shape's name,
    ...). An AttributeValue has ten members and one of them set, and a stream record or a batch
    of items holds hundreds: the picker was a third of the server's time on a busy stack. A
    dict whose keys are all the shape's members is answered from those keys alone, which is
    what the picker finds in it (none of the aliases it tries is a member's name); the members'
    values are serialised by moto as before. Anything else takes moto's own path.
    """
    from moto.core.serialize import BaseJSONSerializer

    serialize_structure = BaseJSONSerializer._serialize_type_structure

    def serialize_attribute_value(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        members = shape.members
        direct = shape.name == "AttributeValue" and type(value) is dict and value.keys() <= members.keys()
        if not direct or getattr(self._value_picker, "response_transformers", None):
            serialize_structure(self, serialized, value, shape, key)
            return
        wrapper = self.MAP_TYPE() if key else serialized
        for name, member_shape in members.items():
            member_value = value.get(name)
            if member_value is not None:
                member_shape.parent = shape
                self._serialize(wrapper, member_value, member_shape, name)
        if key:
            self._default_serialize(serialized, wrapper, shape, key)

    serialize_attribute_value.__wrapped__ = serialize_structure  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = serialize_attribute_value  # type: ignore[method-assign]


def backend_names_listed_once() -> None:
    """moto finds which service a request is for by listing its package's directory (a stat of
    each of its 200 entries) on every request: a sixth of its time on a busy stack. The list
    does not change while the server runs, so it is taken once."""
    from moto import backends

    names = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: names  # type: ignore[assignment]


# Set while moto sends a message (below): the queue's message counts are not wanted then.
_sending = threading.local()


def sends_without_counting_the_queue() -> None:
    """moto's SendMessage reads the queue's attributes to look up one setting
    (ContentBasedDeduplication), and building them counts the queue's messages three times,
    each message checked against the clock: each send cost O(messages in the queue), and a
    create queueing 50 chunks 30 ms a SendMessageBatch. SQS's do not. While a message is sent
    the counts read 0; nothing of a send's answer or effect depends on them, and
    GetQueueAttributes still counts."""
    from moto.sqs.models import Queue, SQSBackend

    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        counted = getattr(Queue, name)

        def count(self: Queue, counted: property = counted) -> int:
            return 0 if getattr(_sending, "active", False) else int(counted.fget(self))  # type: ignore[misc]

        setattr(Queue, name, property(count))
    send_message = SQSBackend.send_message

    def send_without_counting(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        outer = getattr(_sending, "active", False)
        _sending.active = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            _sending.active = outer

    SQSBackend.send_message = send_without_counting  # type: ignore[method-assign]


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler, with HTTP/1.1's persistent connections.

    Werkzeug's server ends every connection after one answer: it cannot tell whether the
    application read the whole body, and after the answer it reads and discards whatever the
    connection still holds. Each AWS call then opened a TCP connection and the server a thread
    for it; AWS's endpoints keep connections open, and botocore reuses them. Here the body is
    read before the application runs, so nothing of it is left on the connection, and what
    Werkzeug discards afterwards is read from an empty stream, not from the next request. A
    body of unknown length (chunked) still closes the connection.
    """

    _keep_alive = False  # this request's body was read whole (make_environ)

    def setup(self) -> None:
        super().setup()
        # An answer is written in parts (status and headers, then the body): without this,
        # Nagle's algorithm holds the last part until the client's delayed ACK, 40 ms a call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        # Decided anew for each request: one refused before the application runs (a malformed
        # request line) is answered with http.server's own close.
        self._keep_alive = False
        super().handle_one_request()

    def run_wsgi(self) -> None:
        connection = self.rfile
        try:
            super().run_wsgi()
        finally:
            self.rfile = connection

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        length = self.headers.get("Content-Length")
        self._keep_alive = self.headers.get("Transfer-Encoding") is None and (length is None or length.isdigit())
        if self._keep_alive:
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length or 0)))
            self.rfile = io.BytesIO()  # type: ignore[assignment]
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._keep_alive:
            return  # Werkzeug's unconditional close; the client's own wish was read by parse_request
        super().send_header(keyword, value)


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
    transactions_limited_to_4_mb()
    sends_without_counting_the_queue()
    backend_names_listed_once()
    attribute_values_picked_directly()
    run_simple(
        host,
        port,
        counted(serialised(DomainDispatcherApplication(create_backend_app))),
        threaded=True,
        request_handler=KeepAliveRequestHandler,
    )


if __name__ == "__main__":
    main()
