"""Settings of the remote import (POST /imports), read once from the environment.

Kept apart from `settings.Settings` because only the imports function needs them, and a bad
value here must stop that function at start, not the upload functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from upload_core.environment import EnvironmentSettings, integer, read_environment, variable
from upload_core.settings import MIB, S3_MAX_PART_SIZE, S3_MAX_PARTS, S3_MIN_PART_SIZE, seconds
from upload_core.ssrf import Allowlist, DestinationPolicy

DEFAULT_MAX_BYTES = 50 * MIB
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_READ_TIMEOUT_SECONDS = 10.0
DEFAULT_ALLOWED_PORTS = frozenset({80, 443})
DEFAULT_MAX_REDIRECTS = 3
MAX_REDIRECTS_LIMIT = 10
DEFAULT_PART_SIZE = 8 * MIB
NOWHERE = Allowlist.parse("")


def ports(value: Any) -> frozenset[int]:
    """ "80, 443" (blanks ignored), or a set of port numbers as given."""
    if isinstance(value, frozenset | set) and all(isinstance(port, int) for port in value):
        return frozenset(value)
    if not isinstance(value, str):
        raise ValueError(f"must list port numbers (1-65535), got {value!r}")
    found: set[int] = set()
    for item in (text.strip() for text in value.split(",")):
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise ValueError(f"must list port numbers (1-65535), got {item!r}")
        found.add(int(item))
    if not found:
        raise ValueError("must name at least one port")
    return frozenset(found)


def allowlist(value: Any) -> Allowlist:
    if isinstance(value, Allowlist):
        return value
    if not isinstance(value, str):
        raise ValueError(f"is not an allowlist, got {value!r}")
    try:
        return Allowlist.parse(value)
    except ValueError as error:
        raise ValueError(f"is not an allowlist: {error}") from None


@dataclass(frozen=True, kw_only=True)
class ImportSettings(EnvironmentSettings):
    max_bytes: int = variable("IMPORT_MAX_BYTES", parse=integer, default=DEFAULT_MAX_BYTES, ge=1)
    timeout_seconds: float = seconds("IMPORT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
    connect_timeout_seconds: float = seconds("IMPORT_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_SECONDS)
    read_timeout_seconds: float = seconds("IMPORT_READ_TIMEOUT", DEFAULT_READ_TIMEOUT_SECONDS)
    allowed_ports: frozenset[int] = variable("IMPORT_ALLOWED_PORTS", parse=ports, default=DEFAULT_ALLOWED_PORTS)
    # Nothing internal is reachable unless named here (tests allow 127.0.0.1; production never does).
    allowed_destinations: Allowlist = variable("IMPORT_ALLOWED_DESTINATIONS", parse=allowlist, default=NOWHERE)
    max_redirects: int = variable(
        "IMPORT_MAX_REDIRECTS", parse=integer, default=DEFAULT_MAX_REDIRECTS, ge=0, le=MAX_REDIRECTS_LIMIT
    )
    part_size: int = variable(
        "IMPORT_PART_SIZE", parse=integer, default=DEFAULT_PART_SIZE, ge=S3_MIN_PART_SIZE, le=S3_MAX_PART_SIZE
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ImportSettings:
        return read_environment(cls, env)

    def check(self) -> None:
        if -(-self.max_bytes // self.part_size) > S3_MAX_PARTS:
            raise ValueError(f"IMPORT_MAX_BYTES / IMPORT_PART_SIZE must not exceed {S3_MAX_PARTS} parts")

    @property
    def destination_policy(self) -> DestinationPolicy:
        return DestinationPolicy(allowed_ports=self.allowed_ports, allowlist=self.allowed_destinations)


@cache
def get_import_settings() -> ImportSettings:
    """The process-wide import settings, parsed on first use (once per Lambda container)."""
    return ImportSettings.from_env()
