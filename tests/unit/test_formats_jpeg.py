"""The JPEG walker: segments, scans to EOI, the metadata budget and the camera-trailer policy."""

from __future__ import annotations

import dataclasses
import io
import random
import struct
import zipfile

import pytest
from PIL import Image

from tests import big_images
from tests import image_corpus as corpus
from upload_core.formats import jpeg
from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import ImageFacts, StructureLimits
from upload_core.formats.stream import ChunkReader, chunked

LIMITS = StructureLimits(
    max_width=20_000,
    max_height=20_000,
    max_pixels=50_000_000,
    max_total_pixels=100_000_000,
    max_frames=100,
    max_metadata_bytes=512 * 1024,
)
WITH_TRAILERS = dataclasses.replace(LIMITS, allow_indexed_jpeg_trailers=True)


def walk(data: bytes, limits: StructureLimits = LIMITS, chunk: int = 4096) -> ImageFacts:
    return jpeg.walk(ChunkReader(chunked(data, chunk)), limits)


def reason_of(data: bytes, limits: StructureLimits = LIMITS) -> Reason:
    with pytest.raises(StructureError) as error:
        walk(data, limits)
    return error.value.reason


def picture(width: int = 96, height: int = 64, seed: int = 1) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))


def save(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def segments(data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of every marker segment before the first scan's data, and SOS."""
    found, pos = [], 2
    while True:
        marker = data[pos + 1]
        found.append((pos, marker))
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if marker == 0xDA:
            return found
        pos += 2 + length


def segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def after_soi(data: bytes, *inserted: bytes) -> bytes:
    return data[:2] + b"".join(inserted) + data[2:]


def exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """An APP1 EXIF segment whose IFD1 holds a JPEG thumbnail (as cameras write it)."""
    ifd1 = 8 + 2 + 4
    data_at = ifd1 + 2 + 2 * 12 + 4
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<HI", 0, ifd1)
    tiff += struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 0x0201, 4, 1, data_at) + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))
    tiff += struct.pack("<I", 0) + thumbnail
    return segment(0xE1, b"Exif\x00\x00" + tiff)


def mpo(count: int = 2) -> bytes:
    frames = [picture(80, 60, seed) for seed in range(count)]
    return save(frames[0], "MPO", save_all=True, append_images=frames[1:])


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.html", "<script>alert(1)</script>")
    return buffer.getvalue()


MP4 = struct.pack(">I4s4sI", 24, b"ftyp", b"isom", 0x200) + b"isomiso2" + struct.pack(">I4s", 16, b"mdat") + b"\x00" * 8


# --------------------------------------------------------------------------- valid files

VALID = [
    pytest.param(lambda: save(picture()), 96, 64, id="baseline"),
    pytest.param(lambda: save(picture(), progressive=True), 96, 64, id="progressive"),
    pytest.param(lambda: save(picture().convert("CMYK")), 96, 64, id="cmyk"),
    pytest.param(lambda: save(picture().convert("L")), 96, 64, id="grey"),
    pytest.param(lambda: save(picture(), restart_marker_blocks=1), 96, 64, id="restart-markers"),
    pytest.param(lambda: save(picture(99, 61), restart_marker_blocks=3), 99, 61, id="restart-odd-size"),
    pytest.param(lambda: save(picture(99, 61), restart_marker_rows=1, subsampling=1), 99, 61, id="restart-rows-422"),
    pytest.param(
        lambda: save(picture(99, 61), restart_marker_blocks=2, progressive=True), 99, 61, id="restart-progressive"
    ),
    pytest.param(lambda: save(picture(57, 33).convert("CMYK"), restart_marker_blocks=5), 57, 33, id="restart-cmyk"),
    pytest.param(lambda: save(picture(57, 33).convert("L"), restart_marker_rows=2), 57, 33, id="restart-grey"),
    pytest.param(lambda: save(picture(), subsampling=0, quality=100), 96, 64, id="quality-100-444"),
    pytest.param(lambda: corpus.jpeg(40, 30, icc_profile_bytes=200_000), 40, 30, id="large-icc"),
    pytest.param(lambda: save(picture(), comment=b"x" * 60_000), 96, 64, id="comment"),
    pytest.param(
        lambda: after_soi(save(picture()), exif_with_thumbnail(save(picture(16, 12)))), 96, 64, id="exif-thumb"
    ),
    pytest.param(
        lambda: after_soi(save(picture()), exif_with_thumbnail(save(picture(16, 12)) + b"\xff\xd9" * 3)),
        96,
        64,
        id="exif-thumb-with-extra-eoi",
    ),
    pytest.param(lambda: fill_bytes_before_markers(save(picture())), 96, 64, id="fill-bytes"),
    pytest.param(lambda: save(Image.new("RGB", (1, 1))), 1, 1, id="one-pixel"),
]


