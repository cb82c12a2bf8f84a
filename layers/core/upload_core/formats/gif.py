"""GIF (87a and 89a), walked block by block from the header to the trailer, every sub-block.

What must hold:

- the header and logical screen descriptor, the global colour table when the flag says so;
- every block is an image descriptor (0x2C), an extension (0x21) or the trailer (0x3B); every
  sub-block chain ends with its zero-length terminator;
- every image descriptor is a frame: counted and measured with its own size, and the extent it
  reaches (left + width, top + height) held to the dimension limits too, because decoders grow
  the canvas to a frame that lies beyond the logical screen; its local colour table, an LZW
  minimum code size of 2 to 8 and at least one byte of image data;
- graphic control extensions are 4 bytes; application extensions have an 11-byte identifier;
  comments, plain text, application data other than the NETSCAPE/ANIMEXTS loop count and unknown
  extensions count against the metadata budget;
- at least one frame, exactly one trailer, and nothing after it.

Image data is hopped over sub-block by sub-block inside the buffered chunk (one length byte read
per 255 bytes of data), so a walk costs no per-byte Python work. The LZW codes themselves are not
decoded: a frame whose data was cut at a sub-block boundary and closed with a terminator is
well-formed GIF structure, and only a decoder can tell it is short.
"""

from __future__ import annotations

import struct

from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import FrameCounter, ImageFacts, MetadataBudget, StructureLimits
from upload_core.formats.stream import ChunkReader

SIGNATURES = (b"GIF87a", b"GIF89a")
IMAGE = 0x2C
EXTENSION = 0x21
TRAILER = 0x3B
GRAPHIC_CONTROL = 0xF9
COMMENT = 0xFE
APPLICATION = 0xFF
PLAIN_TEXT = 0x01
# Application extensions that carry the loop count, not metadata.
_LOOP_APPLICATIONS = frozenset({b"NETSCAPE2.0", b"ANIMEXTS1.0"})


def _sub_blocks(reader: ChunkReader) -> int:
    """Move over a chain of sub-blocks up to and including its terminator; the data bytes."""
    total = 0
    while True:
        buffer = reader.buffered()
        end = len(buffer)
        if not end:
            raise StructureError(Reason.TRUNCATED, f"object ends inside a sub-block chain at {reader.position}")
        i = 0
        # Hop from length byte to length byte while the whole sub-block is in this chunk.
        while i < end:
            size = buffer[i]
            if size == 0:
                reader.consume(i + 1)
                return total
            nxt = i + 1 + size
            if nxt > end:
                break
            total += size
            i = nxt
        if i < end:
            # The sub-block at i straddles the chunk's end: step over its length byte and skip it.
            size = buffer[i]
            reader.consume(i + 1)
            reader.skip(size)
            total += size
        else:
            reader.consume(i)


class _Walk:
    def __init__(self, reader: ChunkReader, limits: StructureLimits) -> None:
        self.reader = reader
        self.limits = limits
        self.frames = FrameCounter(limits)
        self.budget = MetadataBudget(limits)
        self.width = self.height = 0

    def run(self) -> ImageFacts:
        header = self.reader.read(13)
        if header[:6] not in SIGNATURES:
            raise StructureError(Reason.CORRUPT_HEADER, "not a GIF signature")
        width, height, flags, _background, _aspect = struct.unpack("<HHBBB", header[6:])
        self.frames.check_canvas(width, height)
        self.width, self.height = width, height
        if flags & 0x80:
            self.reader.skip(3 << ((flags & 0x07) + 1))
        while True:
            (introducer,) = self.reader.read(1)
            if introducer == IMAGE:
                self._image()
            elif introducer == EXTENSION:
                self._extension()
            elif introducer == TRAILER:
                if not self.frames.frames:
                    raise StructureError(Reason.BAD_STRUCTURE, "no image before the trailer")
                self.reader.expect_end()
                return ImageFacts(
                    width=self.width,
                    height=self.height,
                    frames=self.frames.frames,
                    total_pixels=self.frames.total_pixels,
                    metadata_bytes=self.budget.used,
                    animated=self.frames.frames > 1,
                )
            else:
                raise StructureError(
                    Reason.BAD_STRUCTURE, f"byte 0x{introducer:02x} at {self.reader.position - 1} starts no GIF block"
                )

    def _image(self) -> None:
        left, top, width, height, flags = struct.unpack("<HHHHB", self.reader.read(9))
        self.frames.add_frame(width, height)
        # A frame beyond the logical screen makes decoders (Pillow among them) grow the canvas.
        right, bottom = left + width, top + height
        if right > self.limits.max_width or bottom > self.limits.max_height:
            raise StructureError(Reason.DIMENSIONS_TOO_LARGE, f"frame {self.frames.frames} reaches {right}x{bottom}")
        if max(right, self.width) * max(bottom, self.height) > self.limits.max_pixels:
            raise StructureError(
                Reason.TOO_MANY_PIXELS, f"frame {self.frames.frames} grows the canvas to {right}x{bottom}"
            )
        self.width, self.height = max(right, self.width), max(bottom, self.height)
        if flags & 0x80:
            self.reader.skip(3 << ((flags & 0x07) + 1))
        (code_size,) = self.reader.read(1)
        if not 2 <= code_size <= 8:
            raise StructureError(Reason.BAD_STRUCTURE, f"frame {self.frames.frames}: LZW code size {code_size}")
        if _sub_blocks(self.reader) == 0:
            raise StructureError(Reason.BAD_STRUCTURE, f"frame {self.frames.frames} has no image data")

    def _extension(self) -> None:
        (label,) = self.reader.read(1)
        if label == GRAPHIC_CONTROL:
            if self.reader.read(1) != b"\x04":
                raise StructureError(Reason.BAD_STRUCTURE, "graphic control extension is not 4 bytes")
            self.reader.skip(4)
            if self.reader.read(1) != b"\x00":
                raise StructureError(Reason.BAD_STRUCTURE, "graphic control extension without its terminator")
        elif label == APPLICATION:
            if self.reader.read(1) != b"\x0b":
                raise StructureError(Reason.BAD_STRUCTURE, "application extension identifier is not 11 bytes")
            identifier = self.reader.read(11)
            data = _sub_blocks(self.reader)
            if identifier not in _LOOP_APPLICATIONS or data > 5:
                self.budget.spend(11 + data, f"application extension {identifier!r}")
        else:
            # Comments, plain text (rendered by almost no decoder) and unknown extensions.
            self.budget.spend(_sub_blocks(self.reader), f"extension 0x{label:02x}")


def walk(reader: ChunkReader, limits: StructureLimits) -> ImageFacts:
    return _Walk(reader, limits).run()
