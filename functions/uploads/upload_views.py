"""Shapes of the native routes' responses (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
