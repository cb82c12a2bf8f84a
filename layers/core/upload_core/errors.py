"""Domain errors. Each carries a stable code and the HTTP status the API maps it to."""

from __future__ import annotations

from http import HTTPStatus


class UploadError(Exception):
    """Base of every error the API turns into a JSON error response."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST
    code: str = "BadRequest"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


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
