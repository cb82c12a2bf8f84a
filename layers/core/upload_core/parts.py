"""Part arithmetic for S3 multipart uploads."""

from __future__ import annotations

from collections.abc import Iterable

from upload_core.errors import InvalidRequest, TooLarge
from upload_core.settings import MIB, S3_MAX_PARTS, S3_MIN_PART_SIZE, Settings


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def part_count(size: int, part_size: int) -> int:
    """S3 needs at least one part, even for an empty object."""
    return max(1, ceil_div(size, part_size))


def choose_part_size(size: int, requested: int | None, settings: Settings) -> int:
    """The requested part size if it is valid for this size, otherwise the smallest default
    that keeps the upload within S3's 10,000 parts (rounded up to whole MiB)."""
    if size > settings.max_upload_bytes:
        raise TooLarge(
            f"size {size} exceeds the maximum upload size of {settings.max_upload_bytes} bytes",
            code="UploadTooLarge",
        )
    smallest = ceil_div(size, S3_MAX_PARTS)
    if requested is not None:
        if not settings.min_part_size <= requested <= settings.max_part_size:
            raise InvalidRequest(
                f"partSize must be between {settings.min_part_size} and {settings.max_part_size} bytes",
                code="InvalidPartSize",
            )
        if requested < smallest:
            raise InvalidRequest(
                f"partSize {requested} would need more than {S3_MAX_PARTS} parts; use at least {smallest}",
                code="InvalidPartSize",
            )
        return requested
    chosen = max(settings.default_part_size, ceil_div(smallest, MIB) * MIB)
    if chosen > settings.max_part_size:
        raise TooLarge(f"size {size} cannot be split into {S3_MAX_PARTS} parts", code="UploadTooLarge")
    return chosen


def validate_part_numbers(numbers: Iterable[int], *, limit: int, highest: int = S3_MAX_PARTS) -> list[int]:
    """Unique, sorted part numbers in 1..highest, at most `limit` of them."""
    unique = sorted(set(numbers))
    if not unique:
        raise InvalidRequest("at least one part number is required", code="InvalidPartNumber")
    if len(unique) > limit:
        raise InvalidRequest(f"at most {limit} part numbers per request", code="TooManyParts")
    for number in unique:
        if isinstance(number, bool) or not 1 <= number <= highest:
            raise InvalidRequest(f"part numbers must be between 1 and {highest}", code="InvalidPartNumber")
    return unique


def check_part_sizes(sizes_in_order: list[tuple[int, int]]) -> int:
    """S3's rule that every part but the last is at least 5 MiB, checked before completing
    (some S3-compatible servers do not enforce it). Returns the total size."""
    for index, (number, size) in enumerate(sizes_in_order):
        if index < len(sizes_in_order) - 1 and size < S3_MIN_PART_SIZE:
            raise InvalidRequest(
                f"part {number} is {size} bytes; every part but the last must be at least {S3_MIN_PART_SIZE}",
                code="EntityTooSmall",
            )
    return sum(size for _, size in sizes_in_order)
