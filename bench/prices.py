"""AWS us-east-1 list prices the cost benchmark uses, each with where and when it was read, and
the arithmetic that turns counted requests and handler time into dollars and concurrency.

No live price lookup: the figures below were read from stored copies of public pages (no
network here) on the date given; ``verify`` marks a figure no stored page confirmed, taken from
the commonly published price. Check https://aws.amazon.com/pricing/ before relying on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GIB = 1024**3
# What a Lambda function typically reads from S3 in one stream (an estimate, as README.md says).
LAMBDA_S3_BYTES_PER_SECOND = 90 * 1024 * 1024
HOURS_PER_MONTH = 730


@dataclass(frozen=True, slots=True)
class Price:
    what: str
    usd: float  # per `unit`
    unit: str
    source: str
    seen: str  # the source's own date, as it gives it
    verify: bool = False


PRICES: dict[str, Price] = {
    "lambda_gb_second": Price(
        "Lambda duration, Arm (first 7.5 billion GB-s a month)",
        0.0000133334,
        "GB-second",
        "cloudchipr.com/blog/aws-lambda-pricing",
        "2024",
    ),
    "lambda_request": Price(
        "Lambda requests",
        0.20 / 1e6,
        "request",
        "cloudchipr.com/blog/aws-lambda-pricing; aws.amazon.com/lambda/pricing",
        "2024",
    ),
    "api_request": Price(
        "API Gateway HTTP API (first 300 million a month)",
        1.00 / 1e6,
        "request",
        "awsforengineers.com/blog/aws-api-gateway-pricing-explained",
        "2025-05-19",
    ),
    "s3_tier1": Price(
        "S3 Standard PUT, COPY, POST, LIST",
        0.005 / 1000,
        "request",
        "c3x.dev/blog/s3-request-fees-explained",
        "undated",
    ),
    "s3_tier2": Price(
        "S3 Standard GET, HEAD and other", 0.0004 / 1000, "request", "c3x.dev/blog/s3-request-fees-explained", "undated"
    ),
    "s3_storage": Price(
        "S3 Standard storage (first 50 TB)", 0.023, "GB-month", "cloudburn.io/blog/amazon-s3-pricing", "2026-03-13"
    ),
    "sqs_request": Price(
        "SQS standard queue (per 64 KiB chunk)",
        0.40 / 1e6,
        "request",
        "cloudburn.io/blog/amazon-sqs-pricing",
        "2026-03-14",
    ),
    "dynamodb_wru": Price(
        "DynamoDB on-demand write request unit",
        0.625 / 1e6,
        "WRU",
        "airbyte.com/data-engineering-resources/dynamodb-pricing (AWS blog: on-demand prices cut, updated 2025-01-31)",
        "undated",
    ),
    "dynamodb_rru": Price(
        "DynamoDB on-demand read request unit",
        0.125 / 1e6,
        "RRU",
        "airbyte.com/data-engineering-resources/dynamodb-pricing",
        "undated",
    ),
    "dynamodb_storage": Price("DynamoDB Standard storage", 0.25, "GB-month", "commonly published", "-", verify=True),
    "eventbridge_event": Price(
        "EventBridge custom events (per 64 KiB)",
        1.00 / 1e6,
        "event",
        "cloudburn.io/blog/amazon-eventbridge-pricing",
        "2026-03-13",
    ),
    "ec2_t4g_small": Price(
        "EC2 t4g.small on demand (2 vCPU, 2 GiB), Linux", 0.0168, "hour", "commonly published", "-", verify=True
    ),
}


def price(name: str) -> float:
    return PRICES[name].usd


def billed_gb_seconds(durations_ms: Iterable[float], memory_mb: int) -> float:
    """Lambda bills each invocation's duration rounded up to the millisecond, times its memory."""
    return sum(math.ceil(ms) for ms in durations_ms) / 1000 * memory_mb / 1024


