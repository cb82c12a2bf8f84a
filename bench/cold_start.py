"""Cold start: each function's handler import in a fresh interpreter, then its first request.

For each function of template.yaml, a new Python process gets the function's environment (the
template's variables plus what Lambda sets, with a running local stack's resources) and Lambda's
import path (the function's code directory, then the layers), and times `import <handler module>`:
Lambda's init phase, minus the runtime's own start. The same process then calls `lambda_handler`
once with a representative event and times that first request, so that work moved out of the
import into the first request is still counted. Next to them, a handler that imports only boto3
and whose first request creates an S3 and a DynamoDB client and makes one call on each (what
every function's first request needs at least). Median of N processes per handler, interleaved.

The AWS calls go to the local stack (MiniStack, the embedded S3/DynamoDB/SQS/EventBridge on
127.0.0.1), so a first request is the handler's own work plus loopback calls, not AWS's latency.
One more process per function runs with `-X importtime` to list what the handler imports.

    .venv/bin/python -m bench.cold_start              # 10 processes per handler
    .venv/bin/python -m bench.cold_start --runs 20 --write
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import bench_main, command_line, machine_line, median, purge, use_code_paths

use_code_paths()

import requests  # noqa: E402
from PIL import Image  # noqa: E402

from local.stack import LocalStack  # noqa: E402
from tests.import_support import Reply, SourceServer, image_bytes  # noqa: E402
from tests.stack_limits import GENEROUS_LIMITS  # noqa: E402
from tests.unit.lambda_fakes import http_event, s3_record, sqs_message  # noqa: E402

HEADING = "## Cold start"
BASELINE = "boto3 only (baseline)"
BOTO3_ONLY = '''"""A handler that imports only boto3; its first request makes an S3 and a DynamoDB call."""
import os

import boto3


def lambda_handler(event, context):
    s3 = boto3.client("s3")
    dynamodb = boto3.client("dynamodb")
    s3.put_object(Bucket=os.environ["BUCKET_NAME"], Key=event["key"], Body=b"x")
    dynamodb.get_item(TableName=os.environ["REGISTRY_TABLE"], Key={"pk": {"S": event["key"]}, "sk": {"S": "x"}})
    return {"statusCode": 200}
'''
# Runs in the child: time the import and then, when given an event, the first request; report
# them with the memory, the packages loaded at each point and the AWS calls the request made.
# The result is stdout's last line (the handler's logs and metrics are printed before it).
PROBE = """
import json, sys, time
def peak_mib():  # VmHWM: ru_maxrss would carry the bench's own peak over the exec
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
def packages():
    return sorted({name.split(".")[0] for name, module in list(sys.modules.items())
                   if "site-packages" in (getattr(module, "__file__", None) or "")})
started = time.perf_counter()
module = __import__(sys.argv[1])
elapsed = time.perf_counter() - started
result = {"ms": elapsed * 1000, "rss_mib": peak_mib(),
          "modules": len(sys.modules), "packages": packages()}
if len(sys.argv) > 2:
    with open(sys.argv[2], encoding="utf-8") as file:
        event = json.load(file)
    import botocore.client
    calls = []
    make_api_call = botocore.client.BaseClient._make_api_call
    def counted(self, operation, params):
        calls.append(f"{self.meta.service_model.service_id.hyphenize()} {operation}")
        return make_api_call(self, operation, params)
    botocore.client.BaseClient._make_api_call = counted
    class Context:
        function_name = "cold-start"; function_version = "$LATEST"; memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold-start"
        aws_request_id = "00000000-0000-0000-0000-000000000000"
        log_group_name = "/aws/lambda/cold-start"; log_stream_name = "local"
        def get_remaining_time_in_millis(self): return 30_000
    started = time.perf_counter()
    response = module.lambda_handler(event, Context())
    elapsed = time.perf_counter() - started
    result.update(first_ms=elapsed * 1000, calls=calls, response=response,
                  rss_after_mib=peak_mib(),
                  modules_after=len(sys.modules), packages_after=packages())
