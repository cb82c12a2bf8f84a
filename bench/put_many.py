"""`put` of a folder: several files at once (`Uploader.put_many`, what `python -m client put` runs)
against the same put one file at a time.

One local stack (MiniStack as the embedded S3, the template's API and functions, no S3 events so
no validator: verdicts are not waited for) serves every side, in the same run, on the same folder
of many small files and a few large ones:

- one at a time, multipart: `put_many(files_at_once=1, form_max_bytes=0)`, what `put` did before
  it sent several files at once: every file a multipart upload (create, sign, PUT, complete),
  one after the other, its parts `concurrency` at a time;
- one at a time: `put_many(files_at_once=1)`: a file that fits in one part as one presigned PUT,
  signed with the other small files by one POST /uploads/batch per 50 (client.put_batch);
- N at a time: `put_many(files_at_once=N)`, the CLI's default of 4.

Runs rotate between the sides (after one warm-up round); medians are reported, with the load
average, since the machine is shared.

    .venv/bin/python -m bench.put_many         # 60 files of 200 KiB + 3 of 24 MiB, 4 at a time, 3 runs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import MIB, bench_main, command_line, machine_line, median, purge, use_code_paths

use_code_paths()

from bench.throughput import CountingSession  # noqa: E402
from client.uploader import Uploader, session_adapter  # noqa: E402
from local.stack import LocalStack  # noqa: E402
from tests.stack_limits import GENEROUS_LIMITS  # noqa: E402

HEADING = "## Put of a folder: several files at once"
KIB = 1024
CONCURRENCY = 4


@dataclass
class Side:
    name: str
    files_at_once: int
    form_max_bytes: int | None
    seconds: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    api_calls: list[int] = field(default_factory=list)


def make_folder(directory: Path, small: int, small_size: int, large: int, large_size: int) -> int:
    for index in range(small):
        (directory / f"small-{index:03d}.jpg").write_bytes(os.urandom(small_size))
    for index in range(large):
        (directory / f"large-{index}.jpg").write_bytes(os.urandom(large_size))
    return small * small_size + large * large_size


def run(args: argparse.Namespace) -> tuple[list[Side], int]:
    sides = [
        Side("one at a time, multipart", 1, 0),
        Side("one at a time", 1, None),
        Side(f"{args.at_once} at a time", args.at_once, None),
    ]
    count = args.small + args.large
    with tempfile.TemporaryDirectory(prefix="bench-put-") as directory:
        folder = Path(directory)
        total = make_folder(folder, args.small, args.small_kib * KIB, args.large, args.large_mib * MIB)
        with LocalStack(s3_port=0, api_port=0, s3_events=False, parameter_overrides=GENEROUS_LIMITS) as stack:
            s3 = stack.s3_client()
            session = CountingSession(stack.api_url)
            session.mount("http://", session_adapter(args.at_once * (CONCURRENCY + 1)))
            uploader = Uploader(
                stack.api_url,
                stack.token_for("bench-put"),
                concurrency=CONCURRENCY,
                session=session,
                state_files=False,
            )
            for index in range(args.runs + 1):  # the first round warms every side up and is not counted
                for side in sides:
                    before = session.api_calls
                    started = time.perf_counter()
                    outcomes = uploader.put_many(
                        [folder],
                        files_at_once=side.files_at_once,
                        wait=False,
                        form_max_bytes=side.form_max_bytes if side.form_max_bytes is not None else 16 * MIB,
                    )
                    elapsed = time.perf_counter() - started
                    load = os.getloadavg()[0]
                    failed = [outcome for outcome in outcomes if outcome.error is not None]
                    assert not failed, failed[0].error
                    stored = purge(s3, stack.bucket)
                    assert stored == count, f"{side.name}: {stored} objects stored of {count}"
                    if index == 0:
                        continue
                    side.seconds.append(elapsed)
                    side.loads.append(load)
                    side.api_calls.append(session.api_calls - before)
                    print(
                        f"{side.name:26} run {index}: {elapsed:6.2f} s, {total / MIB / elapsed:6.1f} MiB/s"
                        f" (load {load:.1f})",
                        file=sys.stderr,
                    )
    return sides, total


def markdown(sides: list[Side], total: int, args: argparse.Namespace, argv: list[str]) -> str:
    count = args.small + args.large
    base = median(sides[0].seconds)
    lines = [
        HEADING,
        "",
        f"`bench/put_many.py`: one folder of {args.small} files of {args.small_kib} KiB and {args.large} of"
        f" {args.large_mib} MiB ({total / MIB:.0f} MiB) put into the embedded S3 (MiniStack on 127.0.0.1)",
        "through the local stack's API by `Uploader.put_many` (what `python -m client put FOLDER` runs),",
        f"without waiting for verdicts, {CONCURRENCY} parts in flight per multipart file (8 MiB parts, the API's",
        "choice), in three ways: every file a multipart upload one after the other (what `put` did",
        "before), one file at a time with the small ones as presigned PUTs signed 50 per API call",
        "(POST /uploads/batch), and several files at once.",
        f"Median of {args.runs} runs each (rotating between the sides, after one warm-up round).",
        "The machine is shared with other work: the load average (1 minute) after each run is given.",
        machine_line(),
        f"Command: `{command_line('bench.put_many', argv)}`",
        "",
        "| side | median time | MiB/s | files/s | API calls per file | vs one at a time, multipart | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for side in sides:
        seconds = median(side.seconds)
        lines.append(
            f"| {side.name} | {seconds:.2f} s | {total / MIB / seconds:.1f} | {count / seconds:.1f} "
            f"| {max(side.api_calls) / count:.2f} | {base / seconds:.2f}x "
            f"| {min(side.loads):.1f}-{max(side.loads):.1f} |"
        )
    lines.append("")
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--small", type=int, default=60, help="small files (default 60)")
    parser.add_argument("--small-kib", type=int, default=200, help="size of each small file in KiB (default 200)")
    parser.add_argument("--large", type=int, default=3, help="large files (default 3)")
    parser.add_argument("--large-mib", type=int, default=24, help="size of each large file in MiB (default 24)")
    parser.add_argument("--at-once", type=int, default=4, help="files at once on the last side (default 4)")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")


def report(args: argparse.Namespace, argv: list[str]) -> str:
    sides, total = run(args)
    return markdown(sides, total, args, argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, HEADING, options, report, argv)


if __name__ == "__main__":
    sys.exit(main())
