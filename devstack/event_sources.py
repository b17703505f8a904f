"""SQS event-source mappings: poll a queue, hand batches to a function, as Lambda does.

Honours BatchSize and ReportBatchItemFailures. Records the function reports as failed (or all
records, when it raises) are not deleted: they reappear after the queue's visibility timeout
and, past the redrive policy's maxReceiveCount, the queue itself moves them to its DLQ.
`retry_after` shortens that wait locally (the tests use it); None keeps the queue's timeout.
The poller receives and deletes as the Lambda service does, with the function's role.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from devstack.lambda_runtime import LocalFunction
from devstack.permissions import acting_as
from devstack.template import LOCAL_REGION, SqsEventSource, Template

log = logging.getLogger("devstack.sqs")
IDLE_PAUSE_SECONDS = 0.1


class SqsPoller:
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
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sqs-{function.spec.logical_id}-{source.queue_logical_id}", daemon=True
        )

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """No new batch is taken; one under way goes on until `join` gives up on it."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self.running:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                # Short polls with a client-side pause: a long poll would hold the serialised
                # moto server (devstack.moto_server) for its whole wait.
                if not self.poll_once(wait_seconds=0):
                    self._stop.wait(IDLE_PAUSE_SECONDS)
            except Exception:  # keep polling, as the Lambda service does; the error is logged
                log.exception("polling %s failed", self.queue_arn)
                self._stop.wait(1)

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
    template: Template, functions: Iterable[LocalFunction], sqs: Any, retry_after: int | None = None
) -> list[SqsPoller]:
    """One poller per SQS event source of the template's functions (not started), on the
    queues created from the template (`template.physical`)."""
    return [poller_for(template, fn, source, sqs, retry_after) for fn in functions for source in fn.spec.sqs_sources]


def poller_for(
    template: Template, function: LocalFunction, source: SqsEventSource, sqs: Any, retry_after: int | None = None
) -> SqsPoller:
    """The poller of one event source (its queue from `template.physical`)."""
    queue = template.physical[source.queue_logical_id]
    return SqsPoller(function, source, queue["QueueUrl"], queue["Arn"], sqs, LOCAL_REGION, retry_after=retry_after)
