"""Native upload routes over real HTTP: API gateway → handler → embedded S3, bytes PUT by a plain client."""

from __future__ import annotations

import base64
import zlib
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from upload_fixtures import api, bucket, s3
from upload_flow import MIB, chunk, create, md5_b64, pattern, put_part, sha256_b64, sign, upload_all

pytestmark = pytest.mark.integration

__all__ = ["api", "bucket", "s3"]


def stored(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.mark.parametrize(
    "size", [0, 1, 5 * MIB, 5 * MIB + 1, 17 * MIB + 3], ids=["0B", "1B", "5MiB", "5MiB+1", "17MiB"]
)
def test_round_trip_is_byte_identical(api: Any, s3: Any, bucket: str, size: int) -> None:
    # Given a file / When it goes create → sign → PUT parts → complete
    data = pattern(size, seed=size)
    upload, done = upload_all(api, data)
    # Then the stored object is the same bytes, with the declared type and the pending tag
    assert done["size"] == size
    assert stored(s3, bucket, upload["key"]) == data
    head = s3.head_object(Bucket=bucket, Key=upload["key"])
    assert head["ContentType"] == "image/jpeg"
    assert head["Metadata"]["owner"] == "alice"
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=upload["key"])["TagSet"]}
    assert tags.get("upload-status") in {"pending", "valid", "rejected"}


def test_twenty_mib_upload_with_default_parts(api: Any, s3: Any, bucket: str) -> None:
    data = pattern(20 * MIB, seed=20)
    upload, done = upload_all(api, data)
    assert upload["partCount"] == 3
    assert stored(s3, bucket, upload["key"]) == data
    assert done["etag"].strip('"').endswith("-3")


def test_resume_sends_only_the_missing_parts(api: Any, s3: Any, bucket: str) -> None:
    # Given an upload interrupted after parts 1 and 3
    data = pattern(12 * MIB, seed=3)
    upload = create(api, data, partSize=5 * MIB)
    assert upload["partCount"] == 3
    signed = sign(api, upload, [1, 3])
    for number in (1, 3):
        assert put_part(signed[number], chunk(data, upload, number)).status_code == 200
    # When the client lists what is there
    listed = api.request("GET", f"/uploads/{upload['uploadId']}/parts", params={"key": upload["key"]}).json()
    assert [(p["partNumber"], p["size"]) for p in listed["parts"]] == [(1, 5 * MIB), (3, 2 * MIB)]
    # Then it uploads only part 2 and completes without a parts list
    assert put_part(sign(api, upload, [2])[2], chunk(data, upload, 2)).status_code == 200
    done = api.request("POST", f"/uploads/{upload['uploadId']}/complete", json={"key": upload["key"]})
    assert done.status_code == 200, done.text
    assert stored(s3, bucket, upload["key"]) == data
    # And the finished upload no longer shows as unfinished
    mine = api.request("GET", "/uploads").json()["uploads"]
    assert upload["uploadId"] not in {u["uploadId"] for u in mine}


def test_list_unfinished_uploads_and_abort_leaves_nothing(api: Any, s3: Any, bucket: str) -> None:
    data = pattern(6 * MIB, seed=9)
    upload = create(api, data, partSize=5 * MIB)
    assert put_part(sign(api, upload, [1])[1], data[: 5 * MIB]).status_code == 200
    mine = api.request("GET", "/uploads").json()["uploads"]
    assert upload["uploadId"] in {u["uploadId"] for u in mine}
    response = api.request("DELETE", f"/uploads/{upload['uploadId']}", params={"key": upload["key"]})
    assert response.status_code == 204
    pending = s3.list_multipart_uploads(Bucket=bucket, Prefix=upload["key"]).get("Uploads", [])
    assert pending == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix=upload["key"]).get("KeyCount", 0) == 0
    again = api.request("DELETE", f"/uploads/{upload['uploadId']}", params={"key": upload["key"]})
    assert again.status_code == 204
    listed = api.request("GET", f"/uploads/{upload['uploadId']}/parts", params={"key": upload["key"]})
    assert listed.status_code == 404


def test_complete_twice_returns_the_same_result(api: Any) -> None:
    data = pattern(10, seed=1)
    upload, done = upload_all(api, data)
    again = api.request("POST", f"/uploads/{upload['uploadId']}/complete", json={"key": upload["key"]})
    assert again.status_code == 200
    assert again.json()["etag"] == done["etag"]
    assert again.json()["size"] == 10


