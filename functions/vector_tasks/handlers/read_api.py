"""TaskReadFunction: GET .../info and GET .../list for both task kinds (reads the table only)."""
# No `from __future__ import annotations`: the resolver reads the route annotations at runtime.

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from vector_tasks.domain.limits import (
    FAILURES_DEFAULT_LIMIT,
    FAILURES_MAX_LIMIT,
    LIST_DEFAULT_LIMIT,
    LIST_MAX_LIMIT,
)
from vector_tasks.domain.model import TaskStatus
from vector_tasks.handlers.http import TaskIdQuery, build_resolver, entry_point, route_responses
from vector_tasks.kinds import KIND_APIS, KindApi
from vector_tasks.models.api import TaskList, TaskSummary
from vector_tasks.wiring import build_at_init, clients_opened, task_service, task_store

router = Router()


def _add_read_routes(api: KindApi) -> None:
    task_model = api.task_body

    @router.get(
        f"{api.path}/info",
        operation_id=api.operation_id("get"),
        summary=f"Get a {api.kind.value} task with its failed items",
        tags=[api.tag],
        responses=route_responses(
            {200: ("The task with one page of its current attempt's failures", task_model)},
            HTTPStatus.NOT_FOUND,
            HTTPStatus.UNPROCESSABLE_ENTITY,
        ),
    )
    def info(
        task_id: TaskIdQuery,
        failures_offset: Annotated[int, Query(ge=0, description="Number of failures to skip")] = 0,
        failures_limit: Annotated[
            int, Query(ge=1, le=FAILURES_MAX_LIMIT, description="Failures per page")
        ] = FAILURES_DEFAULT_LIMIT,
    ) -> task_model:  # type: ignore[valid-type]
        task = task_service().get(api.kind, task_id, failures_offset, failures_limit)
        return task_model.from_task(task)

    @router.get(
        f"{api.path}/list",
        operation_id=api.operation_id("list"),
        summary=f"List {api.kind.value} tasks, newest first",
        tags=[api.tag],
        responses=route_responses({200: ("One page of tasks", TaskList)}, HTTPStatus.UNPROCESSABLE_ENTITY),
    )
    def list_tasks(
        offset: Annotated[int, Query(ge=0, description="Number of tasks to skip")] = 0,
        limit: Annotated[int, Query(ge=1, le=LIST_MAX_LIMIT, description="Page size")] = LIST_DEFAULT_LIMIT,
        status: Annotated[TaskStatus | None, Query(description="Only tasks in this status")] = None,
    ) -> TaskList:
        page = task_service().list(api.kind, status, offset, limit)
        return TaskList(
            tasks=[TaskSummary.from_task(t) for t in page.tasks],
            offset=offset,
            limit=limit,
            next_offset=page.next_offset,
        )


for _api in KIND_APIS:
    _add_read_routes(_api)

app = build_resolver(router)
lambda_handler = entry_point(app)

build_at_init(task_service, clients_opened(task_store))
