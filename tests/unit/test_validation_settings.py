"""The validator's settings: defaults, parsing and the checks that fail a bad deployment at start."""

from __future__ import annotations

import dataclasses

import pytest

from upload_core.settings import Settings, SettingsError
from upload_core.validator_settings import (
    DEFAULT_MAX_METADATA_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_TOTAL_PIXELS,
    QuarantineAction,
    ValidatorSettings,
)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


def test_defaults_follow_the_shared_settings(settings: Settings) -> None:
    # Given no validator variables at all
    config = ValidatorSettings.from_env(settings, {})
    # Then uploads are validated, rejects moved to quarantine/, and the limits are the documented ones
    assert config.validated_prefixes == (f"{settings.upload_prefix}/",)
    assert config.quarantine_prefix == "quarantine/"
    assert config.quarantine_action is QuarantineAction.MOVE
    assert config.pillow_bytes == 65536
    assert config.limits.max_object_bytes == max(settings.max_upload_bytes, settings.max_form_upload_bytes)
    assert config.limits.max_pixels == DEFAULT_MAX_PIXELS
    assert config.limits.allowed_types == settings.allowed_content_types
    assert config.limits.max_total_pixels == DEFAULT_MAX_TOTAL_PIXELS
    assert config.limits.max_metadata_bytes == DEFAULT_MAX_METADATA_BYTES
    assert config.limits.allow_indexed_jpeg_trailers is False
    assert config.limits.pillow_bytes == config.pillow_bytes


def test_variables_are_parsed(settings: Settings) -> None:
    config = ValidatorSettings.from_env(
        settings,
        {
            "VALIDATED_PREFIXES": "uploads/, imports ,uploads",
            "QUARANTINE_PREFIX": "/rejected/",
            "QUARANTINE_ACTION": "DELETE",
            "MAX_IMAGE_PIXELS": "1000",
            "MAX_IMAGE_WIDTH": "40",
            "MAX_IMAGE_HEIGHT": "30",
            "MAX_FRAMES": "7",
            "MAX_OBJECT_BYTES": "5000",
            "INSPECT_HEAD_BYTES": "4096",
            "MAX_TOTAL_PIXELS": "9000",
            "MAX_METADATA_BYTES": "0",
            "ALLOW_INDEXED_JPEG_TRAILERS": "True",
        },
    )
    assert config.validated_prefixes == ("uploads/", "imports/")
    assert config.quarantine_prefix == "rejected/"
    assert config.quarantine_action is QuarantineAction.DELETE
    limits = config.limits
    assert (limits.max_pixels, limits.max_width, limits.max_height, limits.max_frames) == (1000, 40, 30, 7)
    assert limits.max_object_bytes == 5000
    assert limits.pillow_bytes == 4096
    assert (limits.max_total_pixels, limits.max_metadata_bytes, limits.allow_indexed_jpeg_trailers) == (9000, 0, True)
    assert limits.structure.allow_indexed_jpeg_trailers


def test_keys_are_matched_and_quarantined_by_prefix(settings: Settings) -> None:
    config = ValidatorSettings.from_env(settings, {})
    assert config.is_validated("uploads/alice/x/a.png")
    assert not config.is_validated("uploadsX/a.png")
    assert not config.is_validated("quarantine/uploads/alice/x/a.png")
    assert config.quarantine_key("uploads/alice/x/a.png") == "quarantine/uploads/alice/x/a.png"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QUARANTINE_ACTION": "archive"}, "QUARANTINE_ACTION"),
        ({"QUARANTINE_PREFIX": "uploads/quarantine"}, "overlaps"),
        ({"VALIDATED_PREFIXES": "quarantine/in"}, "overlaps"),
        ({"QUARANTINE_PREFIX": "a//b"}, "QUARANTINE_PREFIX"),
        ({"VALIDATED_PREFIXES": " , "}, "VALIDATED_PREFIXES"),
        ({"MAX_FRAMES": "many"}, "MAX_FRAMES"),
        ({"MAX_IMAGE_PIXELS": "0"}, "MAX_IMAGE_PIXELS"),
        ({"INSPECT_HEAD_BYTES": "8"}, "INSPECT_HEAD_BYTES"),
        ({"MAX_TOTAL_PIXELS": "0"}, "MAX_TOTAL_PIXELS"),
        ({"MAX_METADATA_BYTES": "-1"}, "MAX_METADATA_BYTES"),
        ({"ALLOW_INDEXED_JPEG_TRAILERS": "yes"}, "ALLOW_INDEXED_JPEG_TRAILERS"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(settings: Settings, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ValidatorSettings.from_env(settings, env)


def test_an_allowlist_without_any_checkable_image_type_is_refused(settings: Settings) -> None:
    only_pdf = dataclasses.replace(settings, allowed_content_types=frozenset({"application/pdf"}))
    with pytest.raises(SettingsError, match="ALLOWED_CONTENT_TYPES"):
        ValidatorSettings.from_env(only_pdf, {})
