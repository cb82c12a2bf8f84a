"""The sweeper against moto (S3 + the registry table), with a clock the tests move."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from upload_core.errors import UpstreamError
from upload_core.registry import PlanState, registry_for
from upload_core.s3 import S3Gateway, build_s3_client
from upload_core.settings import MIB, Settings
from upload_core.sweeper import Sweeper
from upload_core.uploads import UploadService
from upload_core.uppy_signing import SignRequest, UppySigner

BUCKET = "unit-uploads"
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings.from_env(), upload_ttl_seconds=3600, max_undeclared_upload_bytes=6 * MIB)


@pytest.fixture
def parts(settings: Settings, s3_client: Any, clock: Clock) -> tuple[UploadService, Sweeper]:
    gateway = S3Gateway(settings, client=build_s3_client(settings))
    registry = registry_for(settings, clock)
    return UploadService(settings, gateway, registry, clock=clock), Sweeper(settings, gateway, registry, clock=clock)


def put_parts(s3_client: Any, key: str, upload_id: str, sizes: list[int]) -> None:
    for number, size in enumerate(sizes, start=1):
        s3_client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=b"x" * size)


def test_uploads_past_their_time_are_aborted_and_released(
    parts: tuple[UploadService, Sweeper], s3_client: Any, clock: Clock
) -> None:
    service, sweeper = parts
    # Given an upload with a part stored, and one form never used
    started = service.start("alice", filename="a.png", content_type="image/png", size=6 * MIB, part_size=5 * MIB)
    put_parts(s3_client, started.key, started.upload_id, [5 * MIB])
    service.form("alice", filename="b.png", content_type="image/png", size=100)
    # When the sweeper runs before their time is up, nothing happens
    assert sweeper.sweep().expired == 0
    # When it runs after
    clock.now = START + 3600 + 3600 + 1
    report = sweeper.sweep()
    # Then both plans ended, the upload is gone from S3, and the usage is back to zero
    assert report.expired == 2
    assert s3_client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    usage = service._registry.usage("alice")
    assert (usage.reserved_bytes, usage.uploads_in_flight) == (0, 0)
    plan = service._registry.plan(started.key)
    assert plan is not None and plan.state is PlanState.EXPIRED
    assert sweeper.sweep().expired == 0  # once


def test_an_expired_plan_whose_object_exists_is_settled_not_released(
    parts: tuple[UploadService, Sweeper], s3_client: Any, clock: Clock
) -> None:
    service, sweeper = parts
    form = service.form("alice", filename="b.png", content_type="image/png", size=3)
    s3_client.put_object(Bucket=BUCKET, Key=form.key, Body=b"abc")  # used, but not validated yet
    clock.now = START + 3 * 3600
    assert sweeper.sweep().settled == 1
    usage = service._registry.usage("alice")
    assert (usage.stored_bytes, usage.reserved_bytes, usage.uploads_in_flight) == (3, 0, 0)


def test_an_upload_storing_more_than_it_reserved_is_aborted(
    parts: tuple[UploadService, Sweeper], s3_client: Any
) -> None:
    service, sweeper = parts
    # Given an undeclared upload (6 MiB reserved) whose client stored 10 MiB of parts
    started = service.start("alice", filename="a.png", content_type="image/png", size=None)
    put_parts(s3_client, started.key, started.upload_id, [5 * MIB, 5 * MIB])
    within = service.start("alice", filename="b.png", content_type="image/png", size=None)
    put_parts(s3_client, within.key, within.upload_id, [5 * MIB])
    # When the sweeper runs
    report = sweeper.sweep()
    # Then that one upload is aborted and released; the other is left alone
    assert report.over_reservation == 1
    remaining = s3_client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert [upload["Key"] for upload in remaining] == [within.key]
    usage = service._registry.usage("alice")
    assert (usage.reserved_bytes, usage.uploads_in_flight) == (6 * MIB, 1)


def test_one_failing_plan_does_not_stop_the_sweep(
    parts: tuple[UploadService, Sweeper], s3_client: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, sweeper = parts
    first = service.start("alice", filename="a.png", content_type="image/png", size=1)
    service.start("bob", filename="b.png", content_type="image/png", size=1)
    clock.now = START + 7200
    real_head = sweeper._s3.head_object

    def failing_head(key: str, version_id: str | None = None) -> Any:
        if key == first.key:
            raise UpstreamError("the storage service could not be reached", code="StorageUnavailable")
        return real_head(key, version_id)

    monkeypatch.setattr(sweeper._s3, "head_object", failing_head)
    report = sweeper.sweep()
    assert (report.expired, report.failed) == (1, 1)
    assert service._registry.usage("alice").uploads_in_flight == 1  # kept for the next sweep


def test_browser_completed_uploads_are_settled_and_never_created_ones_released(
    parts: tuple[UploadService, Sweeper], s3_client: Any, clock: Clock
) -> None:
    service, sweeper = parts
    signer = UppySigner(service)
    # Given two uploads signed for Uppy 6: one the browser created, filled and completed itself
    # (it never reports back), one whose create URL was never sent
    done = signer.sign("alice", SignRequest(method="POST", key="u-a.png", size=6 * MIB, name="a.png", type="image/png"))
    never = signer.sign("alice", SignRequest(method="POST", key="u-b.png", size=MIB, name="b.png", type="image/png"))
    assert done.key is not None and never.key is not None
    upload_id = s3_client.create_multipart_upload(Bucket=BUCKET, Key=done.key)["UploadId"]
    signer.sign("alice", SignRequest(method="PUT", key=done.key, upload_id=upload_id, part_number=1))
    put_parts(s3_client, done.key, upload_id, [5 * MIB, MIB])
    signer.sign("alice", SignRequest(method="POST", key=done.key, upload_id=upload_id))
    etags = s3_client.list_parts(Bucket=BUCKET, Key=done.key, UploadId=upload_id)["Parts"]
    s3_client.complete_multipart_upload(
        Bucket=BUCKET,
        Key=done.key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in etags]},
    )
    # When the sweeper runs after their time is up
    clock.now += 3601
    report = sweeper.sweep()
    # Then the completed one is settled as stored, the other released
    assert (report.settled, report.expired) == (1, 1)
    usage = service.registry.usage("alice")
    assert (usage.stored_bytes, usage.reserved_bytes, usage.uploads_in_flight) == (6 * MIB, 0, 0)
