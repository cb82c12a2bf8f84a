"""Control plane: what a 10 GiB upload costs the API, and signing 1000 part URLs at once.

A 10 GiB file in 8 MiB parts (the API's default part size) is 1280 parts. The API needs four
calls for it whatever the network: create, sign parts 1-1000, sign 1001-1280, complete. This
measures each call two ways:

- round trip: over real HTTP through the local stack (gateway, JWT check, a warm worker running
  the real handler, MiniStack as S3 and DynamoDB), as a client sees it on this machine;
- handler time: `uploads_handler.lambda_handler` called in this process with the function's
  environment from template.yaml, talking to the same MiniStack: what Lambda would bill,
  minus the AWS services' latency. The AWS requests each call makes are counted on the
  container's clients.

Completing needs the parts to exist in S3 and the API refuses parts under 5 MiB, so a real
1280-part completion would mean storing 10 GiB. Instead the completion is measured (a) over
HTTP and in process on a real 2-part upload, and (b) in process for 1280 parts with S3's
answers stubbed (botocore's Stubber: ListParts in two pages of 1000 and 280, then
CompleteMultipartUpload) on a service the route gets through a dependency override, with the
real registry (each completion completes a fresh plan), so the handler's own work for 1280
parts (listing, checking sizes against the plan, building the request, settling the plan) is
timed and only S3's processing is left out.

Signing: one POST /uploads/{id}/parts for 1000 part numbers (over HTTP and in process), against
a plain loop of 1000 `generate_presigned_url("upload_part", ...)` calls on a boto3 client (what
a hand-written signing endpoint would do, with no ownership check and no validation); and the
same with a CRC32 per part (the client's default), against a loop that signs the same
Content-Length and checksum. The three are interleaved in rounds, so they see the same load.

    .venv/bin/python -m bench.control_plane               # 10 repetitions of each measurement
    .venv/bin/python -m bench.control_plane --runs 20 --write
"""

from __future__ import annotations

import argparse
import base64
import datetime
import importlib
import json
import os
import sys
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.report import GIB, MIB, bench_main, command_line, machine_line, median, use_code_paths

use_code_paths()

import boto3  # noqa: E402
import requests  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from local.stack import LocalStack  # noqa: E402
from tests.stack_limits import GENEROUS_LIMITS  # noqa: E402
from tests.unit.lambda_fakes import FakeContext, http_event  # noqa: E402

HEADING = "## Control plane"
UPLOAD_SIZE = 10 * GIB
PART_SIZE = 8 * MIB
PARTS = UPLOAD_SIZE // PART_SIZE  # 1280
BATCH = 1000
USER = "bench-control"


@dataclass
class Row:
    call: str
    requests: str  # the AWS requests the handler made, counted in process
    round_trip_ms: float | None
    handler_ms: float | None


