"""Resume planning: finding this file's upload, its part plan, and which listed parts to keep."""

from __future__ import annotations

import hashlib

import pytest

from client.api import UploadedPart
from client.checksums import Checksum, PartDigest, PartHasher
from client.parts import MIB, PartPlan
from client.resume import checksum_of_listing, infer_plan, part_matches, same_filename


@pytest.mark.parametrize(
    ("key", "filename", "same"),
    [
        ("uploads/me/0123/photo.jpg", "photo.jpg", True),
        ("uploads/me/0123/my_photo_1_.jpg", "my photo#1?.jpg", False),
        ("uploads/me/0123/my photo_1_.jpg", "my photo#1?.jpg", True),
        ("uploads/me/0123/caf\u00e9.png", "cafe\u0301.png", True),  # NFC
        ("uploads/me/0123/photo.jpg", "photo.jpeg", False),
        ("uploads/me/0123/a.jpg", " a.jpg. ", True),
    ],
)
def test_keys_are_matched_to_file_names_as_the_api_sanitizes_them(key: str, filename: str, same: bool) -> None:
    assert same_filename(key, filename) is same


def local_digest(data: bytes, checksum: Checksum | None) -> PartDigest:
    hasher = PartHasher(checksum)
    hasher.update(data)
    return hasher.digest()


def parts(*sizes: tuple[int, int]) -> list[UploadedPart]:
    return [UploadedPart(part_number=number, etag='"x"', size=size) for number, size in sizes]


def test_the_plan_is_learnt_from_the_largest_listed_part() -> None:
    size = 23 * MIB
    assert infer_plan(size, parts((1, 5 * MIB), (3, 5 * MIB)), None) == PartPlan(size, 5 * MIB)


def test_a_listed_last_part_alone_falls_back_to_the_default_plan() -> None:
    size = 20 * MIB  # default 8 MiB parts: 8, 8, 4
    assert infer_plan(size, parts((3, 4 * MIB)), None) == PartPlan(size, 8 * MIB)


def test_no_listed_parts_use_the_requested_or_default_part_size() -> None:
    assert infer_plan(20 * MIB, [], 6 * MIB) == PartPlan(20 * MIB, 6 * MIB)
    assert infer_plan(20 * MIB, [], None) == PartPlan(20 * MIB, 8 * MIB)


def test_parts_that_cannot_belong_to_this_file_give_no_plan() -> None:
    assert infer_plan(7 * MIB, parts((1, 5 * MIB), (4, 5 * MIB)), None) is None


def test_the_checksum_is_recognised_from_listed_parts() -> None:
    sha = UploadedPart(1, '"x"', 5, checksum=local_digest(b"abcde", "sha256").checksum)
    assert checksum_of_listing([sha], "md5") == "sha256"
    assert checksum_of_listing(parts((1, 5)), "md5") == "md5"
    assert checksum_of_listing(parts((1, 5)), "sha256") is None  # started without one
    assert checksum_of_listing([], "sha256") == "sha256"


def test_a_listed_part_is_kept_only_when_it_holds_the_local_bytes() -> None:
    local = local_digest(b"abcde", "sha256")
    plain = local_digest(b"abcde", None)  # an upload without an additional checksum: MD5 ETags
    md5 = f'"{hashlib.md5(b"abcde").hexdigest()}"'  # noqa: S324
    assert part_matches(UploadedPart(1, md5, 5), 5, plain, {})
    assert not part_matches(UploadedPart(1, md5, 4), 5, plain, {})  # wrong size
    assert not part_matches(UploadedPart(1, '"' + "0" * 32 + '"', 5), 5, plain, {})  # another MD5
    assert not part_matches(UploadedPart(1, md5, 5), 5, local, {})  # a checksummed part is judged by its checksum
    assert part_matches(UploadedPart(1, '"kms"', 5, checksum=local.checksum), 5, local, {})
    assert not part_matches(UploadedPart(1, md5, 5, checksum="b3RoZXI="), 5, local, {})  # checksum wins
    # An ETag that is not an MD5 is trusted only when this client recorded it
    assert not part_matches(UploadedPart(1, '"kms-etag"', 5), 5, local_digest(b"abcde", None), {})
    assert part_matches(UploadedPart(1, '"kms-etag"', 5), 5, local_digest(b"abcde", None), {1: "kms-etag"})


def test_a_part_size_under_the_s3_minimum_is_only_believed_when_asked_for() -> None:
    listed = parts((1, 5), (2, 5))
    assert infer_plan(23, listed, None) is None  # 5-byte parts cannot be S3's
    assert infer_plan(23, listed, 5) == PartPlan(23, 5)
