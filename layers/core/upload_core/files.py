"""The caller's finished files: list them, fetch one (with a download URL once valid), delete one.

Every read goes to the caller's own registry partition (``OWNER#<caller>``), so another owner's
file is simply not there: 404 on every route, never 403 (which would confirm that it exists).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from upload_core.errors import Conflict, Gone, InvalidRequest, NotFound
from upload_core.registry import FileRecord, FileStatus, PlanState, Registry, registry_for
from upload_core.s3 import S3Gateway
from upload_core.settings import Settings

MAX_PAGE = 100
# Short on purpose: a download link is for now, and a new one costs one request.
DOWNLOAD_URL_SECONDS = 300
_FILE_ID = re.compile(r"[0-9a-f]{32}")
_ORDER = re.compile(r"\d{15}#[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Download:
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class FileView:
    file_id: str
    key: str
    name: str
    size: int
    content_type: str
    status: str
    reason: str | None
    created_at: datetime
    download: Download | None = None


@dataclass(frozen=True, slots=True)
class FileList:
    files: list[FileView]
    next_cursor: str | None


def attachment_disposition(name: str) -> str:
    """RFC 6266 ``attachment`` with an ASCII fallback ``filename`` and the exact name as RFC 5987
    ``filename*``, so no browser renders the bytes inline and every browser gets the name."""
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\;%' else "_" for ch in name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def encode_cursor(order: str) -> str:
    return base64.urlsafe_b64encode(order.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The listing position a cursor names. It only positions a query on the caller's own
    partition, so a forged one can skip files but never reach another owner's."""
    try:
        order = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        order = ""
    if not _ORDER.fullmatch(order):
        raise InvalidRequest("cursor is not one this API returned", code="InvalidCursor")
    return order


class FileService:
    def __init__(
        self,
        settings: Settings,
        s3: S3Gateway | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._s3 = s3 or S3Gateway(settings)
        self._registry = registry or registry_for(settings, clock)
        self._clock = clock

    def list(self, owner: str, *, limit: int, cursor: str | None = None, status: FileStatus | None = None) -> FileList:
        if status is FileStatus.DELETED:
            raise InvalidRequest("status is one of pending, valid, rejected", code="InvalidStatus")
        after = decode_cursor(cursor) if cursor else None
        page = self._registry.files(owner, limit=max(1, min(limit, MAX_PAGE)), after=after, status=status)
        return FileList(
            files=[_view(record) for record in page.files],
            next_cursor=encode_cursor(page.next_after) if page.next_after else None,
        )

    def get(self, owner: str, file_id: str) -> FileView:
        record = self._record(owner, file_id)
        if record.status is FileStatus.PENDING:
            raise Conflict("the file is not validated yet; try again shortly", code="NotValidated")
        if record.status is FileStatus.REJECTED:
            raise Gone(f"the file was rejected ({record.reason or 'invalid'}) and removed", code="Rejected")
        expires_in = min(DOWNLOAD_URL_SECONDS, self._settings.url_expiry_seconds)
        url = self._s3.presign_download(
            record.key,
            record.version_id,
            disposition=attachment_disposition(record.name),
            content_type=record.content_type or "application/octet-stream",
            expires_in=expires_in,
        )
        expires_at = datetime.fromtimestamp(self._clock() + expires_in, tz=UTC)
        return _view(record, Download(url=url, expires_at=expires_at))

    def describe(self, owner: str, file_id: str) -> FileView:
        """The file without a download URL, whatever its status (the CLI's status command)."""
        return _view(self._record(owner, file_id))

    def delete(self, owner: str, file_id: str) -> None:
        """Every version (and the quarantined copy) removed, the stored bytes released; a second
        call finds the tombstone and does nothing."""
        record = self._registry.file(owner, _checked_id(file_id))
        if record is None:
            raise NotFound("no such file", code="NoSuchFile")
        if record.status is FileStatus.DELETED:
            return
        # Bytes first, bookkeeping last: a failure half-way is finished by the retry.
        self._s3.delete_every_version(record.key)
        self._s3.delete_every_version(f"{self._settings.quarantine_prefix}/{record.key}")
        plan = self._registry.plan(record.key)
        if plan is not None:
            if plan.holds_reservation:
                self._registry.release(plan, PlanState.ABORTED)
            elif plan.state is PlanState.COMPLETED:
                self._registry.release_stored(plan, PlanState.DELETED)
        self._registry.forget_file(owner, record.file_id)

    def _record(self, owner: str, file_id: str) -> FileRecord:
        record = self._registry.file(owner, _checked_id(file_id))
        if record is None or record.status is FileStatus.DELETED:
            raise NotFound("no such file", code="NoSuchFile")
        return record


def _checked_id(file_id: str) -> str:
    if not _FILE_ID.fullmatch(file_id):
        raise NotFound("no such file", code="NoSuchFile")
    return file_id


def _view(record: FileRecord, download: Download | None = None) -> FileView:
    return FileView(
        file_id=record.file_id,
        key=record.key,
        name=record.name,
        size=record.size,
        content_type=record.content_type,
        status=record.status.value,
        reason=record.reason,
        created_at=datetime.fromtimestamp(record.created_at_ms / 1000, tz=UTC),
        download=download,
    )
