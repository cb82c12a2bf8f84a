"""Uppy Companion's `/s3/...` routes with Companion's request and response shapes.

Served by the same domain code as the native routes, so they get the ownership, limit and
content-type checks that Companion itself lacks.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from caller import caller_id
from service_factory import service
from upload_core import object_meta
from upload_core.errors import InvalidRequest, UploadError
from upload_core.http_errors import json_body
from upload_core.settings import get_settings
from upload_core.uploads import ClientPart, PartRequest
from upload_views import iso

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
_PART_NUMBER = re.compile(r"^[1-9][0-9]{0,4}$")


def _json(body: Any, status: int = HTTPStatus.OK) -> Response[str]:
    return Response(status_code=int(status), content_type="application/json", body=json.dumps(body))


def _query(name: str, *, required: bool = True) -> str:
    value = (router.current_event.query_string_parameters or {}).get(name, "")
    if required and not value:
        raise InvalidRequest(f"query parameter {name!r} is required", code="MissingParameter")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name!r} must be a non-empty string", code="InvalidRequest")
    return value


def _part_number(raw: str) -> int:
    # Companion lets "-1" and "5abc" through; S3 part numbers are 1..10000.
    if not _PART_NUMBER.fullmatch(raw) or int(raw) > 10_000:
        raise InvalidRequest("partNumber must be an integer between 1 and 10000", code="InvalidPartNumber")
    return int(raw)


def _uppy_metadata(raw: Any) -> dict[str, str]:
    """Uppy sends every file's meta (name, type, relativePath: null, ...): keep the entries that
    are valid S3 metadata and drop the rest instead of failing the upload over them."""
    if not isinstance(raw, dict):
        return {}
    kept: dict[str, str] = {}
    for name, value in raw.items():
        try:
            kept.update(object_meta.user_metadata({str(name): value}))
        except UploadError:
            continue
        if len(kept) == object_meta.MAX_USER_METADATA_ENTRIES:
            break
    return kept


@router.get("/s3/params", include_in_schema=False)
def presigned_post_params() -> Response[str]:
    upload = service().form(
        caller_id(router), filename=_query("filename"), content_type=_query("type", required=False), size=None
    )
    expires = get_settings().url_expiry_seconds
    return _json({"method": "POST", "url": upload.url, "fields": upload.fields, "expires": expires})


@router.post("/s3/multipart", include_in_schema=False)
def create_multipart() -> Response[str]:
    body = json_body(router)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", code="InvalidRequest")
    content_type = body.get("type")
    upload = service().start(
        caller_id(router),
        filename=_text(body, "filename"),
        content_type=content_type if isinstance(content_type, str) else "",
        size=None,
        metadata=_uppy_metadata(body.get("metadata")),
    )
    return _json({"key": upload.key, "uploadId": upload.upload_id, "bucket": service().bucket})


# Registered before the `{partNumber}` route so that "batch" is never read as a part number.
@router.get("/s3/multipart/<uploadId>/batch", include_in_schema=False)
def batch_sign_parts(uploadId: str) -> Response[str]:
    raw_numbers = [item.strip() for item in _query("partNumbers").split(",") if item.strip()]
    requests = [PartRequest(part_number=_part_number(item)) for item in raw_numbers]
    signed = service().sign_parts(caller_id(router), uploadId, _query("key"), requests)
    return _json({"presignedUrls": {str(part.part_number): part.url for part in signed.parts}})


@router.get("/s3/multipart/<uploadId>/<partNumber>", include_in_schema=False)
def sign_part(uploadId: str, partNumber: str) -> Response[str]:
    requests = [PartRequest(part_number=_part_number(partNumber))]
    signed = service().sign_parts(caller_id(router), uploadId, _query("key"), requests)
    return _json({"url": signed.parts[0].url, "expires": get_settings().url_expiry_seconds})


@router.get("/s3/multipart/<uploadId>", include_in_schema=False)
def list_parts(uploadId: str) -> Response[str]:
    parts = service().list_parts(caller_id(router), uploadId, _query("key"))
    return _json(
        [
            {
                "PartNumber": part.part_number,
                "ETag": part.etag,
                "Size": part.size,
                "LastModified": iso(part.last_modified),
            }
            for part in parts
        ]
    )


@router.post("/s3/multipart/<uploadId>/complete", include_in_schema=False)
def complete_multipart(uploadId: str) -> Response[str]:
    body = json_body(router)
    raw_parts = body.get("parts") if isinstance(body, dict) else None
    if not isinstance(raw_parts, list) or not raw_parts:
        raise InvalidRequest("'parts' must be a non-empty list of {PartNumber, ETag}", code="InvalidRequest")
    parts = []
    for raw in raw_parts:
        if not isinstance(raw, dict):
            raise InvalidRequest("each part must be an object with PartNumber and ETag", code="InvalidPart")
        number, etag = raw.get("PartNumber"), raw.get("ETag")
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str) or not etag:
            raise InvalidRequest("each part needs an integer PartNumber and an ETag", code="InvalidPart")
        parts.append(ClientPart(part_number=number, etag=etag))
    completed = service().complete(caller_id(router), uploadId, _query("key"), parts)
    return _json({"location": completed.location, "key": completed.key, "bucket": service().bucket})


@router.delete("/s3/multipart/<uploadId>", include_in_schema=False)
def abort_multipart(uploadId: str) -> Response[str]:
    service().abort(caller_id(router), uploadId, _query("key"))
    return _json({})
