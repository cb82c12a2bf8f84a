"""Bodies of the files routes (camelCase on the wire), documented from the same classes."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import Field

from upload_core.files import FileList, FileView
from upload_edge.models import ApiModel


class DownloadOut(ApiModel):
    url: str
    expires_at: datetime


class FileOut(ApiModel):
    file_id: str
    key: str
    name: str
    size: int
    content_type: str
    status: str = Field(description="pending, valid or rejected")
    reason: str | None = Field(default=None, description="Why the validator rejected the file")
    created_at: datetime
    download: DownloadOut | None = Field(
        default=None, description="Only for a valid file, from GET /files/{fileId}: a short-lived attachment link"
    )

    @classmethod
    def of(cls, view: FileView) -> Self:
        return cls.from_domain(view)


class FilesOut(ApiModel):
    files: list[FileOut]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; absent at the end")

    @classmethod
    def of(cls, listing: FileList) -> Self:
        return cls(files=[FileOut.of(view) for view in listing.files], next_cursor=listing.next_cursor)