def timed(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median milliseconds of `runs` calls (after one warm-up call), and the last result."""
    result = function()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        samples.append((time.perf_counter() - started) * 1000)
    return median(samples), result


class InProcess:
    """The uploads function's handler in this process, with its template environment."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.functions is not None
        os.environ.update(stack.functions.pool("UploadsFunction").environment)
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # one log line per call would dominate
        # Imported only now: the handler and its Logger read the environment when imported.
        self.handler: Any = importlib.import_module("uploads_handler")
        self.provider: Any = importlib.import_module("service_factory").upload_service
        self.context = FakeContext()
        # The AWS requests the last call made, counted on the container's own clients.
        self.requests: Counter[str] = Counter()
        service = self.provider()
        for client in (service.storage.client, service.registry.client):
            client.meta.events.register_first("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.requests[f"{model.service_model.service_id} {model.name}"] += 1

    def call(self, method: str, path: str, route: str, **kwargs: Any) -> dict[str, Any]:
        params = {"uploadId": path.split("/")[2]} if "{uploadId}" in route else None
        event = http_event(method, path, route=route, path_params=params, sub=USER, **kwargs)
        self.requests.clear()
        response: dict[str, Any] = self.handler.lambda_handler(event, self.context)
        assert int(response["statusCode"]) < 300, response
        return json.loads(response["body"]) if response.get("body") else {}

    def requests_made(self) -> str:
        """The last call's AWS requests, e.g. "1 S3 CreateMultipartUpload, 2 DynamoDB UpdateItem"."""
        return ", ".join(f"{count} {name}" for name, count in sorted(self.requests.items())) or "none"


class Api:
    """A new connection per call, as a browser or phone reaching API Gateway often does."""

    def __init__(self, stack: LocalStack) -> None:
        self.base = stack.api_url
        self.headers = {"Authorization": f"Bearer {stack.token_for(USER)}"}
        self.last_response_bytes = 0

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = requests.request(method, self.base + path, json=body, headers=self.headers, timeout=60)
        assert response.status_code < 300, response.text
        self.last_response_bytes = len(response.content)
        return response.json() if response.content else {}


def create_body(checksum_algorithm: str | None = None) -> dict[str, Any]:
    body = {"filename": "big.png", "contentType": "image/png", "size": UPLOAD_SIZE, "partSize": PART_SIZE}
    return body | ({"checksumAlgorithm": checksum_algorithm} if checksum_algorithm else {})


def stubbed_completion(local: InProcess, runs: int) -> tuple[float, str]:
    """Handler time of completing a 1280-part upload, S3's answers stubbed; and its requests.

    The route gets its service from the container's provider (Depends): the override gives it
    one on a stubbed S3 client and the container's real registry. Each completion completes a
    fresh plan, reserved and opened as POST /uploads does (outside the timing), with a made-up
    upload id that only the stubbed S3 answers for."""
    gateway = importlib.import_module("upload_core.s3")
    service_module = importlib.import_module("upload_core.uploads")
    settings = importlib.import_module("upload_core.settings").get_settings()
    registry = local.provider().registry
    client = gateway.build_s3_client(settings)
    client.meta.events.register_first("before-call.*.*", local._count)
    service = service_module.UploadService(settings, gateway.S3Gateway(settings, client=client), registry=registry)
    stubber = Stubber(client)
    now = datetime.datetime.now(datetime.UTC)

    def page(key: str, upload_id: str, first: int, last: int, truncated: bool) -> dict[str, Any]:
        parts = [
            {"PartNumber": n, "ETag": f'"{n:032x}"', "Size": PART_SIZE, "LastModified": now}
            for n in range(first, last + 1)
        ]
        answer: dict[str, Any] = {"Bucket": settings.bucket_name, "Key": key, "UploadId": upload_id, "Parts": parts}
        answer["IsTruncated"] = truncated
        if truncated:
            answer["NextPartNumberMarker"] = last
        return answer

    def planned_upload() -> tuple[str, str]:
        plan = service.reserve_multipart(
            USER, filename="big.png", content_type="image/png", size=UPLOAD_SIZE, part_size=PART_SIZE
        ).plan
        upload_id = f"stubbed-{uuid.uuid4().hex}"
        registry.open(plan.key, upload_id)
        stubber.add_response("list_parts", page(plan.key, upload_id, 1, BATCH, True))
        stubber.add_response("list_parts", page(plan.key, upload_id, BATCH + 1, PARTS, False))
        stubber.add_response(
            "complete_multipart_upload",
            {"Bucket": settings.bucket_name, "Key": plan.key, "ETag": f'"{"0" * 32}-{PARTS}"', "Location": "x"},
        )
        return plan.key, upload_id

    local.handler.app.dependency_overrides[local.provider] = lambda: service
    samples = []
    try:
        with stubber:
            for index in range(runs + 1):  # the first call warms up and is not counted
                key, upload_id = planned_upload()
                path = f"/uploads/{upload_id}/complete"
                started = time.perf_counter()
                result = local.call("POST", path, "/uploads/{uploadId}/complete", body={"key": key})
                elapsed = (time.perf_counter() - started) * 1000
                assert result["size"] == UPLOAD_SIZE, result
                stubber.assert_no_pending_responses()
                if index:
                    samples.append(elapsed)
    finally:
        local.handler.app.dependency_overrides.pop(local.provider, None)
    return median(samples), local.requests_made()


def plain_client(stack: LocalStack) -> Any:
    """A boto3 S3 client as a hand-written signing endpoint would make it (SigV4, path style)."""
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the emulator's test secret
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@dataclass
class Signing:
    """Signing 1000 part URLs three ways, interleaved: API round trip, handler, boto3 loop."""

    name: str
    loop_describes: str
    api_ms: list[float] = field(default_factory=list)
    handler_ms: list[float] = field(default_factory=list)
    loop_ms: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-minute load average after each round
    response_kib: float = 0.0
    requests: str = ""


def compare_signing(
    name: str,
    loop_describes: str,
    *,
    api: Api,
    local: InProcess,
    upload: dict[str, Any],
    body: dict[str, Any],
    loop: Callable[[], list[str]],
    runs: int,
) -> Signing:
    """The same 1000 URLs signed by the API (over HTTP and in process) and by a boto3 loop, in
    rounds (API, handler, loop), so that all three see the same load; the first round warms up."""
    path = f"/uploads/{upload['uploadId']}/parts"
    result = Signing(name, loop_describes)
    for index in range(runs + 1):
        started = time.perf_counter()
        signed = api.call("POST", path, body)
        api_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        local.call("POST", path, "/uploads/{uploadId}/parts", body=body)
        handler_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        urls = loop()
        loop_ms = (time.perf_counter() - started) * 1000
        assert len(signed["parts"]) == len(urls) == BATCH
        if index:
            result.api_ms.append(api_ms)
            result.handler_ms.append(handler_ms)
            result.loop_ms.append(loop_ms)
            result.loads.append(os.getloadavg()[0])
            print(
                f"{name}: API {api_ms:.0f} ms, handler {handler_ms:.0f} ms, loop {loop_ms:.0f} ms"
                f" (load {result.loads[-1]:.1f})",
                file=sys.stderr,
            )
    result.response_kib = api.last_response_bytes / 1024
    result.requests = local.requests_made()
    return result


def crc32_of(number: int) -> str:
    """A made-up CRC32 per part (base64 of 4 bytes): signing does not read the bytes."""
    return base64.b64encode(zlib.crc32(number.to_bytes(4, "big")).to_bytes(4, "big")).decode()


def signing_comparisons(
    stack: LocalStack, api: Api, local: InProcess, upload: dict[str, Any], runs: int
) -> list[Signing]:
    client = plain_client(stack)
    plain_body = {"key": upload["key"], "partNumbers": list(range(1, BATCH + 1))}

    def plain_loop() -> list[str]:
        return [
            client.generate_presigned_url(
                "upload_part",
                Params={"Bucket": stack.bucket, "Key": upload["key"], "UploadId": upload["uploadId"], "PartNumber": n},
                ExpiresIn=900,
            )
            for n in range(1, BATCH + 1)
        ]

    plain = compare_signing(
        "no checksum",
        "`generate_presigned_url` per part (no Content-Length, no checksum)",
        api=api,
        local=local,
        upload=upload,
        body=plain_body,
        loop=plain_loop,
        runs=runs,
    )
    # The client's default: an upload started with CRC32, each part's CRC32 and length signed in.
    crc_upload = api.call("POST", "/uploads", create_body("CRC32"))
    crc_body = {
        "key": crc_upload["key"],
        "checksumAlgorithm": "CRC32",
        "parts": [{"partNumber": n, "checksum": crc32_of(n)} for n in range(1, BATCH + 1)],
    }

    def crc_loop() -> list[str]:
        return [
            client.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": stack.bucket,
                    "Key": crc_upload["key"],
                    "UploadId": crc_upload["uploadId"],
                    "PartNumber": n,
                    "ContentLength": PART_SIZE,
                    "ChecksumCRC32": crc32_of(n),
                },
                ExpiresIn=900,
            )
            for n in range(1, BATCH + 1)
        ]

    crc = compare_signing(
        "CRC32 per part",
        "`generate_presigned_url` per part with the same Content-Length and `ChecksumCRC32`",
        api=api,
        local=local,
        upload=crc_upload,
        body=crc_body,
        loop=crc_loop,
        runs=runs,
    )
    return [plain, crc]


