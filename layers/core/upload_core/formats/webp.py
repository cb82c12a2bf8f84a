"""WebP, walked chunk by chunk through its RIFF container to the last byte.

What must hold:

- ``RIFF`` with an even size field, ``WEBP``, and chunks (each padded to an even size) that tile
  the RIFF payload exactly; the object ends where the RIFF size says (size + 8 = object size), so
  appended bytes are trailing data and a size that lies fails the walk;
- simple files are one ``VP8 `` (a key frame whose first partition fits its chunk) or one
  ``VP8L`` chunk and nothing else;
- extended files start with ``VP8X`` (10 bytes, the canvas); ``ICCP`` right after it; still
  images have one bitstream (``VP8 `` after an optional ``ALPH``, or ``VP8L``) the size of the
  canvas; animations (the flag set) have ``ANIM`` then ``ANMF`` frames, each with its own
  bitstream of the frame's size, lying inside the canvas, counted and measured; no animation
  chunk without the flag and no still bitstream beside the frames;
- ``ICCP``, ``EXIF``, ``XMP `` and unknown chunks (top level or inside a frame) count against
  the metadata budget.

Bitstreams are not decoded: pixel data moves through :meth:`ChunkReader.skip`.
"""

from __future__ import annotations

import struct

from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import FrameCounter, ImageFacts, MetadataBudget, StructureLimits
from upload_core.formats.stream import ChunkReader

VP8 = b"VP8 "
VP8L = b"VP8L"
VP8X = b"VP8X"
ALPH = b"ALPH"
ANIM = b"ANIM"
ANMF = b"ANMF"
ICCP = b"ICCP"
_METADATA = frozenset({ICCP, b"EXIF", b"XMP "})
_ANIMATION_FLAG = 0x02
_ANMF_HEADER = 16


def _padded(size: int) -> int:
    return size + (size & 1)


def _vp8_size(header: bytes, chunk_size: int) -> tuple[int, int]:
    """A lossy key frame's dimensions, from the first 10 bytes of its chunk (libwebp's checks)."""
    if len(header) < 10 or chunk_size < 10:
        raise StructureError(Reason.CORRUPT_HEADER, "VP8 chunk shorter than a frame header")
    bits = header[0] | header[1] << 8 | header[2] << 16
    if bits & 1 or (bits >> 1) & 7 > 3 or not (bits >> 4) & 1 or header[3:6] != b"\x9d\x01\x2a":
        raise StructureError(Reason.CORRUPT_HEADER, "VP8 data is not a shown key frame")
    if bits >> 5 >= chunk_size:
        raise StructureError(Reason.BAD_STRUCTURE, "VP8 first partition runs past its chunk")
    width, height = struct.unpack("<HH", header[6:10])
    return width & 0x3FFF, height & 0x3FFF


def _vp8l_size(header: bytes, chunk_size: int) -> tuple[int, int]:
    if len(header) < 5 or chunk_size < 5 or header[0] != 0x2F:
        raise StructureError(Reason.CORRUPT_HEADER, "VP8L chunk without its signature")
    (bits,) = struct.unpack("<I", header[1:5])
    if bits >> 29:
        raise StructureError(Reason.CORRUPT_HEADER, "VP8L version is not 0")
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1


