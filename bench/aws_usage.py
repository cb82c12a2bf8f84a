"""What a run of the local stack asked of AWS: requests by service and type, and Lambda time.

Two recorders, both opt-in (bench/cost.py and bench/load.py turn them on):

- the emulator's request log (``LocalStack(request_log=...)``, written inside MiniStack by
  local/ministack_compat.py): one JSON line per request with the caller (a function's logical id
  from its SDK User-Agent, ``python-requests`` for the client's presigned S3 requests, ``Boto3``
  for this harness and the local event pollers);
- ``Invocations``, an observer of ``Functions.invoke``: each invocation's function, API route,
  handler duration (measured in the worker around the handler, as Lambda's billed Duration) and
  SQS batch size.

This module classifies and sums them; bench/prices.py prices the sums.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# S3 bills PUT, COPY, POST and LIST at one rate, GET, HEAD and every other request at a lower
# one; DELETE and CANCEL (abort) are free.
S3_TIER1 = frozenset(
    {
        "PutObject",
        "CopyObject",
        "PostObject",
        "UploadPart",
        "UploadPartCopy",
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
        "PutObjectTagging",
        "ListParts",
        "ListMultipartUploads",
        "ListObjects",
        "ListObjectVersions",
        "PutBucketConfiguration",
    }
)
S3_FREE = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload", "DeleteObjectTagging"})
DYNAMODB_KIB = 1024
DYNAMODB_READ_BLOCK = 4096
# Callers that are local scaffolding, not the application: this harness and the event pollers.
LOCAL_AGENTS = frozenset({"Boto3", "Botocore", ""})
CLIENT_AGENT = "python-requests"


@dataclass(frozen=True, slots=True)
class Request:
    """One request the emulator served."""

    service: str
    method: str
    path: str
    query: tuple[str, ...]
    agent: str
    status: int
    bytes_in: int
    bytes_out: int
    target: str = ""
    copy_source: bool = False
    body: str = ""
    ms: float = 0.0  # from the request's arrival to the end of the emulator's answer

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Request:
        headers = record.get("headers") or {}
        service = str(record.get("service") or "")
        if not service and record.get("method") == "POST" and "multipart/form-data" in headers.get("content-type", ""):
            service = "s3"  # a browser form POST carries its signature in the form, not a header
        return cls(
            service=service,
            method=str(record.get("method", "")),
            path=str(record.get("path", "")),
            query=tuple(record.get("query") or ()),
            agent=str(record.get("agent", "")),
            status=int(record.get("status") or 0),
            bytes_in=int(record.get("bytesIn") or 0),
            bytes_out=int(record.get("bytesOut") or 0),
            target=str(headers.get("x-amz-target", "")),
            copy_source="x-amz-copy-source" in headers,
            body=str(record.get("body") or ""),
            ms=float(record.get("ms") or 0.0),
        )


class RequestLog:
    """Reads the emulator's request log from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def mark(self) -> None:
        """Forget what is logged so far: the next ``read`` starts here."""
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def read(self) -> list[Request]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as source:
            source.seek(self._offset)
            data = source.read()
        complete = data.rfind(b"\n") + 1  # a line being written is read next time
        self._offset += complete
        return [Request.from_record(json.loads(line)) for line in data[:complete].splitlines() if line.strip()]


def s3_operation(request: Request) -> str:
    """The S3 API operation of a path-style request (bucket first in the path)."""
    query = set(request.query)
    object_request = "/" in request.path.strip("/")
    method = request.method
    if method == "PUT":
        if not object_request:
            return "PutBucketConfiguration"
        if "tagging" in query:
            return "PutObjectTagging"
        if "partNumber" in query and "uploadId" in query:
            return "UploadPartCopy" if request.copy_source else "UploadPart"
        return "CopyObject" if request.copy_source else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "delete" in query:
            return "DeleteObjects"
        return "PostObject" if not object_request else "PostObjectOther"
    if method == "GET":
        if object_request:
            if "uploadId" in query:
                return "ListParts"
            if "tagging" in query:
                return "GetObjectTagging"
            return "GetObject"
        if "uploads" in query:
            return "ListMultipartUploads"
        if "versions" in query:
            return "ListObjectVersions"
        if not query or "list-type" in query or "prefix" in query:
            return "ListObjects"
        return "GetBucketConfiguration"
    if method == "HEAD":
        return "HeadObject" if object_request else "HeadBucket"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        if "tagging" in query:
            return "DeleteObjectTagging"
        return "DeleteObject"
    return f"{method}Other"


def s3_tier(operation: str) -> str:
    """ "tier1" (PUT, COPY, POST, LIST), "tier2" (GET, HEAD and the rest) or "free"."""
    if operation in S3_FREE:
        return "free"
    return "tier1" if operation in S3_TIER1 else "tier2"


@dataclass(frozen=True, slots=True)
class DynamoUnits:
    read: float = 0.0
    write: float = 0.0


def _blocks(size: int, block: int) -> int:
    return max(1, math.ceil(size / block))


