"""A forward-only reader over an object's body, pulled in chunks, in constant memory.

Walkers read small structures (headers, chunk lengths) with :meth:`ChunkReader.read` and move
over bulk data (pixel data, metadata payloads) with :meth:`ChunkReader.skip`, which can pass the
skipped bytes to a sink (a CRC, a scanner) without holding them. Nothing is ever read twice and
the reader never holds more than one source chunk plus one small read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from upload_core.formats.errors import Reason, StructureError

# A single read() is for headers and small structures; bulk data goes through skip().
MAX_READ = 1 << 20

Sink = Callable[[memoryview], None]


class ChunkReader:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = memoryview(b"")
        self._offset = 0  # within _buffer
        self._position = 0  # bytes consumed from the start of the object
        self._exhausted = False

    @property
    def position(self) -> int:
        """Bytes consumed so far, i.e. the offset of the next byte in the object."""
        return self._position

    def _fill(self) -> bool:
        """Make sure at least one unconsumed byte is buffered; False at the end of the object."""
        while self._offset >= len(self._buffer):
            if self._exhausted:
                return False
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
                return False
            self._buffer = memoryview(chunk)
            self._offset = 0
        return True

    def buffered(self) -> memoryview:
        """The unconsumed bytes already in memory (at least one unless at the end); consume
        what you use with :meth:`consume`. For scanners that search for a byte (JPEG's 0xFF)."""
        if not self._fill():
            return memoryview(b"")
        return self._buffer[self._offset :]

    def search(self, pattern: re.Pattern[bytes]) -> int:
        """Where ``pattern`` first matches in :meth:`buffered`'s bytes (relative to its start), or -1.

        The search runs in C over the buffered chunk without copying it: JPEG's entropy-coded
        data is scanned for its next marker this way. A match that would straddle two source
        chunks is not seen; callers keep a possible prefix (a trailing 0xFF) and :meth:`peek`.
        """
        if not self._fill():
            return -1
        match = pattern.search(self._buffer, self._offset)
        return -1 if match is None else match.start() - self._offset

    def consume(self, n: int) -> None:
        """Advance by ``n`` bytes of what :meth:`buffered` returned."""
        if n < 0 or self._offset + n > len(self._buffer):
            raise ValueError("consume() beyond the buffered bytes")
        self._offset += n
        self._position += n

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (``n`` <= MAX_READ); TRUNCATED when the object ends first."""
        if n > MAX_READ:
            raise ValueError(f"read({n}) is over MAX_READ; use skip() for bulk data")
        if n <= len(self._buffer) - self._offset:  # the common case: one slice
            data = self._buffer[self._offset : self._offset + n].tobytes()
            self.consume(n)
            return data
        parts: list[bytes] = []
        missing = n
        while missing:
            if not self._fill():
                raise StructureError(Reason.TRUNCATED, f"object ends at {self._position}, {missing} bytes short")
            take = min(missing, len(self._buffer) - self._offset)
            parts.append(self._buffer[self._offset : self._offset + take].tobytes())
            self.consume(take)
            missing -= take
        return b"".join(parts)

    def peek(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end) without consuming them. ``n`` <= MAX_READ."""
        if n > MAX_READ:
            raise ValueError(f"peek({n}) is over MAX_READ")
        if not self._fill():
            return b""
        available = len(self._buffer) - self._offset
        if n <= available:
            return self._buffer[self._offset : self._offset + n].tobytes()
        # Join what is left of this chunk with the next ones, so a later read() sees one buffer.
        parts = [self._buffer[self._offset :].tobytes()]
        have = available
        while have < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
                break
            parts.append(chunk)
            have += len(chunk)
        self._buffer = memoryview(b"".join(parts))
        self._offset = 0
        return self._buffer[:n].tobytes()

    def skip(self, n: int, sink: Sink | None = None) -> None:
        """Move over exactly ``n`` bytes, handing each piece to ``sink``; TRUNCATED when short."""
        missing = n
        while missing:
            if not self._fill():
                raise StructureError(Reason.TRUNCATED, f"object ends at {self._position}, {missing} bytes short")
            take = min(missing, len(self._buffer) - self._offset)
            if sink is not None:
                sink(self._buffer[self._offset : self._offset + take])
            self.consume(take)
            missing -= take

    def at_end(self) -> bool:
        return not self._fill()

    def expect_end(self) -> None:
        """The format has ended: any further byte is TRAILING_DATA."""
        if self._fill():
            raise StructureError(Reason.TRAILING_DATA, f"bytes after the image's end at offset {self._position}")


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """Split bytes into chunks, for tests and for callers that already hold a small object."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
