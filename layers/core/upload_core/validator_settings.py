"""The validator's own settings (limits, prefixes, quarantine), read once from the environment.

The shared Settings (bucket, region, upload prefix, allowed types, MAX_UPLOAD_BYTES) come from
settings.py; these are the variables only the validator function has. One field per variable:
a new inspection limit is one more field here, named as in InspectionLimits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import cache, cached_property
from typing import Any

from upload_core.environment import (
    EnvironmentSettings,
    integer,
    one_of,
    read_environment,
    text,
    texts,
    true_or_false,
    variable,
)
from upload_core.image_types import IMAGE_TYPES
from upload_core.inspection import InspectionLimits
from upload_core.settings import MIB, Settings, get_settings

KIB = 1024

# Pillow's own default bomb threshold (about 89.5 megapixels: 1 GiB of 24-bit pixels / 4 / 3).
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
DEFAULT_MAX_DIMENSION = 30_000
DEFAULT_MAX_FRAMES = 1_000
# Summed over every frame: 1,000 frames of 1 MP, or 11 frames at the per-frame limit.
DEFAULT_MAX_TOTAL_PIXELS = 1_000_000_000
# Bytes that are not image data (EXIF, XMP, ICC, comments, unknown chunks): a 16 MiB ICC profile
# is already extravagant.
DEFAULT_MAX_METADATA_BYTES = 16 * MIB


class QuarantineAction(StrEnum):
    MOVE = "move"
    DELETE = "delete"


def prefixes(value: Any) -> tuple[str, ...]:
    """ "uploads/, imports" (blanks and repeats ignored), or a list of prefixes."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"must list key prefixes, got {value!r}")
    found = tuple(dict.fromkeys(_prefix(str(item)) for item in items if str(item).strip()))
    if not found:
        raise ValueError("must name at least one prefix")
    return found


quarantine_action = one_of(QuarantineAction)


def prefix(value: Any) -> str:
    return _prefix(text(value))


@dataclass(frozen=True, kw_only=True)
class ValidatorSettings(EnvironmentSettings):
    # Defaults that follow the shared Settings are given by `from_env`.
    validated_prefixes: tuple[str, ...] = variable("VALIDATED_PREFIXES", parse=prefixes)
    quarantine_prefix: str = variable("QUARANTINE_PREFIX", parse=prefix, default="quarantine/")
    quarantine_action: QuarantineAction = variable(
        "QUARANTINE_ACTION", parse=quarantine_action, default=QuarantineAction.MOVE
    )
    # The validator streams whole objects; those up to this size are also opened by Pillow.
    pillow_bytes: int = variable("INSPECT_HEAD_BYTES", parse=integer, default=64 * KIB, ge=KIB, le=16 * MIB)
    max_object_bytes: int = variable("MAX_OBJECT_BYTES", parse=integer, ge=1)
    max_pixels: int = variable("MAX_IMAGE_PIXELS", parse=integer, default=DEFAULT_MAX_PIXELS, ge=1)
    max_width: int = variable("MAX_IMAGE_WIDTH", parse=integer, default=DEFAULT_MAX_DIMENSION, ge=1)
    max_height: int = variable("MAX_IMAGE_HEIGHT", parse=integer, default=DEFAULT_MAX_DIMENSION, ge=1)
    max_frames: int = variable("MAX_FRAMES", parse=integer, default=DEFAULT_MAX_FRAMES, ge=1)
    max_total_pixels: int = variable("MAX_TOTAL_PIXELS", parse=integer, default=DEFAULT_MAX_TOTAL_PIXELS, ge=1)
    max_metadata_bytes: int = variable("MAX_METADATA_BYTES", parse=integer, default=DEFAULT_MAX_METADATA_BYTES, ge=0)
    # Camera trailers (MPO) after a JPEG's EOI, when its MP index accounts for every byte.
    allow_indexed_jpeg_trailers: bool = variable("ALLOW_INDEXED_JPEG_TRAILERS", parse=true_or_false, default=False)
    # Not a variable of its own: the shared ALLOWED_CONTENT_TYPES that the validator can check.
    allowed_types: frozenset[str] = variable(parse=texts)

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str] | None = None) -> ValidatorSettings:
        return read_environment(
            cls,
            env,
            VALIDATED_PREFIXES=f"{settings.upload_prefix}/",
            MAX_OBJECT_BYTES=max(settings.max_upload_bytes, settings.max_form_upload_bytes),
            allowed_types=frozenset(settings.allowed_content_types & IMAGE_TYPES.keys()),
        )

    @cached_property
    def limits(self) -> InspectionLimits:
        """The inspection's limits: the fields of the same names (a new limit needs no wiring here)."""
        return InspectionLimits(**{field.name: getattr(self, field.name) for field in fields(InspectionLimits)})

    def check(self) -> None:
        # The quarantine must lie outside every validated prefix: a moved object would otherwise
        # be validated again, and the bucket notification would loop.
        for validated in self.validated_prefixes:
            if self.quarantine_prefix.startswith(validated) or validated.startswith(self.quarantine_prefix):
                raise ValueError(
                    f"QUARANTINE_PREFIX {self.quarantine_prefix!r} overlaps validated prefix {validated!r}"
                )
        if not self.allowed_types:
            raise ValueError("ALLOWED_CONTENT_TYPES names no image type the validator can check")

    def is_validated(self, key: str) -> bool:
        return key.startswith(self.validated_prefixes)

    def quarantine_key(self, key: str) -> str:
        return f"{self.quarantine_prefix}{key}"


def _prefix(raw: str) -> str:
    value = raw.strip().strip("/")
    if not value or "//" in value:
        raise ValueError(f"must be a non-empty key prefix without empty segments, got {raw!r}")
    return f"{value}/"


@cache
def get_validator_settings() -> ValidatorSettings:
    """The process-wide validator settings, parsed on first use (once per Lambda container)."""
    return ValidatorSettings.from_env(get_settings())
