"""Unit-test fixtures: settings from a fixed environment, moto's in-process S3, API Gateway events."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

UNIT_ENV = {
    "BUCKET_NAME": "unit-uploads",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "UPLOAD_PREFIX": "uploads",
    "MAX_UPLOAD_BYTES": str(100 * 1024 * 1024),
    "MAX_FORM_UPLOAD_BYTES": str(10 * 1024 * 1024),
    "ALLOWED_CONTENT_TYPES": "image/jpeg,image/png,image/gif,image/webp,image/avif",
    "URL_EXPIRY_SECONDS": "600",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "UnitTests",
    "POWERTOOLS_SERVICE_NAME": "uploads",
    "POWERTOOLS_DEV": "false",
}
# Settings are read once per process, like once per Lambda container: set them before any import.
for _name, _value in UNIT_ENV.items():
    os.environ[_name] = _value
os.environ.pop("S3_ENDPOINT_URL", None)


@pytest.fixture
def s3_client() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=UNIT_ENV["BUCKET_NAME"])
        yield client


@dataclass
class FakeContext:
    function_name: str = "UploadsFunction"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:UploadsFunction"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/UploadsFunction"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext(aws_request_id=str(uuid.uuid4()))


def http_event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    sub: str | None = "alice",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event as the JWT authorizer passes it on."""
    authorizer = {"jwt": {"claims": {"sub": sub, "iss": "https://issuer.example"}, "scopes": None}} if sub else None
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api",
        "domainName": "api.example.com",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "t"},
        "requestId": str(uuid.uuid4()),
        "routeKey": f"{method} {route or path}",
        "stage": "$default",
        "time": "25/Nov/2026:12:00:00 +0000",
        "timeEpoch": 1795000000000,
    }
    if authorizer:
        context["authorizer"] = authorizer
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return {
        "version": "2.0",
        "routeKey": context["routeKey"],
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "queryStringParameters": query,
        "pathParameters": path_params,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": False,
    }
