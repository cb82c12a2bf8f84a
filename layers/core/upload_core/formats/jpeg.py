"""JPEG, walked marker by marker from SOI to EOI, the entropy-coded data scanned to its end.

- SOI first; every marker segment's length read and its payload skipped (or checked: SOF, SOS,
  DQT, DHT, DRI); fill bytes (FF FF ...) before a marker are allowed;
- exactly one frame header (SOFn) before the first scan, with its dimensions within the limits;
  tables and scans in any number (a progressive JPEG has many scans);
- the entropy-coded data after each SOS is scanned in C (a regular expression over the buffered
  chunk) for the next marker: stuffed bytes (FF 00), restart markers (FF D0-D7) and fill bytes
  belong to the data. With a restart interval (DRI) each scan must hold exactly the restart
  markers its MCU count needs: a scan cut short and given a well-formed EOI loses some. (The
  Huffman data itself is not decoded: that would cost the rate.);
- APPn and COM segments count against the metadata budget. An EXIF thumbnail is a JPEG inside
  an APP1 segment: skipped with it, legitimate;
- nothing after EOI (``trailing-data``), with one opt-in exception below.

Camera trailers. An MPO (multi-picture: stereo pairs, camera previews) stores further JPEGs after
the first one's EOI and indexes them in an APP2 ``MPF`` segment of the first image. With
``StructureLimits.allow_indexed_jpeg_trailers`` those trailers pass when the index accounts for every byte after the
first EOI (the entries' offsets tile the rest of the object exactly) and each indexed
image is itself a valid JPEG walked to its own EOI; they count as frames (Pillow opens such a
file as MPO with one frame per image). Without it (the default), any byte after the first EOI is
``trailing-data``. Phone "motion photos" append an MP4 after EOI, announced only in XMP: no index
proves those bytes, so they are ``trailing-data`` in both modes.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import FrameCounter, ImageFacts, MetadataBudget, StructureLimits
from upload_core.formats.stream import ChunkReader

SOI, EOI, SOS, DHT, DQT, DRI, DNL, COM = 0xD8, 0xD9, 0xDA, 0xC4, 0xDB, 0xDD, 0xDC, 0xFE
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_APP = frozenset(range(0xE0, 0xF0))
# Segments with a length whose payload we skip after the checks below.
_TABLES = frozenset({DHT, DQT, DRI, 0xCC})  # 0xCC: arithmetic conditioning (DAC)
# A marker inside entropy-coded data: FF followed by anything but 00 (stuffing), D0-D7 (restart)
# or FF (fill). Searched in C over the buffered chunk.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_RESTART = re.compile(rb"\xff[\xd0-\xd7]")
# Lossless processes count restart intervals in rows of pixels, not in blocks: not checked.
_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_MPF = b"MPF\x00"
_MP_ENTRY_TAG = 0xB002


@dataclass(frozen=True, slots=True)
class MpEntry:
    """One image of an MPO index: absolute start offset in the object and declared size."""

    start: int
    size: int


@dataclass(slots=True)
class _Image:
    width: int = 0
    height: int = 0
    scans: int = 0
    mp_entries: list[MpEntry] | None = None
    # Component id -> (horizontal, vertical) sampling factors, from the frame header.
    sampling: dict[int, tuple[int, int]] = field(default_factory=dict)
    lossless: bool = False
    # MCUs between restart markers (DRI); 0: no restart markers.
    restart_interval: int = 0

    def mcus(self, components: list[int]) -> int:
        """MCUs in a scan of these components (ITU T.81 A.2; libjpeg's jdinput.c)."""
        h_max = max(h for h, _ in self.sampling.values())
        v_max = max(v for _, v in self.sampling.values())
        if len(components) == 1:  # non-interleaved: one block per MCU
            h, v = self.sampling[components[0]]
            return -(-self.width * h // (8 * h_max)) * -(-self.height * v // (8 * v_max))
        return -(-self.width // (8 * h_max)) * -(-self.height // (8 * v_max))


class _Walk:
    def __init__(self, reader: ChunkReader, limits: StructureLimits) -> None:
        self.reader = reader
        self.frames = FrameCounter(limits)
        self.budget = MetadataBudget(limits)

    def image(self, *, first: bool) -> _Image:
        """One JPEG from SOI to EOI; the reader is left just after EOI."""
        start = self.reader.position
        if self.reader.read(2) != b"\xff\xd8":
            raise StructureError(Reason.CORRUPT_HEADER if first else Reason.BAD_STRUCTURE, f"no SOI at {start}")
        image = _Image()
        while True:
            marker = self._marker()
            if marker == EOI:
                if image.scans == 0:
                    raise StructureError(Reason.BAD_STRUCTURE, "EOI before any scan")
                return image
            if marker in (SOI, 0x01) or 0xD0 <= marker <= 0xD7:
                raise StructureError(Reason.BAD_STRUCTURE, f"marker FF{marker:02X} outside a scan")
            length = self._length(marker)
            if marker in _SOF:
                self._frame(image, length, first=first)
                image.lossless = marker in _LOSSLESS
            elif marker == SOS:
                self._scan(image, length)
            elif marker in _APP or marker == COM:
                self.budget.spend(length + 2, f"FF{marker:02X}")
                if first and marker == 0xE2 and length >= 6:
                    self._app2(image, length)
                else:
                    self.reader.skip(length - 2)
            elif marker == DRI:
                if length != 4:
                    raise StructureError(Reason.BAD_STRUCTURE, f"DRI segment of {length} bytes")
                image.restart_interval = int.from_bytes(self.reader.read(2))
            elif marker in _TABLES or marker == DNL:
                if marker in (DQT, DHT) and length < 3:
                    raise StructureError(Reason.BAD_STRUCTURE, f"FF{marker:02X} segment of {length} bytes")
                if marker == DNL and length != 4:
                    raise StructureError(Reason.BAD_STRUCTURE, f"DNL segment of {length} bytes")
                self.reader.skip(length - 2)
            else:
                raise StructureError(Reason.BAD_STRUCTURE, f"unexpected marker FF{marker:02X}")

    def _marker(self) -> int:
        first = self.reader.read(1)
        if first != b"\xff":
            raise StructureError(Reason.BAD_STRUCTURE, f"no marker at {self.reader.position - 1}")
        while True:
            marker = self.reader.read(1)[0]
            if marker != 0xFF:  # FF FF...: fill bytes before the marker
                if marker == 0x00:
                    raise StructureError(Reason.BAD_STRUCTURE, f"FF00 outside a scan at {self.reader.position - 2}")
                return marker

    def _length(self, marker: int) -> int:
        length = int.from_bytes(self.reader.read(2))
        if length < 2:
            raise StructureError(Reason.BAD_STRUCTURE, f"FF{marker:02X} segment length {length}")
        return length

    def _frame(self, image: _Image, length: int, *, first: bool) -> None:
        if image.width:
            raise StructureError(Reason.BAD_STRUCTURE, "a second frame header")
        body = self.reader.read(length - 2)
        if len(body) < 6:
            raise StructureError(Reason.CORRUPT_HEADER, "frame header too short")
        precision, height, width, components = struct.unpack_from(">BHHB", body)
        if components == 0 or len(body) != 6 + 3 * components or precision not in (8, 12, 16):
            raise StructureError(Reason.CORRUPT_HEADER, f"frame header of {length} bytes for {components} components")
        if height == 0 or width == 0:
            # Height 0 defers it to a DNL segment after the first scan: no decoder we use reads that.
            raise StructureError(Reason.CORRUPT_HEADER, f"frame {width}x{height}")
        for index in range(components):
            component, factors = body[6 + 3 * index], body[7 + 3 * index]
            h, v = factors >> 4, factors & 0x0F
            if not (1 <= h <= 4 and 1 <= v <= 4) or component in image.sampling:
                raise StructureError(Reason.CORRUPT_HEADER, f"component {component} sampling {h}x{v}")
            image.sampling[component] = (h, v)
        if first:
            self.frames.check_canvas(width, height)
        self.frames.add_frame(width, height)
        image.width, image.height = width, height

    def _scan(self, image: _Image, length: int) -> None:
        if not image.width:
            raise StructureError(Reason.BAD_STRUCTURE, "a scan before the frame header")
        body = self.reader.read(length - 2)
        if not body or len(body) != 4 + 2 * body[0] or body[0] == 0:
            raise StructureError(Reason.BAD_STRUCTURE, f"scan header of {length} bytes")
        components = [body[1 + 2 * index] for index in range(body[0])]
        if any(component not in image.sampling for component in components):
            raise StructureError(Reason.BAD_STRUCTURE, f"scan of components {components} not in the frame")
        image.scans += 1
        restarts = self._entropy_data()
        if image.restart_interval and not image.lossless:
            # A scan cut short and given a well-formed ending loses its last restart markers.
            expected = -(-image.mcus(components) // image.restart_interval) - 1
            if restarts != expected:
                raise StructureError(Reason.BAD_STRUCTURE, f"scan has {restarts} restart markers, not {expected}")

    def _entropy_data(self) -> int:
        """Move over entropy-coded data, leaving the reader on the FF of the next real marker;
        returns the restart markers met on the way."""
        reader = self.reader
        restarts = 0
        while True:
            at = reader.search(_MARKER_IN_SCAN)
            buffered = reader.buffered()
            if at >= 0:
                restarts += len(_RESTART.findall(buffered, 0, at))
                reader.consume(at)
                return restarts
            if not len(buffered):
                raise StructureError(Reason.TRUNCATED, "the scan data has no end")
            # Keep a final FF: the byte after it is in the next chunk.
            keep = 1 if buffered[-1] == 0xFF else 0
            restarts += len(_RESTART.findall(buffered, 0, len(buffered) - keep))
            reader.consume(len(buffered) - keep)
            if keep:
                pair = reader.peek(2)
                if len(pair) < 2:
                    raise StructureError(Reason.TRUNCATED, "the scan data has no end")
                if pair[1] in (0x00, 0xFF) or 0xD0 <= pair[1] <= 0xD7:
                    restarts += 0xD0 <= pair[1] <= 0xD7
                    reader.consume(1)
                else:
                    return restarts

    def _app2(self, image: _Image, length: int) -> None:
        """APP2: an MPF index is read (for the trailer policy); anything else is skipped."""
        payload = length - 2
        tag = self.reader.read(4)
        payload -= 4
        if tag != _MPF or payload > 1 << 16:
            self.reader.skip(payload)
            return
        mp_header_at = self.reader.position
        data = self.reader.read(payload)
        image.mp_entries = _mp_entries(data, mp_header_at)


def _mp_entries(data: bytes, base: int) -> list[MpEntry]:
    """The MP Entry list of an MPF segment; offsets in the segment are relative to its TIFF
    header (``base``), except the first image's, which is 0."""
    try:
        order = {b"II": "<", b"MM": ">"}[data[:2]]
        (ifd,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, ifd)
        for index in range(count):
            tag, _type, items, value = struct.unpack_from(order + "HHII", data, ifd + 2 + 12 * index)
            if tag != _MP_ENTRY_TAG:
                continue
            if items % 16 or items == 0:
                break
            entries = []
            for number in range(items // 16):
                _attributes, size, offset, _dep1, _dep2 = struct.unpack_from(order + "IIIHH", data, value + 16 * number)
                entries.append(MpEntry(start=base + offset if number else 0, size=size))
            return entries
    except (KeyError, struct.error):
        pass
    raise StructureError(Reason.BAD_STRUCTURE, "an MPF segment without a readable MP Entry list")


def walk(reader: ChunkReader, limits: StructureLimits) -> ImageFacts:
    walker = _Walk(reader, limits)
    first = walker.image(first=True)
    if limits.allow_indexed_jpeg_trailers and first.mp_entries is not None and not reader.at_end():
        _indexed_trailers(walker, first.mp_entries)
    reader.expect_end()
    return ImageFacts(
        width=first.width,
        height=first.height,
        frames=walker.frames.frames,
        total_pixels=walker.frames.total_pixels,
        metadata_bytes=walker.budget.used,
    )


def _indexed_trailers(walker: _Walk, entries: list[MpEntry]) -> None:
    """Every byte after the first EOI belongs to an indexed image, in order, each a whole JPEG.

    The entries' offsets must tile the rest of the object; their sizes are not trusted (Pillow,
    for one, writes wrong sizes from the third image on): each image is measured by its own walk.
    """
    reader = walker.reader
    if entries[0].start != 0:
        raise StructureError(Reason.TRAILING_DATA, "the MP index does not start with the first image")
    for entry in sorted(entries[1:], key=lambda item: item.start):
        if entry.start != reader.position:
            raise StructureError(Reason.TRAILING_DATA, f"unindexed bytes at {reader.position}")
        walker.image(first=False)
