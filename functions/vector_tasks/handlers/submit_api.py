"""TaskSubmitFunction: POST .../run for both task kinds (writes the table, sends to the queue)."""
# No `from __future__ import annotations`: the resolver reads the route annotations at runtime.

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from vector_tasks.handlers.http import build_resolver, entry_point, route_responses
from vector_tasks.kinds import KIND_APIS, KindApi
from vector_tasks.models.api import CreateTaskRequest
from vector_tasks.observability import metrics
from vector_tasks.wiring import build_at_init, clients_opened, task_service, task_store, work_queue

router = Router()


def _add_create_route(api: KindApi) -> None:
    request_model = api.create_request
    task_model = api.task_body

    @router.post(
        f"{api.path}/run",
        operation_id=api.operation_id("create"),
        summary=f"Create {api.kind.value} task",
        tags=[api.tag],
        status_code=HTTPStatus.ACCEPTED,
        responses=route_responses(
            {
                202: ("Task created and queued", task_model),
                200: ("Same task_id and body as an existing task: that task", task_model),
            },
            HTTPStatus.BAD_REQUEST,
            HTTPStatus.CONFLICT,
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            HTTPStatus.UNPROCESSABLE_ENTITY,
        ),
    )
    def create(body: Annotated[request_model, Body()]) -> Response[task_model]:  # type: ignore[valid-type]
        request: CreateTaskRequest = body
        if request.source is not None:
            task, created = task_service().create_import(
                api.kind, request.embedding_model_id, request.task_id, request.source.s3_uri
            )
        else:
            task, created = task_service().create(
                api.kind, request.embedding_model_id, request.task_id, request.task_items()
            )
        if created:
            metrics.add_metric(name=f"{api.kind.value.capitalize()}TasksCreated", unit=MetricUnit.Count, value=1)
        status = HTTPStatus.ACCEPTED if created else HTTPStatus.OK
        return Response(status_code=status.value, content_type="application/json", body=task_model.from_task(task))


for _api in KIND_APIS:
    _add_create_route(_api)

app = build_resolver(router)
lambda_handler = entry_point(app)

build_at_init(task_service, clients_opened(task_store, work_queue))
