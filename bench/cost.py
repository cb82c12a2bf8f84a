"""Cost: what 1,000 uploads cost in us-east-1, from the requests a run of the local stack makes.

One local stack (the template's API and functions, MiniStack as S3, SQS, DynamoDB and
EventBridge, the validator fed by the bucket's notifications) with two recorders on:

- the emulator's request log: every S3, DynamoDB, SQS and EventBridge request, with its caller
  (each function's SDK calls carry its logical id; the client's presigned S3 requests are
  `python-requests`; the local pollers and this harness are left out);
- an observer of every function invocation: function, API route, and the handler's own time
  measured in the worker around `lambda_handler` (what Lambda bills as Duration).

After one warm-up upload, it uploads a 10 MiB PNG (`--runs` times) and a 1 GiB PNG (once) with
`client.Uploader` (its defaults: 4 threads, the API's 8 MiB parts, CRC32 per part), waits for
each verdict (through the EventBridge rule the local stack subscribes to, so no extra API call is
counted), and counts what each upload caused, from POST /uploads to the verdict event. The counts
are multiplied by the prices in bench/prices.py (with their source and date).

    .venv/bin/python -m bench.cost                  # 3 x 10 MiB, 1 x 1 GiB
    .venv/bin/python -m bench.cost --big-mib 256    # a smaller "large" file
    .venv/bin/python -m bench.cost --write
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import MIB, bench_main, command_line, machine_line, purge, use_code_paths

use_code_paths()

from bench import prices  # noqa: E402
from bench.aws_usage import Call, Invocations, RequestLog, Usage, tally  # noqa: E402
from client import Uploader  # noqa: E402
from local.stack import LocalStack  # noqa: E402
from tests.big_images import big_png  # noqa: E402
from tests.stack_limits import GENEROUS_LIMITS  # noqa: E402

HEADING = "## Cost"
USER = "bench-cost"
RATE = 100  # uploads per second, for the concurrency estimate
AWS_CALL_SECONDS = 0.010  # assumed in-region latency of one S3/DynamoDB/EventBridge call on AWS
# The S3 requests a Companion server's S3 multipart routes (or a form) would make for the same file.
# A 1 GiB PNG (8 bytes per pixel) is 134 Mpixels and 32,767 rows: over the default MaxImagePixels
# and MaxImageHeight, so it would be rejected; the limits are raised so that it takes the valid path.
LIMITS = {**GENEROUS_LIMITS, "MaxImagePixels": "200000000", "MaxImageHeight": "65535"}
UPLOAD_PATH_OPERATIONS = ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "PostObject", "PutObject")


@dataclass
class Measured:
    """Everything one kind of upload caused, summed over its runs."""

    name: str
    size: int
    runs: int = 0
    usage: list[Usage] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)

    def per_upload(self, value: float) -> float:
        return value / self.runs

    def s3_operations(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for usage in self.usage:
            total.update(usage.s3)
        return total

    def sdk_ms_by_function(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for usage in self.usage:
            for caller, ms in usage.ms_by_caller.items():
                total[caller] = total.get(caller, 0.0) + ms
        return total

    def sdk_bytes_by_function(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for usage in self.usage:
            total.update(usage.bytes_by_caller)
        return total

    def sdk_calls_by_function(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for usage in self.usage:
            for (caller, _operation), count in usage.s3_by_caller.items():
                total[caller] += count
            for caller, count in usage.other_by_caller.items():
                total[caller] += count
        return total


def write_image(directory: Path, name: str, size: int) -> Path:
    image = big_png(size)
    path = directory / name
    with path.open("wb") as out:
        for chunk in image.chunks():
            out.write(chunk)
    return path


def upload_once(
    stack: LocalStack, log: RequestLog, invocations: Invocations, *, uploader: Uploader, path: Path, measured: Measured
) -> None:
    assert stack.verdicts is not None and stack.events is not None
    log.mark()
    first_call = invocations.mark()
    started = time.perf_counter()
    result = uploader.upload(path, content_type="image/png")
    verdicts = stack.verdicts.wait_for(lambda event: event["detail"].get("key") == result.key, timeout=300)
    measured.seconds.append(time.perf_counter() - started)
    assert verdicts, f"no verdict for {result.key}"
    assert stack.events.drain(60), "the validation queue did not drain"
    time.sleep(0.5)  # the last log lines and invocation reports
    measured.verdicts.append(str(verdicts[0]["detail-type"]))
    measured.usage.append(tally(log.read()))
    measured.calls.extend(invocations.since(first_call))
    measured.runs += 1


def run(small_size: int, big_size: int, runs: int) -> tuple[list[Measured], dict[str, int]]:
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as directory:
        folder = Path(directory)
        small = write_image(folder, "photo.png", small_size)
        big = write_image(folder, "big.png", big_size)
        log = RequestLog(folder / "requests.jsonl")
        invocations = Invocations()
        with LocalStack(
            s3_port=0,
            api_port=0,
            parameter_overrides=LIMITS,
            request_log=log.path,
            demo_page=False,
            log_sink=lambda _function, _line: None,
        ) as stack:
            assert stack.functions is not None
            stack.functions.observer = invocations
            memory = {logical_id: spec.memory_mb for logical_id, spec in stack.functions.specs.items()}
            uploader = Uploader(stack.api_url, stack.token_for(USER), state_files=False)
            warm_up = Measured("warm-up", small.stat().st_size)
            upload_once(stack, log, invocations, uploader=uploader, path=small, measured=warm_up)
            cases = [Measured("image", small.stat().st_size), Measured("large file", big.stat().st_size)]
            for _ in range(runs):
                upload_once(stack, log, invocations, uploader=uploader, path=small, measured=cases[0])
                print(f"image: {cases[0].seconds[-1]:.2f} s", file=sys.stderr)
            upload_once(stack, log, invocations, uploader=uploader, path=big, measured=cases[1])
            print(f"large file: {cases[1].seconds[-1]:.2f} s", file=sys.stderr)
            purge(stack.s3_client(), stack.bucket)
    return cases, memory


# ---- arithmetic on what was measured


MODES = ("measured", "aws", "aws-cpu")
MODE_TITLES = {
    "measured": "measured here",
    "aws": "AWS estimate, full core",
    "aws-cpu": "AWS estimate, CPU share",
}


@dataclass(frozen=True)
class FunctionRow:
    """One function's invocations in one kind of upload, and what they would take on AWS."""

    function: str
    memory_mb: int
    calls_per_upload: float
    mean_ms: float
    max_ms: float
    sdk_calls_per_call: float
    sdk_ms_per_call: float  # the emulator's time answering them, inside the handler time
    sdk_bytes_per_call: float  # bodies sent and received by those calls

    def estimate_ms(self, mode: str) -> float:
        if mode == "measured":
            return self.mean_ms
        return prices.aws_estimate_ms(
            self.mean_ms,
            self.sdk_ms_per_call,
            self.sdk_calls_per_call,
            self.memory_mb,
            cpu_share=mode == "aws-cpu",
            call_latency_ms=AWS_CALL_SECONDS * 1000,
            sdk_bytes=self.sdk_bytes_per_call,
        )

    def concurrency(self, mode: str) -> float:
        return prices.concurrency(self.calls_per_upload, self.estimate_ms(mode) / 1000, RATE)

    def gb_seconds(self, mode: str) -> float:
        """Per upload; each invocation billed at the mean, rounded up to the millisecond."""
        return self.calls_per_upload * prices.billed_gb_seconds([self.estimate_ms(mode)], self.memory_mb)


