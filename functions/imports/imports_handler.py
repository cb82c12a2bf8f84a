"""HTTP API for remote imports: POST /imports fetches an image from a URL into the caller's prefix."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Depends, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from import_models import CreateImportRequest, ImportedOut
from upload_core.import_settings import get_import_settings
from upload_core.observability import logger, metrics, tracer
from upload_core.remote_import import RemoteImportService
from upload_core.settings import get_settings
from upload_edge import openapi as docs
from upload_edge.identity import caller_id
from upload_edge.providers import Lazy
from upload_edge.resolver import http_resolver

# Fail at start, not on the first request, when a setting is wrong.
settings = get_settings()
import_settings = get_import_settings()
app = http_resolver()

# The container's one service (and so one boto3 client); tests replace it with app.dependency_overrides.
import_service = Lazy(lambda: RemoteImportService(settings, import_settings))


def remaining_ms() -> int | None:
    context = app.lambda_context
    return context.get_remaining_time_in_millis() if context is not None else None


def idempotency_key_header() -> str | None:
    """The optional Idempotency-Key header (remote_import checks its shape)."""
    return app.current_event.headers.get("idempotency-key")


@app.post(
    "/imports",
    summary="Import an image from a URL",
    responses=docs.responses(201, ImportedOut, "The imported object", docs.FORBIDDEN, docs.UNSUPPORTED),
)
def create_import(
    request: Annotated[CreateImportRequest, Body()],
    caller: Annotated[str, Depends(caller_id)],
    service: Annotated[RemoteImportService, Depends(import_service)],
    idempotency_key: Annotated[str | None, Depends(idempotency_key_header)],
) -> Response[ImportedOut]:
    imported = service.import_url(
        caller,
        request.url,
        filename=request.filename,
        remaining_ms=remaining_ms(),
        # A retry after a gateway timeout sends the same key and gets the same object back.
        idempotency_key=idempotency_key,
    )
    return Response(
        status_code=int(HTTPStatus.CREATED),
        content_type=content_types.APPLICATION_JSON,
        body=ImportedOut.from_domain(imported),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
