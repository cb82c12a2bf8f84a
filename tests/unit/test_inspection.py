"""The verdict on an object from a bounded prefix, tail and size (upload_core.inspection, no I/O)."""

from __future__ import annotations

import struct

import pytest
from PIL import Image

from tests import image_corpus as corpus
from upload_core.inspection import InspectionLimits, Reason, Sample, Verdict, inspect, needs_more_head

ALL_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"})
LIMITS = InspectionLimits(
    max_object_bytes=100 * 1024 * 1024,
    max_pixels=50_000_000,
    max_width=20_000,
    max_height=20_000,
    max_frames=100,
    allowed_types=ALL_TYPES,
)
HEAD = 64 * 1024
MAX_HEAD = 1024 * 1024
TAIL = 8 * 1024

requires_avif = pytest.mark.skipif(not corpus.avif_supported(), reason="this Pillow has no AVIF codec")


def sample_of(
    data: bytes,
    filename: str,
    content_type: str | None,
    *,
    head: int = HEAD,
    tail: int = TAIL,
    max_head: int = MAX_HEAD,
) -> Sample:
    """What the validator reads: a prefix (extended once when the header runs on) and a tail."""
    prefix = data[:head]
    if needs_more_head(prefix, len(data)):
        prefix = data[:max_head]
    return Sample(prefix, data[-tail:], len(data), content_type, filename)


def verdict_of(
    data: bytes,
    filename: str,
    content_type: str | None,
    *,
    limits: InspectionLimits = LIMITS,
    head: int = HEAD,
    tail: int = TAIL,
    max_head: int = MAX_HEAD,
) -> Verdict:
    return inspect(sample_of(data, filename, content_type, head=head, tail=tail, max_head=max_head), limits)


def limits_with(**changes: object) -> InspectionLimits:
    fields = {name: getattr(LIMITS, name) for name in LIMITS.__dataclass_fields__}
    return InspectionLimits(**{**fields, **changes})  # type: ignore[arg-type]


def jpeg_segment_offset(data: bytes, marker: int) -> int:
    """Where a JPEG segment starts, found by walking the segments (ICC bytes may contain FFC0)."""
    pos = 2
    while data[pos + 1] != marker:
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return pos


# --------------------------------------------------------------------------- valid files


@pytest.mark.parametrize("item", corpus.valid_corpus(), ids=lambda item: item.name)
def test_each_valid_file_is_valid_with_its_dimensions(item: corpus.CorpusFile) -> None:
    # Given a real file made by Pillow's encoder, declared with its type and a matching name
    # When it is inspected
    verdict = verdict_of(item.data, item.name, item.content_type)
    # Then it is valid, and the header's type, dimensions and frame count are reported
    assert (verdict.status, verdict.reason) == ("valid", Reason.OK)
    assert verdict.image_type is not None
    assert verdict.image_type.mime == item.content_type
    assert (verdict.width, verdict.height) == (item.width, item.height)
    assert verdict.frames == item.frames
    assert verdict.frames_exact


LARGE_FILES = [
    ("large.png", lambda: corpus.png(900, 700), "image/png", 900, 700),
    ("large.jpg", lambda: corpus.jpeg(1200, 900), "image/jpeg", 1200, 900),
    ("large.gif", lambda: corpus.gif(500, 400), "image/gif", 500, 400),
    ("large.webp", lambda: corpus.webp_lossy(900, 700), "image/webp", 900, 700),
    ("large-lossless.webp", lambda: corpus.webp_lossless(600, 400), "image/webp", 600, 400),
    pytest.param("large.avif", lambda: corpus.avif(900, 700), "image/avif", 900, 700, marks=requires_avif),
]


@pytest.mark.parametrize(("name", "make", "content_type", "width", "height"), LARGE_FILES)
def test_large_files_are_judged_from_a_small_prefix_and_tail(
    name: str, make: object, content_type: str, width: int, height: int
) -> None:
    # Given a file much longer than the bytes read (2 KiB of head, 64 bytes of tail)
    data = make()  # type: ignore[operator]
    assert len(data) > 20 * 2048
    # When it is inspected from those bytes only
    verdict = verdict_of(data, name, content_type, head=2048, tail=64, max_head=2048)
    # Then the header alone gives the verdict and the dimensions
    assert verdict.reason == Reason.OK
    assert (verdict.width, verdict.height) == (width, height)