def test_another_user_is_refused_on_every_route(api: Any) -> None:
    data = pattern(6 * MIB, seed=5)
    upload = create(api, data)
    mallory_upload = create(api, data, user="mallory")
    upload_id, key = upload["uploadId"], upload["key"]
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"/uploads/{upload_id}/parts", {"json": {"key": key, "partNumbers": [1]}}),
        ("GET", f"/uploads/{upload_id}/parts", {"params": {"key": key}}),
        ("POST", f"/uploads/{upload_id}/complete", {"json": {"key": key}}),
        ("DELETE", f"/uploads/{upload_id}", {"params": {"key": key}}),
        ("GET", f"/s3/multipart/{upload_id}/1", {"params": {"key": key}}),
        ("GET", f"/s3/multipart/{upload_id}/batch", {"params": {"key": key, "partNumbers": "1"}}),
        ("GET", f"/s3/multipart/{upload_id}", {"params": {"key": key}}),
        ("POST", f"/s3/multipart/{upload_id}/complete", {"params": {"key": key}, "json": {"parts": []}}),
        ("DELETE", f"/s3/multipart/{upload_id}", {"params": {"key": key}}),
    ]
    for method, path, extra in attempts:
        response = api.request(method, path, user="mallory", **extra)
        assert response.status_code in (400, 403), (method, path, response.status_code, response.text)
        assert "url" not in response.text.lower() or response.status_code != 200
        if method != "POST" or "complete" not in path:
            assert response.status_code == 403, (method, path, response.text)
    # Mallory's own key with Alice's upload id: S3 binds an upload id to its key
    own = {"key": mallory_upload["key"]}
    for method, path, extra in [
        ("POST", f"/uploads/{upload_id}/parts", {"json": {**own, "partNumbers": [1]}}),
        ("GET", f"/uploads/{upload_id}/parts", {"params": own}),
        ("POST", f"/uploads/{upload_id}/complete", {"json": own}),
        ("GET", f"/s3/multipart/{upload_id}/1", {"params": own}),
    ]:
        response = api.request(method, path, user="mallory", **extra)
        assert response.status_code == 404, (method, path, response.text)
    # Alice's upload is untouched by all of that
    listed = api.request("GET", f"/uploads/{upload_id}/parts", params={"key": key})
    assert listed.status_code == 200
    assert upload_id not in {u["uploadId"] for u in api.request("GET", "/uploads", user="mallory").json()["uploads"]}


# --- S3 itself refuses what the signatures forbid ------------------------------------------------


def test_part_url_cannot_be_used_for_another_part_or_key(api: Any) -> None:
    data = pattern(6 * MIB, seed=11)
    upload = create(api, data)
    url = sign(api, upload, [1])[1]["url"]
    other_part = url.replace("partNumber=1", "partNumber=2")
    assert requests.put(other_part, data=b"x", timeout=30).status_code == 403
    other_key = url.replace(upload["key"].rsplit("/", 1)[1], "evil.jpg")
    assert other_key != url
    assert requests.put(other_key, data=b"x", timeout=30).status_code == 403


def test_body_that_does_not_match_its_signed_md5_is_refused(api: Any) -> None:
    data = pattern(100, seed=12)
    upload = create(api, data)
    part = sign(api, upload, [], parts=[{"partNumber": 1, "contentMd5": md5_b64(data)}])[1]
    assert part["headers"] == {"Content-MD5": md5_b64(data)}
    tampered = put_part(part, data[:-1] + b"!")
    assert tampered.status_code == 400
    assert "BadDigest" in tampered.text
    without_header = requests.put(part["url"], data=data, timeout=30)
    assert without_header.status_code == 403
    assert put_part(part, data).status_code == 200


def test_body_that_does_not_match_its_signed_sha256_is_refused(api: Any, s3: Any, bucket: str) -> None:
    data = pattern(300, seed=13)
    upload = create(api, data, checksumAlgorithm="SHA256")
    part = sign(api, upload, [], checksumAlgorithm="SHA256", parts=[{"partNumber": 1, "checksum": sha256_b64(data)}])[1]
    assert part["headers"] == {"x-amz-checksum-sha256": sha256_b64(data)}
    assert put_part(part, b"y" + data[1:]).status_code == 400
    assert put_part(part, data).status_code == 200
    done = api.request("POST", f"/uploads/{upload['uploadId']}/complete", json={"key": upload["key"]})
    assert done.status_code == 200, done.text
    assert stored(s3, bucket, upload["key"]) == data


