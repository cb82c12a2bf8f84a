"""Body of `POST /s3/sign`: Uppy 6's `signRequest` request and the presigned request it sends to S3.

The request is Uppy's own (`@uppy/aws-s3` 6.x `PresignableRequest`: method, key, uploadId,
partNumber, contentType, expiresIn) plus the file's size, name and type, which the documented
`signRequest` adds for the first request of an upload. The response is Uppy's
`PresignedResponse` (`url`, `key?`, `headers?`, `fields?`) and the method to send.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from upload_core.uppy_signing import SignRequest
from upload_edge.models import ApiModel


def _omit_none(value: object) -> bool:
    return value is None


class SignRequestIn(ApiModel):
    # A later Uppy may send more than it sends today: what this API does not use is ignored.
    model_config = ConfigDict(extra="ignore")

    method: Literal["GET", "PUT", "POST", "DELETE", "HEAD"]
    key: str = Field(min_length=1, max_length=1024)
    upload_id: str | None = Field(default=None, min_length=1, max_length=1024)
    part_number: int | None = Field(default=None, ge=1, le=10_000)
    content_type: str | None = Field(default=None, max_length=255)
    expires_in: int | None = Field(default=None, ge=1)
    size: int | None = Field(default=None, ge=0)
    name: str | None = Field(default=None, min_length=1, max_length=1024)
    type: str | None = Field(default=None, max_length=255)
    # Uppy's chunk size when its `getChunkSize` option is set; otherwise Uppy's default is assumed.
    part_size: int | None = Field(default=None, ge=1)

    def to_domain(self) -> SignRequest:
        return SignRequest(**self.model_dump())


class SignedRequestOut(ApiModel):
    url: str
    method: Literal["GET", "PUT", "POST", "DELETE"]
    key: str | None = Field(default=None, exclude_if=_omit_none)
    headers: dict[str, str] | None = Field(default=None, exclude_if=_omit_none)
    fields: dict[str, str] | None = Field(default=None, exclude_if=_omit_none)
