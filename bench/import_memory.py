"""Peak memory of a remote import: the streaming importer against a naive fetch-then-put.

A source server on 127.0.0.1 (in this process) serves a file of N MiB that starts with a PNG
signature, generated on the fly from a 1 MiB block so the server holds no copy. The embedded S3
(MiniStack, its own process) stores the result. Each import runs in a fresh child process that
reports its peak resident set size (ru_maxrss) before and after the import:

- streaming: `RemoteImportService.import_url` (the POST /imports code path: rate count, quota
  reservation in the registry, SSRF vetting, pinned connection, magic bytes, 8 MiB parts, each
  uploaded in the background while the next is read);
- naive: `requests.get(url).content` and one `put_object` of the whole body.

Both use the imports function's S3 client (`build_s3_client`), warmed up before the clock starts,
and a run counts only if the stored object has the source's size.

    PYTHONPATH=layers/core .venv/bin/python -m bench.import_memory                 # print the table
    PYTHONPATH=layers/core .venv/bin/python -m bench.import_memory --write         # and update BENCHMARKS.md
    PYTHONPATH=layers/core .venv/bin/python -m bench.import_memory --sizes 50,200  # sizes in MiB (default 50,200,1000)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from bench.report import bench_main, command_line, machine_line, purge, size_list
from local.registry_table import create_registry_table
from local.s3server import EmbeddedS3
from local.template import load_yaml
from upload_core.import_settings import ImportSettings
from upload_core.registry import registry_for
from upload_core.remote_import import RemoteImportService
from upload_core.s3 import CompletedObject, S3Gateway, build_s3_client
from upload_core.settings import Settings

MIB = 1024 * 1024
BUCKET = "bench-imports"
REGISTRY_TABLE = "bench-registry"
ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Remote import"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
BLOCK = bytes(range(256)) * 4096  # 1 MiB


# ------------------------------------------------------------------------------------------ parent


@contextmanager
def source_server() -> Iterator[int]:
    """Serves /<n>.png: n MiB starting with a PNG signature, with a Content-Length."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            size = int(self.path.strip("/").split(".")[0]) * MIB
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(PNG_SIGNATURE)
            remaining = size - len(PNG_SIGNATURE)
            while remaining > 0:
                piece = BLOCK[: min(len(BLOCK), remaining)]
                self.wfile.write(piece)
                remaining -= len(piece)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Row:
    variant: str
    size_mib: int
    baseline_mib: float
    peak_mib: float
    seconds: float
    complete_seconds: float = 0.0  # of `seconds`, in CompleteMultipartUpload (streaming only)

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.baseline_mib


def prepare(s3: EmbeddedS3) -> None:
    """The bucket the imports write to, and the registry table they reserve quota in."""
    s3.s3_client().create_bucket(Bucket=BUCKET)
    create_registry_table(s3.dynamodb_client(), load_yaml((ROOT / "template.yaml").read_text()), REGISTRY_TABLE)


def run_child(variant: str, size_mib: int, port: int, endpoint: str) -> Row:
    env = {
        # Nothing else from this shell: an IMPORT_* or AWS_* variable set here would change what is measured.
        **{name: os.environ[name] for name in INHERITED_ENV if name in os.environ},
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT)]),
        "BUCKET_NAME": BUCKET,
        "S3_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "IMPORT_ALLOWED_DESTINATIONS": f"127.0.0.1:{port}",
        # Imports reserve quota in the registry: the emulator's DynamoDB, with room for every run.
        "REGISTRY_TABLE": REGISTRY_TABLE,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "DEFAULT_USER_QUOTA_BYTES": str(1 << 50),
        "MAX_REQUESTS_PER_MINUTE": "100000",
        "IMPORT_MAX_BYTES": str(1024 * MIB),
        "IMPORT_TIMEOUT_SECONDS": "600",
        "POWERTOOLS_METRICS_NAMESPACE": "bench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    url = f"http://127.0.0.1:{port}/{size_mib}.png"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.import_memory", "--child", variant, url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the {variant} import failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if result["stored_bytes"] != size_mib * MIB:  # an import that stored less was not an import
        raise RuntimeError(f"the {variant} import stored {result['stored_bytes']} bytes of {size_mib * MIB}")
    return Row(
        variant, size_mib, result["baseline_mib"], result["peak_mib"], result["seconds"], result["complete_seconds"]
    )


