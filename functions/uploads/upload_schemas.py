"""Request bodies of the native upload routes (camelCase on the wire)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MAX_FILENAME_CHARS = 1024
MAX_KEY_CHARS = 1024


class ApiModel(BaseModel):
    # Strict: "12" is not a size and true is not a part number; unknown fields are typos.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")


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
