"""Deciding what a resume can keep: which upload is this file's, its part plan, and which of the
parts already in S3 hold exactly the local bytes.

Nothing already uploaded is trusted on its word: a listed part is kept only when its size fits
the plan and its checksum, its MD5 ETag, or (for ETags that are not MD5s, as with SSE-KMS) the
ETag this client recorded for the unchanged file matches the local part.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from client.api import UploadedPart
from client.checksums import Checksum, PartDigest, guess_from_listed_checksum, is_md5_etag, normalize_etag
from client.parts import S3_MIN_PART_SIZE, PartPlan

# The API's filename rule (upload_core.keys.sanitize_filename): word characters and .-()+,@= stay,
# anything else becomes "_", whitespace runs become one space, outer spaces and dots go.
_UNSAFE_CHARS = re.compile(r"[^\w.\- ()+,@=]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def same_filename(key: str, filename: str) -> bool:
    """True when ``key`` ends with the name the API makes of ``filename``."""
    last = key.rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", filename)
    if last == name:
        return True
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = _SPACES.sub(" ", _UNSAFE_CHARS.sub("_", name)).strip(" .")
    return last == name


def infer_plan(size: int, listed: Iterable[UploadedPart], part_size: int | None) -> PartPlan | None:
    """The part plan an upload of a ``size``-byte file must have had for its listed parts to fit,
    or None when they cannot belong to a file of that size.

    Tried in order: the part size asked for, the largest listed part (every part but the last
    has the plan's size; a guess under S3's 5 MiB minimum can only be a lone last part), the
    API's default plan for that size.
    """
    parts = list(listed)
    guesses: list[int] = []
    if part_size is not None:
        guesses.append(part_size)
    if parts:
        largest = max(part.size for part in parts)
        if largest >= S3_MIN_PART_SIZE or largest >= size:
            guesses.append(largest)
    guesses.append(PartPlan.default_for(size).part_size)
    for guess in guesses:
        if guess < 1:
            continue
        plan = PartPlan(size, guess)
        if all(plan.matches(part.part_number, part.size) for part in parts):
            return plan
    return None


def checksum_of_listing(listed: Iterable[UploadedPart], wanted: Checksum | None) -> Checksum | None:
    """The checksum an upload was started with, judged from its listed parts: the additional
    checksum they carry, else none (MD5 only); ``wanted`` when no part was uploaded yet."""
    parts = list(listed)
    for part in parts:
        guessed = guess_from_listed_checksum(part.checksum)
        if guessed is not None:
            return guessed
    if not parts:
        return wanted
    return "md5" if wanted == "md5" else None


def part_matches(listed: UploadedPart, length: int, digest: PartDigest, recorded_etags: Mapping[int, str]) -> bool:
    """True when a part already in S3 holds exactly the local bytes of that part."""
    if listed.size != length:
        return False
    if listed.checksum and digest.checksum:
        return listed.checksum == digest.checksum
    etag = normalize_etag(listed.etag)
    if digest.md5_hex and is_md5_etag(etag) and etag == digest.md5_hex:
        return True
    # Not an MD5 (SSE-KMS): trust the ETag this client itself recorded for the unchanged file.
    return recorded_etags.get(listed.part_number) == etag
