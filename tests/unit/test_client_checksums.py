"""Checksums as S3 computes them, and the ETag arithmetic of multipart uploads."""

from __future__ import annotations

import base64
import hashlib

import pytest

from client.checksums import (
    Checksum,
    PartDigest,
    PartHasher,
    from_api_algorithm,
    guess_from_listed_checksum,
    is_md5_etag,
    is_multipart_md5_etag,
    multipart_etag,
    normalize_etag,
)


def hashed(data: bytes, checksum: Checksum | None, chunk: int | None = None) -> PartDigest:
    hasher = PartHasher(checksum)
    step = chunk or max(1, len(data))
    for start in range(0, len(data), step):
        hasher.update(data[start : start + step])
    return hasher.digest()


def test_known_values() -> None:
    digest = hashed(b"hello world", "md5")
    assert digest.md5_hex == "5eb63bbbe01eeed093cb22bb8f5acdc3"
    assert digest.content_md5 == "XrY7u+Ae7tCTyyK7j1rNww=="
    assert digest.checksum is None
    assert hashed(b"hello world", "sha256").checksum == "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
    assert hashed(b"hello world", "crc32").checksum == "DUoRhQ=="  # CRC32 0x0d4a1185
    assert hashed(b"hello world", None).md5_hex == "5eb63bbbe01eeed093cb22bb8f5acdc3"


@pytest.mark.parametrize("checksum", ["crc32", "sha256"])
def test_an_additional_checksum_stands_in_for_md5(checksum: Checksum) -> None:
    # Given a part hashed for an upload whose parts S3 checks with an additional checksum
    digest = hashed(b"hello world", checksum)
    # Then MD5 is not computed (S3 checks the checksum itself), and no Content-MD5 can be made of it
    assert digest.md5 is None
    assert digest.md5_hex == ""
    with pytest.raises(ValueError, match="MD5"):
        _ = digest.content_md5


@pytest.mark.parametrize("checksum", ["crc32", "sha256"])
def test_chunked_hashing_equals_hashing_at_once(checksum: Checksum) -> None:
    data = bytes(range(256)) * 100
    assert hashed(data, checksum, chunk=999) == hashed(data, checksum)


def test_the_multipart_etag_is_the_md5_of_the_part_md5s() -> None:
    parts = [b"a" * 10, b"b" * 10, b"c"]
    raw = b"".join(hashlib.md5(part).digest() for part in parts)  # noqa: S324
    assert multipart_etag([hashlib.md5(part).digest() for part in parts]) == hashlib.md5(raw).hexdigest() + "-3"  # noqa: S324


@pytest.mark.parametrize(
    ("etag", "normalized"),
    [('"ABCDEF0123456789abcdef0123456789"', "abcdef0123456789abcdef0123456789"), ('W/"x"', "x"), (" 'y' ", "'y'")],
)
def test_etags_are_normalized(etag: str, normalized: str) -> None:
    assert normalize_etag(etag) == normalized


def test_etag_shapes() -> None:
    md5 = hashlib.md5(b"").hexdigest()  # noqa: S324
    assert is_md5_etag(f'"{md5}"') and not is_md5_etag(f'"{md5}-2"') and not is_md5_etag("abc")
    assert is_multipart_md5_etag(f'"{md5}-12"') and not is_multipart_md5_etag(md5)


def test_algorithms_by_name_and_by_checksum_length() -> None:
    assert from_api_algorithm("SHA256") == "sha256" and from_api_algorithm(None) is None
    assert guess_from_listed_checksum(base64.b64encode(bytes(32)).decode()) == "sha256"
    assert guess_from_listed_checksum(base64.b64encode(bytes(4)).decode()) == "crc32"
    assert guess_from_listed_checksum(None) is None
