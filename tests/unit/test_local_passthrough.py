"""The local stack hands IMPORT_ALLOWED_DESTINATIONS from its own environment to the functions."""

from __future__ import annotations

from local.stack import passthrough_overrides


def test_unset_variables_change_nothing() -> None:
    assert passthrough_overrides({}, {"Parameters": {"X": "1"}}) == {"Parameters": {"X": "1"}}


def test_a_set_variable_reaches_every_function_that_declares_it() -> None:
    environ = {"IMPORT_ALLOWED_DESTINATIONS": "127.0.0.1:8001", "HOME": "/root"}
    assert passthrough_overrides(environ, {}) == {"Parameters": {"IMPORT_ALLOWED_DESTINATIONS": "127.0.0.1:8001"}}


def test_explicit_overrides_win_in_either_format() -> None:
    environ = {"IMPORT_ALLOWED_DESTINATIONS": "127.0.0.1:8001"}
    sections = passthrough_overrides(environ, {"Parameters": {"IMPORT_ALLOWED_DESTINATIONS": "10.0.0.0/8"}})
    assert sections == {"Parameters": {"IMPORT_ALLOWED_DESTINATIONS": "10.0.0.0/8"}}
    flat = passthrough_overrides(environ, {"IMPORT_ALLOWED_DESTINATIONS": "", "OTHER": "x"})
    assert flat == {"IMPORT_ALLOWED_DESTINATIONS": "", "OTHER": "x"}
