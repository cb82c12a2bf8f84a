"""POST /uploads/batch over real HTTP through the local stack (validator running): the presigned
PUTs store exactly the files' bytes, the validator judges them as form uploads and GET /files lists
them; and the embedded S3 (MiniStack, AUTH on) refuses every PUT that is not exactly the declared
file: another body (CRC32), another length, another type, a missing signed header, a second PUT at
the key. Each refusal is S3's own (MiniStack checks the signature, the checksum against the body
and If-None-Match itself; local/ministack_compat.py patches none of these), as AWS refuses them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from api_client import ApiClient
from test_files_http import file_id, wait_for_verdict

from client import Uploader
from client.put_batch import crc32_base64
from local.stack import LocalStack
from tests import image_corpus as corpus

TIMEOUT = 30


def user() -> str:
    return f"batch-{uuid.uuid4().hex[:8]}"


def declared(name: str, body: bytes, content_type: str = "image/png") -> dict[str, Any]:
    return {"filename": name, "contentType": content_type, "size": len(body), "checksumCrc32": crc32_base64(body)}


def sign(api: ApiClient, who: str, *files: dict[str, Any]) -> list[dict[str, Any]]:
    reply = api.request("POST", "/uploads/batch", user=who, json={"files": list(files)})
    assert reply.status_code == 201, reply.text
    return list(reply.json()["files"])


def put(target: dict[str, Any], body: bytes, **headers: str | None) -> requests.Response:
    sent = {name: value for name, value in {**target["headers"], **headers}.items() if value is not None}
    return requests.put(target["url"], data=body, headers=sent, timeout=TIMEOUT)


def test_a_batch_stores_the_exact_bytes_and_the_files_are_judged_and_listed(
    api: ApiClient, s3: Any, bucket: str
) -> None:
    # Given three images and one file that is not what it claims to be
    who = user()
    bodies = {"a.png": corpus.png(), "b.png": corpus.png(), "c.jpg": corpus.jpeg(), "fake.png": b"\x89PNG not really"}
    types = {"a.png": "image/png", "b.png": "image/png", "c.jpg": "image/jpeg", "fake.png": "image/png"}
    # When they are signed in one batch and each PUT with the headers given
    targets = sign(api, who, *(declared(name, body, types[name]) for name, body in bodies.items()))
    for target, body in zip(targets, bodies.values(), strict=True):
        stored = put(target, body)
        assert stored.status_code == 200, stored.text
    # Then S3 holds exactly the bytes, with the form path's metadata and pending tag
    for target, (name, body) in zip(targets, bodies.items(), strict=True):
        assert s3.get_object(Bucket=bucket, Key=target["key"])["Body"].read() == body
        head = s3.head_object(Bucket=bucket, Key=target["key"])
        assert head["Metadata"]["owner"] == who and head["Metadata"]["original-filename"] == name
        assert target["fileId"] == file_id(target["key"])
    # And the validator judged each (the images valid, the fake rejected), and GET /files lists them
    verdicts = [wait_for_verdict(api, who, target["key"])["status"] for target in targets]
    assert verdicts == ["valid", "valid", "valid", "rejected"]
    listed = api.request("GET", "/files", user=who).json()["files"]
    assert {item["fileId"] for item in listed} == {target["fileId"] for target in targets}


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("other bytes, same length", 400, "BadDigest"),
        ("one byte short", 403, "SignatureDoesNotMatch"),
        ("another content type", 403, "SignatureDoesNotMatch"),
        ("another crc32 header", 403, "SignatureDoesNotMatch"),
        ("without if-none-match", 403, "SignatureDoesNotMatch"),
        ("without the crc32 header", 403, "SignatureDoesNotMatch"),
    ],
)
def test_s3_refuses_a_put_that_is_not_the_declared_file(
    upload_stack: LocalStack, change: str, status: int, code: str
) -> None:
    # Given a signed PUT for one image
    api = ApiClient(upload_stack)
    body = corpus.png()
    (target,) = sign(api, user(), declared("a.png", body))
    s3 = upload_stack.s3_client()
    # When it is sent changed
    sent = {
        "other bytes, same length": lambda: put(target, bytes(b ^ 1 for b in body)),
        "one byte short": lambda: put(target, body[:-1]),
        "another content type": lambda: put(target, body, **{"Content-Type": "image/jpeg"}),
        "another crc32 header": lambda: put(target, body, **{"x-amz-checksum-crc32": crc32_base64(b"other")}),
        "without if-none-match": lambda: put(target, body, **{"If-None-Match": None}),
        "without the crc32 header": lambda: put(target, body, **{"x-amz-checksum-crc32": None}),
    }[change]()
    # Then S3 refuses it and stores nothing
    assert sent.status_code == status, sent.text
    assert f"<Code>{code}</Code>" in sent.text
    assert "Contents" not in s3.list_objects_v2(Bucket=upload_stack.bucket, Prefix=target["key"])


def test_s3_refuses_a_second_put_at_the_key(upload_stack: LocalStack) -> None:
    # Given a batch PUT that stored its file
    api = ApiClient(upload_stack)
    body = corpus.png()
    (target,) = sign(api, user(), declared("a.png", body))
    assert put(target, body).status_code == 200
    # When the same URL is used again, then If-None-Match refuses it and one version exists
    again = put(target, body)
    assert again.status_code == 412 and "<Code>PreconditionFailed</Code>" in again.text
    s3 = upload_stack.s3_client()
    versions = s3.list_object_versions(Bucket=upload_stack.bucket, Prefix=target["key"]).get("Versions", [])
    assert len(versions) == 1


def test_the_client_uploads_many_files_through_batches(upload_stack: LocalStack, tmp_path: Path) -> None:
    # Given 12 small files
    paths = []
    for index in range(12):
        path = tmp_path / f"img-{index:02d}.png"
        path.write_bytes(corpus.png() + bytes(index))  # distinct bodies (trailing bytes: not validated here)
        paths.append(path)
    uploader = Uploader(upload_stack.api_url, upload_stack.token_for(user()), concurrency=4)
    calls: list[int] = []
    original = uploader.api.create_put_batch

    def counted(files: Any) -> Any:
        calls.append(len(files))
        return original(files)

    uploader.api.create_put_batch = counted  # type: ignore[method-assign]
    # When the library uploads them in batches of 5
    outcomes = uploader.upload_many(paths, batch_size=5)
    # Then three API calls signed them, and S3 holds each file's exact bytes
    assert sorted(calls) == [2, 5, 5]
    s3 = upload_stack.s3_client()
    for path, outcome in zip(paths, outcomes, strict=True):
        assert outcome.error is None and outcome.result is not None
        assert s3.get_object(Bucket=upload_stack.bucket, Key=outcome.result.key)["Body"].read() == path.read_bytes()
