"""Decide whether stored bytes are the image they claim to be, from a bounded prefix and tail.

Pure functions: no I/O. The caller reads the first bytes of the object (``head``), its last bytes
(``tail``) and its size, and gets a :class:`Verdict`. Nothing here needs the whole object, so the
cost of a verdict does not grow with the object.

What is checked, in order (the first failure is the reason):

1. size: not empty, not above the limit;
2. type: the magic bytes name an allowed image type (SVG, HTML and XML are refused as active
   content before anything else), the declared Content-Type names the same type, and so does
   the file extension (a name without an extension has nothing to contradict);
3. the end of the object: the format's terminator is where it must be (PNG's IEND chunk, JPEG's
   EOI, GIF's trailer, WebP's RIFF size, AVIF's top-level boxes ending at the object's end), so a
   truncated body is caught without reading it;
4. the header parses: Pillow with a one-format allowlist for PNG, JPEG and GIF (it reads only the
   header), header-only readers for WebP and AVIF (Pillow's decoders for those want the whole
   file); a whole object that fits in ``head`` is also opened with Pillow whatever its type;
5. width, height, pixel count and frames within limits. Pillow's decompression-bomb warning and
   error count as too many pixels.

Frame counts are exact when the frame structure lies within the bytes read (always for an
object no longer than ``head``, for APNG's declared count, for AVIF sequences whose sample table
was read); otherwise they are a lower bound over the prefix (GIF and animated WebP larger than
the prefix), reported as ``"N+"``. A lower bound still rejects the dangerous case: thousands of
tiny frames fit in a few KiB and are all counted.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO
from pathlib import PurePosixPath

from PIL import Image

from upload_core.content_types import normalize_content_type
from upload_core.image_types import AVIF, GIF, JPEG, PNG, WEBP, ImageType, looks_like_active_content, sniff_image_type
from upload_core.object_meta import STATUS_REJECTED, STATUS_VALID


class Reason(StrEnum):
    """Stable codes written to the ``upload-reason`` tag and used as a metric dimension."""

    OK = "ok"
    EMPTY = "empty"
    TOO_LARGE = "too-large"
    ACTIVE_CONTENT = "active-content"
    UNKNOWN_TYPE = "unknown-type"
    TYPE_NOT_ALLOWED = "type-not-allowed"
    TYPE_MISMATCH = "type-mismatch"
    EXTENSION_MISMATCH = "extension-mismatch"
    TRUNCATED = "truncated"
    CORRUPT_HEADER = "corrupt-header"
    # The header goes on past every byte the validator is allowed to read (INSPECT_MAX_HEAD_BYTES).
    HEADER_TOO_LARGE = "header-too-large"
    # The structure needed to decide lies between the bytes read (e.g. an AVIF box chain).
    UNVERIFIABLE = "unverifiable"
    TOO_MANY_PIXELS = "too-many-pixels"
    DIMENSIONS_TOO_LARGE = "dimensions-too-large"
    TOO_MANY_FRAMES = "too-many-frames"


@dataclass(frozen=True, slots=True)
class InspectionLimits:
    max_object_bytes: int
    max_pixels: int
    max_width: int
    max_height: int
    max_frames: int
    allowed_types: frozenset[str]


@dataclass(frozen=True, slots=True)
class Sample:
    """What the validator read of one object version.

    ``head`` holds bytes ``0 .. len(head)-1``; ``tail`` holds the last ``len(tail)`` bytes (the two
    may overlap, or ``tail`` may be a suffix of ``head`` when the object is short).
    """

    head: bytes
    tail: bytes
    size: int
    content_type: str | None
    filename: str

    @property
    def whole(self) -> bool:
        return len(self.head) >= self.size

    @property
    def extension(self) -> str | None:
        suffix = PurePosixPath(self.filename).suffix
        return suffix[1:].lower() if len(suffix) > 1 else None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    reason: Reason
    image_type: ImageType | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    frames_exact: bool = True

    @property
    def valid(self) -> bool:
        return self.status == STATUS_VALID

    @property
    def frames_label(self) -> str | None:
        if self.frames is None:
            return None
        return str(self.frames) if self.frames_exact else f"{self.frames}+"


@dataclass(frozen=True, slots=True)
class ImageHeader:
    width: int
    height: int
    frames: int
    frames_exact: bool = True


class _Reject(Exception):
    """Control flow inside this module: the first failed check ends the inspection."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


