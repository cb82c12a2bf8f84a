"""Bodies of Uppy Companion's `/s3/...` routes, in Companion's own shapes (as `@uppy/aws-s3` 5.x sends them).

Companion's names are mostly camelCase (`uploadId`, `presignedUrls`); the parts it lists and
accepts use S3's names (`PartNumber`, `ETag`), given as explicit aliases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import ConfigDict, Field

from upload_core.uploads import SignedParts
from upload_edge.models import ApiModel


class CompanionModel(ApiModel):
    # Uppy sends what its own version knows (older releases send more per part): fields this API
    # does not use are ignored, as Companion ignores them.
    model_config = ConfigDict(extra="ignore")


# --- requests -----------------------------------------------------------------------------------


class CreateMultipartRequest(CompanionModel):
    filename: str = Field(min_length=1, max_length=1024)
    type: str | None = Field(default=None, max_length=255)
    # Every file's Uppy meta (name, type, relativePath: null, ...); only valid S3 metadata is kept.
    metadata: dict[str, object] | None = None


class CompanionPartIn(CompanionModel):
    part_number: int = Field(alias="PartNumber")
    etag: str = Field(alias="ETag", min_length=1, max_length=128)


class CompleteMultipartRequest(CompanionModel):
    parts: list[CompanionPartIn] = Field(min_length=1, max_length=10_000)


# --- responses ----------------------------------------------------------------------------------


class PresignedPostOut(CompanionModel):
    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str]
    expires: int


class MultipartCreatedOut(CompanionModel):
    key: str
    upload_id: str
    bucket: str


class PresignedUrlsOut(CompanionModel):
    presigned_urls: dict[str, str]

    @classmethod
    def from_domain(cls, value: object) -> Self:
        if not isinstance(value, SignedParts):
            raise TypeError(f"SignedParts, not {type(value).__name__}")
        return cls(presigned_urls={str(part.part_number): part.url for part in value.parts})


class PresignedPartOut(CompanionModel):
    url: str
    expires: int


class CompanionPartOut(CompanionModel):
    """One entry of S3's ListParts, as Companion passes it on."""

    part_number: int = Field(alias="PartNumber")
    etag: str = Field(alias="ETag")
    size: int = Field(alias="Size")
    last_modified: datetime | None = Field(alias="LastModified")


class MultipartCompletedOut(CompanionModel):
    location: str
    key: str
    bucket: str


class AbortedOut(CompanionModel):
    """Companion answers an abort with `{}`."""
