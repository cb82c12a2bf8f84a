"""Bodies of POST /imports: one model per request and response, camelCase on the wire."""

from __future__ import annotations

from pydantic import Field

from upload_core.ssrf import MAX_URL_CHARS
from upload_edge.models import ApiModel


class CreateImportRequest(ApiModel):
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    filename: str | None = Field(default=None, min_length=1, max_length=1024)


class ImportedOut(ApiModel):
    key: str
    size: int
    content_type: str
    etag: str
