"""The upload API over HTTP: one method per route, typed results, retries for transient failures.

Errors come back as ``client.errors`` exceptions: ``AuthError`` (401, or a 403 from the
authorizer), ``ApiError`` (any other 4xx, with the API's ``code`` and ``message``),
``ApiUnreachable`` (no connection, or no answer, after the retries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from client.errors import ApiError, ApiUnreachable, AuthError, ConfigError
from client.retry import RetryPolicy, Transient, call_with_retries, retry_after_seconds

# Connect quickly or give up; the imports route may take its whole fetch deadline to answer.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 90.0)


@dataclass(frozen=True, slots=True)
class StartedUpload:
    upload_id: str
    key: str
    part_size: int
    part_count: int
    checksum_algorithm: str | None


@dataclass(frozen=True, slots=True)
class PartToSign:
    """A part to sign; its checksums (base64) are signed into the URL, so S3 checks the body."""

    part_number: int
    content_md5: str | None = None
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class SignedPart:
    part_number: int
    url: str
    headers: dict[str, str]  # to send with the PUT: they are part of the signature


@dataclass(frozen=True, slots=True)
class FormTarget:
    """Where a small file goes in one POST: S3's URL and the signed form fields to send with it."""

    url: str
    fields: dict[str, str]
    key: str


@dataclass(frozen=True, slots=True)
class BatchFileDeclared:
    """One small file of a batch, as declared to ``POST /uploads/batch``."""

    filename: str
    content_type: str
    size: int
    checksum_crc32: str  # base64 of the 4-byte big-endian CRC32, as S3's x-amz-checksum-crc32


@dataclass(frozen=True, slots=True)
class PutTarget:
    """Where one small file of a batch goes: a presigned PUT, with the headers it signs."""

    url: str
    key: str
    file_id: str
    headers: dict[str, str]
    size: int


@dataclass(frozen=True, slots=True)
class UploadedPart:
    part_number: int
    etag: str
    size: int
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class CompletedUpload:
    key: str
    etag: str
    size: int
    location: str


@dataclass(frozen=True, slots=True)
class PendingUpload:
    """An unfinished multipart upload of the caller (``initiated`` is ISO 8601, UTC)."""

    upload_id: str
    key: str
    initiated: str


@dataclass(frozen=True, slots=True)
class ImportedObject:
    key: str
    size: int
    content_type: str
    etag: str


