"""Configuration, read once from environment variables into typed, validated objects.

Each settings class is a frozen pydantic dataclass with one field per variable, named by its
`validation_alias`; `read_environment` fills one from the environment and turns pydantic's
errors into a `SettingsError` with one line per bad variable. (A pydantic dataclass rather than a
BaseModel, so that `dataclasses.replace` still derives a variant, as the tests do.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

from pydantic import AliasChoices, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass, is_pydantic_dataclass
from pydantic_core import ErrorDetails

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

# Fields are filled from their environment names; by field name too, so that
# `dataclasses.replace(settings, max_upload_bytes=...)` validates its changes again.
FROM_ENVIRONMENT = ConfigDict(validate_by_alias=True, validate_by_name=True, arbitrary_types_allowed=True)

# A wait inside a function: more than nothing, and never longer than the function may run.
Seconds = Annotated[float, Field(gt=0, le=MAX_LAMBDA_SECONDS, allow_inf_nan=False)]


class SettingsError(ValueError):
    """A setting is missing or malformed; raised at start so a bad deployment fails loudly."""


@dataclass(frozen=True, kw_only=True, config=FROM_ENVIRONMENT)
class Settings:
    bucket_name: str = Field(validation_alias="BUCKET_NAME")
    region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    upload_prefix: str = Field("uploads", validation_alias="UPLOAD_PREFIX")
    max_upload_bytes: int = Field(10 * GIB, ge=1, le=S3_MAX_OBJECT_SIZE, validation_alias="MAX_UPLOAD_BYTES")
    max_form_upload_bytes: int = Field(100 * MIB, ge=1, le=S3_MAX_SINGLE_PUT, validation_alias="MAX_FORM_UPLOAD_BYTES")
    allowed_content_types: frozenset[str] = Field(
        frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"}),
        validation_alias="ALLOWED_CONTENT_TYPES",
    )
    url_expiry_seconds: int = Field(900, ge=1, le=S3_MAX_PRESIGN_SECONDS, validation_alias="URL_EXPIRY_SECONDS")
    min_part_size: int = Field(S3_MIN_PART_SIZE, ge=S3_MIN_PART_SIZE, validation_alias="MIN_PART_SIZE")
    max_part_size: int = Field(
        S3_MAX_PART_SIZE, ge=S3_MIN_PART_SIZE, le=S3_MAX_PART_SIZE, validation_alias="MAX_PART_SIZE"
    )
    default_part_size: int = Field(8 * MIB, ge=S3_MIN_PART_SIZE, validation_alias="DEFAULT_PART_SIZE")
    # At most MAX_SIGNED_PARTS_PER_RESPONSE: more signed URLs would approach Lambda's 6 MB response.
    max_parts_per_request: int = Field(
        1000, ge=1, le=MAX_SIGNED_PARTS_PER_RESPONSE, validation_alias="MAX_PARTS_PER_REQUEST"
    )
    quarantine_prefix: str = Field("quarantine", validation_alias="QUARANTINE_PREFIX")
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    # The S3 client's patience. Its worst case, s3_max_attempts x (connect + read) plus the
    # retries' backoff, must fit in the function's Timeout: otherwise a stalled S3 shows as a
    # Lambda timeout (a bare 5xx from API Gateway) instead of a clean 504.
    s3_connect_timeout_seconds: Seconds = Field(5.0, validation_alias="S3_CONNECT_TIMEOUT_SECONDS")
    s3_read_timeout_seconds: Seconds = Field(30.0, validation_alias="S3_READ_TIMEOUT_SECONDS")
    s3_max_attempts: int = Field(3, ge=1, le=S3_MAX_CLIENT_ATTEMPTS, validation_alias="S3_MAX_ATTEMPTS")
    # The registry (DynamoDB) and the per-owner limits it enforces (docs/limits.md).
    registry_table: str = Field("upload-registry", min_length=3, validation_alias="REGISTRY_TABLE")
    default_user_quota_bytes: int = Field(20 * GIB, ge=0, validation_alias="DEFAULT_USER_QUOTA_BYTES")
    max_concurrent_uploads: int = Field(20, ge=1, validation_alias="MAX_CONCURRENT_UPLOADS")
    max_requests_per_minute: int = Field(1200, ge=1, validation_alias="MAX_REQUESTS_PER_MINUTE")
    # An upload that does not declare its size (Companion) may store at most this; it is reserved.
    max_undeclared_upload_bytes: int = Field(GIB, ge=1, validation_alias="MAX_UNDECLARED_UPLOAD_BYTES")
    # How long an upload (or an unused form) may hold its reservation before the sweeper ends it.
    upload_ttl_seconds: int = Field(24 * 3600, ge=60, le=S3_MAX_PRESIGN_SECONDS, validation_alias="UPLOAD_TTL_SECONDS")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return read_environment(cls, env)

    @field_validator("upload_prefix", "quarantine_prefix")
    @classmethod
    def _key_prefix(cls, value: str) -> str:
        prefix = value.strip("/")
        if not prefix or "//" in prefix:
            raise ValueError(f"must be a non-empty path without empty segments, got {value!r}")
        return prefix

    @field_validator("allowed_content_types", mode="before")
    @classmethod
    def _content_types(cls, value: object) -> object:
        if isinstance(value, str):
            value = frozenset(item.strip().lower() for item in value.split(",") if item.strip())
            if not value:
                raise ValueError("must name at least one type")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.quarantine_prefix == self.upload_prefix:
            raise ValueError("QUARANTINE_PREFIX must differ from UPLOAD_PREFIX")
        if not self.min_part_size <= self.default_part_size <= self.max_part_size:
            raise ValueError("DEFAULT_PART_SIZE must lie between MIN_PART_SIZE and MAX_PART_SIZE")
        return self


def read_environment[T](model: type[T], env: Mapping[str, str] | None = None, **given: Any) -> T:
    """One settings object from the variables its fields name; `given` supplies values (by
    variable or field name) that the environment may override.

    A blank variable counts as unset, as CloudFormation passes an empty Parameter as "".
    """
    source = os.environ if env is None else env
    present = {name: source[name].strip() for name in _variables(model) if source.get(name, "").strip()}
    try:
        return TypeAdapter(model).validate_python({**given, **present})
    except ValidationError as error:
        raise SettingsError(_explain(error)) from None


def _variables(model: type[object]) -> list[str]:
    if not is_pydantic_dataclass(model):
        raise TypeError(f"{model.__name__} is not a pydantic dataclass")
    names: list[str] = []
    for field in model.__pydantic_fields__.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.append(alias)
        elif isinstance(alias, AliasChoices):
            names.extend(choice for choice in alias.choices if isinstance(choice, str))
    return names


def _explain(error: ValidationError) -> str:
    """One line per bad variable, naming it and the value it had."""
    lines: dict[str, str] = {}
    for detail in error.errors():
        name = ".".join(str(part) for part in detail["loc"])
        lines.setdefault(name, _line(name, detail))
    return "\n".join(lines.values())


def _line(name: str, detail: ErrorDetails) -> str:
    context = detail.get("ctx", {})
    got = f", got {detail['input']!r}"
    match detail["type"]:
        case "missing":
            return f"{name} must be set"
        case "int_parsing" | "int_from_float" | "int_type":
            return f"{name} must be an integer{got}"
        case "float_parsing" | "float_type":
            return f"{name} must be a number{got}"
        case "finite_number":
            return f"{name} must be a finite number{got}"
        case "greater_than_equal":
            return f"{name} must be at least {_number(context['ge'])}{got}"
        case "greater_than":
            return f"{name} must be more than {_number(context['gt'])}{got}"
        case "less_than_equal":
            return f"{name} must be at most {_number(context['le'])}{got}"
        case "enum":
            return f"{name} must be {context['expected']}{got}"
        case "value_error" if not name:
            return str(context["error"])  # a check across variables names them itself
        case "value_error":
            return f"{name} {context['error']}"
        case _:
            return f"{name} is not valid ({detail['msg']}){got}"


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@cache
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (once per Lambda container)."""
    return Settings.from_env()
