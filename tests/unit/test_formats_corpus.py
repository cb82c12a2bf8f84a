"""Both corpora through the structural walkers: every valid file passes with its measurements,
every hostile file fails with its reason, whatever the size of the chunks the bytes arrive in.

Each file goes to the walker of the type its magic bytes announce (``upload_core.formats.<type>``);
a format whose walker does not exist yet is skipped, not failed.
"""

from __future__ import annotations

import importlib
import io
import zipfile
from collections import Counter
from types import ModuleType

import pytest

from tests import formats_corpus as corpus
from upload_core.formats.errors import Reason, StructureError
from upload_core.formats.stream import ChunkReader, chunked

HOSTILE = corpus.hostile_corpus()
VALID = corpus.valid_corpus()
CHUNK_SIZES = (1, 7, 4096, 65536)
# One-byte chunks cost a Python call per byte: enough to prove boundaries on the small files.
ONE_BYTE_CHUNKS_UP_TO = 32 * 1024


def _walker(case: corpus.Case) -> ModuleType:
    fmt = corpus.sniff(case.data) or case.fmt
    try:
        return importlib.import_module(f"upload_core.formats.{fmt}")
    except ModuleNotFoundError:
        pytest.skip(f"no walker for {fmt} yet")


def _chunk_sizes(data: bytes) -> list[int]:
    return [size for size in CHUNK_SIZES if size > 1 or len(data) <= ONE_BYTE_CHUNKS_UP_TO]


@pytest.mark.parametrize("case", VALID, ids=lambda case: case.name)
def test_valid_file_passes_with_its_measurements(case: corpus.Case) -> None:
    # Given a valid file and the walker of its type
    walker = _walker(case)
    for size in _chunk_sizes(case.data):
        # When it is walked in chunks of this size
        facts = walker.walk(ChunkReader(chunked(case.data, size)), case.limits)
        # Then it passes, measured
        assert (facts.width, facts.height, facts.frames) == (case.width, case.height, case.frames), size
        assert facts.total_pixels >= facts.frames
        assert facts.animated == (case.frames > 1)


@pytest.mark.parametrize("case", HOSTILE, ids=lambda case: case.name)
def test_hostile_file_is_rejected_with_its_reason(case: corpus.Case) -> None:
    # Given a hostile file and the walker of the type it claims to be
    walker = _walker(case)
    for size in _chunk_sizes(case.data):
        # When it is walked in chunks of this size
        with pytest.raises(StructureError) as raised:
            walker.walk(ChunkReader(chunked(case.data, size)), case.limits)
        # Then it fails for the reason its lie deserves
        assert raised.value.reason in case.reasons, (size, str(raised.value))


def test_hostile_corpus_covers_every_format_and_class() -> None:
    # Given the hostile corpus
    by_format = Counter(case.fmt for case in HOSTILE)
    reasons = {case.reason for case in HOSTILE}
    expected_formats = set(corpus.FORMATS) if corpus.avif_supported() else set(corpus.FORMATS) - {"avif"}
    # Then it holds at least 100 files, every format, and every reason a walker gives
    assert len(HOSTILE) >= 100
    assert set(by_format) == expected_formats
    assert all(count >= 15 for count in by_format.values()), by_format
    assert reasons >= {
        Reason.TRAILING_DATA,
        Reason.TRUNCATED,
        Reason.BAD_STRUCTURE,
        Reason.BAD_CHECKSUM,
        Reason.CORRUPT_HEADER,
        Reason.TOO_MANY_FRAMES,
        Reason.TOO_MANY_PIXELS,
        Reason.DIMENSIONS_TOO_LARGE,
        Reason.TOO_MUCH_METADATA,
    }
    # And every format has archives appended with an ending that imitates its end marker
    for fmt in expected_formats:
        assert {f"{fmt}-appended-{kind}" for kind in ("zip", "7z", "rar", "html", "php", "svg")} <= {
            case.name for case in HOSTILE
        }


def test_valid_corpus_covers_every_format() -> None:
    # Given the valid corpus
    by_format = Counter(case.fmt for case in VALID)
    # Then it holds at least 30 files, and every format
    assert len(VALID) >= 30
    assert {fmt for fmt in corpus.FORMATS if fmt != "avif" or corpus.avif_supported()} == set(by_format)


def test_every_file_sniffs_as_its_format() -> None:
    # Given both corpora, When each file's magic bytes are read, Then they name its format
    # (a file cut inside its magic bytes, or whose first box is not ftyp, names none)
    for case in (*VALID, *HOSTILE):
        assert corpus.sniff(case.data) in {case.fmt, None}, case.name
    assert all(corpus.sniff(case.data) == case.fmt for case in VALID)


def test_appended_archives_end_like_the_image() -> None:
    # Given the appended-archive cases, Then each file's last bytes imitate its format's end
    endings = {"png": b"IEND\xaeB`\x82", "jpeg": b"\xff\xd9", "gif": b";", "webp": b"VP8 ", "avif": b"mdat"}
    for case in HOSTILE:
        if "-appended-" in case.name:
            assert case.data.endswith(endings[case.fmt]), case.name
    # And the zip ones are real archives
    zipped = next(case for case in HOSTILE if case.name == "png-appended-zip")
    start = zipped.data.index(b"PK\x03\x04")
    assert zipfile.ZipFile(io.BytesIO(zipped.data[start:])).namelist() == ["payload.sh"]


def test_truncations_cut_every_format_at_its_boundaries() -> None:
    # Given the truncation cases, Then each is a strict prefix of a valid file, for every format
    cuts = Counter(case.fmt for case in HOSTILE if "-cut-at-" in case.name)
    assert all(cuts[fmt] >= 5 for fmt in {case.fmt for case in HOSTILE}), cuts
