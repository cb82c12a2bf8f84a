"""Shapes of the native routes' responses (camelCase JSON), and their models for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from upload_core.s3 import PendingUpload, UploadedPart
from upload_core.uploads import CompletedUpload, FormUpload, ObjectStatus, SignedParts, StartedUpload


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def started(upload: StartedUpload) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uploadId": upload.upload_id,
        "key": upload.key,
        "partSize": upload.part_size,
        "partCount": upload.part_count,
    }
    if upload.checksum_algorithm:
        body["checksumAlgorithm"] = upload.checksum_algorithm
    return body


def pending(uploads: list[PendingUpload]) -> dict[str, Any]:
    return {
        "uploads": [
            {"uploadId": upload.upload_id, "key": upload.key, "initiated": iso(upload.initiated)} for upload in uploads
        ]
    }


def signed(parts: SignedParts) -> dict[str, Any]:
    return {
        "parts": [{"partNumber": part.part_number, "url": part.url, "headers": part.headers} for part in parts.parts],
        "expiresAt": iso(parts.expires_at),
    }


def uploaded_parts(parts: list[UploadedPart]) -> dict[str, Any]:
    return {
        "parts": [
            {"partNumber": part.part_number, "etag": part.etag, "size": part.size, **_checksum(part)} for part in parts
        ]
    }


def _checksum(part: UploadedPart) -> dict[str, str]:
    return {"checksum": part.checksum} if part.checksum else {}


def completed(upload: CompletedUpload) -> dict[str, Any]:
    return {"key": upload.key, "etag": upload.etag, "size": upload.size, "location": upload.location}


def form(upload: FormUpload) -> dict[str, Any]:
    return {"url": upload.url, "fields": upload.fields, "key": upload.key, "expiresAt": iso(upload.expires_at)}


def status(found: ObjectStatus) -> dict[str, Any]:
    return {
        "key": found.key,
        "status": found.status,
        "reason": found.reason,
        "tags": found.tags,
        "quarantined": found.quarantine_key is not None,
    }


# --- documentation of the responses above, for the OpenAPI document ----------------------------
# The functions above build the bodies; these models only describe them (closed objects, so a
# field added above without its model fails the schema conformance run in tests/integration).


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class UploadStartedOut(_Out):
    upload_id: str
    key: str
    part_size: int | None
    part_count: int | None
    checksum_algorithm: str | None = None


class PendingUploadOut(_Out):
    upload_id: str
    key: str
    initiated: str | None


class PendingUploadsOut(_Out):
    uploads: list[PendingUploadOut]


class SignedPartOut(_Out):
    part_number: int
    url: str
    headers: dict[str, str]


class SignedPartsOut(_Out):
    parts: list[SignedPartOut]
    expires_at: str | None


class UploadedPartOut(_Out):
    part_number: int
    etag: str
    size: int
    checksum: str | None = None


class UploadedPartsOut(_Out):
    parts: list[UploadedPartOut]


class CompletedUploadOut(_Out):
    key: str
    etag: str
    size: int
    location: str


class FormUploadOut(_Out):
    url: str
    fields: dict[str, str]
    key: str
    expires_at: str | None


class ObjectStatusOut(_Out):
    key: str
    status: str
    reason: str | None
    tags: dict[str, str]
    quarantined: bool


class ErrorOut(_Out):
    """Every error the functions answer with."""

    code: str
    message: str


class GatewayErrorOut(BaseModel):
    """Errors API Gateway may answer with before or instead of the function ({"message": ...}:
    no token, a body over 10 MB, a function that failed or timed out); open, so that the
    function's own {"code", "message"} for the same status fits too."""

    message: str


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


def _error(description: str) -> dict[str, Any]:
    return _json(ErrorOut, description)


def _gateway_error(description: str) -> dict[str, Any]:
    return _json(GatewayErrorOut, description)


# Statuses every route may answer with.
COMMON_ERRORS: dict[int, Any] = {
    400: _error("The request is malformed or invalid"),
    401: _gateway_error("No token, or a token the JWT authorizer refuses"),
    413: _gateway_error("The request body is over API Gateway's limit, or the size over the API's limit"),
    502: _gateway_error("The storage service failed, or the function did"),
    503: _gateway_error("The storage service is busy (retry later)"),
    504: _gateway_error("The storage service did not answer in time"),
}
FORBIDDEN = {403: _error("The key is not one the API gave the caller")}
NOT_FOUND = {404: _error("No such upload for this key, or no object at it")}
CONFLICT = {409: _error("The object was changed by another request")}
UNSUPPORTED = {415: _error("The content type is not allowed")}


def responses(status: int, model: type[BaseModel] | None, description: str, *extra: dict[int, Any]) -> dict[int, Any]:
    """The `responses=` of a route: its success, the common errors and the route's own."""
    # An explicit empty content: Powertools would otherwise describe the return annotation.
    success = _json(model, description) if model is not None else {"description": description, "content": {}}
    documented: dict[int, Any] = {status: success, **COMMON_ERRORS}
    for more in extra:
        documented.update(more)
    return documented
