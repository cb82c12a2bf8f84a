"""Many small files at once: each one in two calls, ``POST /uploads/form`` and the form POST to S3.

A file that fits in one request has no use for a multipart upload (create, sign, PUT, complete):
the API signs a form for exactly its size and type, and the file goes to S3 in one POST. Files
are sent ``concurrency`` at a time over one pooled session. S3 answers a form POST with the
object's ETag, its MD5 for unencrypted and SSE-S3 objects, which is checked against the local
bytes (a mismatch is sent again). A file that cannot go as a form (over ``form_max_bytes``, or
refused by the API as too large for one request) is left to the caller's multipart path.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from client.api import FormTarget, UploadApi
from client.checksums import is_md5_etag, normalize_etag
from client.engine import UploadResult
from client.errors import ApiError, LocalFileError, TransferError, UploadClientError
from client.planning import guess_content_type
from client.retry import RetryPolicy, Transient, call_with_retries
from client.transfer import DEFAULT_PUT_TIMEOUT, Outcome, classify

_ETAG = re.compile(r"<ETag>\s*([^<]{1,100}?)\s*</ETag>")
_LOCATION = re.compile(r"<Location>\s*([^<]{1,2000}?)\s*</Location>")


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """One file of ``upload_many``: its result, or the error that stopped it (never both)."""

    path: str
    result: UploadResult | None = None
    error: UploadClientError | None = None


class TooLargeForForm(Exception):
    """The file must go through a multipart upload instead."""


class FormUploader:
    """Sends small files as forms; shared by the threads of one ``upload_many``."""

    def __init__(
        self,
        api: UploadApi,
        session: requests.Session,
        *,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        form_max_bytes: int,
        timeout: tuple[float, float] = DEFAULT_PUT_TIMEOUT,
    ) -> None:
        self._api = api
        self._session = session
        self._policy = policy
        self._sleep = sleep
        self._form_max_bytes = form_max_bytes
        self._timeout = timeout

    def upload(self, path: Path, content_type: str | None) -> UploadResult:
        """``path`` in one form POST; raises TooLargeForForm when it must go as a multipart upload."""
        try:
            size = os.stat(path).st_size
        except OSError as error:
            raise LocalFileError(f"{path}: cannot read: {error.strerror}") from None
        if size > self._form_max_bytes:
            raise TooLargeForForm
        try:
            data = path.read_bytes()
        except OSError as error:
            raise LocalFileError(f"{path}: cannot read: {error.strerror}") from None
        if len(data) != size:
            raise LocalFileError(f"{path} changed while it was read")
        name = path.name
        try:
            target = self._api.create_form(
                filename=name, content_type=content_type or guess_content_type(name), size=size
            )
        except ApiError as error:
            if error.status == 413:
                raise TooLargeForForm from error
            raise
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return call_with_retries(lambda: self._post(target, name, data, md5), self._policy, self._sleep)

    def _post(self, target: FormTarget, name: str, data: bytes, md5: str) -> UploadResult:
        try:
            response = self._session.post(
                target.url, data=target.fields, files={"file": (name, data)}, timeout=self._timeout
            )
        except requests.exceptions.RequestException as error:
            raise Transient(TransferError(f"{name}: the form POST to S3 failed ({type(error).__name__})")) from error
        text = response.text
        headers = dict(response.headers)
        if 200 <= response.status_code < 300 and "etag" not in {header.lower() for header in headers}:
            found = _ETAG.search(text)
            if found:
                headers["ETag"] = found.group(1).replace("&quot;", '"')
        result = classify(response.status_code, headers, text if response.status_code >= 300 else "")
        if result.outcome is Outcome.TRANSIENT or result.outcome is Outcome.BAD_DIGEST:
            raise Transient(TransferError(f"{name}: {result.describe()}"), result.retry_after)
        if result.outcome is not Outcome.STORED or result.etag is None:
            raise TransferError(f"{name}: S3 refused the form ({result.describe()})")
        stored = normalize_etag(result.etag)
        if result.etag_is_md5 and is_md5_etag(stored) and stored != md5:
            raise Transient(TransferError(f"{name}: S3 stored a body with MD5 {stored}, not {md5}"))
        location = _LOCATION.search(text)
        return UploadResult(
            key=target.key,
            etag=result.etag,
            size=len(data),
            location=location.group(1) if location else f"{target.url.rstrip('/')}/{target.key}",
            parts_sent=1,
        )


def upload_forms(
    forms: FormUploader,
    paths: Sequence[Path],
    *,
    concurrency: int,
    content_type: str | None,
    on_file: Callable[[FileOutcome], None] | None,
) -> tuple[list[FileOutcome | None], list[int]]:
    """Each path as a form, ``concurrency`` at a time: the outcomes (None where the file is too
    large for a form) and the indexes of those left for a multipart upload."""
    outcomes: list[FileOutcome | None] = [None] * len(paths)
    too_large: list[int] = []

    def one(index: int) -> None:
        path = paths[index]
        try:
            outcome = FileOutcome(str(path), result=forms.upload(path, content_type))
        except TooLargeForForm:
            too_large.append(index)
            return
        except UploadClientError as error:
            outcome = FileOutcome(str(path), error=error)
        outcomes[index] = outcome
        if on_file is not None:
            on_file(outcome)

    executor = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="upload-file")
    try:
        for future in [executor.submit(one, index) for index in range(len(paths))]:
            future.result()
    finally:
        # Ctrl-C: files not started are dropped; the ones being sent finish their one POST.
        executor.shutdown(wait=False, cancel_futures=True)
    return outcomes, sorted(too_large)
