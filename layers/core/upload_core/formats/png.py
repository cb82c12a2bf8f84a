"""PNG (and APNG), walked chunk by chunk from the signature to IEND, every CRC and every byte.

What must hold, beyond the PNG specification's own rules:

- IHDR first (13 bytes, valid depth/colour combination), one PLTE at most and before the image
  data, the IDAT chunks contiguous, exactly one IEND of length zero, and nothing after it;
- every chunk's CRC (zlib.crc32 fed the bytes as they stream past, never held);
- the image data inflates to exactly the bytes its dimensions need and the zlib stream ends with
  the last IDAT (APNG: the same for every frame's fdAT chunks). Image data cut short and a
  well-formed ending pasted on therefore fails, as does data hidden after the zlib stream;
- unknown critical chunks are refused (a decoder must not skip them); ancillary chunks (text,
  EXIF, ICC, unknown ones) count against the metadata budget;
- APNG: acTL once, before the image data; every fcTL's frame inside the canvas (the first one
  covering it exactly), sequence numbers in order, each frame with data, and acTL's frame count
  equal to the fcTL chunks found. Frames count against the frame and total-pixel limits.
"""

from __future__ import annotations

import struct
import zlib

from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import FrameCounter, ImageFacts, MetadataBudget, StructureLimits
from upload_core.formats.stream import ChunkReader

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNK_LENGTH = 0x7FFFFFFF
# Inflated bytes per call: output is counted and dropped, so memory stays flat.
INFLATE_STEP = 1 << 20

# Channels per colour type, and the bit depths each allows.
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
# Adam7: (x start, y start, x step, y step) of each pass.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
# Chunks that are image structure, not metadata.
_STRUCTURE = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT"})