def fill_bytes_before_markers(data: bytes) -> bytes:
    """FF fill bytes before every marker up to the scan (allowed by the standard)."""
    out, last = bytearray(data[:2]), 2
    for offset, _ in segments(data):
        out += data[last:offset] + b"\xff\xff\xff"
        last = offset
    return bytes(out + data[last:])


@pytest.mark.parametrize(("make", "width", "height"), VALID)
@pytest.mark.parametrize("chunk_size", [1, 7, 65536])
def test_valid_jpegs_pass_with_their_dimensions(make: object, width: int, height: int, chunk_size: int) -> None:
    # Given a valid JPEG (Pillow decodes it), cut into chunks of any size
    data = make()  # type: ignore[operator]
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.size == (width, height)
    # When it is walked / Then it passes with its dimensions and one frame
    facts = walk(data, chunk=chunk_size)
    assert (facts.width, facts.height, facts.frames) == (width, height, 1)


def test_app_and_comment_segments_count_as_metadata() -> None:
    plain = walk(save(picture())).metadata_bytes
    commented = walk(save(picture(), comment=b"x" * 1000)).metadata_bytes
    assert commented - plain == 1000 + 4


def test_scan_data_is_found_across_chunk_boundaries_at_every_offset() -> None:
    # Given a JPEG full of stuffed bytes and restart markers, cut at every possible chunk size
    data = save(picture(48, 32), restart_marker_blocks=1, quality=100)
    for size in range(1, 64):
        assert walk(data, chunk=size).width == 48


# --------------------------------------------------------------------------- hostile files

BASE = save(picture())
HOSTILE = [
    pytest.param(lambda: BASE + zip_bytes(), Reason.TRAILING_DATA, id="appended-zip"),
    pytest.param(lambda: BASE + zip_bytes() + b"\xff\xd9", Reason.TRAILING_DATA, id="zip-ending-with-fake-eoi"),
    pytest.param(lambda: BASE + b"<html><script>x</script></html>", Reason.TRAILING_DATA, id="markup-after-eoi"),
    pytest.param(lambda: BASE + b"\x00" * 16, Reason.TRAILING_DATA, id="zeros-after-eoi"),
    pytest.param(lambda: BASE + b"\xff\xd9", Reason.TRAILING_DATA, id="second-eoi"),
    pytest.param(lambda: BASE + BASE, Reason.TRAILING_DATA, id="second-jpeg"),
    pytest.param(lambda: BASE + MP4, Reason.TRAILING_DATA, id="motion-photo-video"),
    pytest.param(lambda: b"\xff\xd8" + BASE[2:-2], Reason.TRUNCATED, id="no-eoi"),
    pytest.param(lambda: BASE[:2] + BASE[segments(BASE)[-1][0] :], Reason.BAD_STRUCTURE, id="no-frame-header"),
    pytest.param(lambda: sof_twice(BASE), Reason.BAD_STRUCTURE, id="two-frame-headers"),
    pytest.param(lambda: b"\xff\xd8\xff\xd9", Reason.BAD_STRUCTURE, id="eoi-before-scan"),
    pytest.param(lambda: after_soi(BASE, b"\xff\xd0"), Reason.BAD_STRUCTURE, id="restart-outside-scan"),
    pytest.param(lambda: after_soi(BASE, b"\xff\x00"), Reason.BAD_STRUCTURE, id="stuffing-outside-scan"),
    pytest.param(lambda: after_soi(BASE, b"\xff\xd8"), Reason.BAD_STRUCTURE, id="soi-again"),
    pytest.param(lambda: after_soi(BASE, b"\x00\x00"), Reason.BAD_STRUCTURE, id="garbage-between-segments"),
    pytest.param(lambda: after_soi(BASE, segment(0xF7, b"xx")), Reason.BAD_STRUCTURE, id="unknown-marker"),
    pytest.param(lambda: after_soi(BASE, b"\xff\xfe\x00\x01"), Reason.BAD_STRUCTURE, id="length-below-two"),
    pytest.param(lambda: after_soi(BASE, segment(0xDD, b"\x00")), Reason.BAD_STRUCTURE, id="dri-wrong-length"),
    pytest.param(lambda: with_dimensions(BASE, 0, 64), Reason.CORRUPT_HEADER, id="zero-width"),
    pytest.param(lambda: with_dimensions(BASE, 30_000, 64), Reason.DIMENSIONS_TOO_LARGE, id="too-wide"),
    pytest.param(lambda: with_dimensions(BASE, 10_000, 10_000), Reason.TOO_MANY_PIXELS, id="too-many-pixels"),
    pytest.param(
        lambda: after_soi(BASE, *[segment(0xE4, b"x" * 65_000)] * 9), Reason.TOO_MUCH_METADATA, id="metadata-budget"
    ),
    pytest.param(lambda: b"\xff\xd8\xff", Reason.TRUNCATED, id="cut-after-soi"),
    pytest.param(lambda: b"\x00\xd8\xff\xe0", Reason.CORRUPT_HEADER, id="not-soi"),
]