def inspect(sample: Sample, limits: InspectionLimits) -> Verdict:
    """The verdict on one object from its bounded prefix, tail and size."""
    # Known before the checks so that a rejection still records what the bytes are.
    image_type = sniff_image_type(sample.head)
    try:
        _check_size(sample, limits)
        image_type = _check_type(sample, image_type, limits)
        _check_end(sample, image_type)
        header = read_header(sample, image_type, limits)
        _check_limits(header, limits)
    except _Reject as rejection:
        return Verdict(STATUS_REJECTED, rejection.reason, image_type)
    return Verdict(
        STATUS_VALID,
        Reason.OK,
        image_type,
        width=header.width,
        height=header.height,
        frames=header.frames,
        frames_exact=header.frames_exact,
    )


def needs_more_head(head: bytes, size: int) -> bool:
    """Whether the image header continues past ``head`` in a longer object.

    The validator then reads one more bounded range (up to INSPECT_MAX_HEAD_BYTES) before
    inspecting: a JPEG with a large ICC profile or EXIF block can put its frame header (SOF)
    well beyond the first 64 KiB.
    """
    if len(head) >= size:
        return False
    image_type = sniff_image_type(head)
    if image_type is None:
        return False
    try:
        return _header_end(head, image_type) is None
    except _Reject:
        return False


# --------------------------------------------------------------------------- the checks


def _check_size(sample: Sample, limits: InspectionLimits) -> None:
    if sample.size <= 0:
        raise _Reject(Reason.EMPTY)
    if sample.size > limits.max_object_bytes:
        raise _Reject(Reason.TOO_LARGE)
    if not sample.head:
        raise _Reject(Reason.EMPTY)


def _check_type(sample: Sample, image_type: ImageType | None, limits: InspectionLimits) -> ImageType:
    if looks_like_active_content(sample.head):
        raise _Reject(Reason.ACTIVE_CONTENT)
    if image_type is None:
        raise _Reject(Reason.UNKNOWN_TYPE)
    if image_type.mime not in limits.allowed_types:
        raise _Reject(Reason.TYPE_NOT_ALLOWED)
    declared = normalize_content_type(sample.content_type or "")
    if declared != image_type.mime:
        raise _Reject(Reason.TYPE_MISMATCH)
    extension = sample.extension
    if extension is not None and extension not in image_type.extensions:
        raise _Reject(Reason.EXTENSION_MISMATCH)
    return image_type


_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _check_end(sample: Sample, image_type: ImageType) -> None:
    """A truncated body does not end the way its format must end."""
    tail = sample.tail
    if image_type is PNG:
        ok = tail.endswith(_PNG_IEND)
    elif image_type is JPEG:
        # Some writers pad a JPEG with zero bytes after EOI; that is harmless and accepted. Any
        # other data after EOI (an appended archive, a second file) is not.
        ok = tail.rstrip(b"\x00").endswith(b"\xff\xd9")
    elif image_type is GIF:
        ok = tail.endswith(b"\x3b")
    elif image_type is WEBP:
        # The RIFF size field counts every byte after itself: a cut file is shorter than it says.
        ok = len(sample.head) >= 8 and struct.unpack_from("<I", sample.head, 4)[0] + 8 == sample.size
    elif image_type is AVIF:
        _check_box_chain(sample)
        return
    else:  # pragma: no cover - every supported type is handled above
        ok = False
    if not ok:
        raise _Reject(Reason.TRUNCATED)


def _check_limits(header: ImageHeader, limits: InspectionLimits) -> None:
    if header.width <= 0 or header.height <= 0:
        raise _Reject(Reason.CORRUPT_HEADER)
    if header.width * header.height > limits.max_pixels:
        raise _Reject(Reason.TOO_MANY_PIXELS)
    if header.width > limits.max_width or header.height > limits.max_height:
        raise _Reject(Reason.DIMENSIONS_TOO_LARGE)
    if header.frames > limits.max_frames:
        raise _Reject(Reason.TOO_MANY_FRAMES)


