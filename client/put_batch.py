"""Small files in batches: one ``POST /uploads/batch`` per ``batch_size`` files, one PUT per file.

A form costs one API call per file; on a busy API (or on one machine, where the API's CPU is the
uploads' CPU) those calls are what limits many small files. Here the first file of a batch to
start signs the whole batch (it and the next small files not yet signed, up to ``batch_size``):
the API checks every file as it checks a form, reserves them all at once and answers with one
presigned PUT per file. Every file is still its own task in ``put_files``'s workers, PUT over the
uploader's pooled session, retried on its own, with its own progress and result.

Each PUT sends the file's exact bytes with the headers the API signed: its CRC32 (zlib's,
computed here when the batch is signed, and again on the bytes sent, so a file changed meanwhile
is an error, not a wrong upload), its type and ``If-None-Match: *``. S3 refuses any other body,
length or type, and a second write at the key.

When a batch cannot be signed, its files go the way ``Uploader.send`` sends one file (a form, or
multipart), so that each file gets its own answer: an API without the route, a file the API
refuses (type, size: the form path then fails that file alone, or sends it as multipart), or no
upload slot free at all. Fewer slots free than files asked for (``TooManyUploads`` with the
caller's usage) signs as many as fit now and leaves the rest to the next batch.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from client.api import BatchFileDeclared, PutTarget, UploadApi
from client.engine import UploadResult
from client.errors import ApiError, LocalFileError, TransferError, UploadClientError
from client.parts import SourceFile
from client.planning import guess_content_type
from client.retry import RetryPolicy, Transient, call_with_retries
from client.transfer import DEFAULT_PUT_TIMEOUT, classify, stored_etag

DEFAULT_BATCH_SIZE = 50  # the API's most per batch


class _Resign:
    """The file was left out of the batch it waited on: sign it in another."""


class _Alone:
    """The file's batch could not be signed: send it on its own (``Uploader.send``)."""


_RESIGN = _Resign()
_ALONE = _Alone()
_Ticket = PutTarget | _Resign | _Alone


@dataclass(frozen=True, slots=True)
class SmallFile:
    """A file of ``put_files`` that may go in a batch, and the name and type it is declared with."""

    path: Path
    filename: str
    content_type: str


