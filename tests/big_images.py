"""Large valid images written as streams of chunks, never held whole: for the 200 MiB HTTP test and
the validator benchmark.

- PNG: RGBA, 16 bits per channel, the image data one zlib stream of *stored* (uncompressed)
  deflate blocks split over 1 MiB IDAT chunks, every CRC and the Adler-32 right. Any decoder can
  read it; it costs no compression time to write.
- JPEG: a strip of noise encoded by Pillow with a restart marker after every MCU row; its middle
  MCU row (entropy data between two restart markers, self-contained because restarts reset the
  DC predictors) is repeated with the restart numbers renumbered, and the frame header's height
  patched. A baseline JPEG of any height, decodable by libjpeg.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IDAT_BYTES = 1 << 20
STORED_BLOCK = 65535


@dataclass(frozen=True)
class BigImage:
    width: int
    height: int
    size: int
    content_type: str
    suffix: str
    _chunks: object

    def chunks(self) -> Iterator[bytes]:
        return self._chunks()  # type: ignore[operator,no-any-return]

    def data(self) -> bytes:
        return b"".join(self.chunks())


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def big_png(target_bytes: int, width: int = 4096, seed: int = 1) -> BigImage:
    """A valid PNG of about ``target_bytes`` (at least one row)."""
    row_bytes = 1 + width * 8  # filter byte + RGBA16 pixels
    height = max(1, target_bytes // row_bytes)
    raw_length = height * row_bytes
    blocks = -(-raw_length // STORED_BLOCK)
    deflate_length = 2 + raw_length + 5 * blocks + 4
    idat_chunks = -(-deflate_length // IDAT_BYTES)
    size = len(PNG_SIGNATURE) + 25 + deflate_length + 12 * idat_chunks + 12
    rows = random.Random(seed).randbytes(width * 8 * 7)  # seven distinct rows, cycled

    def raw() -> Iterator[bytes]:
        period = [b"\x00" + rows[i * width * 8 : (i + 1) * width * 8] for i in range(7)]
        buffer = b"".join(period) * max(1, (4 << 20) // (7 * row_bytes))
        left = raw_length
        while left:
            piece = buffer[: min(left, len(buffer))]
            left -= len(piece)
            yield piece

    def deflate() -> Iterator[bytes]:
        yield b"\x78\x01"
        adler = 1
        left = raw_length
        pending = b""
        for piece in raw():
            pending += piece
            out = []
            start = 0
            while len(pending) - start >= STORED_BLOCK or (left == len(pending) - start and start < len(pending)):
                block = pending[start : start + STORED_BLOCK]
                start += len(block)
                left -= len(block)
                out.append(struct.pack("<BHH", 1 if left == 0 else 0, len(block), len(block) ^ 0xFFFF) + block)
                adler = zlib.adler32(block, adler)
            pending = pending[start:]
            yield b"".join(out)
        yield struct.pack(">I", adler)

    def chunks() -> Iterator[bytes]:
        header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
        yield PNG_SIGNATURE + _png_chunk(b"IHDR", header)
        pending = bytearray()
        for piece in deflate():
            pending += piece
            while len(pending) >= IDAT_BYTES:
                yield _png_chunk(b"IDAT", bytes(pending[:IDAT_BYTES]))
                del pending[:IDAT_BYTES]
        if pending:
            yield _png_chunk(b"IDAT", bytes(pending))
        yield _png_chunk(b"IEND", b"")

    return BigImage(width, height, size, "image/png", "png", chunks)


def _jpeg_parts(width: int, seed: int) -> tuple[bytes, bytes, bytes, int]:
    """(header up to the first MCU row's end, one middle MCU row with its RST, the end), MCU height."""
    rng = random.Random(seed)
    noise = Image.frombytes("RGB", (width, 48), rng.randbytes(width * 48 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=90, restart_marker_rows=1, subsampling=2)
    data = buffer.getvalue()
    restarts = [i for i in range(len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    # 4:2:0: MCU rows of 16 pixels, so 48 rows of pixels make three MCU rows and two restarts.
    first, second = restarts[0], restarts[1]
    return data[: first + 2], data[first + 2 : second + 2], data[second + 2 :], 16


def big_jpeg(target_bytes: int, width: int = 8192, seed: int = 1) -> BigImage:
    """A valid baseline JPEG of about ``target_bytes``."""
    head, middle, end, mcu_height = _jpeg_parts(width, seed)
    repeats = max(0, (target_bytes - len(head) - len(end)) // len(middle))
    height = mcu_height * (repeats + 2)  # the first row, the repeated rows, the last row
    sof = head.index(b"\xff\xc0")
    head = head[: sof + 5] + struct.pack(">H", height) + head[sof + 7 :]
    size = len(head) + repeats * len(middle) + len(end)
    body = middle[:-1]  # the row and the FF of its restart marker; the number follows per row

    def chunks() -> Iterator[bytes]:
        yield head
        batch: list[bytes] = []
        for row in range(1, repeats + 1):
            batch.append(body + bytes((0xD0 + row % 8,)))  # the restart after MCU row j is RST(j mod 8)
            if len(batch) >= 64:
                yield b"".join(batch)
                batch.clear()
        if batch:
            yield b"".join(batch)
        yield end

    return BigImage(width, height, size, "image/jpeg", "jpg", chunks)


GIF_GROUP = 254  # literals between clear codes: 9-bit codes never grow (the "uncompressed GIF" idiom)
GIF_BLOCK_PIXELS = 8 * GIF_GROUP  # eight groups of 255 9-bit codes end on a byte boundary...
GIF_ROW_BLOCKS = 32


def _gif_block(seed: int) -> bytes:
    """Eight groups (clear + 254 literals, 9 bits each) = 2,295 bytes = nine full sub-blocks."""
    rng = random.Random(seed)
    bits = 0
    count = 0
    out = bytearray()
    for _ in range(8):
        for code in (256, *rng.randbytes(GIF_GROUP)):
            bits |= code << count
            count += 9
            while count >= 8:
                out.append(bits & 0xFF)
                bits >>= 8
                count -= 8
    assert count == 0 and len(out) == 9 * 255
    return b"".join(b"\xff" + out[i : i + 255] for i in range(0, len(out), 255))


def big_gif(target_bytes: int, seed: int = 1) -> BigImage:
    """A valid single-frame GIF of about ``target_bytes``: a 256-colour frame of noise whose LZW
    data never compresses (a clear code every 254 literals), written as a stream."""
    block = _gif_block(seed)
    width = GIF_BLOCK_PIXELS * GIF_ROW_BLOCKS
    row = block * GIF_ROW_BLOCKS
    height = max(1, min(65535, target_bytes // len(row)))
    palette = random.Random(seed).randbytes(768)
    head = (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0xF7, 0, 0)
        + palette
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x08"
    )
    end = b"\x02" + struct.pack("<H", 257) + b"\x00" + b"\x3b"  # end code (9 bits, padded), terminator, trailer
    size = len(head) + height * len(row) + len(end)

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(height):
            yield row
        yield end

    return BigImage(width, height, size, "image/gif", "gif", chunks)
