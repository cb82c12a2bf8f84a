"""The validation service against moto's S3: tags, quarantine, idempotency, one streamed read."""

from __future__ import annotations

import io
from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import quote_plus

import pytest
from PIL import Image

from tests import big_images
from tests import image_corpus as corpus
from upload_core import validation
from upload_core.errors import NotFound, UpstreamError
from upload_core.formats.errors import Reason
from upload_core.image_types import GIF, IMAGE_TYPES, ImageType
from upload_core.inspection import walker_for
from upload_core.registry import registry_for
from upload_core.s3 import S3Gateway
from upload_core.settings import Settings
from upload_core.uploads import UploadService
from upload_core.validation import (
    Action,
    ObjectCreated,
    Outcome,
    ValidationService,
    merge_tags,
)
from upload_core.validator_settings import ValidatorSettings

BUCKET = "unit-uploads"
PENDING = {"upload-status": "pending"}
VALIDATOR_ENV = {
    "INSPECT_HEAD_BYTES": str(64 * 1024),
    "MAX_FRAMES": "50",
    "MAX_IMAGE_PIXELS": "40000000",
}


class RecordingGateway(S3Gateway):
    """The real gateway on moto, remembering every GET and the bytes it delivered."""

    def __init__(self, settings: Settings, client: Any) -> None:
        super().__init__(settings, client)
        self.gets: list[tuple[str, str | None]] = []
        self.bytes_delivered = 0

    def iter_object(self, key: str, version_id: str | None = None, chunk_size: int = 1 << 20) -> Generator[bytes]:
        self.gets.append((key, version_id))
        for chunk in super().iter_object(key, version_id, chunk_size):
            self.bytes_delivered += len(chunk)
            yield chunk


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


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


def handle(service: ValidationService, *objects: tuple[str, str | None], bucket: str = BUCKET) -> list[Outcome]:
    """Every record of one event, as the handler hands them over (decoded keys, plain values)."""
    return [
        service.validate(ObjectCreated(bucket, key, version_id, "ObjectCreated:Put")) for key, version_id in objects
    ]


def tags_of(client: Any, key: str, version_id: str | None = None) -> dict[str, str]:
    params = {"Bucket": BUCKET, "Key": key, **({"VersionId": version_id} if version_id else {})}
    return {tag["Key"]: tag["Value"] for tag in client.get_object_tagging(**params)["TagSet"]}


def versions_of(client: Any, key: str) -> list[str]:
    listing = client.list_object_versions(Bucket=BUCKET, Prefix=key)
    return [item["VersionId"] for item in listing.get("Versions", []) if item["Key"] == key]


def key_for(name: str) -> str:
    return f"uploads/alice/0123456789abcdef0123456789abcdef/{name}"


# --------------------------------------------------------------------------- verdicts and tags


def requires_walker(image_type: ImageType) -> pytest.MarkDecorator:
    """GIF, WebP and AVIF walkers are written on another branch: their cases run once they exist."""
    return pytest.mark.skipif(walker_for(image_type) is None, reason=f"no {image_type.mime} walker in this build")


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(item, id=item.name, marks=requires_walker(IMAGE_TYPES[item.content_type]))
        for item in corpus.valid_corpus()
    ],
)
def test_valid_files_are_tagged_valid_with_type_and_dimensions(
    service: ValidationService, bucket: Any, item: corpus.CorpusFile
) -> None:
    # Given a valid image uploaded as pending
    key = key_for(item.name)
    version = put(bucket, key, item.data, item.content_type)
    # When its ObjectCreated event is handled
    [outcome] = handle(service, (key, version))
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
    pytest.param(
        "bomb.png", corpus.png_bomb(20_000, 20_000), "image/png", Reason.TOO_MANY_PIXELS, id="decompression-bomb"
    ),
    pytest.param(
        "frames.gif",
        corpus.tiny_frames_gif(51),
        "image/gif",
        Reason.TOO_MANY_FRAMES,
        id="too-many-frames",
        marks=requires_walker(GIF),
    ),
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
    [outcome] = handle(service, (key, version))
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
    [outcome] = handle(service, (key, version))
    # Then it is quarantined as too large, and not one byte was read
    assert outcome.verdict is not None
    assert outcome.verdict.reason == Reason.TOO_LARGE
    assert outcome.action == Action.QUARANTINED
    assert gateway.gets == []


