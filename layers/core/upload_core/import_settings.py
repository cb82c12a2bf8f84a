"""Settings of the remote import (POST /imports), read once from the environment.

Kept apart from `settings.Settings` because only the imports function needs them, and a bad
value here must stop that function at start, not the upload functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from upload_core.settings import (
    FROM_ENVIRONMENT,
    MIB,
    S3_MAX_PART_SIZE,
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    Seconds,
    read_environment,
)
from upload_core.ssrf import Allowlist, DestinationPolicy

DEFAULT_MAX_BYTES = 50 * MIB
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_READ_TIMEOUT_SECONDS = 10.0
DEFAULT_ALLOWED_PORTS = frozenset({80, 443})
DEFAULT_MAX_REDIRECTS = 3
MAX_REDIRECTS_LIMIT = 10
DEFAULT_PART_SIZE = 8 * MIB


@dataclass(frozen=True, kw_only=True, config=FROM_ENVIRONMENT)
class ImportSettings:
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1, validation_alias="IMPORT_MAX_BYTES")
    timeout_seconds: Seconds = Field(DEFAULT_TIMEOUT_SECONDS, validation_alias="IMPORT_TIMEOUT_SECONDS")
    connect_timeout_seconds: Seconds = Field(DEFAULT_CONNECT_TIMEOUT_SECONDS, validation_alias="IMPORT_CONNECT_TIMEOUT")
    read_timeout_seconds: Seconds = Field(DEFAULT_READ_TIMEOUT_SECONDS, validation_alias="IMPORT_READ_TIMEOUT")
    allowed_ports: frozenset[int] = Field(DEFAULT_ALLOWED_PORTS, validation_alias="IMPORT_ALLOWED_PORTS")
    # Nothing internal is reachable unless named here (tests allow 127.0.0.1; production never does).
    allowed_destinations: Allowlist = Field(Allowlist.parse(""), validation_alias="IMPORT_ALLOWED_DESTINATIONS")
    max_redirects: int = Field(
        DEFAULT_MAX_REDIRECTS, ge=0, le=MAX_REDIRECTS_LIMIT, validation_alias="IMPORT_MAX_REDIRECTS"
    )
    part_size: int = Field(
        DEFAULT_PART_SIZE, ge=S3_MIN_PART_SIZE, le=S3_MAX_PART_SIZE, validation_alias="IMPORT_PART_SIZE"
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ImportSettings:
        return read_environment(cls, env)

    @field_validator("allowed_ports", mode="before")
    @classmethod
    def _ports(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        ports: set[int] = set()
        for item in (text.strip() for text in value.split(",")):
            if not item:
                continue
            if not item.isdigit() or not 1 <= int(item) <= 65535:
                raise ValueError(f"must list port numbers (1-65535), got {item!r}")
            ports.add(int(item))
        if not ports:
            raise ValueError("must name at least one port")
        return frozenset(ports)

    @field_validator("allowed_destinations", mode="before")
    @classmethod
    def _allowlist(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return Allowlist.parse(value)
        except ValueError as error:
            raise ValueError(f"is not an allowlist: {error}") from None

    @model_validator(mode="after")
    def _fits_in_parts(self) -> ImportSettings:
        if -(-self.max_bytes // self.part_size) > S3_MAX_PARTS:
            raise ValueError(f"IMPORT_MAX_BYTES / IMPORT_PART_SIZE must not exceed {S3_MAX_PARTS} parts")
        return self

    @property
    def destination_policy(self) -> DestinationPolicy:
        return DestinationPolicy(allowed_ports=self.allowed_ports, allowlist=self.allowed_destinations)


@cache
def get_import_settings() -> ImportSettings:
    """The process-wide import settings, parsed on first use (once per Lambda container)."""
    return ImportSettings.from_env()
