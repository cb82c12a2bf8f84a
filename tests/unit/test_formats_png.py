"""The PNG walker: valid files from Pillow and by hand pass; hostile ones fail with the right reason."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

import pytest
from PIL import Image

from tests import image_corpus as corpus
from upload_core.formats import png
from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import ImageFacts, StructureLimits
from upload_core.formats.stream import ChunkReader, chunked

LIMITS = StructureLimits(
    max_width=20_000,
    max_height=20_000,
    max_pixels=50_000_000,
    max_total_pixels=100_000_000,
    max_frames=100,
    max_metadata_bytes=256 * 1024,
)
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def walk(data: bytes, limits: StructureLimits = LIMITS, chunk: int = 4096) -> ImageFacts:
    return png.walk(ChunkReader(chunked(data, chunk)), limits)


def reason_of(data: bytes, limits: StructureLimits = LIMITS) -> Reason:
    with pytest.raises(StructureError) as error:
        walk(data, limits)
    return error.value.reason


def chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    value = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", value)


def chunks_of(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of every chunk."""
    found, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        found.append((pos, kind))
        pos += 12 + length
    return found


def with_chunk_before(data: bytes, kind: bytes, extra: bytes) -> bytes:
    """``extra`` (whole chunks) inserted before the first chunk of type ``kind``."""
    offset = next(pos for pos, found in chunks_of(data) if found == kind)
    return data[:offset] + extra + data[offset:]


