"""Settings are parsed once and a bad setting fails loudly."""

from __future__ import annotations

import dataclasses

import pytest

from upload_core.settings import MIB, Settings, SettingsError


def test_defaults_and_parsing() -> None:
    settings = Settings.from_env(
        {"BUCKET_NAME": "b", "ALLOWED_CONTENT_TYPES": " Image/PNG , image/jpeg,,", "UPLOAD_PREFIX": "/up/"}
    )
    assert settings.allowed_content_types == frozenset({"image/png", "image/jpeg"})
    assert settings.upload_prefix == "up"
    assert settings.min_part_size == 5 * MIB
    assert settings.s3_endpoint_url is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "BUCKET_NAME"),
        ({"BUCKET_NAME": "b", "MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
        ({"BUCKET_NAME": "b", "MIN_PART_SIZE": "1024"}, "MIN_PART_SIZE"),
        ({"BUCKET_NAME": "b", "URL_EXPIRY_SECONDS": "604801"}, "URL_EXPIRY_SECONDS"),
        ({"BUCKET_NAME": "b", "DEFAULT_PART_SIZE": str(6 * 1024**3)}, "DEFAULT_PART_SIZE|MAX_PART_SIZE"),
        ({"BUCKET_NAME": "b", "MAX_PART_SIZE": str(6 * 1024**3)}, "MAX_PART_SIZE"),
        ({"BUCKET_NAME": "b", "ALLOWED_CONTENT_TYPES": " , "}, "ALLOWED_CONTENT_TYPES"),
        ({"BUCKET_NAME": "b", "MAX_PARTS_PER_REQUEST": "10001"}, "MAX_PARTS_PER_REQUEST"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_every_bad_variable_gets_one_line_naming_it_and_its_value() -> None:
    # Given three bad variables at once (and a blank one, which counts as unset)
    env = {"BUCKET_NAME": "b", "MAX_UPLOAD_BYTES": "lots", "S3_MAX_ATTEMPTS": "11", "S3_READ_TIMEOUT_SECONDS": "inf"}
    # When the settings are read
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**env, "URL_EXPIRY_SECONDS": " "})
    # Then the error lists each of them once, with the value it had
    assert str(raised.value).splitlines() == [
        "MAX_UPLOAD_BYTES must be an integer, got 'lots'",
        "S3_READ_TIMEOUT_SECONDS must be a finite number, got 'inf'",
        "S3_MAX_ATTEMPTS must be at most 10, got '11'",
    ]


def test_a_derived_copy_is_validated_again() -> None:
    # Given valid settings
    settings = Settings.from_env({"BUCKET_NAME": "b"})
    # When a test derives a variant by field name / Then the same rules hold
    assert dataclasses.replace(settings, max_upload_bytes=MIB).max_upload_bytes == MIB
    with pytest.raises(ValueError, match="max_upload_bytes"):
        dataclasses.replace(settings, max_upload_bytes=0)


def test_region_falls_back_to_the_default_region_variable() -> None:
    assert Settings.from_env({"BUCKET_NAME": "b", "AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert Settings.from_env({"BUCKET_NAME": "b", "AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "x"}).region == (
        "eu-north-1"
    )
