"""Store a body of unknown length in S3 in constant memory, reading and uploading at once.

Two buffers of the part size, allocated once and reused: the source is read straight into one
(`readinto`, no copy) while the other is uploaded as a part in a background thread, so the
source and S3 work at the same time instead of taking turns. At most one part is in flight;
a buffer is refilled only after its upload returned, because a retried request sends the same
buffer again. Memory is two parts whatever the size.

The first buffer only becomes a part once a byte beyond it shows the object needs more than one
part: a body that fits in one part is stored with a single PutObject.

A part upload that fails in the background is raised in the reading thread at its next read (or
when its buffer is needed); `abort` waits for the part in flight before aborting the multipart
upload, since S3 may keep a part whose upload ends after the abort.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# Already loaded with boto3 (s3transfer imports it), so the thread pool costs no import time.
from concurrent.futures import Future, ThreadPoolExecutor

from upload_core import object_meta
from upload_core.errors import UploadError
from upload_core.observability import logger
from upload_core.s3 import CompletedObject, S3Gateway, UploadedPart

# Bytes asked of the source per read: large enough that the Python loop costs nothing beside the
# socket, small enough that a failed part upload is noticed soon.
READ_SIZE = 1024 * 1024

# Reads up to len(view) bytes into view, returns how many (0 at the end of the body).
ReadInto = Callable[[memoryview], int]


class StreamingUpload:
    """One object written from a source; `finish` stores it, `abort` removes what was started."""

    def __init__(
        self,
        s3: S3Gateway,
        key: str,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        part_size: int,
        read_size: int = READ_SIZE,
    ) -> None:
        self._s3 = s3
        self._key = key
        self._content_type = content_type
        self._metadata = dict(metadata)
        self._part_size = part_size
        self._read_size = read_size
        # The second buffer is allocated only when the body turns out to need a second part.
        self._buffers = [bytearray(part_size)]
        self._current = 0  # the buffer being filled
        self._filled = 0  # bytes in it
        self._upload_id: str | None = None
        self._parts: list[UploadedPart] = []
        self._in_flight: Future[UploadedPart] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        """Copies `data` in (for what was read before the upload began, such as the sniffed head)."""
        source = memoryview(data)
        while source:
            count = min(len(source), self._part_size - self._space_start())
            self._buffers[self._current][self._filled : self._filled + count] = source[:count]
            self._advance(count)
            source = source[count:]

    def read_from(self, readinto: ReadInto) -> None:
        """Reads the source to its end straight into the buffers, uploading full ones on the way."""
        while True:
            start = self._space_start()
            end = min(start + self._read_size, self._part_size)
            with memoryview(self._buffers[self._current]) as buffer:
                count = readinto(buffer[start:end])
            if count == 0:
                return
            self._advance(count)
            if self._in_flight is not None and self._in_flight.done():
                self._settle()  # a failed part stops the import now, not at the next full buffer

    def finish(self) -> CompletedObject:
        if self._upload_id is None:
            # All of it is in the first buffer (which may be full, with the second one still empty).
            self._current, self._filled = 0, self.size
            return self._s3.put_object(
                self._key,
                self._last_body(),
                content_type=self._content_type,
                metadata=self._metadata,
                tags=object_meta.pending_tags(),
            )
        self._settle()
        if self._filled:
            self._parts.append(self._upload(len(self._parts) + 1, self._last_body()))
        self._close_pool()
        return self._s3.complete_multipart_upload(
            self._key, self._upload_id, self._parts, object_size=self.size, checksum_algorithm=None
        )

    def abort(self) -> None:
        # Closing the pool waits for the part in flight (its outcome no longer matters): S3 may
        # keep a part whose upload ends after the abort.
        self._in_flight = None
        self._close_pool()
        if self._upload_id is None:
            return
        try:
            self._s3.abort_multipart_upload(self._key, self._upload_id)
        except UploadError:
            # The bucket's lifecycle rule aborts it later; the original error is the one to report.
            logger.exception("could not abort the import's multipart upload", extra={"key": self._key})

    # --- buffers -----------------------------------------------------------------------------------
    def _space_start(self) -> int:
        """Where the next byte goes in the current buffer, after moving on from a full one."""
        if self._filled == self._part_size:
            self._rotate()
        return self._filled

    def _rotate(self) -> None:
        """The current buffer is full: fill the other one while the full one is (or becomes) a part."""
        if self._upload_id is not None:
            # The other buffer may still be in flight: it is refilled only after its upload returned.
            self._settle()
            self._submit(self._buffers[self._current])
        elif len(self._buffers) == 1:
            self._buffers.append(bytearray(self._part_size))
        self._current = 1 - self._current
        self._filled = 0

    def _advance(self, count: int) -> None:
        self._filled += count
        self.size += count
        if count and self._upload_id is None and self._current == 1:
            # A byte beyond the full first buffer: the object needs a multipart upload.
            self._upload_id = self._s3.create_multipart_upload(
                self._key,
                content_type=self._content_type,
                metadata=self._metadata,
                tags=object_meta.pending_tags(),
            )
            self._submit(self._buffers[0])

    def _last_body(self) -> bytearray:
        """The current buffer cut to its bytes in place (no copy); it is not refilled afterwards."""
        buffer = self._buffers[self._current]
        del buffer[self._filled :]
        return buffer

    # --- the part in flight ------------------------------------------------------------------------
    def _submit(self, buffer: bytearray) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-part")
        self._in_flight = self._pool.submit(self._upload, len(self._parts) + 1, buffer)

    def _upload(self, part_number: int, body: bytearray) -> UploadedPart:
        assert self._upload_id is not None
        return self._s3.upload_part(self._key, self._upload_id, part_number, body)

    def _settle(self) -> None:
        """Waits for the part in flight, if any; raises its error if its upload failed."""
        if self._in_flight is None:
            return
        future, self._in_flight = self._in_flight, None
        self._parts.append(future.result())

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