# --------------------------------------------------------------------------- headers


def read_header(sample: Sample, image_type: ImageType, limits: InspectionLimits) -> ImageHeader:
    """Width, height and frames from the header; rejects corrupt and oversized headers."""
    if _header_end(sample.head, image_type) is None:
        raise _Reject(Reason.CORRUPT_HEADER if sample.whole else Reason.HEADER_TOO_LARGE)
    if image_type is WEBP:
        header = _webp_header(sample.head)
    elif image_type is AVIF:
        header = _avif_header(sample)
    else:
        header = _pillow_header(sample.head, image_type, limits)
        if image_type is GIF:
            header = _gif_frames(sample.head, header)
    if sample.whole and image_type in (WEBP, AVIF):
        # The whole file is at hand: let Pillow's own decoders confirm what the header said.
        checked = _pillow_header(sample.head, image_type, limits)
        if (checked.width, checked.height) != (header.width, header.height):
            raise _Reject(Reason.CORRUPT_HEADER)
        header = ImageHeader(header.width, header.height, max(header.frames, checked.frames))
    return header


@contextmanager
def _pillow_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's bomb check with our limit; its warning becomes an error we can catch.

    Image.MAX_IMAGE_PIXELS is process-global: set and restored around each call, which is safe
    because a Lambda container handles one event at a time.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _pillow_header(data: bytes, image_type: ImageType, limits: InspectionLimits) -> ImageHeader:
    try:
        with (
            _pillow_pixel_limit(limits.max_pixels),
            Image.open(BytesIO(data), formats=[image_type.pillow_format]) as im,
        ):
            width, height = im.size
            # GIF's n_frames walks the whole file; GIF frames are counted by _walk_gif instead.
            frames = 1 if image_type is GIF else int(getattr(im, "n_frames", 1) or 1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _Reject(Reason.TOO_MANY_PIXELS) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError):
        # Pillow reports a malformed header through any of these (UnidentifiedImageError is an OSError).
        raise _Reject(Reason.CORRUPT_HEADER) from None
    return ImageHeader(width, height, frames)


def _header_end(head: bytes, image_type: ImageType) -> int | None:
    """Offset just past the header Pillow (or our reader) needs, or None if it is not all in head."""
    if image_type is JPEG:
        return _jpeg_header_end(head)
    if image_type is PNG:
        return _png_header_end(head)
    if image_type is GIF:
        return _gif_header_end(head)
    if image_type is WEBP:
        return _webp_header_end(head)
    return _avif_header_end(head)


