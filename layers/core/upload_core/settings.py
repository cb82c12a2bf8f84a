"""Configuration, read once from environment variables into a typed, validated object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

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


class SettingsError(ValueError):
    """A setting is missing or malformed; raised at start so a bad deployment fails loudly."""


@dataclass(frozen=True, slots=True)
class Settings:
    bucket_name: str
    region: str
    upload_prefix: str
    max_upload_bytes: int
    max_form_upload_bytes: int
    allowed_content_types: frozenset[str]
    url_expiry_seconds: int
    min_part_size: int
    max_part_size: int
    default_part_size: int
    max_parts_per_request: int
    quarantine_prefix: str
    s3_endpoint_url: str | None
    # The S3 client's patience. Its worst case, s3_max_attempts x (connect + read) plus the
    # retries' backoff, must fit in the function's Timeout: otherwise a stalled S3 shows as a
    # Lambda timeout (a bare 5xx from API Gateway) instead of a clean 504.
    s3_connect_timeout_seconds: float = 5.0
    s3_read_timeout_seconds: float = 30.0
    s3_max_attempts: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        reader = _Reader(source)
        settings = cls(
            bucket_name=reader.text("BUCKET_NAME"),
            region=reader.text("AWS_REGION", source.get("AWS_DEFAULT_REGION", "us-east-1")),
            upload_prefix=reader.text("UPLOAD_PREFIX", "uploads").strip("/"),
            max_upload_bytes=reader.integer("MAX_UPLOAD_BYTES", 10 * GIB, minimum=1),
            max_form_upload_bytes=reader.integer("MAX_FORM_UPLOAD_BYTES", 100 * MIB, minimum=1),
            allowed_content_types=reader.content_types(
                "ALLOWED_CONTENT_TYPES", "image/jpeg,image/png,image/gif,image/webp,image/avif"
            ),
            url_expiry_seconds=reader.integer("URL_EXPIRY_SECONDS", 900, minimum=1),
            min_part_size=reader.integer("MIN_PART_SIZE", S3_MIN_PART_SIZE, minimum=S3_MIN_PART_SIZE),
            max_part_size=reader.integer("MAX_PART_SIZE", S3_MAX_PART_SIZE, minimum=S3_MIN_PART_SIZE),
            default_part_size=reader.integer("DEFAULT_PART_SIZE", 8 * MIB, minimum=S3_MIN_PART_SIZE),
            max_parts_per_request=reader.integer("MAX_PARTS_PER_REQUEST", 1000, minimum=1),
            quarantine_prefix=reader.text("QUARANTINE_PREFIX", "quarantine").strip("/"),
            s3_endpoint_url=source.get("S3_ENDPOINT_URL") or None,
            s3_connect_timeout_seconds=reader.seconds("S3_CONNECT_TIMEOUT_SECONDS", 5.0),
            s3_read_timeout_seconds=reader.seconds("S3_READ_TIMEOUT_SECONDS", 30.0),
            s3_max_attempts=reader.integer("S3_MAX_ATTEMPTS", 3, minimum=1),
        )
        settings._check()
        return settings

    def _check(self) -> None:
        if not self.upload_prefix or "//" in self.upload_prefix:
            raise SettingsError("UPLOAD_PREFIX must be a non-empty path without empty segments")
        if not self.quarantine_prefix or self.quarantine_prefix == self.upload_prefix:
            raise SettingsError("QUARANTINE_PREFIX must be set and differ from UPLOAD_PREFIX")
        if self.max_part_size > S3_MAX_PART_SIZE:
            raise SettingsError(f"MAX_PART_SIZE must be at most {S3_MAX_PART_SIZE} (S3's limit)")
        if not self.min_part_size <= self.default_part_size <= self.max_part_size:
            raise SettingsError("DEFAULT_PART_SIZE must lie between MIN_PART_SIZE and MAX_PART_SIZE")
        if self.max_upload_bytes > S3_MAX_OBJECT_SIZE:
            raise SettingsError(f"MAX_UPLOAD_BYTES must be at most {S3_MAX_OBJECT_SIZE} (S3's limit)")
        if self.max_form_upload_bytes > S3_MAX_SINGLE_PUT:
            raise SettingsError(f"MAX_FORM_UPLOAD_BYTES must be at most {S3_MAX_SINGLE_PUT} (S3's limit)")
        if self.url_expiry_seconds > S3_MAX_PRESIGN_SECONDS:
            raise SettingsError(f"URL_EXPIRY_SECONDS must be at most {S3_MAX_PRESIGN_SECONDS} (7 days)")
        if self.max_parts_per_request > MAX_SIGNED_PARTS_PER_RESPONSE:
            raise SettingsError(
                f"MAX_PARTS_PER_REQUEST must be at most {MAX_SIGNED_PARTS_PER_RESPONSE}"
                " (more signed URLs would approach Lambda's 6 MB response limit)"
            )
        if self.s3_max_attempts > S3_MAX_CLIENT_ATTEMPTS:
            raise SettingsError(f"S3_MAX_ATTEMPTS must be at most {S3_MAX_CLIENT_ATTEMPTS}")
        if not self.allowed_content_types:
            raise SettingsError("ALLOWED_CONTENT_TYPES must name at least one type")


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str | None = None) -> str:
        value = self._env.get(name, default)
        if value is None or not value.strip():
            raise SettingsError(f"{name} must be set")
        return value.strip()

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        return env_integer(self._env, name, default, minimum=minimum)

    def seconds(self, name: str, default: float) -> float:
        return env_seconds(self._env, name, default)

    def content_types(self, name: str, default: str) -> frozenset[str]:
        raw = self._env.get(name) or default
        return frozenset(item.strip().lower() for item in raw.split(",") if item.strip())


def env_integer(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    """An integer setting: the default when unset or blank, a clear error when malformed or too small."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration setting: the default when unset or blank, else more than 0 and at most Lambda's 900 s."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= MAX_LAMBDA_SECONDS:
        raise SettingsError(f"{name} must be more than 0 and at most {MAX_LAMBDA_SECONDS:g} seconds, got {raw!r}")
    return value


@cache
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (once per Lambda container)."""
    return Settings.from_env()
