"""Bodies of POST /imports: one model per request and response, camelCase on the wire."""

from __future__ import annotations

from typing import Self

from pydantic import Field

from upload_core.remote_import import ImportedObject
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

    @classmethod
    def from_domain(cls, imported: ImportedObject) -> Self:
        return cls(key=imported.key, size=imported.size, content_type=imported.content_type, etag=imported.etag)
