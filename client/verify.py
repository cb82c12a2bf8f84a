"""Verification: does what S3 holds match the local bytes? Per part (ETag and echoed checksum)
and for the completed object (size and multipart ETag).

S3 makes a part's ETag its MD5 for unencrypted and SSE-S3 objects, and a multipart object's ETag
the MD5 of its parts' MD5s followed by ``-<count>``; with SSE-KMS or SSE-C neither holds, so
those ETags are only compared where S3 says they are MD5s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from client.api import CompletedUpload
from client.checksums import PartDigest, is_md5_etag, is_multipart_md5_etag, multipart_etag, normalize_etag
from client.errors import TransferError
from client.retry import Transient
from client.transfer import PutResult


@dataclass(frozen=True, slots=True)
class StoredPart:
    """A part S3 holds and that matches the local bytes."""

    number: int
    etag: str
    digest: PartDigest
    length: int
    sent: bool  # PUT by this transfer (False: found intact in S3 when resuming)
    etag_is_md5: bool


def stored_part(number: int, length: int, digest: PartDigest, result: PutResult) -> StoredPart:
    """The part S3 said it stored, once its answer is checked against the local digest; a
    mismatch is ``Transient`` (the part is sent again: the bytes were damaged on the way)."""
    if result.etag is None:
        raise Transient(TransferError(f"part {number}: S3 answered without an ETag"))
    local_md5 = digest.md5_hex
    if local_md5 and result.etag_is_md5 and is_md5_etag(result.etag) and normalize_etag(result.etag) != local_md5:
        stored_md5 = normalize_etag(result.etag)
        raise Transient(TransferError(f"part {number}: S3 stored a body with MD5 {stored_md5}, not {digest.md5_hex}"))
    echoed = (result.checksums or {}).values()
    if digest.checksum is not None and echoed and digest.checksum not in echoed:
        raise Transient(TransferError(f"part {number}: S3's checksum differs from the local one"))
    return StoredPart(number, result.etag, digest, length, sent=True, etag_is_md5=result.etag_is_md5)


def reused_part(number: int, length: int, digest: PartDigest, etag: str) -> StoredPart:
    """A part found in S3 (already matched to the local bytes): its ETag counts as an MD5 only
    if it is this part's MD5, since SSE-KMS ETags look alike."""
    is_md5 = bool(digest.md5_hex) and normalize_etag(etag) == digest.md5_hex
    return StoredPart(number, etag, digest, length, sent=False, etag_is_md5=is_md5)


def check_completed(size: int, parts: Sequence[StoredPart], completed: CompletedUpload) -> None:
    """The completed object has the file's size and, where every ETag is an MD5, the multipart
    ETag of exactly these parts."""
    if completed.size != size:
        raise TransferError(f"S3 stored {completed.size} bytes but the file has {size}")
    md5s = [part.digest.md5 for part in parts if part.etag_is_md5 and is_md5_etag(part.etag)]
    # Without every part's MD5 (an additional checksum stood in for it, which S3 checked per part)
    # there is no ETag to expect.
    if len(md5s) != len(parts) or None in md5s or not is_multipart_md5_etag(completed.etag):
        return
    expected = multipart_etag([md5 for md5 in md5s if md5 is not None])
    if normalize_etag(completed.etag) != expected:
        raise TransferError(f"the stored object's ETag {normalize_etag(completed.etag)} is not the expected {expected}")
