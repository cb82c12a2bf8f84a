"""Decide whether an object is the image it claims to be, from one streaming pass over its bytes.

No I/O here: the caller hands an iterator of the object's chunks (one GET, read as it arrives),
its size, declared Content-Type and file name, and gets a :class:`Verdict`. Memory stays flat
whatever the size: the bytes pass through a :class:`ChunkReader` and are never held.

What is checked, in order (the first failure is the reason):

1. size: not empty, not above the limit (nothing is read then);
2. type, from the first bytes: SVG, HTML and XML are refused as active content before anything
   else; the magic bytes name an allowed image type; the declared Content-Type names the same
   type, and so does the file extension (a name without one has nothing to contradict);
3. structure, to the last byte: the format's walker (``upload_core.formats.<format>``) checks the
   container from the first byte to the last (chunk CRCs, segment lengths, scan data, frame
   descriptors, box sizes), counts and measures every frame, spends a metadata budget, and
   refuses any byte after the format's end (``trailing-data``);
4. the stream ended where the object's size says it does;
5. a whole object no larger than ``pillow_bytes`` is also opened by Pillow (the decoder of
   record), which must agree on its dimensions and, up to ``DECODE_MAX_PIXELS``, decode it.
   Larger objects are never decoded in full.
"""

from __future__ import annotations

import importlib
import struct
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath

from upload_core.content_types import normalize_content_type
from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import ImageFacts, StructureLimits
from upload_core.formats.stream import ChunkReader
from upload_core.image_types import AVIF, GIF, JPEG, PNG, WEBP, ImageType, looks_like_active_content, sniff_image_type
from upload_core.object_meta import STATUS_REJECTED, STATUS_VALID

__all__ = ["InspectionLimits", "Reason", "Verdict", "inspect"]

# Bytes looked at for the type checks (active content may follow a BOM and whitespace).
TYPE_BYTES = 64 * 1024
# Pillow decodes a small whole object only up to this many pixels (about 64 MiB of RGBA).
DECODE_MAX_PIXELS = 16 * 1024 * 1024

Walker = Callable[[ChunkReader, StructureLimits], ImageFacts]
# One module per format; imported on first use, so a format without a walker is unknown-type.
WALKER_MODULES: dict[str, str] = {
    JPEG.mime: "upload_core.formats.jpeg",
    PNG.mime: "upload_core.formats.png",
    GIF.mime: "upload_core.formats.gif",
    WEBP.mime: "upload_core.formats.webp",
    AVIF.mime: "upload_core.formats.avif",
}


@dataclass(frozen=True, slots=True)
class InspectionLimits:
    max_object_bytes: int
    max_pixels: int
    max_width: int
    max_height: int
    max_frames: int
    allowed_types: frozenset[str]
    # Summed over every frame of an animation; the default allows max_frames frames of 1 MP.
    max_total_pixels: int = 1_000_000_000
    # Bytes that are not image data (metadata, comments, unknown chunks).
    max_metadata_bytes: int = 16 * 1024 * 1024
    allow_indexed_jpeg_trailers: bool = False
    # Whole objects up to this size are also opened (and decoded, pixels permitting) by Pillow.
    pillow_bytes: int = 64 * 1024

    @property
    def structure(self) -> StructureLimits:
        return StructureLimits(
            max_width=self.max_width,
            max_height=self.max_height,
            max_pixels=self.max_pixels,
            max_total_pixels=self.max_total_pixels,
            max_frames=self.max_frames,
            max_metadata_bytes=self.max_metadata_bytes,
            allow_indexed_jpeg_trailers=self.allow_indexed_jpeg_trailers,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    reason: Reason
    image_type: ImageType | None = None
    width: int | None = None
    height: int | None = None
    # Exact: every frame was counted.
    frames: int | None = None
    # Bytes pulled from the source, at most the object's size (less when a reject stops early).
    bytes_read: int = 0

    @property
    def valid(self) -> bool:
        return self.status == STATUS_VALID


class _Reject(Exception):
    """Control flow inside this module: the first failed check ends the inspection."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class _Counted:
    """The source's chunks, counted as they are pulled (the S3 bytes actually transferred)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.pulled += len(chunk)
            yield chunk


def inspect(
    chunks: Iterable[bytes], *, size: int, content_type: str | None, filename: str, limits: InspectionLimits
) -> Verdict:
    """The verdict on one object, reading ``chunks`` (its whole body, ``size`` bytes) at most once."""
    if size <= 0:
        return Verdict(STATUS_REJECTED, Reason.EMPTY)
    if size > limits.max_object_bytes:
        return Verdict(STATUS_REJECTED, Reason.TOO_LARGE)
    source = _Counted(chunks)
    small = size <= limits.pillow_bytes
    whole = b"".join(source) if small else None  # small: held once, for Pillow after the walk
    reader = ChunkReader([whole] if whole is not None else source)
    first = reader.peek(TYPE_BYTES)
    image_type = sniff_image_type(first)
    try:
        if not first:
            raise _Reject(Reason.EMPTY)
        image_type = _check_type(first, image_type, content_type, filename, limits)
        facts = _walk(reader, image_type, limits)
        if reader.position != size:
            # The body ended before (or ran past) the size the object has: never a valid image.
            raise _Reject(Reason.TRUNCATED if reader.position < size else Reason.TRAILING_DATA)
        if whole is not None:
            _pillow_agrees(whole, image_type, facts, limits)
    except _Reject as rejection:
        return Verdict(STATUS_REJECTED, rejection.reason, image_type, bytes_read=source.pulled)
    return Verdict(
        STATUS_VALID,
        Reason.OK,
        image_type,
        width=facts.width,
        height=facts.height,
        frames=facts.frames,
        bytes_read=source.pulled,
    )


def inspect_bytes(data: bytes, filename: str, content_type: str | None, limits: InspectionLimits) -> Verdict:
    """The verdict on bytes already in memory (tests, small objects)."""
    return inspect(
        [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)],
        size=len(data),
        content_type=content_type,
        filename=filename,
        limits=limits,
    )


