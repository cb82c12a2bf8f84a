"""Part arithmetic against S3's limits."""

from __future__ import annotations

import dataclasses

import pytest

from upload_core import parts
from upload_core.errors import InvalidRequest, TooLarge
from upload_core.settings import GIB, MIB, S3_MAX_PARTS, Settings


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({"BUCKET_NAME": "b", "MAX_UPLOAD_BYTES": str(1000 * GIB)})


@pytest.mark.parametrize(
    ("size", "part_size", "count"),
    [(0, 5 * MIB, 1), (1, 5 * MIB, 1), (5 * MIB, 5 * MIB, 1), (5 * MIB + 1, 5 * MIB, 2)],
)
def test_part_count_needs_at_least_one_part(size: int, part_size: int, count: int) -> None:
    assert parts.part_count(size, part_size) == count


def test_default_part_size_keeps_within_ten_thousand_parts(settings: Settings) -> None:
    size = 500 * GIB
    part_size = parts.choose_part_size(size, None, settings)
    assert parts.part_count(size, part_size) <= S3_MAX_PARTS
    assert part_size % MIB == 0
    assert parts.choose_part_size(20 * MIB, None, settings) == settings.default_part_size


def test_requested_part_size_must_fit_s3_bounds(settings: Settings) -> None:
    assert parts.choose_part_size(100 * MIB, 6 * MIB, settings) == 6 * MIB
    with pytest.raises(InvalidRequest):
        parts.choose_part_size(100 * MIB, 5 * MIB - 1, settings)
    with pytest.raises(InvalidRequest):
        parts.choose_part_size(100 * MIB, 6 * GIB, settings)


def test_requested_part_size_that_needs_too_many_parts_is_refused(settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match="10000"):
        parts.choose_part_size(60 * GIB, 5 * MIB, settings)


def test_size_over_the_configured_maximum_is_too_large(settings: Settings) -> None:
    small = dataclasses.replace(settings, max_upload_bytes=10 * MIB)
    with pytest.raises(TooLarge):
        parts.choose_part_size(10 * MIB + 1, None, small)


def test_part_numbers_are_validated() -> None:
    assert parts.validate_part_numbers([3, 1, 2, 2], limit=10) == [1, 2, 3]
    for bad in ([0], [10_001], [-1], [True]):
        with pytest.raises(InvalidRequest):
            parts.validate_part_numbers(bad, limit=10)
    with pytest.raises(InvalidRequest, match="at most 2"):
        parts.validate_part_numbers([1, 2, 3], limit=2)
    with pytest.raises(InvalidRequest):
        parts.validate_part_numbers([], limit=2)


def test_only_the_last_part_may_be_small() -> None:
    assert parts.check_part_sizes([(1, 5 * MIB), (2, 1)]) == 5 * MIB + 1
    with pytest.raises(InvalidRequest, match="at least"):
        parts.check_part_sizes([(1, 1), (2, 5 * MIB)])
