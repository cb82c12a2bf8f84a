"""Settings are parsed once and a bad setting fails loudly."""

from __future__ import annotations

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
