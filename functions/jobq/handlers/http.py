"""The API's HTTP conventions: JSON bodies whatever Content-Type says, and every error as one JSON shape.

Errors are mapped to responses here, and only here.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field

from jobq.domain import errors
from jobq.observability import get_logger

MAX_JSON_DEPTH = 64

_STATUS: dict[type[errors.JobqError], HTTPStatus] = {
    errors.InvalidRequestError: HTTPStatus.BAD_REQUEST,
    errors.PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.UnknownJobTypeError: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.InvalidPayloadError: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.InvalidBatchError: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.UnauthenticatedError: HTTPStatus.UNAUTHORIZED,
    errors.ForbiddenError: HTTPStatus.FORBIDDEN,
    errors.JobNotFoundError: HTTPStatus.NOT_FOUND,
    errors.InvalidTransitionError: HTTPStatus.CONFLICT,
    errors.IdempotencyKeyReusedError: HTTPStatus.CONFLICT,
    errors.IdempotencyKeyInProgressError: HTTPStatus.CONFLICT,
    errors.DependencyUnavailableError: HTTPStatus.SERVICE_UNAVAILABLE,
}


class ErrorDetail(BaseModel):
    """What went wrong, for machines (``code``) and people (``message``)."""

    code: str = Field(examples=["unknown_job_type"])
    message: str
    details: Any = None


class ErrorDocument(BaseModel):
    """Every error response."""

    error: ErrorDetail


def doc(description: str, model: type[BaseModel] = ErrorDocument) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


def error_response(status: HTTPStatus, code: str, message: str, details: Any = None) -> Response[Any]:
    """The one shape of every error response."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body={"error": body})


def json_response(status: HTTPStatus, model: BaseModel, headers: Mapping[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=model.model_dump(mode="json"),
        headers=dict(headers or {}),
    )


def parse_json_object(max_bytes: int) -> Callable[[str], dict[str, Any]]:
    """A body parser: over ``max_bytes`` -> 413; not JSON, too deep, or not an object -> 400."""

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def finite_float(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise ValueError(f"number {text[:40]} is out of range")
        return value

    def parse(text: str | None) -> dict[str, Any]:
        if not text:
            raise errors.InvalidRequestError("the request body must be a JSON object")
        size = len(text.encode())
        if size > max_bytes:
            raise errors.PayloadTooLargeError(f"the request body is {size} bytes; the limit is {max_bytes}")
        try:
            value = json.loads(text, parse_constant=reject_constant, parse_float=finite_float)
        except (ValueError, RecursionError) as exc:
            raise errors.InvalidRequestError(f"the request body is not valid JSON: {_short(exc)}") from None
        if not isinstance(value, dict):
            raise errors.InvalidRequestError("the request body must be a JSON object")
        if _depth_exceeds(value, MAX_JSON_DEPTH):
            raise errors.InvalidRequestError(f"the request body is nested deeper than {MAX_JSON_DEPTH} levels")
        return value

    return parse


def register_error_mapping(app: APIGatewayHttpResolver) -> None:
    """Every error becomes ``{"error": {"code", "message"}}``; nothing else leaves this function."""
    logger = get_logger()

    def jobq_error(exc: errors.JobqError) -> Response[Any]:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), None)
        if status is None:
            logger.exception("jobq error without an HTTP mapping")
            return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            logger.error("dependency unavailable", extra={"reason": exc.message})
            return error_response(status, exc.code, "a dependency is unavailable; try again shortly")
        return error_response(status, exc.code, exc.message, exc.details)

    def invalid_request(exc: RequestValidationError) -> Response[Any]:
        problems = [
            {"loc": list(err.get("loc", ())), "type": err.get("type"), "msg": err.get("msg")} for err in exc.errors()
        ]
        where = {str(err["loc"][0]) for err in problems if err["loc"]}
        if any(err["loc"] == ["body"] and err["type"] == "missing" for err in problems):
            # Powertools does not call the body parser for an empty body: no body is not a JSON object.
            return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", "the request body must be a JSON object")
        if "path" in where:
            return error_response(HTTPStatus.NOT_FOUND, "job_not_found", "no such job")
        if "header" in where:
            return error_response(HTTPStatus.BAD_REQUEST, "invalid_header", "invalid request headers", problems)
        if where & {"query", "cookie"}:
            return error_response(HTTPStatus.BAD_REQUEST, "invalid_query", "invalid query parameters", problems)
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", "invalid request body", problems)

    def not_json(_: Exception) -> Response[Any]:
        return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", "the request body must be UTF-8 JSON")

    def route_not_found(_: NotFoundError) -> Response[Any]:
        return error_response(HTTPStatus.NOT_FOUND, "not_found", "no such route")

    def unexpected(_: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")

    app.exception_handler_manager.update_exception_handlers(
        {
            errors.JobqError: jobq_error,
            RequestValidationError: invalid_request,
            RequestUnsupportedContentType: not_json,
            UnicodeDecodeError: not_json,
            binascii.Error: not_json,
            NotFoundError: route_not_found,
            Exception: unexpected,
        }
    )


def treat_body_as_json(event: Mapping[str, Any]) -> dict[str, Any]:
    """jobq bodies are JSON whatever Content-Type says (``curl -d`` sends form encoding)."""
    request = dict(event)
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    if event.get("body") and not str(headers.get("content-type", "")).startswith("application/json"):
        headers["content-type"] = "application/json"
    request["headers"] = headers
    return request


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(current, dict):
            stack.extend((child, depth + 1) for child in current.values())
        elif isinstance(current, list):
            stack.extend((child, depth + 1) for child in current)
    return False


def _short(exc: BaseException) -> str:
    return str(exc)[:200] or type(exc).__name__