class _Walk:
    def __init__(self, reader: ChunkReader, limits: StructureLimits) -> None:
        self.reader = reader
        self.frames = FrameCounter(limits)
        self.budget = MetadataBudget(limits)
        self.end = 0  # object offset where the RIFF payload ends
        self.width = self.height = 0
        self.animated = False
        self.seen: set[bytes] = set()
        self.image_done = False  # the still bitstream, or the first ANMF frame, has been read
        self.pending_alpha = False

    def run(self) -> ImageFacts:
        riff, size, form = struct.unpack("<4sI4s", self.reader.read(12))
        if riff != b"RIFF" or form != b"WEBP":
            raise StructureError(Reason.CORRUPT_HEADER, "not a RIFF WEBP file")
        if size & 1 or size < 4 + 8:
            raise StructureError(Reason.BAD_STRUCTURE, f"RIFF size {size}")
        self.end = 8 + size
        kind, chunk_size = self._chunk_header(self.end)
        if kind == VP8X:
            self._extended(chunk_size)
        elif kind in (VP8, VP8L):
            width, height = self._bitstream(kind, chunk_size)
            self.frames.check_canvas(width, height)
            self.frames.add_frame(width, height)
            self.width, self.height = width, height
            if self.reader.position != self.end:
                if self.reader.at_end():
                    raise StructureError(Reason.TRUNCATED, f"object ends at {self.reader.position}, RIFF at {self.end}")
                raise StructureError(Reason.BAD_STRUCTURE, "a simple WebP has chunks after its bitstream")
        else:
            raise StructureError(Reason.CORRUPT_HEADER, f"first chunk is {kind!r}, not VP8/VP8L/VP8X")
        self.reader.expect_end()
        return ImageFacts(
            width=self.width,
            height=self.height,
            frames=self.frames.frames,
            total_pixels=self.frames.total_pixels,
            metadata_bytes=self.budget.used,
            animated=self.animated,
        )

    def _chunk_header(self, end: int) -> tuple[bytes, int]:
        """The next chunk's kind and size, which must fit (padded) before ``end``."""
        start = self.reader.position
        if self.reader.at_end():
            raise StructureError(Reason.TRUNCATED, f"object ends at {start}, its RIFF size says {self.end}")
        if start + 8 > end:
            raise StructureError(Reason.BAD_STRUCTURE, f"{end - start} bytes left at {start}: no room for a chunk")
        kind, size = struct.unpack("<4sI", self.reader.read(8))
        if start + 8 + _padded(size) > end:
            raise StructureError(Reason.BAD_STRUCTURE, f"chunk {kind!r} at {start} runs past its container")
        return kind, size

    def _bitstream(self, kind: bytes, size: int) -> tuple[int, int]:
        """A VP8 or VP8L chunk (its header already read): dimensions checked, data skipped."""
        head = self.reader.read(min(size, 10))
        width, height = _vp8_size(head, size) if kind == VP8 else _vp8l_size(head, size)
        self.reader.skip(_padded(size) - len(head))
        return width, height

    def _skip_metadata(self, kind: bytes, size: int) -> None:
        self.budget.spend(size, kind.decode("latin-1"))
        self.reader.skip(_padded(size))

    def _extended(self, size: int) -> None:
        if size != 10:
            raise StructureError(Reason.CORRUPT_HEADER, f"VP8X of {size} bytes")
        flags, w0, w1, w2, h0, h1, h2 = struct.unpack("<B3x6B", self.reader.read(10))
        self.width = (w0 | w1 << 8 | w2 << 16) + 1
        self.height = (h0 | h1 << 8 | h2 << 16) + 1
        self.frames.check_canvas(self.width, self.height)
        self.animated = bool(flags & _ANIMATION_FLAG)
        first = True
        while self.reader.position < self.end:
            kind, chunk_size = self._chunk_header(self.end)
            self._extended_chunk(kind, chunk_size, first)
            first = False
        if self.pending_alpha:
            raise StructureError(Reason.BAD_STRUCTURE, "ALPH without the VP8 bitstream after it")
        if not self.frames.frames:
            raise StructureError(Reason.BAD_STRUCTURE, "no image in an extended WebP")

    def _extended_chunk(self, kind: bytes, size: int, first: bool) -> None:
        if kind in (VP8X, ANIM, ICCP, b"EXIF", b"XMP "):
            if kind in self.seen:
                raise StructureError(Reason.BAD_STRUCTURE, f"a second {kind!r} chunk")
            self.seen.add(kind)
        if kind == VP8X:
            raise StructureError(Reason.BAD_STRUCTURE, "a second VP8X chunk")
        if self.pending_alpha and kind != VP8:
            raise StructureError(Reason.BAD_STRUCTURE, f"ALPH followed by {kind!r}, not VP8")
        if kind == ICCP:
            if not first:
                raise StructureError(Reason.BAD_STRUCTURE, "ICCP is not right after VP8X")
            self._skip_metadata(kind, size)
        elif kind == ANIM:
            if not self.animated or self.image_done or size != 6:
                raise StructureError(Reason.BAD_STRUCTURE, "ANIM without the animation flag, late or not 6 bytes")
            self.reader.skip(6)
        elif kind == ANMF:
            if not self.animated or ANIM not in self.seen:
                raise StructureError(Reason.BAD_STRUCTURE, "ANMF without the animation flag or before ANIM")
            self._frame(size)
            self.image_done = True
        elif kind in (ALPH, VP8, VP8L):
            if self.animated or self.image_done:
                raise StructureError(Reason.BAD_STRUCTURE, f"{kind!r} in an animation or after the image")
            if kind == ALPH:
                self.pending_alpha = True
                self.reader.skip(_padded(size))
                return
            self.pending_alpha = False
            width, height = self._bitstream(kind, size)
            if (width, height) != (self.width, self.height):
                raise StructureError(
                    Reason.BAD_STRUCTURE, f"bitstream {width}x{height} on a {self.width}x{self.height} canvas"
                )
            self.frames.add_frame(width, height)
            self.image_done = True
        else:
            # EXIF, XMP and unknown chunks: never image data.
            self._skip_metadata(kind, size)

    def _frame(self, size: int) -> None:
        if size < _ANMF_HEADER + 8:
            raise StructureError(Reason.BAD_STRUCTURE, f"ANMF of {size} bytes")
        end = self.reader.position + _padded(size)
        head = self.reader.read(_ANMF_HEADER)
        x, y, w, h = (int.from_bytes(head[i : i + 3], "little") for i in (0, 3, 6, 9))
        x, y, width, height = 2 * x, 2 * y, w + 1, h + 1
        self.frames.add_frame(width, height)
        if x + width > self.width or y + height > self.height:
            raise StructureError(
                Reason.BAD_STRUCTURE, f"frame {self.frames.frames} {width}x{height}+{x}+{y} outside the canvas"
            )
        alpha = bitstream = False
        while self.reader.position < end:
            kind, chunk_size = self._chunk_header(end)
            if kind == ALPH and not alpha and not bitstream:
                alpha = True
                self.reader.skip(_padded(chunk_size))
            elif kind in (VP8, VP8L) and not bitstream:
                if alpha and kind != VP8:
                    raise StructureError(Reason.BAD_STRUCTURE, "ALPH followed by VP8L in a frame")
                bitstream = True
                size_seen = self._bitstream(kind, chunk_size)
                if size_seen != (width, height):
                    raise StructureError(
                        Reason.BAD_STRUCTURE,
                        f"frame {self.frames.frames} is {width}x{height}, its bitstream {size_seen}",
                    )
            elif kind in (ALPH, VP8, VP8L, ANMF, ANIM, VP8X):
                raise StructureError(Reason.BAD_STRUCTURE, f"{kind!r} misplaced in frame {self.frames.frames}")
            elif not bitstream:
                raise StructureError(
                    Reason.BAD_STRUCTURE, f"{kind!r} before the bitstream of frame {self.frames.frames}"
                )
            else:
                self._skip_metadata(kind, chunk_size)
        if not bitstream:
            raise StructureError(Reason.BAD_STRUCTURE, f"frame {self.frames.frames} has no bitstream")


def walk(reader: ChunkReader, limits: StructureLimits) -> ImageFacts:
    return _Walk(reader, limits).run()
