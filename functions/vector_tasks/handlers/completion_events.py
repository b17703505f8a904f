"""CompletionEventsFunction: an EventBridge event for every task that reaches done, failed or
canceled, read from the task table's stream (README, "Completion events").

Each stream record is one write; only the final transitions are published. A record whose
publish fails is reported in `batchItemFailures`: Lambda resumes the shard from it, so nothing
after the last success is skipped, and events of the batch published after the failed one are
sent again (at least once; the event names its transition).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vector_tasks.adapters.completion_events import final_transition
from vector_tasks.observability import logger, metrics, publishes_work_metrics, traced, work_metrics
from vector_tasks.wiring import build_at_init, completion_events

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _publish(record: DynamoDBRecord) -> str:
    stream = record.dynamodb
    task = final_transition(stream.old_image if stream else None, stream.new_image if stream else None)
    if task is None:
        return "not a final transition"
    completion_events().publish(task)
    work_metrics.task_finished(task.kind, task.status)
    logger.info(
        "Completion event published",
        extra={"task_id": task.task_id, "kind": task.kind.value, "attempt": task.attempt, "status": task.status.value},
    )
    return "published"


@logger.inject_lambda_context
@traced
@metrics.log_metrics
@publishes_work_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=_publish, processor=processor, context=context)


build_at_init(completion_events)