def test_jpeg_whose_frame_header_lies_past_the_first_read_needs_one_more_read() -> None:
    # Given a JPEG whose 200 KB ICC profile puts its frame header (SOF) past the first 64 KiB
    data = corpus.jpeg(40, 30, icc_profile_bytes=200_000)
    assert jpeg_segment_offset(data, 0xC0) > HEAD
    # Then the first read asks for more
    assert needs_more_head(data[:HEAD], len(data))
    # And with the second, bounded read it is valid with its dimensions
    verdict = verdict_of(data, "profile.jpg", "image/jpeg")
    assert (verdict.reason, verdict.width, verdict.height) == (Reason.OK, 40, 30)


def test_jpeg_whose_header_runs_past_every_byte_allowed_is_rejected() -> None:
    # Given the same JPEG but a validator allowed to read at most 100 KiB of prefix
    data = corpus.jpeg(40, 30, icc_profile_bytes=200_000)
    # When it is inspected
    verdict = verdict_of(data, "profile.jpg", "image/jpeg", max_head=100 * 1024)
    # Then it is rejected for its header size, not mistaken for a corrupt file
    assert (verdict.status, verdict.reason) == ("rejected", Reason.HEADER_TOO_LARGE)


def test_needs_more_head_is_false_for_complete_headers_and_non_images() -> None:
    png = corpus.png(300, 200)
    assert not needs_more_head(png[:HEAD], len(png))
    assert not needs_more_head(corpus.HTML_PAGE, 10 * len(corpus.HTML_PAGE))
    # A short object is read whole: there is nothing more to read
    assert not needs_more_head(png, len(png))


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("photo.JPG", "image/jpeg"), ("photo", "image/jpeg"), ("photo.jpe", "image/jpeg; charset=binary")],
)
def test_extension_case_missing_extension_and_type_parameters_are_accepted(name: str, content_type: str) -> None:
    # Given a JPEG named with an upper-case extension, no extension, or a parameterised type
    verdict = verdict_of(corpus.jpeg(), name, content_type)
    # Then nothing contradicts the bytes: it is valid
    assert verdict.reason == Reason.OK


def test_jpeg_padded_with_zeros_after_eoi_is_accepted() -> None:
    verdict = verdict_of(corpus.jpeg() + b"\x00" * 100, "padded.jpg", "image/jpeg")
    assert verdict.reason == Reason.OK


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("data", "name", "content_type", "reason"),
    [
        pytest.param(corpus.png(), "photo.png", "image/jpeg", Reason.TYPE_MISMATCH, id="declared-jpeg-is-png"),
        pytest.param(corpus.png(), "photo.png", None, Reason.TYPE_MISMATCH, id="no-declared-type"),
        pytest.param(corpus.png(), "photo.png", "binary/octet-stream", Reason.TYPE_MISMATCH, id="s3-default-type"),
        pytest.param(corpus.png(), "photo.jpg", "image/png", Reason.EXTENSION_MISMATCH, id="png-named-jpg"),
        pytest.param(corpus.gif(), "anim.gif.exe", "image/gif", Reason.EXTENSION_MISMATCH, id="gif-named-exe"),
        pytest.param(corpus.SVG_WITH_SCRIPT, "logo.svg", "image/svg+xml", Reason.ACTIVE_CONTENT, id="svg-script"),
        pytest.param(corpus.SVG_WITH_SCRIPT, "logo.png", "image/png", Reason.ACTIVE_CONTENT, id="svg-named-png"),
        pytest.param(corpus.HTML_PAGE, "photo.jpg", "image/jpeg", Reason.ACTIVE_CONTENT, id="html-named-jpg"),
        pytest.param(
            b"\xef\xbb\xbf  <html><script>x</script>", "a.gif", "image/gif", Reason.ACTIVE_CONTENT, id="bom-html"
        ),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "doc.png", "image/png", Reason.UNKNOWN_TYPE, id="pdf"),
        pytest.param(b"\x00" * 64, "zeros.png", "image/png", Reason.UNKNOWN_TYPE, id="zeros"),
        pytest.param(b"", "empty.png", "image/png", Reason.EMPTY, id="empty"),
    ],
)
def test_wrong_type_and_active_content_are_rejected(
    data: bytes, name: str, content_type: str | None, reason: Reason
) -> None:
    verdict = inspect(Sample(data, data, len(data), content_type, name), LIMITS)
    assert (verdict.status, verdict.reason) == ("rejected", reason)
    assert verdict.width is None


def test_a_rejection_still_records_the_detected_type() -> None:
    verdict = verdict_of(corpus.png(), "photo.png", "image/jpeg")
    assert verdict.image_type is not None
    assert verdict.image_type.mime == "image/png"