def test_body_that_does_not_match_its_signed_crc32_is_refused(api: Any, s3: Any, bucket: str) -> None:
    # Given a part signed with its CRC32 (the client's default checksum)
    data = pattern(300, seed=15)
    crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    upload = create(api, data, checksumAlgorithm="CRC32")
    part = sign(api, upload, [], checksumAlgorithm="CRC32", parts=[{"partNumber": 1, "checksum": crc32}])[1]
    assert part["headers"] == {"x-amz-checksum-crc32": crc32}
    # When a corrupted body is sent / Then S3 refuses it, and takes the right one
    assert put_part(part, b"y" + data[1:]).status_code == 400
    assert put_part(part, data).status_code == 200
    done = api.request("POST", f"/uploads/{upload['uploadId']}/complete", json={"key": upload["key"]})
    assert done.status_code == 200, done.text
    assert stored(s3, bucket, upload["key"]) == data


def test_every_url_of_a_checksum_bound_batch_refuses_a_body_it_was_not_signed_for(
    api: Any, s3: Any, bucket: str
) -> None:
    # Given three parts signed in one batch with their CRC32s (the first URL of a batch comes from
    # generate_presigned_url, the others from the batch signer)
    data = pattern(11 * MIB + 7, seed=16)
    upload = create(api, data, partSize=5 * MIB, checksumAlgorithm="CRC32")
    bodies = {number: chunk(data, upload, number) for number in (1, 2, 3)}
    checksums = {n: base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode() for n, body in bodies.items()}
    parts = sign(
        api,
        upload,
        [],
        checksumAlgorithm="CRC32",
        parts=[{"partNumber": n, "checksum": checksum} for n, checksum in checksums.items()],
    )
    for number in (1, 2, 3):
        part, body = parts[number], bodies[number]
        assert part["headers"] == {"x-amz-checksum-crc32": checksums[number]}
        # When a corrupted body, or one of another length, is sent / Then S3 refuses it
        assert put_part(part, b"y" + body[1:]).status_code == 400
        assert put_part(part, body + b"!").status_code == 403
        # And takes the part it was signed for
        assert put_part(part, body).status_code == 200
    done = api.request("POST", f"/uploads/{upload['uploadId']}/complete", json={"key": upload["key"]})
    assert done.status_code == 200, done.text
    assert stored(s3, bucket, upload["key"]) == data


def test_form_upload_enforces_size_type_and_key(api: Any, s3: Any, bucket: str) -> None:
    data = pattern(64, seed=14)
    response = api.request("POST", "/uploads/form", json={"filename": "a.png", "contentType": "image/png", "size": 64})
    assert response.status_code == 201, response.text
    form = response.json()

    def post(fields: dict[str, str], body: bytes) -> requests.Response:
        return requests.post(form["url"], data=fields, files={"file": ("a.png", body)}, timeout=30)

    assert post(form["fields"], data + b"!").status_code == 400  # over the signed size
    assert post({**form["fields"], "Content-Type": "text/html"}, data).status_code == 403
    assert post({**form["fields"], "key": form["key"] + "x"}, data).status_code == 403
    ok = post(form["fields"], data)
    assert ok.status_code == 201, ok.text
    assert stored(s3, bucket, form["key"]) == data
    head = s3.head_object(Bucket=bucket, Key=form["key"])
    assert head["ContentType"] == "image/png"
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=form["key"])["TagSet"]}
    assert "upload-status" in tags


@pytest.mark.parametrize("filename", ["été 日本 + plus.png", "a%20b&c=d?.png", "💾 disk.png"])
def test_unicode_and_reserved_characters_in_filenames_survive_the_round_trip(
    api: Any, s3: Any, bucket: str, filename: str
) -> None:
    data = pattern(5 * MIB + 10, seed=len(filename))
    upload = create(api, data, filename=filename, partSize=5 * MIB)
    assert upload["key"].rsplit("/", 1)[1]  # a sanitised, non-empty last segment
    signed = sign(api, upload, [1, 2])
    for number in (1, 2):
        assert put_part(signed[number], chunk(data, upload, number)).status_code == 200
    done = api.request("POST", f"/uploads/{upload['uploadId']}/complete", json={"key": upload["key"]})
    assert done.status_code == 200, done.text
    assert stored(s3, bucket, upload["key"]) == data
    head = s3.head_object(Bucket=bucket, Key=upload["key"])
    assert unquote(head["Metadata"]["original-filename"]) == filename
