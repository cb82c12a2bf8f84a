"""One part PUT to a presigned S3 URL, and what S3's answer means for the uploader.

S3 answers a PUT with 200 and the part's ETag, or with an XML error. The uploader needs to know
only which of these it got: stored, an expired URL (sign again), a body that did not match the
signed checksum (read the part again), a transient failure (back off and retry: network errors,
5xx, SlowDown, 429), or a refusal that no retry will change.

The body goes out as a ``PartBody``: the HTTP library reads it in blocks (16 KiB with urllib3) as
it writes them to the socket, so each read reports progress at the pace bytes really leave, and
a cancelled transfer stops a PUT between two blocks instead of after the whole part.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import requests

from client.api import SignedPart
from client.cancellation import Cancellation
from client.checksums import is_md5_etag, normalize_etag
from client.errors import TransferError
from client.retry import RETRYABLE_S3_CODES, RETRYABLE_STATUSES, Transient, retry_after_seconds

DEFAULT_PUT_TIMEOUT: tuple[float, float] = (10.0, 120.0)
_CODE = re.compile(r"<Code>\s*([^<]{1,100}?)\s*</Code>")
_MESSAGE = re.compile(r"<Message>\s*([^<]{0,300}?)\s*</Message>")
# Checksums S3 compares with the body; a mismatch is a corrupted transfer or a changed file.
_DIGEST_CODES = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"})
_KMS = ("aws:kms", "aws:kms:dsse")


class Outcome(Enum):
    STORED = "stored"
    EXPIRED = "expired"
    BAD_DIGEST = "bad-digest"
    TRANSIENT = "transient"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class PutResult:
    outcome: Outcome
    status: int | None = None
    etag: str | None = None
    # S3's ETag is the part's MD5 unless the object is encrypted with KMS or a customer key.
    etag_is_md5: bool = True
    checksums: dict[str, str] | None = None  # x-amz-checksum-* headers S3 echoed
    code: str = ""
    message: str = ""
    retry_after: float | None = None

    def describe(self) -> str:
        if self.status is None:
            return self.message
        detail = f"{self.status} {self.code}".strip()
        message = self.message.rstrip(".")
        return f"{detail}: {message}" if message else detail


class PartBody:
    """A part's bytes as a file the HTTP library reads block by block.

    ``on_read(bytes_read)`` is called after every read with the bytes handed out so far (this
    attempt's, from 0); a read after ``cancellation`` is set raises ``TransferCancelled``, which
    ends the PUT there. ``len()`` gives requests the Content-Length (signed into the URL; a
    chunked body would be refused).
    """

    def __init__(self, data: bytes, on_read: Callable[[int], None], cancellation: Cancellation) -> None:
        self._view = memoryview(data)
        self._position = 0
        self._on_read = on_read
        self._cancellation = cancellation

    def __len__(self) -> int:
        return len(self._view)

    def read(self, size: int = -1) -> memoryview:
        """The next block, as a view of the part's bytes: sockets send it without a copy."""
        self._cancellation.check()
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._position + size)
        block = self._view[self._position : end]
        self._position = end
        if block:
            self._on_read(self._position)
        return block


def put_part(
    session: requests.Session,
    signed: SignedPart,
    body: bytes | PartBody,
    *,
    timeout: tuple[float, float] = DEFAULT_PUT_TIMEOUT,
) -> PutResult:
    """PUT ``body`` to the signed URL with its signed headers; never raises for HTTP or network
    errors (``TransferCancelled`` from a ``PartBody`` goes through)."""
    # An empty part goes as b"": requests treats a falsy file-like body as no body at all.
    # (A PartBody's blocks are memoryviews, which requests' type hints do not list but sockets send.)
    data: Any = body if len(body) else b""
    try:
        response = session.put(signed.url, data=data, headers=signed.headers, timeout=timeout)
    except requests.exceptions.RequestException as error:
        return PutResult(Outcome.TRANSIENT, message=_network_message(error))
    return classify(response.status_code, response.headers, response.text if response.status_code >= 300 else "")


def classify(
    status: int, headers: requests.structures.CaseInsensitiveDict[str] | dict[str, str], text: str
) -> PutResult:
    """What an S3 answer to a part PUT means."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if 200 <= status < 300:
        etag = lowered.get("etag")
        encrypted = lowered.get("x-amz-server-side-encryption", "").lower() in _KMS or bool(
            lowered.get("x-amz-server-side-encryption-customer-algorithm")
        )
        checksums = {name: value for name, value in lowered.items() if name.startswith("x-amz-checksum-")}
        if not etag:
            return PutResult(Outcome.TRANSIENT, status=status, message="S3 answered without an ETag")
        return PutResult(Outcome.STORED, status=status, etag=etag, etag_is_md5=not encrypted, checksums=checksums)
    code = _first(_CODE, text)
    message = _first(_MESSAGE, text)
    retry_after = retry_after_seconds(lowered)
    if status == 403 and "expired" in message.lower():
        # S3 (and MiniStack) answer an expired presigned URL with AccessDenied "Request has expired".
        return PutResult(Outcome.EXPIRED, status=status, code=code, message=message)
    if code in _DIGEST_CODES:
        return PutResult(Outcome.BAD_DIGEST, status=status, code=code, message=message)
    if status in RETRYABLE_STATUSES or code in RETRYABLE_S3_CODES:
        return PutResult(Outcome.TRANSIENT, status=status, code=code, message=message, retry_after=retry_after)
    return PutResult(Outcome.FATAL, status=status, code=code, message=message)


def stored_etag(name: str, result: PutResult, md5: str, request: str) -> str:
    """The ETag of a whole file S3 stored in one request (a form or a PUT), or the error to raise:
    retryable when a second attempt may succeed, including a body S3 stored with another MD5."""
    if result.outcome is Outcome.TRANSIENT or result.outcome is Outcome.BAD_DIGEST:
        raise Transient(TransferError(f"{name}: {result.describe()}"), result.retry_after)
    if result.outcome is not Outcome.STORED or result.etag is None:
        raise TransferError(f"{name}: S3 refused the {request} ({result.describe()})")
    stored = normalize_etag(result.etag)
    if result.etag_is_md5 and is_md5_etag(stored) and stored != md5:
        raise Transient(TransferError(f"{name}: S3 stored a body with MD5 {stored}, not {md5}"))
    return result.etag


def _first(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    return match.group(1) if match else ""


def _network_message(error: requests.exceptions.RequestException) -> str:
    if isinstance(error, requests.exceptions.Timeout):
        return "S3 did not answer in time"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "the connection to S3 failed or was dropped"
    return f"the request to S3 failed ({type(error).__name__})"