print(json.dumps(result, default=str))
"""


@dataclass
class Handler:
    name: str
    module: str
    paths: list[Path]
    environment: dict[str, str]
    event: Callable[[], dict[str, Any]] | None = None  # a fresh representative event per process
    request: str = ""  # what the first request is, for the report
    samples: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)  # import + first request, same process
    rss_mib: float = 0.0
    rss_after_mib: float = 0.0
    modules: int = 0
    modules_after: int = 0
    packages: list[str] = field(default_factory=list)
    packages_after: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    direct: list[tuple[str, float]] = field(default_factory=list)  # (module, cumulative ms)
    own_ms: dict[str, float] = field(default_factory=dict)  # module -> self ms, from -X importtime


class Events:
    """A representative first request per function, each against the running local stack."""

    def __init__(self, stack: LocalStack, source: SourceServer) -> None:
        self.stack = stack
        self.source = source
        self.png = image_bytes("PNG", (640, 480))  # 3 KB: under INSPECT_HEAD_BYTES, Pillow opens it too
        # A photo's entropy: 640 KB, over INSPECT_HEAD_BYTES, so the walkers alone judge it.
        photo = io.BytesIO()
        Image.effect_noise((640, 480), 64).convert("RGB").save(photo, format="PNG")
        self.photo = photo.getvalue()
        source.routes["/cold.png"] = Reply(headers=[("Content-Type", "image/png")], body=[self.png])
        self.files_user = f"cold-files-{uuid.uuid4().hex[:8]}"
        self._uploaded(self.files_user, self.png)  # so that GET /files lists something

    @staticmethod
    def user() -> str:
        return f"cold-{uuid.uuid4().hex[:12]}"

    def uploads(self) -> dict[str, Any]:
        body = {"filename": "photo.png", "contentType": "image/png", "size": 64 << 20}
        return http_event("POST", "/uploads", body=body, sub=self.user())

    def imports(self) -> dict[str, Any]:
        return http_event("POST", "/imports", body={"url": self.source.url("/cold.png")}, sub=self.user())

    def files(self) -> dict[str, Any]:
        return http_event("GET", "/files", sub=self.files_user)

    def validator(self) -> dict[str, Any]:
        return self._notification(self.photo)

    def validator_small(self) -> dict[str, Any]:
        return self._notification(self.png)

    def _notification(self, body: bytes) -> dict[str, Any]:
        key = self._uploaded(self.user(), body)
        head = self.stack.s3_client().head_object(Bucket=self.stack.bucket, Key=key)
        record = s3_record(key, head.get("VersionId"), self.stack.bucket, "ObjectCreated:Post")
        record["s3"]["object"]["size"] = head["ContentLength"]
        return {"Records": [sqs_message(json.dumps({"Records": [record]}))]}

    @staticmethod
    def sweeper() -> dict[str, Any]:
        return {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

    @staticmethod
    def baseline() -> dict[str, Any]:
        return {"key": f"bench-cold/{uuid.uuid4().hex}"}

    def after(self, event: dict[str, Any], response: dict[str, Any]) -> None:
        """Aborts an upload a first request started, so that every sweep finds the same work."""
        if event.get("routeKey") != "POST /uploads":
            return
        user = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
        started = json.loads(response["body"])
        requests.delete(
            f"{self.stack.api_url}/uploads/{started['uploadId']}",
            params={"key": started["key"]},
            headers={"Authorization": f"Bearer {self.stack.token_for(user)}"},
            timeout=60,
        ).raise_for_status()

    def _uploaded(self, user: str, png: bytes) -> str:
        """A form upload of a PNG through the API (so the registry knows it); its key."""
        headers = {"Authorization": f"Bearer {self.stack.token_for(user)}"}
        body = {"filename": "photo.png", "contentType": "image/png", "size": len(png)}
        form = requests.post(f"{self.stack.api_url}/uploads/form", json=body, headers=headers, timeout=60)
        form.raise_for_status()
        created = form.json()
        files = {"file": ("photo.png", png, "image/png")}
        requests.post(created["url"], data=created["fields"], files=files, timeout=60).raise_for_status()
        return str(created["key"])


IMPORTTIME_TRIES = 3
# What was done for this goal and what stands in its way; the figures it refers to are above.
EXPLANATION = [
    "What a start no longer does (each pinned by tests/unit/test_start_imports.py): with tracing off",
    "the tracer is a no-op provider instead of Powertools' X-Ray one, whose construction imports the",
    "X-Ray SDK and with it wrapt and asyncio even when disabled; with tracing on only botocore and",
    "http.client are patched (Powertools' default `patch_all` also imports and patches sqlite3,",
    "requests...); settings are read by a standard-library reader (upload_core/environment.py)",
    "instead of pydantic dataclasses, so the sweeper loads no pydantic at all and the others build",
    "no settings schema; request and response models are built when a request first uses one",
    "(`defer_build`), not all of them at import; Pillow is imported for the first object small",
    "enough for it (`INSPECT_HEAD_BYTES`), so a photo is judged by the walkers alone. None of it is",
    "work moved into the first request: a request that needs a deferred piece pays for that piece",
    "only (the *small image* row pays for Pillow).",
    "",
    "What keeps the HTTP functions and the validator above 1.25x is what their requests need:",
    "pydantic (with pydantic_core, annotated_types, typing_inspection) for Powertools' request",
    "validation and the validator's message models; Powertools' event handler or batch utility,",
    "whose packages import every event data class and asyncio (for their async resolvers) with",
    "them; and the project's own modules (upload_core's services and dataclasses, the functions'",
    "routes and models). Deferring those to the first request would improve the import column",
    "only, not import + first request. The sweeper needs none of them: beyond boto3 it imports",
    "Powertools' logger, metrics and tracer and its own modules only.",
]
TRACED = {
    "POWERTOOLS_TRACE_DISABLED": "false",
    "_X_AMZN_TRACE_ID": "Root=1-6750a000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
}
REQUESTS = {
    "UploadsFunction": ("uploads", "POST /uploads (a 64 MiB PNG)"),
    "ImportsFunction": ("imports", "POST /imports of a 3 KB PNG from a local HTTP server"),
    "FilesFunction": ("files", "GET /files (one file)"),
    "ValidatorFunction": ("validator", "an SQS message for a fresh form-uploaded 640x480 photo (PNG, 640 KB)"),
    "SweeperFunction": ("sweeper", "a scheduled sweep"),
}


def handlers(stack: LocalStack, events: Events, boto3_dir: Path) -> list[Handler]:
    assert stack.functions is not None
    found = []
    for logical_id, spec in stack.functions.specs.items():
        environment = stack.functions.pool(logical_id).environment
        method, request = REQUESTS.get(logical_id, ("", ""))
        found.append(
            Handler(
                logical_id,
                spec.handler.rsplit(".", 1)[0],
                [spec.code_uri, *spec.layer_dirs],
                environment,
                getattr(events, method) if method else None,
                request,
            )
        )
        if logical_id == "ValidatorFunction":
            validator = found[-1]
            found.append(
                Handler(
                    f"{logical_id}, small image",
                    validator.module,
                    validator.paths,
                    validator.environment,
                    events.validator_small,
                    "the same for a 3 KB PNG (under INSPECT_HEAD_BYTES, so Pillow opens it too)",
                )
            )
    # As deployed (template: Tracing: Active): the X-Ray SDK loads and patches at start, and each
    # request records subsegments (sent over UDP to a daemon address where nothing listens).
    found += [
        Handler(
            f"{handler.name}, tracing on",
            handler.module,
            handler.paths,
            {**handler.environment, **TRACED},
            handler.event,
            handler.request,
        )
        for handler in list(found)
        if handler.name in REQUESTS
    ]
    baseline_env = {k: v for k, v in found[0].environment.items() if not k.startswith("POWERTOOLS")}
    found.append(
        Handler(
            BASELINE,
            "boto3_only_handler",
            [boto3_dir],
            baseline_env,
            events.baseline,
            "S3 PutObject + DynamoDB GetItem, each client created in the request",
        )
    )
    return found


def child(
    handler: Handler, *, importtime: bool = False, event_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**handler.environment, "PYTHONPATH": os.pathsep.join(str(path) for path in handler.paths)}
    flags = ["-X", "importtime"] if importtime else []
    extra = [str(event_file)] if event_file is not None else []
    return subprocess.run(
        [sys.executable, *flags, "-c", PROBE, handler.module, *extra],
        env=environment,
        cwd=handler.paths[0],
        capture_output=True,
        text=True,
        check=True,
    )


def self_times(stderr: str) -> dict[str, float]:
    """Each module's own import time (without the modules it imported), from `-X importtime`."""
    times: dict[str, float] = {}
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own_us, _, label = line.removeprefix("import time:").split("|", 2)
            times[label.strip()] = int(own_us.strip()) / 1000
    return times


