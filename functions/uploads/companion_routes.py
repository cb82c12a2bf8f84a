"""Uppy Companion's `/s3/...` routes with Companion's request and response shapes.

Served by the same domain code as the native routes, so they get the ownership, limit and
content-type checks that Companion itself lacks.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from companion_models import (
    AbortedOut,
    CompanionPartOut,
    CompleteMultipartRequest,
    CreateMultipartRequest,
    MultipartCompletedOut,
    MultipartCreatedOut,
    PresignedPartOut,
    PresignedPostOut,
    PresignedUrlsOut,
)
from service_factory import upload_service
from upload_core import object_meta
from upload_core.errors import UploadError
from upload_core.settings import get_settings
from upload_core.uploads import ClientPart, PartRequest, UploadService
from upload_edge import openapi as docs
from upload_edge.http_errors import ValidationCodes
from upload_edge.identity import caller_id

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

# Companion's clients know these codes for a refused request; everything else is InvalidRequest.
VALIDATION_CODES = ValidationCodes(
    missing_parameter="MissingParameter",
    by_field={
        "partNumber": "InvalidPartNumber",
        "partNumbers": "InvalidPartNumber",
        "PartNumber": "InvalidPart",
        "ETag": "InvalidPart",
    },
)
# "1,2,3" as Uppy sends it (spaces and a trailing comma tolerated); 1..10000 is checked with the part limit.
_PART_NUMBER_LIST = r"^ *[1-9][0-9]{0,4} *(, *[1-9][0-9]{0,4} *)*,? *$"
# Uppy signs a few parts per batch; API Gateway refuses request lines and headers over 10 KB anyway.
_MAX_PART_NUMBER_LIST_CHARS = 2048


Caller = Annotated[str, Depends(caller_id)]
Service = Annotated[UploadService, Depends(upload_service)]
KeyQuery = Annotated[str, Query(min_length=1, max_length=1024)]
# Companion lets "-1" and "5abc" through; S3 part numbers are 1..10000.
PartNumberPath = Annotated[int, Path(ge=1, le=10_000)]


def _uppy_metadata(raw: dict[str, object] | None) -> dict[str, str]:
    """Uppy sends every file's meta (name, type, relativePath: null, ...): keep the entries that
    are valid S3 metadata and drop the rest instead of failing the upload over them."""
    kept: dict[str, str] = {}
    for name, value in (raw or {}).items():
        try:
            kept.update(object_meta.user_metadata({name: value}))
        except UploadError:
            continue
        if len(kept) == object_meta.MAX_USER_METADATA_ENTRIES:
            break
    return kept


@router.get(
    "/s3/params",
    summary="Uppy (Companion): a presigned POST form for a single-request upload",
    responses=docs.responses(200, PresignedPostOut, "The form's method, URL and fields", docs.UNSUPPORTED),
)
def presigned_post_params(
    filename: Annotated[str, Query(min_length=1, max_length=1024)],
    caller: Caller,
    service: Service,
    type: Annotated[str, Query(max_length=255)] = "",  # Companion's name for the content type
) -> PresignedPostOut:
    form = service.form(caller, filename=filename, content_type=type, size=None)
    return PresignedPostOut(url=form.url, fields=form.fields, expires=get_settings().url_expiry_seconds)


@router.post(
    "/s3/multipart",
    summary="Uppy (Companion): start a multipart upload",
    responses=docs.responses(200, MultipartCreatedOut, "The upload has started", docs.UNSUPPORTED),
)
def create_multipart(
    request: Annotated[CreateMultipartRequest, Body()], caller: Caller, service: Service
) -> MultipartCreatedOut:
    upload = service.start(
        caller,
        filename=request.filename,
        content_type=request.type or "",
        size=None,
        metadata=_uppy_metadata(request.metadata),
    )
    return MultipartCreatedOut(key=upload.key, upload_id=upload.upload_id, bucket=service.bucket)


# Registered before the `{partNumber}` route so that "batch" is never read as a part number.
@router.get(
    "/s3/multipart/<uploadId>/batch",
    summary="Uppy (Companion): sign several part URLs",
    responses=docs.responses(200, PresignedUrlsOut, "A URL per part number", docs.FORBIDDEN, docs.NOT_FOUND),
)
def batch_sign_parts(
    uploadId: str,
    key: KeyQuery,
    partNumbers: Annotated[str, Query(min_length=1, max_length=_MAX_PART_NUMBER_LIST_CHARS, pattern=_PART_NUMBER_LIST)],
    caller: Caller,
    service: Service,
) -> PresignedUrlsOut:
    requests = [PartRequest(part_number=int(item)) for item in partNumbers.split(",") if item.strip()]
    return PresignedUrlsOut.from_domain(service.sign_parts(caller, uploadId, key, requests))


@router.get(
    "/s3/multipart/<uploadId>/<partNumber>",
    summary="Uppy (Companion): sign one part URL",
    responses=docs.responses(200, PresignedPartOut, "The part's URL", docs.FORBIDDEN, docs.NOT_FOUND),
)
def sign_part(
    uploadId: str, partNumber: PartNumberPath, key: KeyQuery, caller: Caller, service: Service
) -> PresignedPartOut:
    signed = service.sign_parts(caller, uploadId, key, [PartRequest(part_number=partNumber)])
    return PresignedPartOut(url=signed.parts[0].url, expires=get_settings().url_expiry_seconds)


@router.get(
    "/s3/multipart/<uploadId>",
    summary="Uppy (Companion): list the parts uploaded so far",
    responses=docs.responses(200, list[CompanionPartOut], "S3's parts", docs.FORBIDDEN, docs.NOT_FOUND),
)
def list_parts(uploadId: str, key: KeyQuery, caller: Caller, service: Service) -> list[CompanionPartOut]:
    return [CompanionPartOut.from_domain(part) for part in service.list_parts(caller, uploadId, key)]


@router.post(
    "/s3/multipart/<uploadId>/complete",
    summary="Uppy (Companion): complete a multipart upload",
    responses=docs.responses(
        200, MultipartCompletedOut, "The stored object", docs.FORBIDDEN, docs.NOT_FOUND, docs.CONFLICT
    ),
)
def complete_multipart(
    uploadId: str,
    key: KeyQuery,
    request: Annotated[CompleteMultipartRequest, Body()],
    caller: Caller,
    service: Service,
) -> MultipartCompletedOut:
    parts = [ClientPart(part_number=part.part_number, etag=part.etag) for part in request.parts]
    completed = service.complete(caller, uploadId, key, parts)
    return MultipartCompletedOut(location=completed.location, key=completed.key, bucket=service.bucket)


@router.delete(
    "/s3/multipart/<uploadId>",
    summary="Uppy (Companion): abort a multipart upload (idempotent)",
    responses=docs.responses(200, AbortedOut, "Aborted (or already gone)", docs.FORBIDDEN, docs.NOT_FOUND),
)
def abort_multipart(uploadId: str, key: KeyQuery, caller: Caller, service: Service) -> AbortedOut:
    service.abort(caller, uploadId, key)
    return AbortedOut()
