"""The verdict on an object from one streaming pass over its bytes (upload_core.inspection, no I/O)."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import pytest
from PIL import Image

from tests import big_images
from tests import image_corpus as corpus
from upload_core import inspection
from upload_core.image_types import AVIF, GIF, IMAGE_TYPES, PNG, WEBP, ImageType
from upload_core.inspection import InspectionLimits, Reason, Verdict, inspect, walker_for

ALL_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"})
LIMITS = InspectionLimits(
    max_object_bytes=100 * 1024 * 1024,
    max_pixels=50_000_000,
    max_width=20_000,
    max_height=20_000,
    max_frames=100,
    allowed_types=ALL_TYPES,
)

requires_avif = pytest.mark.skipif(not corpus.avif_supported(), reason="this Pillow has no AVIF codec")


def requires_walker(image_type: ImageType) -> pytest.MarkDecorator:
    """GIF, WebP and AVIF walkers are written on another branch: their tests run once they exist."""
    return pytest.mark.skipif(walker_for(image_type) is None, reason=f"no {image_type.mime} walker in this build")


def verdict_of(
    data: bytes, filename: str, content_type: str | None, *, limits: InspectionLimits = LIMITS, chunk: int = 65536
) -> Verdict:
    """The verdict on ``data`` streamed in chunks of ``chunk`` bytes."""
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return inspect(chunks, size=len(data), content_type=content_type, filename=filename, limits=limits)


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


def valid_params() -> list[object]:
    return [
        pytest.param(item, id=item.name, marks=[requires_walker(IMAGE_TYPES[item.content_type])])
        for item in corpus.valid_corpus()
    ]


@pytest.mark.parametrize("item", valid_params())
@pytest.mark.parametrize("chunk", [5, 65536])
def test_each_valid_file_is_valid_with_its_dimensions_and_exact_frames(item: corpus.CorpusFile, chunk: int) -> None:
    # Given a real file made by Pillow's encoder, declared with its type and a matching name
    # When it is streamed through the inspection, in small or large chunks
    verdict = verdict_of(item.data, item.name, item.content_type, chunk=chunk)
    # Then it is valid, with its type, dimensions and exact frame count, every byte read once
    assert (verdict.status, verdict.reason) == ("valid", Reason.OK)
    assert verdict.image_type is not None
    assert verdict.image_type.mime == item.content_type
    assert (verdict.width, verdict.height) == (item.width, item.height)
    assert verdict.frames == item.frames
    assert verdict.bytes_read == len(item.data)


LARGE_FILES = [
    ("large.png", lambda: corpus.png(900, 700), "image/png", 900, 700),
    ("large.jpg", lambda: corpus.jpeg(1200, 900), "image/jpeg", 1200, 900),
    ("profile.jpg", lambda: corpus.jpeg(40, 30, icc_profile_bytes=200_000), "image/jpeg", 40, 30),
    pytest.param("large.gif", lambda: corpus.gif(500, 400), "image/gif", 500, 400, marks=requires_walker(GIF)),
    pytest.param(
        "large.webp", lambda: corpus.webp_lossy(900, 700), "image/webp", 900, 700, marks=requires_walker(WEBP)
    ),
    pytest.param(
        "large.avif",
        lambda: corpus.avif(900, 700),
        "image/avif",
        900,
        700,
        marks=[requires_avif, requires_walker(AVIF)],
    ),
]


@pytest.mark.parametrize(("name", "make", "content_type", "width", "height"), LARGE_FILES)
def test_large_files_are_walked_to_the_end_without_pillow(  # noqa: PLR0917 - one case's parameters
    name: str, make: object, content_type: str, width: int, height: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file larger than what Pillow is asked to open (pillow_bytes), and a Pillow that fails
    data = make()  # type: ignore[operator]
    assert len(data) > LIMITS.pillow_bytes

    def no_pillow(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Pillow opened a large object")

    monkeypatch.setattr(Image, "open", no_pillow)
    # When it is inspected / Then the walk alone gives the verdict and the dimensions
    verdict = verdict_of(data, name, content_type)
    assert (verdict.reason, verdict.width, verdict.height, verdict.bytes_read) == (Reason.OK, width, height, len(data))


def test_a_big_png_is_read_once_in_constant_memory() -> None:
    # Given a 40 MiB PNG produced as a stream (never held whole)
    image = big_images.big_png(40 << 20, width=1024)
    pulled: list[int] = []

    def chunks() -> Iterator[bytes]:
        for piece in image.chunks():
            pulled.append(len(piece))
            yield piece

    # When it is inspected
    verdict = inspect(
        chunks(), size=image.size, content_type="image/png", filename="big.png", limits=limits_with(max_pixels=10**9)
    )
    # Then it is valid, and every byte was pulled exactly once
    assert (verdict.reason, verdict.width, verdict.height) == (Reason.OK, image.width, image.height)
    assert sum(pulled) == verdict.bytes_read == image.size


def test_a_big_jpeg_is_walked_to_its_end() -> None:
    image = big_images.big_jpeg(12 << 20, width=2048)
    verdict = inspect(
        image.chunks(),
        size=image.size,
        content_type="image/jpeg",
        filename="big.jpg",
        limits=limits_with(max_pixels=10**9),
    )
    assert (verdict.reason, verdict.width, verdict.height, verdict.bytes_read) == (
        Reason.OK,
        image.width,
        image.height,
        image.size,
    )


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("photo.JPG", "image/jpeg"), ("photo", "image/jpeg"), ("photo.jpe", "image/jpeg; charset=binary")],
)
def test_extension_case_missing_extension_and_type_parameters_are_accepted(name: str, content_type: str) -> None:
    # Given a JPEG named with an upper-case extension, no extension, or a parameterised type
    verdict = verdict_of(corpus.jpeg(), name, content_type)
    # Then nothing contradicts the bytes: it is valid
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
        pytest.param(
            b" " * 5000 + b"<svg onload=alert(1)>", "a.png", "image/png", Reason.ACTIVE_CONTENT, id="padded-svg"
        ),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "doc.png", "image/png", Reason.UNKNOWN_TYPE, id="pdf"),
        pytest.param(b"\x00" * 64, "zeros.png", "image/png", Reason.UNKNOWN_TYPE, id="zeros"),
        pytest.param(b"", "empty.png", "image/png", Reason.EMPTY, id="empty"),
    ],
)
def test_wrong_type_and_active_content_are_rejected(
    data: bytes, name: str, content_type: str | None, reason: Reason
) -> None:
    verdict = verdict_of(data, name, content_type)
    assert (verdict.status, verdict.reason) == ("rejected", reason)
    assert verdict.width is None


def test_a_rejection_still_records_the_detected_type() -> None:
    verdict = verdict_of(corpus.png(), "photo.png", "image/jpeg")
    assert verdict.image_type is not None
    assert verdict.image_type.mime == "image/png"


def test_type_outside_the_allowlist_is_rejected() -> None:
    # Given a deployment that allows only JPEG and PNG
    limits = limits_with(allowed_types=frozenset({"image/jpeg", "image/png"}))
    # When a real GIF is inspected / Then it is refused for its type
    assert verdict_of(corpus.gif(), "a.gif", "image/gif", limits=limits).reason == Reason.TYPE_NOT_ALLOWED


def test_a_type_without_a_walker_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a build where the PNG walker module is missing
    monkeypatch.setitem(inspection.WALKER_MODULES, PNG.mime, "upload_core.formats.no_such_walker")
    # When a valid PNG is inspected / Then it cannot be proven, so it is rejected as unknown
    assert verdict_of(corpus.png(), "a.png", "image/png").reason == Reason.UNKNOWN_TYPE


def test_oversize_object_is_rejected_before_any_byte_is_read() -> None:
    # Given an object larger than the limit, whose bytes must not be pulled
    def never() -> Iterator[bytes]:
        raise AssertionError("read")
        yield b""

    verdict = inspect(
        never(), size=LIMITS.max_object_bytes + 1, content_type="image/png", filename="big.png", limits=LIMITS
    )
    # Then it is too large (not "empty" for want of bytes)
    assert (verdict.reason, verdict.bytes_read) == (Reason.TOO_LARGE, 0)


def test_a_body_shorter_or_longer_than_the_object_size_is_never_valid() -> None:
    data = corpus.png()
    shorter = inspect([data], size=len(data) + 10, content_type="image/png", filename="a.png", limits=LIMITS)
    assert shorter.reason == Reason.TRUNCATED
    big = big_images.big_png(200_000, width=64).data()
    longer = inspect([big], size=len(big) - 1, content_type="image/png", filename="a.png", limits=LIMITS)
    assert longer.reason == Reason.TRAILING_DATA


def test_a_reject_stops_reading_at_its_first_bad_byte() -> None:
    # Given a large PNG whose second chunk is damaged
    image = big_images.big_png(20 << 20, width=1024)
    pulled: list[int] = []

    def chunks() -> Iterator[bytes]:
        for index, piece in enumerate(image.chunks()):
            pulled.append(len(piece))
            yield piece if index != 1 else piece[:100] + b"\x00" + piece[101:]

    verdict = inspect(chunks(), size=image.size, content_type="image/png", filename="a.png", limits=LIMITS)
    # Then it is rejected and only the first pieces were pulled
    assert verdict.reason == Reason.BAD_CHECKSUM
    assert verdict.bytes_read == sum(pulled) < 3 << 20


TRUNCATIONS = [
    pytest.param(lambda: corpus.png(300, 200), "cut.png", "image/png", id="png"),
    pytest.param(lambda: corpus.jpeg(300, 200), "cut.jpg", "image/jpeg", id="jpeg"),
    pytest.param(lambda: corpus.gif(300, 200), "cut.gif", "image/gif", id="gif", marks=requires_walker(GIF)),
    pytest.param(lambda: corpus.webp_lossy(300, 200), "cut.webp", "image/webp", id="webp", marks=requires_walker(WEBP)),
    pytest.param(
        lambda: corpus.avif(300, 200), "cut.avif", "image/avif", id="avif", marks=[requires_avif, requires_walker(AVIF)]
    ),
]


@pytest.mark.parametrize(("make", "name", "content_type"), TRUNCATIONS)
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_bodies_are_rejected(make: object, name: str, content_type: str, keep: float) -> None:
    # Given a valid file cut short after its header
    data = make()  # type: ignore[operator]
    cut = data[: max(int(len(data) * keep), 200)]
    assert len(cut) < len(data)
    # When it is inspected / Then it is rejected as truncated
    assert verdict_of(cut, name, content_type).reason == Reason.TRUNCATED


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(corpus.jpeg() + b"PK\x03\x04" + b"x" * 100, Reason.TRAILING_DATA, id="zip-after-eoi"),
        pytest.param(corpus.jpeg() + b"PK\x03\x04" + b"x" * 100 + b"\xff\xd9", Reason.TRAILING_DATA, id="fake-eoi"),
        pytest.param(corpus.jpeg() + b"\x00" * 100, Reason.TRAILING_DATA, id="zeros-after-eoi"),
    ],
)
def test_data_appended_after_jpeg_eoi_is_rejected(data: bytes, reason: Reason) -> None:
    # A JPEG with a ZIP or HTML document glued on (a polyglot), however it ends
    assert verdict_of(data, "polyglot.jpg", "image/jpeg").reason == reason


def test_small_jpeg_that_pillow_cannot_decode_is_refused() -> None:
    # Given a small JPEG without its quantisation tables (DQT segments removed): every segment
    # and scan the walker checks is whole, but the frame refers to tables that do not exist
    data = corpus.jpeg(64, 48)
    pos, kept = 2, bytearray(data[:2])
    while data[pos + 1] != 0xDA:
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if data[pos + 1] != 0xDB:
            kept += data[pos : pos + 2 + length]
        pos += 2 + length
    stripped = bytes(kept + data[pos:])
    assert len(stripped) <= LIMITS.pillow_bytes
    # When it is inspected / Then Pillow, the decoder of record for small objects, refuses it
    assert verdict_of(stripped, "tables.jpg", "image/jpeg").reason == Reason.CORRUPT_HEADER


def test_png_header_cut_inside_the_first_read_is_truncated() -> None:
    assert verdict_of(corpus.png()[:40], "tiny.png", "image/png").reason == Reason.TRUNCATED


def test_png_with_a_corrupt_header_chunk_is_rejected() -> None:
    # Given a PNG whose IHDR CRC does not match (a flipped byte in the dimensions)
    data = bytearray(corpus.png(64, 48))
    data[18] ^= 0x01
    assert verdict_of(bytes(data), "bad.png", "image/png").reason == Reason.BAD_CHECKSUM


def test_jpeg_without_a_frame_header_is_rejected() -> None:
    # SOI, then straight to the start of scan: no SOF, so no dimensions
    data = b"\xff\xd8" + b"\xff\xda\x00\x08" + b"\x01\x01\x00\x00\x3f\x00" + b"\x00" * 50 + b"\xff\xd9"
    assert verdict_of(data, "nosof.jpg", "image/jpeg").reason == Reason.BAD_STRUCTURE


@requires_walker(WEBP)
def test_webp_with_an_unknown_first_chunk_is_rejected() -> None:
    body = b"WEBP" + b"XXXX" + struct.pack("<I", 22) + b"\x00" * 22
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    assert verdict_of(data, "odd.webp", "image/webp").status == "rejected"


def test_decompression_bomb_is_rejected_for_its_pixels() -> None:
    # Given a PNG of a few dozen bytes whose header announces 20,000 x 20,000 pixels
    data = corpus.png_bomb(20_000, 20_000)
    assert len(data) < 100
    # When it is inspected / Then it is rejected for its pixel count
    verdict = verdict_of(data, "bomb.png", "image/png")
    assert (verdict.status, verdict.reason) == ("rejected", Reason.TOO_MANY_PIXELS)


def test_width_beyond_the_limit_is_rejected_even_with_few_pixels() -> None:
    data = corpus.png_bomb(25_000, 2)
    assert verdict_of(data, "strip.png", "image/png").reason == Reason.DIMENSIONS_TOO_LARGE


def test_pillow_limit_is_restored_after_a_small_object() -> None:
    before = Image.MAX_IMAGE_PIXELS
    assert verdict_of(corpus.png(), "a.png", "image/png").reason == Reason.OK
    assert before == Image.MAX_IMAGE_PIXELS


def test_too_much_metadata_is_rejected() -> None:
    data = corpus.jpeg(40, 30, icc_profile_bytes=200_000)
    assert verdict_of(data, "icc.jpg", "image/jpeg", limits=limits_with(max_metadata_bytes=100_000)).reason == (
        Reason.TOO_MUCH_METADATA
    )


def test_indexed_jpeg_trailers_follow_the_setting() -> None:
    frames = [Image.effect_noise((40, 30), 30).convert("RGB") for _ in range(2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "MPO", save_all=True, append_images=frames[1:])
    data = buffer.getvalue()
    assert verdict_of(data, "pair.jpg", "image/jpeg").reason == Reason.TRAILING_DATA
    allowed = verdict_of(data, "pair.jpg", "image/jpeg", limits=limits_with(allow_indexed_jpeg_trailers=True))
    assert (allowed.reason, allowed.frames) == (Reason.OK, 2)


@requires_walker(GIF)
def test_gif_frame_larger_than_its_screen_is_held_to_the_limits() -> None:
    # Given a 1x1 GIF whose only frame claims 30,000 x 30,000 pixels
    data = bytearray(corpus.tiny_frames_gif(1))
    descriptor = data.index(b"\x2c")
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 30_000, 30_000)
    assert verdict_of(bytes(data), "wide.gif", "image/gif").status == "rejected"


@requires_walker(GIF)
def test_too_many_frames_are_rejected_and_counted_exactly() -> None:
    data = corpus.tiny_frames_gif(LIMITS.max_frames + 1)
    assert verdict_of(data, "frames.gif", "image/gif").reason == Reason.TOO_MANY_FRAMES
    ok = verdict_of(corpus.tiny_frames_gif(LIMITS.max_frames), "frames.gif", "image/gif")
    assert (ok.reason, ok.frames) == (Reason.OK, LIMITS.max_frames)


@requires_walker(WEBP)
def test_animated_webp_frames_are_counted() -> None:
    data = corpus.animated_webp(16, 16, 7)
    assert verdict_of(data, "a.webp", "image/webp", limits=limits_with(max_frames=6)).reason == Reason.TOO_MANY_FRAMES