# JPEG: markers FFxx; standalone markers have no length; SOS starts the entropy-coded data.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_header_end(head: bytes) -> int | None:
    pos = 2
    seen_frame = False
    while True:
        while pos < len(head) and head[pos] == 0xFF and pos + 1 < len(head) and head[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos + 4 > len(head):
            return None
        if head[pos] != 0xFF:
            raise _Reject(Reason.CORRUPT_HEADER)
        marker = head[pos + 1]
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (0xD8, 0xD9, 0x00):
            raise _Reject(Reason.CORRUPT_HEADER)
        (length,) = struct.unpack_from(">H", head, pos + 2)
        if length < 2:
            raise _Reject(Reason.CORRUPT_HEADER)
        end = pos + 2 + length
        if marker in _JPEG_SOF:
            seen_frame = True
        if marker == 0xDA:
            if not seen_frame:
                raise _Reject(Reason.CORRUPT_HEADER)
            return end if end <= len(head) else None
        pos = end


def _png_header_end(head: bytes) -> int | None:
    pos = 8
    first = True
    while pos + 8 <= len(head):
        length, chunk = struct.unpack_from(">I4s", head, pos)
        if first and (chunk != b"IHDR" or length != 13):
            raise _Reject(Reason.CORRUPT_HEADER)
        first = False
        if chunk == b"IDAT":
            return pos + 8
        if chunk == b"IEND" or length > 0x7FFFFFFF:
            raise _Reject(Reason.CORRUPT_HEADER)
        pos += 12 + length
    return None


def _gif_header_end(head: bytes) -> int | None:
    walk = _walk_gif(head)
    return walk.first_frame_end


def _webp_header_end(head: bytes) -> int | None:
    # The first chunk (VP8X, VP8 or VP8L) carries the dimensions; 30 bytes cover any of them.
    return 30 if len(head) >= 30 else None


# --------------------------------------------------------------------------- GIF


@dataclass(slots=True)
class _GifWalk:
    frames: int = 0
    complete: bool = False
    first_frame_end: int | None = None
    # Frames may extend past the logical screen; a decoder allocates for the union.
    max_right: int = 0
    max_bottom: int = 0


def _walk_gif(data: bytes) -> _GifWalk:
    """Walk GIF blocks as far as ``data`` goes: frames counted, and whether the trailer was seen."""
    walk = _GifWalk()
    if len(data) < 13:
        return walk
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    try:
        while pos < len(data):
            block = data[pos]
            if block == 0x3B:
                walk.complete = True
                return walk
            if block == 0x21:
                pos = _skip_sub_blocks(data, pos + 2)
            elif block == 0x2C:
                left, top, width, height, local = struct.unpack_from("<HHHHB", data, pos + 1)
                walk.max_right = max(walk.max_right, left + width)
                walk.max_bottom = max(walk.max_bottom, top + height)
                pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
                if pos >= len(data):
                    return walk
                if walk.frames == 0:
                    walk.first_frame_end = pos + 1
                pos = _skip_sub_blocks(data, pos + 1)
                walk.frames += 1
            else:
                raise _Reject(Reason.CORRUPT_HEADER)
    except (struct.error, IndexError):
        pass  # ran off the bytes we have
    return walk


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]  # IndexError past the end: the caller stops there
        pos += 1
        if length == 0:
            return pos
        pos += length


def _gif_frames(head: bytes, header: ImageHeader) -> ImageHeader:
    walk = _walk_gif(head)
    return ImageHeader(
        max(header.width, walk.max_right),
        max(header.height, walk.max_bottom),
        frames=max(walk.frames, 1),
        frames_exact=walk.complete,
    )


# --------------------------------------------------------------------------- WebP


def _webp_header(head: bytes) -> ImageHeader:
    chunk, length = struct.unpack_from("<4sI", head, 12)
    data = head[20 : 20 + min(length, 10)]
    if chunk == b"VP8X" and length >= 10 and len(data) == 10:
        animated = bool(data[0] & 0x02)
        width = int.from_bytes(data[4:7], "little") + 1
        height = int.from_bytes(data[7:10], "little") + 1
        if not animated:
            return ImageHeader(width, height, 1)
        frames, complete = _webp_animation_frames(head)
        return ImageHeader(width, height, max(frames, 1), frames_exact=complete)
    if chunk == b"VP8 " and length >= 10 and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 6)
        return ImageHeader(width & 0x3FFF, height & 0x3FFF, 1)
    if chunk == b"VP8L" and length >= 5 and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        return ImageHeader((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1)
    raise _Reject(Reason.CORRUPT_HEADER)


def _webp_animation_frames(head: bytes) -> tuple[int, bool]:
    riff_end = struct.unpack_from("<I", head, 4)[0] + 8
    pos, frames = 12, 0
    while pos + 8 <= len(head):
        chunk, length = struct.unpack_from("<4sI", head, pos)
        if chunk == b"ANMF":
            frames += 1
        pos += 8 + length + (length & 1)
        if pos >= riff_end:
            return frames, True
    return frames, False


# --------------------------------------------------------------------------- AVIF (ISO BMFF)


@dataclass(frozen=True, slots=True)
class _Box:
    kind: bytes
    start: int
    body: int  # where the payload starts
    end: int


# Boxes whose payload is a sequence of boxes (meta is a FullBox: 4 bytes first, handled apart).
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"iprp", b"ipco"})


