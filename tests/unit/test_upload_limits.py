"""What a client declared binds what it may store: the upload service with the registry (moto)."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from upload_core.errors import InvalidRequest, NotFound, TooLarge, TooManyRequests, UpstreamError
from upload_core.registry import PlanState, QuotaExceeded
from upload_core.s3 import S3Gateway, build_s3_client
from upload_core.settings import MIB, Settings
from upload_core.uploads import PartRequest, UploadService

BUCKET = "unit-uploads"


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(
        Settings.from_env(), default_user_quota_bytes=40 * MIB, max_concurrent_uploads=3, max_requests_per_minute=1000
    )


@pytest.fixture
def service(settings: Settings, s3_client: Any) -> UploadService:  # s3_client starts moto
    # The production client (SigV4), so presigned URLs look as they do on AWS.
    return UploadService(settings, S3Gateway(settings, client=build_s3_client(settings)))


def put_parts(s3_client: Any, key: str, upload_id: str, sizes: list[int]) -> None:
    for number, size in enumerate(sizes, start=1):
        s3_client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=b"x" * size)


def usage(service: UploadService, owner: str = "alice") -> tuple[int, int, int]:
    current = service._registry.usage(owner)
    return current.stored_bytes, current.reserved_bytes, current.uploads_in_flight


def test_part_urls_sign_each_parts_exact_length_from_the_plan(service: UploadService) -> None:
    # Given a 12 MiB upload planned in 5 MiB parts
    started = service.start("alice", filename="x.png", content_type="image/png", size=12 * MIB, part_size=5 * MIB)
    # When all three parts are signed
    signed = service.sign_parts("alice", started.upload_id, started.key, [PartRequest(n) for n in (1, 2, 3)])
    # Then each URL binds Content-Length, the last one to the remainder
    assert [part.size for part in signed.parts] == [5 * MIB, 5 * MIB, 2 * MIB]
    for part in signed.parts:
        query = parse_qs(urlsplit(part.url).query)
        assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")


def test_part_numbers_outside_the_plan_are_refused(service: UploadService) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=12 * MIB, part_size=5 * MIB)
    with pytest.raises(InvalidRequest, match="between 1 and 3"):
        service.sign_parts("alice", started.upload_id, started.key, [PartRequest(4)])


def test_an_upload_id_that_is_not_this_keys_gets_no_signature(service: UploadService) -> None:
    first = service.start("alice", filename="a.png", content_type="image/png", size=1)
    second = service.start("alice", filename="b.png", content_type="image/png", size=1)
    with pytest.raises(NotFound):
        service.sign_parts("alice", second.upload_id, first.key, [PartRequest(1)])


def test_complete_accepts_only_the_plans_parts(service: UploadService, s3_client: Any) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=12 * MIB, part_size=5 * MIB)
    put_parts(s3_client, started.key, started.upload_id, [5 * MIB, 5 * MIB])
    with pytest.raises(InvalidRequest, match="missing: 3") as refused:
        service.complete("alice", started.upload_id, started.key)
    assert refused.value.code == "IncompleteUpload"


def test_usage_is_reserved_at_start_settled_at_complete_and_released_at_abort(
    service: UploadService, s3_client: Any
) -> None:
    kept = service.start("alice", filename="a.png", content_type="image/png", size=6 * MIB, part_size=5 * MIB)
    dropped = service.start("alice", filename="b.png", content_type="image/png", size=3 * MIB)
    assert usage(service) == (0, 9 * MIB, 2)
    put_parts(s3_client, kept.key, kept.upload_id, [5 * MIB, MIB])
    service.complete("alice", kept.upload_id, kept.key)
    assert usage(service) == (6 * MIB, 3 * MIB, 1)
    service.abort("alice", dropped.upload_id, dropped.key)
    service.abort("alice", dropped.upload_id, dropped.key)  # released once
    assert usage(service) == (6 * MIB, 0, 0)
    service.complete("alice", kept.upload_id, kept.key)  # an idempotent complete settles once
    assert usage(service) == (6 * MIB, 0, 0)


def test_over_quota_is_a_413_with_usage_and_limit(service: UploadService) -> None:
    service.start("alice", filename="a.png", content_type="image/png", size=35 * MIB)
    with pytest.raises(QuotaExceeded) as refused:
        service.start("alice", filename="b.png", content_type="image/png", size=6 * MIB)
    assert refused.value.status == 413
    assert refused.value.details["limit"] == 40 * MIB
    assert refused.value.details["usage"]["reservedBytes"] == 35 * MIB
    # forms count against the same quota
    with pytest.raises(QuotaExceeded):
        service.form("alice", filename="c.png", content_type="image/png", size=5 * MIB + 1)
    service.form("alice", filename="c.png", content_type="image/png", size=5 * MIB)


def test_uploads_in_flight_are_limited_with_retry_after(service: UploadService) -> None:
    for index in range(3):
        service.start("alice", filename=f"{index}.png", content_type="image/png", size=1)
    with pytest.raises(TooManyRequests) as refused:
        service.start("alice", filename="more.png", content_type="image/png", size=1)
    assert refused.value.code == "TooManyUploads"
    assert int(refused.value.headers["Retry-After"]) > 0
    service.start("bob", filename="b.png", content_type="image/png", size=1)  # per owner


def test_the_request_rate_covers_create_and_sign(settings: Settings, s3_client: Any) -> None:
    limited = dataclasses.replace(settings, max_requests_per_minute=2)
    service = UploadService(limited, S3Gateway(limited, client=s3_client), clock=lambda: 1_800_000_000.0)
    started = service.start("alice", filename="a.png", content_type="image/png", size=1)
    service.sign_parts("alice", started.upload_id, started.key, [PartRequest(1)])
    with pytest.raises(TooManyRequests) as refused:
        service.sign_parts("alice", started.upload_id, started.key, [PartRequest(1)])
    assert refused.value.headers == {"Retry-After": "60"}


def test_an_undeclared_upload_reserves_its_limit_and_cannot_complete_beyond_it(
    settings: Settings, s3_client: Any
) -> None:
    bounded = dataclasses.replace(settings, max_undeclared_upload_bytes=6 * MIB)
    service = UploadService(bounded, S3Gateway(bounded, client=s3_client))
    started = service.start("alice", filename="x.png", content_type="image/png", size=None)
    assert usage(service) == (0, 6 * MIB, 1)
    # part numbers beyond what the reservation can hold at 5 MiB a part are refused
    with pytest.raises(InvalidRequest, match="between 1 and 2"):
        service.sign_parts("alice", started.upload_id, started.key, [PartRequest(3)])
    put_parts(s3_client, started.key, started.upload_id, [5 * MIB, 2 * MIB])
    with pytest.raises(TooLarge, match="aborted"):
        service.complete("alice", started.upload_id, started.key)
    assert usage(service) == (0, 0, 0)
    assert s3_client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    plan = service._registry.plan(started.key)
    assert plan is not None and plan.state is PlanState.REFUSED


def test_a_failed_create_gives_the_reservation_back(service: UploadService, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> str:
        raise UpstreamError("the storage service refused the request", code="StorageError")

    monkeypatch.setattr(service._s3, "create_multipart_upload", refuse)
    with pytest.raises(UpstreamError):
        service.start("alice", filename="a.png", content_type="image/png", size=5)
    assert usage(service) == (0, 0, 0)


def test_an_ended_upload_can_be_neither_signed_nor_completed(service: UploadService) -> None:
    started = service.start("alice", filename="a.png", content_type="image/png", size=1)
    service.abort("alice", started.upload_id, started.key)
    with pytest.raises(NotFound, match="ended"):
        service.sign_parts("alice", started.upload_id, started.key, [PartRequest(1)])
    with pytest.raises(NotFound, match="ended"):
        service.complete("alice", started.upload_id, started.key)
