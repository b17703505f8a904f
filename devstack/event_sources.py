"""Event-source mappings: poll a queue or a table's stream, hand batches to a function, as
Lambda does.

SQS (`SqsPoller`): honours BatchSize and ReportBatchItemFailures. Records the function reports
as failed (or all records, when it raises) are not deleted: they reappear after the queue's
visibility timeout and, past the redrive policy's maxReceiveCount, the queue itself moves them
to its DLQ. `retry_after` shortens that wait locally (the tests use it); None keeps the queue's
timeout. The poller receives and deletes as the Lambda service does, with the function's role.

DynamoDB streams (`StreamPoller`): reads the shard in order from StartingPosition, drops the
records FilterCriteria does not match (they count as processed, as on Lambda), invokes the
function with BatchSize records at most, and on failure retries from the first failed record
(ReportBatchItemFailures) or, when the function raised, the batch again (halved with
BisectBatchOnFunctionError); past MaximumRetryAttempts the batch is described in the OnFailure
queue and skipped. It reads and sends with the function's role.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from devstack.lambda_runtime import LocalFunction
from devstack.permissions import acting_as
from devstack.template import LOCAL_REGION, SqsEventSource, StreamEventSource, Template

log = logging.getLogger("devstack.sqs")
# The user agent the event source's SQS client adds, so its calls can be told from the functions'.
EVENT_SOURCE_AGENT = "devstack-event-source"
# The SQS pollers' long poll (Lambda's own wait 20 s; shorter, so that stopping the stack, which
# waits for its pollers, takes at most this long).
SQS_WAIT_SECONDS = 1
# Lambda reads each shard of a stream about four times a second.
STREAM_IDLE_PAUSE_SECONDS = 0.25


class EventSourcePoller:
    """What SqsPoller and StreamPoller share: the thread that polls an event source until asked
    to stop, as the Lambda service does: `poll_once(wait_seconds)` again at once while there is
    work, after `idle_pause` when there is none, and after a second when a poll failed (logged)."""

    function: LocalFunction
    wait_seconds = 0
    idle_pause: float
    source_name: str  # for the log

    def __init__(self, name: str, threads: int = 1) -> None:
        """`threads`: batches in flight at once, each polled and handed over by its own thread."""
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{n}" if n else name, daemon=True) for n in range(threads)
        ]

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        """No new batch is taken; one under way goes on until `join` gives up on it."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        give_up_at = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, give_up_at - time.monotonic()))

    def poll_once(self, wait_seconds: int = 0) -> int:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once(self.wait_seconds) and self.idle_pause:
                    self._stop.wait(self.idle_pause)
            except Exception:  # keep polling, as the Lambda service does; the error is logged
                log.exception("polling %s failed", self.source_name)
                self._stop.wait(1)


