"""Settings of the remote import (POST /imports), read once from the environment.

Kept apart from `settings.Settings` because only the imports function needs them, and a bad
value here must stop that function at start, not the upload functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from upload_core.settings import (
    MIB,
    S3_MAX_PART_SIZE,
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    SettingsError,
    env_integer,
    env_seconds,
)
from upload_core.ssrf import Allowlist, DestinationPolicy

DEFAULT_MAX_BYTES = 50 * MIB
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_READ_TIMEOUT_SECONDS = 10.0
DEFAULT_ALLOWED_PORTS = "80,443"
DEFAULT_MAX_REDIRECTS = 3
MAX_REDIRECTS_LIMIT = 10
DEFAULT_PART_SIZE = 8 * MIB


@dataclass(frozen=True, slots=True)
class ImportSettings:
    max_bytes: int
    timeout_seconds: float
    connect_timeout_seconds: float
    read_timeout_seconds: float
    allowed_ports: frozenset[int]
    allowed_destinations: Allowlist
    max_redirects: int
    part_size: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ImportSettings:
        source = os.environ if env is None else env
        settings = cls(
            max_bytes=env_integer(source, "IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES, minimum=1),
            timeout_seconds=env_seconds(source, "IMPORT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS),
            connect_timeout_seconds=env_seconds(source, "IMPORT_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_SECONDS),
            read_timeout_seconds=env_seconds(source, "IMPORT_READ_TIMEOUT", DEFAULT_READ_TIMEOUT_SECONDS),
            allowed_ports=_ports(source, "IMPORT_ALLOWED_PORTS"),
            allowed_destinations=_allowlist(source, "IMPORT_ALLOWED_DESTINATIONS"),
            max_redirects=env_integer(source, "IMPORT_MAX_REDIRECTS", DEFAULT_MAX_REDIRECTS, minimum=0),
            part_size=env_integer(source, "IMPORT_PART_SIZE", DEFAULT_PART_SIZE, minimum=S3_MIN_PART_SIZE),
        )
        settings._check()
        return settings

    def _check(self) -> None:
        if self.max_redirects > MAX_REDIRECTS_LIMIT:
            raise SettingsError(f"IMPORT_MAX_REDIRECTS must be at most {MAX_REDIRECTS_LIMIT}")
        if self.part_size > S3_MAX_PART_SIZE:
            raise SettingsError(f"IMPORT_PART_SIZE must be at most {S3_MAX_PART_SIZE} (S3's limit)")
        if -(-self.max_bytes // self.part_size) > S3_MAX_PARTS:
            raise SettingsError(f"IMPORT_MAX_BYTES / IMPORT_PART_SIZE must not exceed {S3_MAX_PARTS} parts")

    @property
    def destination_policy(self) -> DestinationPolicy:
        return DestinationPolicy(allowed_ports=self.allowed_ports, allowlist=self.allowed_destinations)


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value is not None and value.strip() else None


def _ports(env: Mapping[str, str], name: str) -> frozenset[int]:
    raw = _raw(env, name) or DEFAULT_ALLOWED_PORTS
    ports: set[int] = set()
    for item in raw.split(","):
        text = item.strip()
        if not text:
            continue
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise SettingsError(f"{name} must list port numbers (1-65535), got {text!r}")
        ports.add(int(text))
    if not ports:
        raise SettingsError(f"{name} must name at least one port")
    return frozenset(ports)


def _allowlist(env: Mapping[str, str], name: str) -> Allowlist:
    try:
        return Allowlist.parse(env.get(name) or "")
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


@cache
def get_import_settings() -> ImportSettings:
    """The process-wide import settings, parsed on first use (once per Lambda container)."""
    return ImportSettings.from_env()
