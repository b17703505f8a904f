"""TaskWorkerFunction: applies each queued chunk to the model's vector index."""

from __future__ import annotations

import time

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vector_tasks.adapters.retry import OutOfTime
from vector_tasks.domain.model import ChunkRef
from vector_tasks.handlers.queue import chunk_consumer
from vector_tasks.wiring import chunk_processor

# Time kept back from the invocation's budget to record the chunk and answer SQS.
_SAFETY_MARGIN_SECONDS = 10.0


def _process(ref: ChunkRef, _: SQSRecord, context: LambdaContext) -> str:
    remaining = context.get_remaining_time_in_millis() / 1000 - _SAFETY_MARGIN_SECONDS
    if remaining <= 0:
        # Not started: the record is reported failed and comes back, while the invocation still
        # answers in time for the records of the batch that were done.
        raise OutOfTime("the invocation has no time left for this chunk; it goes back to the queue")
    return chunk_processor().process(ref, deadline=time.monotonic() + remaining)


lambda_handler = chunk_consumer(_process)
