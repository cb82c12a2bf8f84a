"""HTTP API for remote imports: POST /imports fetches an image from a URL into the caller's prefix."""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from upload_core.errors import Unauthorized
from upload_core.http_errors import install_error_handlers
from upload_core.import_settings import get_import_settings
from upload_core.observability import logger, metrics, tracer
from upload_core.remote_import import RemoteImportService
from upload_core.settings import get_settings
from upload_core.ssrf import MAX_URL_CHARS

# Fail at start, not on the first request, when a setting is wrong.
settings = get_settings()
import_settings = get_import_settings()
app = APIGatewayHttpResolver(enable_validation=True)
install_error_handlers(app)


class CreateImportRequest(BaseModel):
    # Strict and closed, like the upload routes: unknown fields are typos.
    model_config = ConfigDict(strict=True, extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    filename: str | None = Field(default=None, min_length=1, max_length=1024)


@cache
def service() -> RemoteImportService:
    return RemoteImportService(settings, import_settings)


def caller_id() -> str:
    """The `sub` claim API Gateway's JWT authorizer verified."""
    authorizer = app.current_event.request_context.authorizer
    subject = authorizer.jwt_claim.get("sub") if authorizer and authorizer.jwt_claim else None
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("the request carries no authenticated subject", code="Unauthorized")
    return subject


def remaining_ms() -> int | None:
    context = app.lambda_context
    return context.get_remaining_time_in_millis() if context is not None else None


@app.post("/imports", summary="Import an image from a URL")
def create_import(request: Annotated[CreateImportRequest, Body()]) -> Response[str]:
    imported = service().import_url(
        caller_id(),
        request.url,
        filename=request.filename,
        remaining_ms=remaining_ms(),
        # A retry after a gateway timeout sends the same key and gets the same object back.
        idempotency_key=app.current_event.headers.get("idempotency-key"),
    )
    body: dict[str, Any] = {
        "key": imported.key,
        "size": imported.size,
        "contentType": imported.content_type,
        "etag": imported.etag,
    }
    return Response(status_code=int(HTTPStatus.CREATED), content_type="application/json", body=json.dumps(body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
