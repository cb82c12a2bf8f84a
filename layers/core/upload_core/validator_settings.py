"""The validator's own settings (limits, prefixes, quarantine), read once from the environment.

The shared Settings (bucket, region, upload prefix, allowed types, MAX_UPLOAD_BYTES) come from
settings.py; these are the variables only the validator function has. One field per variable:
a new inspection limit is one more field here, named as in InspectionLimits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from enum import StrEnum
from functools import cache, cached_property

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from upload_core.image_types import IMAGE_TYPES
from upload_core.inspection import InspectionLimits
from upload_core.settings import FROM_ENVIRONMENT, MIB, Settings, get_settings, read_environment

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


@dataclass(frozen=True, kw_only=True, config=FROM_ENVIRONMENT)
class ValidatorSettings:
    # Defaults that follow the shared Settings are given by `from_env`.
    validated_prefixes: tuple[str, ...] = Field(validation_alias="VALIDATED_PREFIXES")
    quarantine_prefix: str = Field("quarantine/", validation_alias="QUARANTINE_PREFIX")
    quarantine_action: QuarantineAction = Field(QuarantineAction.MOVE, validation_alias="QUARANTINE_ACTION")
    # The validator streams whole objects; those up to this size are also opened by Pillow.
    pillow_bytes: int = Field(64 * KIB, ge=KIB, le=16 * MIB, validation_alias="INSPECT_HEAD_BYTES")
    max_object_bytes: int = Field(ge=1, validation_alias="MAX_OBJECT_BYTES")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, validation_alias="MAX_IMAGE_PIXELS")
    max_width: int = Field(DEFAULT_MAX_DIMENSION, ge=1, validation_alias="MAX_IMAGE_WIDTH")
    max_height: int = Field(DEFAULT_MAX_DIMENSION, ge=1, validation_alias="MAX_IMAGE_HEIGHT")
    max_frames: int = Field(DEFAULT_MAX_FRAMES, ge=1, validation_alias="MAX_FRAMES")
    max_total_pixels: int = Field(DEFAULT_MAX_TOTAL_PIXELS, ge=1, validation_alias="MAX_TOTAL_PIXELS")
    max_metadata_bytes: int = Field(DEFAULT_MAX_METADATA_BYTES, ge=0, validation_alias="MAX_METADATA_BYTES")
    # Camera trailers (MPO) after a JPEG's EOI, when its MP index accounts for every byte.
    allow_indexed_jpeg_trailers: bool = Field(False, validation_alias="ALLOW_INDEXED_JPEG_TRAILERS")
    # Not a variable of its own: the shared ALLOWED_CONTENT_TYPES that the validator can check.
    allowed_types: frozenset[str]

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

    @field_validator("validated_prefixes", mode="before")
    @classmethod
    def _prefixes(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        prefixes = tuple(dict.fromkeys(_prefix(str(item)) for item in items if str(item).strip()))
        if not prefixes:
            raise ValueError("must name at least one prefix")
        return prefixes

    @field_validator("quarantine_prefix")
    @classmethod
    def _quarantine_prefix(cls, value: str) -> str:
        return _prefix(value)

    @field_validator("allow_indexed_jpeg_trailers", mode="before")
    @classmethod
    def _true_or_false(cls, value: object) -> object:
        # The template's AllowedValues; pydantic alone would also take "yes", "1", "on".
        if isinstance(value, str):
            if value.strip().lower() not in ("true", "false"):
                raise ValueError(f"must be 'true' or 'false', got {value!r}")
            return value.strip().lower() == "true"
        return value

    @field_validator("quarantine_action", mode="before")
    @classmethod
    def _action(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> ValidatorSettings:
        # The quarantine must lie outside every validated prefix: a moved object would otherwise
        # be validated again, and the bucket notification would loop.
        for prefix in self.validated_prefixes:
            if self.quarantine_prefix.startswith(prefix) or prefix.startswith(self.quarantine_prefix):
                raise ValueError(f"QUARANTINE_PREFIX {self.quarantine_prefix!r} overlaps validated prefix {prefix!r}")
        if not self.allowed_types:
            raise ValueError("ALLOWED_CONTENT_TYPES names no image type the validator can check")
        return self

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