class _View:
    """The object's bytes at absolute offsets, where known: the head and the tail."""

    def __init__(self, sample: Sample) -> None:
        self.size = sample.size
        self._head = sample.head
        self._tail = sample.tail
        self._tail_start = sample.size - len(sample.tail)

    def read(self, offset: int, length: int) -> bytes | None:
        end = offset + length
        if end <= len(self._head):
            return self._head[offset:end]
        if offset >= self._tail_start and end <= self.size:
            return self._tail[offset - self._tail_start : end - self._tail_start]
        return None


def _top_level_boxes(view: _View) -> Iterator[_Box]:
    """The boxes that tile the file, followed through head and tail.

    Rejects as truncated when a box claims to run past the end of the object, and as
    unverifiable when a box header lies between the two windows that were read.
    """
    pos = 0
    while pos < view.size:
        if pos + 8 > view.size:
            raise _Reject(Reason.TRUNCATED)
        header = view.read(pos, 8)
        if header is None:
            raise _Reject(Reason.UNVERIFIABLE)
        size, kind = struct.unpack(">I4s", header)
        body = pos + 8
        if size == 1:
            large = view.read(pos + 8, 8)
            if large is None:
                raise _Reject(Reason.UNVERIFIABLE if pos + 16 <= view.size else Reason.TRUNCATED)
            size = struct.unpack(">Q", large)[0]
            body = pos + 16
        elif size == 0:  # the last box, running to the end of the file
            size = view.size - pos
        if size < body - pos:
            raise _Reject(Reason.CORRUPT_HEADER)
        if pos + size > view.size:
            raise _Reject(Reason.TRUNCATED)
        yield _Box(kind, pos, body, pos + size)
        pos += size


def _children(data: bytes, start: int, end: int) -> Iterator[_Box]:
    """Boxes nested in data[start:end], depth first."""
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise _Reject(Reason.CORRUPT_HEADER)
        size, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if size == 1:
            if pos + 16 > end:
                raise _Reject(Reason.CORRUPT_HEADER)
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            body = pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos or pos + size > end:
            raise _Reject(Reason.CORRUPT_HEADER)
        box = _Box(kind, pos, body, pos + size)
        yield box
        if kind in _CONTAINERS:
            yield from _children(data, body, box.end)
        pos = box.end


def _check_box_chain(sample: Sample) -> None:
    for _ in _top_level_boxes(_View(sample)):
        pass


def _avif_header_end(head: bytes) -> int | None:
    pos = 0
    while pos + 8 <= len(head):
        size, kind = struct.unpack_from(">I4s", head, pos)
        if size < 8:  # large and open-ended boxes: only media data is written that way
            return None
        if kind == b"meta":
            return pos + size if pos + size <= len(head) else None
        pos += size
    return None


def _avif_header(sample: Sample) -> ImageHeader:
    view = _View(sample)
    width = height = 0
    frames: int | None = None
    for box in _top_level_boxes(view):
        if box.kind not in (b"meta", b"moov"):
            continue
        data = view.read(box.start, box.end - box.start)
        if data is None:
            raise _Reject(Reason.UNVERIFIABLE)
        if box.kind == b"meta":
            # A FullBox: version and flags come before its children.
            for prop in _children(data, box.body - box.start + 4, len(data)):
                if prop.kind == b"ispe" and prop.end - prop.body >= 12:
                    w, h = struct.unpack_from(">II", data, prop.body + 4)
                    # Grid tiles and alpha planes have their own extents; a decoder allocates for the largest.
                    width, height = max(width, w), max(height, h)
        else:
            counts = [
                struct.unpack_from(">I", data, child.body + 8)[0]
                for child in _children(data, box.body - box.start, len(data))
                if child.kind == b"stsz" and child.end - child.body >= 12
            ]
            frames = max([*counts, frames or 0])
    if width == 0 or height == 0:
        raise _Reject(Reason.CORRUPT_HEADER)
    if frames is None:
        if sample.head[8:12] == b"avis":  # a sequence whose sample table was not found
            raise _Reject(Reason.UNVERIFIABLE)
        frames = 1
    return ImageHeader(width, height, max(frames, 1))
