"""What every stored object carries: system metadata (owner, original name) and status tags."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from upload_core.errors import InvalidRequest

STATUS_TAG = "upload-status"
REASON_TAG = "upload-reason"
STATUS_PENDING = "pending"
STATUS_VALID = "valid"
STATUS_REJECTED = "rejected"

OWNER_META = "owner"
FILENAME_META = "original-filename"
DECLARED_SIZE_META = "declared-size"
SOURCE_URL_META = "source-url"
RESERVED_META = frozenset({OWNER_META, FILENAME_META, DECLARED_SIZE_META, SOURCE_URL_META})

MAX_USER_METADATA_ENTRIES = 10
# S3 allows 2 KB of user metadata in all; leave room for the system entries.
MAX_USER_METADATA_BYTES = 1024
_META_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")


def pending_tags() -> dict[str, str]:
    return {STATUS_TAG: STATUS_PENDING}


def system_metadata(owner: str, filename: str, *, declared_size: int | None = None) -> dict[str, str]:
    """Metadata travels as HTTP headers, which must be ASCII: non-ASCII values are percent-encoded."""
    metadata = {OWNER_META: _ascii(owner), FILENAME_META: _ascii(filename)}
    if declared_size is not None:
        metadata[DECLARED_SIZE_META] = str(declared_size)
    return metadata


def _ascii(value: str) -> str:
    return quote(value, safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")[:512]


def user_metadata(raw: Mapping[str, object] | None) -> dict[str, str]:
    """Validate client metadata: a few short ASCII entries whose names do not shadow ours."""
    if not raw:
        return {}
    if len(raw) > MAX_USER_METADATA_ENTRIES:
        raise InvalidRequest(f"at most {MAX_USER_METADATA_ENTRIES} metadata entries", code="InvalidMetadata")
    cleaned: dict[str, str] = {}
    for name, value in raw.items():
        key = str(name).lower()
        if not _META_KEY.fullmatch(key):
            raise InvalidRequest(
                f"metadata name {str(name)[:64]!r} must be 1-64 of a-z, 0-9 and '-'", code="InvalidMetadata"
            )
        if key in RESERVED_META:
            raise InvalidRequest(f"metadata name {key!r} is reserved", code="InvalidMetadata")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidRequest(f"metadata {key!r} must be a string", code="InvalidMetadata")
        text = str(value)
        if not _PRINTABLE_ASCII.fullmatch(text):
            raise InvalidRequest(f"metadata {key!r} must be printable ASCII", code="InvalidMetadata")
        cleaned[key] = text
    if sum(len(k) + len(v) for k, v in cleaned.items()) > MAX_USER_METADATA_BYTES:
        raise InvalidRequest(f"metadata is limited to {MAX_USER_METADATA_BYTES} bytes", code="InvalidMetadata")
    return cleaned


def tagging_xml(tags: Mapping[str, str]) -> str:
    """The `tagging` field of a presigned POST form takes S3's XML tag set."""
    body = "".join(f"<Tag><Key>{_xml(k)}</Key><Value>{_xml(v)}</Value></Tag>" for k, v in tags.items())
    return f"<Tagging><TagSet>{body}</TagSet></Tagging>"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
