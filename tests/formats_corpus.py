"""The structural walkers' corpora, made at test time: valid files that must pass, hostile ones that
must fail with a given reason, for PNG, JPEG, GIF, WebP and AVIF.

Valid files come from Pillow's encoders (AVIF too, where Pillow has it), reshaped byte by byte
where an encoder will not write the case (an EXIF thumbnail, a 64-bit box size). Hostile files are
valid ones with one lie told: an archive or a page appended (with an ending that imitates the
format's end marker), a second end marker, frames or a giant frame behind a large comment, image
data cut short and a well-formed ending pasted on, every structural boundary cut, CRCs and
lengths that lie, limits passed.

Every hostile case names the reason a correct walker gives; ``also`` lists the few where two
reasons are equally right (a length that lies may be caught by the CRC it displaces or by the
structure it breaks, depending on which a walker checks first).
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from PIL import Image, features

from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import ImageFacts, StructureLimits
from upload_core.formats.stream import ChunkReader, chunked

FORMATS = ("png", "jpeg", "gif", "webp", "avif")

GENEROUS = StructureLimits(
    max_width=30_000,
    max_height=30_000,
    max_pixels=100_000_000,
    max_total_pixels=1_000_000_000,
    max_frames=1_000,
    max_metadata_bytes=4 * 1024 * 1024,
)
# For the limit cases: small enough that a few modest frames pass them.
TIGHT = StructureLimits(
    max_width=4_000,
    max_height=4_000,
    max_pixels=4_000_000,
    max_total_pixels=20_000,
    max_frames=8,
    max_metadata_bytes=64 * 1024,
)
# Past the 64 KiB a header-only validator reads.
BEYOND_HEAD = 100 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    fmt: str
    data: bytes
    # None: a valid file; otherwise the reason a walker must give.
    reason: Reason | None = None
    limits: StructureLimits = GENEROUS
    also: frozenset[Reason] = frozenset()
    # For valid files: what the walker must measure.
    width: int = 0
    height: int = 0
    frames: int = 1

    @property
    def reasons(self) -> frozenset[Reason]:
        assert self.reason is not None
        return self.also | {self.reason}


@dataclass
class _Cases:
    items: list[Case] = field(default_factory=list)

    def add(  # noqa: PLR0917
        self,
        name: str,
        fmt: str,
        data: bytes,
        reason: Reason,
        limits: StructureLimits = GENEROUS,
        also: frozenset[Reason] = frozenset(),
    ) -> None:
        self.items.append(Case(f"{fmt}-{name}", fmt, data, reason, limits, also))


class RecordingReader(ChunkReader):
    """Notes the largest single read, to prove bulk data never goes through read()."""

    largest = 0

    def read(self, n: int) -> bytes:
        self.largest = max(self.largest, n)
        return super().read(n)


Walk = Callable[[ChunkReader, StructureLimits], ImageFacts]


def walk_bytes(walk: Walk, data: bytes, limits: StructureLimits = GENEROUS, size: int = 4096) -> ImageFacts:
    """One walker over ``data`` fed in ``size``-byte chunks."""
    return walk(ChunkReader(chunked(data, size)), limits)


def rejection(walk: Walk, data: bytes, limits: StructureLimits = GENEROUS) -> StructureError:
    """The error one walker raises for ``data`` (the test fails if it raises none)."""
    try:
        walk_bytes(walk, data, limits)
    except StructureError as error:
        return error
    raise AssertionError("the walker accepted what it should refuse")


def sniff(data: bytes) -> str | None:
    """The format the magic bytes announce, as the validator's sniffing does."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp":
        return "avif"
    return None


def avif_supported() -> bool:
    return bool(features.check("avif"))


# ---------------------------------------------------------------------------------- pictures


