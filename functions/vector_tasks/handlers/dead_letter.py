"""DeadLetterFunction: a chunk the worker could not process ends as failed items, not a stuck task."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vector_tasks.domain.model import ChunkRef
from vector_tasks.handlers.queue import chunk_consumer
from vector_tasks.observability import logger
from vector_tasks.wiring import build_at_init, chunk_processor, clients_opened, task_store

ABANDONED_DETAIL = (
    "Not processed: the worker failed on every delivery of this item's chunk, which went to the "
    "dead-letter queue (the worker's logs have the error); restart the task to try again"
)


def _abandon(ref: ChunkRef, record: SQSRecord, _: LambdaContext) -> str:
    logger.warning(
        "Giving up on a chunk from the dead-letter queue",
        extra={"receives": record.attributes.approximate_receive_count},
    )
    return chunk_processor().abandon(ref, ABANDONED_DETAIL)


lambda_handler = chunk_consumer(_abandon, drop_malformed=True)

build_at_init(chunk_processor, clients_opened(task_store))
