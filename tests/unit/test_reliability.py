"""Unit tests of the fault-tolerance details the reliability suite (tests/integration) relies on."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from lambda_fakes import FakeContext, http_event

import uploads_handler


@pytest.mark.parametrize("path", ["/uploads", "/uploads/form"])
def test_a_body_that_is_not_utf8_is_a_400_not_a_500(s3_client: Any, lambda_context: FakeContext, path: str) -> None:
    # Given a body API Gateway had to base64-encode because it is not UTF-8
    event = http_event("POST", path, raw_body="x")
    event["body"] = base64.b64encode(b"\xfc+\xe8").decode()
    event["isBase64Encoded"] = True
    # When the route validates it
    response = uploads_handler.lambda_handler(event, lambda_context)
    # Then the caller gets a clean 400
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {
        "code": "InvalidRequest",
        "message": "the request body is not valid UTF-8 JSON",
    }
