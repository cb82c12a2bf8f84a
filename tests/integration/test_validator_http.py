"""The validator in the local stack: real objects in the embedded S3, its notifications on the
template's ValidationQueue, the stack's poller invoking the validator function, uploads through
the API over real HTTP."""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from upload_flow import create, put_part, sign

from local.stack import LocalStack
from tests import big_images
from tests import image_corpus as corpus

pytestmark = pytest.mark.integration

SETTLE_SECONDS = 30


def tags_of(s3: Any, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
    params = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    return {tag["Key"]: tag["Value"] for tag in s3.get_object_tagging(**params)["TagSet"]}


def exists(s3: Any, bucket: str, key: str) -> bool:
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))


def settle(stack: LocalStack, s3: Any, bucket: str, key: str) -> dict[str, str] | None:
    """Wait until the object at `key` is judged: its tags once valid, None once it has left."""
    assert stack.events is not None
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        stack.events.drain(timeout=5)
        if not exists(s3, bucket, key):
            return None
        tags = tags_of(s3, bucket, key)
        if tags.get("upload-status") not in (None, "pending"):
            return tags
        time.sleep(0.1)
    pytest.fail(f"{key} was not validated within {SETTLE_SECONDS} s; tags: {tags_of(s3, bucket, key)}")


def upload_through_api(api: Any, data: bytes, filename: str, content_type: str, *, user: str = "vera") -> str:
    """create → sign → PUT the single part → complete, as a browser client does."""
    upload = create(api, data, user=user, filename=filename, contentType=content_type)
    response = put_part(sign(api, upload, [1], user=user)[1], data)
    assert response.status_code == 200, response.text
    done = api.request(
        "POST",
        f"/uploads/{upload['uploadId']}/complete",
        user=user,
        json={"key": upload["key"], "parts": [{"partNumber": 1, "etag": response.headers["ETag"]}]},
    )
    assert done.status_code == 200, done.text
    return str(upload["key"])


def test_the_stack_feeds_the_validation_queue_to_the_validator(stack: LocalStack) -> None:
    # Given the stack built from the template / Then the validator polls the template's queue
    # with the template's batch size and partial-failure reporting
    assert stack.events is not None
    (subscription,) = [s for s in stack.events.subscriptions if s.function_logical_id == "ValidatorFunction"]
    batch_size = int(stack.template.parameters()["ValidatorBatchSize"])  # the Parameter's default
    assert (subscription.kind, subscription.batch_size, subscription.report_batch_item_failures) == (
        "sqs",
        batch_size,
        True,
    )
    assert subscription.queue_url == stack.resource_values["ValidationQueue"]


def test_an_upload_through_the_api_ends_tagged_valid(stack: LocalStack, api: Any, s3: Any, bucket: str) -> None:
    # Given a real JPEG whose ICC profile pushes its frame header past the validator's first read
    data = corpus.jpeg(320, 240, icc_profile_bytes=150_000)
    # When it is uploaded through the API (multipart: create, sign, PUT, complete)
    key = upload_through_api(api, data, "holiday photo.jpg", "image/jpeg")
    # Then within seconds it is tagged valid with its type and dimensions, and still in place
    tags = settle(stack, s3, bucket, key)
    assert tags is not None
    assert tags["upload-status"] == "valid"
    assert tags["upload-reason"] == "ok"
    assert (tags["upload-type"], tags["upload-width"], tags["upload-height"]) == ("image/jpeg", "320", "240")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_a_rejected_upload_is_moved_to_quarantine(stack: LocalStack, api: Any, s3: Any, bucket: str) -> None:
    # Given an HTML page uploaded through the API as a JPEG
    key = upload_through_api(api, corpus.HTML_PAGE, "photo.jpg", "image/jpeg")
    # When the validator has run
    assert settle(stack, s3, bucket, key) is None
    # Then no version is left at the upload key, and the quarantine holds it with the reason
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)
    assert [v for v in versions.get("Versions", []) if v["Key"] == key] == []
    quarantined = f"quarantine/{key}"
    assert s3.get_object(Bucket=bucket, Key=quarantined)["Body"].read() == corpus.HTML_PAGE
    tags = tags_of(s3, bucket, quarantined)
    assert (tags["upload-status"], tags["upload-reason"]) == ("rejected", "active-content")
    # And the move did not trigger a second validation: one copy, not validated again
    assert len([v for v in s3.list_object_versions(Bucket=bucket, Prefix=quarantined)["Versions"]]) == 1


