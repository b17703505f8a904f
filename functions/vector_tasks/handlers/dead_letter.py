"""DeadLetterFunction: a chunk the worker could not process ends as failed items, not a stuck task."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vector_tasks.domain.model import ChunkRef
from vector_tasks.handlers.queue import chunk_consumer
from vector_tasks.observability import logger
from vector_tasks.wiring import chunk_processor


def _abandon(ref: ChunkRef, record: SQSRecord) -> str:
    receives = record.attributes.approximate_receive_count
    logger.warning("Giving up on a chunk from the dead-letter queue", extra={"receives": receives})
    detail = (
        f"Not processed: the worker failed on this item's chunk {receives} times and gave up "
        "(see the worker's logs for the error); restart the task to try again"
    )
    return chunk_processor().abandon(ref, detail)


lambda_handler = chunk_consumer(_abandon)
