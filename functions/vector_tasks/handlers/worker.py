"""TaskWorkerFunction: applies each queued chunk to the model's vector index."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vector_tasks.domain.model import ChunkRef
from vector_tasks.handlers.queue import chunk_consumer
from vector_tasks.wiring import chunk_processor


def _process(ref: ChunkRef, _: SQSRecord) -> str:
    return chunk_processor().process(ref)


lambda_handler = chunk_consumer(_process)
