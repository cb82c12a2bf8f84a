"""Control plane: what a 10 GiB upload costs the API, and signing 1000 part URLs at once.

A 10 GiB file in 8 MiB parts (the API's default part size) is 1280 parts. The API needs four
calls for it whatever the network: create, sign parts 1-1000, sign 1001-1280, complete. This
measures each call two ways:

- round trip: over real HTTP through the local stack (gateway, JWT check, a warm worker running
  the real handler, MiniStack as S3), as a client sees it on this machine;
- handler time: `uploads_handler.lambda_handler` called in this process with the function's
  environment from template.yaml, talking to the same MiniStack: what Lambda would bill,
  minus S3's latency on AWS.

Completing needs the parts to exist in S3 and the API refuses parts under 5 MiB, so a real
1280-part completion would mean storing 10 GiB. Instead the completion is measured (a) over
HTTP on a real 3-part upload, and (b) in process for 1280 parts with S3's answers stubbed
(botocore's Stubber: ListParts in two pages of 1000 and 280, then CompleteMultipartUpload), so
the handler's own work for 1280 parts (listing, checking sizes, building the request) is timed
and only S3's processing is left out.

Signing: one POST /uploads/{id}/parts for 1000 part numbers, against a plain loop of 1000
`generate_presigned_url("upload_part", ...)` calls on a boto3 client (what a hand-written
signing endpoint would do, with no ownership check and no validation).

    .venv/bin/python -m bench.control_plane               # 10 repetitions of each measurement
    .venv/bin/python -m bench.control_plane --runs 20 --write
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
    s3_calls: str
    round_trip_ms: float | None
    handler_ms: float


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
        self.context = FakeContext()

    def call(self, method: str, path: str, route: str, **kwargs: Any) -> dict[str, Any]:
        params = {"uploadId": path.split("/")[2]} if "{uploadId}" in route else None
        event = http_event(method, path, route=route, path_params=params, sub=USER, **kwargs)
        response: dict[str, Any] = self.handler.lambda_handler(event, self.context)
        assert int(response["statusCode"]) < 300, response
        return json.loads(response["body"]) if response.get("body") else {}


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


def create_body() -> dict[str, Any]:
    return {"filename": "big.png", "contentType": "image/png", "size": UPLOAD_SIZE, "partSize": PART_SIZE}


def stubbed_completion(local: InProcess, runs: int) -> float:
    """Handler time of completing a 1280-part upload, S3's answers stubbed."""
    gateway = importlib.import_module("upload_core.s3")
    service_module = importlib.import_module("upload_core.uploads")
    settings = importlib.import_module("upload_core.settings").get_settings()
    S3Gateway, UploadService = gateway.S3Gateway, service_module.UploadService
    build_s3_client = gateway.build_s3_client
    key = f"uploads/{USER}/{uuid.uuid4().hex}/big.png"
    upload_id = "stubbed-upload"
    client = build_s3_client(settings)
    stubber = Stubber(client)
    now = datetime.datetime.now(datetime.UTC)

    def page(first: int, last: int, truncated: bool) -> dict[str, Any]:
        parts = [
            {"PartNumber": n, "ETag": f'"{n:032x}"', "Size": PART_SIZE, "LastModified": now}
            for n in range(first, last + 1)
        ]
        answer: dict[str, Any] = {"Bucket": settings.bucket_name, "Key": key, "UploadId": upload_id, "Parts": parts}
        answer["IsTruncated"] = truncated
        if truncated:
            answer["NextPartNumberMarker"] = last
        return answer

    def queue() -> None:
        stubber.add_response("list_parts", page(1, BATCH, True))
        stubber.add_response("list_parts", page(BATCH + 1, PARTS, False))
        stubber.add_response(
            "complete_multipart_upload",
            {"Bucket": settings.bucket_name, "Key": key, "ETag": f'"{"0" * 32}-{PARTS}"', "Location": "x"},
        )

    original = local.handler.service
    local.handler.service = lambda: UploadService(settings, S3Gateway(settings, client=client))
    try:
        with stubber:

            def complete() -> dict[str, Any]:
                queue()
                return local.call(
                    "POST", f"/uploads/{upload_id}/complete", "/uploads/{uploadId}/complete", body={"key": key}
                )

            milliseconds, result = timed(complete, runs)
        assert result["size"] == UPLOAD_SIZE, result
        return milliseconds
    finally:
        local.handler.service = original


