"""The GIF walker: blocks and sub-blocks to the trailer, frames counted and measured, metadata charged."""

from __future__ import annotations

import struct

import pytest

from tests import formats_corpus as corpus
from tests.formats_corpus import (
    GENEROUS,
    NETSCAPE_LOOP,
    RecordingReader,
    gif_comment,
    gif_frame,
    gif_screen,
    gif_sub_blocks,
    rejection,
    walk_bytes,
)
from upload_core.formats import gif
from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import ImageFacts, StructureLimits
from upload_core.formats.stream import chunked


def walk(data: bytes, limits: StructureLimits = GENEROUS, size: int = 4096) -> ImageFacts:
    return walk_bytes(gif.walk, data, limits, size)


def reject(data: bytes, limits: StructureLimits = GENEROUS) -> StructureError:
    return rejection(gif.walk, data, limits)


def limits(**changes: int) -> StructureLimits:
    values = {name: getattr(GENEROUS, name) for name in StructureLimits.__dataclass_fields__}
    values.update(changes)
    return StructureLimits(**values)


def test_still_gif_is_one_frame_without_metadata() -> None:
    # Given a GIF written by Pillow
    data = corpus.save(corpus.picture(33, 21).convert("P"), "GIF")
    # When it is walked
    facts = walk(data)
    # Then it is one frame of its screen, no metadata, not animated
    assert facts == ImageFacts(width=33, height=21, frames=1, total_pixels=33 * 21, metadata_bytes=0, animated=False)


def test_comments_and_foreign_applications_are_metadata_but_the_loop_count_is_not() -> None:
    # Given an animation with a loop extension, a 1000-byte comment and a 300-byte XMP packet
    xmp = b"\x21\xff\x0bXMP DataXMP" + gif_sub_blocks(b"x" * 300)
    data = gif_screen(20, 20) + NETSCAPE_LOOP + gif_comment(b"c" * 1000) + xmp + gif_frame(0, 0, 20, 20) * 2 + b";"
    # When it is walked
    facts = walk(data)
    # Then the comment's bytes and the XMP packet (with its identifier) are charged, the loop count is not
    assert facts.metadata_bytes == 1000 + 11 + 300
    assert facts.frames == 2 and facts.animated


def test_metadata_budget_is_exact() -> None:
    # Given a GIF with a 5000-byte comment
    data = gif_screen(4, 4) + gif_comment(b"c" * 5000) + gif_frame(0, 0, 4, 4) + b";"
    # Then a budget of 5000 passes and one of 4999 does not
    assert walk(data, limits(max_metadata_bytes=5000)).metadata_bytes == 5000
    assert reject(data, limits(max_metadata_bytes=4999)).reason is Reason.TOO_MUCH_METADATA


def test_frame_count_is_exact_at_the_limit() -> None:
    # Given a GIF of 8 frames
    data = gif_screen(4, 4) + gif_frame(0, 0, 4, 4) * 8 + b";"
    # Then 8 frames allowed pass, 7 do not
    assert walk(data, limits(max_frames=8)).frames == 8
    assert reject(data, limits(max_frames=7)).reason is Reason.TOO_MANY_FRAMES


def test_frame_beyond_the_screen_is_counted_with_its_own_size_and_grows_the_canvas() -> None:
    # Given a 10x10 screen and a 20x30 frame placed at (5, 5)
    data = gif_screen(10, 10) + gif_frame(5, 5, 20, 30) + b";"
    # When it is walked
    facts = walk(data)
    # Then the frame counts its own pixels, and the canvas is what a decoder would allocate
    assert (facts.width, facts.height, facts.total_pixels) == (25, 35, 600)


def test_frame_reaching_past_the_width_limit_fails_even_when_small() -> None:
    # Given a 10x10 frame at x = 29,995 (its extent is 30,005 wide)
    data = gif_screen(10, 10) + gif_frame(29_995, 0, 10, 10) + b";"
    # Then the extent fails the width limit
    assert reject(data).reason is Reason.DIMENSIONS_TOO_LARGE


def test_total_pixels_of_an_animation_are_bounded() -> None:
    # Given 5 frames of 100x100 (50,000 pixels in all)
    data = gif_screen(100, 100) + gif_frame(0, 0, 100, 100) * 5 + b";"
    # Then 50,000 total pixels pass and 49,999 do not
    assert walk(data, limits(max_total_pixels=50_000)).total_pixels == 50_000
    assert reject(data, limits(max_total_pixels=49_999)).reason is Reason.TOO_MANY_PIXELS


@pytest.mark.parametrize("code_size", [2, 3, 8])
def test_lzw_code_sizes_of_the_spec_pass(code_size: int) -> None:
    assert walk(gif_screen(4, 4) + gif_frame(0, 0, 4, 4, code_size=code_size) + b";").frames == 1


@pytest.mark.parametrize("code_size", [0, 1, 9, 12, 255])
def test_lzw_code_sizes_outside_the_spec_fail(code_size: int) -> None:
    data = gif_screen(4, 4) + gif_frame(0, 0, 4, 4, code_size=code_size) + b";"
    assert reject(data).reason is Reason.BAD_STRUCTURE


def test_local_colour_table_is_stepped_over() -> None:
    # Given a frame with a 256-entry local colour table
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 4, 4, 0x87) + bytes(768) + b"\x08" + gif_sub_blocks(b"\x00\x01")
    # Then the walk reads the table's bytes as a table, not as blocks
    assert walk(gif_screen(4, 4) + frame + b";").frames == 1


def test_any_chunking_gives_the_same_facts() -> None:
    # Given an animated GIF with long image data and a comment
    data = corpus.animation("GIF", 40, 30, 3)
    data = data[:-1] + gif_comment(b"z" * 700) + b";"
    expected = walk(data, size=len(data))
    # When it arrives in chunks of every size from 1 to 300 bytes, Then the facts do not change
    for size in range(1, 301):
        assert walk(data, size=size) == expected


@pytest.mark.parametrize("tail", [b"\x00", b";", b"GIF89a", b"\x00" * 4096])
def test_anything_after_the_trailer_is_trailing_data(tail: bytes) -> None:
    data = gif_screen(4, 4) + gif_frame(0, 0, 4, 4) + b";"
    error = reject(data + tail)
    assert error.reason is Reason.TRAILING_DATA
    assert str(len(data)) in error.detail


def test_bulk_data_never_goes_through_read() -> None:
    # Given a frame with 1 MiB of image data and a 200 KiB comment
    data = (
        gif_screen(500, 500) + gif_comment(b"c" * 200_000) + gif_frame(0, 0, 500, 500, data=b"\x11" * 1_048_576) + b";"
    )
    reader = RecordingReader(chunked(data, 65536))
    # When it is walked
    gif.walk(reader, GENEROUS)
    # Then no single read was larger than a colour table
    assert reader.largest <= 768


def test_a_gif_without_a_frame_fails() -> None:
    assert reject(gif_screen(4, 4) + NETSCAPE_LOOP + b";").reason is Reason.BAD_STRUCTURE


def test_not_a_gif_signature_is_a_corrupt_header() -> None:
    assert reject(b"GIF88a" + bytes(7) + b";").reason is Reason.CORRUPT_HEADER
