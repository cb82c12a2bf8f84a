"""ImportSettings: defaults, parsing and the clear failures a bad deployment gets at start."""

from __future__ import annotations

import ipaddress

import pytest

from upload_core.import_settings import ImportSettings
from upload_core.settings import MIB, SettingsError


def test_defaults_are_safe_for_production() -> None:
    settings = ImportSettings.from_env({})
    assert settings.max_bytes == 50 * MIB
    assert settings.timeout_seconds == 20
    assert (settings.connect_timeout_seconds, settings.read_timeout_seconds) == (5, 10)
    assert settings.allowed_ports == {80, 443}
    assert not settings.allowed_destinations  # nothing internal is reachable by default
    assert settings.max_redirects == 3
    assert settings.part_size == 8 * MIB


def test_every_setting_is_read_from_the_environment() -> None:
    settings = ImportSettings.from_env(
        {
            "IMPORT_MAX_BYTES": "1000",
            "IMPORT_TIMEOUT_SECONDS": "1.5",
            "IMPORT_CONNECT_TIMEOUT": "0.5",
            "IMPORT_READ_TIMEOUT": "2",
            "IMPORT_ALLOWED_PORTS": "443, 8443",
            "IMPORT_ALLOWED_DESTINATIONS": "127.0.0.1:8001,10.1.0.0/16",
            "IMPORT_MAX_REDIRECTS": "0",
            "IMPORT_PART_SIZE": str(16 * MIB),
        }
    )
    assert (settings.max_bytes, settings.timeout_seconds) == (1000, 1.5)
    assert (settings.connect_timeout_seconds, settings.read_timeout_seconds) == (0.5, 2)
    assert settings.allowed_ports == {443, 8443}
    assert settings.allowed_destinations.endpoints == {(ipaddress.ip_address("127.0.0.1"), 8001)}
    assert settings.max_redirects == 0
    assert settings.part_size == 16 * MIB
    policy = settings.destination_policy
    assert policy.allowed_ports == {443, 8443}
    assert policy.allowlist == settings.allowed_destinations


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IMPORT_MAX_BYTES": "lots"}, "IMPORT_MAX_BYTES must be an integer"),
        ({"IMPORT_MAX_BYTES": "0"}, "IMPORT_MAX_BYTES must be at least 1"),
        ({"IMPORT_TIMEOUT_SECONDS": "0"}, "IMPORT_TIMEOUT_SECONDS must be more than 0"),
        ({"IMPORT_TIMEOUT_SECONDS": "soon"}, "IMPORT_TIMEOUT_SECONDS must be a number"),
        ({"IMPORT_READ_TIMEOUT": "-1"}, "IMPORT_READ_TIMEOUT"),
        ({"IMPORT_ALLOWED_PORTS": "80,http"}, "IMPORT_ALLOWED_PORTS must list port numbers"),
        ({"IMPORT_ALLOWED_PORTS": "70000"}, "IMPORT_ALLOWED_PORTS"),
        ({"IMPORT_ALLOWED_PORTS": ","}, "IMPORT_ALLOWED_PORTS must name at least one port"),
        ({"IMPORT_ALLOWED_DESTINATIONS": "localhost:8001"}, "IMPORT_ALLOWED_DESTINATIONS"),
        ({"IMPORT_MAX_REDIRECTS": "11"}, "IMPORT_MAX_REDIRECTS must be at most 10"),
        ({"IMPORT_PART_SIZE": str(MIB)}, "IMPORT_PART_SIZE must be at least"),
        ({"IMPORT_MAX_BYTES": str(10_001 * 5 * MIB), "IMPORT_PART_SIZE": str(5 * MIB)}, "10000 parts"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ImportSettings.from_env(env)