def ihdr(width: int, height: int, depth: int = 8, colour: int = 2, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


def save(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def interlaced_png(width: int, height: int, seed: int = 3) -> bytes:
    """An Adam7-interlaced RGB PNG, written by hand (Pillow does not write interlaced PNGs)."""
    rng = random.Random(seed)
    raw = bytearray()
    for x0, y0, dx, dy in (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ):
        cols = (width - x0 + dx - 1) // dx if width > x0 else 0
        rows = (height - y0 + dy - 1) // dy if height > y0 else 0
        if cols and rows:
            for _ in range(rows):
                raw += b"\x00" + rng.randbytes(cols * 3)
    return (
        SIGNATURE + ihdr(width, height, interlace=1) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    )


def apng(frames: int = 3, size: tuple[int, int] = (32, 24), **options: object) -> bytes:
    pictures = [Image.effect_noise(size, 40 + i).convert("RGBA") for i in range(frames)]
    return save(pictures[0], save_all=True, append_images=pictures[1:], duration=40, **options)


def text_chunk(size: int) -> bytes:
    return chunk(b"tEXt", b"Comment\x00" + b"x" * size)


# --------------------------------------------------------------------------- valid files

VALID = [
    pytest.param(lambda: corpus.png(64, 48), 64, 48, 1, id="rgb"),
    pytest.param(lambda: save(Image.effect_noise((50, 40), 30).convert("1")), 50, 40, 1, id="bilevel"),
    pytest.param(lambda: save(Image.effect_noise((50, 40), 30)), 50, 40, 1, id="grey"),
    pytest.param(lambda: save(Image.effect_noise((50, 40), 30).convert("P")), 50, 40, 1, id="palette"),
    pytest.param(lambda: save(Image.effect_noise((50, 40), 30).convert("LA")), 50, 40, 1, id="grey-alpha"),
    pytest.param(lambda: save(Image.effect_noise((50, 40), 30).convert("I;16")), 50, 40, 1, id="grey-16"),
    pytest.param(lambda: save(Image.new("RGBA", (7, 3), (1, 2, 3, 4))), 7, 3, 1, id="rgba-tiny"),
    pytest.param(lambda: interlaced_png(37, 29), 37, 29, 1, id="interlaced"),
    pytest.param(lambda: interlaced_png(1, 1), 1, 1, 1, id="interlaced-1x1"),
    pytest.param(lambda: interlaced_png(3, 17), 3, 17, 1, id="interlaced-narrow"),
    pytest.param(lambda: apng(3), 32, 24, 3, id="apng"),
    pytest.param(lambda: apng(4, default_image=True), 32, 24, 4, id="apng-default-image-apart"),
    pytest.param(
        lambda: save(Image.effect_noise((40, 30), 30), icc_profile=random.Random(1).randbytes(100_000)),
        40,
        30,
        1,
        id="large-icc",
    ),
    pytest.param(
        lambda: with_chunk_before(corpus.png(20, 10), b"IDAT", text_chunk(50_000) + chunk(b"zzZz", b"unknown")),
        20,
        10,
        1,
        id="text-and-unknown-ancillary",
    ),
]


@pytest.mark.parametrize(("make", "width", "height", "frames"), VALID)
@pytest.mark.parametrize("chunk_size", [1, 13, 65536])
def test_valid_pngs_pass_with_their_dimensions_and_exact_frames(
    make: object, width: int, height: int, frames: int, chunk_size: int
) -> None:
    # Given a valid PNG (Pillow decodes it), cut into chunks of any size
    data = make()  # type: ignore[operator]
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert getattr(image, "n_frames", 1) == frames
    # When it is walked
    facts = walk(data, chunk=chunk_size)
    # Then its dimensions and exact frame count are measured
    assert (facts.width, facts.height, facts.frames) == (width, height, frames)
    assert facts.animated == (frames > 1)


def test_metadata_bytes_are_counted() -> None:
    data = with_chunk_before(corpus.png(20, 10), b"IDAT", text_chunk(1000))
    assert walk(data).metadata_bytes == 12 + 8 + 1000


# --------------------------------------------------------------------------- hostile files


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buffer.getvalue()


IEND = chunk(b"IEND", b"")

HOSTILE = [
    # Appended data, however it ends
    pytest.param(lambda: corpus.png() + zip_archive(), Reason.TRAILING_DATA, id="appended-zip"),
    pytest.param(lambda: corpus.png() + zip_archive() + IEND, Reason.TRAILING_DATA, id="zip-ending-like-iend"),
    pytest.param(lambda: corpus.png() + IEND + b"<script>x</script>", Reason.TRAILING_DATA, id="markup-after-2nd-iend"),
    pytest.param(lambda: corpus.png() + b"\x00", Reason.TRAILING_DATA, id="one-byte-after-iend"),
    pytest.param(lambda: corpus.png() + text_chunk(10), Reason.TRAILING_DATA, id="chunk-after-iend"),
    pytest.param(lambda: corpus.png() + corpus.png(), Reason.TRAILING_DATA, id="two-pngs"),
    # Checksums
    pytest.param(lambda: flip(corpus.png(), 20), Reason.BAD_CHECKSUM, id="ihdr-crc"),
    pytest.param(lambda: flip(corpus.png(), 60), Reason.BAD_CHECKSUM, id="idat-crc"),
    pytest.param(lambda: corpus.png()[:-4] + b"\x00\x00\x00\x00", Reason.BAD_CHECKSUM, id="iend-crc"),
    pytest.param(
        lambda: with_chunk_before(corpus.png(), b"IDAT", chunk(b"tEXt", b"a\x00b", crc=1)),
        Reason.BAD_CHECKSUM,
        id="text-crc",
    ),
    # Order and structure
    pytest.param(
        lambda: b"\x89PNG\r\n\x1a\x0a"[:7] + b"\x00" + corpus.png()[8:], Reason.CORRUPT_HEADER, id="signature"
    ),
    pytest.param(lambda: SIGNATURE + text_chunk(3) + corpus.png()[8:], Reason.CORRUPT_HEADER, id="ihdr-not-first"),
    pytest.param(lambda: SIGNATURE + ihdr(10, 10, depth=3) + IEND, Reason.CORRUPT_HEADER, id="bad-depth"),
    pytest.param(lambda: SIGNATURE + ihdr(0, 10) + IEND, Reason.CORRUPT_HEADER, id="zero-width"),
    pytest.param(lambda: SIGNATURE + ihdr(10, 10) + IEND, Reason.BAD_STRUCTURE, id="no-idat"),
    pytest.param(lambda: with_chunk_before(corpus.png(), b"IDAT", ihdr(64, 48)), Reason.BAD_STRUCTURE, id="two-ihdr"),
    pytest.param(
        lambda: with_chunk_before(corpus.png(), b"IDAT", chunk(b"ABCD", b"x")),
        Reason.BAD_STRUCTURE,
        id="unknown-critical",
    ),
    pytest.param(lambda: corpus.png()[:-12] + chunk(b"IEND", b"x"), Reason.BAD_STRUCTURE, id="iend-with-data"),
    pytest.param(lambda: split_idat(corpus.png(64, 48), text_chunk(4)), Reason.BAD_STRUCTURE, id="idat-not-contiguous"),
    pytest.param(
        lambda: with_chunk_before(corpus.png(), b"IEND", chunk(b"PLTE", b"\x00" * 6)),
        Reason.BAD_STRUCTURE,
        id="plte-after-idat",
    ),
    pytest.param(
        lambda: SIGNATURE + ihdr(4, 4, colour=3) + chunk(b"IDAT", zlib.compress(b"\x00" * 20)) + IEND,
        Reason.BAD_STRUCTURE,
        id="palette-without-plte",
    ),
    pytest.param(
        lambda: with_chunk_before(corpus.png(), b"IDAT", chunk(b"t\x00Xt", b"")), Reason.BAD_STRUCTURE, id="type-bytes"
    ),
    # Image data that does not fit the header
    pytest.param(
        lambda: idat_image(zlib.compress(b"\x00" * 100)[:-6]), Reason.BAD_STRUCTURE, id="idat-cut-iend-pasted"
    ),
    pytest.param(lambda: idat_image(zlib.compress(b"\x00" * 99)), Reason.BAD_STRUCTURE, id="idat-one-byte-short"),
    pytest.param(lambda: idat_image(zlib.compress(b"\x00" * 101)), Reason.BAD_STRUCTURE, id="idat-one-byte-long"),
    pytest.param(
        lambda: idat_image(zlib.compress(b"\x00" * 100) + b"PK\x03\x04hidden"), Reason.BAD_STRUCTURE, id="after-zlib"
    ),
    pytest.param(lambda: idat_image(b"\x78\x9c" + b"\xff" * 40), Reason.BAD_STRUCTURE, id="not-zlib"),
    pytest.param(
        lambda: idat_image(zlib.compress(b"\x00" * 10_000_000)), Reason.BAD_STRUCTURE, id="inflates-far-too-much"
    ),
    # Limits
    pytest.param(lambda: corpus.png_bomb(20_000, 20_000), Reason.TOO_MANY_PIXELS, id="bomb-header"),
    pytest.param(corpus.png_bomb, Reason.DIMENSIONS_TOO_LARGE, id="bomb-header-too-wide"),
    pytest.param(lambda: corpus.png_bomb(25_000, 2), Reason.DIMENSIONS_TOO_LARGE, id="too-wide"),
    pytest.param(
        lambda: with_chunk_before(corpus.png(), b"IDAT", text_chunk(300 * 1024)),
        Reason.TOO_MUCH_METADATA,
        id="metadata-over-budget",
    ),
    pytest.param(lambda: apng(101, (4, 4)), Reason.TOO_MANY_FRAMES, id="apng-too-many-frames"),
]


def flip(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def idat_image(stream: bytes) -> bytes:
    """A 9x10 greyscale PNG (10 rows of a filter byte and 9 pixels: 100 bytes raw) holding ``stream``."""
    return SIGNATURE + ihdr(9, 10, colour=0) + chunk(b"IDAT", stream) + IEND


def split_idat(data: bytes, between: bytes) -> bytes:
    """The image data split over two IDAT chunks with ``between`` in the middle."""
    offset, _ = next(item for item in chunks_of(data) if item[1] == b"IDAT")
    length = struct.unpack_from(">I", data, offset)[0]
    payload = data[offset + 8 : offset + 8 + length]
    half = length // 2
    return (
        data[:offset]
        + chunk(b"IDAT", payload[:half])
        + between
        + chunk(b"IDAT", payload[half:])
        + data[offset + 12 + length :]
    )


@pytest.mark.parametrize(("make", "reason"), HOSTILE)
def test_hostile_pngs_are_rejected_with_their_reason(make: object, reason: Reason) -> None:
    assert reason_of(make()) is reason  # type: ignore[operator]


def test_truncation_at_every_chunk_boundary_and_inside_every_chunk() -> None:
    # Given an APNG with metadata, cut at each chunk's start, inside its header, data and CRC
    data = with_chunk_before(apng(3), b"IDAT", text_chunk(100))
    cuts = sorted({cut for pos, _ in chunks_of(data) for cut in (pos, pos + 3, pos + 8, pos + 13)} | {len(data) - 2})
    for cut in cuts:
        if 8 <= cut < len(data):
            # When it is walked / Then it is truncated: never valid, never another reason
            assert reason_of(data[:cut]) is Reason.TRUNCATED, cut


# A length that lies is caught by the CRC, the end of the object, the chunk rules or the budget.
LYING_LENGTH_REASONS = {
    Reason.BAD_CHECKSUM,
    Reason.TRUNCATED,
    Reason.BAD_STRUCTURE,
    Reason.CORRUPT_HEADER,
    Reason.TOO_MUCH_METADATA,
}


def test_lying_lengths_are_never_accepted() -> None:
    # Given a PNG, every chunk's length changed by a few bytes up or down
    data = with_chunk_before(corpus.png(), b"IDAT", text_chunk(100))
    for offset, _ in chunks_of(data):
        length = struct.unpack_from(">I", data, offset)[0]
        for delta in (-4, -1, 1, 4, 1 << 20):
            if length + delta < 0:
                continue
            lying = data[:offset] + struct.pack(">I", length + delta) + data[offset + 4 :]
            # Then the walk fails (the CRC, the IEND rule or the end of the object catches it)
            failed = reason_of(lying)
            assert failed in LYING_LENGTH_REASONS, offset


# --------------------------------------------------------------------------- APNG


def apng_chunks(frames: list[tuple[int, int, int, int]], declared: int, canvas: tuple[int, int] = (8, 8)) -> bytes:
    """An APNG written by hand: the default image is the first frame; each frame (w, h, x, y)."""
    width, height = canvas
    out = SIGNATURE + ihdr(width, height, colour=0) + chunk(b"acTL", struct.pack(">II", declared, 0))
    sequence = 0
    for index, (w, h, x, y) in enumerate(frames):
        out += chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, w, h, x, y, 1, 10, 0, 0))
        sequence += 1
        stream = zlib.compress(b"\x00" * (h * (1 + w)))
        if index == 0:
            out += chunk(b"IDAT", stream)
        else:
            out += chunk(b"fdAT", struct.pack(">I", sequence) + stream)
            sequence += 1
    return out + IEND


def test_hand_made_apng_frames_are_counted_and_measured() -> None:
    data = apng_chunks([(8, 8, 0, 0), (4, 4, 4, 4), (2, 8, 6, 0)], declared=3)
    facts = walk(data)
    assert (facts.frames, facts.total_pixels) == (3, 64 + 16 + 16)
    with Image.open(io.BytesIO(data)) as image:
        assert getattr(image, "n_frames", 1) == 3


@pytest.mark.parametrize(
    ("frames", "declared", "reason"),
    [
        pytest.param([(8, 8, 0, 0), (4, 4, 0, 0)], 3, Reason.BAD_STRUCTURE, id="declares-more-than-found"),
        pytest.param([(8, 8, 0, 0), (4, 4, 0, 0), (4, 4, 0, 0)], 2, Reason.BAD_STRUCTURE, id="declares-fewer"),
        pytest.param([(8, 8, 0, 0), (4, 4, 5, 0)], 2, Reason.BAD_STRUCTURE, id="frame-beyond-canvas"),
        pytest.param([(8, 8, 0, 0), (4, 9, 0, 0)], 2, Reason.BAD_STRUCTURE, id="frame-taller-than-canvas"),
        pytest.param([(4, 4, 0, 0)], 1, Reason.BAD_STRUCTURE, id="default-frame-smaller-than-canvas"),
        pytest.param([(8, 8, 0, 0), (0, 4, 0, 0)], 2, Reason.BAD_STRUCTURE, id="empty-frame"),
    ],
)
def test_apng_frame_control_that_does_not_fit_is_rejected(
    frames: list[tuple[int, int, int, int]], declared: int, reason: Reason
) -> None:
    assert reason_of(apng_chunks(frames, declared)) is reason


def test_apng_total_pixels_over_all_frames_are_limited() -> None:
    # Given 10 full-canvas frames of 64 pixels, and a total-pixel limit of 600
    data = apng_chunks([(8, 8, 0, 0)] * 10, declared=10)
    limits = StructureLimits(20_000, 20_000, 50_000_000, 600, 100, 1024)
    assert reason_of(data, limits) is Reason.TOO_MANY_PIXELS
    assert walk(data).total_pixels == 640


def test_apng_frames_hidden_behind_large_metadata_are_still_counted() -> None:
    # Given 101 frames (limit 100) behind a 200 KB text chunk, past any header read
    frames = apng_chunks([(8, 8, 0, 0)] * 101, declared=101)
    data = with_chunk_before(frames, b"fcTL", text_chunk(200_000))
    assert reason_of(data) is Reason.TOO_MANY_FRAMES


def test_apng_sequence_numbers_out_of_order_are_rejected() -> None:
    data = bytearray(apng_chunks([(8, 8, 0, 0), (4, 4, 0, 0)], declared=2))
    offset = next(pos for pos, kind in chunks_of(bytes(data)) if kind == b"fdAT")
    data[offset + 8 : offset + 12] = struct.pack(">I", 7)
    length = struct.unpack_from(">I", data, offset)[0]
    data[offset + 8 + length : offset + 12 + length] = struct.pack(
        ">I", zlib.crc32(data[offset + 4 : offset + 8 + length])
    )
    assert reason_of(bytes(data)) is Reason.BAD_STRUCTURE


def test_fdat_before_the_image_data_is_rejected() -> None:
    data = SIGNATURE + ihdr(8, 8, colour=0) + chunk(b"acTL", struct.pack(">II", 1, 0))
    data += chunk(b"fdAT", struct.pack(">I", 0) + zlib.compress(b"\x00" * 72)) + IEND
    assert reason_of(data) is Reason.BAD_STRUCTURE


def test_raw_size_matches_adam7_pass_arithmetic() -> None:
    # 1x1 interlaced: only pass 1 has a pixel
    assert png.raw_size(1, 1, 24, interlaced=True) == 1 + 3
    assert png.raw_size(8, 8, 8, interlaced=True) == sum(
        rows * (1 + cols) for cols, rows in ((1, 1), (1, 1), (2, 1), (2, 2), (4, 2), (4, 4), (8, 4))
    )
    assert png.raw_size(9, 10, 8, interlaced=False) == 100