def function_rows(case: Measured, memory: dict[str, int]) -> list[FunctionRow]:
    sdk = case.sdk_calls_by_function()
    sdk_ms = case.sdk_ms_by_function()
    sdk_bytes = case.sdk_bytes_by_function()
    rows = []
    for function in sorted({call.function for call in case.calls}):
        durations = [call.duration_ms for call in case.calls if call.function == function]
        rows.append(
            FunctionRow(
                function,
                memory[function],
                case.per_upload(len(durations)),
                sum(durations) / len(durations),
                max(durations),
                sdk[function] / len(durations),
                sdk_ms.get(function, 0.0) / len(durations),
                sdk_bytes[function] / len(durations),
            )
        )
    return rows


def counts(case: Measured, memory: dict[str, int], mode: str = "measured") -> prices.UploadCounts:
    tiers: Counter[str] = Counter()
    read = write = events = 0.0
    for usage in case.usage:
        tiers.update(usage.s3_tiers())
        read += usage.read_units
        write += usage.write_units
        events += usage.events
    gb_seconds = sum(row.gb_seconds(mode) for row in function_rows(case, memory))
    return prices.UploadCounts(
        api_calls=case.per_upload(sum(1 for call in case.calls if call.route)),
        lambda_requests=case.per_upload(len(case.calls)),
        lambda_gb_seconds=gb_seconds,
        s3_tier1=case.per_upload(tiers["tier1"]),
        s3_tier2=case.per_upload(tiers["tier2"]),
        sqs_requests=case.per_upload(sqs_requests(case.calls)),
        dynamodb_rru=case.per_upload(read),
        dynamodb_wru=case.per_upload(write),
        events=case.per_upload(events),
    )


