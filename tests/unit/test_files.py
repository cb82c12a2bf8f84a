"""The caller's files: records written by the validator, listed, fetched with an attachment link,
deleted with every version; verdict events published once per version (moto's S3, DynamoDB and
EventBridge)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import image_corpus as corpus
from upload_core.errors import Conflict, Gone, InvalidRequest, NotFound
from upload_core.files import FileService, attachment_disposition, encode_cursor
from upload_core.registry import FileRecord, FileStatus, Registry, registry_for
from upload_core.s3 import S3Gateway
from upload_core.settings import Settings
from upload_core.uploads import UploadService
from upload_core.validation import ObjectCreated, ValidationService
from upload_core.validator_settings import ValidatorSettings
from upload_core.verdict_events import (
    REJECTED,
    SOURCE,
    VALIDATED,
    EventsUnavailable,
    VerdictEvent,
    VerdictPublisher,
)

BUCKET = "unit-uploads"


class RecordingPublisher(VerdictPublisher):
    def __init__(self) -> None:
        super().__init__("default")
        self.events: list[VerdictEvent] = []

    def publish(self, event: VerdictEvent) -> None:
        self.events.append(event)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def registry(settings: Settings, bucket: Any) -> Registry:
    return registry_for(settings)


@pytest.fixture
def events() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def validator(settings: Settings, bucket: Any, registry: Registry, events: RecordingPublisher) -> ValidationService:
    config = ValidatorSettings.from_env(settings, {})
    return ValidationService(settings, config, S3Gateway(settings, bucket), registry, events)


@pytest.fixture
def files(settings: Settings, bucket: Any, registry: Registry) -> FileService:
    return FileService(settings, S3Gateway(settings, bucket), registry)


def upload(
    settings: Settings, bucket: Any, registry: Registry, owner: str, name: str, *, body: bytes
) -> tuple[str, str]:
    """A form upload whose object arrived: (key, versionId)."""
    form = UploadService(settings, S3Gateway(settings, bucket), registry).form(
        owner, filename=name, content_type="image/png", size=None
    )
    response = bucket.put_object(
        Bucket=BUCKET, Key=form.key, Body=body, ContentType="image/png", Tagging="upload-status=pending"
    )
    return form.key, str(response["VersionId"])


def validate(validator: ValidationService, key: str, version: str) -> None:
    validator.validate(ObjectCreated(BUCKET, key, version, "ObjectCreated:Post"))


def file_id(key: str) -> str:
    return key.split("/")[-2]


BAD_PNG = corpus.png() + b"<script>alert(1)</script>"


def test_a_valid_file_is_listed_and_downloads_as_an_attachment(
    settings: Settings, bucket: Any, registry: Registry, validator: ValidationService, files: FileService
) -> None:
    # Given a form upload whose object arrived
    body = corpus.png()
    key, version = upload(settings, bucket, registry, "alice", "été photo.png", body=body)
    # When the validator judges it
    validate(validator, key, version)
    # Then it is listed as valid, and its link names the version, an attachment and the detected type
    [listed] = files.list("alice", limit=10).files
    assert (listed.file_id, listed.status, listed.size) == (file_id(key), "valid", len(body))
    view = files.get("alice", file_id(key))
    assert view.download is not None
    query = parse_qs(urlsplit(view.download.url).query)
    assert query["versionId"] == [version]
    assert query["response-content-type"] == ["image/png"]
    assert query["response-content-disposition"] == [attachment_disposition(key.rsplit("/", 1)[-1])]


def test_attachment_disposition_escapes_what_a_header_cannot_carry() -> None:
    assert attachment_disposition('a"b;c.png') == "attachment; filename=\"a_b_c.png\"; filename*=UTF-8''a%22b%3Bc.png"
    assert attachment_disposition("猫.png") == "attachment; filename=\"_.png\"; filename*=UTF-8''%E7%8C%AB.png"


def test_a_pending_file_has_no_link_and_a_rejected_one_is_gone(
    settings: Settings, bucket: Any, registry: Registry, validator: ValidationService, files: FileService
) -> None:
    # Given a file whose object arrived but whose verdict is not recorded yet
    key, version = upload(settings, bucket, registry, "alice", "wait.png", body=corpus.png())
    validator._record_file("alice", key, version, S3Gateway(settings, bucket).head_object(key, version))  # type: ignore[arg-type]
    # Then it is pending: 409 NotValidated, and its status says so
    with pytest.raises(Conflict) as pending:
        files.get("alice", file_id(key))
    assert pending.value.code == "NotValidated"
    assert files.describe("alice", file_id(key)).status == "pending"
    # Given a rejected file
    bad, bad_version = upload(settings, bucket, registry, "alice", "bad.png", body=BAD_PNG)
    validate(validator, bad, bad_version)
    # Then it is listed as rejected with its reason, and has no link (410)
    rejected = files.list("alice", limit=10, status=FileStatus.REJECTED).files
    assert [(view.file_id, view.reason) for view in rejected] == [(file_id(bad), "trailing-data")]
    with pytest.raises(Gone):
        files.get("alice", file_id(bad))


def test_another_owner_never_sees_a_file(
    settings: Settings, bucket: Any, registry: Registry, validator: ValidationService, files: FileService
) -> None:
    key, version = upload(settings, bucket, registry, "alice", "mine.png", body=corpus.png())
    validate(validator, key, version)
    assert files.list("mallory", limit=10).files == []
    for attempt in (files.get, files.describe, files.delete):
        with pytest.raises(NotFound):
            attempt("mallory", file_id(key))
    # And the file is untouched
    assert files.get("alice", file_id(key)).status == "valid"


def test_delete_removes_every_version_and_releases_usage_once(
    settings: Settings, bucket: Any, registry: Registry, validator: ValidationService, files: FileService
) -> None:
    # Given a valid file (its bytes count as stored) with a second version and a delete marker
    body = corpus.png()
    key, version = upload(settings, bucket, registry, "alice", "gone.png", body=body)
    validate(validator, key, version)
    assert registry.usage("alice").stored_bytes == len(body)
    bucket.put_object(Bucket=BUCKET, Key=key, Body=b"again")
    bucket.delete_object(Bucket=BUCKET, Key=key)
    # When the owner deletes it, twice
    files.delete("alice", file_id(key))
    files.delete("alice", file_id(key))
    # Then no version or marker is left, the usage is released once, and the file is gone
    listing = bucket.list_object_versions(Bucket=BUCKET, Prefix=key)
    assert listing.get("Versions", []) == [] and listing.get("DeleteMarkers", []) == []
    assert registry.usage("alice").used_bytes == 0
    assert files.list("alice", limit=10).files == []
    with pytest.raises(NotFound):
        files.get("alice", file_id(key))


def test_delete_removes_the_quarantined_copy(
    settings: Settings, bucket: Any, registry: Registry, validator: ValidationService, files: FileService
) -> None:
    key, version = upload(settings, bucket, registry, "alice", "bad.png", body=BAD_PNG)
    validate(validator, key, version)
    quarantined = f"quarantine/{key}"
    assert bucket.list_object_versions(Bucket=BUCKET, Prefix=quarantined).get("Versions")
    files.delete("alice", file_id(key))
    assert bucket.list_object_versions(Bucket=BUCKET, Prefix=quarantined).get("Versions", []) == []


def test_pages_are_newest_first_and_a_forged_cursor_is_refused(
    settings: Settings, bucket: Any, files: FileService
) -> None:
    # Given 7 files created one millisecond apart
    clock = iter(range(1_000, 2_000))
    registry = Registry(settings.registry_table, registry_for(settings)._defaults, clock=lambda: next(clock))
    service = FileService(settings, S3Gateway(settings, bucket), registry)
    ids = [f"{n:032x}" for n in range(7)]
    for n, fid in enumerate(ids):
        status = FileStatus.VALID if n % 2 else FileStatus.REJECTED
        registry.record_file(
            FileRecord("alice", fid, f"uploads/alice/{fid}/f.png", "f.png", 1, "image/png", "v", status, 1_000 + n)
        )
    # When they are listed three at a time
    seen, cursor = [], None
    while True:
        page = service.list("alice", limit=3, cursor=cursor)
        seen += [view.file_id for view in page.files]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Then every file appears once, newest first; a status filter pages too
    assert seen == ids[::-1]
    valid = service.list("alice", limit=2, status=FileStatus.VALID)
    assert [view.file_id for view in valid.files] == [ids[5], ids[3]] and valid.next_cursor
    rest = service.list("alice", limit=2, status=FileStatus.VALID, cursor=valid.next_cursor)
    assert [view.file_id for view in rest.files] == [ids[1]] and rest.next_cursor is None
    # And a cursor that is not one of ours is a clean 400
    for forged in ("not base64!", encode_cursor("../OWNER#bob"), "AAAA"):
        with pytest.raises(InvalidRequest):
            service.list("alice", limit=3, cursor=forged)


def test_one_event_per_version_even_when_notified_twice(
    settings: Settings, bucket: Any, registry: Registry, validator: ValidationService, events: RecordingPublisher
) -> None:
    body = corpus.png()
    good, good_version = upload(settings, bucket, registry, "alice", "good.png", body=body)
    bad, bad_version = upload(settings, bucket, registry, "alice", "bad.png", body=BAD_PNG)
    for _ in range(2):
        validate(validator, good, good_version)
        validate(validator, bad, bad_version)
    assert [(event.key, event.detail_type, event.reason) for event in events.events] == [
        (good, VALIDATED, None),
        (bad, REJECTED, "trailing-data"),
    ]
    assert events.events[0].detail() == {
        "owner": "alice",
        "fileId": file_id(good),
        "key": good,
        "versionId": good_version,
        "size": len(body),
        "contentType": "image/png",
        "reason": None,
    }


class FakeBridge:
    def __init__(self, failed: int = 0) -> None:
        self.failed = failed
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"FailedEntryCount": self.failed, "Entries": []}


def test_the_publisher_puts_one_entry_on_the_configured_bus() -> None:
    bridge = FakeBridge()
    event = VerdictEvent("alice", "f" * 32, "uploads/alice/x/y.png", "v1", 3, "image/png", False, "trailing-data")
    VerdictPublisher("verdicts", client=bridge).publish(event)
    [entry] = bridge.entries
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (SOURCE, REJECTED, "verdicts")
    assert json.loads(entry["Detail"])["reason"] == "trailing-data"


def test_a_refused_event_fails_the_record_and_its_redelivery_publishes_it_once(
    settings: Settings, bucket: Any, registry: Registry
) -> None:
    with pytest.raises(EventsUnavailable):
        VerdictPublisher("default", client=FakeBridge(failed=1)).publish(
            VerdictEvent("a", "f" * 32, "k", "v", 1, "image/png", True, None)
        )
    # Given a bus that refuses the next entry
    bridge = FakeBridge(failed=1)
    s3 = S3Gateway(settings, bucket)
    validator = ValidationService(
        settings, ValidatorSettings.from_env(settings, {}), s3, registry, VerdictPublisher("default", client=bridge)
    )
    body = corpus.png()
    good, good_version = upload(settings, bucket, registry, "alice", "ok.png", body=body)
    bad, bad_version = upload(settings, bucket, registry, "alice", "bad.png", body=BAD_PNG)
    # When each file is validated, Then the record fails (so SQS delivers it again), and the
    # verdict stands all the same: tagged, recorded, a reject quarantined
    for key, version in ((good, good_version), (bad, bad_version)):
        with pytest.raises(EventsUnavailable):
            validate(validator, key, version)
        bridge.failed = 1
    assert registry.file("alice", file_id(good)).status is FileStatus.VALID  # type: ignore[union-attr]
    assert registry.file("alice", file_id(bad)).status is FileStatus.REJECTED  # type: ignore[union-attr]
    assert s3.head_object(bad, bad_version) is None
    assert len(bridge.entries) == 2  # one refused attempt each
    # When the messages come back while the bus works again
    bridge.failed = 0
    judged: list[str] = []
    original = validator._inspect

    def inspect(key: str, version_id: str | None, head: Any) -> Any:
        judged.append(key)
        return original(key, version_id, head)

    validator._inspect = inspect  # type: ignore[method-assign]
    validate(validator, good, good_version)
    validate(validator, bad, bad_version)  # gone from its key (quarantined): still published
    # Then each event is published, without judging the objects again
    accepted = [json.loads(entry["Detail"]) | {"type": entry["DetailType"]} for entry in bridge.entries[2:]]
    assert [(event["key"], event["type"], event["reason"]) for event in accepted] == [
        (good, VALIDATED, None),
        (bad, REJECTED, "trailing-data"),
    ]
    assert accepted[0]["size"] == len(body) and accepted[0]["versionId"] == good_version
    assert judged == []
    # And a further duplicate of either publishes nothing
    validate(validator, good, good_version)
    validate(validator, bad, bad_version)
    assert len(bridge.entries) == 4


def test_a_duplicate_handled_while_the_event_is_being_published_publishes_nothing(
    settings: Settings, bucket: Any, registry: Registry, events: RecordingPublisher
) -> None:
    # Given a verdict recorded with its event pending, which one call has claimed
    key, version = upload(settings, bucket, registry, "alice", "ok.png", body=corpus.png())
    event = VerdictEvent("alice", file_id(key), key, version, 3, "image/png", True, None)
    registry.claim_version(key, version, 3)
    assert registry.record_verdict(key, version, "valid", "ok", event=event.to_json())
    assert registry.claim_event(key, version, lease_seconds=60) == event.to_json()
    # Then nobody else gets it while the claim holds
    assert registry.claim_event(key, version, lease_seconds=60) is None
    # When the claimant gives it back (the bus refused it), the next call gets it
    assert registry.release_event(key, version)
    assert VerdictEvent.from_json(registry.claim_event(key, version, lease_seconds=60) or "") == event
    # And once published, it is gone for good
    assert registry.event_published(key, version)
    assert registry.claim_event(key, version, lease_seconds=60) is None
    assert not registry.event_published(key, version)
