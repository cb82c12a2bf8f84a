"""Domain errors. Each carries a stable code and the HTTP status the API maps it to."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any


class UploadError(Exception):
    """Base of every error the API turns into a JSON error response."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST
    code: str = "BadRequest"

    def __init__(self, message: str, *, code: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        # Extra fields of the JSON error body (e.g. the owner's usage and limit on QuotaExceeded).
        self.details: dict[str, Any] = dict(details or {})

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the error carries (Retry-After on 429)."""
        return {}


class InvalidRequest(UploadError):
    status = HTTPStatus.BAD_REQUEST
    code = "InvalidRequest"


class Unauthorized(UploadError):
    status = HTTPStatus.UNAUTHORIZED
    code = "Unauthorized"


class Forbidden(UploadError):
    status = HTTPStatus.FORBIDDEN
    code = "Forbidden"


class NotFound(UploadError):
    status = HTTPStatus.NOT_FOUND
    code = "NotFound"


class Conflict(UploadError):
    status = HTTPStatus.CONFLICT
    code = "Conflict"


class Gone(UploadError):
    status = HTTPStatus.GONE
    code = "Gone"


class TooLarge(UploadError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "TooLarge"


class UnsupportedType(UploadError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "UnsupportedContentType"


class Unprocessable(UploadError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "Unprocessable"


class UpstreamError(UploadError):
    status = HTTPStatus.BAD_GATEWAY
    code = "UpstreamError"


class UpstreamTimeout(UploadError):
    status = HTTPStatus.GATEWAY_TIMEOUT
    code = "UpstreamTimeout"


class TooManyRequests(UploadError):
    """Over a per-owner rate or in-flight limit: 429 with Retry-After."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "TooManyRequests"

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: int,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}