def sof_twice(data: bytes) -> bytes:
    offset = next(pos for pos, marker in segments(data) if marker == 0xC0)
    length = struct.unpack_from(">H", data, offset + 2)[0]
    sof = data[offset : offset + 2 + length]
    return data[: offset + 2 + length] + sof + data[offset + 2 + length :]


def with_dimensions(data: bytes, width: int, height: int) -> bytes:
    offset = next(pos for pos, marker in segments(data) if marker == 0xC0)
    return data[: offset + 5] + struct.pack(">HH", height, width) + data[offset + 9 :]


@pytest.mark.parametrize(("make", "reason"), HOSTILE)
def test_hostile_jpegs_are_rejected_with_their_reason(make: object, reason: Reason) -> None:
    assert reason_of(make()) is reason  # type: ignore[operator]


@pytest.mark.parametrize("make", [lambda: BASE, lambda: save(picture(), progressive=True)], ids=["base", "prog"])
def test_truncation_at_every_segment_boundary_and_inside_the_scans(make: object) -> None:
    # Given a JPEG cut at each segment's start, inside its header, and at points in the scan data
    data = make()  # type: ignore[operator]
    cuts = {cut for pos, _ in segments(data) for cut in (pos, pos + 1, pos + 3, pos + 5)}
    cuts |= set(range(segments(data)[-1][0], len(data), max(1, len(data) // 50))) | {len(data) - 1}
    for cut in sorted(cuts):
        # When it is walked / Then it is truncated (never valid)
        assert reason_of(data[:cut]) is Reason.TRUNCATED, cut


def test_lying_segment_lengths_are_never_accepted() -> None:
    data = save(picture(), comment=b"hello")
    for offset, _ in segments(data):
        length = struct.unpack_from(">H", data, offset + 2)[0]
        for delta in (-3, -1, 1, 3, 1000):
            if not 0 <= length + delta <= 0xFFFF:
                continue
            lying = data[: offset + 2] + struct.pack(">H", length + delta) + data[offset + 4 :]
            with pytest.raises(StructureError):
                walk(lying)


def cut_scan_with_eoi_pasted(data: bytes, keep: float) -> bytes:
    """The last scan's entropy-coded data cut at ``keep`` of its length, then a well-formed EOI."""
    scan = data.rindex(b"\xff\xda")
    cut = scan + int((len(data) - scan) * keep)
    if data[cut - 1] == 0xFF:
        cut -= 1
    return data[:cut] + b"\xff\xd9"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"restart_marker_blocks": 1}, id="every-block"),
        pytest.param({"restart_marker_rows": 1}, id="every-row"),
        pytest.param({"restart_marker_blocks": 2, "progressive": True}, id="progressive"),
    ],
)
def test_scan_cut_short_with_eoi_pasted_is_caught_by_its_restart_markers(
    keep: float, options: dict[str, object]
) -> None:
    # Given a JPEG with restart markers whose last scan is cut and given a well-formed ending
    data = cut_scan_with_eoi_pasted(save(picture(160, 512), **options), keep)
    # When it is walked / Then the missing restart intervals give it away (a cut inside the last
    # interval, or in a JPEG without restart markers, keeps the structure: docs/validation.md)
    assert reason_of(data) is Reason.BAD_STRUCTURE