def test_delete_action_removes_rejects_without_a_copy(
    settings: Settings, gateway: RecordingGateway, bucket: Any
) -> None:
    service = make_service(settings, gateway, QUARANTINE_ACTION="delete")
    key = key_for("page.jpg")
    version = put(bucket, key, corpus.HTML_PAGE, "image/jpeg")
    [outcome] = handle(service, (key, version))
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
    [outcome] = handle(service, (key, version))
    assert outcome.action == Action.DELETED
    assert versions_of(bucket, key) == []


def test_existing_tags_are_kept(service: ValidationService, bucket: Any) -> None:
    # Given an upload that a malware scanner has tagged already
    key = key_for("photo.png")
    scanner = {"GuardDutyMalwareScanStatus": "NO_THREATS_FOUND", "team": "web"}
    version = put(bucket, key, corpus.png(), "image/png", {**PENDING, **scanner})
    # When it is validated
    handle(service, (key, version))
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
    handle(service, (key, version))
    # Then every other tag is kept, with the status and the reason
    assert tags_of(bucket, key, version) == {**others, "upload-status": "valid", "upload-reason": "ok"}


def test_valid_object_with_no_room_for_its_status_stays_untagged(service: ValidationService, bucket: Any) -> None:
    # Given an object carrying 10 tags of others (none of them ours)
    key = key_for("photo.png")
    others = {f"other-{index}": str(index) for index in range(10)}
    version = put(bucket, key, corpus.png(), "image/png", others)
    # When it is validated
    [outcome] = handle(service, (key, version))
    # Then it is reported untaggable and its tags are untouched (so reads stay denied)
    assert outcome.action == Action.UNTAGGABLE
    assert tags_of(bucket, key, version) == others


def test_reject_with_no_room_for_its_status_is_still_quarantined(service: ValidationService, bucket: Any) -> None:
    key = key_for("page.jpg")
    others = {f"other-{index}": str(index) for index in range(10)}
    version = put(bucket, key, corpus.HTML_PAGE, "image/jpeg", others)
    [outcome] = handle(service, (key, version))
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
    outcomes = handle(service, (good, good_version), (bad, bad_version))
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
    [outcome] = handle(service, (key, version))
    # Then the exact key was found and tagged
    assert outcome.key == key
    assert outcome.action == Action.TAGGED_VALID
    assert tags_of(bucket, key, version)["upload-status"] == "valid"


def test_duplicate_delivery_of_a_valid_object_changes_nothing(
    service: ValidationService, bucket: Any, gateway: RecordingGateway
) -> None:
    key = key_for("photo.png")
    version = put(bucket, key, corpus.png(), "image/png")
    service.validate(event := ObjectCreated(BUCKET, key, version, "ObjectCreated:Put"))
    tags_after_first = tags_of(bucket, key, version)
    reads_after_first = list(gateway.gets)
    # When the same event arrives again
    [outcome] = [service.validate(event)]
    # Then nothing is read or written again
    assert outcome.action == Action.ALREADY_DONE
    assert gateway.gets == reads_after_first
    assert tags_of(bucket, key, version) == tags_after_first


def test_duplicate_delivery_of_a_reject_does_no_second_quarantine(service: ValidationService, bucket: Any) -> None:
    key = key_for("page.jpg")
    version = put(bucket, key, corpus.HTML_PAGE, "image/jpeg")
    service.validate(event := ObjectCreated(BUCKET, key, version, "ObjectCreated:Put"))
    # When the event arrives a second time (as emulators do for one multipart completion)
    [outcome] = [service.validate(event)]
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
    [outcome] = handle(service, (key, version))
    # Then the move is completed from the recorded verdict, with no byte read
    assert outcome.action == Action.QUARANTINED
    assert gateway.gets == []
    assert versions_of(bucket, key) == []
    assert tags_of(bucket, f"quarantine/{key}") == verdict


def test_object_deleted_before_the_event_arrives_is_acknowledged(service: ValidationService, bucket: Any) -> None:
    key = key_for("photo.png")
    version = put(bucket, key, corpus.png(), "image/png")
    bucket.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    [outcome] = handle(service, (key, version))
    assert outcome.action == Action.GONE


