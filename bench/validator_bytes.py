"""The validator's one streaming pass: rate, memory growth and S3 bytes read per object, by format and size.

Runs the real ValidationService against the embedded S3 (MiniStack on 127.0.0.1, a separate
process, real HTTP): each object is a valid image written as a stream (tests/big_images.py) and
uploaded with a multipart upload, then validated by one streamed GET. For each object:

- time per object (HEAD, tags, the GET walked to the last byte, tagging) and the rate it implies;
- bytes the GET delivered (must equal the object's size: read exactly once);
- memory growth: the validating process's resident memory sampled every 5 ms during the
  validation, minus what it was just before (each validation runs in a fresh interpreter);
- the walk alone, from chunks already in memory (the rate without S3 and HTTP);
- for contrast, Pillow opening and fully loading the same file from memory, in a fresh
  interpreter too (time and memory growth), skipped where the decoded image would need more
  than PILLOW_MAX_BYTES.

    .venv/bin/python -m bench.validator_bytes                            # print the table
    .venv/bin/python -m bench.validator_bytes --write                    # and update BENCHMARKS.md
    .venv/bin/python -m bench.validator_bytes --sizes 1,100 --formats png
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import MIB, ROOT, command_line, machine_line, use_code_paths, write_section

use_code_paths()

from PIL import Image  # noqa: E402

from local.s3server import EmbeddedS3, s3_client  # noqa: E402
from local.template import LOCAL_REGION  # noqa: E402
from tests.big_images import BigImage, big_gif, big_jpeg, big_png  # noqa: E402
from upload_core.formats.stream import ChunkReader  # noqa: E402
from upload_core.image_types import GIF, JPEG, PNG, ImageType  # noqa: E402
from upload_core.inspection import walker_for  # noqa: E402
from upload_core.s3 import S3Gateway  # noqa: E402
from upload_core.settings import Settings  # noqa: E402
from upload_core.validation import Action, ObjectCreated, ValidationService  # noqa: E402
from upload_core.validator_settings import ValidatorSettings  # noqa: E402

BUCKET = "bench-validator"
PART_SIZE = 64 * MIB
HEADING = "## Validator"
# Pillow's decoded image for the contrast column must stay below this (the machine is shared).
PILLOW_MAX_BYTES = 1536 * MIB
# Big images exceed the default pixel limits; the bench lifts them (the walk does not depend on them).
LIMITS_ENV = {
    "MAX_IMAGE_PIXELS": str(4_000_000_000),
    "MAX_TOTAL_PIXELS": str(4_000_000_000),
    "MAX_IMAGE_WIDTH": "65535",
    "MAX_IMAGE_HEIGHT": "1000000",
    "MAX_OBJECT_BYTES": str(8 << 30),
}


@dataclass(frozen=True)
class Format:
    name: str
    image_type: ImageType
    make: Callable[[int], BigImage]
    # Bytes per pixel of Pillow's decoded image (for the memory guard of the contrast column).
    decoded_bytes_per_pixel: int


# One line per format. A format whose walker this build lacks is left out (GIF, until it has one).
FORMATS = [
    fmt
    for fmt in (
        Format("PNG", PNG, lambda size: big_png(size, width=4096), 4),
        Format("JPEG", JPEG, lambda size: big_jpeg(size, width=32768), 4),
        Format("GIF", GIF, big_gif, 1),
    )
    if walker_for(fmt.image_type) is not None
]


class CountingGateway(S3Gateway):
    """The real gateway, counting GET requests and the bytes their bodies delivered."""

    def __init__(self, settings: Settings, client: Any) -> None:
        super().__init__(settings, client)
        self.gets = 0
        self.bytes = 0

    def iter_object(self, key: str, version_id: str | None = None, chunk_size: int = 1 << 20) -> Iterator[bytes]:  # type: ignore[override]
        self.gets += 1
        for chunk in super().iter_object(key, version_id, chunk_size):
            self.bytes += len(chunk)
            yield chunk


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Resident memory sampled in a thread: the growth above the level at start."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.start = self.peak = 0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.start = self.peak = resident_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, resident_bytes())

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resident_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.start


@dataclass
class Row:
    label: str
    size: int
    verdict: str
    gets: int
    bytes_read: int
    validate_s: float
    growth: int
    walk_s: float
    pillow_s: float | None
    pillow_growth: int | None


def regroup(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


def upload(client: Any, key: str, image: BigImage) -> None:
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType=image.content_type)["UploadId"]
    parts = []
    for number, body in enumerate(regroup(image.chunks(), PART_SIZE), start=1):
        etag = client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})


def walk_seconds(image: BigImage, fmt: Format) -> float:
    """The structural walk alone, over 1 MiB chunks already in memory."""
    chunks = list(regroup(image.chunks(), MIB))
    walk = walker_for(fmt.image_type)
    assert walk is not None
    limits = ValidatorSettings.from_env(Settings.from_env({"BUCKET_NAME": BUCKET}), LIMITS_ENV).limits
    started = time.perf_counter()
    walk(ChunkReader(chunks), limits.structure)
    elapsed = time.perf_counter() - started
    del chunks
    return elapsed


def child(argv: list[str]) -> dict[str, Any]:
    """Runs one measurement in a fresh interpreter, so memory freed by earlier rows is not reused."""
    command = [sys.executable, "-m", "bench.validator_bytes", "--child", *argv]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{command} failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def child_validate(endpoint: str, key: str) -> dict[str, Any]:
    settings = Settings.from_env({"BUCKET_NAME": BUCKET, "AWS_REGION": LOCAL_REGION, "S3_ENDPOINT_URL": endpoint})
    gateway = CountingGateway(settings, s3_client(endpoint))
    service = ValidationService(settings, ValidatorSettings.from_env(settings, LIMITS_ENV), gateway)
    # Warm up as a Lambda container is after its first event (clients, operation models, imports):
    # one validation, then the object back to pending for the measured one.
    service.validate(ObjectCreated(BUCKET, key, None, "ObjectCreated:CompleteMultipartUpload"))
    gateway.client.put_object_tagging(
        Bucket=BUCKET, Key=key, Tagging={"TagSet": [{"Key": "upload-status", "Value": "pending"}]}
    )
    gateway.gets = gateway.bytes = 0
    with PeakMemory() as memory:
        started = time.perf_counter()
        outcome = service.validate(ObjectCreated(BUCKET, key, None, "ObjectCreated:CompleteMultipartUpload"))
        elapsed = time.perf_counter() - started
    assert outcome.action is Action.TAGGED_VALID, outcome
    assert outcome.verdict is not None
    return {
        "seconds": elapsed,
        "growth": memory.growth,
        "gets": gateway.gets,
        "bytes": gateway.bytes,
        "verdict": outcome.verdict.reason.value,
    }


def child_pillow(path: str) -> dict[str, Any]:
    with open(path, "rb") as source:
        data = source.read()
    Image.MAX_IMAGE_PIXELS = None
    with PeakMemory() as memory:
        started = time.perf_counter()
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "growth": memory.growth}


def measure(fmt: Format, size_mib: int, client: Any, endpoint: str, scratch: Path) -> Row:
    image = fmt.make(size_mib * MIB)
    key = f"uploads/bench/00000000000000000000000000000000/{fmt.name.lower()}-{size_mib}MiB.{image.suffix}"
    upload(client, key, image)
    validated = child(["validate", endpoint, key])
    client.delete_object(Bucket=BUCKET, Key=key)
    walk_s = walk_seconds(image, fmt)
    pillow: dict[str, Any] = {}
    if image.width * image.height * fmt.decoded_bytes_per_pixel <= PILLOW_MAX_BYTES:
        path = scratch / f"{fmt.name}.{image.suffix}"
        with path.open("wb") as target:
            for chunk in image.chunks():
                target.write(chunk)
        pillow = child(["pillow", str(path)])
        path.unlink()
    return Row(
        label=f"{fmt.name} {size_mib} MiB ({image.width} x {image.height})",
        size=image.size,
        verdict=str(validated["verdict"]),
        gets=int(validated["gets"]),
        bytes_read=int(validated["bytes"]),
        validate_s=float(validated["seconds"]),
        growth=int(validated["growth"]),
        walk_s=walk_s,
        pillow_s=pillow.get("seconds"),
        pillow_growth=pillow.get("growth"),
    )


def run(formats: list[Format], sizes_mib: list[int]) -> list[Row]:
    with EmbeddedS3(0) as s3, tempfile.TemporaryDirectory() as scratch:
        client = s3.s3_client()
        client.create_bucket(Bucket=BUCKET)
        rows = []
        for fmt in formats:
            for size_mib in sizes_mib:
                rows.append(measure(fmt, size_mib, client, s3.endpoint_url, Path(scratch)))
                print(rows[-1], file=sys.stderr, flush=True)
        return rows


def rate(size: int, seconds: float) -> str:
    return f"{size / MIB / seconds:,.0f} MiB/s"


def markdown(rows: list[Row], argv: list[str]) -> str:
    lines = [
        HEADING,
        "",
        "`bench/validator_bytes.py`: the validation service against the embedded S3 (MiniStack on",
        "127.0.0.1 in its own process, real HTTP), one valid object per row (tests/big_images.py:",
        "PNG RGBA 16-bit with stored deflate blocks, baseline JPEG of noise with restart markers, and",
        "GIF of noise in uncompressed LZW once the build has a GIF walker),",
        "validated once: HEAD, tags, one GET streamed through the structural walk to the last byte,",
        "tagging. Memory growth is the validating process's resident memory above its level before",
        "the validation (sampled every 5 ms; each validation in a fresh interpreter, after one warm-up",
        "validation of the same object, as a Lambda container after its first event). The walk column",
        "is the walker alone over 1 MiB chunks in memory; the Pillow columns open and fully load the",
        "same file from memory (in a fresh interpreter too), for contrast.",
        machine_line(),
        f"Command: `{command_line('bench.validator_bytes', argv)}`",
        "",
        "| object | size | verdict | GETs | bytes read | time per object | rate | memory growth "
        "| walk alone | Pillow open + load | Pillow memory |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        pillow = "not run" if row.pillow_s is None else f"{row.pillow_s:.2f} s"
        pillow_memory = "—" if row.pillow_growth is None else f"{row.pillow_growth / MIB:,.0f} MiB"
        lines.append(
            f"| {row.label} | {row.size / MIB:,.1f} MiB | {row.verdict} | {row.gets} | {row.bytes_read:,} "
            f"| {row.validate_s:.2f} s | {rate(row.size, row.validate_s)} | {row.growth / MIB:.1f} MiB "
            f"| {rate(row.size, row.walk_s)} | {pillow} | {pillow_memory} |"
        )
    lines += [
        "",
        'Bytes read equal the object\'s size in every row: one GET, each byte once. "not run": the',
        f"decoded image would need more than {PILLOW_MAX_BYTES // MIB:,} MiB (the machine is shared).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,100,1024", help="object sizes in MiB, comma-separated")
    parser.add_argument("--formats", default=",".join(f.name for f in FORMATS), help="formats, comma-separated")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        print(json.dumps(child_validate(*rest) if kind == "validate" else child_pillow(*rest)))
        return 0
    sizes = [int(item) for item in args.sizes.split(",") if item.strip()]
    wanted = {item.strip().upper() for item in args.formats.split(",")}
    section = markdown(
        run([f for f in FORMATS if f.name in wanted], sizes), list(sys.argv[1:] if argv is None else argv)
    )
    print(section)
    if args.write:
        write_section(HEADING, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
