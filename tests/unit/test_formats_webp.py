"""The WebP walker: the RIFF container to its last byte, bitstreams measured, frames in the canvas."""

from __future__ import annotations

import struct

import pytest

from tests import formats_corpus as corpus
from tests.formats_corpus import (
    GENEROUS,
    RecordingReader,
    anmf,
    rejection,
    riff,
    riff_chunk,
    vp8l_bitstream,
    vp8x,
    walk_bytes,
)
from upload_core.formats import webp
from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import ImageFacts, StructureLimits
from upload_core.formats.stream import chunked

ANIM = riff_chunk(b"ANIM", bytes(6))


def walk(data: bytes, limits: StructureLimits = GENEROUS, size: int = 4096) -> ImageFacts:
    return walk_bytes(webp.walk, data, limits, size)


def reject(data: bytes, limits: StructureLimits = GENEROUS) -> StructureError:
    return rejection(webp.walk, data, limits)


def test_lossy_lossless_and_alpha_files_are_measured() -> None:
    # Given Pillow's lossy, lossless and alpha WebP files
    lossy = corpus.save(corpus.picture(70, 50), "WEBP", quality=80)
    lossless = corpus.save(corpus.picture(30, 20), "WEBP", lossless=True)
    alpha = corpus.save(corpus.picture(40, 30, mode="RGBA"), "WEBP", quality=80)
    # When they are walked, Then each is one frame of its size
    assert walk(lossy) == ImageFacts(70, 50, 1, 3500, 0, animated=False)
    assert walk(lossless) == ImageFacts(30, 20, 1, 600, 0, animated=False)
    assert b"ALPH" in alpha and walk(alpha) == ImageFacts(40, 30, 1, 1200, 0, animated=False)


def test_animation_frames_are_counted_and_measured() -> None:
    # Given an animation of three frames of different sizes inside a 40x40 canvas
    data = corpus.animated_webp_by_hand(40, 40, [(0, 0, 40, 40), (10, 10, 20, 20), (38, 38, 2, 2)])
    # When it is walked
    facts = walk(data)
    # Then every frame counts its own pixels
    assert (facts.frames, facts.total_pixels, facts.animated) == (3, 1600 + 400 + 4, True)


def test_metadata_chunks_are_charged_by_their_payload() -> None:
    # Given a file with a 1000-byte ICC profile, 301 bytes of EXIF and an unknown 7-byte chunk
    data = riff(
        vp8x(0x20 | 0x08, 4, 4)
        + riff_chunk(b"ICCP", bytes(1000))
        + vp8l_bitstream(4, 4)
        + riff_chunk(b"EXIF", bytes(301))
        + riff_chunk(b"ABCD", bytes(7))
    )
    # Then the payloads are the metadata, padding excluded
    assert walk(data).metadata_bytes == 1000 + 301 + 7
    assert reject(data, StructureLimits(30_000, 30_000, 10**8, 10**9, 10, 1307)).reason is Reason.TOO_MUCH_METADATA


def test_an_odd_chunk_without_its_padding_byte_does_not_tile() -> None:
    # Given an extended file whose last chunk has an odd size and no pad byte
    body = vp8x(0, 4, 4) + vp8l_bitstream(4, 4) + b"ABCD" + struct.pack("<I", 3) + b"xyz"
    data = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
    # Then the RIFF size is odd: the container cannot be exact
    assert reject(data).reason is Reason.BAD_STRUCTURE


def test_iccp_must_follow_vp8x() -> None:
    data = riff(vp8x(0x20, 4, 4) + vp8l_bitstream(4, 4) + riff_chunk(b"ICCP", bytes(10)))
    assert reject(data).reason is Reason.BAD_STRUCTURE


def test_unknown_chunks_in_a_frame_may_follow_its_bitstream_only() -> None:
    # Given a frame with an unknown chunk after its bitstream, and one with it before
    after = anmf(0, 0, 4, 4, vp8l_bitstream(4, 4) + riff_chunk(b"ABCD", bytes(5)))
    before = anmf(0, 0, 4, 4, riff_chunk(b"ABCD", bytes(5)) + vp8l_bitstream(4, 4))
    # Then the first passes (the unknown chunk is metadata) and the second fails
    assert walk(riff(vp8x(2, 4, 4) + ANIM + after)).metadata_bytes == 5
    assert reject(riff(vp8x(2, 4, 4) + ANIM + before)).reason is Reason.BAD_STRUCTURE


def test_frames_on_the_canvas_edge_pass_and_one_pixel_over_fails() -> None:
    inside = corpus.animated_webp_by_hand(20, 20, [(0, 0, 20, 20), (16, 16, 4, 4)])
    over = corpus.animated_webp_by_hand(20, 20, [(0, 0, 20, 20), (16, 16, 5, 4)])
    assert walk(inside).frames == 2
    assert reject(over).reason is Reason.BAD_STRUCTURE


def test_frame_count_limit_is_exact() -> None:
    data = corpus.animated_webp_by_hand(4, 4, [(0, 0, 4, 4)] * 6)
    assert walk(data, StructureLimits(100, 100, 10_000, 10_000, 6, 0)).frames == 6
    assert reject(data, StructureLimits(100, 100, 10_000, 10_000, 5, 0)).reason is Reason.TOO_MANY_FRAMES


@pytest.mark.parametrize("tail", [b"\x00", b"\x00\x00", b"RIFF", corpus.zip_ending_with(b"VP8L")])
def test_bytes_after_the_riff_are_trailing_data(tail: bytes) -> None:
    data = corpus.save(corpus.picture(8, 8), "WEBP", lossless=True)
    error = reject(data + tail)
    assert error.reason is Reason.TRAILING_DATA
    assert str(len(data)) in error.detail


def test_any_chunking_gives_the_same_facts() -> None:
    data = corpus.animation("WEBP", 24, 16, 3)
    expected = walk(data, size=len(data))
    for size in range(1, 200):
        assert walk(data, size=size) == expected


def test_bitstreams_never_go_through_read() -> None:
    # Given a 3 MiB VP8L bitstream (never decoded) and 500 KiB of EXIF
    big = riff_chunk(b"VP8L", b"\x2f" + struct.pack("<I", 3 | 3 << 14) + bytes(3 << 20))
    data = riff(vp8x(0x08, 4, 4) + big + riff_chunk(b"EXIF", bytes(500_000)))
    reader = RecordingReader(chunked(data, 65536))
    # When it is walked
    facts = webp.walk(reader, GENEROUS)
    # Then no read was larger than a frame header
    assert facts.metadata_bytes == 500_000
    assert reader.largest <= 16


def test_the_first_chunk_must_be_an_image_or_vp8x() -> None:
    assert reject(riff(riff_chunk(b"EXIF", bytes(4)))).reason is Reason.CORRUPT_HEADER
    assert reject(b"RIFF" + struct.pack("<I", 4) + b"WAVE").reason is Reason.CORRUPT_HEADER
