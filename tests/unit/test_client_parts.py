"""Part planning, size parsing, and reading parts (with their digests) from the file."""

from __future__ import annotations

import base64
import hashlib
import zlib
from pathlib import Path

import pytest

from client.errors import LocalFileError
from client.parts import MIB, PartPlan, SourceFile, parse_size


def test_a_file_splits_into_full_parts_and_a_shorter_last_one() -> None:
    plan = PartPlan(size=23, part_size=5)
    assert plan.count == 5
    assert [plan.offset(n) for n in plan.numbers()] == [0, 5, 10, 15, 20]
    assert [plan.length(n) for n in plan.numbers()] == [5, 5, 5, 5, 3]


def test_an_exact_multiple_has_no_short_part() -> None:
    plan = PartPlan(size=50 * MIB, part_size=5 * MIB)
    assert plan.count == 10
    assert plan.length(10) == 5 * MIB


def test_an_empty_file_is_one_empty_part() -> None:
    plan = PartPlan(size=0, part_size=5)
    assert (plan.count, plan.length(1)) == (1, 0)


def test_part_numbers_outside_the_plan_are_refused() -> None:
    plan = PartPlan(size=10, part_size=5)
    with pytest.raises(ValueError, match="outside"):
        plan.length(3)
    with pytest.raises(ValueError, match="outside"):
        plan.offset(0)


def test_the_default_plan_is_8_mib_or_what_keeps_10000_parts() -> None:
    assert PartPlan.default_for(100 * MIB).part_size == 8 * MIB
    huge = 200 * 1024 * MIB  # 200 GiB needs parts of at least 20.48 MiB -> 21 MiB
    plan = PartPlan.default_for(huge)
    assert plan.part_size == 21 * MIB
    assert plan.count <= 10_000


def test_matches_checks_a_listed_part_against_the_plan() -> None:
    plan = PartPlan(size=23, part_size=5)
    assert plan.matches(1, 5) and plan.matches(5, 3)
    assert not plan.matches(5, 5) and not plan.matches(6, 3) and not plan.matches(2, 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5242880", 5 * MIB),
        ("5MiB", 5 * MIB),
        ("5M", 5 * MIB),
        ("5 mib", 5 * MIB),
        ("1.5GiB", 1536 * MIB),
        ("8k", 8192),
        ("5MB", 5_000_000),
        ("16_777_216", 16 * MIB),
    ],
)
def test_sizes_are_parsed(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MiB", "5 parsecs", "-5M", "0", "five"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_a_part_is_read_with_its_digests(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    with SourceFile(path) as source:
        for checksum in ("md5", "sha256", "crc32", None):
            part, digest = source.read(100, 1000, checksum)
            assert part == data[100:1100]
            # MD5 only where no additional checksum stands in for it
            md5 = hashlib.md5(part).digest() if checksum in ("md5", None) else None  # noqa: S324
            assert digest.md5 == md5
            assert source.read_bytes(100, 1000) == part
            expected = {
                "sha256": base64.b64encode(hashlib.sha256(part).digest()).decode(),
                "crc32": base64.b64encode(zlib.crc32(part).to_bytes(4, "big")).decode(),
            }.get(checksum or "")
            assert digest.checksum == expected


def test_a_file_that_got_shorter_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"x" * 100)
    with SourceFile(path) as source:
        path.write_bytes(b"x" * 10)
        with pytest.raises(LocalFileError, match="got shorter"):
            source.read(0, 100, None)
        assert not source.unchanged()


def test_missing_files_and_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalFileError, match="no such file"):
        SourceFile(tmp_path / "missing")
    with pytest.raises(LocalFileError, match="directory"):
        SourceFile(tmp_path)