class SqsPoller(EventSourcePoller):
    # Long polls, as Lambda's pollers: the moto server waits for a send without holding its
    # lock (devstack.moto_server.long_polled), so an idle queue costs a request a second.
    wait_seconds = SQS_WAIT_SECONDS
    idle_pause = 0.0

    def __init__(
        self,
        function: LocalFunction,
        source: SqsEventSource,
        queue_url: str,
        queue_arn: str,
        sqs: Any,
        region: str,
        retry_after: int | None = None,
    ) -> None:
        self.function = function
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._sqs = sqs
        self._region = region
        self._retry_after = retry_after
        self.source_name = queue_arn
        # As many batches in flight as the function runs at once (its MaximumConcurrency here).
        super().__init__(f"sqs-{function.spec.logical_id}-{source.queue_logical_id}", threads=function.concurrency)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self._region,
        }

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch and invoke the function with it; returns the number of records."""
        with acting_as(self.function.role, self.function.spec.logical_id):
            messages = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(self.source.batch_size, 10),
                WaitTimeSeconds=wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        if not messages:
            return 0
        records = [self._record(m) for m in messages]
        try:
            result = self.function.invoke({"Records": records})
            failed_ids = (
                {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
                if self.source.report_batch_item_failures
                else set()
            )
        except Exception:
            log.exception("%s failed on a batch of %d", self.function.spec.logical_id, len(records))
            failed_ids = {r["messageId"] for r in records}
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        with acting_as(self.function.role, self.function.spec.logical_id):
            for start in range(0, len(done), 10):
                self._sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )
        # Not checked against the role: Lambda never calls ChangeMessageVisibility; this shortcut
        # of the redelivery wait is the local stack's own convenience.
        if self._retry_after is not None:
            for m in messages:
                if m["MessageId"] in failed_ids:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=self._retry_after
                    )
        return len(records)


def pollers_for(
    template: Template,
    functions: Iterable[LocalFunction],
    sqs: Any,
    streams: Any,
    retry_after: int | None = None,
) -> list[EventSourcePoller]:
    """One poller per SQS and DynamoDB stream event source of the template's functions (not
    started), on the queues and tables created from the template (`template.physical`);
    `streams` is a DynamoDB Streams client."""
    pollers: list[EventSourcePoller] = []
    for fn in list(functions):
        pollers.extend(poller_for(template, fn, source, sqs, retry_after) for source in fn.spec.sqs_sources)
        pollers.extend(
            StreamPoller(fn, source, template.physical[source.table_logical_id]["StreamArn"], streams, sqs, template)
            for source in fn.spec.stream_sources
        )
    return pollers


def poller_for(
    template: Template, function: LocalFunction, source: SqsEventSource, sqs: Any, retry_after: int | None = None
) -> SqsPoller:
    """The poller of one event source (its queue from `template.physical`)."""
    queue = template.physical[source.queue_logical_id]
    return SqsPoller(function, source, queue["QueueUrl"], queue["Arn"], sqs, LOCAL_REGION, retry_after=retry_after)


# -- DynamoDB streams -------------------------------------------------------------------------


def pattern_matches(pattern: dict[str, Any], event: Any) -> bool:
    """An EventBridge pattern of nested objects whose leaves are lists of exact values (what
    Lambda's FilterCriteria uses here): each key must be present and match."""
    if not isinstance(event, dict):
        return False
    for key, expected in pattern.items():
        if key not in event:
            return False
        if isinstance(expected, dict):
            if not pattern_matches(expected, event[key]):
                return False
        elif event[key] not in expected:
            return False
    return True


def check_pattern(pattern: dict[str, Any]) -> None:
    """Refuse what `pattern_matches` does not evaluate (prefix, anything-but, numeric, exists)."""
    for key, expected in pattern.items():
        if isinstance(expected, dict):
            check_pattern(expected)
        elif not isinstance(expected, list) or any(isinstance(v, dict | list) for v in expected):
            raise ValueError(f"filter pattern {key}: {expected!r}: only exact values are supported locally")


class StreamPoller(EventSourcePoller):
    idle_pause = STREAM_IDLE_PAUSE_SECONDS

    def __init__(
        self,
        function: LocalFunction,
        source: StreamEventSource,
        stream_arn: str,
        streams: Any,
        sqs: Any,
        template: Template,
    ) -> None:
        for pattern in source.filter_patterns:
            check_pattern(pattern)
        self.function = function
        self.source = source
        self.stream_arn = stream_arn
        self._streams = streams
        self._sqs = sqs
        self._failure_queue_url = (
            template.physical[source.on_failure_queue_logical_id]["QueueUrl"]
            if source.on_failure_queue_logical_id
            else None
        )
        self._checkpoint: dict[str, str] = {}  # shard -> the last sequence number done with
        self._shards: list[str] | None = None  # read once, as the mapping lists them at start
        self._iterators: dict[str, str] = {}  # shard -> where to read next, when it follows the checkpoint
        self._attempts = 0  # failed invocations of the batch at the checkpoint
        self._batch_size = source.batch_size
        self.source_name = stream_arn
        super().__init__(f"stream-{function.spec.logical_id}")

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stream record as Lambda hands it to the function."""
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.replace(tzinfo=created.tzinfo or UTC).timestamp()
        return {
            **{k: v for k, v in record.items() if k != "dynamodb"},
            "dynamodb": change,
            "eventSourceARN": self.stream_arn,
        }

    def follow(self, stream_arn: str) -> None:
        """Read `stream_arn` from its start position on: the table was made anew, with a new stream
        (its mapping recreated on it, as on AWS)."""
        self.stream_arn = self.source_name = stream_arn
        self._checkpoint.clear()
        self.restart()
        self._attempts, self._batch_size = 0, self.source.batch_size

    def restart(self) -> None:
        """As a new poller of the mapping (Lambda replaces them): it lists the shards again and
        resumes each after the last record done with."""
        self._shards = None
        self._iterators.clear()

    def _matches(self, record: dict[str, Any]) -> bool:
        patterns = self.source.filter_patterns
        return not patterns or any(pattern_matches(p, record) for p in patterns)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Read the next records of each shard and hand the matching ones to the function;
        returns how many records were read (0: the stream has nothing new)."""
        if self._shards is None:
            with acting_as(self.function.role, self.function.spec.logical_id):
                described = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
            self._shards = [shard["ShardId"] for shard in described["Shards"]]
        return sum(self._poll_shard(shard_id) for shard_id in self._shards)

    def _iterator(self, shard_id: str) -> str:
        """Where to read: the iterator the last read returned, or one at the checkpoint."""
        if shard_id in self._iterators:
            return self._iterators.pop(shard_id)
        after = self._checkpoint.get(shard_id)
        position: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after
            else {"ShardIteratorType": self.source.starting_position}
        )
        with acting_as(self.function.role, self.function.spec.logical_id):
            answer = self._streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id, **position)
        return str(answer["ShardIterator"])

    def _poll_shard(self, shard_id: str) -> int:
        with acting_as(self.function.role, self.function.spec.logical_id):
            answer = self._streams.get_records(ShardIterator=self._iterator(shard_id), Limit=1000)
        records = answer["Records"]
        if not records:
            self._iterators[shard_id] = answer["NextShardIterator"]
            return 0
        # Filtered out records are done with; the batch is the first BatchSize matching ones.
        batch: list[dict[str, Any]] = []
        last_done = None
        for record in records:
            if len(batch) >= self._batch_size:
                break
            if self._matches(self._record(record)):
                batch.append(self._record(record))
            last_done = record["dynamodb"]["SequenceNumber"]
        failed_from = self._invoke(batch) if batch else None
        if failed_from is not None and not self._give_up(shard_id, batch, failed_from):
            if failed_from > 0:  # the records before the failed one are done
                self._checkpoint[shard_id] = batch[failed_from - 1]["dynamodb"]["SequenceNumber"]
            return len(records)
        self._attempts, self._batch_size = 0, self.source.batch_size
        assert last_done is not None
        self._checkpoint[shard_id] = last_done
        if last_done == records[-1]["dynamodb"]["SequenceNumber"]:  # read to the end: go on from there
            self._iterators[shard_id] = answer["NextShardIterator"]
        return len(records)

    def _invoke(self, batch: list[dict[str, Any]]) -> int | None:
        """The index in `batch` of the first record to retry, or None when all succeeded."""
        try:
            result = self.function.invoke({"Records": batch})
        except Exception:
            log.exception("%s failed on a stream batch of %d", self.function.spec.logical_id, len(batch))
            if self.source.bisect_on_error and len(batch) > 1:
                self._batch_size = max(1, len(batch) // 2)
            return 0
        if not self.source.report_batch_item_failures:
            return None
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        for index, record in enumerate(batch):
            if record["dynamodb"]["SequenceNumber"] in failed:
                return index
        return None

    def _give_up(self, shard_id: str, batch: list[dict[str, Any]], failed_from: int) -> bool:
        """Count a failed invocation; past MaximumRetryAttempts describe the rest of the batch in
        the OnFailure queue and report True (the poller moves past it)."""
        self._attempts += 1
        limit = self.source.max_retry_attempts
        if limit < 0 or self._attempts <= limit:
            return False
        rest = batch[failed_from:]
        log.error(
            "%s: giving up on %d stream records after %d attempts",
            self.function.spec.logical_id,
            len(rest),
            self._attempts,
        )
        if self._failure_queue_url is not None:
            described = {
                "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": self._attempts},
                "DDBStreamBatchInfo": {
                    "shardId": shard_id,
                    "startSequenceNumber": rest[0]["dynamodb"]["SequenceNumber"],
                    "endSequenceNumber": rest[-1]["dynamodb"]["SequenceNumber"],
                    "batchSize": len(rest),
                    "streamArn": self.stream_arn,
                },
            }
            with acting_as(self.function.role, self.function.spec.logical_id):
                self._sqs.send_message(QueueUrl=self._failure_queue_url, MessageBody=json.dumps(described))
        return True
