"""The AVIF walker: top-level boxes tiling the object, every extent and sample inside an mdat."""

from __future__ import annotations

import struct

import pytest
from PIL import Image

from tests import formats_corpus as corpus
from tests.formats_corpus import GENEROUS, RecordingReader, box, rejection, top_boxes, walk_bytes
from upload_core.formats import avif
from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import ImageFacts, StructureLimits
from upload_core.formats.stream import chunked

pytestmark = pytest.mark.skipif(not corpus.avif_supported(), reason="Pillow without AVIF")


def walk(data: bytes, limits: StructureLimits = GENEROUS, size: int = 4096) -> ImageFacts:
    return walk_bytes(avif.walk, data, limits, size)


def reject(data: bytes, limits: StructureLimits = GENEROUS) -> StructureError:
    return rejection(avif.walk, data, limits)


@pytest.fixture(scope="module")
def still() -> bytes:
    return corpus.save(corpus.picture(64, 48), "AVIF", quality=60)


@pytest.fixture(scope="module")
def sequence() -> bytes:
    return corpus.animation("AVIF", 32, 24, 3, quality=60)


def test_still_image_is_its_primary_items_ispe(still: bytes) -> None:
    assert walk(still) == ImageFacts(64, 48, 1, 64 * 48, 0, animated=False)


def test_sequence_frames_are_the_samples_of_its_picture_track(sequence: bytes) -> None:
    assert walk(sequence) == ImageFacts(32, 24, 3, 3 * 32 * 24, 0, animated=True)


def test_alpha_track_does_not_count_twice() -> None:
    # Given a sequence with alpha (a colour track and an auxiliary alpha track of 3 samples each)
    frames = [corpus.picture(20, 20, seed, mode="RGBA") for seed in range(3)]
    data = corpus.save(frames[0], "AVIF", save_all=True, append_images=frames[1:], quality=50)
    assert data.count(b"trak") == 2
    # Then it is 3 frames
    assert walk(data).frames == 3


def test_icc_and_exif_are_metadata() -> None:
    # Given a still with a 5000-byte ICC profile and an Exif item
    exif = Image.Exif()
    exif[0x010E] = "x" * 500
    data = corpus.save(corpus.picture(20, 10), "AVIF", icc_profile=bytes(5000), exif=exif.tobytes())
    # Then both are charged (the Exif item with its header)
    used = walk(data).metadata_bytes
    assert 5000 + 500 < used < 5000 + 700


def test_mdat_to_the_end_and_64_bit_sizes_pass(still: bytes) -> None:
    assert walk(corpus._mdat_size_zero(still)).width == 64
    assert walk(corpus._mdat_largesize(still)).width == 64


def test_known_padding_counts_as_metadata_and_unknown_boxes_fail(still: bytes) -> None:
    # Given a 1000-byte free box and a 10-byte uuid box before mdat
    padded = corpus.avif_insert_before(still, b"mdat", box(b"free", bytes(1000)) + box(b"uuid", bytes(10)))
    # Then they are metadata
    assert walk(padded).metadata_bytes == 1010
    # And a box type ISO BMFF does not define is not skipped
    odd = corpus.avif_insert_before(still, b"mdat", box(b"zzzz", bytes(10)))
    assert reject(odd).reason is Reason.BAD_STRUCTURE


@pytest.mark.parametrize(
    "tail", [box(b"zzzz", b"1234"), corpus.zip_ending_with(b"mdat"), b"<svg onload=alert(1)>", b"\x00" * 7]
)
def test_what_follows_a_complete_image_and_is_no_box_is_trailing_data(still: bytes, tail: bytes) -> None:
    assert reject(still + tail).reason is Reason.TRAILING_DATA


def test_a_trailing_free_box_is_padding(still: bytes) -> None:
    assert walk(still + box(b"free", bytes(100))).metadata_bytes == 100


def test_an_extent_outside_every_mdat_fails(still: bytes) -> None:
    # Given the item's extent moved into a free box placed before mdat
    padded = corpus.avif_insert_before(still, b"mdat", box(b"free", bytes(2000)))
    free_at = next(offset for offset, kind, _, _ in top_boxes(padded) if kind == b"free")
    start, _ = corpus._find(padded, [b"meta", b"iloc"])
    # iloc v0, 4-byte offsets and lengths, one item with one extent: offset at +14
    moved = padded[: start + 14] + struct.pack(">I", free_at + 8) + padded[start + 18 :]
    # Then the extent lies in no mdat, and the mdat's bytes belong to nothing
    assert reject(moved).reason is Reason.BAD_STRUCTURE


def test_mdat_bytes_no_item_refers_to_fail(still: bytes) -> None:
    # Given 16 extra bytes at the end of mdat (its size grown to hold them)
    grown = corpus.avif_patch_box_size(still, b"mdat", 16) + bytes(16)
    error = reject(grown)
    assert error.reason is Reason.BAD_STRUCTURE
    assert "16 bytes of mdat" in error.detail


def test_meta_is_bounded(still: bytes) -> None:
    assert reject(corpus._meta_padded(still, avif.MAX_META_BYTES)).reason is Reason.TOO_MUCH_METADATA


def test_sample_count_over_the_frame_limit_fails_before_the_frames_are_counted(sequence: bytes) -> None:
    limits = StructureLimits(1000, 1000, 10**6, 10**7, 1000, 0)
    assert reject(corpus.avif_set_samples(sequence, 1001), limits).reason is Reason.TOO_MANY_FRAMES


def test_every_ispe_is_held_to_the_limits(still: bytes) -> None:
    assert reject(corpus.avif_set_ispe(still, 30_001, 1)).reason is Reason.DIMENSIONS_TOO_LARGE
    assert reject(corpus.avif_set_ispe(still, 0, 10)).reason is Reason.CORRUPT_HEADER


def test_any_chunking_gives_the_same_facts(sequence: bytes) -> None:
    expected = walk(sequence, size=len(sequence))
    for size in range(1, 150):
        assert walk(sequence, size=size) == expected


def grow_item(still: bytes, extra: int) -> bytes:
    """The still's one item grown by ``extra`` bytes at the end of its mdat (iloc v0, 4-byte fields:
    the extent's length is at +18 of iloc's payload)."""
    start, _ = corpus._find(still, [b"meta", b"iloc"])
    (length,) = struct.unpack(">I", still[start + 18 : start + 22])
    patched = still[: start + 18] + struct.pack(">I", length + extra) + still[start + 22 :]
    return corpus.avif_patch_box_size(patched, b"mdat", extra) + bytes(extra)


def test_mdat_never_goes_through_read(still: bytes) -> None:
    # Given a still whose item data is 8 MiB
    data = grow_item(still, 8 << 20)
    reader = RecordingReader(chunked(data, 65536))
    # When it is walked
    facts = avif.walk(reader, GENEROUS)
    # Then it passes, and the largest read was the meta box
    meta_size = next(size for _, kind, _, size in top_boxes(still) if kind == b"meta")
    assert facts.width == 64
    assert reader.largest <= meta_size


def test_the_first_box_must_be_ftyp_with_an_avif_brand(still: bytes) -> None:
    assert reject(box(b"free", b"") + still).reason is Reason.CORRUPT_HEADER
    heic = box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic")
    assert reject(heic + still[32:]).reason is Reason.CORRUPT_HEADER