def signing_loop(stack: LocalStack, upload: dict[str, Any], runs: int) -> float:
    """1000 generate_presigned_url calls on a plain boto3 client (SigV4, like the API's)."""
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the emulator's test secret
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )

    def sign_all() -> list[str]:
        return [
            client.generate_presigned_url(
                "upload_part",
                Params={"Bucket": stack.bucket, "Key": upload["key"], "UploadId": upload["uploadId"], "PartNumber": n},
                ExpiresIn=900,
            )
            for n in range(1, BATCH + 1)
        ]

    milliseconds, urls = timed(sign_all, runs)
    assert len(urls) == BATCH
    return milliseconds


@dataclass
class Signing:
    api_ms: float
    handler_ms: float
    loop_ms: float
    response_kib: float


def run(runs: int, *, stubbed: bool = True) -> tuple[list[Row], Signing]:
    with LocalStack(s3_port=0, api_port=0, s3_events=False, parameter_overrides=GENEROUS_LIMITS) as stack:
        api, local = Api(stack), InProcess(stack)
        s3 = stack.s3_client()
        rows: list[Row] = []

        # create: one CreateMultipartUpload (the new uploads are aborted at the end)
        create_ms, created = timed(lambda: api.call("POST", "/uploads", create_body()), runs)
        create_local_ms, _ = timed(lambda: local.call("POST", "/uploads", "/uploads", body=create_body()), runs)
        assert created["partCount"] == PARTS, created
        rows.append(Row("create (10 GiB, 1280 parts)", "1 CreateMultipartUpload", create_ms, create_local_ms))

        # sign in batches of up to 1000: each is one ListParts (MaxParts=1) + local signing
        upload = created
        path = f"/uploads/{upload['uploadId']}/parts"
        for first, last in ((1, BATCH), (BATCH + 1, PARTS)):
            body = {"key": upload["key"], "partNumbers": list(range(first, last + 1))}
            sign_ms, signed = timed(lambda body=body: api.call("POST", path, body), runs)  # type: ignore[misc]
            sign_local_ms, _ = timed(
                lambda body=body: local.call("POST", path, "/uploads/{uploadId}/parts", body=body),  # type: ignore[misc]
                runs,
            )
            assert len(signed["parts"]) == last - first + 1
            if last == BATCH:
                response_kib = api.last_response_bytes / 1024
            rows.append(Row(f"sign parts {first}-{last}", "1 ListParts", sign_ms, sign_local_ms))

        # complete: over HTTP on a real 3-part upload (5 + 5 + 1 MiB), in process for 1280 stubbed parts
        def real_completion() -> dict[str, Any]:
            small = api.call("POST", "/uploads", {"filename": "c.png", "contentType": "image/png", "size": 11 * MIB})
            parts = api.call(
                "POST", f"/uploads/{small['uploadId']}/parts", {"key": small["key"], "partNumbers": [1, 2]}
            )["parts"]
            for part, size in zip(parts, (small["partSize"], 11 * MIB - small["partSize"]), strict=True):
                requests.put(part["url"], data=b"\0" * size, timeout=60).raise_for_status()
            started = time.perf_counter()
            api.call("POST", f"/uploads/{small['uploadId']}/complete", {"key": small["key"]})
            elapsed = (time.perf_counter() - started) * 1000
            s3.delete_object(Bucket=stack.bucket, Key=small["key"])
            return {"ms": elapsed}

        samples = [real_completion()["ms"] for _ in range(runs + 1)][1:]
        rows.append(
            Row("complete, 2 parts (real, HTTP)", "1 ListParts + 1 CompleteMultipartUpload", median(samples), 0.0)
        )
        if stubbed:
            rows.append(
                Row(
                    "complete, 1280 parts (S3 stubbed)",
                    "2 ListParts pages + 1 CompleteMultipartUpload",
                    None,
                    stubbed_completion(local, runs),
                )
            )

        # signing 1000 URLs: the API's one request against a plain boto3 loop
        api_1000 = next(row for row in rows if row.call == f"sign parts 1-{BATCH}")
        loop_ms = signing_loop(stack, upload, runs)

        for pending in s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=f"uploads/{USER}/").get("Uploads", []):
            s3.abort_multipart_upload(Bucket=stack.bucket, Key=pending["Key"], UploadId=pending["UploadId"])
        assert api_1000.round_trip_ms is not None
        return rows, Signing(api_1000.round_trip_ms, api_1000.handler_ms, loop_ms, response_kib)


