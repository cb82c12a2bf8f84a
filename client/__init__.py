"""A Python client for the upload API: a managed multipart upload (parallel parts, retries,
checksums, resume), several files at once with their verdicts, and the ``python -m client``
command line built on it. See docs/client.md.

    from client import Uploader
    result = Uploader("http://127.0.0.1:3000", token).upload("photo.png")
    outcomes = Uploader("http://127.0.0.1:3000", token).put_many(["photos/"])  # verdicts too
"""

from __future__ import annotations

from client.api import ImportedObject, PendingUpload
from client.batch import BatchInterrupted, worst
from client.errors import (
    ApiError,
    ApiUnreachable,
    AuthError,
    ConfigError,
    ExitCode,
    KeptUpload,
    LocalFileError,
    NotFoundError,
    TransferError,
    UploadClientError,
    UploadInterrupted,
)
from client.retry import RetryPolicy
from client.uploader import FileOutcome, ProgressCallback, Uploader, UploadResult

__all__ = [
    "ApiError",
    "ApiUnreachable",
    "AuthError",
    "BatchInterrupted",
    "ConfigError",
    "ExitCode",
    "FileOutcome",
    "ImportedObject",
    "KeptUpload",
    "LocalFileError",
    "NotFoundError",
    "PendingUpload",
    "ProgressCallback",
    "RetryPolicy",
    "TransferError",
    "UploadClientError",
    "UploadInterrupted",
    "UploadResult",
    "Uploader",
    "worst",
]
