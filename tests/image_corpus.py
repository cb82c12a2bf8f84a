"""Real image files made on the fly, valid and hostile, for the validator's tests and benchmark.

Valid files come from Pillow's own encoders; hostile ones are crafted byte by byte where an encoder
would refuse to make them (a PNG header announcing 100,000 x 100,000 pixels, a cut file).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass

from PIL import Image, features


@dataclass(frozen=True)
class CorpusFile:
    name: str
    data: bytes
    content_type: str
    width: int
    height: int
    frames: int = 1


def _picture(width: int, height: int, seed: int = 1) -> Image.Image:
    """A noisy RGB picture: compresses like a photo, so files have realistic sizes."""
    rng = random.Random(seed)
    base = Image.new("RGB", (width, height), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    return Image.blend(base, noise, 0.5)


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _animation(fmt: str, width: int, height: int, frames: int, **options: object) -> bytes:
    pictures = [_picture(width, height, seed) for seed in range(frames)]
    if fmt == "GIF":
        pictures = [picture.convert("P", palette=Image.Palette.ADAPTIVE) for picture in pictures]
    return _save(pictures[0], fmt, save_all=True, append_images=pictures[1:], duration=40, loop=0, **options)


def png(width: int = 64, height: int = 48) -> bytes:
    return _save(_picture(width, height), "PNG")


def jpeg(width: int = 64, height: int = 48, *, icc_profile_bytes: int = 0) -> bytes:
    options: dict[str, object] = {"quality": 85}
    if icc_profile_bytes:
        # Pillow splits a profile over as many APP2 segments as it needs (64 KiB each), all before
        # the frame header: a large one pushes SOF past the validator's first read.
        options["icc_profile"] = random.Random(7).randbytes(icc_profile_bytes)
    return _save(_picture(width, height), "JPEG", **options)


def animated_png(width: int = 32, height: int = 24, frames: int = 3) -> bytes:
    return _animation("PNG", width, height, frames)


def gif(width: int = 64, height: int = 48) -> bytes:
    return _save(_picture(width, height).convert("P", palette=Image.Palette.ADAPTIVE), "GIF")


def animated_gif(width: int = 32, height: int = 24, frames: int = 3) -> bytes:
    return _animation("GIF", width, height, frames)


def tiny_frames_gif(frames: int) -> bytes:
    """A GIF of many 1x1 frames written block by block: a frame bomb in a few bytes per frame."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 10 ms delay
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    out += b"\x3b"
    return bytes(out)


def webp_lossy(width: int = 64, height: int = 48) -> bytes:
    return _save(_picture(width, height), "WEBP", quality=80)


def webp_lossless(width: int = 64, height: int = 48) -> bytes:
    return _save(_picture(width, height), "WEBP", lossless=True)


def animated_webp(width: int = 32, height: int = 24, frames: int = 3) -> bytes:
    return _animation("WEBP", width, height, frames)


# The AV1 encoder's fastest setting: the same container and header, ten times sooner than the
# default (a 900 x 700 picture took 2 s of CPU), and the files are as large.
AVIF_OPTIONS: dict[str, object] = {"quality": 60, "speed": 10}


def avif(width: int = 64, height: int = 48) -> bytes:
    return _save(_picture(width, height), "AVIF", **AVIF_OPTIONS)


def animated_avif(width: int = 32, height: int = 24, frames: int = 3) -> bytes:
    return _animation("AVIF", width, height, frames, **AVIF_OPTIONS)


def avif_supported() -> bool:
    return bool(features.check("avif"))


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A well-formed PNG of a few dozen bytes whose header announces `width` x `height` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.domain)</script></svg>"
)
HTML_PAGE = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def valid_corpus() -> list[CorpusFile]:
    files = [
        CorpusFile("photo.png", png(64, 48), "image/png", 64, 48),
        CorpusFile("moving.png", animated_png(32, 24, 3), "image/png", 32, 24, 3),
        CorpusFile("photo.jpg", jpeg(80, 60), "image/jpeg", 80, 60),
        CorpusFile("profile.jpeg", jpeg(40, 30, icc_profile_bytes=200_000), "image/jpeg", 40, 30),
        CorpusFile("still.gif", gif(33, 21), "image/gif", 33, 21),
        CorpusFile("moving.gif", animated_gif(32, 24, 3), "image/gif", 32, 24, 3),
        CorpusFile("lossy.webp", webp_lossy(70, 50), "image/webp", 70, 50),
        CorpusFile("lossless.webp", webp_lossless(30, 20), "image/webp", 30, 20),
        CorpusFile("moving.webp", animated_webp(32, 24, 4), "image/webp", 32, 24, 4),
    ]
    if avif_supported():
        files.append(CorpusFile("still.avif", avif(64, 48), "image/avif", 64, 48))
        files.append(CorpusFile("moving.avif", animated_avif(32, 24, 3), "image/avif", 32, 24, 3))
    return files