def completion_rows(stack: LocalStack, api: Api, local: InProcess, runs: int, *, stubbed: bool) -> list[Row]:
    """A real 2-part completion over HTTP and in process; a 1280-part one in process, S3 stubbed."""
    s3 = stack.s3_client()
    size = 11 * MIB

    def real_completion(in_process: bool) -> float:
        small = api.call("POST", "/uploads", {"filename": "c.png", "contentType": "image/png", "size": size})
        parts = api.call("POST", f"/uploads/{small['uploadId']}/parts", {"key": small["key"], "partNumbers": [1, 2]})
        for part, length in zip(parts["parts"], (small["partSize"], size - small["partSize"]), strict=True):
            requests.put(part["url"], data=b"\0" * length, timeout=60).raise_for_status()
        path, body = f"/uploads/{small['uploadId']}/complete", {"key": small["key"]}
        started = time.perf_counter()
        if in_process:
            local.call("POST", path, "/uploads/{uploadId}/complete", body=body)
        else:
            api.call("POST", path, body)
        elapsed = (time.perf_counter() - started) * 1000
        s3.delete_object(Bucket=stack.bucket, Key=small["key"])
        return elapsed

    over_http = [real_completion(False) for _ in range(runs + 1)][1:]
    in_process = [real_completion(True) for _ in range(runs + 1)][1:]
    rows = [Row("complete, 2 parts (real)", local.requests_made(), median(over_http), median(in_process))]
    if stubbed:
        milliseconds, made = stubbed_completion(local, runs)
        rows.append(Row("complete, 1280 parts (S3 stubbed)", made, None, milliseconds))
    return rows


