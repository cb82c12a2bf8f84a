"""Part planning and reading: which bytes each part holds, read only when that part's turn comes.

A part is read with ``os.pread`` (no shared file position, so workers read in parallel without a
lock) in chunks that feed the digests as they arrive; only the part being sent is in memory, so
an upload holds at most ``concurrency * part size`` bytes whatever the file's size.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from client.checksums import Checksum, PartDigest, PartHasher
from client.errors import LocalFileError

MIB = 1024 * 1024
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PART_SIZE = 5 * 1024 * MIB
S3_MAX_PARTS = 10_000
# The API's default part size (DefaultPartSize); used only to plan a resume that has no state
# file and no uploaded part to learn the part size from.
DEFAULT_PART_SIZE = 8 * MIB
# Parts are read in pieces of up to 256 MiB (pread returns at most ~2 GiB) and hashed in 1 MiB
# slices, so the digests are ready as soon as the bytes are.
READ_PIECE = 256 * MIB
HASH_CHUNK = MIB


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


@dataclass(frozen=True, slots=True)
class PartPlan:
    """How a file of ``size`` bytes splits into parts of ``part_size`` (the last one shorter)."""

    size: int
    part_size: int

    def __post_init__(self) -> None:
        if self.size < 0 or self.part_size < 1:
            raise ValueError("size must be >= 0 and part_size >= 1")

    @property
    def count(self) -> int:
        # S3 needs one part even for an empty object.
        return max(1, ceil_div(self.size, self.part_size))

    def numbers(self) -> range:
        return range(1, self.count + 1)

    def offset(self, number: int) -> int:
        self._check(number)
        return (number - 1) * self.part_size

    def length(self, number: int) -> int:
        self._check(number)
        if number < self.count:
            return self.part_size
        return self.size - self.part_size * (self.count - 1)

    def _check(self, number: int) -> None:
        if not 1 <= number <= self.count:
            raise ValueError(f"part {number} is outside 1..{self.count}")

    @classmethod
    def default_for(cls, size: int) -> PartPlan:
        """The plan the API chooses when asked for no particular part size: the default, or the
        smallest whole number of MiB that keeps the upload within S3's 10,000 parts."""
        smallest = ceil_div(size, S3_MAX_PARTS)
        return cls(size, max(DEFAULT_PART_SIZE, ceil_div(smallest, MIB) * MIB))

    def matches(self, number: int, size: int) -> bool:
        """True when an uploaded part ``number`` of ``size`` bytes fits this plan."""
        return 1 <= number <= self.count and self.length(number) == size


def parse_size(text: str) -> int:
    """``"5MiB"``, ``"8M"``, ``"5242880"`` → bytes. K/M/G and KiB/MiB/GiB are binary; KB/MB/GB decimal."""
    value = text.strip().replace("_", "")
    units = {
        "": 1,
        "b": 1,
        "k": 1024,
        "kib": 1024,
        "m": MIB,
        "mib": MIB,
        "g": 1024 * MIB,
        "gib": 1024 * MIB,
        "kb": 1000,
        "mb": 1000**2,
        "gb": 1000**3,
    }
    digits = value.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ").strip()
    unit = value[len(digits) :].strip().lower()
    if not digits or unit not in units:
        raise ValueError(f"not a size: {text!r} (examples: 5MiB, 16M, 8388608)")
    try:
        number = float(digits)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (examples: 5MiB, 16M, 8388608)") from None
    result = int(number * units[unit])
    if result <= 0:
        raise ValueError(f"a size must be positive, got {text!r}")
    return result


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What tells a file apart from an edited or replaced one."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileIdentity:
        return cls(size=stat.st_size, mtime_ns=stat.st_mtime_ns, inode=stat.st_ino)


class SourceFile:
    """The file being uploaded, open for positional reads by several threads at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        except FileNotFoundError:
            raise LocalFileError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise LocalFileError(f"{path}: is a directory, not a file") from None
        except PermissionError:
            raise LocalFileError(f"{path}: permission denied") from None
        except OSError as error:
            raise LocalFileError(f"{path}: cannot open: {error.strerror}") from None
        stat = os.fstat(self._file.fileno())
        if not _is_regular(stat):
            self._file.close()
            raise LocalFileError(f"{path}: not a regular file")
        self.identity = FileIdentity.of(stat)
        self._seek_lock = threading.Lock()  # only where os.pread does not exist

    @property
    def size(self) -> int:
        return self.identity.size

    def read(self, offset: int, length: int, checksum: Checksum | None) -> tuple[bytes, PartDigest]:
        """The part's bytes and their digests, read in chunks that are hashed as they arrive."""
        hasher = PartHasher(checksum)
        return self._read(offset, length, hasher), hasher.digest()

    def read_bytes(self, offset: int, length: int) -> bytes:
        """The part's bytes, not hashed (their digest is already known and S3 checks them)."""
        return self._read(offset, length, None)

    def _read(self, offset: int, length: int, hasher: PartHasher | None) -> bytes:
        pieces: list[bytes] = []
        done = 0
        while done < length:
            try:
                piece = self._pread(min(READ_PIECE, length - done), offset + done)
            except OSError as error:
                raise LocalFileError(f"{self.path}: read failed: {error.strerror}") from None
            if not piece:
                raise LocalFileError(f"{self.path}: the file got shorter during the upload")
            if hasher is not None:
                view = memoryview(piece)
                for start in range(0, len(piece), HASH_CHUNK):
                    hasher.update(view[start : start + HASH_CHUNK])
            pieces.append(piece)
            done += len(piece)
        # One piece (the usual case) is returned as is: no second copy of the part in memory.
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)  # b"" for an empty part

    def _pread(self, length: int, offset: int) -> bytes:
        if hasattr(os, "pread"):
            return os.pread(self._file.fileno(), length, offset)
        with self._seek_lock:
            self._file.seek(offset)
            return self._file.read(length)

    def unchanged(self) -> bool:
        """True when the path still names the same, unmodified file."""
        try:
            return FileIdentity.of(os.stat(self.path)) == self.identity
        except OSError:
            return False

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SourceFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _is_regular(status: os.stat_result) -> bool:
    return stat.S_ISREG(status.st_mode)
