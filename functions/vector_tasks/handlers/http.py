"""The one place HTTP meets the domain: the resolver, the error shape and the status mapping."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

import orjson
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from vector_tasks.domain.encoding import may_misread_integers, may_overflow
from vector_tasks.domain.errors import (
    AttemptMismatch,
    CreateInterrupted,
    DomainError,
    InvalidTransition,
    ItemNotUnicode,
    ItemsExpired,
    ItemTooLarge,
    NothingToRetry,
    RequestTooLarge,
    TaskIdConflict,
    TaskNotFound,
    TransitionStillRunning,
    UnknownEmbeddingModel,
)
from vector_tasks.domain.limits import MAX_REQUEST_BODY_BYTES, MAX_TASK_ID_LENGTH, TASK_ID_PATTERN
from vector_tasks.domain.model import TaskStatus
from vector_tasks.domain.sources import ImportNotAllowed, SourceChanged, SourceIncomplete
from vector_tasks.models.api import ErrorBody, ErrorDetail, ErrorResponse
from vector_tasks.observability import logger, metrics, traced

# Same rule as task_id in a create body.
TaskIdQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_TASK_ID_LENGTH,
        pattern=TASK_ID_PATTERN,
        description="The task's id: 1..128 characters of A-Z a-z 0-9 . _ : -",
    ),
]

JSON_MEDIA_TYPE = "application/json"
MAX_JSON_DEPTH = 64


# -- request bodies --------------------------------------------------------------------------


def _refuse(message: str, doc: str, pos: int = 0) -> json.JSONDecodeError:
    return json.JSONDecodeError(message, doc, pos)


def _nesting_depth_over(value: Any, limit: int) -> bool:
    """Whether arrays/objects nest deeper than `limit` (iterative: never recurses itself)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        # The types first, in C: most arrays are vectors, with no container among their values.
        if _CONTAINERS.isdisjoint(map(type, children)):
            continue
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


_CONTAINERS = frozenset({dict, list})


def _orjson_loads(doc: str) -> Any:
    """orjson's parse, or _UNPARSED for whatever it refuses (NaN, a lone surrogate, nesting past
    its limit, ...): the standard library then says what is wrong, or accepts it as before."""
    try:
        return orjson.loads(doc)
    except orjson.JSONDecodeError:
        return _UNPARSED


_UNPARSED = object()