def test_object_deleted_while_being_read_is_acknowledged(
    service: ValidationService, gateway: RecordingGateway, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_for("photo.png")
    version = put(bucket, key, corpus.png(), "image/png")

    def vanished(*_: object, **__: object) -> Generator[bytes]:
        raise NotFound("gone")
        yield b""

    monkeypatch.setattr(gateway, "iter_object", vanished)
    [outcome] = handle(service, (key, version))
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
        handle(service, (key, version))
    assert tags_of(bucket, key, version) == PENDING


def test_only_the_version_in_the_event_is_judged(service: ValidationService, bucket: Any) -> None:
    # Given a bad first version and a good second version of one key
    key = key_for("photo.png")
    bad = put(bucket, key, corpus.png()[:100], "image/png")
    good = put(bucket, key, corpus.png(), "image/png")
    # When the first version's (late) event arrives
    [outcome] = handle(service, (key, bad))
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
    [outcome] = handle(service, (key, "v1"), bucket=bucket_name)
    assert outcome.action == Action.IGNORED
    assert gateway.gets == []


# --------------------------------------------------------------------------- one streamed read


def test_a_large_valid_object_is_read_once_whole(
    service: ValidationService, gateway: RecordingGateway, bucket: Any
) -> None:
    # Given a 6 MiB valid PNG
    image = big_images.big_png(6 << 20, width=1024)
    key = key_for("huge.png")
    version = put(bucket, key, image.data(), "image/png")
    # When it is validated
    [outcome] = handle(service, (key, version))
    # Then it is valid, read by one GET of its version, every byte exactly once
    assert outcome.action == Action.TAGGED_VALID
    assert gateway.gets == [(key, version)]
    assert outcome.bytes_read == gateway.bytes_delivered == image.size
    assert tags_of(bucket, key, version)["upload-height"] == str(image.height)


@pytest.mark.parametrize(
    ("name", "make", "content_type", "reason"),
    [
        pytest.param("zip.png", lambda: corpus.png() + b"PK\x03\x04" + b"x" * 100, "image/png", Reason.TRAILING_DATA),
        pytest.param("zip.jpg", lambda: corpus.jpeg() + b"PK\x03\x04\xff\xd9", "image/jpeg", Reason.TRAILING_DATA),
        pytest.param(
            "iend.png",
            lambda: corpus.png() + b"\x00\x00\x00\x00IEND\xaeB`\x82<script>alert(1)</script>",
            "image/png",
            Reason.TRAILING_DATA,
        ),
    ],
)
def test_appended_payloads_are_quarantined(  # noqa: PLR0917 - one case's parameters
    service: ValidationService, bucket: Any, name: str, make: object, content_type: str, reason: Reason
) -> None:
    key = key_for(name)
    version = put(bucket, key, make(), content_type)  # type: ignore[operator]
    [outcome] = handle(service, (key, version))
    assert outcome.action == Action.QUARANTINED
    assert outcome.verdict is not None
    assert outcome.verdict.reason == reason


def test_a_reject_stops_the_read_early(service: ValidationService, gateway: RecordingGateway, bucket: Any) -> None:
    # Given a 6 MiB PNG damaged in its first megabyte
    data = bytearray(big_images.big_png(6 << 20, width=1024).data())
    data[500_000] ^= 0xFF
    key = key_for("damaged.png")
    version = put(bucket, key, bytes(data), "image/png")
    # When it is validated
    [outcome] = handle(service, (key, version))
    # Then it is quarantined for its checksum, and the GET was closed long before its end
    assert outcome.verdict is not None
    assert outcome.verdict.reason == Reason.BAD_CHECKSUM
    assert outcome.bytes_read == gateway.bytes_delivered < 4 << 20


def test_indexed_jpeg_trailers_follow_the_setting(settings: Settings, gateway: RecordingGateway, bucket: Any) -> None:
    frames = [Image.effect_noise((40, 30), 20 + seed).convert("RGB") for seed in range(2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "MPO", save_all=True, append_images=frames[1:])
    key = key_for("pair.jpg")
    version = put(bucket, key, buffer.getvalue(), "image/jpeg")
    [strict] = handle(make_service(settings, gateway), (key, version))
    assert strict.verdict is not None
    assert strict.verdict.reason == Reason.TRAILING_DATA
    other_key = key_for("pair-again.jpg")  # a key's second version would be refused as such
    version = put(bucket, other_key, buffer.getvalue(), "image/jpeg")
    [allowed] = handle(make_service(settings, gateway, ALLOW_INDEXED_JPEG_TRAILERS="true"), (other_key, version))
    assert allowed.action == Action.TAGGED_VALID
    assert tags_of(bucket, other_key, version)["upload-frames"] == "2"


def test_a_read_failing_mid_stream_is_retried_not_judged(
    service: ValidationService, gateway: RecordingGateway, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a large valid PNG whose GET fails after its first megabytes (a reset connection)
    key = key_for("flaky.png")
    version = put(bucket, key, big_images.big_png(6 << 20, width=1024).data(), "image/png")
    real_iter_object = gateway.iter_object

    def flaky(key: str, version_id: str | None = None, chunk_size: int = 1 << 20) -> Generator[bytes]:
        for index, chunk in enumerate(real_iter_object(key, version_id, chunk_size)):
            if index == 2:
                raise UpstreamError("the storage service could not be reached", code="StorageUnavailable")
            yield chunk

    monkeypatch.setattr(gateway, "iter_object", flaky)
    # When it is validated / Then the error propagates (the message is retried), nothing is judged
    with pytest.raises(UpstreamError):
        handle(service, (key, version))
    assert tags_of(bucket, key, version) == PENDING
    assert versions_of(bucket, key) == [version]


# --------------------------------------------------------------------------- the registry


def test_a_second_version_under_a_key_is_removed_and_the_file_stays(service: ValidationService, bucket: Any) -> None:
    # Given a key whose first version was validated
    key = key_for("once.png")
    first = put(bucket, key, corpus.png(), "image/png")
    [valid] = handle(service, (key, first))
    assert valid.action == Action.TAGGED_VALID
    # When a replayed form stores a second (valid-looking) version under the same key
    second = put(bucket, key, corpus.png(9, 9), "image/png")
    [refused] = handle(service, (key, second))
    # Then that version is deleted unread, and the first is the key's current, valid object again
    assert refused.action == Action.DELETED and refused.bytes_read == 0
    assert refused.verdict is not None and refused.verdict.reason == Reason.SECOND_VERSION
    versions = bucket.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    assert [v["VersionId"] for v in versions] == [first]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["VersionId"] == first
    # And a redelivery of the first version's event changes nothing
    [again] = handle(service, (key, first))
    assert again.action == Action.ALREADY_DONE


def test_the_verdict_settles_a_forms_reservation_or_releases_it(
    settings: Settings, service: ValidationService, bucket: Any
) -> None:
    registry = registry_for(settings)
    uploads = UploadService(settings, S3Gateway(settings, client=bucket), registry)
    good = uploads.form("alice", filename="good.png", content_type="image/png", size=None)
    bad = uploads.form("alice", filename="bad.png", content_type="image/png", size=None)
    assert registry.usage("alice").uploads_in_flight == 2
    good_body, bad_body = corpus.png(), corpus.png() + b"PK\x05\x06" + bytes(18)
    good_version = put(bucket, good.key, good_body, "image/png")
    bad_version = put(bucket, bad.key, bad_body, "image/png")
    handle(service, (good.key, good_version), (bad.key, bad_version))
    handle(service, (good.key, good_version), (bad.key, bad_version))  # delivered twice
    usage = registry.usage("alice")
    assert (usage.stored_bytes, usage.reserved_bytes, usage.uploads_in_flight) == (len(good_body), 0, 0)


def test_a_rejected_multipart_uploads_bytes_leave_the_usage(
    settings: Settings, service: ValidationService, bucket: Any
) -> None:
    registry = registry_for(settings)
    uploads = UploadService(settings, S3Gateway(settings, client=bucket), registry)
    body = corpus.png() + b"<script>alert(1)</script>"
    started = uploads.start("alice", filename="x.png", content_type="image/png", size=len(body))
    bucket.upload_part(Bucket=BUCKET, Key=started.key, UploadId=started.upload_id, PartNumber=1, Body=body)
    uploads.complete("alice", started.upload_id, started.key)
    assert registry.usage("alice").stored_bytes == len(body)
    version = bucket.head_object(Bucket=BUCKET, Key=started.key)["VersionId"]
    [outcome] = handle(service, (started.key, version))
    assert outcome.verdict is not None and outcome.verdict.reason == Reason.TRAILING_DATA
    handle(service, (started.key, version))
    assert registry.usage("alice").used_bytes == 0
