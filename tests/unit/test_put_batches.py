"""Batches of small files (POST /uploads/batch): checked as forms, limits reserved all or nothing,
one presigned PUT per file (moto for S3 and the registry)."""

from __future__ import annotations

import base64
import dataclasses
import json
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from lambda_fakes import FakeContext, http_event

import uploads_handler
from service_factory import put_batches
from upload_core.errors import InvalidRequest, TooLarge, TooManyRequests, UnsupportedType, UploadError
from upload_core.put_batches import MAX_BATCH_FILES, BatchFile, PutBatches
from upload_core.registry import PlanKind, PlanState, QuotaExceeded
from upload_core.s3 import S3Gateway, build_s3_client
from upload_core.settings import MIB, Settings
from upload_core.uploads import UploadService


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def small(name: str = "a.png", size: int = 1000, content_type: str = "image/png") -> BatchFile:
    return BatchFile(filename=name, content_type=content_type, size=size, checksum_crc32=crc32(b"x" * size))


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(
        Settings.from_env(), default_user_quota_bytes=10 * MIB, max_concurrent_uploads=200, max_requests_per_minute=100
    )


@pytest.fixture
def service(settings: Settings, s3_client: Any) -> UploadService:  # s3_client starts moto
    # The production client (SigV4, metadata hoisted), so URLs look as they do on AWS.
    return UploadService(settings, S3Gateway(settings, client=build_s3_client(settings)))


@pytest.fixture
def batches(service: UploadService) -> PutBatches:
    return PutBatches(service)


def usage(service: UploadService, owner: str = "alice") -> tuple[int, int]:
    current = service.registry.usage(owner)
    return current.reserved_bytes, current.uploads_in_flight


def test_a_batch_reserves_every_file_and_signs_one_put_each(batches: PutBatches, service: UploadService) -> None:
    # Given three small files
    files = [small(f"f{n}.png", 1000 + n) for n in range(3)]
    # When they are signed as one batch
    signed = batches.sign("alice", files)
    # Then each gets a key of its own under the caller's prefix, its fileId, and an open form plan
    assert [put.size for put in signed.files] == [1000, 1001, 1002]
    assert len({put.key for put in signed.files}) == 3
    for put, file in zip(signed.files, files, strict=True):
        assert put.key.startswith("uploads/alice/") and put.key.endswith(f"/{file.filename}")
        assert put.key.split("/")[-2] == put.file_id
        plan = service.registry.plan(put.key)
        assert plan is not None and plan.kind is PlanKind.FORM and plan.state is PlanState.OPEN
        assert plan.declared_size == file.size and plan.content_type == "image/png"
        # And the URL signs the length, type, checksum, no-overwrite, and the form's metadata and
        # pending tag, all as headers the client sends
        query = parse_qs(urlsplit(put.url).query)
        assert query["X-Amz-SignedHeaders"] == [
            "content-length;content-type;host;if-none-match;x-amz-checksum-crc32;x-amz-meta-declared-size;"
            "x-amz-meta-original-filename;x-amz-meta-owner;x-amz-tagging"
        ]
        assert put.headers == {
            "Content-Type": "image/png",
            "x-amz-checksum-crc32": file.checksum_crc32,
            "If-None-Match": "*",
            "x-amz-meta-owner": "alice",
            "x-amz-meta-original-filename": file.filename,
            "x-amz-meta-declared-size": str(file.size),
            "x-amz-tagging": "upload-status=pending",
        }
    # And the quota and in-flight slots hold all three
    assert usage(service) == (3003, 3)


def test_the_rate_counts_every_file(batches: PutBatches, settings: Settings) -> None:
    # Given a caller who may make 100 requests a minute and has made none
    batches.sign("alice", [small(f"f{n}.png") for n in range(50)])
    batches.sign("alice", [small(f"g{n}.png") for n in range(50)])
    # When one more file is asked for in the same minute, then 429 with Retry-After
    with pytest.raises(TooManyRequests, match="more than 100 requests") as refused:
        batches.sign("alice", [small()])
    assert refused.value.headers["Retry-After"]


def test_a_batch_over_the_quota_fails_whole_with_nothing_reserved(batches: PutBatches, service: UploadService) -> None:
    # Given a 10 MiB quota, 6 MiB already reserved
    batches.sign("alice", [small("big.png", 6 * MIB)])
    before = usage(service)
    # When a batch of files that fit alone but not together is asked for
    with pytest.raises(QuotaExceeded):
        batches.sign("alice", [small("a.png", 2 * MIB), small("b.png", 3 * MIB)])
    # Then nothing more is reserved (and no plan was written)
    assert usage(service) == before
    assert len(list(service.registry.open_plans())) == 1


