"""Configuration, read once from environment variables into typed, validated objects.

Each settings class is a frozen dataclass with one field per variable (upload_core.environment):
`read_environment` fills one from the environment and reports one line per bad variable, and
`dataclasses.replace` derives a variant that is checked again, as the tests do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from upload_core.environment import (
    EnvironmentSettings,
    SettingsError,
    integer,
    number,
    optional_text,
    read_environment,
    text,
    variable,
)

__all__ = ["Settings", "SettingsError", "get_settings", "read_environment"]

MIB = 1024 * 1024
GIB = 1024 * MIB
# S3's multipart limits: every part but the last is 5 MiB..5 GiB, at most 10,000 parts.
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PART_SIZE = 5 * GIB
S3_MAX_PARTS = 10_000
# Part URLs one response may carry: about 2.5 KB of JSON each with a Lambda session token (3.4 KB
# with a 2,000-character token), so 1,000 stay under 3.5 MB of Lambda's 6 MB response limit.
MAX_SIGNED_PARTS_PER_RESPONSE = 1_000
S3_MAX_OBJECT_SIZE = S3_MAX_PART_SIZE * S3_MAX_PARTS  # ~48.8 TiB
S3_MAX_SINGLE_PUT = 5 * GIB
# A SigV4 presigned URL lives at most 7 days.
S3_MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# More attempts than this only keep a caller waiting on an S3 that is down.
S3_MAX_CLIENT_ATTEMPTS = 10
MAX_LAMBDA_SECONDS = 900.0  # Lambda's longest Timeout: no wait in a function can be longer


def seconds(name: str, default: float) -> Any:
    """A wait inside a function: more than nothing, and never longer than the function may run."""
    return variable(name, parse=number, default=default, gt=0, le=MAX_LAMBDA_SECONDS)


def key_prefix(value: Any) -> str:
    prefix = text(value).strip("/")
    if not prefix or "//" in prefix:
        raise ValueError(f"must be a non-empty path without empty segments, got {value!r}")
    return prefix


def content_types(value: Any) -> frozenset[str]:
    """ "image/png, image/jpeg" (any case, blanks ignored), or a set of types as given."""
    if isinstance(value, str):
        types = frozenset(item.strip().lower() for item in value.split(",") if item.strip())
        if not types:
            raise ValueError("must name at least one type")
        return types
    if isinstance(value, frozenset | set | tuple | list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    raise ValueError(f"must be a list of content types, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Settings(EnvironmentSettings):
    bucket_name: str = variable("BUCKET_NAME", parse=text)
    region: str = variable("AWS_REGION", "AWS_DEFAULT_REGION", parse=text, default="us-east-1")
    upload_prefix: str = variable("UPLOAD_PREFIX", parse=key_prefix, default="uploads")
    max_upload_bytes: int = variable("MAX_UPLOAD_BYTES", parse=integer, default=10 * GIB, ge=1, le=S3_MAX_OBJECT_SIZE)
    max_form_upload_bytes: int = variable(
        "MAX_FORM_UPLOAD_BYTES", parse=integer, default=100 * MIB, ge=1, le=S3_MAX_SINGLE_PUT
    )
    allowed_content_types: frozenset[str] = variable(
        "ALLOWED_CONTENT_TYPES",
        parse=content_types,
        default=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"}),
    )
    url_expiry_seconds: int = variable(
        "URL_EXPIRY_SECONDS", parse=integer, default=900, ge=1, le=S3_MAX_PRESIGN_SECONDS
    )
    min_part_size: int = variable("MIN_PART_SIZE", parse=integer, default=S3_MIN_PART_SIZE, ge=S3_MIN_PART_SIZE)
    max_part_size: int = variable(
        "MAX_PART_SIZE", parse=integer, default=S3_MAX_PART_SIZE, ge=S3_MIN_PART_SIZE, le=S3_MAX_PART_SIZE
    )
    default_part_size: int = variable("DEFAULT_PART_SIZE", parse=integer, default=8 * MIB, ge=S3_MIN_PART_SIZE)
    # At most MAX_SIGNED_PARTS_PER_RESPONSE: more signed URLs would approach Lambda's 6 MB response.
    max_parts_per_request: int = variable(
        "MAX_PARTS_PER_REQUEST", parse=integer, default=1000, ge=1, le=MAX_SIGNED_PARTS_PER_RESPONSE
    )
    quarantine_prefix: str = variable("QUARANTINE_PREFIX", parse=key_prefix, default="quarantine")
    s3_endpoint_url: str | None = variable("S3_ENDPOINT_URL", parse=optional_text, default=None)
    # The S3 client's patience. Its worst case, s3_max_attempts x (connect + read) plus the
    # retries' backoff, must fit in the function's Timeout: otherwise a stalled S3 shows as a
    # Lambda timeout (a bare 5xx from API Gateway) instead of a clean 504.
    s3_connect_timeout_seconds: float = seconds("S3_CONNECT_TIMEOUT_SECONDS", 5.0)
    s3_read_timeout_seconds: float = seconds("S3_READ_TIMEOUT_SECONDS", 30.0)
    s3_max_attempts: int = variable("S3_MAX_ATTEMPTS", parse=integer, default=3, ge=1, le=S3_MAX_CLIENT_ATTEMPTS)
    # The registry (DynamoDB) and the per-owner limits it enforces (docs/limits.md).
    registry_table: str = variable("REGISTRY_TABLE", parse=text, default="upload-registry", min_length=3)
    default_user_quota_bytes: int = variable("DEFAULT_USER_QUOTA_BYTES", parse=integer, default=20 * GIB, ge=0)
    max_concurrent_uploads: int = variable("MAX_CONCURRENT_UPLOADS", parse=integer, default=20, ge=1)
    max_requests_per_minute: int = variable("MAX_REQUESTS_PER_MINUTE", parse=integer, default=1200, ge=1)
    # An upload that does not declare its size (Companion) may store at most this; it is reserved.
    max_undeclared_upload_bytes: int = variable("MAX_UNDECLARED_UPLOAD_BYTES", parse=integer, default=GIB, ge=1)
    # How long an upload (or an unused form) may hold its reservation before the sweeper ends it.
    upload_ttl_seconds: int = variable(
        "UPLOAD_TTL_SECONDS", parse=integer, default=24 * 3600, ge=60, le=S3_MAX_PRESIGN_SECONDS
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return read_environment(cls, env)

    def check(self) -> None:
        if self.quarantine_prefix == self.upload_prefix:
            raise ValueError("QUARANTINE_PREFIX must differ from UPLOAD_PREFIX")
        if not self.min_part_size <= self.default_part_size <= self.max_part_size:
            raise ValueError("DEFAULT_PART_SIZE must lie between MIN_PART_SIZE and MAX_PART_SIZE")


@cache
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (once per Lambda container)."""
    return Settings.from_env()
