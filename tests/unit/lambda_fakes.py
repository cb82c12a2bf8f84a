"""Fakes of what Lambda hands a handler: the context object, API Gateway HTTP API events, and S3
notifications delivered through SQS."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode


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


def s3_record(
    key: str,
    version_id: str | None,
    bucket_name: str = "unit-uploads",
    event: str = "ObjectCreated:CompleteMultipartUpload",
) -> dict[str, Any]:
    """One record as S3 writes it: every field Powertools' S3 model requires, the key URL-encoded."""
    s3_object: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1234, "eTag": "e-1", "sequencer": "01"}
    if version_id is not None:
        s3_object["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-02T10:00:00.000Z",
        "eventName": event,
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:uploads"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "R1", "x-amz-id-2": "I2"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "ValidateUploads",
            "bucket": {
                "name": bucket_name,
                "ownerIdentity": {"principalId": "O"},
                "arn": f"arn:aws:s3:::{bucket_name}",
            },
            "object": s3_object,
        },
    }


def sqs_message(body: str) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795622712345",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795622712400",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:validation",
        "awsRegion": "us-east-1",
    }