class PutBatches:
    """Signs ``files`` (indexed as ``put_files`` indexes them) in batches on demand and sends one
    each; safe to share between threads (see the module's docstring)."""

    def __init__(
        self,
        api: UploadApi,
        session: requests.Session,
        files: dict[int, SmallFile],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        timeout: tuple[float, float] = DEFAULT_PUT_TIMEOUT,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._api = api
        self._session = session
        self._files = files
        self._order = sorted(files)
        self._batch_size = batch_size
        self._policy = policy
        self._sleep = sleep
        self._timeout = timeout
        self._lock = threading.Lock()
        self._tickets: dict[int, Future[_Ticket]] = {}
        self._checksums: dict[int, str] = {}
        self.api_calls = 0  # batches asked for (for reports and tests)

    def covers(self, index: int) -> bool:
        return index in self._files

    def upload(self, index: int) -> UploadResult | None:
        """The file ``index`` sent through its batch's PUT; None when it must go on its own."""
        ticket = self._ticket(index)
        if isinstance(ticket, _Alone):
            return None
        small = self._files[index]
        data, checksum = _read(small.path)
        if checksum != self._checksums[index]:
            raise LocalFileError(f"{small.path} changed while it was uploaded")
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        attempts = [0]

        def attempt() -> UploadResult:
            attempts[0] += 1
            return self._put(ticket, small.filename, data, md5, retried=attempts[0] > 1)

        return call_with_retries(attempt, self._policy, self._sleep)

    # ---- signing

    def _ticket(self, index: int) -> PutTarget | _Alone:
        while True:
            with self._lock:
                future = self._tickets.get(index)
                chosen: list[int] = []
                if future is None:
                    chosen = self._claim(index)
            if chosen:
                self._sign(chosen)
                continue
            assert future is not None
            ticket = future.result()
            if isinstance(ticket, _Resign):
                with self._lock:
                    if self._tickets.get(index) is future:
                        del self._tickets[index]
                continue
            return ticket

    def _claim(self, index: int) -> list[int]:
        """``index`` and the next small files no batch has claimed, up to the batch size (under
        the lock); each gets the future its batch will answer."""
        chosen = [index]
        for other in self._order:
            if len(chosen) >= self._batch_size:
                break
            if other > index and other not in self._tickets:
                chosen.append(other)
        for claimed in chosen:
            self._tickets[claimed] = Future()
        return chosen

    def _sign(self, chosen: list[int]) -> None:
        """Ask the API for ``chosen``'s PUTs and answer their futures (never raises: a file that
        cannot be read, or a batch that cannot be signed, answers its files with _ALONE)."""
        futures = [self._tickets[index] for index in chosen]
        declared: list[BatchFileDeclared] = []
        readable: list[int] = []
        for index, future in zip(chosen, futures, strict=True):
            small = self._files[index]
            try:
                size, checksum = _declare(small.path)
            except (OSError, LocalFileError):
                future.set_result(_ALONE)  # the file's own path reports what is wrong with it
                continue
            self._checksums[index] = checksum
            readable.append(index)
            declared.append(BatchFileDeclared(small.filename, small.content_type, size, checksum))
        if not declared:
            return
        pending = {index: self._tickets[index] for index in readable}
        while declared:
            self.api_calls += 1
            try:
                targets = self._api.create_put_batch(declared)
            except ApiError as error:
                room = _room(error)
                if 0 < room < len(declared):
                    # Fewer upload slots free than files: as many as fit now, the rest later.
                    for index in readable[room:]:
                        pending[index].set_result(_RESIGN)
                    declared, readable = declared[:room], readable[:room]
                    continue
                for index in readable:
                    pending[index].set_result(_ALONE)
                return
            except BaseException as error:
                # Unreachable, or a bug, or Ctrl-C: no file may wait for this batch forever.
                for index in readable:
                    pending[index].set_result(_ALONE)
                if isinstance(error, UploadClientError):
                    return
                raise
            for index, target in zip(readable, targets, strict=True):
                pending[index].set_result(target)
            return

    # ---- sending

    def _put(self, target: PutTarget, name: str, data: bytes, md5: str, *, retried: bool) -> UploadResult:
        try:
            response = self._session.put(target.url, data=data, headers=target.headers, timeout=self._timeout)
        except requests.exceptions.RequestException as error:
            raise Transient(TransferError(f"{name}: the PUT to S3 failed ({type(error).__name__})")) from error
        location = _location(target.url)
        if response.status_code == 412 and retried:
            # Only this URL can write at this new key, and it signs this file's CRC32: a
            # precondition failure after a lost answer means an earlier attempt stored it.
            return UploadResult(key=target.key, etag="", size=len(data), location=location, parts_sent=1)
        result = classify(response.status_code, response.headers, response.text if response.status_code >= 300 else "")
        etag = stored_etag(name, result, md5, "PUT")
        return UploadResult(key=target.key, etag=etag, size=len(data), location=location, parts_sent=1)


def small_files(
    paths: Sequence[Path], *, limit: int, content_type: str | None, filename: str | None
) -> dict[int, SmallFile]:
    """The files of ``paths`` (by index) that fit in one request of ``limit`` bytes."""
    found: dict[int, SmallFile] = {}
    for index, path in enumerate(paths):
        try:
            size = path.stat().st_size
        except OSError:
            continue  # the file's own path reports it
        if size <= limit and path.is_file():
            name = filename or path.name
            found[index] = SmallFile(path, name, content_type or guess_content_type(name))
    return found


def crc32_base64(data: bytes) -> str:
    """S3's x-amz-checksum-crc32 value: base64 of the big-endian CRC32."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _declare(path: Path) -> tuple[int, str]:
    data, checksum = _read(path)
    return len(data), checksum


def _read(path: Path) -> tuple[bytes, str]:
    with SourceFile(path) as source:  # the same checks and messages as any upload's
        data = source.read_bytes(0, source.size)
        if not source.unchanged():
            raise LocalFileError(f"{path} changed while it was read")
    return data, crc32_base64(data)


def _room(error: ApiError) -> int:
    """Upload slots free, from a TooManyUploads answer's usage (0 when it does not say)."""
    if error.status != 429 or error.code != "TooManyUploads":
        return 0
    usage = error.details.get("usage")
    if not isinstance(usage, dict):
        return 0
    try:
        return int(usage["maxUploads"]) - int(usage["uploadsInFlight"])
    except (KeyError, TypeError, ValueError):
        return 0


def _location(url: str) -> str:
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}{split.path}"
