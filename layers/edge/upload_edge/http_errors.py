"""One mapping from errors to HTTP responses, shared by every API function's resolver."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from upload_core.errors import UploadError
from upload_core.observability import logger
from upload_edge.models import ErrorOut


@dataclass(frozen=True)
class ValidationCodes:
    """The `code` of a 400 for a request its route's declared parameters refused.

    `by_field` names a code for a failing field (the innermost name in the error's location),
    `missing_parameter` one for an absent query or path parameter; anything else is `default`.
    """

    default: str = "InvalidRequest"
    missing_parameter: str | None = None
    by_field: Mapping[str, str] = field(default_factory=dict)

    def code_for(self, error: RequestValidationError) -> str:
        for item in error.errors():
            location = tuple(item.get("loc", ()))
            names = [part for part in location[1:] if isinstance(part, str)]
            if names and names[-1] in self.by_field:
                return self.by_field[names[-1]]
            if self.missing_parameter and item.get("type") == "missing" and location[:1] in (("query",), ("path",)):
                return self.missing_parameter
        return self.default


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[Any]:
    """`details` become extra top-level fields (a quota error's `usage` and `limit`), `headers`
    response headers (Retry-After)."""
    error = ErrorOut(code=code, message=message)
    body: Any = {**error.model_dump(by_alias=True), **details} if details else error
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers=dict(headers) if headers else None,
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


def install_error_handlers(
    app: ApiGatewayResolver, validation_codes: Mapping[str, ValidationCodes] | None = None
) -> None:
    """Every failure becomes `{"code", "message"}` with its status; nothing leaks a stack trace.

    `validation_codes` maps a route prefix (e.g. "/s3/") to the codes its refused requests carry,
    for routes that keep another protocol's error codes (Companion's).
    """
    codes_by_prefix = dict(validation_codes or {})

    @app.exception_handler(UploadError)
    def _domain_error(error: UploadError) -> Response[Any]:
        logger.info("request refused", extra={"code": error.code, "status": int(error.status)})
        return error_response(
            int(error.status), error.code, error.message, details=error.details, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    def _validation_error(error: RequestValidationError) -> Response[ErrorOut]:
        route = app.context.get("_route")
        path = str(getattr(route, "openapi_path", "") or "")
        codes = next((codes for prefix, codes in codes_by_prefix.items() if path.startswith(prefix)), ValidationCodes())
        return error_response(HTTPStatus.BAD_REQUEST, codes.code_for(error), describe_validation_error(error))

    @app.exception_handler(UnicodeDecodeError)
    def _undecodable_body(_: UnicodeDecodeError) -> Response[ErrorOut]:
        # API Gateway passes a body that is not UTF-8 base64-encoded; Powertools' request
        # validation then fails to decode it before any route code runs.
        return error_response(HTTPStatus.BAD_REQUEST, "InvalidRequest", "the request body is not valid UTF-8 JSON")

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[ErrorOut]:
        return error_response(HTTPStatus.NOT_FOUND, "RouteNotFound", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "InternalError", "an internal error occurred")