def test_a_form_upload_is_validated_too(stack: LocalStack, api: Any, s3: Any, bucket: str) -> None:
    # Given a PNG posted with a presigned form
    data = corpus.png(48, 32)
    response = api.request(
        "POST",
        "/uploads/form",
        user="vera",
        json={"filename": "icon.png", "contentType": "image/png", "size": len(data)},
    )
    assert response.status_code == 201, response.text
    form = response.json()
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("icon.png", data)}, timeout=30)
    assert posted.status_code in (200, 201, 204), posted.text
    # Then it is tagged valid with its dimensions
    tags = settle(stack, s3, bucket, form["key"])
    assert tags is not None
    assert (tags["upload-status"], tags["upload-width"], tags["upload-height"]) == ("valid", "48", "32")


@pytest.mark.parametrize("name", ["my photo + été.png", "100% 日本.png"])
def test_keys_that_need_url_encoding_are_found_and_tagged(stack: LocalStack, s3: Any, bucket: str, name: str) -> None:
    # Given an object written straight to S3 under uploads/ with a key S3 must URL-encode in its event
    key = f"uploads/direct/00000000000000000000000000000001/{name}"
    s3.put_object(Bucket=bucket, Key=key, Body=corpus.png(), ContentType="image/png", Tagging="upload-status=pending")
    # Then the decoded key is validated
    tags = settle(stack, s3, bucket, key)
    assert tags is not None
    assert tags["upload-status"] == "valid"


def test_existing_tags_survive_validation(stack: LocalStack, s3: Any, bucket: str) -> None:
    key = "uploads/direct/00000000000000000000000000000002/scanned.png"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=corpus.animated_png(16, 16, 4),
        ContentType="image/png",
        Tagging="upload-status=pending&GuardDutyMalwareScanStatus=NO_THREATS_FOUND",
    )
    tags = settle(stack, s3, bucket, key)
    assert tags is not None
    assert tags["GuardDutyMalwareScanStatus"] == "NO_THREATS_FOUND"
    assert (tags["upload-status"], tags["upload-frames"]) == ("valid", "4")


def test_objects_outside_the_upload_prefix_are_not_validated(stack: LocalStack, s3: Any, bucket: str) -> None:
    key = "elsewhere/page.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=corpus.HTML_PAGE, ContentType="image/jpeg")
    assert stack.events is not None
    stack.events.drain(timeout=SETTLE_SECONDS)
    # Nothing judged it: it is where it was, with no verdict
    assert exists(s3, bucket, key)
    assert "upload-status" not in tags_of(s3, bucket, key)


