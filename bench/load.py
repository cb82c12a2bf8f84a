"""Load: 200 clients at once against the local stack as `make dev` runs it.

The stack starts as local/dev.py starts it (the template's API and functions, up to 4 warm
workers per function, MiniStack, the validator fed by the bucket's notifications, the verdict
events), with the per-user limits of tests/stack_limits.py so that the limits are not what is
measured, and with the emulator's request log and an invocation observer on (bench/aws_usage.py).

`--clients` threads, each its own `client.Uploader` with its own user's token, wait at a barrier
and then each upload one file and wait for its verdict as `python -m client put` does (polling
GET /files/{id}/status). Most upload a small PNG as `upload_many` does by default (a batch of
one: POST /uploads/batch + one presigned PUT to S3); every `--multipart-every`-th uploads a
12 MiB PNG as a multipart upload (create, sign, 2 parts, complete). Every upload must complete
and be judged valid; errors, API answers of 400 and above, and the clients' retry notices are
counted.

Reported: wall time and throughput, the handler's own time per call (measured in the worker
around `lambda_handler`) at p50/p99 per route and for the validator, and S3 requests per upload
by type.

    .venv/bin/python -m bench.load                 # 200 clients
    .venv/bin/python -m bench.load --clients 50 --write
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import MIB, bench_main, command_line, machine_line, purge, use_code_paths

use_code_paths()

from bench.aws_usage import Call, Invocations, RequestLog, Usage, percentile, s3_tier, tally  # noqa: E402
from client import Uploader  # noqa: E402
from local.functions import DEFAULT_MAX_WORKERS  # noqa: E402
from local.stack import LocalStack  # noqa: E402
from tests.big_images import big_png  # noqa: E402
from tests.stack_limits import GENEROUS_LIMITS  # noqa: E402

HEADING = "## Load"
SMALL_BYTES = 256 * 1024
LARGE_BYTES = 12 * MIB
VERDICT_TIMEOUT = 600.0
PENDING_404 = -404  # a status poll's 404 before the validator has seen the file


@dataclass
class Outcome:
    client: int
    kind: str  # "small" or "multipart"
    key: str = ""
    verdict: str = ""
    error: str = ""
    retries: int = 0
    upload_seconds: float = 0.0
    done_seconds: float = 0.0


@dataclass
class Run:
    clients: int
    outcomes: list[Outcome]
    calls: list[Call]
    usage: Usage
    api_statuses: Counter[int] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    loads: list[float] = field(default_factory=list)


def write_png(directory: Path, name: str, size: int, seed: int) -> Path:
    path = directory / name
    with path.open("wb") as out:
        for chunk in big_png(size, width=256, seed=seed).chunks():
            out.write(chunk)
    return path


def client_thread(
    stack: LocalStack, path: Path, outcome: Outcome, *, start: threading.Barrier, origin: list[float]
) -> None:
    notices: list[str] = []
    uploader = Uploader(
        stack.api_url, stack.token_for(f"load-{outcome.client:03d}"), state_files=False, log=notices.append
    )
    try:
        start.wait(timeout=120)
        if outcome.kind == "small":
            (result,) = uploader.upload_many([path])
            if result.error is not None or result.result is None:
                raise RuntimeError(str(result.error))
            key = result.result.key
        else:
            key = uploader.upload(path, content_type="image/png").key
        outcome.key = key
        outcome.upload_seconds = time.perf_counter() - origin[0]
        info = uploader.files.wait(key, timeout=VERDICT_TIMEOUT, interval=1.0)
        outcome.verdict = info.status if info is not None else "no verdict"
        outcome.done_seconds = time.perf_counter() - origin[0]
    except Exception as error:  # every failure is reported, none stops the other clients
        outcome.error = f"{type(error).__name__}: {error}"
    outcome.retries = sum(1 for notice in notices if "retry" in notice)


def run(clients: int, multipart_every: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as directory:
        folder = Path(directory)
        small = write_png(folder, "small.png", SMALL_BYTES, seed=1)
        large = write_png(folder, "large.png", LARGE_BYTES, seed=2)
        log = RequestLog(folder / "requests.jsonl")
        invocations = Invocations()
        statuses: Counter[int] = Counter()
        status_lock = threading.Lock()

        def access(method: str, path: str, status: int, _ms: float) -> None:
            # Until the validator has seen a file its status is 404, which the client reads as
            # pending (client/files.py); those are counted apart from real errors.
            pending = status == 404 and method == "GET" and path.startswith("/files/") and path.endswith("/status")
            with status_lock:
                statuses[PENDING_404 if pending else status] += 1

        with LocalStack(
            s3_port=0,
            api_port=0,
            parameter_overrides=GENEROUS_LIMITS,
            request_log=log.path,
            demo_page=False,
            access_log=access,
            log_sink=lambda _function, _line: None,
        ) as stack:
            assert stack.functions is not None
            stack.functions.observer = invocations
            # One upload first, so that the measured calls are not the workers' imports.
            warm = Outcome(999, "small")
            client_thread(stack, small, warm, start=threading.Barrier(1), origin=[time.perf_counter()])
            assert warm.verdict == "valid", warm
            time.sleep(1.0)
            log.mark()
            first_call = invocations.mark()
            with status_lock:
                statuses.clear()
            outcomes = [
                Outcome(index, "multipart" if multipart_every and index % multipart_every == 0 else "small")
                for index in range(clients)
            ]
            origin = [0.0]
            start = threading.Barrier(clients + 1)
            threads = [
                threading.Thread(
                    target=client_thread,
                    args=(stack, large if outcome.kind == "multipart" else small, outcome),
                    kwargs={"start": start, "origin": origin},
                    name=f"load-client-{outcome.client}",
                )
                for outcome in outcomes
            ]
            for thread in threads:
                thread.start()
            origin[0] = time.perf_counter()
            start.wait(timeout=120)
            loads = []
            while any(thread.is_alive() for thread in threads):
                threads[0].join(timeout=5)
                loads.append(os.getloadavg()[0])
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - origin[0]
            assert stack.events is not None
            stack.events.drain(60)
            time.sleep(1.0)
            usage = tally(log.read())
            calls = invocations.since(first_call)
            purge(stack.s3_client(), stack.bucket)
    return Run(clients, outcomes, calls, usage, Counter(statuses), wall, loads)


def markdown(result: Run, multipart_every: int, argv: list[str]) -> str:
    outcomes = result.outcomes
    valid = sum(1 for outcome in outcomes if outcome.verdict == "valid")
    errors = [outcome for outcome in outcomes if outcome.error]
    retries = sum(outcome.retries for outcome in outcomes)
    small = sum(1 for outcome in outcomes if outcome.kind == "small")
    multipart = len(outcomes) - small
    stored_by = max((outcome.upload_seconds for outcome in outcomes if outcome.key), default=0.0)
    api_errors = sum(count for status, count in result.api_statuses.items() if status >= 400)
    pending = result.api_statuses[PENDING_404]
    answered = sum(result.api_statuses.values())
    lines = [
        HEADING,
        "",
        f"`bench/load.py`: {result.clients} clients at once against the local stack as `make dev` runs it",
        f"(up to {DEFAULT_MAX_WORKERS} warm workers per function, MiniStack, the validator fed by the bucket's",
        "notifications), each its own `client.Uploader` and user, released together by a barrier; each",
        "uploads one PNG and waits for its verdict as `client put` does.",
        f"{small} upload {SMALL_BYTES // 1024} KiB as `upload_many` does (a batch of one:",
        "POST /uploads/batch + a PUT),",
        f"{multipart} (every {multipart_every}th)",
        f"{LARGE_BYTES // MIB} MiB as a 2-part multipart upload.",
        "Per-user limits from tests/stack_limits.py (the limits are not what is measured). After one",
        "warm-up upload.",
        machine_line(),
        f"Command: `{command_line('bench.load', argv)}`",
        "",
        f"- **Completed and judged valid: {valid} of {len(outcomes)}; errors: {len(errors)}**; client retry",
        f"  notices: {retries}; API answers of 400 or more: {api_errors} of {answered} (besides {pending} 404s",
        "  to status polls before the validator had seen the file, which the client reads as pending).",
        f"- Wall time {result.wall_seconds:.1f} s from release to the last verdict "
        f"({len(outcomes) / result.wall_seconds:.1f} uploads/s with verdicts); the last upload was stored",
        f"  after {stored_by:.1f} s ({len(outcomes) / stored_by if stored_by else 0:.1f} uploads/s stored). "
        "Load average (1 min) during the run "
        f"{min(result.loads, default=0):.1f}-{max(result.loads, default=0):.1f} on {os.cpu_count()} cores.",
    ]
    for outcome in errors[:5]:
        lines.append(f"- client {outcome.client} ({outcome.kind}): {outcome.error[:200]}")
    lines += [
        "",
        "Handler time per call (the handler's own time in the worker, as Lambda bills it; it includes",
        "the calls to the emulator on loopback and, under this load, waiting for the CPU; the",
        "validator's calls are per batch of queued notifications, up to ValidatorBatchSize):",
        "",
        "| function / route | calls | p50 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    groups: dict[str, list[float]] = {}
    for call in result.calls:
        groups.setdefault(call.route or call.function, []).append(call.duration_ms)
    for name in sorted(groups):
        values = groups[name]
        lines.append(
            f"| {name} | {len(values)} | {percentile(values, 0.5):.1f} ms | {percentile(values, 0.99):.1f} ms "
            f"| {max(values):.1f} ms |"
        )
    per_upload = len(outcomes) or 1
    tiers: Counter[str] = Counter()
    for operation, count in result.usage.s3.items():
        tiers[s3_tier(operation)] += count
    by_caller: Counter[str] = Counter()
    for (caller, _operation), count in result.usage.s3_by_caller.items():
        by_caller[caller] += count
    operations = ", ".join(
        f"{operation} {count / per_upload:.2f}" for operation, count in sorted(result.usage.s3.items())
    )
    callers = ", ".join(f"{caller} {count / per_upload:.2f}" for caller, count in sorted(by_caller.items()))
    lines += [
        "",
        f"S3 requests per upload (all {len(outcomes)} uploads, counted at the emulator): "
        f"**{sum(result.usage.s3.values()) / per_upload:.2f}**, of which PUT/COPY/POST/LIST "
        f"{tiers['tier1'] / per_upload:.2f} and GET/HEAD {tiers['tier2'] / per_upload:.2f}; "
        f"by operation: {operations}; by caller: {callers}.",
        "",
        "What bounds it here: every function has at most "
        f"{DEFAULT_MAX_WORKERS} worker processes (as `make dev` starts them), so the",
        f"{result.clients} clients queue at the gateway and the handler times above are per call, not per",
        "client; the validator's queue is polled by one thread that invokes it one batch at a time;",
        "MiniStack is one Python process; all of it, and the clients, share the machine's cores. On",
        "AWS each function scales out instead (see the Cost section for the concurrency needed).",
        "",
    ]
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=200, help="simultaneous clients (default 200)")
    parser.add_argument(
        "--multipart-every", type=int, default=10, help="every Nth client uploads multipart (default 10; 0: none)"
    )


def report(args: argparse.Namespace, argv: list[str]) -> str:
    result = run(args.clients, args.multipart_every)
    return markdown(result, args.multipart_every, argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, HEADING, options, report, argv)


if __name__ == "__main__":
    sys.exit(main())