def test_scan_naming_a_component_the_frame_lacks_is_rejected() -> None:
    data = bytearray(BASE)
    sos = next(pos for pos, marker in segments(BASE) if marker == 0xDA)
    data[sos + 5] = 9
    assert reason_of(bytes(data)) is Reason.BAD_STRUCTURE


def test_big_jpeg_with_thousands_of_restart_intervals_passes() -> None:
    image = big_images.big_jpeg(3 << 20, width=1024)
    facts = jpeg.walk(ChunkReader(image.chunks()), LIMITS)
    assert (facts.width, facts.height) == (image.width, image.height)


# --------------------------------------------------------------------------- camera trailers (MPO)


def test_mpo_is_rejected_by_default_as_trailing_data() -> None:
    assert reason_of(mpo()) is Reason.TRAILING_DATA


@pytest.mark.parametrize("count", [2, 3])
def test_mpo_passes_when_indexed_trailers_are_allowed_with_every_image_counted(count: int) -> None:
    data = mpo(count)
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.n_frames) == ("MPO", count)
    facts = walk(data, WITH_TRAILERS, chunk=1000)
    assert (facts.width, facts.height, facts.frames, facts.total_pixels) == (80, 60, count, 80 * 60 * count)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda: mpo() + b"\x00", Reason.TRAILING_DATA, id="byte-after-indexed-images"),
        pytest.param(lambda: mpo() + zip_bytes(), Reason.TRAILING_DATA, id="zip-after-indexed-images"),
        pytest.param(lambda: mpo() + MP4, Reason.TRAILING_DATA, id="video-after-indexed-images"),
        pytest.param(lambda: BASE + BASE, Reason.TRAILING_DATA, id="second-jpeg-without-index"),
        pytest.param(lambda: BASE + MP4, Reason.TRAILING_DATA, id="motion-photo"),
        pytest.param(lambda: swap_second_image(mpo(), zip_bytes()), Reason.BAD_STRUCTURE, id="index-points-at-zip"),
        pytest.param(lambda: shift_second_offset(mpo()), Reason.TRAILING_DATA, id="index-offset-lies"),
        pytest.param(lambda: corrupt_second_image(mpo()), Reason.BAD_STRUCTURE, id="second-image-broken"),
        pytest.param(lambda: mpo()[:-10], Reason.TRUNCATED, id="second-image-cut"),
    ],
)
def test_indexed_trailers_must_be_exactly_the_indexed_jpegs(make: object, reason: Reason) -> None:
    assert reason_of(make(), WITH_TRAILERS) is reason  # type: ignore[operator]


def first_eoi(data: bytes) -> int:
    reader = ChunkReader([data])
    walker = jpeg._Walk(reader, LIMITS)
    walker.image(first=True)
    return reader.position


def swap_second_image(data: bytes, replacement: bytes) -> bytes:
    end = first_eoi(data)
    return data[:end] + replacement[: len(data) - end].ljust(len(data) - end, b"\x00")


def shift_second_offset(data: bytes) -> bytes:
    """The MP index's second entry points 2 bytes past where the second image starts."""
    # The first entry: "primary image" attributes and the first image's size (Pillow writes II).
    entries_at = data.index(struct.pack("<II", 0x030000, first_eoi(data)))
    second = entries_at + 16
    offset = struct.unpack_from("<I", data, second + 8)[0]
    return data[: second + 8] + struct.pack("<I", offset + 2) + data[second + 12 :]


def corrupt_second_image(data: bytes) -> bytes:
    end = first_eoi(data)
    return data[: end + 2] + b"\x00\x00" + data[end + 4 :]


def test_mpo_second_image_is_held_to_the_limits() -> None:
    limits = dataclasses.replace(WITH_TRAILERS, max_total_pixels=80 * 60 + 10)
    assert reason_of(mpo(), limits) is Reason.TOO_MANY_PIXELS