def s3_notification(bucket: str, key: str, version_id: str) -> str:
    """The body S3 sends to the queue for one created object (key URL-encoded, '+' for spaces)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-02T10:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": 1, "eTag": "e", "versionId": version_id},
        },
    }
    return json.dumps({"Records": [record]})


def queue_is_empty(stack: LocalStack, queue: str) -> bool:
    attributes = stack.sqs_client().get_queue_attributes(
        QueueUrl=stack.resource_values[queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return not any(int(value) for value in attributes.values())


def test_redelivered_and_late_events_change_nothing(stack: LocalStack, s3: Any, bucket: str) -> None:
    # Given a reject that the validator has already moved to quarantine
    key = "uploads/direct/00000000000000000000000000000003/page one.jpg"
    version = s3.put_object(
        Bucket=bucket, Key=key, Body=corpus.HTML_PAGE, ContentType="image/jpeg", Tagging="upload-status=pending"
    )["VersionId"]
    assert settle(stack, s3, bucket, key) is None
    # When its event is delivered again, next to an event for a version that never existed
    sqs = stack.sqs_client()
    for version_id in (version, "no-such-version"):
        sqs.send_message(
            QueueUrl=stack.resource_values["ValidationQueue"], MessageBody=s3_notification(bucket, key, version_id)
        )
    assert stack.events is not None
    assert stack.events.drain(timeout=SETTLE_SECONDS)
    # Then both were acknowledged (nothing waits for a retry or went to the dead-letter queue)
    assert queue_is_empty(stack, "ValidationQueue")
    assert queue_is_empty(stack, "FailureQueue")
    # And there is still exactly one quarantined copy
    versions = s3.list_object_versions(Bucket=bucket, Prefix=f"quarantine/{key}")["Versions"]
    assert len(versions) == 1


# --------------------------------------------------------------------------- the whole file is proven


def png_with_script_after_a_second_iend() -> bytes:
    return corpus.png(40, 30) + b"\x00\x00\x00\x00IEND\xaeB`\x82<script>alert(document.cookie)</script>"


def jpeg_with_an_appended_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as payload:
        payload.writestr("run.sh", "#!/bin/sh\necho owned\n")
    return corpus.jpeg(64, 48) + archive.getvalue() + b"\xff\xd9"  # ends like a JPEG


def status_of(api: Any, key: str, user: str = "vera") -> requests.Response:
    return api.request("GET", "/objects/status", params={"key": key}, user=user)


def assert_quarantined_and_unreadable(  # noqa: PLR0917 - the stack's fixtures and one case
    stack: LocalStack, api: Any, s3: Any, bucket: str, key: str, reason: str
) -> None:
    assert settle(stack, s3, bucket, key) is None
    # No version of any kind is left at the upload key: a GET of it finds nothing to serve
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    assert [v for v in listing.get("Versions", []) if v["Key"] == key] == []
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_object(Bucket=bucket, Key=key)
    # The quarantined copy carries the verdict (the template's bucket policy lets only the
    # validator read it on AWS; the local bucket has no policy, see docs/validation.md)
    tags = tags_of(s3, bucket, f"quarantine/{key}")
    assert (tags["upload-status"], tags["upload-reason"]) == ("rejected", reason)
    # And its owner is told so, with no way to download it
    body = status_of(api, key).json()
    assert (body["status"], body["reason"], body["quarantined"]) == ("rejected", reason, True)
    assert "download" not in body


@pytest.mark.parametrize(
    ("make", "name", "content_type", "reason"),
    [
        pytest.param(png_with_script_after_a_second_iend, "pic.png", "image/png", "trailing-data", id="png-script"),
        pytest.param(jpeg_with_an_appended_zip, "pic.jpg", "image/jpeg", "trailing-data", id="jpeg-zip"),
    ],
)
def test_a_hostile_multipart_upload_is_quarantined_and_never_readable(  # noqa: PLR0917 - fixtures and one case
    stack: LocalStack, api: Any, s3: Any, bucket: str, make: Any, name: str, content_type: str, reason: str
) -> None:
    key = upload_through_api(api, make(), name, content_type)
    assert_quarantined_and_unreadable(stack, api, s3, bucket, key, reason)


def test_a_hostile_form_upload_is_quarantined_and_never_readable(
    stack: LocalStack, api: Any, s3: Any, bucket: str
) -> None:
    data = png_with_script_after_a_second_iend()
    response = api.request(
        "POST",
        "/uploads/form",
        user="vera",
        json={"filename": "pic.png", "contentType": "image/png", "size": len(data)},
    )
    assert response.status_code == 201, response.text
    form = response.json()
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("pic.png", data)}, timeout=30)
    assert posted.status_code in (200, 201, 204), posted.text
    assert_quarantined_and_unreadable(stack, api, s3, bucket, form["key"], "trailing-data")


BIG_SETTLE_SECONDS = 240


def test_a_valid_200_mib_image_is_tagged_valid(stack: LocalStack, api: Any, s3: Any, bucket: str) -> None:
    # Given a valid 200 MiB PNG (RGBA, 16 bits per channel, written as a stream)
    image = big_images.big_png(200 * 1024 * 1024)
    data = image.data()
    assert len(data) >= 200 * 1000 * 1000
    # When it is uploaded through the API in parts
    upload = create(api, data, user="vera", filename="panorama.png", contentType="image/png")
    numbers = list(range(1, upload["partCount"] + 1))
    signed = sign(api, upload, numbers, user="vera")
    parts = []
    for number in numbers:
        body = data[(number - 1) * upload["partSize"] : number * upload["partSize"]]
        sent = put_part(signed[number], body)
        assert sent.status_code == 200, sent.text
        parts.append({"partNumber": number, "etag": sent.headers["ETag"]})
    done = api.request(
        "POST",
        f"/uploads/{upload['uploadId']}/complete",
        user="vera",
        json={"key": upload["key"], "parts": parts},
    )
    assert done.status_code == 200, done.text
    # Then the validator walks it to its last byte and tags it valid with its dimensions
    assert stack.events is not None
    deadline = time.monotonic() + BIG_SETTLE_SECONDS
    tags = tags_of(s3, bucket, upload["key"])
    while tags.get("upload-status") in (None, "pending") and time.monotonic() < deadline:
        stack.events.drain(timeout=5)
        tags = tags_of(s3, bucket, upload["key"])
    assert (tags["upload-status"], tags["upload-reason"]) == ("valid", "ok")
    assert (tags["upload-width"], tags["upload-height"]) == (str(image.width), str(image.height))
