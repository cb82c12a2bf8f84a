"""One mapping from errors to HTTP responses, shared by every API function's resolver."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from upload_core.errors import InvalidRequest, UploadError
from upload_core.observability import logger


def error_response(status: int, code: str, message: str) -> Response[str]:
    return Response(
        status_code=int(status),
        content_type="application/json",
        body=json.dumps({"code": code, "message": message}),
    )


def describe_validation_error(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors()[:5]:
        location = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path"))
        kind = item.get("type", "")
        if kind == "json_invalid":
            return "the request body is not valid JSON"
        message = str(item.get("msg", "is invalid"))
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems) or "the request is invalid"


def install_error_handlers(app: ApiGatewayResolver) -> None:
    """Every failure becomes `{"code", "message"}` with its status; nothing leaks a stack trace."""

    @app.exception_handler(UploadError)
    def _domain_error(error: UploadError) -> Response[str]:
        logger.info("request refused", extra={"code": error.code, "status": int(error.status)})
        return error_response(int(error.status), error.code, error.message)

    @app.exception_handler(RequestValidationError)
    def _validation_error(error: RequestValidationError) -> Response[str]:
        return error_response(HTTPStatus.BAD_REQUEST, "InvalidRequest", describe_validation_error(error))

    @app.exception_handler(UnicodeDecodeError)
    def _undecodable_body(_: UnicodeDecodeError) -> Response[str]:
        # API Gateway passes a body that is not UTF-8 base64-encoded; Powertools' request
        # validation then fails to decode it before any route code runs.
        return error_response(HTTPStatus.BAD_REQUEST, "InvalidRequest", "the request body is not valid UTF-8 JSON")

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        return error_response(HTTPStatus.NOT_FOUND, "RouteNotFound", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "InternalError", "an internal error occurred")


def json_body(app: Any) -> Any:
    """The request body (of a resolver's or router's current event) as JSON, or a clean 400."""
    try:
        return app.current_event.json_body
    except (ValueError, TypeError):
        raise InvalidRequest("the request body is not valid JSON", code="InvalidJson") from None
