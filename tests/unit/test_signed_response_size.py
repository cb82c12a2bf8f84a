"""A signing response of the most part URLs one request may ask for stays well under Lambda's 6 MB.

Measured on real SigV4 presigned part URLs (botocore, no network) for the worst case the API
allows: the longest key (a long owner and a 180-byte multibyte file name, percent-encoded in the
URL), a signed SHA-256 checksum per part, and a session token longer than Lambda's usual ones,
serialised as the proxy response Lambda returns (the body is a JSON string inside JSON).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from upload_core import keys
from upload_core.presigned_urls import PartToPresign
from upload_core.s3 import S3Gateway
from upload_core.settings import MAX_SIGNED_PARTS_PER_RESPONSE, Settings

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
# "Well under": room for response headers, a longer region name, and future fields.
BUDGET = 0.6 * LAMBDA_RESPONSE_LIMIT


@pytest.mark.parametrize("token_chars", [1_100, 2_000], ids=["lambda-typical-token", "long-token"])
def test_the_largest_signing_response_is_well_under_lambdas_limit(
    monkeypatch: pytest.MonkeyPatch, token_chars: int
) -> None:
    # Given credentials with a session token, as a Lambda role has them
    monkeypatch.setenv("AWS_SESSION_TOKEN", "T" * token_chars)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    settings = Settings.from_env(
        {"BUCKET_NAME": "s3-direct-upload-prod-123456789012-ap-southeast-2", "AWS_REGION": "ap-southeast-2"}
    )
    gateway = S3Gateway(settings)
    key = keys.new_key(settings.upload_prefix, "o" * 128, "\u00e9" * 200 + ".jpeg")
    checksum = base64.b64encode(b"\x00" * 32).decode()
    # When the most part URLs one request may ask for are signed and returned
    headers = {"x-amz-checksum-sha256": checksum}
    numbers = range(10_001 - MAX_SIGNED_PARTS_PER_RESPONSE, 10_001)
    urls = gateway.presign_upload_parts(
        key, "u" * 128, [PartToPresign(number, headers) for number in numbers], expires_in=900
    )
    parts: list[dict[str, Any]] = [
        {"partNumber": number, "url": url, "headers": headers} for number, url in zip(numbers, urls, strict=True)
    ]
    body = json.dumps({"parts": parts, "expiresAt": "2026-12-02T12:00:00Z"})
    response = json.dumps({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body})
    # Then the response Lambda returns stays well under its 6 MB limit
    assert "X-Amz-Security-Token" in parts[0]["url"]
    assert len(response.encode()) < BUDGET, f"{len(response.encode()):,} bytes"