def test_a_batch_over_the_in_flight_limit_fails_whole(batches: PutBatches, service: UploadService) -> None:
    # Given a caller allowed 5 uploads in flight (an operator's override), with 3 already
    service.registry.set_limits("alice", quota_bytes=None, max_uploads=5)
    batches.sign("alice", [small(f"f{n}.png") for n in range(3)])
    # When 3 more are asked for at once, then 429 TooManyUploads and the usage is unchanged
    with pytest.raises(TooManyRequests) as refused:
        batches.sign("alice", [small(f"g{n}.png") for n in range(3)])
    assert refused.value.code == "TooManyUploads"
    assert usage(service) == (3000, 3)
    # And 2 still fit
    assert len(batches.sign("alice", [small(f"h{n}.png") for n in range(2)]).files) == 2


@pytest.mark.parametrize(
    ("bad", "error", "code"),
    [
        (small("a.gif.exe", content_type="application/x-msdownload"), UnsupportedType, "UnsupportedContentType"),
        (small("a.png", size=200 * MIB), TooLarge, "UploadTooLarge"),
        (small("a.png", size=-1), InvalidRequest, "InvalidSize"),
        (dataclasses.replace(small(), checksum_crc32="not base64!"), InvalidRequest, "InvalidChecksum"),
        (
            dataclasses.replace(small(), checksum_crc32=base64.b64encode(b"12345").decode()),
            InvalidRequest,
            "InvalidChecksum",
        ),
    ],
)
def test_one_bad_file_fails_the_batch_before_anything_is_counted_or_reserved(
    batches: PutBatches, service: UploadService, bad: BatchFile, error: type[UploadError], code: str
) -> None:
    # Given a batch whose second file breaks a form's rule
    with pytest.raises(error) as refused:
        batches.sign("alice", [small(), bad, small()])
    # Then the error names the file and nothing was reserved
    assert refused.value.code == code
    assert str(refused.value).startswith("files[1] (")
    assert usage(service) == (0, 0)


@pytest.mark.parametrize("count", [0, MAX_BATCH_FILES + 1])
def test_a_batch_holds_1_to_50_files(batches: PutBatches, count: int) -> None:
    with pytest.raises(InvalidRequest, match="1 to 50"):
        batches.sign("alice", [small(f"f{n}.png") for n in range(count)])


# --- the route -----------------------------------------------------------------------------------


@pytest.fixture
def invoke(batches: PutBatches, lambda_context: FakeContext) -> Iterator[Any]:
    uploads_handler.app.dependency_overrides[put_batches] = lambda: batches

    def call(body: Any, sub: str = "alice") -> tuple[int, Any, dict[str, str]]:
        response = uploads_handler.lambda_handler(
            http_event("POST", "/uploads/batch", body=body, sub=sub), lambda_context
        )
        return int(response["statusCode"]), json.loads(response["body"]), response.get("headers") or {}

    yield call
    uploads_handler.app.dependency_overrides.clear()


def wire(file: BatchFile) -> dict[str, Any]:
    return {
        "filename": file.filename,
        "contentType": file.content_type,
        "size": file.size,
        "checksumCrc32": file.checksum_crc32,
    }


def test_the_route_answers_201_with_one_url_per_file_in_order(invoke: Any) -> None:
    status, body, _ = invoke({"files": [wire(small("one.png")), wire(small("two.jpg", content_type="image/jpeg"))]})
    assert status == 201, body
    assert [file["key"].rsplit("/", 1)[1] for file in body["files"]] == ["one.png", "two.jpg"]
    assert set(body["files"][0]) == {"fileId", "key", "url", "headers", "size"}
    assert body["files"][1]["headers"]["Content-Type"] == "image/jpeg"
    assert body["expiresAt"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"files": []}, 400, "InvalidRequest"),
        ({"files": [wire(small())] * 51}, 400, "InvalidRequest"),
        ({"files": [{**wire(small()), "size": "10"}]}, 400, "InvalidRequest"),
        ({"files": [{**wire(small()), "extra": 1}]}, 400, "InvalidRequest"),
        ({"files": [wire(small(content_type="text/html"))]}, 415, "UnsupportedContentType"),
        ({"files": [wire(small(size=200 * MIB))]}, 413, "UploadTooLarge"),
        ({"files": [wire(small(size=6 * MIB)), wire(small(size=6 * MIB))]}, 413, "QuotaExceeded"),
    ],
)
def test_the_route_refuses_with_a_clear_code(invoke: Any, body: Any, status: int, code: str) -> None:
    answered, payload, _ = invoke(body)
    assert (answered, payload["code"]) == (status, code), payload
    assert payload["message"]


def test_the_route_answers_429_with_retry_after_over_the_rate(invoke: Any) -> None:
    for _ in range(2):
        assert invoke({"files": [wire(small(f"f{n}.png")) for n in range(50)]})[0] == 201
    status, payload, headers = invoke({"files": [wire(small())]})
    assert (status, payload["code"]) == (429, "TooManyRequests")
    assert int(headers["Retry-After"]) >= 1
