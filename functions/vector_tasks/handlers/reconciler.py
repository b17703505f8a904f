"""ReconcilerFunction: on a schedule, finishes, resends or fails the tasks a failed step left
unfinished (domain/reconcile.py), and publishes what it repaired."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from vector_tasks.observability import logger, metrics, traced
from vector_tasks.wiring import build_at_init, clients_opened, reconciler, task_store, work_queue

# Time kept back from the invocation's budget to save where the run stopped and answer.
_SAFETY_MARGIN_SECONDS = 10.0
_METRICS = {
    "finished": "ReconciledTasksFinished",
    "failed_items_missing": "ReconciledTasksFailedItemsMissing",
    "redispatched_tasks": "ReconciledTasksResent",
    "redispatched_chunks": "ReconciledChunksResent",
    "redispatched_imports": "ReconciledImportStepsResent",
}


@logger.inject_lambda_context
@traced
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - _SAFETY_MARGIN_SECONDS
    report = asdict(reconciler().run(deadline))
    for field, metric in _METRICS.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=report[field])
    logger.info("Reconciled", extra={"report": report})
    return report


build_at_init(reconciler, clients_opened(task_store, work_queue))
