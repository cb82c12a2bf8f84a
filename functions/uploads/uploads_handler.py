"""HTTP API for direct-to-S3 uploads: native routes, Uppy Companion routes and the OpenAPI document."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

import companion_routes
import upload_views as views
from caller import caller_id
from service_factory import service
from upload_core.http_errors import install_error_handlers
from upload_core.observability import logger, metrics, tracer
from upload_core.settings import get_settings
from upload_core.uploads import ClientPart, PartRequest
from upload_schemas import CompleteUploadRequest, CreateUploadRequest, FormUploadRequest, SignPartsRequest

settings = get_settings()  # fail at start, not on the first request, when a setting is wrong
app = APIGatewayHttpResolver(enable_validation=True)
install_error_handlers(app)
app.include_router(companion_routes.router)


def created(body: dict[str, Any]) -> Response[str]:
    return Response(status_code=int(HTTPStatus.CREATED), content_type="application/json", body=json.dumps(body))


@app.post(
    "/uploads",
    summary="Start a multipart upload",
    responses=views.responses(201, views.UploadStartedOut, "The upload has started", views.UNSUPPORTED),
)
def create_upload(request: Annotated[CreateUploadRequest, Body()]) -> Response[str]:
    upload = service().start(
        caller_id(app),
        filename=request.filename,
        content_type=request.content_type,
        size=request.size,
        part_size=request.part_size,
        metadata=request.metadata,
        checksum_algorithm=request.checksum_algorithm,
    )
    return created(views.started(upload))


@app.get(
    "/uploads",
    summary="List the caller's unfinished uploads",
    responses=views.responses(200, views.PendingUploadsOut, "The caller's unfinished uploads"),
)
def list_uploads() -> dict[str, Any]:
    return views.pending(service().list_pending(caller_id(app)))


@app.post(
    "/uploads/<uploadId>/parts",
    summary="Sign part URLs, in batches",
    responses=views.responses(
        200, views.SignedPartsOut, "Part URLs and the headers to send", views.FORBIDDEN, views.NOT_FOUND
    ),
)
def sign_parts(uploadId: str, request: Annotated[SignPartsRequest, Body()]) -> dict[str, Any]:
    wanted = [PartRequest(part_number=number) for number in request.part_numbers or []]
    wanted += [
        PartRequest(part_number=part.part_number, content_md5=part.content_md5, checksum=part.checksum)
        for part in request.parts or []
    ]
    signed = service().sign_parts(
        caller_id(app), uploadId, request.key, wanted, checksum_algorithm=request.checksum_algorithm
    )
    return views.signed(signed)


@app.get(
    "/uploads/<uploadId>/parts",
    summary="List the parts uploaded so far (to resume)",
    responses=views.responses(200, views.UploadedPartsOut, "Every uploaded part", views.FORBIDDEN, views.NOT_FOUND),
)
def list_parts(uploadId: str, key: Annotated[str, Query(min_length=1, max_length=1024)]) -> dict[str, Any]:
    return views.uploaded_parts(service().list_parts(caller_id(app), uploadId, key))


@app.post(
    "/uploads/<uploadId>/complete",
    summary="Complete a multipart upload",
    responses=views.responses(
        200, views.CompletedUploadOut, "The stored object", views.FORBIDDEN, views.NOT_FOUND, views.CONFLICT
    ),
)
def complete_upload(uploadId: str, request: Annotated[CompleteUploadRequest, Body()]) -> dict[str, Any]:
    parts = (
        [ClientPart(part_number=part.part_number, etag=part.etag) for part in request.parts]
        if request.parts is not None
        else None
    )
    return views.completed(service().complete(caller_id(app), uploadId, request.key, parts))


@app.delete(
    "/uploads/<uploadId>",
    summary="Abort a multipart upload (idempotent)",
    responses=views.responses(204, None, "Aborted (or already gone)", views.FORBIDDEN, views.NOT_FOUND),
)
def abort_upload(uploadId: str, key: Annotated[str, Query(min_length=1, max_length=1024)]) -> Response[str]:
    service().abort(caller_id(app), uploadId, key)
    return Response(status_code=int(HTTPStatus.NO_CONTENT), body="")


@app.post(
    "/uploads/form",
    summary="A presigned POST form for a small single-request upload",
    responses=views.responses(201, views.FormUploadOut, "The form's URL and fields", views.UNSUPPORTED),
)
def form_upload(request: Annotated[FormUploadRequest, Body()]) -> Response[str]:
    upload = service().form(
        caller_id(app), filename=request.filename, content_type=request.content_type, size=request.size
    )
    return created(views.form(upload))


@app.get(
    "/objects/status",
    summary="The validation status of one of your objects",
    responses=views.responses(200, views.ObjectStatusOut, "The validator's verdict", views.FORBIDDEN, views.NOT_FOUND),
)
def object_status(key: Annotated[str, Query(min_length=1, max_length=1024)]) -> dict[str, Any]:
    return views.status(service().object_status(caller_id(app), key))


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    document = app.get_openapi_json_schema(title="S3 direct upload API", version="1.0.0")
    return Response(status_code=int(HTTPStatus.OK), content_type="application/json", body=document)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
