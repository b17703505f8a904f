"""Shared by the queue consumers: SQS batches with per-record failure reporting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from vector_tasks.domain.model import ChunkRef
from vector_tasks.models.messages import ChunkMessage
from vector_tasks.observability import logger, metrics, publishes_work_metrics, traced

Handler = Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]
# Chunks of one task and attempt, handled together: what became of each, or why it failed.
GroupHandler = Callable[[Sequence[ChunkRef], LambdaContext], Sequence[str | Exception]]


def chunk_consumer(
    handle: Callable[[ChunkRef, SQSRecord, LambdaContext], str],
    drop_malformed: bool = False,
) -> Handler:
    """A Lambda handler that parses each record as a chunk message and passes it to `handle`.

    A record whose handling raises is reported in `batchItemFailures`, so SQS redelivers just
    that record and moves it to the dead-letter queue after the redrive policy's receive count.
    A record that is not a chunk message fails like any other, unless `drop_malformed` (the
    end of the line: the dead-letter handler), where it is logged as an error and consumed.
    """
    return _consumer(lambda event, context: handle, drop_malformed)


def grouped_chunk_consumer(handle_group: GroupHandler) -> Handler:
    """A chunk_consumer that hands the chunks of one task and attempt in a batch to
    `handle_group` together (in the order received), then reports each record as chunk_consumer
    does: an Exception in its place fails that record alone; one raised fails its whole group.

    A message delivered before (ApproximateReceiveCount above 1) is a group of its own: a chunk
    that fails whatever it is sent with cannot take the chunks of its first group with it to the
    dead-letter queue.
    """

    def prepare(event: dict[str, Any], context: LambdaContext) -> Callable[[ChunkRef, SQSRecord, LambdaContext], str]:
        results: dict[str, str | Exception] = {}
        for group in _groups(event):
            refs = [ref for _, ref in group]
            keys = _group_keys(refs)
            logger.append_keys(**keys)
            try:
                outcomes: Sequence[str | Exception] = handle_group(refs, context)
            except Exception as exc:  # reported per record, with its traceback, as it is replayed
                outcomes = [exc] * len(refs)
            finally:
                logger.remove_keys(list(keys))
            results.update((message_id, outcome) for (message_id, _), outcome in zip(group, outcomes, strict=True))

        def replay(ref: ChunkRef, record: SQSRecord, _: LambdaContext) -> str:
            outcome = results[record.message_id]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return replay

    return _consumer(prepare, drop_malformed=False)


def _groups(event: dict[str, Any]) -> list[list[tuple[str, ChunkRef]]]:
    """The event's chunk messages (message id and chunk) by task and attempt, in order of first
    appearance, each message delivered before alone; records that are not chunk messages are
    left to fail on their own."""
    groups: dict[tuple[str, str, int, str], list[tuple[str, ChunkRef]]] = {}
    for record in event.get("Records", []):
        try:
            ref = ChunkMessage.model_validate_json(record["body"]).ref()
        except ValidationError:
            continue
        message_id = record["messageId"]
        again = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1")) > 1
        groups.setdefault((ref.kind.value, ref.task_id, ref.attempt, message_id if again else ""), []).append(
            (message_id, ref)
        )
    return list(groups.values())


def _group_keys(refs: Sequence[ChunkRef]) -> dict[str, object]:
    """What every line logged while a group (or one record) is handled says of it."""
    first = refs[0]
    keys: dict[str, object] = {"task_id": first.task_id, "kind": first.kind.value, "attempt": first.attempt}
    if len(refs) == 1:
        keys["chunk"] = first.chunk
    else:
        keys["chunks"] = [ref.chunk for ref in refs]
    return keys


def _consumer(
    prepare: Callable[[dict[str, Any], LambdaContext], Callable[[ChunkRef, SQSRecord, LambdaContext], str]],
    drop_malformed: bool,
) -> Handler:
    """The Lambda handler: `prepare` sees the whole event first and gives what handles a record."""
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(
        record: SQSRecord, lambda_context: LambdaContext, handle: Callable[[ChunkRef, SQSRecord, LambdaContext], str]
    ) -> str:
        try:
            ref = ChunkMessage.model_validate_json(record.body).ref()
        except ValidationError:
            if not drop_malformed:
                logger.error("A message that is not a chunk message failed", extra={"body": record.body[:2000]})
                raise
            logger.error("Dropping a message that is not a chunk message", extra={"body": record.body[:2000]})
            return "malformed"
        # Every line logged while this record is handled names its chunk.
        chunk_keys = _group_keys([ref])
        logger.append_keys(**chunk_keys, message_id=record.message_id)
        try:
            delivery = handle(ref, record, lambda_context)
            logger.info("Chunk delivery handled", extra={"delivery": delivery})
            return delivery
        except Exception:
            # Reported in batchItemFailures: SQS delivers the record again (the DLQ after the
            # redrive policy's receive count), and this line is the error the DLQ detail cites.
            logger.exception(
                "Chunk delivery failed; the message will be delivered again",
                extra={"receives": record.attributes.approximate_receive_count},
            )
            raise
        finally:
            logger.remove_keys([*chunk_keys, "message_id"])

    @logger.inject_lambda_context
    @traced
    @metrics.log_metrics
    @publishes_work_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        handle = prepare(event, context)
        return process_partial_response(
            event=event,
            record_handler=lambda record, lambda_context: record_handler(record, lambda_context, handle),
            processor=processor,
            context=context,
        )

    return handler