def sqs_requests(calls: list[Call]) -> int:
    """S3's SendMessage per notification, and per batch the event source mapping's ReceiveMessage
    and DeleteMessageBatch; its empty polls are a fixed cost, not a per-upload one."""
    batches = [call for call in calls if call.sqs_records]
    return sum(call.sqs_records for call in batches) + 2 * len(batches)


def companion_s3(case: Measured) -> tuple[float, float]:
    """Per upload: the upload path's own S3 requests (tier 1), and their dollars per 1,000 uploads."""
    operations = case.s3_operations()
    requests = case.per_upload(sum(operations[name] for name in UPLOAD_PATH_OPERATIONS))
    return requests, requests * prices.price("s3_tier1") * 1000


# ---- report


def money(usd: float) -> str:
    return f"${usd:,.4f}" if usd < 1 else f"${usd:,.2f}"


def markdown(cases: list[Measured], memory: dict[str, int], runs: int, argv: list[str]) -> str:
    lines = [
        HEADING,
        "",
        "`bench/cost.py`: the requests one upload causes, counted in a run of the local stack, times",
        "AWS's us-east-1 list prices. Each upload goes from `POST /uploads` to the validator's verdict",
        "event, with `client.Uploader`'s defaults (4 threads, the API's 8 MiB parts, CRC32 per part);",
        f"the 10 MiB PNG {runs} times, the 1 GiB PNG once, after one warm-up upload (cold starts excluded).",
        "The validator's pixel limits are raised (MaxImagePixels 200 M, MaxImageHeight 65,535) so that the",
        "1 GiB PNG (134 Mpixels) is judged valid rather than rejected, as the defaults would.",
        "S3, DynamoDB and EventBridge requests are counted at the emulator (each function's SDK calls",
        "are told apart by their User-Agent, the client's presigned requests by theirs; the local",
        "pollers and this harness are left out); Lambda invocations and durations at the local invoker",
        "(the handler's own time, measured in the worker, is what Lambda bills).",
        machine_line(),
        f"Command: `{command_line('bench.cost', argv)}`",
        "",
    ]
    for case in cases:
        by_mode = {mode: prices.cost_lines(counts(case, memory, mode)) for mode in MODES}
        stored = prices.storage_per_month(case.size)
        companion_requests, companion_usd = companion_s3(case)
        lines += [
            f"### A {case.size / MIB:,.1f} MiB {case.name} (PNG): 1,000 uploads",
            "",
            f"Verdicts: {', '.join(case.verdicts)}; wall time per upload here "
            f"{sum(case.seconds) / len(case.seconds):.2f} s (upload + validation).",
            "",
            "| component | per upload | per 1,000 uploads, " + " | ".join(MODE_TITLES[mode] for mode in MODES) + " |",
            "|---|---|---|---|---|",
        ]
        for index, line in enumerate(by_mode["measured"]):
            digits = 4 if line.unit == "GB-s" else 2
            quantity = f"{line.quantity:,.{digits}f} {line.unit}"
            dollars = " | ".join(money(by_mode[mode][index].usd_per_1000) for mode in MODES)
            lines.append(f"| {line.component} | {quantity} | {dollars} |")
        totals = " | ".join(f"**{money(prices.total(by_mode[mode]))}**" for mode in MODES)
        lines += [
            f"| **requests and compute** | | {totals} |",
            f"| S3 Standard storage, per month kept | {case.size / MIB:,.1f} MiB | {money(stored)} a month | | |",
            f"| *Companion reference*: the upload's own S3 requests | {companion_requests:,.2f} requests "
            f"| {money(companion_usd)} | + {money(prices.server_per_month())} a month per t4g.small server | |",
            "",
        ]
        operations = case.s3_operations()
        s3_text = ", ".join(f"{name} {case.per_upload(count):g}" for name, count in sorted(operations.items()))
        dynamo: Counter[str] = Counter()
        write_bytes = 0
        for usage in case.usage:
            dynamo.update(usage.dynamodb)
            write_bytes += usage.dynamodb_write_bytes
        dynamo_text = ", ".join(f"{name} {case.per_upload(count):g}" for name, count in sorted(dynamo.items()))
        unanswered: Counter[str] = Counter()
        for usage in case.usage:
            unanswered.update(usage.s3_unanswered)
        if unanswered:
            dropped = ", ".join(f"{name} {count}" for name, count in sorted(unanswered.items()))
            s3_text += (
                f" (of which unanswered in time or failed, then retried by the SDK: {dropped}; the emulator "
                "was slow under this machine's load)"
            )
        routes: dict[str, list[float]] = {}
        for call in case.calls:
            if call.route:
                routes.setdefault(call.route, []).append(call.duration_ms)
        route_text = ", ".join(
            f"`{route}` {case.per_upload(len(values)):g} ({sum(values) / len(values):.0f} ms mean)"
            for route, values in sorted(routes.items())
        )
        measured = counts(case, memory)
        lines += [
            f"Per upload: API calls {route_text}; S3 {s3_text}; DynamoDB {dynamo_text} "
            f"({measured.dynamodb_wru:g} WRU, {measured.dynamodb_rru:g} RRU; about "
            f"{case.per_upload(write_bytes) / 1024:.1f} KiB of write requests, so the registry's state "
            f"storage is well under {money(prices.price('dynamodb_storage') * 1000 * 8192 / prices.GIB)} "
            "a month per 1,000 uploads); SQS and EventBridge as in the table.",
            "",
            f"Lambda per function, and the concurrency needed at {RATE} uploads per second (Little's law:",
            f"invocations per upload x duration x {RATE}/s). *Emulator* is the part of the handler time spent",
            "waiting for the emulator's answers (timed at the emulator); the AWS estimates replace it with",
            f"{AWS_CALL_SECONDS * 1000:.0f} ms per call plus its bodies at "
            f"{prices.LAMBDA_S3_BYTES_PER_SECOND / MIB:.0f} MiB/s, and keep the rest (the handler's own work)",
            "as measured (full core) or stretched to the function's CPU share (x 1769/memory):",
            "",
            "| function | memory | invocations per upload | handler mean | max | AWS calls per invocation "
            "| bytes per invocation | emulator | concurrency at 100/s: "
            + " / ".join(MODE_TITLES[mode] for mode in MODES)
            + " |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        rows = function_rows(case, memory)
        for row in rows:
            concurrency = " / ".join(f"{row.concurrency(mode):.1f}" for mode in MODES)
            lines.append(
                f"| {row.function} | {row.memory_mb} MB | {row.calls_per_upload:g} | {row.mean_ms:.1f} ms "
                f"| {row.max_ms:.1f} ms | {row.sdk_calls_per_call:.1f} | {row.sdk_bytes_per_call / MIB:,.2f} MiB "
                f"| {row.sdk_ms_per_call:.1f} ms | {concurrency} |"
            )
        summed = " / ".join(f"{sum(row.concurrency(mode) for row in rows):.0f}" for mode in MODES)
        lines += [f"| **all** | | | | | | | | **{summed}** |", ""]
    lines += [
        "How to read it:",
        "",
        "- *Measured here*: handler time on one core of this machine against the emulator on loopback.",
        "  On AWS two things differ, in opposite directions: every S3/DynamoDB/EventBridge call waits",
        "  for the network instead of the emulator (the estimates charge a flat per-call latency in",
        "  place of the emulator's measured time; the emulator is slow at some calls, e.g. assembling",
        "  a 1 GiB CompleteMultipartUpload in memory), and a function gets CPU in proportion to its",
        "  memory (a full vCPU at 1,769 MB), so its own work can take up to 1769/memory longer (x6.9",
        "  at 256 MB). *Full core* and *CPU share* bracket the AWS figure, except where one AWS call",
        "  takes S3 far longer than the flat latency plus its bytes: completing a 129-part upload",
        "  assembles 1 GiB (seconds are possible), so the 1 GiB estimates are low for the uploads",
        f"  function. Bodies are charged at {prices.LAMBDA_S3_BYTES_PER_SECOND / MIB:.0f} MiB/s, a Lambda's typical",
        "  rate from S3 (an estimate, as README.md says): the validator reads each object whole, in one GET. The",
        "  validator (1,769 MB) is not stretched.",
        "- DynamoDB does not report consumed capacity locally: write units are bounded by each",
        "  request's JSON size (1 WRU per KiB, 2 per item in a transaction), read units by each",
        "  response's size (1 RRU per 4 KiB when strongly consistent, half otherwise); both overstate.",
        "- SQS: one SendMessage per S3 notification (made by S3 inside the emulator, so derived from the",
        "  messages the validator received), and one ReceiveMessage plus one DeleteMessageBatch per",
        "  batch. The event source mapping's empty long polls (a few pollers, around the clock) are a",
        "  fixed monthly cost, as is the sweeper's schedule; neither is per upload.",
        "- Data transfer into S3 and API Gateway's small responses are free or negligible; a download",
        "  of the file later is not included. Free tiers are not subtracted.",
        "- The Companion reference counts only the S3 requests of the upload itself (create, parts,",
        "  complete) as Companion's S3 multipart routes would make them, plus a server that runs all",
        "  month whatever the traffic (one t4g.small; two behind a load balancer for availability cost",
        "  more). It has no registry, quotas, validation or verdict events; those are the rest of the",
        "  table.",
        "",
        "Prices (us-east-1, read from stored copies of public pages; no network here):",
        "",
        "| price | USD | per | source | source's date |",
        "|---|---|---|---|---|",
    ]
    for item in prices.PRICES.values():
        amount = f"{item.usd * 1e6:g} per million" if item.usd < 1e-4 else f"{item.usd:g}"
        unit = item.unit
        seen = f"{item.seen} **verify**" if item.verify else item.seen
        lines.append(f"| {item.what} | {amount} | {unit} | {item.source} | {seen} |")
    lines.append("")
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--small-mib", type=float, default=10, help="the image's size in MiB (default 10)")
    parser.add_argument("--big-mib", type=float, default=1024, help="the large file's size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="uploads of the image (default 3)")


def report(args: argparse.Namespace, argv: list[str]) -> str:
    cases, memory = run(int(args.small_mib * MIB), int(args.big_mib * MIB), args.runs)
    return markdown(cases, memory, args.runs, argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    return bench_main(__doc__, HEADING, options, report, argv)


if __name__ == "__main__":
    sys.exit(main())
