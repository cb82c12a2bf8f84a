"""Fakes of what Lambda hands a handler: the context object and API Gateway HTTP API events."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


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
