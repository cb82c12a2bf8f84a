"""Limits that need their own configuration: short-lived URLs and a small maximum upload size."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from api_client import ApiClient
from upload_flow import MIB, create, pattern, put_part, sign

from local.stack import LocalStack
from tests.stack_limits import GENEROUS_LIMITS

pytestmark = pytest.mark.integration

URL_EXPIRY_SECONDS = 2
MAX_UPLOAD_BYTES = 6 * MIB


@pytest.fixture(scope="module")
def limited_stack() -> Iterator[LocalStack]:
    overrides = {"UrlExpirySeconds": str(URL_EXPIRY_SECONDS), "MaxUploadBytes": str(MAX_UPLOAD_BYTES)}
    with LocalStack(
        s3_port=0, api_port=0, parameter_overrides={**GENEROUS_LIMITS, **overrides}, s3_events=False
    ) as running:
        yield running


@pytest.fixture
def api(limited_stack: LocalStack) -> ApiClient:
    return ApiClient(limited_stack)


@pytest.fixture
def s3(limited_stack: LocalStack) -> Any:
    return limited_stack.s3_client()


def test_an_expired_part_url_is_refused_and_a_fresh_one_works(api: ApiClient) -> None:
    # Given a part URL signed to live 2 seconds
    data = pattern(1000, seed=31)
    upload = create(api, data)
    part = sign(api, upload, [1])[1]
    # When it is used after it expired / Then S3 refuses it
    time.sleep(URL_EXPIRY_SECONDS + 1.5)
    expired = put_part(part, data)
    assert expired.status_code == 403
    # And the client re-signs and succeeds
    assert put_part(sign(api, upload, [1])[1], data).status_code == 200


def test_a_declared_size_over_the_maximum_is_refused_at_create(api: ApiClient) -> None:
    response = api.request(
        "POST", "/uploads", json={"filename": "a.png", "contentType": "image/png", "size": MAX_UPLOAD_BYTES + 1}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "UploadTooLarge"


def test_an_undeclared_upload_over_the_maximum_is_aborted_at_complete(
    api: ApiClient, s3: Any, limited_stack: LocalStack
) -> None:
    # Given a Companion upload (no declared size) that sends 7 MiB in two parts
    created = api.request("POST", "/s3/multipart", json={"filename": "big.png", "type": "image/png"}).json()
    upload_id, key = created["uploadId"], created["key"]
    etags = []
    for number, size in ((1, 5 * MIB), (2, 2 * MIB)):
        url = api.request("GET", f"/s3/multipart/{upload_id}/{number}", params={"key": key}).json()["url"]
        put = requests.put(url, data=b"z" * size, timeout=60)
        assert put.status_code == 200
        etags.append({"PartNumber": number, "ETag": put.headers["ETag"]})
    # When it is completed / Then it is refused and aborted, leaving nothing behind
    done = api.request("POST", f"/s3/multipart/{upload_id}/complete", params={"key": key}, json={"parts": etags})
    assert done.status_code == 413
    assert done.json()["code"] == "UploadTooLarge"
    bucket = limited_stack.bucket
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0