def picture(width: int, height: int, seed: int = 1, mode: str = "RGB") -> Image.Image:
    """A noisy picture: compresses like a photo, so files have realistic sizes."""
    rng = random.Random(seed)
    base = Image.new("RGB", (width, height), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    image = Image.blend(base, noise, 0.5)
    if mode == "RGBA":
        image = image.convert("RGBA")
        image.putalpha(Image.linear_gradient("L").resize((width, height)))
    elif mode != "RGB":
        image = image.convert(mode)
    return image


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def animation(fmt: str, width: int, height: int, frames: int, **options: object) -> bytes:
    pictures = [picture(width, height, seed) for seed in range(frames)]
    if fmt == "GIF":
        pictures = [p.convert("P", palette=Image.Palette.ADAPTIVE) for p in pictures]
    return save(pictures[0], fmt, save_all=True, append_images=pictures[1:], duration=40, loop=0, **options)


def noise(n: int, seed: int = 3) -> bytes:
    return random.Random(seed).randbytes(n)


# ---------------------------------------------------------------------------------- what gets appended


def zip_ending_with(tail: bytes) -> bytes:
    """A real zip archive whose last bytes (its comment) imitate an image's end marker."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.sh", "#!/bin/sh\necho owned\n")
        archive.comment = tail
    return buffer.getvalue()


def seven_zip_ending_with(tail: bytes) -> bytes:
    """A 7z signature header and an opaque body that ends like an image."""
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + noise(200, 7) + tail


def rar_ending_with(tail: bytes) -> bytes:
    return b"Rar!\x1a\x07\x01\x00" + noise(200, 8) + tail


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
PHP = b"<?php system($_GET['c']); ?>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'


def appendages(end_marker: bytes) -> dict[str, bytes]:
    return {
        "zip": zip_ending_with(end_marker),
        "7z": seven_zip_ending_with(end_marker),
        "rar": rar_ending_with(end_marker),
        "html": HTML + end_marker,
        "php": PHP + end_marker,
        "svg": SVG + end_marker,
    }


# ---------------------------------------------------------------------------------- PNG


def png_chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    value = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", value)


def png_chunks(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(offset, kind, payload) of every chunk."""
    out = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((pos, data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def png_insert_before(data: bytes, kind: bytes, chunk: bytes) -> bytes:
    """Insert a whole chunk before the first chunk of ``kind``."""
    for offset, found, _ in png_chunks(data):
        if found == kind:
            return data[:offset] + chunk + data[offset:]
    raise ValueError(kind)


def png_boundaries(data: bytes) -> list[int]:
    cuts = [8]
    for offset, _, payload in png_chunks(data):
        cuts += [offset, offset + 8, offset + 8 + len(payload)]
    return sorted(set(cuts))


def png_iend_ending() -> bytes:
    return b"\x00\x00\x00\x00IEND\xaeB`\x82"


# ---------------------------------------------------------------------------------- JPEG


def jpeg_segments(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """(offset, marker) of every segment before the first scan's data, and where that data starts."""
    out = []
    pos = 2
    while True:
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        out.append((pos, marker))
        pos += 2 + length
        if marker == 0xDA:
            return out, pos


def jpeg_with_segment(data: bytes, marker: int, payload: bytes, after_app0: bool = True) -> bytes:
    """A segment (split as the format requires: each at most 65,533 bytes) after SOI (and APP0)."""
    pos = 2
    if after_app0 and data[2:4] == b"\xff\xe0":
        pos += 2 + struct.unpack(">H", data[4:6])[0]
    segment = struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload
    return data[:pos] + segment + data[pos:]


def jpeg_boundaries(data: bytes) -> list[int]:
    segments, scan = jpeg_segments(data)
    cuts = [2]
    for offset, _ in segments:
        cuts += [offset, offset + 2, offset + 4]
    cuts += [scan, (scan + len(data)) // 2, len(data) - 2, len(data) - 1]
    return sorted(set(cuts))


def exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """An APP1 Exif payload whose IFD1 carries a JPEG thumbnail (its own SOI...EOI inside)."""
    ifd0_offset = 8
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, 1)  # orientation
    ifd1_offset = ifd0_offset + len(ifd0) + 4
    thumb_offset = ifd1_offset + 2 + 3 * 12 + 4
    ifd1 = (
        struct.pack("<H", 3)
        + struct.pack("<HHII", 0x0103, 3, 1, 6)  # compression: JPEG
        + struct.pack("<HHII", 0x0201, 4, 1, thumb_offset)
        + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))
        + struct.pack("<I", 0)
    )
    tiff = b"II*\x00" + struct.pack("<I", ifd0_offset) + ifd0 + struct.pack("<I", ifd1_offset) + ifd1 + thumbnail
    return b"Exif\x00\x00" + tiff


def jpeg_with_icc(width: int, height: int, profile_bytes: int) -> bytes:
    return save(picture(width, height), "JPEG", quality=85, icc_profile=noise(profile_bytes, 11))


# ---------------------------------------------------------------------------------- GIF


def gif_sub_blocks(payload: bytes) -> bytes:
    out = bytearray()
    for start in range(0, len(payload), 255):
        piece = payload[start : start + 255]
        out += bytes([len(piece)]) + piece
    return bytes(out + b"\x00")


def gif_comment(payload: bytes) -> bytes:
    return b"\x21\xfe" + gif_sub_blocks(payload)


def gif_frame(left: int, top: int, width: int, height: int, *, code_size: int = 2, data: bytes = b"\x44\x01") -> bytes:
    """A graphic control extension and an image descriptor with a token of LZW data (never decoded
    by the walker)."""
    return (
        b"\x21\xf9\x04\x00\x04\x00\x00\x00"
        + b"\x2c"
        + struct.pack("<HHHHB", left, top, width, height, 0)
        + bytes([code_size])
        + gif_sub_blocks(data)
    )


def gif_screen(width: int, height: int, version: bytes = b"GIF89a") -> bytes:
    return version + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"


@functools.cache
def gif_image_data(width: int, height: int, seed: int = 1) -> bytes:
    """Real LZW image data (code size, sub-blocks, terminator) of a noisy picture, from Pillow."""
    data = save(picture(width, height, seed).convert("P", palette=Image.Palette.ADAPTIVE), "GIF")
    for offset, introducer in gif_blocks(data):
        if introducer == 0x2C:
            local = data[offset + 9]
            start = offset + 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            end = start + 1
            while data[end]:
                end += 1 + data[end]
            return data[start : end + 1]
    raise AssertionError("no image descriptor")


def gif_real_frame(left: int, top: int, width: int, height: int, seed: int = 1) -> bytes:
    """A frame a decoder can decode: a 256-entry local colour table and real LZW data."""
    descriptor = struct.pack("<HHHHB", left, top, width, height, 0x87)
    palette = bytes(range(256)) * 3
    return b"\x21\xf9\x04\x00\x04\x00\x00\x00\x2c" + descriptor + palette + gif_image_data(width, height, seed)


NETSCAPE_LOOP = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"


def gif_blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, introducer) of every block, the trailer included; offsets of every sub-block too
    (introducer 0) so that cuts land between sub-blocks."""
    out: list[tuple[int, int]] = []
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data):
        introducer = data[pos]
        out.append((pos, introducer))
        if introducer == 0x3B:
            return out
        if introducer == 0x2C:
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
        else:
            pos += 2
        while data[pos]:
            out.append((pos, 0))
            pos += 1 + data[pos]
        pos += 1
    return out


def gif_boundaries(data: bytes) -> list[int]:
    cuts = [6, 13]
    for offset, _ in gif_blocks(data):
        cuts += [offset, offset + 1]
    return sorted({c for c in cuts if c < len(data)})


# ---------------------------------------------------------------------------------- WebP


def riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")


def riff(chunks: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def webp_chunks(data: bytes) -> list[tuple[int, bytes, bytes]]:
    out = []
    pos = 12
    while pos < len(data):
        kind, size = struct.unpack("<4sI", data[pos : pos + 8])
        out.append((pos, kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def webp_boundaries(data: bytes) -> list[int]:
    cuts = [12]
    for offset, _, payload in webp_chunks(data):
        cuts += [offset, offset + 8, offset + 8 + len(payload) // 2]
    return sorted(set(cuts))


def vp8x(flags: int, width: int, height: int) -> bytes:
    w, h = width - 1, height - 1
    return riff_chunk(b"VP8X", bytes([flags, 0, 0, 0]) + w.to_bytes(3, "little") + h.to_bytes(3, "little"))


def anmf(x: int, y: int, width: int, height: int, bitstream: bytes) -> bytes:
    header = (x // 2).to_bytes(3, "little") + (y // 2).to_bytes(3, "little")
    header += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little") + (40).to_bytes(3, "little")
    return riff_chunk(b"ANMF", header + b"\x00" + bitstream)


@functools.cache
def vp8l_bitstream(width: int, height: int) -> bytes:
    """The VP8L chunk (header included) of a lossless picture of this size."""
    data = save(picture(width, height), "WEBP", lossless=True)
    for _, kind, payload in webp_chunks(data):
        if kind == b"VP8L":
            return riff_chunk(b"VP8L", payload)
    raise AssertionError("no VP8L chunk")


def animated_webp_by_hand(
    width: int, height: int, frames: list[tuple[int, int, int, int]], extra: bytes = b""
) -> bytes:
    """An animated WebP of VP8L frames (x, y, w, h), ``extra`` chunks between ANIM and the frames."""
    body = vp8x(0x02, width, height) + riff_chunk(b"ANIM", b"\x00\x00\x00\x00\x00\x00") + extra
    for x, y, w, h in frames:
        body += anmf(x, y, w, h, vp8l_bitstream(w, h))
    return riff(body)


# ---------------------------------------------------------------------------------- AVIF (ISO BMFF)


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def top_boxes(data: bytes) -> list[tuple[int, bytes, int, int]]:
    """(offset, type, header size, total size) of every top-level box."""
    out = []
    pos = 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = len(data) - pos
        out.append((pos, kind, header, size))
        pos += size
    return out


def avif_boundaries(data: bytes) -> list[int]:
    cuts = []
    for offset, _, header, size in top_boxes(data):
        cuts += [offset, offset + header, offset + size // 2]
    return sorted({c for c in cuts if 0 < c < len(data)})


def _find(data: bytes, path: list[bytes]) -> tuple[int, int]:
    """(payload start, end) of the box at ``path`` (full boxes' 4 bytes of version and flags are
    part of the payload), searched in the top level and containers."""
    full = {b"meta": 4}
    start, end = 0, len(data)
    for kind in path:
        pos = start
        while pos < end:
            size, found = struct.unpack(">I4s", data[pos : pos + 8])
            if found == kind:
                start, end = pos + 8 + full.get(kind, 0), pos + size
                break
            pos += size
        else:
            raise KeyError(kind)
    return start, end


def avif_shift(data: bytes, delta: int, after: int) -> bytes:
    """Move every iloc extent and stco chunk offset that points at or past ``after`` by ``delta``
    (for files reshaped by inserting bytes before their mdat). Handles what libavif writes."""
    out = bytearray(data)
    start, _ = _find(data, [b"meta", b"iloc"])
    version, sizes = out[start], struct.unpack(">H", out[start + 4 : start + 6])[0]
    assert version in (0, 1) and sizes >> 4 == 0x440, "iloc layout libavif does not write"
    pos = start + 6
    (count,) = struct.unpack(">H", out[pos : pos + 2])
    pos += 2
    for _ in range(count):
        pos += 2 + (2 if version else 0) + 2
        (extents,) = struct.unpack(">H", out[pos : pos + 2])
        pos += 2
        for _ in range(extents):
            (offset,) = struct.unpack(">I", out[pos : pos + 4])
            if offset >= after:
                out[pos : pos + 4] = struct.pack(">I", offset + delta)
            pos += 8
    try:
        start, _ = _find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"])
    except KeyError:
        return bytes(out)
    (count,) = struct.unpack(">I", out[start + 4 : start + 8])
    for i in range(count):
        pos = start + 8 + 4 * i
        (offset,) = struct.unpack(">I", out[pos : pos + 4])
        if offset >= after:
            out[pos : pos + 4] = struct.pack(">I", offset + delta)
    return bytes(out)


def avif_insert_before(data: bytes, kind: bytes, inserted: bytes) -> bytes:
    """Insert bytes before the first top-level box of ``kind``, offsets kept true."""
    for offset, found, _, _ in top_boxes(data):
        if found == kind:
            shifted = avif_shift(data, len(inserted), offset)
            return shifted[:offset] + inserted + shifted[offset:]
    raise KeyError(kind)


def avif_patch_box_size(data: bytes, kind: bytes, delta: int) -> bytes:
    for offset, found, _, size in top_boxes(data):
        if found == kind:
            return data[:offset] + struct.pack(">I", size + delta) + data[offset + 4 :]
    raise KeyError(kind)


def avif_set_ispe(data: bytes, width: int, height: int) -> bytes:
    start, _ = _find(data, [b"meta", b"iprp", b"ipco", b"ispe"])
    return data[: start + 4] + struct.pack(">II", width, height) + data[start + 12 :]


def avif_set_samples(data: bytes, count: int) -> bytes:
    """Rewrite the first track's stsz to ``count`` uniform samples of 1 byte, in one chunk, with
    the mdat covering them (so only the count can fail the walk)."""
    start, end = _find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsz"])
    out = bytearray(data)
    out[start + 4 : start + 12] = struct.pack(">II", 1, count)
    # The old table's bytes stay (the box keeps its size): a uniform stsz has no table to read.
    del end
    return bytes(out)


# ---------------------------------------------------------------------------------- the corpora


def _appended(cases: _Cases, fmt: str, base: bytes, end_marker: bytes) -> None:
    for name, tail in appendages(end_marker).items():
        cases.add(f"appended-{name}", fmt, base + tail, Reason.TRAILING_DATA)


def _truncations(cases: _Cases, fmt: str, name: str, data: bytes, cuts: list[int]) -> None:
    for cut in cuts:
        if 8 <= cut < len(data):
            cases.add(f"{name}-cut-at-{cut}", fmt, data[:cut], Reason.TRUNCATED)


def _png_cases(cases: _Cases) -> None:
    base = save(picture(64, 48), "PNG")
    apng = animation("PNG", 32, 24, 4)
    _appended(cases, "png", base, b"IEND\xaeB`\x82")
    cases.add("second-iend-then-script", "png", base + png_chunk(b"IEND", b"") + PHP, Reason.TRAILING_DATA)
    cases.add("second-image", "png", base + save(picture(8, 8), "PNG"), Reason.TRAILING_DATA)
    cases.add("zero-padding", "png", base + b"\x00" * 16, Reason.TRAILING_DATA)
    for chunk in (b"IHDR", b"IDAT", b"IEND"):
        offset, kind, payload = next(c for c in png_chunks(base) if c[1] == chunk)
        crc_at = offset + 8 + len(payload)
        bad = base[:crc_at] + bytes([base[crc_at] ^ 0xFF]) + base[crc_at + 1 :]
        cases.add(f"crc-{kind.decode()}", "png", bad, Reason.BAD_CHECKSUM)
    offset, _, payload = next(c for c in png_chunks(base) if c[1] == b"IDAT")
    flipped = base[: offset + 8 + len(payload) // 2] + b"\x00" + base[offset + 9 + len(payload) // 2 :]
    # A walker that inflates as it streams may trip over the changed byte before the CRC.
    cases.add("idat-byte-changed", "png", flipped, Reason.BAD_CHECKSUM, also=frozenset({Reason.BAD_STRUCTURE}))
    text = png_chunk(b"tEXt", b"Comment\x00" + b"hello " * 40)
    with_text = png_insert_before(base, b"IDAT", text)
    t_offset = next(c[0] for c in png_chunks(with_text) if c[1] == b"tEXt")
    for name, delta in (("longer", 4), ("shorter", -4)):
        length = struct.unpack(">I", with_text[t_offset : t_offset + 4])[0] + delta
        lie = with_text[:t_offset] + struct.pack(">I", length) + with_text[t_offset + 4 :]
        cases.add(f"length-{name}", "png", lie, Reason.BAD_CHECKSUM)
    huge = with_text[:t_offset] + struct.pack(">I", 0x7FFFFFF0) + with_text[t_offset + 4 :]
    # A walker may charge an ancillary chunk to the metadata budget before it reads it.
    cases.add("length-past-end", "png", huge, Reason.TRUNCATED, also=frozenset({Reason.TOO_MUCH_METADATA}))
    # Image data cut short, a well-formed ending pasted on: the CRC is right, the zlib stream is not.
    cut_idat = base[:offset] + png_chunk(b"IDAT", payload[: len(payload) // 2]) + png_chunk(b"IEND", b"")
    cases.add("idat-cut-short-iend-pasted", "png", cut_idat, Reason.BAD_STRUCTURE)
    # Frames hidden behind metadata past the head, more than the limit allows.
    many = animation("PNG", 16, 12, 12)
    big_text = png_chunk(b"zTXt", b"Comment\x00\x00" + noise(BEYOND_HEAD, 5))
    hidden = png_insert_before(many, b"IDAT", big_text)
    limits = StructureLimits(4_000, 4_000, 4_000_000, 10_000_000, 8, 1024 * 1024)
    cases.add("frames-behind-metadata", "png", hidden, Reason.TOO_MANY_FRAMES, limits)
    cases.add(
        "animation-bomb", "png", animation("PNG", 40, 40, 20), Reason.TOO_MANY_PIXELS, _limits_with_frames(TIGHT, 50)
    )
    cases.add("too-much-metadata", "png", png_insert_before(base, b"IDAT", big_text), Reason.TOO_MUCH_METADATA, TIGHT)
    cases.add("canvas-too-wide", "png", save(picture(4_100, 2), "PNG"), Reason.DIMENSIONS_TOO_LARGE, TIGHT)
    _png_structure_cases(cases, base, apng)
    _truncations(cases, "png", "still", base, png_boundaries(base))
    _truncations(cases, "png", "apng", apng, png_boundaries(apng)[::2])


def _png_rebuild(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(png_chunk(kind, payload) for kind, payload in chunks)


def _png_structure_cases(cases: _Cases, base: bytes, apng: bytes) -> None:
    """Chunks in the wrong order or number, every CRC right: only the structure is wrong."""
    chunks = [(kind, payload) for _, kind, payload in png_chunks(base)]
    ihdr, idat = chunks[0], next(c for c in chunks if c[0] == b"IDAT")
    rest = [c for c in chunks if c[0] not in (b"IHDR", b"IDAT", b"IEND")]
    half = len(idat[1]) // 2
    text = (b"tEXt", b"Comment\x00hi")
    split = [ihdr, *rest, (b"IDAT", idat[1][:half]), text, (b"IDAT", idat[1][half:]), (b"IEND", b"")]
    cases.add("idat-not-contiguous", "png", _png_rebuild(split), Reason.BAD_STRUCTURE)
    cases.add("second-ihdr", "png", _png_rebuild([ihdr, ihdr, *rest, idat, (b"IEND", b"")]), Reason.BAD_STRUCTURE)
    unknown = [ihdr, *rest, (b"ABCD", b"x"), idat, (b"IEND", b"")]
    cases.add("unknown-critical-chunk", "png", _png_rebuild(unknown), Reason.BAD_STRUCTURE)
    cases.add("iend-not-empty", "png", _png_rebuild([ihdr, *rest, idat, (b"IEND", b"x")]), Reason.BAD_STRUCTURE)
    cases.add("no-image-data", "png", _png_rebuild([ihdr, *rest, (b"IEND", b"")]), Reason.BAD_STRUCTURE)
    hidden = (b"IDAT", idat[1] + zip_ending_with(b"IEND"))
    cases.add(
        "archive-after-zlib-stream", "png", _png_rebuild([ihdr, *rest, hidden, (b"IEND", b"")]), Reason.BAD_STRUCTURE
    )
    for name, (width, height), reason in (
        ("giant-ihdr", (100_000, 100_000), Reason.DIMENSIONS_TOO_LARGE),
        ("ihdr-over-pixels", (20_000, 20_000), Reason.TOO_MANY_PIXELS),
    ):
        header = struct.pack(">II", width, height) + ihdr[1][8:]
        cases.add(name, "png", _png_rebuild([(b"IHDR", header), *rest, idat, (b"IEND", b"")]), reason)
    frames = [(kind, payload) for _, kind, payload in png_chunks(apng)]
    fctl = [i for i, (kind, _) in enumerate(frames) if kind == b"fcTL"]
    moved = list(frames)
    payload = moved[fctl[1]][1]
    moved[fctl[1]] = (b"fcTL", payload[:12] + struct.pack(">I", 30) + payload[16:])  # x offset past the canvas
    cases.add("apng-frame-outside-canvas", "png", _png_rebuild(moved), Reason.BAD_STRUCTURE)
    lying = [(kind, struct.pack(">II", 3, 0) if kind == b"acTL" else payload) for kind, payload in frames]
    cases.add("apng-actl-count-lies", "png", _png_rebuild(lying), Reason.BAD_STRUCTURE)


def _jpeg_cases(cases: _Cases) -> None:
    base = save(picture(64, 48), "JPEG", quality=85)
    _appended(cases, "jpeg", base, b"\xff\xd9")
    cases.add("second-eoi-then-html", "jpeg", base + b"\xff\xd9" + HTML, Reason.TRAILING_DATA)
    cases.add("second-image", "jpeg", base + save(picture(8, 8), "JPEG"), Reason.TRAILING_DATA)
    segments, _ = jpeg_segments(base)
    # A segment length that lies: the walker lands inside a segment or a marker's length.
    dqt = next(offset for offset, marker in segments if marker == 0xDB)
    (length,) = struct.unpack(">H", base[dqt + 2 : dqt + 4])
    for name, delta in (("longer", 3), ("shorter", -3)):
        lie = base[: dqt + 2] + struct.pack(">H", length + delta) + base[dqt + 4 :]
        cases.add(f"length-{name}", "jpeg", lie, Reason.BAD_STRUCTURE)
    # Scan data cut short, EOI pasted on: restart markers count the MCUs that are missing.
    restarts = save(picture(64, 48), "JPEG", quality=85, restart_marker_blocks=1)
    _, rscan = jpeg_segments(restarts)
    half = restarts[: (rscan + len(restarts)) // 2]
    cut = half[: half.rindex(b"\xff\xd0", rscan)]
    cases.add(
        "scan-cut-short-eoi-pasted", "jpeg", cut + b"\xff\xd9", Reason.TRUNCATED, also=frozenset({Reason.BAD_STRUCTURE})
    )
    # A giant frame header behind 100 KiB of metadata.
    icc = jpeg_with_icc(40, 30, BEYOND_HEAD)
    icc_segments, _ = jpeg_segments(icc)
    sof = next(offset for offset, marker in icc_segments if marker == 0xC0)
    giant = icc[: sof + 5] + struct.pack(">HH", 40_000, 40_000) + icc[sof + 9 :]
    cases.add("giant-frame-behind-icc", "jpeg", giant, Reason.DIMENSIONS_TOO_LARGE)
    bomb = icc[: sof + 5] + struct.pack(">HH", 20_000, 20_000) + icc[sof + 9 :]
    cases.add("frame-over-pixels-behind-icc", "jpeg", bomb, Reason.TOO_MANY_PIXELS)
    comment = jpeg_with_segment(base, 0xFE, b"x" * 65_000)
    cases.add(
        "too-much-metadata", "jpeg", jpeg_with_segment(comment, 0xFE, b"y" * 65_000), Reason.TOO_MUCH_METADATA, TIGHT
    )
    sos = next(offset for offset, marker in segments if marker == 0xDA)
    cases.add(
        "eoi-before-scan",
        "jpeg",
        base[:sos] + b"\xff\xd9",
        Reason.BAD_STRUCTURE,
        also=frozenset({Reason.TRUNCATED, Reason.CORRUPT_HEADER}),
    )
    cases.add(
        "no-frame-header",
        "jpeg",
        b"\xff\xd8" + base[sos:],
        Reason.CORRUPT_HEADER,
        also=frozenset({Reason.BAD_STRUCTURE}),
    )
    _truncations(cases, "jpeg", "baseline", base, jpeg_boundaries(base))
    progressive = save(picture(48, 32), "JPEG", quality=80, progressive=True)
    _truncations(cases, "jpeg", "progressive", progressive, jpeg_boundaries(progressive)[::3])


def _gif_cases(cases: _Cases) -> None:
    base = save(picture(64, 48).convert("P", palette=Image.Palette.ADAPTIVE), "GIF")
    moving = animation("GIF", 32, 24, 3)
    _appended(cases, "gif", base, b";")
    cases.add("second-trailer-then-svg", "gif", base + b";" + SVG, Reason.TRAILING_DATA)
    cases.add("second-image", "gif", base + save(picture(8, 8).convert("P"), "GIF"), Reason.TRAILING_DATA)
    screen = gif_screen(100, 80) + NETSCAPE_LOOP
    comment = gif_comment(noise(BEYOND_HEAD, 9))
    frames = b"".join(gif_frame(0, 0, 10, 10) for _ in range(3))
    cases.add(
        "frames-behind-comment",
        "gif",
        screen + frames + comment + frames * 3 + b";",
        Reason.TOO_MANY_FRAMES,
        StructureLimits(4_000, 4_000, 4_000_000, 10_000_000, 8, 1024 * 1024),
    )
    cases.add(
        "giant-frame-behind-comment",
        "gif",
        screen + frames + comment + gif_frame(0, 0, 40_000, 40_000) + b";",
        Reason.DIMENSIONS_TOO_LARGE,
    )
    cases.add(
        "frame-beyond-screen-over-pixels",
        "gif",
        screen + gif_frame(0, 0, 10, 10) + comment + gif_frame(3_000, 3_000, 1_500, 1_500) + b";",
        Reason.TOO_MANY_PIXELS,
        StructureLimits(30_000, 30_000, 4_000_000, 100_000_000, 8, 1024 * 1024),
    )
    cases.add(
        "frame-extent-too-wide", "gif", screen + gif_frame(3_900, 0, 200, 10) + b";", Reason.DIMENSIONS_TOO_LARGE, TIGHT
    )
    cases.add(
        "animation-bomb",
        "gif",
        screen + b"".join(gif_frame(0, 0, 60, 60) for _ in range(7)) + b";",
        Reason.TOO_MANY_PIXELS,
        TIGHT,
    )
    cases.add("frame-bomb", "gif", screen + gif_frame(0, 0, 1, 1) * 9 + b";", Reason.TOO_MANY_FRAMES, TIGHT)
    cases.add(
        "too-much-metadata", "gif", screen + gif_frame(0, 0, 10, 10) + comment + b";", Reason.TOO_MUCH_METADATA, TIGHT
    )
    cases.add(
        "xmp-over-budget",
        "gif",
        screen + b"\x21\xff\x0bXMP DataXMP" + gif_sub_blocks(noise(70_000)) + gif_frame(0, 0, 5, 5) + b";",
        Reason.TOO_MUCH_METADATA,
        TIGHT,
    )
    # Image data cut inside a sub-block, the terminator and trailer pasted on.
    blocks = gif_blocks(base)
    sub = [offset for offset, introducer in blocks if introducer == 0]
    cut_at = sub[len(sub) // 2] + 100
    cases.add("data-cut-short-trailer-pasted", "gif", base[:cut_at] + b"\x00;", Reason.TRUNCATED)
    cases.add("no-trailer", "gif", base[:-1], Reason.TRUNCATED)
    cases.add("lzw-code-size-1", "gif", screen + gif_frame(0, 0, 4, 4, code_size=1) + b";", Reason.BAD_STRUCTURE)
    cases.add("lzw-code-size-12", "gif", screen + gif_frame(0, 0, 4, 4, code_size=12) + b";", Reason.BAD_STRUCTURE)
    cases.add(
        "frame-without-data",
        "gif",
        screen + b"\x2c" + struct.pack("<HHHHB", 0, 0, 4, 4, 0) + b"\x02\x00;",
        Reason.BAD_STRUCTURE,
    )
    cases.add("no-frames", "gif", screen + gif_comment(b"hello") + b";", Reason.BAD_STRUCTURE)
    cases.add(
        "stray-byte",
        "gif",
        screen + gif_frame(0, 0, 4, 4) + b"\x00" + gif_frame(0, 0, 4, 4) + b";",
        Reason.BAD_STRUCTURE,
    )
    cases.add(
        "graphic-control-of-5",
        "gif",
        screen + b"\x21\xf9\x05\x00\x04\x00\x00\x00\x00" + gif_frame(0, 0, 4, 4) + b";",
        Reason.BAD_STRUCTURE,
    )
    cases.add(
        "application-id-of-10",
        "gif",
        screen + b"\x21\xff\x0aNETSCAPE2." + b"\x03\x01\x00\x00\x00" + gif_frame(0, 0, 4, 4) + b";",
        Reason.BAD_STRUCTURE,
    )
    cases.add("zero-size-frame", "gif", screen + gif_frame(0, 0, 0, 4) + b";", Reason.BAD_STRUCTURE)
    cases.add("zero-size-screen", "gif", gif_screen(0, 10) + gif_frame(0, 0, 4, 4) + b";", Reason.CORRUPT_HEADER)
    # A sub-block length that lies: it swallows the terminator, the walk reads data as blocks.
    lie = screen + gif_comment(b"abc")[:2] + b"\x09abc\x00" + gif_frame(0, 0, 4, 4) + b";"
    cases.add("sub-block-length-lies", "gif", lie, Reason.TRUNCATED, also=frozenset({Reason.BAD_STRUCTURE}))
    _truncations(cases, "gif", "still", base, gif_boundaries(base)[::2])
    _truncations(cases, "gif", "animated", moving, gif_boundaries(moving)[::4])


def _webp_cases(cases: _Cases) -> None:
    lossy = save(picture(64, 48), "WEBP", quality=80)
    lossless = save(picture(30, 20), "WEBP", lossless=True)
    moving = animation("WEBP", 32, 24, 3)
    _appended(cases, "webp", lossy, b"VP8 ")
    cases.add("second-riff", "webp", lossy + lossless, Reason.TRAILING_DATA)
    cases.add(
        "riff-size-covers-zip",
        "webp",
        lossy[:4] + struct.pack("<I", len(lossy) - 8 + 400) + lossy[8:] + zip_ending_with(b"x" * 50)[:400],
        Reason.BAD_STRUCTURE,
        also=frozenset({Reason.CORRUPT_HEADER}),
    )
    size = struct.unpack("<I", lossy[4:8])[0]
    for name, delta, reason in (
        ("longer", 2, Reason.TRUNCATED),
        ("much-longer", 1_000_000, Reason.TRUNCATED),
        ("shorter", -2, Reason.BAD_STRUCTURE),
        ("odd", 1, Reason.BAD_STRUCTURE),
    ):
        cases.add(f"riff-size-{name}", "webp", lossy[:4] + struct.pack("<I", size + delta) + lossy[8:], reason)
    first_size = struct.unpack("<I", lossy[16:20])[0]
    cases.add(
        "chunk-size-longer", "webp", lossy[:16] + struct.pack("<I", first_size + 10) + lossy[20:], Reason.BAD_STRUCTURE
    )
    cases.add(
        "chunk-size-shorter", "webp", lossy[:16] + struct.pack("<I", first_size - 10) + lossy[20:], Reason.BAD_STRUCTURE
    )
    # Lossy data cut short, sizes fixed up: the first partition no longer fits its chunk.
    payload = webp_chunks(lossy)[0][2]
    cases.add("vp8-cut-short-sizes-fixed", "webp", riff(riff_chunk(b"VP8 ", payload[:20])), Reason.BAD_STRUCTURE)
    cases.add(
        "vp8-not-keyframe",
        "webp",
        riff(riff_chunk(b"VP8 ", bytes([payload[0] | 1]) + payload[1:])),
        Reason.CORRUPT_HEADER,
    )
    cases.add(
        "vp8l-bad-signature",
        "webp",
        riff(riff_chunk(b"VP8L", b"\x00" + webp_chunks(lossless)[0][2][1:])),
        Reason.CORRUPT_HEADER,
    )
    cases.add(
        "unknown-first-chunk",
        "webp",
        riff(riff_chunk(b"ABCD", b"1234") + riff_chunk(b"VP8 ", payload)),
        Reason.CORRUPT_HEADER,
    )
    cases.add(
        "simple-with-extra-chunk",
        "webp",
        riff(riff_chunk(b"VP8 ", payload) + riff_chunk(b"EXIF", b"Exif\x00\x00")),
        Reason.BAD_STRUCTURE,
    )
    frames = [(0, 0, 20, 20)] * 3
    big = riff_chunk(b"XMP ", noise(BEYOND_HEAD, 12))
    cases.add(
        "frames-behind-metadata",
        "webp",
        animated_webp_by_hand(20, 20, frames * 4, big),
        Reason.TOO_MANY_FRAMES,
        StructureLimits(4_000, 4_000, 4_000_000, 10_000_000, 8, 1024 * 1024),
    )
    cases.add(
        "frame-outside-canvas",
        "webp",
        animated_webp_by_hand(20, 20, [(0, 0, 20, 20), (10, 10, 16, 16)]),
        Reason.BAD_STRUCTURE,
    )
    cases.add(
        "animation-bomb", "webp", animated_webp_by_hand(60, 60, [(0, 0, 60, 60)] * 7), Reason.TOO_MANY_PIXELS, TIGHT
    )
    cases.add(
        "canvas-too-large",
        "webp",
        riff(vp8x(0, 20_000, 20_000) + vp8l_bitstream(4, 4)),
        Reason.DIMENSIONS_TOO_LARGE,
        TIGHT,
    )
    cases.add(
        "canvas-too-many-pixels",
        "webp",
        riff(vp8x(0, 3_000, 3_000) + vp8l_bitstream(4, 4)),
        Reason.TOO_MANY_PIXELS,
        TIGHT,
    )
    cases.add("bitstream-not-canvas", "webp", riff(vp8x(0, 30, 30) + vp8l_bitstream(4, 4)), Reason.BAD_STRUCTURE)
    anim = riff_chunk(b"ANIM", b"\x00" * 6)
    cases.add(
        "anmf-without-flag",
        "webp",
        riff(vp8x(0, 4, 4) + anim + anmf(0, 0, 4, 4, vp8l_bitstream(4, 4))),
        Reason.BAD_STRUCTURE,
    )
    cases.add(
        "anmf-before-anim",
        "webp",
        riff(vp8x(2, 4, 4) + anmf(0, 0, 4, 4, vp8l_bitstream(4, 4)) + anim),
        Reason.BAD_STRUCTURE,
    )
    cases.add(
        "still-beside-frames",
        "webp",
        riff(vp8x(2, 4, 4) + anim + anmf(0, 0, 4, 4, vp8l_bitstream(4, 4)) + vp8l_bitstream(4, 4)),
        Reason.BAD_STRUCTURE,
    )
    cases.add(
        "frame-bitstream-size-differs",
        "webp",
        riff(vp8x(2, 8, 8) + anim + anmf(0, 0, 8, 8, vp8l_bitstream(4, 4))),
        Reason.BAD_STRUCTURE,
    )
    cases.add("second-vp8x", "webp", riff(vp8x(0, 4, 4) + vp8x(0, 4, 4) + vp8l_bitstream(4, 4)), Reason.BAD_STRUCTURE)
    cases.add(
        "alph-without-vp8", "webp", riff(vp8x(0x10, 4, 4) + riff_chunk(b"ALPH", b"\x00" * 16)), Reason.BAD_STRUCTURE
    )
    cases.add("no-image", "webp", riff(vp8x(0, 4, 4) + riff_chunk(b"EXIF", b"Exif\x00\x00")), Reason.BAD_STRUCTURE)
    cases.add(
        "too-much-metadata",
        "webp",
        riff(vp8x(0x08, 4, 4) + vp8l_bitstream(4, 4) + riff_chunk(b"EXIF", noise(70_000))),
        Reason.TOO_MUCH_METADATA,
        TIGHT,
    )
    _truncations(cases, "webp", "lossy", lossy, webp_boundaries(lossy))
    _truncations(cases, "webp", "animated", moving, webp_boundaries(moving)[::2])


def _avif_cases(cases: _Cases) -> None:
    still = save(picture(64, 48), "AVIF", quality=60)
    sequence = animation("AVIF", 32, 24, 3, quality=60)
    _appended(cases, "avif", still, b"mdat")
    cases.add("second-image", "avif", still + still, Reason.TRAILING_DATA)
    cases.add("stray-bytes", "avif", still + b"\x00\x00\x00", Reason.TRAILING_DATA)
    cases.add("mdat-size-longer", "avif", avif_patch_box_size(still, b"mdat", 100), Reason.TRUNCATED)
    cases.add(
        "mdat-size-shorter",
        "avif",
        avif_patch_box_size(still, b"mdat", -64),
        Reason.TRAILING_DATA,
        also=frozenset({Reason.BAD_STRUCTURE}),
    )
    cases.add("meta-size-longer", "avif", avif_patch_box_size(still, b"meta", 8), Reason.BAD_STRUCTURE)
    cases.add("meta-size-shorter", "avif", avif_patch_box_size(still, b"meta", -8), Reason.BAD_STRUCTURE)
    cases.add(
        "ftyp-size-lies",
        "avif",
        avif_patch_box_size(still, b"ftyp", 4),
        Reason.BAD_STRUCTURE,
        also=frozenset({Reason.CORRUPT_HEADER}),
    )
    # An archive riding inside mdat (sizes fixed up, so the boxes tile): no item refers to it.
    mdat_at = next(offset for offset, kind, _, _ in top_boxes(still) if kind == b"mdat")
    archive = zip_ending_with(b"mdat")
    cases.add(
        "archive-inside-mdat", "avif", avif_patch_box_size(still, b"mdat", len(archive)) + archive, Reason.BAD_STRUCTURE
    )
    cases.add("extent-past-end", "avif", still[: mdat_at + 8 + 10], Reason.TRUNCATED)
    # Item data cut short and the mdat's size fixed to match: the boxes tile, the extent does not fit.
    short = avif_patch_box_size(still, b"mdat", -100)[:-100]
    cases.add("mdat-cut-short-size-fixed", "avif", short, Reason.TRUNCATED)
    seq_mdat = next(size for _, kind, _, size in top_boxes(sequence) if kind == b"mdat")
    seq_short = avif_patch_box_size(sequence, b"mdat", 8 - seq_mdat)[: 8 - seq_mdat]
    cases.add("sequence-samples-cut-size-fixed", "avif", seq_short, Reason.TRUNCATED)
    hidden = avif_insert_before(still, b"meta", box(b"free", noise(BEYOND_HEAD, 13)))
    cases.add("giant-ispe-behind-free", "avif", avif_set_ispe(hidden, 40_000, 40_000), Reason.DIMENSIONS_TOO_LARGE)
    cases.add("ispe-over-pixels", "avif", avif_set_ispe(still, 3_000, 3_000), Reason.TOO_MANY_PIXELS, TIGHT)
    cases.add("too-much-metadata", "avif", hidden, Reason.TOO_MUCH_METADATA, TIGHT)
    cases.add("meta-over-a-mebibyte", "avif", _meta_padded(still, 1_100_000), Reason.TOO_MUCH_METADATA)
    cases.add("two-meta", "avif", _second_meta(still), Reason.BAD_STRUCTURE)
    cases.add("ftyp-not-first", "avif", _swap_first_boxes(still), Reason.CORRUPT_HEADER)
    cases.add(
        "no-avif-brand", "avif", still[:8] + b"heic" + still[12:16] + b"mif1heic" + still[24:], Reason.CORRUPT_HEADER
    )
    cases.add(
        "unknown-box-mid-file",
        "avif",
        avif_insert_before(still, b"mdat", box(b"\x00\x01ab", b"1234")),
        Reason.BAD_STRUCTURE,
    )
    cases.add("size-zero-meta", "avif", _meta_size_zero(still), Reason.BAD_STRUCTURE)
    cases.add("sequence-too-many-frames", "avif", avif_set_samples(sequence, 9), Reason.TOO_MANY_FRAMES, TIGHT)
    frames_20 = animation("AVIF", 40, 40, 14, quality=30)
    cases.add("animation-bomb", "avif", frames_20, Reason.TOO_MANY_PIXELS, _limits_with_frames(TIGHT, 50))
    seq_hidden = avif_insert_before(sequence, b"moov", box(b"free", noise(BEYOND_HEAD, 14)))
    cases.add(
        "frames-behind-free",
        "avif",
        avif_set_samples(seq_hidden, 9),
        Reason.TOO_MANY_FRAMES,
        StructureLimits(4_000, 4_000, 4_000_000, 10_000_000, 8, 1024 * 1024),
    )
    _truncations(cases, "avif", "still", still, avif_boundaries(still))
    _truncations(cases, "avif", "sequence", sequence, avif_boundaries(sequence))


def _meta_padded(data: bytes, pad: int) -> bytes:
    """The meta box grown by a free box inside it, past the walker's in-memory bound."""
    for offset, kind, _, size in top_boxes(data):
        if kind == b"meta":
            grown = data[offset + 8 : offset + size] + box(b"free", b"\x00" * pad)
            new_meta = box(b"meta", grown)
            out = data[:offset] + new_meta + data[offset + size :]
            return avif_shift(out, len(new_meta) - size, offset + size)
    raise KeyError("meta")


def _second_meta(data: bytes) -> bytes:
    for offset, kind, _, size in top_boxes(data):
        if kind == b"meta":
            meta = data[offset : offset + size]
            return avif_insert_before(data, b"mdat", meta)
    raise KeyError("meta")


def _swap_first_boxes(data: bytes) -> bytes:
    (o1, _, _, s1), (o2, _, _, s2) = top_boxes(data)[:2]
    return data[o2 : o2 + s2] + data[o1 : o1 + s1] + data[o2 + s2 :]


def _meta_size_zero(data: bytes) -> bytes:
    for offset, kind, _, _ in top_boxes(data):
        if kind == b"meta":
            return data[:offset] + b"\x00\x00\x00\x00" + data[offset + 4 :]
    raise KeyError("meta")


def _limits_with_frames(limits: StructureLimits, frames: int) -> StructureLimits:
    return StructureLimits(
        limits.max_width,
        limits.max_height,
        limits.max_pixels,
        limits.max_total_pixels,
        frames,
        limits.max_metadata_bytes,
    )


BUILDERS: dict[str, Callable[[_Cases], None]] = {
    "png": _png_cases,
    "jpeg": _jpeg_cases,
    "gif": _gif_cases,
    "webp": _webp_cases,
    "avif": _avif_cases,
}


@functools.cache
def hostile_corpus() -> tuple[Case, ...]:
    cases = _Cases()
    for fmt, build in BUILDERS.items():
        if fmt == "avif" and not avif_supported():
            continue
        build(cases)
    return tuple(cases.items)


def _valid(fmt: str, name: str, data: bytes, width: int, height: int, frames: int = 1) -> Case:  # noqa: PLR0917
    return Case(f"{fmt}-{name}", fmt, data, None, GENEROUS, width=width, height=height, frames=frames)


def _valid_png() -> Iterator[Case]:
    yield _valid("png", "rgb", save(picture(64, 48), "PNG"), 64, 48)
    yield _valid("png", "interlaced", _interlaced_png(33, 17), 33, 17)
    yield _valid("png", "palette", save(picture(20, 10).convert("P"), "PNG"), 20, 10)
    yield _valid("png", "grey-16", save(picture(9, 7).convert("I;16"), "PNG"), 9, 7)
    yield _valid("png", "rgba", save(picture(12, 12, mode="RGBA"), "PNG"), 12, 12)
    yield _valid("png", "1x1", save(Image.new("RGB", (1, 1)), "PNG"), 1, 1)
    yield _valid("png", "bilevel-odd", save(picture(17, 3).convert("1"), "PNG"), 17, 3)
    yield _valid("png", "icc-200k", save(picture(16, 16), "PNG", icc_profile=noise(200_000, 21)), 16, 16)
    yield _valid("png", "apng", animation("PNG", 32, 24, 4), 32, 24, 4)
    yield _valid(
        "png",
        "apng-text-past-head",
        png_insert_before(
            animation("PNG", 16, 12, 3), b"IDAT", png_chunk(b"tEXt", b"Comment\x00" + b"a" * BEYOND_HEAD)
        ),
        16,
        12,
        3,
    )


def _interlaced_png(width: int, height: int) -> bytes:
    """Adam7 rows written by hand (Pillow's encoder does not interlace)."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = bytearray()
    rng = random.Random(4)
    for x0, y0, dx, dy in passes:
        columns = len(range(x0, width, dx))
        for _ in range(y0, height, dy):
            if columns:
                raw += b"\x00" + rng.randbytes(3 * columns)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(bytes(raw)))
        + png_chunk(b"IEND", b"")
    )


def _valid_jpeg() -> Iterator[Case]:
    base = save(picture(64, 48), "JPEG", quality=85)
    thumbnail = save(picture(16, 12, 2), "JPEG", quality=70)
    yield _valid("jpeg", "baseline", base, 64, 48)
    yield _valid(
        "jpeg",
        "exif-thumbnail",
        jpeg_with_segment(base, 0xE1, exif_with_thumbnail(thumbnail), after_app0=False),
        64,
        48,
    )
    yield _valid(
        "jpeg", "exif-thumbnail-pillow", save(picture(40, 30), "JPEG", exif=exif_with_thumbnail(thumbnail)), 40, 30
    )
    yield _valid("jpeg", "icc-200k", jpeg_with_icc(40, 30, 200_000), 40, 30)
    yield _valid("jpeg", "progressive", save(picture(48, 32), "JPEG", quality=80, progressive=True), 48, 32)
    yield _valid("jpeg", "cmyk", save(picture(30, 20).convert("CMYK"), "JPEG", quality=90), 30, 20)
    yield _valid("jpeg", "grey", save(picture(31, 17).convert("L"), "JPEG"), 31, 17)
    yield _valid("jpeg", "1x1", save(Image.new("RGB", (1, 1)), "JPEG"), 1, 1)
    yield _valid("jpeg", "odd-17x3", save(picture(17, 3), "JPEG", subsampling=0), 17, 3)
    yield _valid("jpeg", "restart-markers", save(picture(64, 48), "JPEG", restart_marker_blocks=1), 64, 48)
    yield _valid("jpeg", "comment", jpeg_with_segment(base, 0xFE, b"made by a test " * 100), 64, 48)


def _valid_gif() -> Iterator[Case]:
    yield _valid("gif", "still", save(picture(33, 21).convert("P", palette=Image.Palette.ADAPTIVE), "GIF"), 33, 21)
    yield _valid("gif", "animated", animation("GIF", 32, 24, 3), 32, 24, 3)
    screen = gif_screen(100, 80) + NETSCAPE_LOOP
    first, rest = gif_real_frame(0, 0, 10, 10), b"".join(gif_real_frame(10 * i, 0, 10, 10, i) for i in range(1, 5))
    yield _valid(
        "gif", "animated-large-comment", screen + first + gif_comment(noise(BEYOND_HEAD, 22)) + rest + b";", 100, 80, 5
    )
    yield _valid("gif", "gif87a", gif_screen(8, 8, b"GIF87a") + gif_real_frame(0, 0, 8, 8)[8:] + b";", 8, 8)
    yield _valid("gif", "1x1", save(Image.new("P", (1, 1)), "GIF"), 1, 1)
    yield _valid("gif", "frame-beyond-screen", gif_screen(10, 10) + gif_real_frame(5, 5, 20, 20) + b";", 25, 25)
    yield _valid("gif", "interlaced", save(picture(40, 30).convert("P"), "GIF", interlace=True), 40, 30)
    yield _valid("gif", "local-colour-tables", animation("GIF", 20, 20, 4, optimize=False), 20, 20, 4)


def _valid_webp() -> Iterator[Case]:
    yield _valid("webp", "lossy", save(picture(70, 50), "WEBP", quality=80), 70, 50)
    yield _valid("webp", "lossless", save(picture(30, 20), "WEBP", lossless=True), 30, 20)
    yield _valid("webp", "lossy-alpha", save(picture(40, 30, mode="RGBA"), "WEBP", quality=80), 40, 30)
    yield _valid("webp", "lossless-alpha", save(picture(40, 30, mode="RGBA"), "WEBP", lossless=True), 40, 30)
    yield _valid("webp", "animated", animation("WEBP", 32, 24, 4), 32, 24, 4)
    exif = Image.Exif()
    exif[0x010E] = "x" * BEYOND_HEAD
    yield _valid("webp", "animated-large-exif", animation("WEBP", 32, 24, 3, exif=exif.tobytes()), 32, 24, 3)
    yield _valid("webp", "icc-200k", save(picture(20, 10), "WEBP", icc_profile=noise(200_000, 23)), 20, 10)
    yield _valid("webp", "1x1", save(Image.new("RGB", (1, 1)), "WEBP"), 1, 1)
    yield _valid("webp", "odd-17x3", save(picture(17, 3), "WEBP", lossless=True), 17, 3)
    yield _valid(
        "webp",
        "frames-by-hand",
        animated_webp_by_hand(40, 40, [(0, 0, 40, 40), (10, 10, 20, 20), (38, 38, 2, 2)]),
        40,
        40,
        3,
    )


def _valid_avif() -> Iterator[Case]:
    if not avif_supported():
        return
    still = save(picture(64, 48), "AVIF", quality=60)
    yield _valid("avif", "still", still, 64, 48)
    yield _valid("avif", "sequence", animation("AVIF", 32, 24, 3, quality=60), 32, 24, 3)
    yield _valid("avif", "alpha", save(picture(40, 30, mode="RGBA"), "AVIF", quality=60), 40, 30)
    alpha_frames = [picture(20, 20, s, mode="RGBA") for s in range(3)]
    yield _valid(
        "avif",
        "sequence-alpha",
        save(alpha_frames[0], "AVIF", save_all=True, append_images=alpha_frames[1:], quality=50),
        20,
        20,
        3,
    )
    exif = Image.Exif()
    exif[0x010E] = "x" * 1000
    yield _valid(
        "avif",
        "icc-200k-exif-xmp",
        save(picture(20, 10), "AVIF", icc_profile=noise(200_000, 24), exif=exif.tobytes(), xmp=b"<x:xmpmeta/>"),
        20,
        10,
    )
    yield _valid("avif", "1x1", save(Image.new("RGB", (1, 1)), "AVIF"), 1, 1)
    yield _valid("avif", "odd-17x3", save(picture(17, 3), "AVIF"), 17, 3)
    yield _valid("avif", "mdat-to-end", _mdat_size_zero(still), 64, 48)
    yield _valid("avif", "mdat-64-bit-size", _mdat_largesize(still), 64, 48)
    yield _valid(
        "avif", "free-box-past-head", avif_insert_before(still, b"mdat", box(b"free", b"\x00" * BEYOND_HEAD)), 64, 48
    )


def _mdat_size_zero(data: bytes) -> bytes:
    offset, _, _, _ = next(b for b in top_boxes(data) if b[1] == b"mdat")
    assert offset + next(b for b in top_boxes(data) if b[1] == b"mdat")[3] == len(data)
    return data[:offset] + b"\x00\x00\x00\x00" + data[offset + 4 :]


def _mdat_largesize(data: bytes) -> bytes:
    offset, _, _, size = next(b for b in top_boxes(data) if b[1] == b"mdat")
    shifted = avif_shift(data, 8, offset)
    return shifted[:offset] + struct.pack(">I4sQ", 1, b"mdat", size + 8) + shifted[offset + 8 :]


@functools.cache
def valid_corpus() -> tuple[Case, ...]:
    return tuple(case for fmt in FORMATS for case in globals()[f"_valid_{fmt}"]())