# --------------------------------------------------------------------------- the checks


def _extension(filename: str) -> str | None:
    suffix = PurePosixPath(filename).suffix
    return suffix[1:].lower() if len(suffix) > 1 else None


def _check_type(
    first: bytes, image_type: ImageType | None, content_type: str | None, filename: str, limits: InspectionLimits
) -> ImageType:
    if looks_like_active_content(first):
        raise _Reject(Reason.ACTIVE_CONTENT)
    if image_type is None:
        raise _Reject(Reason.UNKNOWN_TYPE)
    if image_type.mime not in limits.allowed_types:
        raise _Reject(Reason.TYPE_NOT_ALLOWED)
    if normalize_content_type(content_type or "") != image_type.mime:
        raise _Reject(Reason.TYPE_MISMATCH)
    extension = _extension(filename)
    if extension is not None and extension not in image_type.extensions:
        raise _Reject(Reason.EXTENSION_MISMATCH)
    return image_type


def walker_for(image_type: ImageType) -> Walker | None:
    """The structural walker of a format, or None when this build has none for it."""
    try:
        module = importlib.import_module(WALKER_MODULES[image_type.mime])
    except (KeyError, ModuleNotFoundError):
        return None
    walk: Walker = module.walk
    return walk


def _walk(reader: ChunkReader, image_type: ImageType, limits: InspectionLimits) -> ImageFacts:
    walk = walker_for(image_type)
    if walk is None:
        raise _Reject(Reason.UNKNOWN_TYPE)
    try:
        return walk(reader, limits.structure)
    except StructureError as error:
        raise _Reject(error.reason) from None
    except (struct.error, IndexError, ValueError, KeyError, OverflowError):
        # A structure no check anticipated: fail closed.
        raise _Reject(Reason.BAD_STRUCTURE) from None


@contextmanager
def _pillow_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's bomb check with our limit; its warning becomes an error we can catch.

    Image.MAX_IMAGE_PIXELS is process-global: set and restored around each call, which is safe
    because a Lambda container handles one event at a time.
    """
    from PIL import Image  # noqa: PLC0415  (see _pillow_agrees)

    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


_PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError)


def _pillow_agrees(data: bytes, image_type: ImageType, facts: ImageFacts, limits: InspectionLimits) -> None:
    """Pillow opens the whole (small) object with a one-format allowlist, finds the walker's
    dimensions and decodes the first frame when it is small enough."""
    # Imported on the first small object, not at start: objects over `pillow_bytes` (most
    # photos) are judged by the walkers alone, and Pillow costs a cold start tens of milliseconds.
    from PIL import Image  # noqa: PLC0415

    try:
        with (
            _pillow_pixel_limit(limits.max_pixels),
            Image.open(BytesIO(data), formats=[image_type.pillow_format]) as im,
        ):
            # PNG and JPEG have one notion of size; GIF, WebP and AVIF canvases and frames differ
            # between readers, so there the walker's measure stands and Pillow must decode.
            if image_type in (PNG, JPEG) and im.size != (facts.width, facts.height):
                raise _Reject(Reason.CORRUPT_HEADER)
            if im.size[0] * im.size[1] <= DECODE_MAX_PIXELS:
                im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _Reject(Reason.TOO_MANY_PIXELS) from None
    except _PILLOW_ERRORS:
        # Pillow reports a malformed file through any of these (UnidentifiedImageError is an OSError).
        raise _Reject(Reason.CORRUPT_HEADER) from None
