"""Why an object is not the image it claims to be: stable codes, shared by every walker."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Stable codes written to the ``upload-reason`` tag, published in verdict events and used
    as a metric dimension. Never rename one: clients and alarms match on them."""

    OK = "ok"
    EMPTY = "empty"
    TOO_LARGE = "too-large"
    ACTIVE_CONTENT = "active-content"
    UNKNOWN_TYPE = "unknown-type"
    TYPE_NOT_ALLOWED = "type-not-allowed"
    TYPE_MISMATCH = "type-mismatch"
    EXTENSION_MISMATCH = "extension-mismatch"
    # The object ends before its structure does (a length field points past the end, no end marker).
    TRUNCATED = "truncated"
    # Bytes follow the format's end (an appended archive, markup, a second image, a video).
    TRAILING_DATA = "trailing-data"
    # The container does not fit its format (bad order, lengths that lie, a missing or second
    # mandatory chunk, markers where none may be).
    BAD_STRUCTURE = "bad-structure"
    # A chunk's stored CRC/checksum does not match its bytes.
    BAD_CHECKSUM = "bad-checksum"
    CORRUPT_HEADER = "corrupt-header"
    TOO_MANY_PIXELS = "too-many-pixels"
    DIMENSIONS_TOO_LARGE = "dimensions-too-large"
    TOO_MANY_FRAMES = "too-many-frames"
    # More bytes of metadata, comments and unknown chunks than StructureLimits.max_metadata_bytes.
    TOO_MUCH_METADATA = "too-much-metadata"
    # Another version was stored under a key that already has its file (a replayed form):
    # a key's content never changes, so this one is removed unread.
    SECOND_VERSION = "second-version"


class StructureError(Exception):
    """The first failed check ends the walk. ``detail`` is for logs (never for the tag)."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
