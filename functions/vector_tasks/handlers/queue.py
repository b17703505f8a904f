"""Shared by the queue consumers: SQS batches with per-record failure reporting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from vector_tasks.domain.model import ChunkRef
from vector_tasks.models.messages import ChunkMessage
from vector_tasks.observability import logger, metrics, publishes_work_metrics, traced


def chunk_consumer(
    handle: Callable[[ChunkRef, SQSRecord, LambdaContext], str],
    drop_malformed: bool = False,
) -> Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]:
    """A Lambda handler that parses each record as a chunk message and passes it to `handle`.

    A record whose handling raises is reported in `batchItemFailures`, so SQS redelivers just
    that record and moves it to the dead-letter queue after the redrive policy's receive count.
    A record that is not a chunk message fails like any other, unless `drop_malformed` (the
    end of the line: the dead-letter handler), where it is logged as an error and consumed.
    """
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
        try:
            ref = ChunkMessage.model_validate_json(record.body).ref()
        except ValidationError:
            if not drop_malformed:
                logger.error("A message that is not a chunk message failed", extra={"body": record.body[:2000]})
                raise
            logger.error("Dropping a message that is not a chunk message", extra={"body": record.body[:2000]})
            return "malformed"
        # Every line logged while this record is handled names its chunk.
        chunk_keys = {"task_id": ref.task_id, "kind": ref.kind.value, "attempt": ref.attempt, "chunk": ref.chunk}
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
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler
