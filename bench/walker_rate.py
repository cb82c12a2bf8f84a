"""How fast the GIF, WebP and AVIF walkers move through a large object, in process.

A quick measure (not part of ``make bench``): each object (~100 MiB by default) is made in memory
once, then walked from an iterator of chunks, as a streamed GET body would arrive; the rate is
object bytes over the walk's wall time, best of a few runs.

    PYTHONPATH=layers/core .venv/bin/python -m bench.walker_rate [--mib 100] [--chunk-kib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import importlib
import os
import struct
import time
from collections.abc import Callable, Iterator

from upload_core.formats.facts import StructureLimits
from upload_core.formats.stream import ChunkReader

LIMITS = StructureLimits(30_000, 30_000, 100_000_000, 10_000_000_000, 1_000, 16 * 1024 * 1024)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def gif(payload: int) -> bytes:
    """One 10,000 x 10,000 frame whose LZW data is ``payload`` bytes in 255-byte sub-blocks."""
    head = b"GIF89a" + struct.pack("<HHBBB", 10_000, 10_000, 0x87, 0, 0) + os.urandom(768)
    head += b"\x2c" + struct.pack("<HHHHB", 0, 0, 10_000, 10_000, 0) + b"\x08"
    block = b"\xff" + os.urandom(255)
    blocks = block * (payload // 255)
    return head + blocks + b"\x00\x3b"


def webp(payload: int) -> bytes:
    """A simple lossless WebP whose VP8L bitstream is ``payload`` bytes (never decoded)."""
    width, height = 10_000, 10_000
    bits = (width - 1) | (height - 1) << 14
    body = b"\x2f" + struct.pack("<I", bits) + os.urandom(1024) * (payload // 1024)
    body += b"\x00" if len(body) & 1 else b""
    chunk = b"VP8L" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def avif(payload: int) -> bytes:
    """ftyp, a meta whose one item covers an mdat of ``payload`` bytes, the mdat."""

    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    ftyp = box(b"ftyp", b"avif\x00\x00\x00\x00avifmif1miaf")

    def meta(offset: int) -> bytes:
        hdlr = box(b"hdlr", b"\x00" * 8 + b"pict" + b"\x00" * 13)
        pitm = box(b"pitm", b"\x00" * 4 + b"\x00\x01")
        iloc = box(
            b"iloc",
            b"\x00" * 4 + b"\x44\x00" + b"\x00\x01" + b"\x00\x01\x00\x00\x00\x01" + struct.pack(">II", offset, payload),
        )
        infe = box(b"infe", b"\x02\x00\x00\x00" + b"\x00\x01\x00\x00av01Color\x00")
        iinf = box(b"iinf", b"\x00" * 4 + b"\x00\x01" + infe)
        ispe = box(b"ispe", b"\x00" * 4 + struct.pack(">II", 10_000, 10_000))
        ipma = box(b"ipma", b"\x00" * 4 + b"\x00\x00\x00\x01" + b"\x00\x01\x01\x81")
        iprp = box(b"iprp", box(b"ipco", ispe) + ipma)
        return box(b"meta", b"\x00" * 4 + hdlr + pitm + iloc + iinf + iprp)

    offset = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(offset) + struct.pack(">I", 8 + payload) + b"mdat" + os.urandom(1024) * (payload // 1024)


MAKERS: dict[str, Callable[[int], bytes]] = {"gif": gif, "webp": webp, "avif": avif}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for fmt, make in MAKERS.items():
        data = make(args.mib * 1024 * 1024)
        walker = importlib.import_module(f"upload_core.formats.{fmt}")
        best = float("inf")
        for _ in range(args.runs):
            chunks = list(_chunks(data, args.chunk_kib * 1024))
            started = time.perf_counter()
            facts = walker.walk(ChunkReader(chunks), LIMITS)
            best = min(best, time.perf_counter() - started)
        rate = len(data) / best / (1024 * 1024)
        size = f"{len(data) / 2**20:.0f} MiB"
        print(f"{fmt}: {size} in {best * 1000:.0f} ms = {rate:,.0f} MiB/s ({facts.width}x{facts.height})")


if __name__ == "__main__":
    main()
