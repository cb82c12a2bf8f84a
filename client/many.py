"""Small files in two calls each: ``POST /uploads/form`` and the form POST to S3.

A file that fits in one request has no use for a multipart upload (create, sign, PUT, complete):
the API signs a form for exactly its size and type, and the file goes to S3 in one POST.
``Uploader.send`` (so ``put_many`` and the CLI's ``put``) sends files this way, several at once
over one pooled session (client.batch). S3 answers a form POST with the
object's ETag, its MD5 for unencrypted and SSE-S3 objects, which is checked against the local
bytes (a mismatch is sent again). A file that cannot go as a form (over ``form_max_bytes``, or
refused by the API as too large for one request) is left to the caller's multipart path.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import requests

from client.api import FormTarget, UploadApi
from client.engine import UploadResult
from client.errors import ApiError, LocalFileError, TransferError
from client.parts import SourceFile
from client.planning import guess_content_type
from client.retry import RetryPolicy, Transient, call_with_retries
from client.transfer import DEFAULT_PUT_TIMEOUT, classify, stored_etag

_ETAG = re.compile(r"<ETag>\s*([^<]{1,100}?)\s*</ETag>")
_LOCATION = re.compile(r"<Location>\s*([^<]{1,2000}?)\s*</Location>")


class TooLargeForForm(Exception):
    """The file must go through a multipart upload instead."""


class FormUploader:
    """Sends small files as forms; safe to share between threads."""

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

    def upload(self, path: Path, content_type: str | None, *, filename: str | None = None) -> UploadResult:
        """``path`` in one form POST (named ``filename``, default its own name); raises
        TooLargeForForm when it must go as a multipart upload."""
        with SourceFile(path) as source:  # the same checks and messages as a multipart upload's
            size = source.size
            if size > self._form_max_bytes:
                raise TooLargeForForm
            data = source.read_bytes(0, size)
            if not source.unchanged():
                raise LocalFileError(f"{path} changed while it was read")
        name = filename or path.name
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
        etag = stored_etag(name, result, md5, "form")
        location = _LOCATION.search(text)
        return UploadResult(
            key=target.key,
            etag=etag,
            size=len(data),
            location=location.group(1) if location else f"{target.url.rstrip('/')}/{target.key}",
            parts_sent=1,
        )
