"""`make dev`'s command line and console: parameter overrides, tokens, one readable line per event."""

from __future__ import annotations

import json

import pytest

from local import console
from local.dev import main, parse_overrides
from local.gateway import JwksVerifier, Unauthorized, authorize
from local.template import load_template
from local.tokens import SigningKey, default_key


def test_overrides_are_name_value_pairs_like_sams() -> None:
    # Given the words make passes for PARAMETERS="A=1 B=x=y" and a separate item
    overrides = parse_overrides(["MaxUploadBytes=20971520 UrlExpirySeconds=60", "LogLevel=DEBUG"])
    # Then each is one override, and a value may contain "="
    assert overrides == {"MaxUploadBytes": "20971520", "UrlExpirySeconds": "60", "LogLevel": "DEBUG"}
    assert parse_overrides(["Name=a=b"]) == {"Name": "a=b"}
    with pytest.raises(ValueError, match="Name=Value"):
        parse_overrides(["MaxUploadBytes"])


def test_an_unknown_parameter_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    # When make dev (here: make token) is given a parameter the template does not declare
    status = main(["--token", "bob", "--parameter-overrides", "NoSuchParameter=1"])
    # Then it stops with one line naming it and the parameters that exist
    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith("make dev: unknown parameter override(s): NoSuchParameter")
    assert "MaxUploadBytes" in error


def test_make_token_prints_a_token_a_running_stack_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the token `make token SUB=bob` prints (signed with the key kept in .local-data/)
    assert main(["--token", "bob"]) == 0
    token = capsys.readouterr().out.strip()
    (authorizer,) = load_template().jwt_authorizers().values()
    # Then the authorizer of a stack using that key accepts it, and one using another key does not
    assert authorize(f"Bearer {token}", authorizer, JwksVerifier(default_key().jwks())).claims["sub"] == "bob"
    with pytest.raises(Unauthorized):
        authorize(f"Bearer {token}", authorizer, JwksVerifier(SigningKey.generate().jwks()))


def test_the_console_shows_verdicts_and_problems_and_leaves_routine_records_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = [
        {
            "level": "INFO",
            "message": "validation outcome",
            "key": "uploads/u/1/a.png",
            "status": "valid",
            "reason": "ok",
        },
        {"level": "INFO", "message": "request handled"},
        {"_aws": {"CloudWatchMetrics": []}, "ObjectsValid": [1.0]},
        {"level": "WARNING", "message": "record outside the validated bucket", "key": "x"},
    ]
    for record in records:
        console.function_line("ValidatorFunction", json.dumps(record))
    console.function_line("ValidatorFunction", "Traceback (most recent call last):\n")
    console.access_line("POST", "/uploads", 201, 23.4)
    lines = [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines()]  # without the time
    assert lines == [
        "validated uploads/u/1/a.png valid ok",
        "ValidatorFunction WARNING record outside the validated bucket key=x",
        "ValidatorFunction: Traceback (most recent call last):",
        "POST   /uploads 201 23 ms",
    ]