def strict_json_loads(text: str | bytes | bytearray) -> Any:
    """JSON as RFC 8259 has it, within limits; anything else raises JSONDecodeError, which the
    resolver's validation turns into RequestValidationError `json_invalid` (400 invalid_json).

    Refused: NaN / Infinity / -Infinity (not JSON), numbers that overflow a float (1e400),
    integers past Python's digit limit, and nesting deeper than MAX_JSON_DEPTH.
    """
    doc = text.decode() if isinstance(text, bytes | bytearray) else text

    def constant(name: str) -> Any:
        raise _refuse(f"{name} is not a JSON value", doc, doc.find(name))

    def real(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise _refuse(f"number {literal[:40]} is out of range", doc, doc.find(literal))
        return value

    def integer(literal: str) -> int:
        try:
            return int(literal)
        except ValueError as exc:  # past sys.get_int_max_str_digits()
            raise _refuse(f"integer of {len(literal.lstrip('-'))} digits is too long", doc, doc.find(literal)) from exc

    text = doc.encode(errors="replace")
    value = _UNPARSED if may_misread_integers(text) else _orjson_loads(doc)
    if value is _UNPARSED:
        try:
            if may_overflow(text):
                value = json.loads(doc, parse_constant=constant, parse_float=real, parse_int=integer)
            else:
                value = json.loads(doc, parse_constant=constant)
        except RecursionError as exc:
            raise _refuse(f"nesting is deeper than {MAX_JSON_DEPTH} levels", doc) from exc
    if _nesting_depth_over(value, MAX_JSON_DEPTH):
        raise _refuse(f"nesting is deeper than {MAX_JSON_DEPTH} levels", doc)
    return value


def _media_type(headers: dict[str, Any] | None) -> str | None:
    """The request's media type, lower-cased without parameters; None when it has none."""
    for name, value in (headers or {}).items():
        if name.lower() == "content-type" and value is not None:
            return str(value).split(";", 1)[0].strip().lower()
    return None


# -- responses -------------------------------------------------------------------------------

# Each domain error is one status and one stable code; never decided from message text.
DOMAIN_ERRORS: dict[type[DomainError], tuple[HTTPStatus, str]] = {
    TaskNotFound: (HTTPStatus.NOT_FOUND, "task_not_found"),
    TaskIdConflict: (HTTPStatus.CONFLICT, "task_id_conflict"),
    InvalidTransition: (HTTPStatus.CONFLICT, "invalid_transition"),
    AttemptMismatch: (HTTPStatus.CONFLICT, "attempt_mismatch"),
    CreateInterrupted: (HTTPStatus.INTERNAL_SERVER_ERROR, "create_interrupted"),
    NothingToRetry: (HTTPStatus.CONFLICT, "nothing_to_retry"),
    ItemsExpired: (HTTPStatus.CONFLICT, "items_expired"),
    TransitionStillRunning: (HTTPStatus.SERVICE_UNAVAILABLE, "transition_in_progress"),
    UnknownEmbeddingModel: (HTTPStatus.UNPROCESSABLE_ENTITY, "unknown_embedding_model"),
    ImportNotAllowed: (HTTPStatus.UNPROCESSABLE_ENTITY, "import_bucket_not_allowed"),
    SourceChanged: (HTTPStatus.CONFLICT, "source_changed"),
    SourceIncomplete: (HTTPStatus.CONFLICT, "source_incomplete"),
    ItemTooLarge: (HTTPStatus.UNPROCESSABLE_ENTITY, "item_too_large"),
    ItemNotUnicode: (HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_text"),
    RequestTooLarge: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request_too_large"),
}


def domain_error_status(exc: DomainError) -> tuple[HTTPStatus, str] | None:
    """The status and code of the nearest class in `exc`'s hierarchy that DOMAIN_ERRORS lists;
    None when none is (such an error is answered 500 internal_error)."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_ERRORS:
            return DOMAIN_ERRORS[cls]
    return None


def _error_json(status: HTTPStatus, body: ErrorBody) -> tuple[int, str]:
    return status.value, ErrorResponse(error=body).model_dump_json(exclude_none=True)


def error_responses(*statuses: HTTPStatus, codes: dict[HTTPStatus, tuple[str, ...]] | None = None) -> dict[int, Any]:
    """OpenAPI `responses` entries for the error statuses a route can answer with; `codes`: the
    `error.code` values a status carries on that route, named in its description."""

    def description(status: HTTPStatus) -> str:
        named = (codes or {}).get(status)
        return f"{status.phrase}: error.code {', '.join(named)}" if named else status.phrase

    return {
        s.value: {"description": description(s), "content": {"application/json": {"model": ErrorResponse}}}
        for s in statuses
    }


# What any route of ours can answer besides its own statuses (API Gateway's own answers, 403,
# 413, 502 and 504, are added to every operation in `handlers.openapi`).
COMMON_ERRORS = (HTTPStatus.UNSUPPORTED_MEDIA_TYPE, HTTPStatus.INTERNAL_SERVER_ERROR)


def route_responses(
    success: dict[int, tuple[str, Any]], *errors: HTTPStatus, codes: dict[HTTPStatus, tuple[str, ...]] | None = None
) -> dict[int, Any]:
    """Every status a route answers, for OpenAPI. Powertools documents no 200 of its own once
    `responses` is given, so the successes are listed here with their models. `codes`: see
    `error_responses`."""
    documented: dict[int, Any] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
        for status, (description, model) in success.items()
    }
    return {**documented, **error_responses(*sorted({*errors, *COMMON_ERRORS}), codes=codes)}


def error_code(error: type[DomainError]) -> str:
    """The stable `error.code` of a domain error (DOMAIN_ERRORS), for the OpenAPI descriptions."""
    return DOMAIN_ERRORS[error][1]


def build_resolver(*routers: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=strict_json_loads)
    for router in routers:
        app.include_router(router)

    def request_id() -> str | None:
        request_context = app.current_event.get("requestContext") or {}
        return request_context.get("requestId")

    def respond(status: HTTPStatus, body: ErrorBody) -> Response[str]:
        code, text = _error_json(status, body)
        return Response(status_code=code, content_type="application/json", body=text)

    def internal_error() -> Response[str]:
        """500 without internals; the log line has the traceback of the exception being handled."""
        logger.exception("Unhandled error")
        message = "Internal error; quote the request_id when reporting it"
        return respond(
            HTTPStatus.INTERNAL_SERVER_ERROR, ErrorBody(code="internal_error", message=message, request_id=request_id())
        )

    @app.exception_handler(Exception)
    def unexpected(_: Exception) -> Response[str]:
        return internal_error()

    @app.exception_handler(DomainError)
    def domain_error(exc: DomainError) -> Response[str]:
        mapped = domain_error_status(exc)
        if mapped is None:  # a domain error no route should let out: a fault of ours, not the caller's
            return internal_error()
        status, code = mapped
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            logger.exception("Request failed", extra={"code": code, "reason": exc.message})  # with the cause
        else:
            logger.info("Request refused", extra={"code": code, "reason": exc.message})
        body = ErrorBody(
            code=code,
            message=exc.message,
            request_id=request_id(),
            status=TaskStatus(exc.status) if isinstance(exc, InvalidTransition | AttemptMismatch) else None,
            attempt=exc.attempt if isinstance(exc, AttemptMismatch) else None,
            task_id=exc.task_id if isinstance(exc, CreateInterrupted) else None,
        )
        return respond(status, body)

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[str]:
        errors = exc.errors()
        details = [
            ErrorDetail(
                field=".".join(str(p) for p in e.get("loc", ())), reason=e.get("msg", ""), type=e.get("type", "")
            )
            for e in errors
        ]
        invalid_json = [e for e in errors if e.get("type") == "json_invalid"]
        if invalid_json:
            reason = (invalid_json[0].get("ctx") or {}).get("error") or "malformed"
            location = invalid_json[0].get("loc", ())
            where = f" (at character {location[1]})" if len(location) > 1 and location[1] else ""
            message = f"Request body is not valid JSON: {reason}{where}"
            body = ErrorBody(code="invalid_json", message=message, request_id=request_id())
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

    return app


def entry_point(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda handler for a resolver: logging, tracing, metrics, and the body size limit."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @traced
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        request_id = (event.get("requestContext") or {}).get("requestId")

        def refuse(status: HTTPStatus, code: str, message: str) -> dict[str, Any]:
            code_value, text = _error_json(status, ErrorBody(code=code, message=message, request_id=request_id))
            return {"statusCode": code_value, "headers": {"Content-Type": JSON_MEDIA_TYPE}, "body": text}

        size = len((event.get("body") or "").encode(errors="surrogatepass"))
        if size > MAX_REQUEST_BODY_BYTES:
            status, code = DOMAIN_ERRORS[RequestTooLarge]
            return refuse(status, code, RequestTooLarge(size, MAX_REQUEST_BODY_BYTES).message)
        # A body must be JSON; no Content-Type at all is read as JSON. Without a body the
        # header says nothing (curl -X PUT -d '' sends a form type), so it is not judged.
        media_type = _media_type(event.get("headers"))
        if event.get("body") and media_type is not None and media_type != JSON_MEDIA_TYPE:
            message = f"Content-Type {media_type or '(empty)'!r} is not supported; send {JSON_MEDIA_TYPE}"
            return refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
        if media_type is not None:  # Powertools parses a body only under an exact "application/json"
            headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
            multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
            event = {**event, "headers": {**headers, "Content-Type": JSON_MEDIA_TYPE}, "multiValueHeaders": multi}
        answer: dict[str, Any] = app.resolve(event, context)
        audit(event, answer)
        return answer

    return handler


def audit(event: dict[str, Any], answer: dict[str, Any]) -> None:
    """One line per answered request: who (the caller's IAM ARN), what (method, path, task), the
    status. With the API's access log (the same request id) it says who created, canceled or
    restarted which task."""
    task_id = (event.get("queryStringParameters") or {}).get("task_id")
    if task_id is None and answer.get("statusCode") in (HTTPStatus.OK, HTTPStatus.ACCEPTED):
        try:  # a create answers with the task, whose id it may have generated
            task_id = json.loads(answer.get("body") or "{}").get("id")
        except (ValueError, AttributeError):
            task_id = None
    identity = (event.get("requestContext") or {}).get("identity") or {}
    logger.info(
        "Request answered",
        extra={
            "caller": identity.get("userArn"),
            "method": event.get("httpMethod"),
            "path": event.get("path"),
            "task_id": task_id,
            "status": answer.get("statusCode"),
        },
    )