def _transaction_items(request: Request) -> list[int]:
    """The size (request JSON bytes) of each item of a transaction."""
    try:
        items = json.loads(request.body)["TransactItems"]
        return [len(json.dumps(item)) for item in items]
    except (ValueError, KeyError, TypeError):  # body cut at 16 KiB: spread the size evenly
        count = max(1, request.body.count('"TableName"'))
        return [request.bytes_in // count] * count


def dynamodb_units(request: Request) -> DynamoUnits:
    """On-demand request units of one DynamoDB request.

    DynamoDB bills a write 1 WRU per KiB of the item (2 in a transaction) and a read 1 RRU per
    4 KiB read if strongly consistent (half if not, 2 in a transaction). The emulator does not
    report consumed capacity, so sizes are bounded from the wire: a write's request JSON (which
    is larger than the item it writes), a read's response JSON. Control-plane calls are free.
    """
    operation = request.target.rsplit(".", 1)[-1]
    consistent = 1.0 if '"ConsistentRead": true' in request.body or '"ConsistentRead":true' in request.body else 0.5
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return DynamoUnits(write=_blocks(request.bytes_in, DYNAMODB_KIB))
    if operation == "TransactWriteItems":
        return DynamoUnits(write=sum(2 * _blocks(size, DYNAMODB_KIB) for size in _transaction_items(request)))
    if operation == "BatchWriteItem":
        return DynamoUnits(write=_blocks(request.bytes_in, DYNAMODB_KIB))
    if operation in ("GetItem", "Query", "Scan", "BatchGetItem"):
        return DynamoUnits(read=consistent * _blocks(request.bytes_out, DYNAMODB_READ_BLOCK))
    if operation == "TransactGetItems":
        return DynamoUnits(read=sum(2 * _blocks(size, DYNAMODB_READ_BLOCK) for size in _transaction_items(request)))
    return DynamoUnits()


def put_events_entries(request: Request) -> int:
    """EventBridge bills each PutEvents entry per 64 KiB; the verdicts are far smaller."""
    try:
        return len(json.loads(request.body)["Entries"])
    except (ValueError, KeyError, TypeError):
        return max(1, request.body.count('"DetailType"'))


@dataclass
class Usage:
    """Billable requests of some uploads, summed."""

    s3: Counter[str] = field(default_factory=Counter)  # operation -> requests
    s3_by_caller: Counter[tuple[str, str]] = field(default_factory=Counter)  # (caller, operation)
    s3_unanswered: Counter[str] = field(default_factory=Counter)  # 5xx, or dropped by the caller (a retry follows)
    other_by_caller: Counter[str] = field(default_factory=Counter)  # DynamoDB, SQS, EventBridge calls
    ms_by_caller: dict[str, float] = field(default_factory=dict)  # time the emulator took to answer them
    bytes_by_caller: Counter[str] = field(default_factory=Counter)  # request and response bodies
    dynamodb: Counter[str] = field(default_factory=Counter)  # operation -> requests
    read_units: float = 0.0
    write_units: float = 0.0
    dynamodb_write_bytes: int = 0
    events: int = 0  # EventBridge entries put
    ignored: int = 0  # requests of the local scaffolding (pollers, this harness)

    def s3_tiers(self) -> Counter[str]:
        tiers: Counter[str] = Counter()
        for operation, count in self.s3.items():
            tiers[s3_tier(operation)] += count
        return tiers


def tally(requests: Iterable[Request]) -> Usage:
    """Sums what the application asked for (the functions and the client), not the scaffolding."""
    usage = Usage()
    for request in requests:
        if request.agent in LOCAL_AGENTS:
            usage.ignored += 1
            continue
        usage.ms_by_caller[request.agent] = usage.ms_by_caller.get(request.agent, 0.0) + request.ms
        usage.bytes_by_caller[request.agent] += request.bytes_in + request.bytes_out
        if request.service == "s3":
            operation = s3_operation(request)
            usage.s3[operation] += 1
            usage.s3_by_caller[(request.agent, operation)] += 1
            if request.status == 0 or request.status >= 500:
                usage.s3_unanswered[operation] += 1
            continue
        usage.other_by_caller[request.agent] += 1
        if request.service == "dynamodb":
            operation = request.target.rsplit(".", 1)[-1]
            usage.dynamodb[operation] += 1
            units = dynamodb_units(request)
            usage.read_units += units.read
            usage.write_units += units.write
            if units.write:
                usage.dynamodb_write_bytes += request.bytes_in
        elif request.service == "events" and request.target.endswith("PutEvents"):
            usage.events += put_events_entries(request)
    return usage


@dataclass(frozen=True, slots=True)
class Call:
    """One invocation: which function, which API route (None if not an API call), how long."""

    function: str
    route: str | None
    duration_ms: float
    ok: bool
    sqs_records: int = 0


class Invocations:
    """An observer for ``Functions.observer``: records every invocation (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def __call__(self, function: str, event: Any, invocation: Any) -> None:
        route = event.get("routeKey") if isinstance(event, dict) else None
        records = event.get("Records") if isinstance(event, dict) else None
        sqs = sum(1 for record in records or () if isinstance(record, dict) and record.get("eventSource") == "aws:sqs")
        call = Call(function, route, float(invocation.duration_ms or 0.0), bool(invocation.ok), sqs)
        with self._lock:
            self.calls.append(call)

    def since(self, index: int) -> list[Call]:
        with self._lock:
            return list(self.calls[index:])

    def mark(self) -> int:
        with self._lock:
            return len(self.calls)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.5 = median, 0.99 = p99) of a non-empty list."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