def cpu_share_factor(memory_mb: int) -> float:
    """How much slower CPU-bound work can run on Lambda than on one full core: Lambda gives a
    function CPU in proportion to its memory, one full vCPU at 1,769 MB."""
    return max(1.0, 1769 / memory_mb)


def aws_estimate_ms(
    handler_ms: float,
    sdk_ms: float,
    sdk_calls: float,
    memory_mb: int,
    *,
    cpu_share: bool,
    call_latency_ms: float = 10.0,
    sdk_bytes: float = 0.0,
    bytes_per_second: float = LAMBDA_S3_BYTES_PER_SECOND,
) -> float:
    """A handler's time on AWS from its time here: its own work (the handler time less the time
    the emulator took to answer its SDK calls), stretched to its CPU share if ``cpu_share``, plus
    ``call_latency_ms`` per SDK call and ``sdk_bytes`` (bodies sent and received) at
    ``bytes_per_second`` for AWS's answers."""
    own = max(0.0, handler_ms - sdk_ms)
    if cpu_share:
        own *= cpu_share_factor(memory_mb)
    return own + sdk_calls * call_latency_ms + sdk_bytes / bytes_per_second * 1000


def concurrency(calls_per_upload: float, mean_seconds: float, uploads_per_second: float) -> float:
    """Little's law: executions in flight = arrival rate x time each."""
    return calls_per_upload * mean_seconds * uploads_per_second


@dataclass(frozen=True, slots=True)
class Line:
    component: str
    quantity: float  # per upload
    unit: str
    usd_per_1000: float


@dataclass(frozen=True, slots=True)
class UploadCounts:
    """What one upload asked of AWS (averaged over the measured uploads)."""

    api_calls: float
    lambda_requests: float
    lambda_gb_seconds: float
    s3_tier1: float
    s3_tier2: float
    sqs_requests: float
    dynamodb_rru: float
    dynamodb_wru: float
    events: float


def cost_lines(counts: UploadCounts, uploads: int = 1000) -> list[Line]:
    """Per-``uploads`` dollars of each component of one upload's counts."""

    def line(component: str, quantity: float, unit: str, price_name: str) -> Line:
        return Line(component, quantity, unit, quantity * price(price_name) * uploads)

    return [
        line("API Gateway HTTP API", counts.api_calls, "requests", "api_request"),
        line("Lambda requests", counts.lambda_requests, "invocations", "lambda_request"),
        line("Lambda duration", counts.lambda_gb_seconds, "GB-s", "lambda_gb_second"),
        line("S3 PUT/COPY/POST/LIST", counts.s3_tier1, "requests", "s3_tier1"),
        line("S3 GET/HEAD/other", counts.s3_tier2, "requests", "s3_tier2"),
        line("SQS", counts.sqs_requests, "requests", "sqs_request"),
        line("DynamoDB reads", counts.dynamodb_rru, "RRU", "dynamodb_rru"),
        line("DynamoDB writes", counts.dynamodb_wru, "WRU", "dynamodb_wru"),
        line("EventBridge", counts.events, "events", "eventbridge_event"),
    ]


def storage_per_month(stored_bytes: float, uploads: int = 1000) -> float:
    """S3 Standard storage of ``uploads`` objects of ``stored_bytes`` each, for a month (AWS bills
    storage in binary gigabytes, 2^30 bytes)."""
    return stored_bytes * uploads / GIB * price("s3_storage")


def server_per_month(instances: int = 1, name: str = "ec2_t4g_small") -> float:
    return instances * price(name) * HOURS_PER_MONTH


def total(lines: Iterable[Line]) -> float:
    return sum(item.usd_per_1000 for item in lines)


def per_upload(totals: Mapping[str, float], uploads: int) -> dict[str, float]:
    """Each total divided by the number of uploads it was summed over."""
    if uploads <= 0:
        raise ValueError("uploads must be positive")
    return {name: value / uploads for name, value in totals.items()}
