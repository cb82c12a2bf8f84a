"""ChunkReader: a forward-only reader over chunks, whatever the chunk boundaries."""

from __future__ import annotations

import re

import pytest

from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.stream import MAX_READ, ChunkReader, chunked

DATA = bytes(range(256)) * 40


@pytest.mark.parametrize("size", [1, 3, 7, 256, 4096, len(DATA)])
def test_reads_peeks_and_skips_see_the_same_bytes_whatever_the_chunking(size: int) -> None:
    # Given the same bytes cut into chunks of various sizes
    reader = ChunkReader(chunked(DATA, size))
    seen: list[bytes] = []
    # When they are read, peeked and skipped in turn
    assert reader.peek(10) == DATA[:10]
    assert reader.read(10) == DATA[:10]
    reader.skip(1000, lambda piece: seen.append(bytes(piece)))
    assert reader.position == 1010
    assert reader.read(300) == DATA[1010:1310]
    reader.skip(len(DATA) - 1310)
    # Then every byte came in order, once, and the end is the end
    assert b"".join(seen) == DATA[10:1010]
    assert reader.at_end()
    reader.expect_end()
    assert reader.read(0) == b""


def test_reading_past_the_end_is_truncated_and_skipping_too() -> None:
    reader = ChunkReader(chunked(b"abcdef", 4))
    with pytest.raises(StructureError) as error:
        reader.read(7)
    assert error.value.reason is Reason.TRUNCATED
    reader = ChunkReader(chunked(b"abcdef", 4))
    with pytest.raises(StructureError) as error:
        reader.skip(10)
    assert error.value.reason is Reason.TRUNCATED


def test_bytes_left_at_the_end_are_trailing_data() -> None:
    reader = ChunkReader(chunked(b"abcdef", 2))
    reader.read(5)
    with pytest.raises(StructureError) as error:
        reader.expect_end()
    assert error.value.reason is Reason.TRAILING_DATA


def test_peek_near_the_end_returns_what_there_is_and_consumes_nothing() -> None:
    reader = ChunkReader(chunked(b"abc", 1))
    assert reader.peek(10) == b"abc"
    assert reader.read(3) == b"abc"
    assert reader.peek(1) == b""


def test_empty_chunks_are_passed_over() -> None:
    reader = ChunkReader([b"", b"ab", b"", b"", b"c", b""])
    assert reader.read(3) == b"abc"
    assert reader.at_end()


def test_buffered_consume_and_search_work_on_the_current_chunk() -> None:
    # Given two chunks, the second holding a marker
    reader = ChunkReader([b"xxxx", b"yy\xff\xd9zz"])
    pattern = re.compile(rb"\xff[^\x00]")
    # When the first chunk is searched, nothing is found; then the second is
    assert reader.search(pattern) == -1
    reader.consume(len(reader.buffered()))
    assert reader.search(pattern) == 2
    reader.consume(2)
    # Then the reader stands on the marker
    assert reader.read(2) == b"\xff\xd9"
    assert reader.position == 8
    with pytest.raises(ValueError, match="beyond"):
        reader.consume(5)


def test_oversized_reads_are_refused_so_bulk_data_goes_through_skip() -> None:
    reader = ChunkReader([b"a"])
    with pytest.raises(ValueError, match="MAX_READ"):
        reader.read(MAX_READ + 1)
    with pytest.raises(ValueError, match="MAX_READ"):
        reader.peek(MAX_READ + 1)


def test_the_source_is_pulled_lazily() -> None:
    # Given a source that counts what is pulled
    pulled: list[int] = []

    def source() -> object:
        for index in range(100):
            pulled.append(index)
            yield b"x" * 10

    reader = ChunkReader(source())  # type: ignore[arg-type]
    # When 15 bytes are read / Then only two chunks were pulled
    reader.read(15)
    assert pulled == [0, 1]