def extra_by_package(handler: Handler, baseline: Handler) -> list[tuple[str, float]]:
    """What the handler imports beyond the baseline, summed by top-level package, largest first.
    The function's own modules (outside site-packages and the layers) count as "function code"."""
    own_code = {path.stem for path in handler.paths[0].glob("*.py")}
    totals: dict[str, float] = {}
    for name, ms in handler.own_ms.items():
        if name in baseline.own_ms:
            continue
        root = name.split(".")[0]
        package = "function code" if root in own_code else root
        totals[package] = totals.get(package, 0.0) + ms
    return sorted(totals.items(), key=lambda item: -item[1])


def best_importtime(handler: Handler, tries: int) -> str:
    """The `-X importtime` report of the quickest of `tries` imports (the least disturbed by the load)."""
    reports = [child(handler, importtime=True).stderr for _ in range(tries)]
    return min(reports, key=lambda report: sum(self_times(report).values()))


def direct_imports(stderr: str, module: str) -> list[tuple[str, float]]:
    """The modules the handler module itself imported (first time), with their cumulative time.

    `-X importtime` prints children before their parent, each indented two spaces per level; the
    handler's direct imports are the entries one level deeper than the handler's own line.
    """
    entries: list[tuple[int, str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        _, total_us, label = line.split("|", 2)
        depth = (len(label) - len(label.lstrip(" ")) - 1) // 2
        entries.append((depth, label.strip(), int(total_us.strip()) / 1000))
    position = next(i for i, (depth, name, _) in enumerate(entries) if name == module)
    own_depth = entries[position][0]
    children: list[tuple[str, float]] = []
    for depth, name, cumulative in reversed(entries[:position]):
        if depth <= own_depth:
            break
        if depth == own_depth + 1:
            children.append((name, cumulative))
    return sorted(children, key=lambda item: -item[1])


def succeeded(response: Any) -> bool:
    if not isinstance(response, dict):
        return False
    if "statusCode" in response:
        return int(response["statusCode"]) < 300
    return not response.get("batchItemFailures")


def sample(handler: Handler, directory: Path, events: Events) -> None:
    assert handler.event is not None
    event = handler.event()
    event_file = directory / f"event-{uuid.uuid4().hex}.json"
    event_file.write_text(json.dumps(event), encoding="utf-8")
    completed = child(handler, event_file=event_file)
    event_file.unlink()
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if not succeeded(result["response"]):
        raise RuntimeError(f"{handler.name}: the first request failed: {result['response']}\n{completed.stdout}")
    handler.samples.append(result["ms"])
    handler.firsts.append(result["ms"] + result["first_ms"])
    handler.rss_mib, handler.modules, handler.packages = result["rss_mib"], result["modules"], result["packages"]
    handler.rss_after_mib, handler.modules_after = result["rss_after_mib"], result["modules_after"]
    handler.packages_after, handler.calls = result["packages_after"], result["calls"]
    events.after(event, result["response"])


def run(runs: int) -> tuple[list[Handler], list[float]]:
    loads: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-cold-") as name,
        SourceServer() as source,
        LocalStack(
            s3_port=0,
            api_port=0,
            s3_events=False,  # the validator runs only when the bench calls it
            demo_page=False,
            env_overrides={"IMPORT_ALLOWED_DESTINATIONS": source.authority},
            parameter_overrides=GENEROUS_LIMITS,
        ) as stack,
    ):
        directory = Path(name)
        (directory / "boto3_only_handler.py").write_text(BOTO3_ONLY, encoding="utf-8")
        events = Events(stack, source)
        found = handlers(stack, events, directory)
        for handler in found:
            child(handler)  # bytecode compiled once, as a deployed package would ship it
        order = random.Random(14)
        for _ in range(runs):
            # Interleaved, so that a busy moment hits them all alike, in a new order each round.
            for handler in order.sample(found, len(found)):
                sample(handler, directory, events)
            loads.append(os.getloadavg()[0])
        for handler in found:
            report = best_importtime(handler, IMPORTTIME_TRIES)
            handler.direct, handler.own_ms = direct_imports(report, handler.module), self_times(report)
        purge(stack.s3_client(), stack.bucket)
    return found, loads


def markdown(found: list[Handler], loads: list[float], runs: int, argv: list[str]) -> str:
    baseline = found[-1]
    lines = [
        HEADING,
        "",
        "`bench/cold_start.py`: in a fresh Python process with the function's environment from",
        "template.yaml (a running local stack's resources) and Lambda's import path (code directory,",
        "then the layers), `import <handler module>` is timed, then the same process calls",
        "`lambda_handler` once with a representative event (listed below the table), timed too:",
        "*import + first request* counts whatever a handler defers from its start to its first request.",
        "The baseline imports only boto3; its first request creates an S3 and a DynamoDB client and",
        "makes one call on each. AWS calls go to MiniStack on 127.0.0.1 (loopback, not AWS's latency).",
        f"Median of {runs} processes per row, interleaved in a new order each round; a ratio is the",
        "median of the rounds' ratios (each row against the baseline of the same round). Bytecode is",
        "already compiled (a deployment package without `__pycache__` compiles on its first start,",
        "which adds to these). Rows without",
        "a suffix run as the local stack does, tracing off (`POWERTOOLS_TRACE_DISABLED`); *tracing on*",
        "rows run as deployed (`Tracing: Active`): the X-Ray SDK loads and patches botocore at start",
        "and each request records subsegments (sent to a daemon address where nothing listens).",
        "Peak RSS is VmHWM; third-party packages are those loaded from site-packages by the import (on",
        "Lambda, boto3 and botocore come with the runtime, Powertools and pydantic from its layer;",
        "with tracing off `aws_xray_sdk` is only its top-level package, which Powertools uses to turn",
        "the SDK off).",
        machine_line(),
        f"Load average (1 minute) after each round: {', '.join(f'{load:.1f}' for load in loads)}.",
        f"Command: `{command_line('bench.cold_start', argv)}`",
        "",
        "| handler | import (median) | min-max | vs boto3 only | import + first request | vs boto3 only "
        "| peak RSS (import / request) | modules (import / request) | third-party packages at import |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for handler in found:
        ms, fastest, slowest = median(handler.samples), min(handler.samples), max(handler.samples)
        first = median(handler.firsts)
        # Each round's ratio (the two processes ran within seconds of each other), then the median.
        ratio = median([mine / base for mine, base in zip(handler.samples, baseline.samples, strict=True)])
        first_ratio = median([mine / base for mine, base in zip(handler.firsts, baseline.firsts, strict=True)])
        lines.append(
            f"| {handler.name} (`{handler.module}`) | {ms:.0f} ms | {fastest:.0f}-{slowest:.0f} ms "
            f"| {ratio:.2f}x | {first:.0f} ms | {first_ratio:.2f}x "
            f"| {handler.rss_mib:.0f} / {handler.rss_after_mib:.0f} MiB | {handler.modules} / {handler.modules_after} "
            f"| {', '.join(handler.packages)} |"
        )
    lines += ["", "The first request of each, and the AWS calls it made:", ""]
    for handler in found:
        later = sorted(set(handler.packages_after) - set(handler.packages))
        loaded = f"; packages it loaded: {', '.join(later)}" if later else ""
        counted = Counter(handler.calls)  # in the order of each operation's first call
        calls = ", ".join(f"{call} x{count}" if count > 1 else call for call, count in counted.items())
        lines.append(f"- **{handler.name}**: {handler.request}: {calls or 'none'}{loaded}")
    lines += [
        "",
        "What each handler imports at start (its own imports, cumulative time of each, from one",
        "`-X importtime` run; a module already loaded by an earlier import costs nothing here):",
        "",
    ]
    listed = [handler for handler in found[:-1] if ", " not in handler.name]  # one row per function
    for handler in listed:
        shown = ", ".join(f"`{name}` {ms:.0f} ms" for name, ms in handler.direct if ms >= 0.5)
        lines.append(f"- **{handler.name}**: {shown}")
    lines += [
        "",
        "What remains over the baseline: the modules a handler imports that `import boto3` does not,",
        "their own import time summed by top-level package (`-X importtime`, the quickest of",
        f"{IMPORTTIME_TRIES} runs; importtime's own overhead inflates these a little):",
        "",
    ]
    for handler in (item for item in found[:-1] if not item.name.endswith(", small image")):
        extra = extra_by_package(handler, baseline)
        shown = ", ".join(f"`{name}` {ms:.0f} ms" for name, ms in extra if ms >= 1)
        lines.append(f"- **{handler.name}**: {sum(ms for _, ms in extra):.0f} ms: {shown}")
    lines += ["", *EXPLANATION]
    lines.append("")
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per handler (median reported)")


def report(args: argparse.Namespace, argv: list[str]) -> str:
    found, loads = run(args.runs)
    return markdown(found, loads, args.runs, argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, HEADING, options, report, argv)


if __name__ == "__main__":
    sys.exit(main())
