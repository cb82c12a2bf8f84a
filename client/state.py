"""The resume state: a small JSON file next to the source, ``<file>.upload-state.json``.

It is written as soon as the API has started the upload (so even a killed process can be resumed)
and removed once the upload is completed or aborted. It records what cannot be learnt again:
the upload's id and key, the part size and checksum it was planned with, and the file it was
made from (size and modification time). The ETags of the parts this client sent are kept too,
as a last resort for servers whose ETags are not MD5s (SSE-KMS); otherwise every uploaded part
is checked against the local bytes before it is trusted.

Writes are atomic (a temporary file renamed over the old one) and throttled, so a 10,000-part
upload does not rewrite the file 10,000 times.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.checksums import CHECKSUMS, Checksum
from client.errors import LocalFileError

STATE_SUFFIX = ".upload-state.json"
STATE_VERSION = 1


def state_path_for(source: Path) -> Path:
    return source.with_name(source.name + STATE_SUFFIX)


@dataclass(slots=True)
class UploadState:
    upload_id: str
    key: str
    api_url: str
    size: int
    mtime_ns: int
    part_size: int
    checksum: Checksum | None
    content_type: str
    etags: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "uploadId": self.upload_id,
            "key": self.key,
            "apiUrl": self.api_url,
            "size": self.size,
            "mtimeNs": self.mtime_ns,
            "partSize": self.part_size,
            "checksum": self.checksum,
            "contentType": self.content_type,
            "etags": {str(number): etag for number, etag in sorted(self.etags.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> UploadState:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError("unknown state file version")
        checksum = data.get("checksum")
        if checksum is not None and checksum not in CHECKSUMS:
            raise ValueError(f"unknown checksum {checksum!r}")
        etags = data.get("etags") or {}
        if not isinstance(etags, dict):
            raise ValueError("etags must be an object")
        state = cls(
            upload_id=_text(data, "uploadId"),
            key=_text(data, "key"),
            api_url=_text(data, "apiUrl"),
            size=_integer(data, "size"),
            mtime_ns=_integer(data, "mtimeNs"),
            part_size=_integer(data, "partSize"),
            checksum=checksum,
            content_type=_text(data, "contentType"),
            etags={int(number): str(etag) for number, etag in etags.items()},
        )
        if state.part_size < 1 or state.size < 0:
            raise ValueError("size and partSize must be positive")
        return state


def load_state(path: Path) -> UploadState | None:
    """The state in ``path``, or None when there is none; a damaged file is an error (it names
    an upload that would otherwise be forgotten)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LocalFileError(f"{path}: cannot read the state file: {error.strerror}") from None
    try:
        return UploadState.from_json(json.loads(text))
    except (ValueError, TypeError, KeyError) as error:
        raise LocalFileError(
            f"{path}: not a valid upload state file ({error}); delete it, or resume with --upload-id"
        ) from None


def save_state(path: Path, state: UploadState) -> None:
    """Atomically replace ``path`` with ``state``."""
    payload = json.dumps(state.to_json(), indent=1, sort_keys=False) + "\n"
    descriptor, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_state(path: Path) -> None:
    path.unlink(missing_ok=True)


class StateFile:
    """Keeps one upload's state on disk while it runs (used from one thread only)."""

    def __init__(
        self,
        path: Path,
        state: UploadState,
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.state = state
        self._min_interval = min_interval
        self._clock = clock
        self._warn = warn
        self._last_write: float | None = None
        self._dirty = True
        self._broken = False

    def record_part(self, number: int, etag: str) -> None:
        self.state.etags[number] = etag
        self._dirty = True
        if self._last_write is None or self._clock() - self._last_write >= self._min_interval:
            self.flush()

    def flush(self) -> None:
        if not self._dirty or self._broken:
            return
        try:
            save_state(self.path, self.state)
        except OSError as error:
            # An unwritable directory must not fail the upload; it only loses the state file
            # (`resume` can still find the upload with GET /uploads).
            self._broken = True
            if self._warn is not None:
                self._warn(f"cannot write {self.path} ({error.strerror}); resume will have to find the upload")
            return
        self._dirty = False
        self._last_write = self._clock()

    @property
    def written(self) -> bool:
        """True once the file is on disk (a later failed write leaves an older, still usable one)."""
        return self._last_write is not None

    def remove(self) -> None:
        remove_state(self.path)


def _text(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _integer(data: dict[str, Any], name: str) -> int:
    value = data[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    return value
