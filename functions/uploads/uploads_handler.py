"""HTTP API for direct-to-S3 uploads: native routes, Uppy Companion routes and the OpenAPI document."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Annotated, Any

import uppy_sign_routes
from aws_lambda_powertools.event_handler import Depends, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

import companion_routes
from service_factory import put_batches, upload_service
from upload_core.observability import logger, metrics, tracer
from upload_core.put_batches import BatchFile, PutBatches
from upload_core.settings import get_settings
from upload_core.uploads import ClientPart, PartRequest, UploadService
from upload_edge import api_document
from upload_edge import openapi as docs
from upload_edge.identity import caller_id
from upload_edge.providers import Lazy
from upload_edge.resolver import http_resolver
from upload_models import (
    CompletedUploadOut,
    CompleteUploadRequest,
    CreateUploadRequest,
    FormUploadOut,
    FormUploadRequest,
    ObjectStatusOut,
    PendingUploadsOut,
    PutBatchOut,
    PutBatchRequest,
    SignedPartsOut,
    SignPartsRequest,
    UploadedPartsOut,
    UploadStartedOut,
)

settings = get_settings()  # fail at start, not on the first request, when a setting is wrong
app = http_resolver(validation_codes={"/s3/": companion_routes.VALIDATION_CODES})
app.include_router(companion_routes.router)
app.include_router(uppy_sign_routes.router)

Caller = Annotated[str, Depends(caller_id)]
Service = Annotated[UploadService, Depends(upload_service)]
Batches = Annotated[PutBatches, Depends(put_batches)]
KeyQuery = Annotated[str, Query(min_length=1, max_length=1024)]


@app.post(
    "/uploads",
    summary="Start a multipart upload",
    responses=docs.responses(201, UploadStartedOut, "The upload has started", docs.UNSUPPORTED),
)
def create_upload(
    request: Annotated[CreateUploadRequest, Body()], caller: Caller, service: Service
) -> Response[UploadStartedOut]:
    upload = service.start(
        caller,
        filename=request.filename,
        content_type=request.content_type,
        size=request.size,
        part_size=request.part_size,
        metadata=request.metadata,
        checksum_algorithm=request.checksum_algorithm,
    )
    return Response(
        status_code=int(HTTPStatus.CREATED),
        content_type=content_types.APPLICATION_JSON,
        body=UploadStartedOut.from_domain(upload),
    )


@app.get(
    "/uploads",
    summary="List the caller's unfinished uploads",
    responses=docs.responses(200, PendingUploadsOut, "The caller's unfinished uploads"),
)
def list_uploads(caller: Caller, service: Service) -> PendingUploadsOut:
    return PendingUploadsOut.from_domain(service.list_pending(caller))


@app.post(
    "/uploads/<uploadId>/parts",
    summary="Sign part URLs, in batches",
    responses=docs.responses(200, SignedPartsOut, "Part URLs and the headers to send", docs.FORBIDDEN, docs.NOT_FOUND),
)
def sign_parts(
    uploadId: str, request: Annotated[SignPartsRequest, Body()], caller: Caller, service: Service
) -> SignedPartsOut:
    wanted = [PartRequest(part_number=number) for number in request.part_numbers or []]
    wanted += [
        PartRequest(part_number=part.part_number, content_md5=part.content_md5, checksum=part.checksum)
        for part in request.parts or []
    ]
    signed = service.sign_parts(caller, uploadId, request.key, wanted, checksum_algorithm=request.checksum_algorithm)
    return SignedPartsOut.from_domain(signed)


@app.get(
    "/uploads/<uploadId>/parts",
    summary="List the parts uploaded so far (to resume)",
    responses=docs.responses(200, UploadedPartsOut, "Every uploaded part", docs.FORBIDDEN, docs.NOT_FOUND),
)
def list_parts(uploadId: str, key: KeyQuery, caller: Caller, service: Service) -> UploadedPartsOut:
    return UploadedPartsOut.from_domain(service.list_parts(caller, uploadId, key))


@app.post(
    "/uploads/<uploadId>/complete",
    summary="Complete a multipart upload",
    responses=docs.responses(
        200, CompletedUploadOut, "The stored object", docs.FORBIDDEN, docs.NOT_FOUND, docs.CONFLICT
    ),
)
def complete_upload(
    uploadId: str, request: Annotated[CompleteUploadRequest, Body()], caller: Caller, service: Service
) -> CompletedUploadOut:
    parts = (
        [ClientPart(part_number=part.part_number, etag=part.etag) for part in request.parts]
        if request.parts is not None
        else None
    )
    return CompletedUploadOut.from_domain(service.complete(caller, uploadId, request.key, parts))


@app.delete(
    "/uploads/<uploadId>",
    summary="Abort a multipart upload (idempotent)",
    responses=docs.responses(204, None, "Aborted (or already gone)", docs.FORBIDDEN, docs.NOT_FOUND),
)
def abort_upload(uploadId: str, key: KeyQuery, caller: Caller, service: Service) -> Response[None]:
    service.abort(caller, uploadId, key)
    return Response(status_code=int(HTTPStatus.NO_CONTENT), body=None)


@app.post(
    "/uploads/form",
    summary="A presigned POST form for a small single-request upload",
    responses=docs.responses(201, FormUploadOut, "The form's URL and fields", docs.UNSUPPORTED),
)
def form_upload(
    request: Annotated[FormUploadRequest, Body()], caller: Caller, service: Service
) -> Response[FormUploadOut]:
    upload = service.form(caller, filename=request.filename, content_type=request.content_type, size=request.size)
    return Response(
        status_code=int(HTTPStatus.CREATED),
        content_type=content_types.APPLICATION_JSON,
        body=FormUploadOut.from_domain(upload),
    )


@app.post(
    "/uploads/batch",
    summary="Presigned PUTs for up to 50 small files at once",
    description=(
        "Each file is checked as a form is (type, size); the caller's rate counts every file, and"
        " the quota and in-flight slots of all of them are reserved together or not at all. Each"
        " URL signs the file's exact length, type and CRC32, and If-None-Match: *."
    ),
    responses=docs.responses(
        201, PutBatchOut, "One URL and its headers per file, in order", docs.UNSUPPORTED, docs.TOO_MANY
    ),
)
def put_batch(request: Annotated[PutBatchRequest, Body()], caller: Caller, batches: Batches) -> Response[PutBatchOut]:
    files = [
        BatchFile(
            filename=file.filename, content_type=file.content_type, size=file.size, checksum_crc32=file.checksum_crc32
        )
        for file in request.files
    ]
    return Response(
        status_code=int(HTTPStatus.CREATED),
        content_type=content_types.APPLICATION_JSON,
        body=PutBatchOut.from_domain(batches.sign(caller, files)),
    )


@app.get(
    "/objects/status",
    summary="The validation status of one of your objects",
    responses=docs.responses(200, ObjectStatusOut, "The validator's verdict", docs.FORBIDDEN, docs.NOT_FOUND),
)
def object_status(key: KeyQuery, caller: Caller, service: Service) -> ObjectStatusOut:
    return ObjectStatusOut.from_domain(service.object_status(caller, key))


# Public and the same for every request: built once per container, on first use.
# The whole API's document: this function's routes and the other functions' (api_document).
openapi_json = Lazy(
    lambda: json.dumps(
        api_document.merge(
            json.loads(app.get_openapi_json_schema(title="S3 direct upload API", version="1.0.0")),
            [api_document.other_functions_part()],
        )
    )
)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=int(HTTPStatus.OK), content_type=content_types.APPLICATION_JSON, body=openapi_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
