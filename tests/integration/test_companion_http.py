"""Uppy Companion's /s3 routes over real HTTP, called in the order and shapes Uppy's S3 plugin uses."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests
from upload_fixtures import api, bucket, s3
from upload_flow import MIB, pattern

pytestmark = pytest.mark.integration

__all__ = ["api", "bucket", "s3"]


def uppy_path(template: str, upload_id: str, key: str, **extra: str) -> str:
    # Uppy builds these paths itself, encoding the upload id and the key.
    query = "&".join([f"key={quote(key, safe='')}"] + [f"{name}={value}" for name, value in extra.items()])
    return template.format(upload_id=quote(upload_id, safe="")) + "?" + query


def test_uppy_multipart_upload_with_resume(api: Any, s3: Any, bucket: str) -> None:
    data = pattern(11 * MIB, seed=21)
    part_size = 5 * MIB
    # createMultipartUpload
    created = api.request(
        "POST",
        "/s3/multipart",
        json={"filename": "big.png", "type": "image/png", "metadata": {"name": "big.png", "type": "image/png"}},
    )
    assert created.status_code == 200, created.text
    upload_id, key = created.json()["uploadId"], created.json()["key"]
    assert created.json()["bucket"] == bucket
    assert key.startswith("uploads/alice/")

    def send(number: int) -> str:
        signed = api.request("GET", uppy_path("/s3/multipart/{upload_id}/" + str(number), upload_id, key))
        assert signed.status_code == 200, signed.text
        assert signed.json()["expires"] > 0
        body = data[(number - 1) * part_size : number * part_size]
        put = requests.put(signed.json()["url"], data=body, timeout=60)
        assert put.status_code == 200, put.text
        return put.headers["ETag"]

    etags = {1: send(1)}
    # The page reloads: Uppy lists the parts it already sent and skips them
    listed = api.request("GET", uppy_path("/s3/multipart/{upload_id}", upload_id, key))
    assert listed.status_code == 200
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed.json()] == [(1, etags[1], part_size)]
    # Older Uppy releases sign in batches
    batch = api.request("GET", uppy_path("/s3/multipart/{upload_id}/batch", upload_id, key, partNumbers="2,3"))
    assert batch.status_code == 200
    assert sorted(batch.json()["presignedUrls"]) == ["2", "3"]
    for number in (2, 3):
        body = data[(number - 1) * part_size : number * part_size]
        put = requests.put(batch.json()["presignedUrls"][str(number)], data=body, timeout=60)
        assert put.status_code == 200
        etags[number] = put.headers["ETag"]
    # completeMultipartUpload with exactly what Uppy sends
    parts = [{"ETag": etag, "PartNumber": number} for number, etag in sorted(etags.items())]
    done = api.request("POST", uppy_path("/s3/multipart/{upload_id}/complete", upload_id, key), json={"parts": parts})
    assert done.status_code == 200, done.text
    assert done.json()["key"] == key
    assert done.json()["location"]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_uppy_abort(api: Any, s3: Any, bucket: str) -> None:
    created = api.request("POST", "/s3/multipart", json={"filename": "a.gif", "type": "image/gif"}).json()
    response = api.request("DELETE", uppy_path("/s3/multipart/{upload_id}", created["uploadId"], created["key"]))
    assert (response.status_code, response.json()) == (200, {})
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=created["key"]).get("Uploads", []) == []


def test_uppy_single_request_upload(api: Any, s3: Any, bucket: str) -> None:
    data = pattern(1000, seed=22)
    params = api.request("GET", "/s3/params?filename=small.webp&type=image%2Fwebp&metadata%5Bname%5D=small.webp")
    assert params.status_code == 200, params.text
    form = params.json()
    assert form["method"] == "POST"
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("small.webp", data)}, timeout=30)
    assert posted.status_code == 201, posted.text
    key = form["fields"]["key"]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    # The policy pins the content type Uppy asked for
    other = requests.post(
        form["url"], data={**form["fields"], "Content-Type": "image/png"}, files={"file": ("x", data)}, timeout=30
    )
    assert other.status_code == 403


def test_uppy_requests_without_a_token_are_refused(api: Any) -> None:
    response = api.request("POST", "/s3/multipart", user=None, json={"filename": "a.png", "type": "image/png"})
    assert response.status_code == 401
