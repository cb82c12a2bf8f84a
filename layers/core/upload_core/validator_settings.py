"""The validator's own settings (limits, prefixes, quarantine), read once from the environment.

The shared Settings (bucket, region, upload prefix, allowed types, MAX_UPLOAD_BYTES) come from
settings.py; these are the variables only the validator function has.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from upload_core.image_types import IMAGE_TYPES
from upload_core.inspection import InspectionLimits
from upload_core.settings import MIB, Settings, SettingsError, env_integer, get_settings

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


@dataclass(frozen=True, slots=True)
class ValidatorSettings:
    validated_prefixes: tuple[str, ...]
    quarantine_prefix: str
    quarantine_action: QuarantineAction
    head_bytes: int
    max_head_bytes: int
    tail_bytes: int
    limits: InspectionLimits

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str] | None = None) -> ValidatorSettings:
        source = os.environ if env is None else env
        action = source.get("QUARANTINE_ACTION", "move").strip().lower() or "move"
        if action not in {item.value for item in QuarantineAction}:
            raise SettingsError(f"QUARANTINE_ACTION must be 'move' or 'delete', got {action!r}")
        head_bytes = env_integer(source, "INSPECT_HEAD_BYTES", 64 * KIB, minimum=KIB)
        validator = cls(
            validated_prefixes=_prefixes(source.get("VALIDATED_PREFIXES") or f"{settings.upload_prefix}/"),
            quarantine_prefix=_prefix(source.get("QUARANTINE_PREFIX") or "quarantine/", "QUARANTINE_PREFIX"),
            quarantine_action=QuarantineAction(action),
            head_bytes=head_bytes,
            max_head_bytes=env_integer(source, "INSPECT_MAX_HEAD_BYTES", MIB, minimum=head_bytes),
            tail_bytes=env_integer(source, "INSPECT_TAIL_BYTES", 8 * KIB, minimum=64),
            limits=InspectionLimits(
                max_object_bytes=env_integer(
                    source,
                    "MAX_OBJECT_BYTES",
                    max(settings.max_upload_bytes, settings.max_form_upload_bytes),
                    minimum=1,
                ),
                max_pixels=env_integer(source, "MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS, minimum=1),
                max_width=env_integer(source, "MAX_IMAGE_WIDTH", DEFAULT_MAX_DIMENSION, minimum=1),
                max_height=env_integer(source, "MAX_IMAGE_HEIGHT", DEFAULT_MAX_DIMENSION, minimum=1),
                max_frames=env_integer(source, "MAX_FRAMES", DEFAULT_MAX_FRAMES, minimum=1),
                allowed_types=frozenset(settings.allowed_content_types & IMAGE_TYPES.keys()),
                max_total_pixels=env_integer(source, "MAX_TOTAL_PIXELS", DEFAULT_MAX_TOTAL_PIXELS, minimum=1),
                max_metadata_bytes=env_integer(source, "MAX_METADATA_BYTES", DEFAULT_MAX_METADATA_BYTES, minimum=0),
                allow_indexed_jpeg_trailers=_flag(source, "ALLOW_INDEXED_JPEG_TRAILERS"),
                # The validator reads whole objects now; INSPECT_HEAD_BYTES bounds those Pillow opens too.
                pillow_bytes=head_bytes,
            ),
        )
        validator._check()
        return validator

    def _check(self) -> None:
        # The quarantine must lie outside every validated prefix: a moved object would otherwise
        # be validated again, and the bucket notification would loop.
        for prefix in self.validated_prefixes:
            if self.quarantine_prefix.startswith(prefix) or prefix.startswith(self.quarantine_prefix):
                raise SettingsError(
                    f"QUARANTINE_PREFIX {self.quarantine_prefix!r} overlaps validated prefix {prefix!r}"
                )
        if not self.limits.allowed_types:
            raise SettingsError("ALLOWED_CONTENT_TYPES names no image type the validator can check")

    def is_validated(self, key: str) -> bool:
        return key.startswith(self.validated_prefixes)

    def quarantine_key(self, key: str) -> str:
        return f"{self.quarantine_prefix}{key}"


def _flag(source: Mapping[str, str], name: str) -> bool:
    raw = source.get(name, "").strip().lower()
    if raw not in {"", "true", "false"}:
        raise SettingsError(f"{name} must be 'true' or 'false', got {raw!r}")
    return raw == "true"


def _prefix(raw: str, name: str) -> str:
    value = raw.strip().strip("/")
    if not value or "//" in value:
        raise SettingsError(f"{name} must be a non-empty key prefix without empty segments, got {raw!r}")
    return f"{value}/"


def _prefixes(raw: str) -> tuple[str, ...]:
    prefixes = tuple(dict.fromkeys(_prefix(item, "VALIDATED_PREFIXES") for item in raw.split(",") if item.strip()))
    if not prefixes:
        raise SettingsError("VALIDATED_PREFIXES must name at least one prefix")
    return prefixes


@cache
def get_validator_settings() -> ValidatorSettings:
    """The process-wide validator settings, parsed on first use (once per Lambda container)."""
    return ValidatorSettings.from_env(get_settings())
