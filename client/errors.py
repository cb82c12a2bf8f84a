"""The client's exceptions, each with the CLI exit code it maps to.

Every failure a caller can act on is one of these, with a one-line message fit for a terminal;
anything else is a bug and exits with ``ExitCode.INTERNAL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Exit codes of ``python -m client`` (documented in docs/client.md)."""

    OK = 0
    INTERNAL = 1  # an unexpected error (a bug): the traceback is printed
    USAGE = 2  # bad command line (argparse's own code)
    CONFIG = 3  # missing or malformed configuration (no token, bad URL, bad --part-size)
    AUTH = 4  # the API refused the token (401, or a 403 from the authorizer)
    UNREACHABLE = 5  # the API could not be reached (after retries)
    REFUSED = 6  # the API refused the request (4xx with its message): type, size, key, ...
    TRANSFER = 7  # the bytes did not get to S3 intact (after retries), or a check failed
    LOCAL_FILE = 8  # the local file is missing, unreadable or changed during the upload
    NOT_FOUND = 9  # nothing to resume or abort: no matching unfinished upload (or no such file)
    REJECTED = 10  # the file was stored, and the validator rejected it (the reason is printed)
    NO_VERDICT = 11  # the file was stored, and no verdict came within --wait-timeout
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell's convention)


@dataclass(frozen=True, slots=True)
class KeptUpload:
    """An upload stopped before it was completed whose parts stay in S3, for ``resume``.

    ``state_file`` is the state file next to the source, or None when none could be written
    (``resume`` then needs the upload id, or finds the upload with ``GET /uploads``).
    """

    upload_id: str
    key: str
    path: str
    parts_stored: int
    part_count: int
    state_file: str | None


class UploadClientError(Exception):
    """Base of every error the client reports; ``str(error)`` is a one-line message."""

    exit_code: ExitCode = ExitCode.INTERNAL
    # Set on a failed transfer that kept its parts (``keep_parts=True``).
    kept: KeptUpload | None = None


class UploadInterrupted(KeyboardInterrupt):
    """Ctrl-C or ``Uploader.cancel()`` stopped a transfer; ``kept`` describes the upload left for
    ``resume``, or is None when it was aborted. A KeyboardInterrupt, so ``except
    KeyboardInterrupt`` still sees it."""

    def __init__(self, kept: KeptUpload | None) -> None:
        super().__init__()
        self.kept = kept


class ConfigError(UploadClientError):
    exit_code = ExitCode.CONFIG


class ApiUnreachable(UploadClientError):
    exit_code = ExitCode.UNREACHABLE


class ApiError(UploadClientError):
    """The API answered with an error status; ``code`` and ``message`` come from its JSON body."""

    exit_code = ExitCode.REFUSED

    def __init__(self, status: int, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{message} ({status} {code})" if code else f"{message} ({status})")
        self.status = status
        self.code = code
        self.message = message
        # The error body's other fields (e.g. ``usage`` on QuotaExceeded and TooManyUploads).
        self.details: dict[str, Any] = dict(details or {})


class AuthError(ApiError):
    """401, or a 403 from the authorizer itself (no application error code)."""

    exit_code = ExitCode.AUTH


class TransferError(UploadClientError):
    """A part could not be stored intact in S3, or the completed object failed verification."""

    exit_code = ExitCode.TRANSFER


class LocalFileError(UploadClientError):
    exit_code = ExitCode.LOCAL_FILE


class NotFoundError(UploadClientError):
    exit_code = ExitCode.NOT_FOUND


def exit_code_for(error: BaseException) -> ExitCode:
    """The CLI's exit code for an exception that reached it."""
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, UploadClientError):
        return error.exit_code
    return ExitCode.INTERNAL
