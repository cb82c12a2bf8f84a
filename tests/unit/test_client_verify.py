"""Verification: a stored part against the local digest, and the completed object against its parts."""

from __future__ import annotations

import hashlib

import pytest

from client.api import CompletedUpload
from client.checksums import Checksum, PartDigest, PartHasher
from client.errors import TransferError
from client.retry import Transient
from client.transfer import Outcome, PutResult
from client.verify import StoredPart, check_completed, reused_part, stored_part


def digest(data: bytes, checksum: Checksum | None = None) -> PartDigest:
    hasher = PartHasher(checksum)
    hasher.update(data)
    return hasher.digest()


def answer(etag: str, *, etag_is_md5: bool = True, checksums: dict[str, str] | None = None) -> PutResult:
    return PutResult(Outcome.STORED, status=200, etag=etag, etag_is_md5=etag_is_md5, checksums=checksums)


def test_a_part_stored_with_its_md5_is_accepted() -> None:
    local = digest(b"abcde")
    part = stored_part(1, 5, local, answer(f'"{local.md5_hex}"'))
    assert part == StoredPart(1, f'"{local.md5_hex}"', local, 5, sent=True, etag_is_md5=True)


def test_a_part_stored_with_another_md5_is_sent_again() -> None:
    with pytest.raises(Transient, match=r"S3 stored a body with MD5 0{32}, not "):
        stored_part(1, 5, digest(b"abcde"), answer('"' + "0" * 32 + '"'))


def test_a_kms_etag_is_not_compared_as_an_md5() -> None:
    part = stored_part(1, 5, digest(b"abcde"), answer('"' + "0" * 32 + '"', etag_is_md5=False))
    assert not part.etag_is_md5


def test_an_echoed_checksum_must_be_the_one_sent() -> None:
    local = digest(b"abcde", "sha256")
    etag = f'"{local.md5_hex}"'
    assert stored_part(1, 5, local, answer(etag, checksums={"x-amz-checksum-sha256": str(local.checksum)})).sent
    with pytest.raises(Transient, match="checksum differs"):
        stored_part(1, 5, local, answer(etag, checksums={"x-amz-checksum-sha256": "b3RoZXI="}))


def test_a_reused_etag_counts_as_an_md5_only_when_it_is_this_parts() -> None:
    local = digest(b"abcde")
    assert reused_part(2, 5, local, f'"{local.md5_hex}"').etag_is_md5
    assert not reused_part(2, 5, local, '"kms-etag"').etag_is_md5
    assert not reused_part(2, 5, local, '"kms-etag"').sent


def parts_of(data: bytes, size: int) -> list[StoredPart]:
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return [
        StoredPart(n, f'"{digest(c).md5_hex}"', digest(c), len(c), sent=True, etag_is_md5=True)
        for n, c in enumerate(chunks, 1)
    ]


def completed(etag: str, size: int) -> CompletedUpload:
    return CompletedUpload(key="k", etag=f'"{etag}"', size=size, location="s3://b/k")


def test_a_completed_object_has_the_files_size_and_the_multipart_etag_of_its_parts() -> None:
    data = bytes(range(23))
    parts = parts_of(data, 5)
    raw = b"".join(part.digest.md5 for part in parts)
    good = f"{hashlib.md5(raw).hexdigest()}-5"  # noqa: S324
    check_completed(23, parts, completed(good, 23))
    with pytest.raises(TransferError, match="S3 stored 22 bytes but the file has 23"):
        check_completed(23, parts, completed(good, 22))
    with pytest.raises(TransferError, match="is not the expected"):
        check_completed(23, parts, completed("0" * 32 + "-5", 23))


def test_a_kms_object_etag_is_not_checked() -> None:
    parts = [
        StoredPart(1, '"kms"', digest(b"abcde"), 5, sent=True, etag_is_md5=False),
    ]
    check_completed(5, parts, completed("0" * 32 + "-1", 5))
