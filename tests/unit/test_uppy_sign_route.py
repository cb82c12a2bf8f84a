"""POST /s3/sign in process: Uppy 6's request in, Uppy 6's PresignedResponse out, clean JSON errors (moto)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lambda_fakes import FakeContext, http_event

import uploads_handler
from service_factory import uppy_signer
from upload_core.s3 import S3Gateway
from upload_core.uploads import UploadService
from upload_core.uppy_signing import UppySigner

Sign = Callable[..., tuple[int, Any]]
MIB = 1024 * 1024


@pytest.fixture
def sign(s3_client: Any, lambda_context: FakeContext) -> Iterator[Sign]:
    service = UploadService(uploads_handler.settings, S3Gateway(uploads_handler.settings, client=s3_client))
    uploads_handler.app.dependency_overrides[uppy_signer] = lambda: UppySigner(service)

    def call(body: Any = None, *, sub: str | None = "alice", raw_body: str | None = None) -> tuple[int, Any]:
        event = http_event("POST", "/s3/sign", body=body, raw_body=raw_body, sub=sub)
        response = uploads_handler.lambda_handler(event, lambda_context)
        text = response.get("body") or ""
        return int(response["statusCode"]), json.loads(text) if text else None

    yield call
    uploads_handler.app.dependency_overrides.clear()


def test_a_whole_file_is_answered_with_a_presigned_put(sign: Sign) -> None:
    # When Uppy's PutObject request is signed with the file's size, name and type
    status, body = sign({"method": "PUT", "key": "u-a.png", "contentType": "image/png", "size": 10, "name": "a.png"})
    # Then the body is a PresignedResponse for a PUT (no nulls Uppy would trip over, no fields)
    assert status == 200, body
    assert set(body) == {"url", "method", "key", "headers"}
    assert body["method"] == "PUT" and body["headers"] == {"Content-Type": "image/png"}


def test_the_multipart_flow_signs_create_part_list_complete_and_abort(sign: Sign, s3_client: Any) -> None:
    status, created = sign({"method": "POST", "key": "u-b.png", "size": 6 * MIB, "name": "b.png", "type": "image/png"})
    assert status == 200, created
    assert set(created) == {"url", "method", "key", "headers"}
    key = created["key"]
    upload_id = s3_client.create_multipart_upload(Bucket="unit-uploads", Key=key)["UploadId"]
    status, part = sign({"method": "PUT", "key": key, "uploadId": upload_id, "partNumber": 2})
    assert status == 200 and part["method"] == "PUT" and "headers" not in part
    status, listed = sign({"method": "GET", "key": key, "uploadId": upload_id})
    assert status == 200 and listed["method"] == "GET"
    for number, size in ((1, 5 * MIB), (2, MIB)):
        s3_client.upload_part(Bucket="unit-uploads", Key=key, UploadId=upload_id, PartNumber=number, Body=b"x" * size)
    status, completed = sign({"method": "POST", "key": key, "uploadId": upload_id})
    assert status == 200, completed
    assert "headers" not in completed and "x-amz-mp-object-size=6291456" in completed["url"]
    status, aborted = sign({"method": "DELETE", "key": key, "uploadId": upload_id})
    assert status == 200 and aborted["method"] == "DELETE"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"method": "DELETE", "key": "uploads/alice/x"}, 400, "UnsupportedSignRequest"),
        ({"method": "PATCH", "key": "k"}, 400, "InvalidRequest"),
        ({"key": "k"}, 400, None),
        ({"method": "PUT", "key": "", "size": 1, "type": "image/png"}, 400, None),
        ({"method": "PUT", "key": "k", "uploadId": "u", "partNumber": 0}, 400, None),
        ({"method": "PUT", "key": "k", "size": "1", "type": "image/png"}, 400, None),
        ({"method": "PUT", "key": "k", "size": 1, "type": "text/html"}, 415, "UnsupportedContentType"),
        ({"method": "POST", "key": "k", "size": 10**12, "type": "image/png"}, 413, "UploadTooLarge"),
        ({"method": "GET", "key": "uploads/bob/abc/x.png", "uploadId": "u"}, 403, "ForeignKey"),
    ],
)
def test_bad_sign_requests_get_a_json_error(sign: Sign, body: Any, status: int, code: str | None) -> None:
    got, payload = sign(body)
    assert got == status, payload
    assert set(payload) == {"code", "message"}
    if code is not None:
        assert payload["code"] == code


def test_not_json_is_a_400(sign: Sign) -> None:
    status, payload = sign(raw_body="{nope")
    assert status == 400 and payload["code"] == "InvalidRequest"
