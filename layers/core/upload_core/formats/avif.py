"""AVIF (ISO BMFF), walked box by box: top-level boxes tiling the object, every extent accounted for.

What must hold:

- ``ftyp`` first, with an ``avif`` or ``avis`` brand; then top-level boxes whose sizes tile the
  object exactly (64-bit sizes allowed; size 0, "to the end", only for ``mdat`` and padding);
  at most one ``meta`` (the image items) and one ``moov`` (a sequence's tracks), at least one of
  them, and ``mdat`` boxes that are moved over without being read or held;
- ``meta`` and ``moov`` are read into memory only up to 1 MiB each, and every box inside them
  must tile its parent; ``meta``'s handler is ``pict``, its primary item exists and has an
  ``ispe`` (every ``ispe`` is held to the dimension and pixel limits);
- every item extent (``iloc``) and every sample (``stsz``/``stsc``/``stco``) lies inside an
  ``mdat`` (or ``idat``) of this object, and together they cover every ``mdat`` byte: an extent
  past the end is truncation, and bytes no item or sample refers to (an archive riding inside
  ``mdat``) fail;
- a sequence's frames are the samples of its largest ``pict`` track, each measured with the
  track's ``tkhd`` dimensions; a still image is one frame of its primary item's ``ispe``;
- ``free``, ``skip``, ``uuid`` and other known but unused top-level boxes count as metadata. A
  top-level box type that ISO BMFF does not define (or a second ``ftyp``) after a complete image
  is trailing data: an appended archive or page lands there.

Extents are checked when the walk ends, because only then is the object's size known; the list
is bounded (items, extents and samples are capped).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.facts import FrameCounter, ImageFacts, MetadataBudget, StructureLimits
from upload_core.formats.stream import MAX_READ, ChunkReader

MAX_META_BYTES = MAX_READ  # meta and moov are read whole, so they stay small
MAX_FTYP_BYTES = 4096
MAX_ITEMS = 4096
MAX_EXTENTS = 4096
MAX_TRACKS = 16
MAX_MDATS = 64
BRANDS = frozenset({b"avif", b"avis"})
# Items that are not pictures: Exif, and XMP (a mime item).
_METADATA_ITEMS = frozenset({b"Exif", b"mime"})
# Top-level boxes ISO BMFF defines: anything else after a complete image is trailing data.
_PADDING = frozenset({b"free", b"skip"})
_OTHER_TOP = frozenset({b"uuid", b"udta", b"pdin", b"styp", b"sidx", b"ssix", b"prft", b"emsg", b"meco", b"jumb"})


def _fail(detail: str) -> StructureError:
    return StructureError(Reason.BAD_STRUCTURE, detail)


class _Cursor:
    """Big-endian fields read from one box's bytes; reading past the box is a lie in its size."""

    def __init__(self, data: bytes, pos: int, end: int, what: str) -> None:
        self.data, self.pos, self.end, self.what = data, pos, end, what

    def uint(self, n: int) -> int:
        if self.pos + n > self.end:
            raise _fail(f"{self.what} is shorter than its fields")
        value = int.from_bytes(self.data[self.pos : self.pos + n], "big")
        self.pos += n
        return value

    def raw(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise _fail(f"{self.what} is shorter than its fields")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value


def _children(data: bytes, start: int, end: int, parent: str) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box tiling data[start:end]."""
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise _fail(f"{end - pos} stray bytes at the end of {parent}")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise _fail(f"{parent}: a 64-bit box size cut off")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        if size < header or pos + size > end:
            raise _fail(f"box {kind!r} of {size} bytes does not fit in {parent}")
        yield kind, pos + header, pos + size
        pos += size


@dataclass
class _Track:
    handler: bytes = b""
    width: int = 0
    height: int = 0
    samples: int = 0


@dataclass
class _Walk:
    reader: ChunkReader
    limits: StructureLimits
    frames: FrameCounter = field(init=False)
    budget: MetadataBudget = field(init=False)
    major_brand: bytes = b""
    brands: set[bytes] = field(default_factory=set)
    seen: set[bytes] = field(default_factory=set)
    # (offset, length or None for "to the end of the object") of every item extent and sample chunk.
    ranges: list[tuple[int, int | None]] = field(default_factory=list)
    idat_ranges: list[tuple[int, int]] = field(default_factory=list)
    idat_size: int | None = None
    # (payload start, payload end or None for "to the end of the object") of every mdat.
    mdats: list[tuple[int, int | None]] = field(default_factory=list)
    primary_size: tuple[int, int] | None = None
    tracks: list[_Track] = field(default_factory=list)
    # Bytes of each item, to charge metadata items (Exif, XMP) to the budget.
    item_bytes: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frames = FrameCounter(self.limits)
        self.budget = MetadataBudget(self.limits)

    # ------------------------------------------------------------------ top level

    def run(self) -> ImageFacts:
        while not self.reader.at_end():
            self._top_box()
        if b"ftyp" not in self.seen:
            raise StructureError(Reason.TRUNCATED, "no ftyp box")
        # The object ended before the boxes an image needs.
        if b"meta" not in self.seen and b"moov" not in self.seen:
            raise StructureError(Reason.TRUNCATED, "neither meta nor moov")
        if self.major_brand == b"avis" and b"moov" not in self.seen:
            raise StructureError(Reason.TRUNCATED, "an avis sequence without moov")
        self._check_extents(self.reader.position)
        return self._facts()

    def _complete(self) -> bool:
        return b"ftyp" in self.seen and bool(self.seen & {b"meta", b"moov"}) and bool(self.mdats)

    def _not_a_box(self, detail: str) -> StructureError:
        # After a whole image, what does not parse as a box is something appended to it.
        return StructureError(Reason.TRAILING_DATA if self._complete() else Reason.BAD_STRUCTURE, detail)

    def _top_box(self) -> None:
        start = self.reader.position
        head = self.reader.peek(8)
        if len(head) < 8:
            if self._complete():
                raise StructureError(Reason.TRAILING_DATA, f"{len(head)} stray bytes at {start}")
            raise StructureError(Reason.TRUNCATED, f"object ends inside a box header at {start}")
        size, kind = struct.unpack(">I4s", head)
        if not start and kind != b"ftyp":
            raise StructureError(Reason.CORRUPT_HEADER, "the first box is not ftyp")
        known = kind in {b"ftyp", b"meta", b"moov", b"mdat"} | _PADDING | _OTHER_TOP
        if not known or (kind == b"ftyp" and start):
            raise self._not_a_box(f"{kind!r} at {start} is not a top-level box of an AVIF file")
        self.reader.skip(8)
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", self.reader.read(8))
            header = 16
        if size == 0:
            if kind not in {b"mdat"} | _PADDING:
                raise _fail(f"{kind!r} at {start} has size 0 (to the end)")
            payload: int | None = None
        elif size < header:
            raise _fail(f"box {kind!r} at {start} of {size} bytes")
        else:
            payload = size - header
        if kind in {b"ftyp", b"meta", b"moov"}:
            if kind in self.seen:
                raise _fail(f"a second {kind.decode()} box")
            self.seen.add(kind)
            assert payload is not None
            self._read_box(kind, payload)
        elif kind == b"mdat":
            if len(self.mdats) >= MAX_MDATS:
                raise _fail(f"more than {MAX_MDATS} mdat boxes")
            body = self.reader.position
            self._skip(payload)
            self.mdats.append((body, None if payload is None else body + payload))
        elif payload is None:
            self._skip(None, count=True)
        else:
            self.budget.spend(payload, kind.decode("latin-1"))
            self._skip(payload)

    def _skip(self, payload: int | None, count: bool = False) -> None:
        if payload is not None:
            self.reader.skip(payload)
            return
        while True:
            buffer = self.reader.buffered()
            if not buffer:
                return
            if count:
                self.budget.spend(len(buffer), "padding to the end")
            self.reader.consume(len(buffer))

    def _read_box(self, kind: bytes, payload: int) -> None:
        if kind == b"ftyp":
            if payload > MAX_FTYP_BYTES or payload < 8 or payload % 4:
                raise StructureError(Reason.CORRUPT_HEADER, f"ftyp of {payload} bytes")
            data = self.reader.read(payload)
            self.major_brand = data[0:4]
            self.brands = {data[0:4]} | {data[i : i + 4] for i in range(8, payload, 4)}
            if self.brands.isdisjoint(BRANDS):
                raise StructureError(Reason.CORRUPT_HEADER, "ftyp names neither avif nor avis")
            return
        if payload > MAX_META_BYTES:
            reason = Reason.TOO_MUCH_METADATA if kind == b"meta" else Reason.BAD_STRUCTURE
            raise StructureError(reason, f"{kind.decode()} box of {payload} bytes (over {MAX_META_BYTES})")
        data = self.reader.read(payload)
        if kind == b"meta":
            self._meta(data)
        else:
            self._moov(data)

    # ------------------------------------------------------------------ meta

    def _meta(self, data: bytes) -> None:
        if len(data) < 4 or data[0] != 0:
            raise _fail("meta is not a version 0 full box")
        handler = b""
        primary: int | None = None
        items: dict[int, bytes] | None = None
        properties: list[tuple[bytes, bytes]] = []
        associations: dict[int, list[int]] = {}
        seen: set[bytes] = set()
        for kind, start, end in _children(data, 4, len(data), "meta"):
            if kind in seen and kind != b"free":
                raise _fail(f"a second {kind!r} in meta")
            seen.add(kind)
            if kind == b"hdlr":
                handler = _Cursor(data, start, end, "hdlr").raw(12)[8:12]
            elif kind == b"pitm":
                cursor = _Cursor(data, start, end, "pitm")
                primary = cursor.uint(4 if cursor.uint(4) >> 24 else 2)
            elif kind == b"iloc":
                self._iloc(data, start, end)
            elif kind == b"iinf":
                items = self._iinf(data, start, end)
            elif kind == b"iprp":
                properties, associations = self._iprp(data, start, end)
            elif kind == b"idat":
                self.idat_size = end - start
            elif kind not in (b"iref", b"dinf", b"grpl", b"free"):
                self.budget.spend(end - start, f"meta/{kind.decode('latin-1')}")
        for item, item_type in (items or {}).items():
            if item_type in _METADATA_ITEMS:
                self.budget.spend(self.item_bytes.get(item, 0), f"{item_type.decode('latin-1')} item")
        if handler != b"pict":
            raise StructureError(Reason.CORRUPT_HEADER, f"meta handler {handler!r}, not pict")
        if primary is None or items is None or primary not in items:
            raise _fail("no primary item, or it is not listed in iinf")
        for index in associations.get(primary, []):
            if properties[index - 1][0] == b"ispe":
                width, height = struct.unpack(">II", properties[index - 1][1][4:12])
                self.primary_size = (width, height)
        if self.primary_size is None:
            raise StructureError(Reason.CORRUPT_HEADER, "the primary item has no ispe")
        if self.idat_size is None and self.idat_ranges:
            raise _fail("iloc points into an idat that does not exist")
        for offset, length in self.idat_ranges:
            if offset + length > (self.idat_size or 0):
                raise _fail("an iloc extent runs past idat")

    def _iloc(self, data: bytes, start: int, end: int) -> None:
        cursor = _Cursor(data, start, end, "iloc")
        version = cursor.uint(1)
        cursor.uint(3)
        if version > 2:
            raise _fail(f"iloc version {version}")
        sizes = cursor.uint(2)
        offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
        index_size = sizes & 15 if version else 0
        if not {offset_size, length_size, base_size, index_size} <= {0, 4, 8}:
            raise _fail("iloc field sizes")
        count = cursor.uint(4 if version == 2 else 2)
        if count > MAX_ITEMS:
            raise _fail(f"iloc lists {count} items")
        for _ in range(count):
            item = cursor.uint(4 if version == 2 else 2)
            method = cursor.uint(2) & 15 if version else 0
            reference = cursor.uint(2)
            base = cursor.uint(base_size)
            extents = cursor.uint(2)
            if len(self.ranges) + len(self.idat_ranges) + extents > MAX_EXTENTS:
                raise _fail(f"more than {MAX_EXTENTS} item extents")
            if method > 2 or (method == 0 and reference):
                raise _fail("iloc construction method or external data reference")
            for _ in range(extents):
                cursor.uint(index_size)
                offset = base + cursor.uint(offset_size)
                length = cursor.uint(length_size)
                self.item_bytes[item] = self.item_bytes.get(item, 0) + length
                if method == 0:
                    self.ranges.append((offset, length or None))
                elif method == 1:
                    self.idat_ranges.append((offset, length))
        if cursor.pos != end:
            raise _fail("iloc has bytes after its items")

    def _iinf(self, data: bytes, start: int, end: int) -> dict[int, bytes]:
        cursor = _Cursor(data, start, end, "iinf")
        count = cursor.uint(4 if cursor.uint(4) >> 24 else 2)
        if count > MAX_ITEMS:
            raise _fail(f"iinf lists {count} items")
        items: dict[int, bytes] = {}
        for kind, s, e in _children(data, cursor.pos, end, "iinf"):
            if kind != b"infe":
                raise _fail(f"{kind!r} in iinf")
            entry = _Cursor(data, s, e, "infe")
            version = entry.uint(4) >> 24
            if version < 2:
                raise _fail(f"infe version {version}")
            item = entry.uint(4 if version == 3 else 2)
            entry.uint(2)
            items[item] = entry.raw(4)
        if len(items) != count:
            raise _fail(f"iinf declares {count} items and holds {len(items)}")
        return items

    def _iprp(self, data: bytes, start: int, end: int) -> tuple[list[tuple[bytes, bytes]], dict[int, list[int]]]:
        properties: list[tuple[bytes, bytes]] = []
        associations: dict[int, list[int]] = {}
        for kind, s, e in _children(data, start, end, "iprp"):
            if kind == b"ipco":
                for prop, ps, pe in _children(data, s, e, "ipco"):
                    body = data[ps:pe]
                    if prop == b"ispe":
                        if len(body) != 12:
                            raise _fail(f"ispe of {len(body)} bytes")
                        width, height = struct.unpack(">II", body[4:12])
                        self.frames.check_canvas(width, height)
                    elif prop == b"colr" and body[:4] in (b"prof", b"rICC"):
                        self.budget.spend(len(body) - 4, "ICC profile")
                    properties.append((prop, body))
            elif kind == b"ipma":
                cursor = _Cursor(data, s, e, "ipma")
                head = cursor.uint(4)
                version, wide = head >> 24, head & 1
                for _ in range(cursor.uint(4)):
                    item = cursor.uint(4 if version else 2)
                    indexes = []
                    for _ in range(cursor.uint(1)):
                        index = cursor.uint(2) & 0x7FFF if wide else cursor.uint(1) & 0x7F
                        if index > len(properties):
                            raise _fail(f"ipma names property {index} of {len(properties)}")
                        if index:
                            indexes.append(index)
                    associations[item] = indexes
        return properties, associations

    # ------------------------------------------------------------------ moov

    def _moov(self, data: bytes) -> None:
        for kind, start, end in _children(data, 0, len(data), "moov"):
            if kind == b"trak":
                if len(self.tracks) >= MAX_TRACKS:
                    raise _fail(f"more than {MAX_TRACKS} tracks")
                self.tracks.append(self._trak(data, start, end))

    def _trak(self, data: bytes, start: int, end: int) -> _Track:
        track = _Track()
        sizes: list[int] = []
        offsets: list[int] = []
        per_chunk: list[tuple[int, int]] = []
        stbl_seen = False
        for kind, s, e in _children(data, start, end, "trak"):
            if kind == b"tkhd":
                cursor = _Cursor(data, s, e, "tkhd")
                version = cursor.uint(4) >> 24
                cursor.raw((32 if version == 1 else 20) + 52)
                track.width, track.height = cursor.uint(4) >> 16, cursor.uint(4) >> 16
            elif kind == b"mdia":
                for mkind, ms, me in _children(data, s, e, "mdia"):
                    if mkind == b"hdlr":
                        track.handler = _Cursor(data, ms, me, "hdlr").raw(12)[8:12]
                    elif mkind == b"minf":
                        for nkind, ns, ne in _children(data, ms, me, "minf"):
                            if nkind == b"stbl":
                                stbl_seen = True
                                sizes, offsets, per_chunk = self._stbl(data, ns, ne)
        if not stbl_seen:
            raise _fail("a track without a sample table")
        track.samples = len(sizes)
        self._sample_ranges(sizes, offsets, per_chunk)
        return track

    def _stbl(self, data: bytes, start: int, end: int) -> tuple[list[int], list[int], list[tuple[int, int]]]:
        sizes: list[int] | None = None
        offsets: list[int] | None = None
        per_chunk: list[tuple[int, int]] | None = None
        for kind, s, e in _children(data, start, end, "stbl"):
            cursor = _Cursor(data, s, e, kind.decode("latin-1"))
            if kind == b"stsz":
                cursor.uint(4)
                uniform, count = cursor.uint(4), cursor.uint(4)
                self._check_samples(count)
                sizes = [uniform] * count if uniform else [cursor.uint(4) for _ in range(count)]
            elif kind == b"stz2":
                cursor.uint(4)
                field_size, count = cursor.uint(4) & 0xFF, cursor.uint(4)
                self._check_samples(count)
                if field_size not in (4, 8, 16):
                    raise _fail(f"stz2 field size {field_size}")
                if field_size == 4:
                    packed = cursor.raw((count + 1) // 2)
                    sizes = [(packed[i // 2] >> (0 if i % 2 else 4)) & 15 for i in range(count)]
                else:
                    sizes = [cursor.uint(field_size // 8) for _ in range(count)]
            elif kind in (b"stco", b"co64"):
                cursor.uint(4)
                count = cursor.uint(4)
                self._check_samples(count)
                width = 8 if kind == b"co64" else 4
                offsets = [cursor.uint(width) for _ in range(count)]
            elif kind == b"stsc":
                cursor.uint(4)
                count = cursor.uint(4)
                self._check_samples(count)
                per_chunk = []
                for _ in range(count):
                    first, samples = cursor.uint(4), cursor.uint(4)
                    cursor.uint(4)
                    if first < 1 or (per_chunk and first <= per_chunk[-1][0]):
                        raise _fail("stsc entries out of order")
                    per_chunk.append((first, samples))
        if sizes is None or offsets is None or per_chunk is None:
            raise _fail("a sample table without stsz, stsc or stco")
        return sizes, offsets, per_chunk

    def _check_samples(self, count: int) -> None:
        if count > self.limits.max_frames:
            raise StructureError(Reason.TOO_MANY_FRAMES, f"a track of {count} samples")

    def _sample_ranges(self, sizes: list[int], offsets: list[int], per_chunk: list[tuple[int, int]]) -> None:
        """Every chunk of samples as one range of the file (samples of a chunk are contiguous)."""
        if per_chunk and per_chunk[0][0] != 1:
            raise _fail("stsc does not start at the first chunk")
        sample = 0
        entry = 0
        for chunk, offset in enumerate(offsets, start=1):
            while entry + 1 < len(per_chunk) and per_chunk[entry + 1][0] <= chunk:
                entry += 1
            count = per_chunk[entry][1] if per_chunk else 0
            if sample + count > len(sizes):
                raise _fail("stsc places more samples than stsz lists")
            if len(self.ranges) >= MAX_EXTENTS + self.limits.max_frames * MAX_TRACKS:
                raise _fail("too many sample chunks")
            self.ranges.append((offset, sum(sizes[sample : sample + count])))
            sample += count
        if sample != len(sizes):
            raise _fail(f"the chunks hold {sample} of {len(sizes)} samples")

    # ------------------------------------------------------------------ the end

    def _check_extents(self, size: int) -> None:
        mdats = sorted((start, size if end is None else end) for start, end in self.mdats)
        merged: list[list[int]] = []
        for offset, length in sorted((o, size - o if n is None else n) for o, n in self.ranges):
            end = offset + length
            if end > size:
                raise StructureError(
                    Reason.TRUNCATED, f"an extent [{offset}, {end}) runs past the object's {size} bytes"
                )
            if length and not any(start <= offset and end <= stop for start, stop in mdats):
                raise _fail(f"an extent [{offset}, {end}) is not inside an mdat")
            if merged and offset <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            elif length:
                merged.append([offset, end])
        covered = sum(end - start for start, end in merged)
        payload = sum(stop - start for start, stop in mdats)
        if covered != payload:
            raise _fail(f"{payload - covered} bytes of mdat belong to no item or sample")

    def _facts(self) -> ImageFacts:
        pictures = [track for track in self.tracks if track.handler == b"pict"]
        animated = bool(pictures)
        if pictures:
            track = max(pictures, key=lambda t: t.samples)
            width, height = (track.width, track.height)
            if not (width and height) and self.primary_size:
                width, height = self.primary_size
            self.frames.check_canvas(width, height)
            if not track.samples:
                raise _fail("a sequence without samples")
            for _ in range(track.samples):
                self.frames.add_frame(width, height)
        else:
            if self.primary_size is None:
                raise _fail("no picture track and no primary item")
            width, height = self.primary_size
            self.frames.add_frame(width, height)
        if self.primary_size:
            width, height = self.primary_size
        return ImageFacts(
            width=width,
            height=height,
            frames=self.frames.frames,
            total_pixels=self.frames.total_pixels,
            metadata_bytes=self.budget.used,
            animated=animated,
        )


def walk(reader: ChunkReader, limits: StructureLimits) -> ImageFacts:
    return _Walk(reader, limits).run()
