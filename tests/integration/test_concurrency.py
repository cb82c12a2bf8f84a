"""Fifty uploads at once through the local stack: every one completes, byte-identical, no errors.

Each upload runs the whole client flow in its own thread (create, sign, PUT the parts straight to
S3, complete), with its own content, so that a mixed-up part, key or upload id changes the bytes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from api_client import ApiClient
from upload_flow import MIB, pattern

from local.stack import LocalStack

pytestmark = pytest.mark.integration

UPLOADS = 50
USERS = 5  # ten simultaneous uploads share each user's prefix
PART_SIZE = 5 * MIB


def one_upload(api: ApiClient, index: int, start: threading.Barrier) -> tuple[str, bytes, dict[str, Any]]:
    user = f"crowd-{index % USERS}"
    # Two parts (the second short) for most, a single part for every fifth upload.
    size = PART_SIZE + 1 + index * 997 if index % 5 else 64 * 1024 + index
    data = pattern(size, seed=1000 + index)
    start.wait()  # every thread sends its first request at the same moment
    created = api.request(
        "POST",
        "/uploads",
        user=user,
        json={"filename": f"crowd-{index}.png", "contentType": "image/png", "size": size, "partSize": PART_SIZE},
    )
    assert created.status_code == 201, created.text
    upload = created.json()
    numbers = list(range(1, upload["partCount"] + 1))
    signed = api.request(
        "POST", f"/uploads/{upload['uploadId']}/parts", user=user, json={"key": upload["key"], "partNumbers": numbers}
    )
    assert signed.status_code == 200, signed.text
    parts = []
    for part in signed.json()["parts"]:
        offset = (part["partNumber"] - 1) * PART_SIZE
        put = requests.put(part["url"], data=data[offset : offset + PART_SIZE], headers=part["headers"], timeout=120)
        assert put.status_code == 200, put.text
        parts.append({"partNumber": part["partNumber"], "etag": put.headers["ETag"]})
    done = api.request(
        "POST", f"/uploads/{upload['uploadId']}/complete", user=user, json={"key": upload["key"], "parts": parts}
    )
    assert done.status_code == 200, done.text
    return upload["key"], data, done.json()


def test_fifty_simultaneous_uploads_all_arrive_intact(upload_stack: LocalStack) -> None:
    # Given fifty clients, each with its own file, starting together
    api = ApiClient(upload_stack)
    s3 = upload_stack.s3_client()
    start = threading.Barrier(UPLOADS)
    # When they all upload at once
    with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
        results = list(pool.map(lambda index: one_upload(api, index, start), range(UPLOADS)))
    # Then every upload completed under its own key, with exactly its own bytes
    keys = [key for key, _, _ in results]
    assert len(set(keys)) == UPLOADS
    for key, data, done in results:
        assert done["size"] == len(data)
        stored = s3.get_object(Bucket=upload_stack.bucket, Key=key)["Body"].read()
        assert stored == data, key
    # And no upload was left unfinished for any of the users
    for user in range(USERS):
        pending = s3.list_multipart_uploads(Bucket=upload_stack.bucket, Prefix=f"uploads/crowd-{user}/")
        assert pending.get("Uploads", []) == []