def run(sizes: list[int]) -> list[Row]:
    rows: list[Row] = []
    with EmbeddedS3(0) as s3, source_server() as port:
        prepare(s3)
        for size in sizes:
            for variant in ("streaming", "naive"):
                row = run_child(variant, size, port, s3.endpoint_url)
                summary = f"peak {row.peak_mib:7.1f} MiB (+{row.growth_mib:.1f}) in {row.seconds:.1f} s"
                print(f"{variant:9} {size:5} MiB: {summary}", file=sys.stderr)
                rows.append(row)
            purge(s3.s3_client(), BUCKET)  # MiniStack keeps objects in memory
    return rows


def markdown(rows: list[Row], argv: list[str]) -> str:
    lines = [
        HEADING,
        "",
        "`bench/import_memory.py`: peak resident memory (ru_maxrss) of one import of an N MiB file",
        "from a local HTTP server into the embedded S3 (MiniStack on 127.0.0.1), each in a fresh",
        "process. *streaming* is `RemoteImportService.import_url` (the POST /imports path, 8 MiB",
        "parts, each uploaded while the next is read); *naive* is `requests.get(url).content`",
        "followed by one `put_object`, with the same S3 client. *Before* is the process after its",
        "imports and client set-up; *growth* is what the import added.",
        machine_line(),
        f"Command: `{command_line('bench.import_memory', argv)}`",
        "",
        "| variant | file | peak before | peak after | growth | time |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.variant} | {row.size_mib} MiB | {row.baseline_mib:.0f} MiB | {row.peak_mib:.0f} MiB "
            f"| {row.growth_mib:.0f} MiB | {row.seconds:.1f} s |"
        )
    lines += [
        "",
        "The streaming import's growth does not depend on the file's size: it holds two buffers of the",
        "part size (8 MiB), allocated once, one read into straight from the socket while the other is",
        "uploaded. Its growth reads below their 16 MiB because ru_maxrss is a high-water mark, which the",
        "process's resident memory was already a few MiB under when the import started (its client",
        "set-up had freed memory). The naive version grows with the file, by more than its size (the",
        "body is joined from pieces).",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ child


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class TimedGateway(S3Gateway):
    """The service's S3 gateway, adding up the time its multipart completions take."""

    complete_seconds = 0.0

    def complete_multipart_upload(self, *args: Any, **kwargs: Any) -> CompletedObject:
        started = time.perf_counter()
        try:
            return super().complete_multipart_upload(*args, **kwargs)
        finally:
            self.complete_seconds += time.perf_counter() - started


def child(variant: str, url: str) -> dict[str, float]:
    settings = Settings.from_env()
    # The imports function's own S3 client (S3Gateway's default: checksums only where S3 requires
    # them), for both variants: a client with other defaults would time botocore, not the import.
    client = build_s3_client(settings)
    client.head_bucket(Bucket=BUCKET)  # connection and credentials set up before measuring
    if variant == "streaming":
        # A warm container's registry client too: its first call loads DynamoDB's model and connects.
        registry = registry_for(settings)
        registry.usage("bench")
        gateway = TimedGateway(settings, client=client)
        service = RemoteImportService(settings, ImportSettings.from_env(), s3=gateway, registry=registry)
        baseline = peak_mib()
        started = time.perf_counter()
        key = service.import_url("bench", url).key
        complete_seconds = gateway.complete_seconds
    else:
        session = requests.Session()
        key = f"uploads/bench/naive-{time.time_ns()}.png"
        baseline = peak_mib()
        started = time.perf_counter()
        body = session.get(url, timeout=600).content
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
        complete_seconds = 0.0
    seconds = time.perf_counter() - started
    peak = peak_mib()
    stored = client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]  # after the clock stopped
    return {
        "baseline_mib": baseline,
        "peak_mib": peak,
        "seconds": seconds,
        "complete_seconds": complete_seconds,
        "stored_bytes": stored,
    }


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="50,200,1000", type=size_list, help="file sizes in MiB, comma-separated")


def report(args: argparse.Namespace, argv: list[str]) -> str:
    return markdown(run(args.sizes), argv)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--child"]:  # run_child's fresh process: one import, its figures as JSON
        variant, url = arguments[1:]
        print(json.dumps(child(variant, url)))
        return 0
    return bench_main(__doc__, HEADING, options, report, argv)


if __name__ == "__main__":
    sys.exit(main())
