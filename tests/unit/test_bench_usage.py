"""The counting and pricing arithmetic of bench/cost.py and bench/load.py: how a logged request
is classified and billed, and how handler time becomes GB-seconds, dollars and concurrency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import prices
from bench.aws_usage import (
    Invocations,
    Request,
    RequestLog,
    dynamodb_units,
    percentile,
    s3_operation,
    s3_tier,
    tally,
)

BUCKET = "/bucket"
OBJECT = "/bucket/uploads/u/1/a.png"


def s3(method: str, path: str = OBJECT, *query: str, agent: str = "UploadsFunction", copy: bool = False) -> Request:
    return Request("s3", method, path, tuple(query), agent, 200, 0, 0, copy_source=copy)


def dynamo(operation: str, body: Any = None, bytes_in: int = 100, bytes_out: int = 100) -> Request:
    text = json.dumps(body) if body is not None else ""
    return Request(
        "dynamodb",
        "POST",
        "/",
        (),
        "UploadsFunction",
        200,
        bytes_in,
        bytes_out,
        f"DynamoDB_20120810.{operation}",
        body=text,
    )


@pytest.mark.parametrize(
    ("request_", "operation", "tier"),
    [
        (s3("PUT", OBJECT, "partNumber", "uploadId", "X-Amz-Signature"), "UploadPart", "tier1"),
        (s3("PUT", OBJECT, "partNumber", "uploadId", copy=True), "UploadPartCopy", "tier1"),
        (s3("PUT", OBJECT, "tagging", "versionId"), "PutObjectTagging", "tier1"),
        (s3("PUT", OBJECT, copy=True), "CopyObject", "tier1"),
        (s3("PUT", OBJECT), "PutObject", "tier1"),
        (s3("POST", OBJECT, "uploads"), "CreateMultipartUpload", "tier1"),
        (s3("POST", OBJECT, "uploadId"), "CompleteMultipartUpload", "tier1"),
        (s3("POST", BUCKET), "PostObject", "tier1"),
        (s3("POST", BUCKET, "delete"), "DeleteObjects", "free"),
        (s3("GET", OBJECT, "uploadId", "max-parts"), "ListParts", "tier1"),
        (s3("GET", BUCKET, "list-type", "prefix"), "ListObjects", "tier1"),
        (s3("GET", BUCKET, "versions"), "ListObjectVersions", "tier1"),
        (s3("GET", OBJECT, "tagging", "versionId"), "GetObjectTagging", "tier2"),
        (s3("GET", OBJECT, "versionId"), "GetObject", "tier2"),
        (s3("HEAD", OBJECT, "versionId"), "HeadObject", "tier2"),
        (s3("DELETE", OBJECT, "uploadId"), "AbortMultipartUpload", "free"),
        (s3("DELETE", OBJECT, "versionId"), "DeleteObject", "free"),
    ],
)
def test_each_s3_request_is_named_and_priced_by_its_tier(request_: Request, operation: str, tier: str) -> None:
    assert s3_operation(request_) == operation
    assert s3_tier(operation) == tier


def test_dynamodb_writes_cost_one_unit_per_kib_and_two_per_transaction_item() -> None:
    assert dynamodb_units(dynamo("PutItem", bytes_in=900)).write == 1
    assert dynamodb_units(dynamo("UpdateItem", bytes_in=2500)).write == 3
    transaction = {"TransactItems": [{"Put": {"Item": {"pk": {"S": "a"}}}}, {"Update": {"Key": {"pk": {"S": "b"}}}}]}
    assert dynamodb_units(dynamo("TransactWriteItems", transaction)).write == 4
    assert dynamodb_units(dynamo("PutItem")).read == 0


def test_dynamodb_reads_cost_half_a_unit_unless_strongly_consistent() -> None:
    assert dynamodb_units(dynamo("GetItem", {"ConsistentRead": True}, bytes_out=300)).read == 1
    assert dynamodb_units(dynamo("GetItem", {"Key": {}}, bytes_out=300)).read == 0.5
    assert dynamodb_units(dynamo("Query", {"ConsistentRead": True}, bytes_out=9000)).read == 3
    assert dynamodb_units(dynamo("DescribeTable")) == dynamodb_units(dynamo("UpdateTimeToLive"))
    assert dynamodb_units(dynamo("DescribeTable")).read == 0


def test_tally_counts_the_application_and_leaves_out_the_local_scaffolding() -> None:
    events = Request(
        "events",
        "POST",
        "/",
        (),
        "ValidatorFunction",
        200,
        300,
        50,
        "AWSEvents.PutEvents",
        body=json.dumps({"Entries": [{"DetailType": "Upload Validated"}, {"DetailType": "Upload Rejected"}]}),
        ms=4.0,
    )
    poll = Request("sqs", "POST", "/", (), "Boto3", 200, 100, 10, "AmazonSQS.ReceiveMessage", ms=1000.0)
    harness = s3("GET", BUCKET, "versions", agent="Boto3")
    part = s3("PUT", OBJECT, "partNumber", "uploadId", agent="python-requests")
    usage = tally([events, poll, harness, part, dynamo("PutItem", bytes_in=1500), s3("HEAD", OBJECT)])
    assert usage.ignored == 2
    assert usage.events == 2
    assert usage.s3 == {"UploadPart": 1, "HeadObject": 1}
    assert usage.s3_tiers() == {"tier1": 1, "tier2": 1}
    assert usage.s3_by_caller[("python-requests", "UploadPart")] == 1
    assert not usage.s3_unanswered
    dropped = Request("s3", "POST", OBJECT, ("uploadId",), "UploadsFunction", 0, 200, 0)
    assert tally([dropped, s3("POST", OBJECT, "uploadId")]).s3_unanswered == {"CompleteMultipartUpload": 1}
    assert usage.write_units == 2 and usage.dynamodb_write_bytes == 1500
    assert usage.other_by_caller == {"ValidatorFunction": 1, "UploadsFunction": 1}
    assert usage.ms_by_caller["ValidatorFunction"] == 4.0
    assert "Boto3" not in usage.ms_by_caller
    assert usage.bytes_by_caller["ValidatorFunction"] == 350 and usage.bytes_by_caller["UploadsFunction"] == 1600


def test_the_request_log_is_read_from_the_mark_and_a_half_written_line_waits(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    line = {"method": "HEAD", "path": OBJECT, "query": ["versionId"], "service": "s3", "agent": "ValidatorFunction"}
    path.write_text(json.dumps(line) + "\n")
    log = RequestLog(path)
    log.mark()
    assert log.read() == []
    with path.open("a") as out:
        out.write(json.dumps({**line, "method": "GET", "ms": 2.5}) + "\n" + '{"method": "PU')
    (request,) = log.read()
    assert (request.method, request.ms, s3_operation(request)) == ("GET", 2.5, "GetObject")
    with path.open("a") as out:
        out.write('T", "path": "/bucket/k", "service": "s3", "agent": "python-requests"}\n')
    (request,) = log.read()
    assert s3_operation(request) == "PutObject" and request.agent == "python-requests"


class _Outcome:
    def __init__(self, duration_ms: float | None) -> None:
        self.duration_ms = duration_ms
        self.ok = True


def test_invocations_keep_the_route_the_duration_and_sqs_batch_sizes() -> None:
    observer = Invocations()
    observer("UploadsFunction", {"routeKey": "POST /uploads"}, _Outcome(12.5))
    mark = observer.mark()
    batch = {"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:sqs"}]}
    observer("ValidatorFunction", batch, _Outcome(None))
    (call,) = observer.since(mark)
    assert (call.function, call.route, call.duration_ms, call.sqs_records) == ("ValidatorFunction", None, 0.0, 2)
    assert observer.calls[0].route == "POST /uploads"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(value) for value in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_lambda_bills_each_invocation_rounded_up_to_the_millisecond_times_memory() -> None:
    # 10.2 ms -> 11 ms, 0.1 ms -> 1 ms: 12 ms at 512 MB = 0.006 GB-s
    assert prices.billed_gb_seconds([10.2, 0.1], 512) == pytest.approx(0.006)
    assert prices.billed_gb_seconds([], 1769) == 0


def test_an_aws_estimate_swaps_the_emulators_time_for_network_latency_and_can_stretch_the_rest() -> None:
    # 30 ms handler, 20 ms of it the emulator answering 4 calls: 10 ms own work
    assert prices.aws_estimate_ms(30, 20, 4, 256, cpu_share=False, call_latency_ms=10) == pytest.approx(50)
    assert prices.aws_estimate_ms(30, 20, 4, 256, cpu_share=True, call_latency_ms=10) == pytest.approx(
        10 * 1769 / 256 + 40
    )
    assert prices.aws_estimate_ms(30, 20, 4, 1769, cpu_share=True, call_latency_ms=10) == pytest.approx(50)
    assert prices.aws_estimate_ms(10, 25, 1, 3008, cpu_share=True, call_latency_ms=10) == pytest.approx(10)
    # a 90 MiB body at 90 MiB/s is one more second
    assert prices.aws_estimate_ms(
        30, 20, 4, 1769, cpu_share=False, call_latency_ms=10, sdk_bytes=90 * 2**20, bytes_per_second=90 * 2**20
    ) == pytest.approx(1050)


def test_concurrency_is_rate_times_time_in_flight() -> None:
    assert prices.concurrency(3, 0.05, 100) == pytest.approx(15)
    assert prices.cpu_share_factor(3008) == 1.0


def test_cost_lines_price_one_uploads_counts_per_thousand_uploads() -> None:
    counts = prices.UploadCounts(
        api_calls=3,
        lambda_requests=4,
        lambda_gb_seconds=0.5,
        s3_tier1=6,
        s3_tier2=3,
        sqs_requests=3,
        dynamodb_rru=6,
        dynamodb_wru=15,
        events=1,
    )
    lines = {line.component: line.usd_per_1000 for line in prices.cost_lines(counts)}
    assert lines["API Gateway HTTP API"] == pytest.approx(0.003)
    assert lines["S3 PUT/COPY/POST/LIST"] == pytest.approx(0.03)
    assert lines["Lambda duration"] == pytest.approx(0.5 * 1000 * prices.price("lambda_gb_second"))
    assert lines["DynamoDB writes"] == pytest.approx(15 * 1000 * 0.625 / 1e6)
    assert prices.total(prices.cost_lines(counts)) == pytest.approx(sum(lines.values()))


def test_storage_and_the_reference_server_are_monthly() -> None:
    assert prices.storage_per_month(prices.GIB, uploads=1000) == pytest.approx(1000 * 0.023)
    assert prices.server_per_month(2) == pytest.approx(2 * 0.0168 * 730)
    assert all(price.source and price.seen for price in prices.PRICES.values())
