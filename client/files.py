"""The caller's finished files: list, status, wait for the verdict, download (verified), delete.

Built on ``UploadApi.call``; the ``Uploader`` exposes these as its files operations.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from client.api import UploadApi
from client.cancellation import Cancellation
from client.errors import ApiError, LocalFileError, NotFoundError, TransferError

DOWNLOAD_CHUNK = 1 << 20
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FileInfo:
    file_id: str
    key: str
    name: str
    size: int
    content_type: str
    status: str  # pending, valid, rejected
    reason: str | None
    created_at: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> FileInfo:
        return cls(
            file_id=str(body["fileId"]),
            key=str(body["key"]),
            name=str(body["name"]),
            size=int(body["size"]),
            content_type=str(body.get("contentType") or ""),
            status=str(body["status"]),
            reason=body.get("reason"),
            created_at=str(body.get("createdAt") or ""),
        )


def file_id_of(target: str) -> str:
    """A fileId, or the fileId inside a key (``uploads/<owner>/<fileId>/<name>``)."""
    parts = target.strip("/").split("/")
    return parts[-2] if len(parts) >= 3 else target


class Files:
    def __init__(
        self,
        api: UploadApi,
        session: requests.Session,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._session = session
        self._sleep = sleep
        self._clock = clock

    def list(self, *, status: str | None = None, page_size: int = 100) -> Iterator[FileInfo]:
        """Every file of the caller, newest first (all pages)."""
        params: dict[str, str] = {"limit": str(page_size)}
        if status:
            params["status"] = status
        while True:
            page = self._api.call("GET", "/files", params=params) or {}
            for item in page.get("files") or []:
                yield FileInfo.of(item)
            cursor = page.get("nextCursor")
            if not cursor:
                return
            params["cursor"] = str(cursor)

    def status(self, target: str) -> FileInfo:
        try:
            body = self._api.call("GET", f"/files/{file_id_of(target)}/status")
        except ApiError as error:
            if error.status == 404:
                raise NotFoundError(f"no file {target} among yours (not arrived yet, or deleted)") from error
            raise
        return FileInfo.of(body or {})

    def wait(
        self, target: str, *, timeout: float = 120.0, interval: float = 0.5, stop: Cancellation | None = None
    ) -> FileInfo | None:
        """The file once the validator has judged it; None when no verdict came in ``timeout``.
        Until the validator sees the object the file is unknown (404): that counts as pending.
        ``stop``, once cancelled, ends the wait with TransferCancelled (within ``interval``)."""
        deadline = self._clock() + timeout
        while True:
            if stop is not None:
                stop.check()
            try:
                info = self.status(target)
                if info.status != "pending":
                    return info
            except NotFoundError:
                pass
            if self._clock() >= deadline:
                return None
            self._sleep(interval)
            if stop is not None:
                stop.check()

    def download(
        self, file_id: str, path: str | os.PathLike[str], on_progress: ProgressCallback | None = None
    ) -> FileInfo:
        """The file's bytes to ``path`` (through ``path``.part, renamed once verified): its size,
        and its MD5 against the object's ETag when that is one (single-request uploads)."""
        try:
            body = self._api.call("GET", f"/files/{file_id_of(file_id)}") or {}
        except ApiError as error:
            if error.status == 404:
                raise NotFoundError(f"no file {file_id} among yours") from error
            raise
        info = FileInfo.of(body)
        url = str((body.get("download") or {}).get("url") or "")
        if not url:
            raise TransferError(f"the API gave no download link for {file_id}")
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        try:
            with self._session.get(url, stream=True, timeout=(10, 60)) as response:
                if response.status_code != 200:
                    raise TransferError(f"the download of {file_id} failed: HTTP {response.status_code}")
                etag = response.headers.get("ETag", "").strip('"')
                with partial.open("wb") as out:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if on_progress is not None:
                            on_progress(len(chunk))
        except requests.exceptions.RequestException as error:
            partial.unlink(missing_ok=True)
            raise TransferError(f"the download of {file_id} was cut: {type(error).__name__}") from error
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise LocalFileError(f"cannot write {partial}: {error.strerror}") from error
        problem = None
        if received != info.size:
            problem = f"{received} bytes received, {info.size} expected"
        elif etag and "-" not in etag and etag != digest.hexdigest():
            problem = "its MD5 does not match the object's ETag"
        if problem:
            partial.unlink(missing_ok=True)
            raise TransferError(f"the download of {file_id} is corrupt: {problem}")
        partial.replace(target)
        return info

    def delete(self, target: str) -> None:
        try:
            self._api.call("DELETE", f"/files/{file_id_of(target)}")
        except ApiError as error:
            if error.status == 404:
                raise NotFoundError(f"no file {target} among yours") from error
            raise
