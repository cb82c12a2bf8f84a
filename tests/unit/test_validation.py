"""The validation service against moto's S3: tags, quarantine, idempotency, bounded reads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests import image_corpus as corpus
from upload_core import validation
from upload_core.errors import NotFound, UpstreamError
from upload_core.inspection import Reason
from upload_core.s3 import S3Gateway
from upload_core.settings import Settings
from upload_core.validation import (
    Action,
    InvalidNotification,
    ObjectCreated,
    ValidationService,
    merge_tags,
    parse_notification,
)
from upload_core.validator_settings import ValidatorSettings

BUCKET = "unit-uploads"
PENDING = {"upload-status": "pending"}
VALIDATOR_ENV = {
    "INSPECT_HEAD_BYTES": str(64 * 1024),
    "INSPECT_MAX_HEAD_BYTES": str(1024 * 1024),
    "INSPECT_TAIL_BYTES": str(8 * 1024),
    "MAX_FRAMES": "50",
    "MAX_IMAGE_PIXELS": "40000000",
}


class RecordingGateway(S3Gateway):
    """The real gateway on moto, remembering every byte range asked for."""

    def __init__(self, settings: Settings, client: Any) -> None:
        super().__init__(settings, client)
        self.ranges: list[tuple[int, int]] = []

    def get_range(self, key: str, start: int, end: int, version_id: str | None = None) -> bytes:
        self.ranges.append((start, end))
        return super().get_range(key, start, end, version_id)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def bucket(s3_client: Any) -> Any:
    s3_client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3_client


@pytest.fixture
def gateway(settings: Settings, bucket: Any) -> RecordingGateway:
    return RecordingGateway(settings, bucket)


def make_service(settings: Settings, gateway: S3Gateway, **env: str) -> ValidationService:
    return ValidationService(settings, ValidatorSettings.from_env(settings, {**VALIDATOR_ENV, **env}), gateway)


@pytest.fixture
def service(settings: Settings, gateway: RecordingGateway) -> ValidationService:
    return make_service(settings, gateway)


def put(client: Any, key: str, data: bytes, content_type: str, tags: Mapping[str, str] | None = None) -> str:
    tagging = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in (PENDING if tags is None else tags).items())
    response = client.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type, Tagging=tagging)
    return str(response["VersionId"])


def notification(*objects: tuple[str, str | None], bucket: str = BUCKET, event: str = "ObjectCreated:Put") -> dict:
    """An S3 event notification as S3 writes it: keys URL-encoded with '+' for spaces."""
    records = []
    for key, version_id in objects:
        s3_object: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1, "eTag": "e", "sequencer": "01"}
        if version_id:
            s3_object["versionId"] = version_id
        records.append(
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": event,
                "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": s3_object},
            }
        )
    return {"Records": records}


def tags_of(client: Any, key: str, version_id: str | None = None) -> dict[str, str]:
    params = {"Bucket": BUCKET, "Key": key, **({"VersionId": version_id} if version_id else {})}
    return {tag["Key"]: tag["Value"] for tag in client.get_object_tagging(**params)["TagSet"]}


def versions_of(client: Any, key: str) -> list[str]:
    listing = client.list_object_versions(Bucket=BUCKET, Prefix=key)
    return [item["VersionId"] for item in listing.get("Versions", []) if item["Key"] == key]


def key_for(name: str) -> str:
    return f"uploads/alice/0123456789abcdef0123456789abcdef/{name}"


# --------------------------------------------------------------------------- verdicts and tags


@pytest.mark.parametrize("item", corpus.valid_corpus(), ids=lambda item: item.name)
def test_valid_files_are_tagged_valid_with_type_and_dimensions(
    service: ValidationService, bucket: Any, item: corpus.CorpusFile
) -> None:
    # Given a valid image uploaded as pending
    key = key_for(item.name)
    version = put(bucket, key, item.data, item.content_type)
    # When its ObjectCreated event is handled
    [outcome] = service.handle_notification(notification((key, version)))
    # Then that version is tagged valid with its type, dimensions and frames, and stays in place
    assert outcome.action == Action.TAGGED_VALID
    assert tags_of(bucket, key, version) == {
        "upload-status": "valid",
        "upload-reason": "ok",
        "upload-type": item.content_type,
        "upload-width": str(item.width),
        "upload-height": str(item.height),
        "upload-frames": str(item.frames),
    }
    assert versions_of(bucket, key) == [version]


REJECTS = [
    pytest.param("photo.jpg", corpus.png(), "image/jpeg", Reason.TYPE_MISMATCH, id="wrong-declared-type"),
    pytest.param("photo.gif", corpus.png(), "image/png", Reason.EXTENSION_MISMATCH, id="extension-mismatch"),
    pytest.param("logo.svg", corpus.SVG_WITH_SCRIPT, "image/svg+xml", Reason.ACTIVE_CONTENT, id="svg-script"),
    pytest.param("page.jpg", corpus.HTML_PAGE, "image/jpeg", Reason.ACTIVE_CONTENT, id="html-named-jpg"),
    pytest.param("cut.png", corpus.png(300, 200)[:5000], "image/png", Reason.TRUNCATED, id="truncated-png"),
    pytest.param("bomb.png", corpus.png_bomb(), "image/png", Reason.TOO_MANY_PIXELS, id="decompression-bomb"),
    pytest.param("frames.gif", corpus.tiny_frames_gif(51), "image/gif", Reason.TOO_MANY_FRAMES, id="too-many-frames"),
    pytest.param("empty.png", b"", "image/png", Reason.EMPTY, id="empty"),
]


@pytest.mark.parametrize(("name", "data", "content_type", "reason"), REJECTS)
def test_rejects_are_moved_to_quarantine_with_their_reason(  # noqa: PLR0917 - four parameters of one case
    service: ValidationService, bucket: Any, name: str, data: bytes, content_type: str, reason: Reason
) -> None:
    # Given a bad object uploaded as pending
    key = key_for(name)
    version = put(bucket, key, data, content_type)
    # When its event is handled
    [outcome] = service.handle_notification(notification((key, version)))
    # Then it is rejected for the expected reason
    assert outcome.action == Action.QUARANTINED
    assert outcome.verdict is not None
    assert outcome.verdict.reason == reason
    # And nothing is left at the upload key, not even a delete marker hiding the bytes
    assert versions_of(bucket, key) == []
    assert bucket.list_object_versions(Bucket=BUCKET, Prefix=key).get("DeleteMarkers") is None
    # And the quarantined copy holds the same bytes and type, tagged with the verdict
    quarantined = bucket.get_object(Bucket=BUCKET, Key=f"quarantine/{key}")
    assert quarantined["Body"].read() == data
    assert quarantined["ContentType"] == content_type
    quarantine_tags = tags_of(bucket, f"quarantine/{key}")
    assert quarantine_tags["upload-status"] == "rejected"
    assert quarantine_tags["upload-reason"] == reason.value


def test_oversize_object_is_rejected_without_reading_it(
    settings: Settings, gateway: RecordingGateway, bucket: Any
) -> None:
    # Given a validator whose object limit is 1 KiB, and a 4 KiB PNG
    service = make_service(settings, gateway, MAX_OBJECT_BYTES="1024")
    key = key_for("big.png")
    version = put(bucket, key, corpus.png(64, 64), "image/png")
    # When it is validated
    [outcome] = service.handle_notification(notification((key, version)))
    # Then it is quarantined as too large, and not one byte was read
    assert outcome.verdict is not None
    assert outcome.verdict.reason == Reason.TOO_LARGE
    assert outcome.action == Action.QUARANTINED
    assert gateway.ranges == []


def test_delete_action_removes_rejects_without_a_copy(
    settings: Settings, gateway: RecordingGateway, bucket: Any
) -> None:
    service = make_service(settings, gateway, QUARANTINE_ACTION="delete")
    key = key_for("page.jpg")
    version = put(bucket, key, corpus.HTML_PAGE, "image/jpeg")
    [outcome] = service.handle_notification(notification((key, version)))
    assert outcome.action == Action.DELETED
    assert versions_of(bucket, key) == []
    assert bucket.list_objects_v2(Bucket=BUCKET, Prefix="quarantine/").get("KeyCount") == 0


def test_rejects_too_large_to_copy_in_one_request_are_deleted(
    service: ValidationService, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given CopyObject's 5 GiB single-request limit (scaled down to 10 bytes here)
    monkeypatch.setattr(validation, "S3_MAX_COPY_BYTES", 10)
    key = key_for("page.jpg")
    version = put(bucket, key, corpus.HTML_PAGE, "image/jpeg")
    # When a larger reject is handled / Then it is deleted, since it cannot be moved
    [outcome] = service.handle_notification(notification((key, version)))
    assert outcome.action == Action.DELETED
    assert versions_of(bucket, key) == []


def test_existing_tags_are_kept(service: ValidationService, bucket: Any) -> None:
    # Given an upload that a malware scanner has tagged already
    key = key_for("photo.png")
    scanner = {"GuardDutyMalwareScanStatus": "NO_THREATS_FOUND", "team": "web"}
    version = put(bucket, key, corpus.png(), "image/png", {**PENDING, **scanner})
    # When it is validated
    service.handle_notification(notification((key, version)))
    # Then the scanner's tags are still there next to the verdict
    tags = tags_of(bucket, key, version)
    assert tags["upload-status"] == "valid"
    assert {name: tags[name] for name in scanner} == scanner


def test_verdict_tags_give_way_to_others_when_the_set_is_full(service: ValidationService, bucket: Any) -> None:
    # Given 8 tags from others next to upload-status: room for only 2 of the verdict's 6
    key = key_for("photo.png")
    others = {f"other-{index}": str(index) for index in range(8)}
    version = put(bucket, key, corpus.png(), "image/png", {**PENDING, **others})
    # When it is validated
    service.handle_notification(notification((key, version)))
    # Then every other tag is kept, with the status and the reason
    assert tags_of(bucket, key, version) == {**others, "upload-status": "valid", "upload-reason": "ok"}


def test_valid_object_with_no_room_for_its_status_stays_untagged(service: ValidationService, bucket: Any) -> None:
    # Given an object carrying 10 tags of others (none of them ours)
    key = key_for("photo.png")
    others = {f"other-{index}": str(index) for index in range(10)}
    version = put(bucket, key, corpus.png(), "image/png", others)
    # When it is validated
    [outcome] = service.handle_notification(notification((key, version)))
    # Then it is reported untaggable and its tags are untouched (so reads stay denied)
    assert outcome.action == Action.UNTAGGABLE
    assert tags_of(bucket, key, version) == others


def test_reject_with_no_room_for_its_status_is_still_quarantined(service: ValidationService, bucket: Any) -> None:
    key = key_for("page.jpg")
    others = {f"other-{index}": str(index) for index in range(10)}
    version = put(bucket, key, corpus.HTML_PAGE, "image/jpeg", others)
    [outcome] = service.handle_notification(notification((key, version)))
    assert outcome.action == Action.QUARANTINED
    assert versions_of(bucket, key) == []
    assert tags_of(bucket, f"quarantine/{key}") == others


def test_merge_tags_replaces_our_stale_tags_and_keeps_foreign_ones() -> None:
    existing = {"upload-status": "pending", "upload-width": "1", "scanner": "clean"}
    ours = {"upload-status": "valid", "upload-reason": "ok"}
    assert merge_tags(existing, ours) == {"scanner": "clean", "upload-status": "valid", "upload-reason": "ok"}


# --------------------------------------------------------------------------- events and idempotency


def test_every_record_of_an_event_is_validated(service: ValidationService, bucket: Any) -> None:
    # Given two uploads reported in one notification
    good, bad = key_for("a.png"), key_for("b.jpg")
    good_version = put(bucket, good, corpus.png(), "image/png")
    bad_version = put(bucket, bad, corpus.HTML_PAGE, "image/jpeg")
    # When it is handled
    outcomes = service.handle_notification(notification((good, good_version), (bad, bad_version)))
    # Then both records were acted on
    assert [outcome.action for outcome in outcomes] == [Action.TAGGED_VALID, Action.QUARANTINED]


@pytest.mark.parametrize(
    "name",
    ["my holiday photo.png", "été + hiver 100%.png", "日本語の写真.png", "a+b=c&d.png", "sp%20ace.png"],
)
def test_url_encoded_keys_are_decoded(service: ValidationService, bucket: Any, name: str) -> None:
    # Given an object whose key has spaces, '+', '%' or non-ASCII characters
    key = key_for(name)
    version = put(bucket, key, corpus.png(), "image/png")
    # When S3's URL-encoded form of the key arrives
    [outcome] = service.handle_notification(notification((key, version)))
    # Then the exact key was found and tagged
    assert outcome.key == key
    assert outcome.action == Action.TAGGED_VALID
    assert tags_of(bucket, key, version)["upload-status"] == "valid"


def test_duplicate_delivery_of_a_valid_object_changes_nothing(
    service: ValidationService, bucket: Any, gateway: RecordingGateway
) -> None:
    key = key_for("photo.png")
    version = put(bucket, key, corpus.png(), "image/png")
    event = notification((key, version))
    service.handle_notification(event)
    tags_after_first = tags_of(bucket, key, version)
    reads_after_first = list(gateway.ranges)
    # When the same event arrives again
    [outcome] = service.handle_notification(event)
    # Then nothing is read or written again
    assert outcome.action == Action.ALREADY_DONE
    assert gateway.ranges == reads_after_first
    assert tags_of(bucket, key, version) == tags_after_first


def test_duplicate_delivery_of_a_reject_does_no_second_quarantine(service: ValidationService, bucket: Any) -> None:
    key = key_for("page.jpg")
    version = put(bucket, key, corpus.HTML_PAGE, "image/jpeg")
    event = notification((key, version))
    service.handle_notification(event)
    # When the event arrives a second time (as emulators do for one multipart completion)
    [outcome] = service.handle_notification(event)
    # Then the version is simply gone, and the quarantine holds one copy
    assert outcome.action == Action.GONE
    assert len(versions_of(bucket, f"quarantine/{key}")) == 1


def test_interrupted_quarantine_is_finished_without_inspecting_again(
    service: ValidationService, bucket: Any, gateway: RecordingGateway
) -> None:
    # Given a reject tagged by an earlier attempt that stopped before moving it
    key = key_for("page.jpg")
    verdict = {"upload-status": "rejected", "upload-reason": "active-content"}
    version = put(bucket, key, corpus.HTML_PAGE, "image/jpeg", verdict)
    # When the event is redelivered
    [outcome] = service.handle_notification(notification((key, version)))
    # Then the move is completed from the recorded verdict, with no byte read
    assert outcome.action == Action.QUARANTINED
    assert gateway.ranges == []
    assert versions_of(bucket, key) == []
    assert tags_of(bucket, f"quarantine/{key}") == verdict


def test_object_deleted_before_the_event_arrives_is_acknowledged(service: ValidationService, bucket: Any) -> None:
    key = key_for("photo.png")
    version = put(bucket, key, corpus.png(), "image/png")
    bucket.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    [outcome] = service.handle_notification(notification((key, version)))
    assert outcome.action == Action.GONE


def test_object_deleted_while_being_read_is_acknowledged(
    service: ValidationService, gateway: RecordingGateway, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_for("photo.png")
    version = put(bucket, key, corpus.png(), "image/png")

    def vanished(*_: object, **__: object) -> bytes:
        raise NotFound("gone")

    monkeypatch.setattr(gateway, "get_range", vanished)
    [outcome] = service.handle_notification(notification((key, version)))
    assert outcome.action == Action.GONE


def test_storage_errors_propagate_so_the_message_is_retried(
    service: ValidationService, gateway: RecordingGateway, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_for("photo.png")
    version = put(bucket, key, corpus.png(), "image/png")

    def throttled(*_: object, **__: object) -> None:
        raise UpstreamError("slow down", code="StorageError")

    monkeypatch.setattr(gateway, "put_tags", throttled)
    with pytest.raises(UpstreamError):
        service.handle_notification(notification((key, version)))
    assert tags_of(bucket, key, version) == PENDING


def test_only_the_version_in_the_event_is_judged(service: ValidationService, bucket: Any) -> None:
    # Given a bad first version and a good second version of one key
    key = key_for("photo.png")
    bad = put(bucket, key, corpus.png()[:100], "image/png")
    good = put(bucket, key, corpus.png(), "image/png")
    # When the first version's (late) event arrives
    [outcome] = service.handle_notification(notification((key, bad)))
    # Then only that version is quarantined; the newer one is untouched and still pending
    assert outcome.action == Action.QUARANTINED
    assert versions_of(bucket, key) == [good]
    assert tags_of(bucket, key, good) == PENDING


@pytest.mark.parametrize(
    ("key", "bucket_name"),
    [
        ("quarantine/uploads/alice/x/a.png", BUCKET),
        ("elsewhere/a.png", BUCKET),
        ("uploads/alice/x/a.png", "another-bucket"),
    ],
)
def test_records_outside_the_validated_bucket_and_prefixes_are_ignored(
    service: ValidationService, gateway: RecordingGateway, key: str, bucket_name: str
) -> None:
    [outcome] = service.handle_notification(notification((key, "v1"), bucket=bucket_name))
    assert outcome.action == Action.IGNORED
    assert gateway.ranges == []


def test_s3_test_event_and_other_event_types_yield_nothing() -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET, "RequestId": "r"}
    assert parse_notification(test_event) == []
    assert parse_notification(notification((key_for("a.png"), "v"), event="ObjectRemoved:Delete")) == []


def test_parse_notification_decodes_keys_and_versions() -> None:
    body = json.loads(json.dumps(notification(("uploads/a b+c.png", "v1"), ("uploads/d.png", None))))
    assert parse_notification(body) == [
        ObjectCreated(BUCKET, "uploads/a b+c.png", "v1", "ObjectCreated:Put"),
        ObjectCreated(BUCKET, "uploads/d.png", None, "ObjectCreated:Put"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"hello": "world"},
        {"Records": "nope"},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]},
    ],
)
def test_malformed_notifications_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidNotification):
        parse_notification(body)


# --------------------------------------------------------------------------- bounded reads


def test_bytes_read_are_bounded_whatever_the_object_size(
    service: ValidationService, gateway: RecordingGateway, bucket: Any
) -> None:
    # Given a 24 MiB PNG (a valid header, a huge image data chunk, the end chunk)
    start, filler, end = corpus.png_with_idat(24 * 1024 * 1024)
    data = start + filler * (24 * 1024) + end
    size = len(data)
    key = key_for("huge.png")
    version = put(bucket, key, data, "image/png")
    # When it is validated
    [outcome] = service.handle_notification(notification((key, version)))
    # Then it is valid, and only the first 64 KiB and the last 8 KiB were asked for
    assert outcome.action == Action.TAGGED_VALID
    assert gateway.ranges == [(0, 64 * 1024 - 1), (size - 8 * 1024, size - 1)]
    assert outcome.bytes_read == 72 * 1024


def test_header_past_the_first_read_costs_one_bounded_read_more(
    service: ValidationService, gateway: RecordingGateway, bucket: Any
) -> None:
    # Given a JPEG whose ICC profile pushes the frame header past the first 64 KiB
    # (and whose noisy 2000 x 1500 picture makes it longer than the 1 MiB the prefix may grow to)
    data = corpus.jpeg(2000, 1500, icc_profile_bytes=200_000)
    size = len(data)
    assert size > 1024 * 1024
    key = key_for("profile.jpg")
    version = put(bucket, key, data, "image/jpeg")
    # When it is validated
    [outcome] = service.handle_notification(notification((key, version)))
    # Then the prefix was extended once, up to 1 MiB, and the tail read as usual
    assert outcome.action == Action.TAGGED_VALID
    assert gateway.ranges == [(0, 65535), (65536, 1024 * 1024 - 1), (size - 8192, size - 1)]


def test_small_object_is_read_in_one_request(
    service: ValidationService, gateway: RecordingGateway, bucket: Any
) -> None:
    data = corpus.png()
    key = key_for("small.png")
    version = put(bucket, key, data, "image/png")
    service.handle_notification(notification((key, version)))
    assert gateway.ranges == [(0, len(data) - 1)]


class RangeIgnoringGateway(RecordingGateway):
    """A server that answers every ranged GET with the whole object (MiniStack on versioned GETs)."""

    def get_range(self, key: str, start: int, end: int, version_id: str | None = None) -> bytes:
        self.ranges.append((start, end))
        return S3Gateway.get_range(self, key, 0, 1 << 40, version_id)


def test_a_server_ignoring_range_still_gets_the_right_verdict(settings: Settings, bucket: Any) -> None:
    # Given a storage server that ignores Range, and a PNG longer than the prefix read
    gateway = RangeIgnoringGateway(settings, bucket)
    service = make_service(settings, gateway, INSPECT_HEAD_BYTES="1024", INSPECT_TAIL_BYTES="64")
    data = corpus.png(300, 200)
    key = key_for("photo.png")
    version = put(bucket, key, data, "image/png")
    # When it is validated
    [outcome] = service.handle_notification(notification((key, version)))
    # Then the head and the tail were sliced from the whole reply: valid, with the bytes asked for
    assert outcome.action == Action.TAGGED_VALID
    assert gateway.ranges == [(0, 1023), (len(data) - 64, len(data) - 1)]
    assert outcome.bytes_read == 1024 + 64