def run(runs: int, *, stubbed: bool = True) -> tuple[list[Row], list[Signing]]:
    with LocalStack(s3_port=0, api_port=0, s3_events=False, parameter_overrides=GENEROUS_LIMITS) as stack:
        api, local = Api(stack), InProcess(stack)
        s3 = stack.s3_client()
        rows: list[Row] = []

        # create (the new uploads are aborted at the end)
        create_ms, created = timed(lambda: api.call("POST", "/uploads", create_body()), runs)
        create_local_ms, _ = timed(lambda: local.call("POST", "/uploads", "/uploads", body=create_body()), runs)
        assert created["partCount"] == PARTS, created
        rows.append(Row("create (10 GiB, 1280 parts)", local.requests_made(), create_ms, create_local_ms))

        # sign parts 1-1000 (interleaved with the boto3 loops), then 1001-1280
        signings = signing_comparisons(stack, api, local, created, runs)
        first = signings[0]
        rows.append(Row(f"sign parts 1-{BATCH}", first.requests, median(first.api_ms), median(first.handler_ms)))
        path = f"/uploads/{created['uploadId']}/parts"
        rest = {"key": created["key"], "partNumbers": list(range(BATCH + 1, PARTS + 1))}
        rest_ms, signed = timed(lambda: api.call("POST", path, rest), runs)
        rest_local_ms, _ = timed(lambda: local.call("POST", path, "/uploads/{uploadId}/parts", body=rest), runs)
        assert len(signed["parts"]) == PARTS - BATCH
        rows.append(Row(f"sign parts {BATCH + 1}-{PARTS}", local.requests_made(), rest_ms, rest_local_ms))

        rows += completion_rows(stack, api, local, runs, stubbed=stubbed)

        for pending in s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=f"uploads/{USER}/").get("Uploads", []):
            s3.abort_multipart_upload(Bucket=stack.bucket, Key=pending["Key"], UploadId=pending["UploadId"])
        return rows, signings


