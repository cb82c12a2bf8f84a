"""Per-part digests, computed while a part is read, and the ETag arithmetic of S3 multipart uploads.

A part gets either an additional S3 checksum (CRC32, the default, or SHA-256), signed into the
part's URL so S3 refuses a body that does not match and echoed when it stores one, or, without
one, an MD5: S3's ETag of a part is its MD5 for unencrypted and SSE-S3 objects, which lets the
client check what S3 stored, and the completed object's ETag is the MD5 of those MD5s followed by
``-<part count>``. MD5 is skipped when S3 checks a CRC32 or SHA-256 itself: it runs at about a
sixth of zlib's CRC32 speed and would then only repeat S3's own check.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Checksum = Literal["md5", "sha256", "crc32"]
CHECKSUMS: tuple[Checksum, ...] = ("md5", "sha256", "crc32")
# The API's (and S3's) name for the additional checksum; MD5 travels as Content-MD5 instead.
API_ALGORITHMS: dict[str, str] = {"sha256": "SHA256", "crc32": "CRC32"}
_BY_API_ALGORITHM: dict[str, Checksum] = {"SHA256": "sha256", "CRC32": "crc32"}
# Base64 lengths of the checksums, to recognise an upload's algorithm from a listed part.
_B64_LENGTHS: dict[int, Checksum] = {44: "sha256", 8: "crc32"}

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART_ETAG = re.compile(r"^[0-9a-f]{32}-[0-9]+$")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class PartDigest:
    md5: bytes | None  # raw 16 bytes; None when an additional checksum stands in for it
    checksum: str | None  # base64 of the additional checksum, when the upload uses one

    @property
    def md5_hex(self) -> str:
        """The MD5 in hex, or "" when it was not computed (it then matches no ETag)."""
        return self.md5.hex() if self.md5 is not None else ""

    @property
    def content_md5(self) -> str:
        """The ``Content-MD5`` header value (base64 of the raw digest)."""
        if self.md5 is None:
            raise ValueError("this part's MD5 was not computed")
        return b64(self.md5)


class PartHasher:
    """Feeds each chunk of a part to the upload's additional checksum, or to MD5 without one."""

    def __init__(self, checksum: Checksum | None) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False) if checksum in (None, "md5") else None
        self._sha256 = hashlib.sha256() if checksum == "sha256" else None
        self._crc32: int | None = 0 if checksum == "crc32" else None

    def update(self, chunk: bytes | memoryview) -> None:
        if self._md5 is not None:
            self._md5.update(chunk)
        if self._sha256 is not None:
            self._sha256.update(chunk)
        if self._crc32 is not None:
            self._crc32 = zlib.crc32(chunk, self._crc32)

    def digest(self) -> PartDigest:
        if self._sha256 is not None:
            extra: str | None = b64(self._sha256.digest())
        elif self._crc32 is not None:
            extra = b64(self._crc32.to_bytes(4, "big"))
        else:
            extra = None
        return PartDigest(md5=self._md5.digest() if self._md5 is not None else None, checksum=extra)


def normalize_etag(etag: str) -> str:
    """An ETag without quotes or a weak-validator prefix, lower case."""
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower()


def is_md5_etag(etag: str) -> bool:
    return bool(_MD5_ETAG.fullmatch(normalize_etag(etag)))


def multipart_etag(md5_digests: Sequence[bytes]) -> str:
    """The ETag S3 gives a multipart object of unencrypted or SSE-S3 parts: MD5 of the parts' raw
    MD5s, then ``-<count>`` (without quotes)."""
    return f"{hashlib.md5(b''.join(md5_digests), usedforsecurity=False).hexdigest()}-{len(md5_digests)}"


def is_multipart_md5_etag(etag: str) -> bool:
    return bool(_MULTIPART_ETAG.fullmatch(normalize_etag(etag)))


def from_api_algorithm(algorithm: str | None) -> Checksum | None:
    return _BY_API_ALGORITHM.get((algorithm or "").upper())


def guess_from_listed_checksum(value: str | None) -> Checksum | None:
    """The algorithm of a part checksum listed by the API, recognised by its length."""
    return _B64_LENGTHS.get(len(value)) if value else None