def test_type_outside_the_allowlist_is_rejected() -> None:
    # Given a deployment that allows only JPEG and PNG
    limits = limits_with(allowed_types=frozenset({"image/jpeg", "image/png"}))
    data = corpus.gif()
    # When a real GIF is inspected / Then it is refused for its type
    verdict = inspect(Sample(data, data, len(data), "image/gif", "a.gif"), limits)
    assert verdict.reason == Reason.TYPE_NOT_ALLOWED


def test_oversize_object_is_rejected_before_any_byte_is_needed() -> None:
    # Given an object larger than the limit, of which nothing was read
    verdict = inspect(Sample(b"", b"", LIMITS.max_object_bytes + 1, "image/png", "big.png"), LIMITS)
    # Then it is too large (not "empty" for want of bytes)
    assert verdict.reason == Reason.TOO_LARGE


TRUNCATIONS = [
    pytest.param(lambda: corpus.png(300, 200), "cut.png", "image/png", id="png"),
    pytest.param(lambda: corpus.jpeg(300, 200), "cut.jpg", "image/jpeg", id="jpeg"),
    pytest.param(lambda: corpus.gif(300, 200), "cut.gif", "image/gif", id="gif"),
    pytest.param(lambda: corpus.webp_lossy(300, 200), "cut.webp", "image/webp", id="webp"),
    pytest.param(lambda: corpus.avif(300, 200), "cut.avif", "image/avif", id="avif", marks=requires_avif),
]


@pytest.mark.parametrize(("make", "name", "content_type"), TRUNCATIONS)
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_bodies_are_caught_by_the_tail(make: object, name: str, content_type: str, keep: float) -> None:
    # Given a valid file cut short after its header
    data = make()  # type: ignore[operator]
    cut = data[: max(int(len(data) * keep), 200)]
    assert len(cut) < len(data)
    # When it is inspected / Then it is rejected as truncated
    assert verdict_of(cut, name, content_type, head=1024, tail=64, max_head=1024).reason == Reason.TRUNCATED


def test_data_appended_after_jpeg_eoi_is_rejected() -> None:
    # A JPEG with a ZIP or HTML document glued on (a polyglot) does not end with EOI
    data = corpus.jpeg() + b"PK\x03\x04" + b"x" * 100
    assert verdict_of(data, "polyglot.jpg", "image/jpeg").reason == Reason.TRUNCATED


def test_png_header_cut_inside_the_first_read_is_truncated() -> None:
    data = corpus.png()[:40]
    assert verdict_of(data, "tiny.png", "image/png").reason == Reason.TRUNCATED


def test_png_with_a_corrupt_header_chunk_is_rejected() -> None:
    # Given a PNG whose IHDR CRC does not match (a flipped byte in the dimensions)
    data = bytearray(corpus.png(64, 48))
    data[18] ^= 0x01
    # Then Pillow refuses the header
    assert verdict_of(bytes(data), "bad.png", "image/png").reason == Reason.CORRUPT_HEADER


def test_jpeg_without_a_frame_header_is_corrupt() -> None:
    # SOI, then straight to the start of scan: no SOF, so no dimensions
    data = b"\xff\xd8" + b"\xff\xda\x00\x08" + b"\x01\x01\x00\x00\x3f\x00" + b"\x00" * 50 + b"\xff\xd9"
    assert verdict_of(data, "nosof.jpg", "image/jpeg").reason == Reason.CORRUPT_HEADER


def test_webp_with_an_unknown_first_chunk_is_corrupt() -> None:
    body = b"WEBP" + b"XXXX" + struct.pack("<I", 22) + b"\x00" * 22
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    assert verdict_of(data, "odd.webp", "image/webp").reason == Reason.CORRUPT_HEADER


def test_decompression_bomb_is_rejected_for_its_pixels() -> None:
    # Given a 69-byte PNG whose header announces 100,000 x 100,000 pixels
    data = corpus.png_bomb()
    assert len(data) < 100
    # When it is inspected
    verdict = verdict_of(data, "bomb.png", "image/png")
    # Then it is rejected for its pixel count
    assert (verdict.status, verdict.reason) == ("rejected", Reason.TOO_MANY_PIXELS)


def test_pillow_bomb_warning_counts_as_too_many_pixels_and_its_limit_is_restored() -> None:
    # Given a header just above the pixel limit but within the width and height limits
    limits = limits_with(max_pixels=1_000_000)
    data = corpus.png_bomb(1001, 1000)
    before = Image.MAX_IMAGE_PIXELS
    # When it is inspected
    verdict = inspect(Sample(data, data, len(data), "image/png", "b.png"), limits)
    # Then Pillow's warning became a rejection, and Pillow's global limit is as it was
    assert verdict.reason == Reason.TOO_MANY_PIXELS
    assert before == Image.MAX_IMAGE_PIXELS