def raw_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines a zlib stream must inflate to (one filter byte per row)."""

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits_per_pixel + 7) // 8)

    if not interlaced:
        return rows(width, height)
    return sum(
        rows((width - x + dx - 1) // dx if width > x else 0, (height - y + dy - 1) // dy if height > y else 0)
        for x, y, dx, dy in _ADAM7
    )


class _ImageData:
    """One zlib stream (IDAT, or one APNG frame's fdAT data), inflated and counted as it streams."""

    def __init__(self, expected: int, what: str) -> None:
        self._inflater = zlib.decompressobj()
        self._expected = expected
        self._produced = 0
        self._what = what
        self.failure: StructureError | None = None

    def feed(self, data: memoryview | bytes) -> None:
        """Inflate one piece. A failure is kept, not raised, until the chunk's CRC is checked: a
        damaged byte is reported as a checksum error, not as the stream error it causes."""
        if self.failure is not None:
            return
        try:
            self._feed(data)
        except StructureError as error:
            self.failure = error

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _feed(self, data: memoryview | bytes) -> None:
        if self._inflater.eof:
            if len(data):
                raise StructureError(Reason.BAD_STRUCTURE, f"data after the end of the {self._what} zlib stream")
            return
        try:
            out = self._inflater.decompress(data, INFLATE_STEP)
            self._count(len(out))
            while self._inflater.unconsumed_tail and not self._inflater.eof:
                out = self._inflater.decompress(self._inflater.unconsumed_tail, INFLATE_STEP)
                self._count(len(out))
        except zlib.error as error:
            raise StructureError(Reason.BAD_STRUCTURE, f"{self._what}: {error}") from None
        if self._inflater.eof and (self._inflater.unused_data or self._inflater.unconsumed_tail):
            raise StructureError(Reason.BAD_STRUCTURE, f"data after the end of the {self._what} zlib stream")

    def _count(self, n: int) -> None:
        self._produced += n
        if self._produced > self._expected:
            raise StructureError(Reason.BAD_STRUCTURE, f"{self._what} inflates past {self._expected} bytes")

    def finish(self) -> None:
        if not self._inflater.eof or self._produced != self._expected:
            raise StructureError(
                Reason.BAD_STRUCTURE,
                f"{self._what} inflates to {self._produced} of {self._expected} bytes"
                + ("" if self._inflater.eof else " and its zlib stream does not end"),
            )


class _Walk:
    def __init__(self, reader: ChunkReader, limits: StructureLimits) -> None:
        self.reader = reader
        self.frames = FrameCounter(limits)
        self.budget = MetadataBudget(limits)
        self.width = self.height = 0
        self.bits_per_pixel = 0
        self.interlaced = False
        self.colour_type = 0
        # Order state
        self.seen_plte = False
        self.idat_state = 0  # 0 before IDAT, 1 inside the IDAT run, 2 after it
        self.image_data: _ImageData | None = None
        # APNG state
        self.declared_frames: int | None = None
        self.fctl_count = 0
        self.next_sequence = 0
        self.default_is_frame = False
        self.frame_data: _ImageData | None = None
        self.frame_has_data = True

    # ------------------------------------------------------------------ chunk loop

    def run(self) -> ImageFacts:
        if self.reader.read(len(SIGNATURE)) != SIGNATURE:
            raise StructureError(Reason.CORRUPT_HEADER, "not a PNG signature")
        length, kind = self._chunk_header()
        if kind != b"IHDR" or length != 13:
            raise StructureError(Reason.CORRUPT_HEADER, "IHDR is not the first chunk")
        self._ihdr(self._small_body(kind, length))
        while True:
            length, kind = self._chunk_header()
            if kind == b"IEND":
                self._iend(length)
                return self._facts()
            self._chunk(kind, length)

    def _chunk_header(self) -> tuple[int, bytes]:
        length, kind = struct.unpack(">I4s", self.reader.read(8))
        if length > MAX_CHUNK_LENGTH:
            raise StructureError(Reason.BAD_STRUCTURE, f"chunk length {length} over 2^31-1")
        if not kind.isalpha() or not kind.isascii():
            raise StructureError(Reason.BAD_STRUCTURE, f"chunk type {kind!r} at {self.reader.position - 4}")
        return length, kind

    def _small_body(self, kind: bytes, length: int) -> bytes:
        """A structure chunk's body (small by definition), its CRC checked."""
        if length > 1 << 16:
            raise StructureError(Reason.BAD_STRUCTURE, f"{kind.decode()} of {length} bytes")
        body = self.reader.read(length)
        self._check_crc(zlib.crc32(body, zlib.crc32(kind)), kind)
        return body

    def _streamed_body(self, kind: bytes, length: int, consumer: _ImageData | None = None) -> None:
        """A chunk body of any size, CRC'd (and maybe inflated) piece by piece, never held."""
        crc = zlib.crc32(kind)

        def sink(piece: memoryview) -> None:
            nonlocal crc
            crc = zlib.crc32(piece, crc)
            if consumer is not None:
                consumer.feed(piece)

        self.reader.skip(length, sink)
        self._check_crc(crc, kind)
        if consumer is not None:
            consumer.raise_failure()

    def _check_crc(self, crc: int, kind: bytes) -> None:
        (stored,) = struct.unpack(">I", self.reader.read(4))
        if stored != crc:
            raise StructureError(Reason.BAD_CHECKSUM, f"{kind.decode()} CRC at {self.reader.position - 4}")

    def _chunk(self, kind: bytes, length: int) -> None:
        if self.idat_state == 1 and kind != b"IDAT":
            self._end_idat()
        if kind == b"IDAT":
            self._idat(length)
        elif kind == b"PLTE":
            self._plte(self._small_body(kind, length))
        elif kind == b"IHDR":
            raise StructureError(Reason.BAD_STRUCTURE, "a second IHDR")
        elif kind == b"acTL":
            self._actl(self._small_body(kind, length))
        elif kind == b"fcTL":
            self._fctl(self._small_body(kind, length))
        elif kind == b"fdAT":
            self._fdat(length)
        elif kind[0] & 0x20 == 0:  # uppercase first letter: critical, and unknown to us
            raise StructureError(Reason.BAD_STRUCTURE, f"unknown critical chunk {kind!r}")
        else:
            # Ancillary: metadata. The budget is spent before the bytes are read.
            self.budget.spend(length + 12, kind.decode())
            self._streamed_body(kind, length)

    # ------------------------------------------------------------------ structure chunks

    def _ihdr(self, body: bytes) -> None:
        width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
        if width == 0 or height == 0 or width > MAX_CHUNK_LENGTH or height > MAX_CHUNK_LENGTH:
            raise StructureError(Reason.CORRUPT_HEADER, f"IHDR {width}x{height}")
        if colour not in _CHANNELS or depth not in _DEPTHS[colour]:
            raise StructureError(Reason.CORRUPT_HEADER, f"IHDR colour type {colour} with depth {depth}")
        if compression != 0 or filtering != 0 or interlace not in (0, 1):
            raise StructureError(Reason.CORRUPT_HEADER, "IHDR compression, filter or interlace method")
        self.frames.check_canvas(width, height)
        self.width, self.height = width, height
        self.colour_type = colour
        self.bits_per_pixel = depth * _CHANNELS[colour]
        self.interlaced = interlace == 1

    def _plte(self, body: bytes) -> None:
        if self.seen_plte or self.idat_state:
            raise StructureError(Reason.BAD_STRUCTURE, "PLTE repeated or after the image data")
        if not body or len(body) % 3 or len(body) > 768 or self.colour_type in (0, 4):
            raise StructureError(Reason.BAD_STRUCTURE, f"PLTE of {len(body)} bytes for colour type {self.colour_type}")
        self.seen_plte = True

    def _idat(self, length: int) -> None:
        if self.idat_state == 2:
            raise StructureError(Reason.BAD_STRUCTURE, "IDAT chunks are not contiguous")
        if self.idat_state == 0:
            if self.colour_type == 3 and not self.seen_plte:
                raise StructureError(Reason.BAD_STRUCTURE, "palette image without PLTE")
            self.idat_state = 1
            self.default_is_frame = self.fctl_count == 1
            if self.default_is_frame:
                self.frame_has_data = True
            self.image_data = _ImageData(
                raw_size(self.width, self.height, self.bits_per_pixel, self.interlaced), "IDAT"
            )
        self._streamed_body(b"IDAT", length, self.image_data)

    def _end_idat(self) -> None:
        assert self.image_data is not None
        self.image_data.finish()
        self.image_data = None
        self.idat_state = 2

    def _actl(self, body: bytes) -> None:
        if len(body) != 8 or self.declared_frames is not None or self.idat_state:
            raise StructureError(Reason.BAD_STRUCTURE, "acTL repeated, misplaced or of the wrong size")
        frames, _plays = struct.unpack(">II", body)
        if frames == 0:
            raise StructureError(Reason.BAD_STRUCTURE, "acTL declares no frames")
        self.declared_frames = frames

    def _sequence(self, number: int) -> None:
        if number != self.next_sequence:
            raise StructureError(Reason.BAD_STRUCTURE, f"APNG sequence number {number}, expected {self.next_sequence}")
        self.next_sequence += 1

    def _fctl(self, body: bytes) -> None:
        if self.declared_frames is None or len(body) != 26:
            raise StructureError(Reason.BAD_STRUCTURE, "fcTL without acTL, or of the wrong size")
        sequence, width, height, x, y, _num, _den, dispose, blend = struct.unpack(">IIIIIHHBB", body)
        self._sequence(sequence)
        self._end_frame()
        if x + width > self.width or y + height > self.height:
            raise StructureError(Reason.BAD_STRUCTURE, f"frame {width}x{height}+{x}+{y} outside the canvas")
        if self.idat_state == 0 and (x, y, width, height) != (0, 0, self.width, self.height):
            raise StructureError(Reason.BAD_STRUCTURE, "the default image's frame does not cover the canvas")
        if dispose > 2 or blend > 1:
            raise StructureError(Reason.BAD_STRUCTURE, "fcTL dispose or blend operation")
        self.frames.add_frame(width, height)
        self.fctl_count += 1
        if self.fctl_count > self.declared_frames:
            raise StructureError(Reason.BAD_STRUCTURE, f"more fcTL chunks than acTL's {self.declared_frames}")
        self.frame_has_data = False
        if self.idat_state != 0:  # frames after the default image are made of fdAT chunks
            raw = raw_size(width, height, self.bits_per_pixel, self.interlaced)
            self.frame_data = _ImageData(raw, f"frame {self.fctl_count}")

    def _fdat(self, length: int) -> None:
        if self.idat_state != 2 or self.frame_data is None or length < 4:
            raise StructureError(Reason.BAD_STRUCTURE, "fdAT outside a frame after the image data")
        crc = zlib.crc32(b"fdAT")
        head = self.reader.read(4)
        crc = zlib.crc32(head, crc)
        self._sequence(struct.unpack(">I", head)[0])
        frame_data = self.frame_data

        def sink(piece: memoryview) -> None:
            nonlocal crc
            crc = zlib.crc32(piece, crc)
            frame_data.feed(piece)

        self.reader.skip(length - 4, sink)
        self._check_crc(crc, b"fdAT")
        frame_data.raise_failure()
        self.frame_has_data = True

    def _end_frame(self) -> None:
        """The frame before (if any) must have had its data, all of it."""
        if not self.frame_has_data:
            raise StructureError(Reason.BAD_STRUCTURE, f"APNG frame {self.fctl_count} has no image data")
        if self.frame_data is not None:
            self.frame_data.finish()
            self.frame_data = None

    def _iend(self, length: int) -> None:
        if length != 0:
            raise StructureError(Reason.BAD_STRUCTURE, f"IEND of {length} bytes")
        if self.idat_state == 0:
            raise StructureError(Reason.BAD_STRUCTURE, "no image data before IEND")
        if self.idat_state == 1:
            self._end_idat()
        self._check_crc(zlib.crc32(b"IEND"), b"IEND")
        if self.declared_frames is not None:
            self._end_frame()
            if self.fctl_count != self.declared_frames:
                raise StructureError(
                    Reason.BAD_STRUCTURE, f"acTL declares {self.declared_frames} frames, found {self.fctl_count}"
                )
        self.reader.expect_end()

    def _facts(self) -> ImageFacts:
        if self.declared_frames is None:
            self.frames.add_frame(self.width, self.height)
        elif not self.default_is_frame:
            # The default image is shown by decoders without APNG support, and decoded by Pillow.
            self.frames.add_frame(self.width, self.height)
        return ImageFacts(
            width=self.width,
            height=self.height,
            frames=self.frames.frames,
            total_pixels=self.frames.total_pixels,
            metadata_bytes=self.budget.used,
            animated=self.declared_frames is not None,
        )


def walk(reader: ChunkReader, limits: StructureLimits) -> ImageFacts:
    return _Walk(reader, limits).run()