def normalize_api_url(url: str) -> str:
    """The API's base URL without a trailing slash; refuses what is not an http(s) URL."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"the API URL must look like https://host[/stage], got {url!r}")
    return text.rstrip("/")


class UploadApi:
    """Calls the upload API as the holder of ``token``.

    ``session`` is any ``requests.Session`` (its adapters, proxies and certificates are used);
    ``sleep`` waits between retries (injectable, so tests do not sleep).
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        session: requests.Session,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        on_retry: Callable[[int, Transient, float], None] | None = None,
    ) -> None:
        self.base_url = normalize_api_url(api_url)
        self._token = token
        self._session = session
        self._policy = policy
        self._sleep = sleep
        self._timeout = timeout
        self._on_retry = on_retry

    def waiting_with(self, sleep: Callable[[float], None]) -> UploadApi:
        """The same API whose retries wait with ``sleep`` (a transfer's workers stop waiting when
        it is cancelled)."""
        return UploadApi(
            self.base_url,
            self._token,
            session=self._session,
            policy=self._policy,
            sleep=sleep,
            timeout=self._timeout,
            on_retry=self._on_retry,
        )

    # ---- routes

    def create_upload(
        self,
        *,
        filename: str,
        content_type: str,
        size: int,
        part_size: int | None = None,
        checksum_algorithm: str | None = None,
    ) -> StartedUpload:
        body: dict[str, Any] = {"filename": filename, "contentType": content_type, "size": size}
        if part_size is not None:
            body["partSize"] = part_size
        if checksum_algorithm is not None:
            body["checksumAlgorithm"] = checksum_algorithm
        # A retried create whose first answer was lost leaves an empty upload behind; the bucket's
        # lifecycle rule aborts it, which is cheaper than failing the whole upload.
        data = self._json("POST", "/uploads", json=body)
        return StartedUpload(
            upload_id=str(data["uploadId"]),
            key=str(data["key"]),
            part_size=int(data["partSize"]),
            part_count=int(data["partCount"]),
            checksum_algorithm=data.get("checksumAlgorithm"),
        )

    def create_form(self, *, filename: str, content_type: str, size: int) -> FormTarget:
        """``POST /uploads/form``: a signed form for one POST of exactly ``size`` bytes to S3."""
        # As with create_upload, a retry after a lost answer leaves an unused form behind, whose
        # reservation the sweeper releases once the form expires.
        data = self._json(
            "POST", "/uploads/form", json={"filename": filename, "contentType": content_type, "size": size}
        )
        fields = {str(name): str(value) for name, value in (data.get("fields") or {}).items()}
        return FormTarget(url=str(data["url"]), fields=fields, key=str(data["key"]))

    def create_put_batch(self, files: Sequence[BatchFileDeclared]) -> list[PutTarget]:
        """``POST /uploads/batch``: one presigned PUT per file, in order, all reserved together.
        TooManyUploads is not waited out here: the caller asks for fewer files instead."""
        body = [
            {"filename": f.filename, "contentType": f.content_type, "size": f.size, "checksumCrc32": f.checksum_crc32}
            for f in files
        ]
        response = self._request(
            "POST", "/uploads/batch", json={"files": body}, final_codes=frozenset({"TooManyUploads"})
        )
        data = self._json_of(response)
        return [
            PutTarget(
                url=str(item["url"]),
                key=str(item["key"]),
                file_id=str(item["fileId"]),
                headers={str(k): str(v) for k, v in (item.get("headers") or {}).items()},
                size=int(item["size"]),
            )
            for item in data.get("files") or []
        ]

    def sign_parts(
        self, upload_id: str, key: str, parts: Sequence[PartToSign], *, checksum_algorithm: str | None = None
    ) -> dict[int, SignedPart]:
        body: dict[str, Any] = {"key": key, "parts": [_part_to_sign(part) for part in parts]}
        if checksum_algorithm is not None:
            body["checksumAlgorithm"] = checksum_algorithm
        data = self._json("POST", f"/uploads/{_segment(upload_id)}/parts", json=body)
        signed = {}
        for item in data["parts"]:
            number = int(item["partNumber"])
            headers = {str(name): str(value) for name, value in (item.get("headers") or {}).items()}
            signed[number] = SignedPart(part_number=number, url=str(item["url"]), headers=headers)
        return signed

    def list_parts(self, upload_id: str, key: str) -> list[UploadedPart]:
        data = self._json("GET", f"/uploads/{_segment(upload_id)}/parts", params={"key": key})
        return [
            UploadedPart(
                part_number=int(item["partNumber"]),
                etag=str(item["etag"]),
                size=int(item["size"]),
                checksum=item.get("checksum"),
            )
            for item in data["parts"]
        ]

    def complete(self, upload_id: str, key: str, parts: Sequence[tuple[int, str]]) -> CompletedUpload:
        body = {"key": key, "parts": [{"partNumber": number, "etag": etag} for number, etag in parts]}
        # Completing is idempotent in this API (a second call describes the stored object), so
        # a retry after a lost answer is safe.
        data = self._json("POST", f"/uploads/{_segment(upload_id)}/complete", json=body)
        return CompletedUpload(
            key=str(data["key"]), etag=str(data["etag"]), size=int(data["size"]), location=str(data["location"])
        )

    def abort(self, upload_id: str, key: str) -> None:
        self._request("DELETE", f"/uploads/{_segment(upload_id)}", params={"key": key})

    def list_uploads(self) -> list[PendingUpload]:
        data = self._json("GET", "/uploads")
        return [
            PendingUpload(upload_id=str(item["uploadId"]), key=str(item["key"]), initiated=str(item.get("initiated")))
            for item in data["uploads"]
        ]

    def import_url(self, url: str, *, filename: str | None = None) -> ImportedObject:
        body = {"url": url} if filename is None else {"url": url, "filename": filename}
        # Not idempotent (every import makes a new object): retried only when it surely never ran.
        data = self._json("POST", "/imports", json=body, idempotent=False)
        return ImportedObject(
            key=str(data["key"]), size=int(data["size"]), content_type=str(data["contentType"]), etag=str(data["etag"])
        )

    # ---- plumbing

    def call(self, method: str, path: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """One idempotent call of any route (the files routes use it): its JSON body, None for 204."""
        response = self._request(method, path, params=params, idempotent=True)
        if response.status_code == 204 or not response.content:
            return None
        return self._json_of(response)

    def _json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        response = self._request(method, path, json=json, params=params, idempotent=idempotent)
        return self._json_of(response)

    @staticmethod
    def _json_of(response: requests.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise ApiError(
                response.status_code, "BadResponse", "the API answered with something that is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise ApiError(response.status_code, "BadResponse", "the API answered with unexpected JSON")
        return data

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
        final_codes: frozenset[str] = frozenset(),
    ) -> requests.Response:
        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

        def attempt() -> requests.Response:
            try:
                response = self._session.request(
                    method, url, json=json, params=params, headers=headers, timeout=self._timeout
                )
            except requests.exceptions.RequestException as error:
                unreachable = ApiUnreachable(_describe_network_error(self.base_url, error))
                if idempotent or _never_sent(error):
                    raise Transient(unreachable) from error
                raise unreachable from error
            if response.status_code < 400:
                return response
            failure = api_error(response)
            if _is_transient(response, failure, idempotent=idempotent, final_codes=final_codes):
                raise Transient(failure, retry_after_seconds(response.headers))
            raise failure

        return call_with_retries(attempt, self._policy, self._sleep, on_retry=self._on_retry)


def api_error(response: requests.Response) -> ApiError:
    """The exception for an error answer: the API's JSON ``{code, message}`` when there is one."""
    code, message = "", ""
    details: dict[str, Any] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or "")
        message = str(body.get("message") or "")
        details = {name: value for name, value in body.items() if name not in ("code", "message")}
    if not message:
        message = response.reason or "request failed"
    status = response.status_code
    # API Gateway's authorizer answers {"message": "Unauthorized"/"Forbidden"} without a code; a 403
    # with a code is the application refusing one thing (a key that is not yours, a blocked URL).
    if status == 401 or (status == 403 and not code):
        return AuthError(status, code, message)
    return ApiError(status, code, message, details)


def _is_transient(
    response: requests.Response, failure: ApiError, *, idempotent: bool, final_codes: frozenset[str] = frozenset()
) -> bool:
    status = response.status_code
    if failure.code in final_codes:
        return False
    if status == 429:
        return True
    if not idempotent:
        return False
    # 502/504 with an application code are the imports route's verdicts on the remote server,
    # not a hiccup of this API.
    return status in (500, 503) or (status in (502, 504) and not failure.code)


def _never_sent(error: requests.exceptions.RequestException) -> bool:
    """True when the request surely never reached the server (so even a POST may be retried)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        text = repr(error)
        return "NewConnectionError" in text or "NameResolutionError" in text
    return False


def _describe_network_error(base_url: str, error: requests.exceptions.RequestException) -> str:
    if isinstance(error, requests.exceptions.Timeout):
        return f"the API at {base_url} did not answer in time"
    if isinstance(error, requests.exceptions.ConnectionError):
        if "NameResolutionError" in repr(error):
            return f"cannot reach the API at {base_url}: the host name does not resolve"
        if "Connection refused" in repr(error) or "NewConnectionError" in repr(error):
            return f"cannot reach the API at {base_url}: connection refused (is it running? `make dev` starts it)"
        return f"lost the connection to the API at {base_url}"
    return f"cannot reach the API at {base_url}: {type(error).__name__}"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _part_to_sign(part: PartToSign) -> dict[str, Any]:
    item: dict[str, Any] = {"partNumber": part.part_number}
    if part.content_md5 is not None:
        item["contentMd5"] = part.content_md5
    if part.checksum is not None:
        item["checksum"] = part.checksum
    return item