def markdown(rows: list[Row], signings: list[Signing], runs: int, argv: list[str]) -> str:
    lines = [
        HEADING,
        "",
        "`bench/control_plane.py`: the API calls of one 10 GiB upload in 8 MiB parts (1280 parts):",
        "create, sign 1-1000, sign 1001-1280, complete; **4 API round trips** in all, next to 1280",
        "part PUTs that go straight to S3. *Round trip*: over HTTP through the local stack (gateway,",
        "JWT check, a warm worker with the real handler, MiniStack; a new connection per call, see",
        "below). *Handler*: `lambda_handler` in process with the function's template environment",
        "against the same MiniStack (S3, and DynamoDB for the registry), i.e. the function's own time",
        "plus loopback AWS calls; the requests it makes are counted on its clients. A 1280-part",
        "completion needs 10 GiB of real parts (the API refuses parts under 5 MiB), so it is timed in",
        "process with S3's answers stubbed (ListParts pages of 1000 + 280, CompleteMultipartUpload; the",
        "registry is real, each completion completes a fresh plan), and on a real 2-part upload.",
        f"Medians of {runs} calls after one warm-up call.",
        machine_line(),
        f"Command: `{command_line('bench.control_plane', argv)}`",
        "",
        "| call | AWS requests the handler makes | round trip | handler |",
        "|---|---|---|---|",
    ]
    for row in rows:
        round_trip = f"{row.round_trip_ms:.1f} ms" if row.round_trip_ms is not None else "-"
        handler = f"{row.handler_ms:.1f} ms" if row.handler_ms is not None else "-"
        lines.append(f"| {row.call} | {row.requests} | {round_trip} | {handler} |")
    total = sum(row.round_trip_ms or 0 for row in rows)
    lines += [
        "",
        f"Create, both signing calls and a completion (the 2-part one): {total:.0f} ms of round trips here.",
        "(Round trips use a new connection per call. The local gateway once held each response on a",
        "reused connection about 40 ms, Nagle's algorithm meeting the client's delayed ACK; it now",
        "sets TCP_NODELAY.)",
        "",
        "Signing 1000 part URLs: one POST /uploads/{id}/parts over HTTP, the same request to the handler",
        "in process, and a plain boto3 loop on a client made for it, in rounds (API, handler, loop) so",
        f"that all three see the same load; medians of {runs} rounds after one warm-up round. The machine",
        "is shared with other work: the 1-minute load average after each round is given.",
        "",
        "| parts | how | time for 1000 URLs | per URL | vs the loop | load avg |",
        "|---|---|---|---|---|---|",
    ]
    for signing in signings:
        loop = median(signing.loop_ms)
        load = f"{min(signing.loads):.1f}-{max(signing.loads):.1f}"
        for how, samples in (
            ("API, one POST /uploads/{id}/parts (round trip)", signing.api_ms),
            ("API handler in process", signing.handler_ms),
            (f"boto3 loop: {signing.loop_describes}", signing.loop_ms),
        ):
            value = median(samples)
            per_url = f"{value / BATCH * 1000:.0f} us"
            lines.append(f"| {signing.name} | {how} | {value:.0f} ms | {per_url} | {value / loop:.2f}x | {load} |")
    kib = ", ".join(f"{signing.response_kib:.0f} KiB ({signing.name})" for signing in signings)
    lines += [
        "",
        "The API signs a batch with botocore once per batch and its SigV4 query signer per part",
        "(layers/core/upload_core/presigned_urls.py): the first URL of a batch comes from",
        "`generate_presigned_url` and gives the endpoint, path, query parameters, region and signed",
        "headers; every other part is the same request with its own part number and headers, signed",
        "by the `S3SigV4QueryAuth` the client's request signer gives (same credentials, token and",
        "expiry). The URLs are byte for byte `generate_presigned_url`'s (tests/unit/test_presigned_urls.py",
        "at a frozen time), so S3 accepts and refuses exactly the same requests. The loop pays",
        "parameter validation, serialization, endpoint-ruleset resolution and the event hooks for",
        "every URL. Besides signing, the API checks the request, counts it against the caller's rate",
        "(one DynamoDB UpdateItem), reads the upload's plan (one GetItem: it proves the upload id is",
        "the caller's, for this key, and gives each part's length; no S3 request), and returns the",
        f"JSON ({kib} for 1000 URLs).",
        "Companion's batch route (GET /s3/multipart/{id}/batch) signs through the same service method;",
        "Uppy 6's `signRequest` asks for one part at a time, and a batch of one is",
        "`generate_presigned_url`'s URL itself.",
        "",
    ]
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-stubbed-completion", action="store_true", help="leave out the 1280-part completion on a stubbed S3"
    )
    parser.add_argument("--runs", type=int, default=10, help="repetitions of each measurement (median reported)")


def report(args: argparse.Namespace, argv: list[str]) -> str:
    rows, signings = run(args.runs, stubbed=not args.no_stubbed_completion)
    return markdown(rows, signings, args.runs, argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, HEADING, options, report, argv)


if __name__ == "__main__":
    sys.exit(main())
