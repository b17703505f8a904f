"""TaskTransitionFunction: PUT .../cancel and PUT .../restart for both task kinds (starts the
Step Functions state machines; reads the task and, for scope=failed, writes the retry chunks)."""
# No `from __future__ import annotations`: the resolver reads the route annotations at runtime.

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from vector_tasks.domain.errors import AttemptMismatch, InvalidTransition, ItemsExpired, NothingToRetry
from vector_tasks.domain.model import RestartScope
from vector_tasks.domain.sources import SourceChanged, SourceIncomplete
from vector_tasks.handlers.http import TaskIdQuery, build_resolver, entry_point, error_code, route_responses
from vector_tasks.kinds import KIND_APIS, KindApi
from vector_tasks.wiring import build_at_init, clients_opened, task_store, task_transitions

router = Router()

_REFUSALS = (HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.SERVICE_UNAVAILABLE)

# The attempt the caller last saw: makes a retried cancel or restart safe (README, "Lifecycle").
AttemptQuery = Annotated[
    int | None,
    Query(
        ge=1,
        le=1_000_000,
        description="The attempt the caller last saw. Cancel: only if the task is still at it (else 409 "
        "attempt_mismatch). Restart: attempt N becomes N + 1 at most once; a retry of the same request answers "
        "with attempt N + 1 instead of restarting again.",
    ),
]


def _add_transition_routes(api: KindApi) -> None:
    task_model = api.task_body

    @router.put(
        f"{api.path}/cancel",
        operation_id=api.operation_id("cancel"),
        summary=f"Cancel {api.kind.value} task (pending or running; a canceled task is returned unchanged)",
        tags=[api.tag],
        responses=route_responses(
            {200: ("The task, canceled (or unchanged if it was); first page of its failures", task_model)},
            *_REFUSALS,
            codes={HTTPStatus.CONFLICT: (error_code(InvalidTransition), error_code(AttemptMismatch))},
        ),
    )
    def cancel(task_id: TaskIdQuery, attempt: AttemptQuery = None) -> task_model:  # type: ignore[valid-type]
        return task_model.from_task(task_transitions().cancel(api.kind, task_id, attempt))

    @router.put(
        f"{api.path}/restart",
        operation_id=api.operation_id("restart"),
        summary=f"Restart {api.kind.value} task (done, failed or canceled) as its next attempt",
        tags=[api.tag],
        responses=route_responses(
            {200: ("The task, pending as its next attempt", task_model)},
            *_REFUSALS,
            codes={
                HTTPStatus.CONFLICT: tuple(
                    error_code(e)
                    for e in (
                        InvalidTransition,
                        NothingToRetry,
                        AttemptMismatch,
                        ItemsExpired,
                        SourceChanged,
                        SourceIncomplete,
                    )
                )
            },
        ),
    )
    def restart(
        task_id: TaskIdQuery,
        scope: Annotated[
            RestartScope,
            Query(description="all: every item again; failed: only the items that did not succeed last attempt"),
        ] = RestartScope.ALL,
        attempt: AttemptQuery = None,
    ) -> task_model:  # type: ignore[valid-type]
        return task_model.from_task(task_transitions().restart(api.kind, task_id, scope, attempt))


for _api in KIND_APIS:
    _add_transition_routes(_api)

app = build_resolver(router)
lambda_handler = entry_point(app)

build_at_init(task_transitions, clients_opened(task_store))