def markdown(rows: list[Row], signing: Signing, runs: int, argv: list[str]) -> str:
    api_ms, handler_ms, loop_ms = signing.api_ms, signing.handler_ms, signing.loop_ms
    lines = [
        HEADING,
        "",
        "`bench/control_plane.py`: the API calls of one 10 GiB upload in 8 MiB parts (1280 parts):",
        "create, sign 1-1000, sign 1001-1280, complete; **4 API round trips** in all, next to 1280",
        "part PUTs that go straight to S3. *Round trip*: over HTTP through the local stack (gateway,",
        "JWT check, a warm worker with the real handler, MiniStack; a new connection per call, see",
        "below). *Handler*: `lambda_handler` in process with the function's template environment",
        "against the same MiniStack, i.e. the",
        "function's own time plus loopback S3 calls. A 1280-part completion needs 10 GiB of real",
        "parts (the API refuses parts under 5 MiB), so it is timed in process with S3's answers",
        "stubbed (ListParts pages of 1000 + 280, CompleteMultipartUpload), and over HTTP on a real",
        f"2-part upload. Medians of {runs} calls after one warm-up call.",
        machine_line(),
        f"Command: `{command_line('bench.control_plane', argv)}`",
        "",
        "| call | S3 requests it makes | round trip | handler |",
        "|---|---|---|---|",
    ]
    for row in rows:
        round_trip = f"{row.round_trip_ms:.1f} ms" if row.round_trip_ms is not None else "-"
        handler = f"{row.handler_ms:.1f} ms" if row.handler_ms else "-"
        lines.append(f"| {row.call} | {row.s3_calls} | {round_trip} | {handler} |")
    total = sum(row.round_trip_ms or 0 for row in rows if "stubbed" not in row.call)
    lines += [
        "",
        f"Create, both signing calls and a completion (the 2-part one): {total:.0f} ms of round trips here.",
        "(Round trips use a new connection per call. The local gateway once held each response on a",
        "reused connection about 40 ms, Nagle's algorithm meeting the client's delayed ACK; it now",
        "sets TCP_NODELAY.)",
        "",
        "Signing 1000 part URLs:",
        "",
        "| how | time for 1000 URLs | per URL |",
        "|---|---|---|",
        f"| API, one POST /uploads/{{id}}/parts (round trip) | {api_ms:.0f} ms | {api_ms / BATCH * 1000:.0f} us |",
        f"| API handler in process | {handler_ms:.0f} ms | {handler_ms / BATCH * 1000:.0f} us |",
        f"| plain boto3 `generate_presigned_url` loop | {loop_ms:.0f} ms | {loop_ms / BATCH * 1000:.0f} us |",
        "",
        "Presigning is local computation (HMAC-SHA256), the same boto3 call either way; the API adds",
        "request validation, the ownership check, one ListParts that proves the upload id belongs to",
        f"the key, and the JSON response ({signing.response_kib:.0f} KiB for 1000 URLs).",
        "",
    ]
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    # The stubbed completion swaps the handler's service for one on a stubbed S3 client; the
    # handler now gets its service by dependency injection with a registry, which that swap does
    # not reach yet, so it can be left out.
    parser.add_argument(
        "--no-stubbed-completion", action="store_true", help="leave out the 1280-part completion on a stubbed S3"
    )
    parser.add_argument("--runs", type=int, default=10, help="repetitions of each measurement (median reported)")


def report(args: argparse.Namespace, argv: list[str]) -> str:
    rows, signing = run(args.runs, stubbed=not args.no_stubbed_completion)
    return markdown(rows, signing, args.runs, argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, HEADING, options, report, argv)


if __name__ == "__main__":
    sys.exit(main())