def test_width_beyond_the_limit_is_rejected_even_with_few_pixels() -> None:
    data = corpus.png_bomb(25_000, 2)
    assert verdict_of(data, "strip.png", "image/png").reason == Reason.DIMENSIONS_TOO_LARGE


def test_gif_frame_larger_than_its_screen_counts_with_its_real_extent() -> None:
    # Given a 1x1 GIF whose only frame claims 30,000 x 30,000 pixels
    data = bytearray(corpus.tiny_frames_gif(1))
    descriptor = data.index(b"\x2c")
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 30_000, 30_000)
    # Then the frame's extent, not the screen's, is held against the limits
    assert verdict_of(bytes(data), "wide.gif", "image/gif").reason == Reason.TOO_MANY_PIXELS


def test_too_many_frames_are_rejected() -> None:
    # Given a GIF of 101 one-pixel frames (the limit is 100) in about 2 KiB
    data = corpus.tiny_frames_gif(LIMITS.max_frames + 1)
    # When it is inspected / Then it is rejected for its frames
    assert verdict_of(data, "frames.gif", "image/gif").reason == Reason.TOO_MANY_FRAMES
    # And one frame fewer passes, with its exact count
    ok = verdict_of(corpus.tiny_frames_gif(LIMITS.max_frames), "frames.gif", "image/gif")
    assert (ok.reason, ok.frames, ok.frames_label) == (Reason.OK, LIMITS.max_frames, str(LIMITS.max_frames))


def test_frames_beyond_the_prefix_are_a_lower_bound() -> None:
    # Given a GIF longer than the prefix read: 2,000 tiny frames, 2 KiB read
    data = corpus.tiny_frames_gif(2000)
    # When the frames seen in the prefix already exceed the limit / Then it is rejected
    assert verdict_of(data, "f.gif", "image/gif", head=4096, max_head=4096).reason == Reason.TOO_MANY_FRAMES
    # And when they do not, it is valid with a lower bound labelled "N+"
    verdict = verdict_of(data, "f.gif", "image/gif", head=1024, max_head=1024, limits=limits_with(max_frames=5000))
    assert verdict.reason == Reason.OK
    assert verdict.frames is not None
    assert not verdict.frames_exact
    assert 10 < verdict.frames < 2000
    assert verdict.frames_label == f"{verdict.frames}+"


def test_animated_webp_frames_are_counted_from_its_chunks() -> None:
    data = corpus.animated_webp(16, 16, 7)
    verdict = verdict_of(data, "a.webp", "image/webp", limits=limits_with(max_frames=6))
    assert verdict.reason == Reason.TOO_MANY_FRAMES


@requires_avif
def test_avif_sequence_frames_come_from_its_sample_table() -> None:
    data = corpus.animated_avif(16, 16, 5)
    assert verdict_of(data, "a.avif", "image/avif", limits=limits_with(max_frames=4)).reason == Reason.TOO_MANY_FRAMES
    large = corpus.animated_avif(400, 300, 4)
    verdict = verdict_of(large, "a.avif", "image/avif", head=2048, tail=64, max_head=2048)
    assert (verdict.reason, verdict.frames, verdict.frames_exact) == (Reason.OK, 4, True)


@requires_avif
def test_avif_box_chain_running_between_the_reads_is_unverifiable() -> None:
    # Given an AVIF followed by two free boxes, the first beginning after the prefix and ending
    # before the tail: the chain cannot be followed with the bytes read
    data = corpus.avif(64, 48) + struct.pack(">I4s", 5000, b"free") + b"\x00" * 4992
    data += struct.pack(">I4s", 16, b"free") + b"\x00" * 8
    verdict = verdict_of(data, "a.avif", "image/avif", head=len(data) - 6000, tail=32, max_head=len(data) - 6000)
    assert verdict.reason == Reason.UNVERIFIABLE


@requires_avif
def test_avif_whose_last_box_overruns_the_object_is_truncated() -> None:
    data = corpus.avif(64, 48)
    assert verdict_of(data[:-1], "a.avif", "image/avif").reason == Reason.TRUNCATED


def test_webp_riff_size_must_match_the_object() -> None:
    data = corpus.webp_lossy()
    assert verdict_of(data + b"\x00\x00", "a.webp", "image/webp").reason == Reason.TRUNCATED
