"""Server-chosen object keys: safe filenames, per-caller prefixes, and the ownership check."""

from __future__ import annotations

import re
import unicodedata
import uuid

from upload_core.errors import Forbidden, InvalidRequest

MAX_FILENAME_BYTES = 180
_UNSAFE_CHARS = re.compile(r"[^\w.\- ()+,@=]", re.UNICODE)
_SPACES = re.compile(r"\s+")
_OWNER_SAFE = re.compile(r"[A-Za-z0-9_-]")
_UPLOAD_ID_SEGMENT = re.compile(r"^[0-9a-f]{32}$")


def sanitize_filename(filename: str) -> str:
    """A name that is safe as the last key segment: no path, no controls, NFC, bounded length.

    The original name is kept in the object's metadata; this one only has to be safe and readable.
    """
    name = unicodedata.normalize("NFC", filename)
    # Drop any directory part a client sent, with either separator.
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = _UNSAFE_CHARS.sub("_", name)
    name = _SPACES.sub(" ", name).strip(" .")
    if not name:
        name = "file"
    return _truncate_keeping_extension(name, MAX_FILENAME_BYTES)


def _truncate_keeping_extension(name: str, limit: int) -> str:
    if len(name.encode()) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode()) > 16:
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    budget = limit - len(suffix.encode())
    encoded = stem.encode()[:budget]
    # Cut on a character boundary, never inside a UTF-8 sequence.
    return encoded.decode("utf-8", errors="ignore").rstrip(" .") + suffix


def owner_segment(owner: str) -> str:
    """Encode a caller id injectively into one key segment.

    Plain slugging would map `a|b` and `a_b` to the same prefix and let one user reach another's
    keys; escaping every character outside [A-Za-z0-9_-] as ~XX keeps distinct ids distinct.
    """
    if not owner:
        raise InvalidRequest("the caller has no identity", code="MissingIdentity")
    return "".join(ch if _OWNER_SAFE.fullmatch(ch) else _escape(ch) for ch in owner)


def _escape(ch: str) -> str:
    return "".join(f"~{byte:02X}" for byte in ch.encode())


def owner_prefix(upload_prefix: str, owner: str) -> str:
    return f"{upload_prefix}/{owner_segment(owner)}/"


def new_key(upload_prefix: str, owner: str, filename: str) -> str:
    return f"{owner_prefix(upload_prefix, owner)}{uuid.uuid4().hex}/{sanitize_filename(filename)}"


def file_id_of(key: str) -> str:
    """The fileId of a key the API made (``<prefix>/<owner>/<fileId>/<name>``)."""
    parts = key.split("/")
    return parts[-2] if len(parts) >= 3 else key


def ensure_owned(upload_prefix: str, owner: str, key: str) -> str:
    """Return the key if it is one this API could have made for this caller, else refuse.

    The whole shape is checked, not only the prefix, so `../` games and keys outside the
    upload layout are refused before any S3 call.
    """
    if not isinstance(key, str) or not key:
        raise InvalidRequest("key is required", code="MissingKey")
    prefix = owner_prefix(upload_prefix, owner)
    if not key.startswith(prefix):
        raise Forbidden("this key does not belong to you", code="ForeignKey")
    rest = key[len(prefix) :]
    upload_segment, slash, filename = rest.partition("/")
    if (
        not slash
        or not _UPLOAD_ID_SEGMENT.fullmatch(upload_segment)
        or not filename
        or filename != sanitize_filename(filename)
    ):
        raise Forbidden("this key was not issued by this API", code="ForeignKey")
    return key
