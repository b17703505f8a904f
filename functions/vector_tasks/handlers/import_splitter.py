"""ImportSplitterFunction: one step of reading an import's source per message of the import
queue (domain/imports.py): list its objects, or read one range of one object into chunks."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vector_tasks.models.messages import ImportStepMessage
from vector_tasks.observability import logger, metrics, traced
from vector_tasks.wiring import build_at_init, clients_opened, import_splitter, task_store, work_queue

# The import queue's maxReceiveCount (template.yaml): the delivery that fails this many times
# fails its task with the error, rather than leaving it to wait for a step that never comes.
GIVE_UP_AFTER_RECEIVES = 5

# Time kept back from the invocation's budget to queue the next step and answer SQS.
_SAFETY_MARGIN_SECONDS = 20.0

_processor = BatchProcessor(event_type=EventType.SQS)


def _handle(record: SQSRecord, deadline: float) -> str:
    step = ImportStepMessage.model_validate_json(record.body).step()
    keys = {"task_id": step.task_id, "kind": step.kind.value, "attempt": step.attempt, "position": step.position}
    logger.append_keys(**keys)
    try:
        outcome = import_splitter().run(step, deadline)
        logger.info("Import step handled", extra={"outcome": outcome})
        return outcome
    except Exception as exc:
        receives = int(record.attributes.approximate_receive_count or 1)
        if receives >= GIVE_UP_AFTER_RECEIVES:
            logger.exception("Import step failed on its last delivery; the task fails", extra={"receives": receives})
            return import_splitter().give_up(step, f"reading stopped after {receives} tries: {exc}")
        logger.exception("Import step failed; it will be delivered again", extra={"receives": receives})
        raise
    finally:
        logger.remove_keys(list(keys))


@logger.inject_lambda_context
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Reading stops (and queues the next step) while a range's time is still left before this.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - _SAFETY_MARGIN_SECONDS
    return process_partial_response(
        event=event, record_handler=lambda record: _handle(record, deadline), processor=_processor, context=context
    )


build_at_init(import_splitter, clients_opened(task_store, work_queue))
