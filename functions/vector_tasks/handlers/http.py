"""The one place HTTP meets the domain: the resolver, the error shape and the status mapping."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from vector_tasks.domain.errors import (
    DomainError,
    InvalidTransition,
    ItemNotUnicode,
    ItemTooLarge,
    NothingToRetry,
    RequestTooLarge,
    TaskIdConflict,
    TaskNotFound,
    TransitionStillRunning,
    UnknownEmbeddingModel,
)
from vector_tasks.domain.limits import MAX_REQUEST_BODY_BYTES
from vector_tasks.domain.model import TaskStatus
from vector_tasks.models.api import ErrorBody, ErrorDetail, ErrorResponse
from vector_tasks.observability import logger, metrics, tracer

TaskIdQuery = Annotated[str, Query(min_length=1, description="The task's id")]

# Each domain error is one status and one stable code; never decided from message text.
DOMAIN_ERRORS: dict[type[DomainError], tuple[HTTPStatus, str]] = {
    TaskNotFound: (HTTPStatus.NOT_FOUND, "task_not_found"),
    TaskIdConflict: (HTTPStatus.CONFLICT, "task_id_conflict"),
    InvalidTransition: (HTTPStatus.CONFLICT, "invalid_transition"),
    NothingToRetry: (HTTPStatus.CONFLICT, "nothing_to_retry"),
    TransitionStillRunning: (HTTPStatus.SERVICE_UNAVAILABLE, "transition_in_progress"),
    UnknownEmbeddingModel: (HTTPStatus.UNPROCESSABLE_ENTITY, "unknown_embedding_model"),
    ItemTooLarge: (HTTPStatus.UNPROCESSABLE_ENTITY, "item_too_large"),
    ItemNotUnicode: (HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_text"),
    RequestTooLarge: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request_too_large"),
}


def _error_json(status: HTTPStatus, body: ErrorBody) -> tuple[int, str]:
    return status.value, ErrorResponse(error=body).model_dump_json(exclude_none=True)


def error_responses(*statuses: HTTPStatus) -> dict[int, Any]:
    """OpenAPI `responses` entries for the error statuses a route can answer with."""
    return {
        s.value: {"description": s.phrase, "content": {"application/json": {"model": ErrorResponse}}} for s in statuses
    }


def build_resolver(*routers: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)

    def request_id() -> str | None:
        request_context = app.current_event.get("requestContext") or {}
        return request_context.get("requestId")

    def respond(status: HTTPStatus, body: ErrorBody) -> Response[str]:
        code, text = _error_json(status, body)
        return Response(status_code=code, content_type="application/json", body=text)

    @app.exception_handler(DomainError)
    def domain_error(exc: DomainError) -> Response[str]:
        status, code = DOMAIN_ERRORS.get(type(exc), (HTTPStatus.BAD_REQUEST, "bad_request"))
        current = TaskStatus(exc.status) if isinstance(exc, InvalidTransition) else None
        logger.info("Request refused", extra={"code": code, "reason": exc.message})
        return respond(status, ErrorBody(code=code, message=exc.message, request_id=request_id(), status=current))

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[str]:
        errors = exc.errors()
        details = [
            ErrorDetail(
                field=".".join(str(p) for p in e.get("loc", ())), reason=e.get("msg", ""), type=e.get("type", "")
            )
            for e in errors
        ]
        if any(e.get("type") == "json_invalid" for e in errors):
            body = ErrorBody(code="invalid_json", message="Request body is not valid JSON", request_id=request_id())
            return respond(HTTPStatus.BAD_REQUEST, body)
        message = "; ".join(f"{d.field}: {d.reason}" for d in details[:5])
        body = ErrorBody(code="validation_error", message=message, request_id=request_id(), details=details)
        return respond(HTTPStatus.UNPROCESSABLE_ENTITY, body)

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        event = app.current_event
        message = f"No route for {event.http_method} {event.path}"
        return respond(
            HTTPStatus.NOT_FOUND, ErrorBody(code="route_not_found", message=message, request_id=request_id())
        )

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[str]:
        logger.exception("Unhandled error")
        message = "Internal error; quote the request_id when reporting it"
        return respond(
            HTTPStatus.INTERNAL_SERVER_ERROR, ErrorBody(code="internal_error", message=message, request_id=request_id())
        )

    return app


def entry_point(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda handler for a resolver: logging, tracing, metrics, and the body size limit."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        size = len((event.get("body") or "").encode())
        if size > MAX_REQUEST_BODY_BYTES:
            exc = RequestTooLarge(size, MAX_REQUEST_BODY_BYTES)
            request_id = (event.get("requestContext") or {}).get("requestId")
            status, code = DOMAIN_ERRORS[RequestTooLarge]
            code_value, text = _error_json(status, ErrorBody(code=code, message=exc.message, request_id=request_id))
            return {"statusCode": code_value, "headers": {"Content-Type": "application/json"}, "body": text}
        return app.resolve(event, context)

    return handler
