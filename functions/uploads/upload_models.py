"""Bodies of the native upload routes: each request and response is one model, camelCase on the wire.

Routes return the response models; Powertools validates and serializes them by alias, and the
OpenAPI document describes them from the same classes. Domain objects become bodies in one place,
`Model.from_domain(...)` (by attribute name, ApiModel's, unless a model says otherwise).
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import Field

from upload_core.put_batches import MAX_BATCH_FILES
from upload_core.uploads import ObjectStatus
from upload_edge.models import ApiModel

MAX_FILENAME_CHARS = 1024
MAX_KEY_CHARS = 1024


def _omit_none(value: object) -> bool:
    return value is None


# --- requests -----------------------------------------------------------------------------------


class CreateUploadRequest(ApiModel):
    filename: str = Field(min_length=1, max_length=MAX_FILENAME_CHARS)
    content_type: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    part_size: int | None = Field(default=None, ge=1)
    metadata: dict[str, str] | None = None
    checksum_algorithm: str | None = Field(default=None, max_length=16)


class PartToSign(ApiModel):
    part_number: int
    content_md5: str | None = Field(default=None, max_length=64)
    checksum: str | None = Field(default=None, max_length=128)


class SignPartsRequest(ApiModel):
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    part_numbers: list[int] | None = Field(default=None, max_length=10_000)
    parts: list[PartToSign] | None = Field(default=None, max_length=10_000)
    checksum_algorithm: str | None = Field(default=None, max_length=16)


class CompletedPartIn(ApiModel):
    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=128)


class CompleteUploadRequest(ApiModel):
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    parts: list[CompletedPartIn] | None = Field(default=None, max_length=10_000)


class FormUploadRequest(ApiModel):
    filename: str = Field(min_length=1, max_length=MAX_FILENAME_CHARS)
    content_type: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)


class BatchFileIn(ApiModel):
    filename: str = Field(min_length=1, max_length=MAX_FILENAME_CHARS)
    content_type: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    # base64 of the file's CRC32 (4 bytes), as S3's x-amz-checksum-crc32 header carries it.
    checksum_crc32: str = Field(min_length=1, max_length=16)


class PutBatchRequest(ApiModel):
    files: list[BatchFileIn] = Field(min_length=1, max_length=MAX_BATCH_FILES)


# --- responses ----------------------------------------------------------------------------------


class UploadStartedOut(ApiModel):
    upload_id: str
    key: str
    part_size: int | None
    part_count: int | None
    # Only present when the upload was started with one.
    checksum_algorithm: str | None = Field(default=None, exclude_if=_omit_none)


class PendingUploadOut(ApiModel):
    upload_id: str
    key: str
    initiated: datetime


class PendingUploadsOut(ApiModel):
    uploads: list[PendingUploadOut]

    @classmethod
    def from_domain(cls, value: object) -> Self:
        """`value`: the list of upload_core's PendingUpload."""
        return cls.model_validate({"uploads": value}, from_attributes=True)


class SignedPartOut(ApiModel):
    part_number: int
    url: str
    headers: dict[str, str]
    # The exact byte count S3 accepts at this URL (signed in), for uploads that declared their size.
    size: int | None = Field(default=None, exclude_if=_omit_none)


class SignedPartsOut(ApiModel):
    parts: list[SignedPartOut]
    expires_at: datetime


class UploadedPartOut(ApiModel):
    part_number: int
    etag: str
    size: int
    # Only present for uploads started with a checksum algorithm.
    checksum: str | None = Field(default=None, exclude_if=_omit_none)


class UploadedPartsOut(ApiModel):
    parts: list[UploadedPartOut]

    @classmethod
    def from_domain(cls, value: object) -> Self:
        """`value`: the list of upload_core's UploadedPart."""
        return cls.model_validate({"parts": value}, from_attributes=True)


class CompletedUploadOut(ApiModel):
    key: str
    etag: str
    size: int
    location: str


class FormUploadOut(ApiModel):
    url: str
    fields: dict[str, str]
    key: str
    expires_at: datetime


class SignedFilePutOut(ApiModel):
    file_id: str
    key: str
    url: str
    # Send exactly these with a PUT of exactly `size` bytes: S3 refuses anything else.
    headers: dict[str, str]
    size: int


class PutBatchOut(ApiModel):
    files: list[SignedFilePutOut]
    expires_at: datetime


class ObjectStatusOut(ApiModel):
    key: str
    status: str
    reason: str | None
    tags: dict[str, str]
    quarantined: bool

    @classmethod
    def from_domain(cls, value: object) -> Self:
        if not isinstance(value, ObjectStatus):
            raise TypeError(f"ObjectStatus, not {type(value).__name__}")
        return cls(
            key=value.key,
            status=value.status,
            reason=value.reason,
            tags=value.tags,
            quarantined=value.quarantine_key is not None,
        )
