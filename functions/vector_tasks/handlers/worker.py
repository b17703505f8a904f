"""TaskWorkerFunction: applies the queued chunks to the model's vector index, those of one task
and attempt in a batch together (one `_bulk` of up to BULK_MAX_BYTES a request)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aws_lambda_powertools.utilities.typing import LambdaContext

from vector_tasks.adapters.retry import OutOfTime
from vector_tasks.domain.model import ChunkRef
from vector_tasks.handlers.queue import grouped_chunk_consumer
from vector_tasks.wiring import (
    build_at_init,
    chunk_processor,
    clients_opened,
    in_process_models_loaded,
    task_store,
    vector_index,
)

# Time kept back from the invocation's budget to record the chunks and answer SQS.
_SAFETY_MARGIN_SECONDS = 10.0


def _process(refs: Sequence[ChunkRef], context: LambdaContext) -> list[str | Exception]:
    """The chunks with time left are processed together, by the earliest of their deadlines.
    From the first with none, each is not started: it is reported failed and comes back, while
    the invocation still answers in time for the records of the batch that were done."""
    started: list[ChunkRef] = []
    deadline = float("inf")
    for ref in refs:
        remaining = context.get_remaining_time_in_millis() / 1000 - _SAFETY_MARGIN_SECONDS
        if remaining <= 0:
            break
        started.append(ref)
        deadline = min(deadline, time.monotonic() + remaining)
    out_of_time = OutOfTime("the invocation has no time left for this chunk; it goes back to the queue")
    deliveries: list[str | Exception] = list(chunk_processor().process_chunks(started, deadline))
    return deliveries + [out_of_time] * (len(refs) - len(started))


lambda_handler = grouped_chunk_consumer(_process)

build_at_init(chunk_processor, clients_opened(task_store, vector_index), in_process_models_loaded)
