"""Key generation, filename sanitising and the ownership check."""

from __future__ import annotations

import pytest

from upload_core import keys
from upload_core.errors import Forbidden, InvalidRequest


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\cat.png", "cat.png"),
        ("a/b/c.gif", "c.gif"),
        ("bad\x00name\x1f.png", "badname.png"),
        ("  spaced   out .png ", "spaced out .png"),
        ("...", "file"),
        ("", "file"),
        ("<script>.png", "_script_.png"),
        ("cafe\u0301.png", "café.png"),  # NFD input is normalised to NFC
        ("\u202egnp.exe", "gnp.exe"),  # bidi override (category Cf) removed
    ],
)
def test_sanitize_filename(given: str, expected: str) -> None:
    # When a client-sent filename is sanitised / Then it is a safe single key segment
    assert keys.sanitize_filename(given) == expected


def test_sanitize_filename_bounds_length_and_keeps_extension() -> None:
    name = "é" * 300 + ".jpeg"
    cleaned = keys.sanitize_filename(name)
    assert len(cleaned.encode()) <= keys.MAX_FILENAME_BYTES
    assert cleaned.endswith(".jpeg")
    assert cleaned.encode().decode() == cleaned  # cut on a character boundary


@pytest.mark.parametrize("name", ["photo.jpg", "../x", "a" * 500 + ".png", "naïve café.png", "x\ty.png"])
def test_sanitize_is_idempotent(name: str) -> None:
    once = keys.sanitize_filename(name)
    assert keys.sanitize_filename(once) == once


def test_new_key_lives_under_the_callers_prefix() -> None:
    key = keys.new_key("uploads", "alice", "../../x.png")
    prefix, owner, upload_segment, filename = key.split("/")
    assert (prefix, owner, filename) == ("uploads", "alice", "x.png")
    assert len(upload_segment) == 32
    assert keys.ensure_owned("uploads", "alice", key) == key


def test_distinct_owners_never_share_a_prefix() -> None:
    # Given ids that a naive slug would merge / Then their prefixes differ
    owners = ["a|b", "a_b", "a~7Cb", "a/b", "a.b", "A|B"]
    prefixes = {keys.owner_prefix("uploads", owner) for owner in owners}
    assert len(prefixes) == len(owners)
    for owner in owners:
        assert keys.owner_prefix("uploads", owner).count("/") == 2


def test_another_callers_key_is_forbidden() -> None:
    key = keys.new_key("uploads", "alice", "x.png")
    with pytest.raises(Forbidden):
        keys.ensure_owned("uploads", "bob", key)


@pytest.mark.parametrize(
    "key",
    [
        "uploads/alice/../bob/0123456789abcdef0123456789abcdef/x.png",
        "uploads/alice/not-a-uuid/x.png",
        "uploads/alice/0123456789abcdef0123456789abcdef/",
        "uploads/alice/0123456789abcdef0123456789abcdef/sub/x.png",
        "uploads/alice/0123456789abcdef0123456789abcdef/..",
        "quarantine/alice/0123456789abcdef0123456789abcdef/x.png",
        "uploads/alicex/0123456789abcdef0123456789abcdef/x.png",
    ],
)
def test_keys_not_issued_by_the_api_are_forbidden(key: str) -> None:
    with pytest.raises(Forbidden):
        keys.ensure_owned("uploads", "alice", key)


def test_missing_key_is_a_bad_request() -> None:
    with pytest.raises(InvalidRequest):
        keys.ensure_owned("uploads", "alice", "")
