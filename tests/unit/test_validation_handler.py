"""The validator function's handler: SQS batches with partial failures, direct S3 events, sample events."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.parser.models import S3Model
from lambda_fakes import FakeContext, s3_record, sqs_message

import redelivery
import validator_handler
from tests import image_corpus as corpus
from upload_core.errors import UpstreamError
from upload_core.s3 import S3Gateway
from upload_core.settings import Settings
from upload_core.validation import ObjectCreated, ValidationService
from upload_core.validator_settings import ValidatorSettings
from upload_core.verdict_events import EventsUnavailable
from validator_events import ValidationMessage, created_objects

EVENTS = Path(__file__).resolve().parents[2] / "events"
BUCKET = "unit-uploads"
KEY = "uploads/alice/0123456789abcdef0123456789abcdef/photo one.png"


def use_bucket(monkeypatch: pytest.MonkeyPatch, client: Any, bucket_name: str = BUCKET) -> S3Gateway:
    """The handler's service, on moto's client and the given bucket; returns its gateway."""
    settings = dataclasses.replace(Settings.from_env(), bucket_name=bucket_name)
    gateway = S3Gateway(settings, client)
    service = ValidationService(settings, ValidatorSettings.from_env(settings, {}), gateway)
    monkeypatch.setattr(validator_handler, "service", lambda: service)
    return gateway


def put_png(client: Any, key: str = KEY, bucket_name: str = BUCKET, data: bytes | None = None) -> str:
    response = client.put_object(
        Bucket=bucket_name, Key=key, Body=data or corpus.png(), ContentType="image/png", Tagging="upload-status=pending"
    )
    return str(response["VersionId"])


def s3_body(key: str, version_id: str, bucket_name: str = BUCKET) -> dict[str, Any]:
    return {"Records": [s3_record(key, version_id, bucket_name)]}


def status_of(client: Any, key: str, version_id: str, bucket_name: str = BUCKET) -> str | None:
    tags = client.get_object_tagging(Bucket=bucket_name, Key=key, VersionId=version_id)["TagSet"]
    return next((tag["Value"] for tag in tags if tag["Key"] == "upload-status"), None)


def test_batch_reports_only_the_failed_messages(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    # Given a batch of a good notification, S3's test event and a message that is not JSON
    use_bucket(monkeypatch, bucket)
    version = put_png(bucket)
    good = sqs_message(json.dumps(s3_body(KEY, version)))
    test_event = sqs_message(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}))
    broken = sqs_message("{not json")
    # When the handler runs
    response = validator_handler.lambda_handler({"Records": [good, test_event, broken]}, lambda_context)
    # Then only the broken message is handed back for a retry, and the good one was validated
    assert response == {"batchItemFailures": [{"itemIdentifier": broken["messageId"]}]}
    assert status_of(bucket, KEY, version) == "valid"


def test_a_storage_failure_fails_only_its_message_and_a_vanished_object_is_acknowledged(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    # Given three notifications: a good object, a version deleted before its event arrived, and
    # an object whose tags S3 refuses to return (throttling, say)
    gateway = use_bucket(monkeypatch, bucket)
    version = put_png(bucket)
    gone_key, failing_key = KEY.replace("one", "two"), KEY.replace("one", "three")
    gone_version = put_png(bucket, gone_key)
    bucket.delete_object(Bucket=BUCKET, Key=gone_key, VersionId=gone_version)
    failing_version = put_png(bucket, failing_key)
    real_get_tags = gateway.get_tags

    def get_tags(key: str, version_id: str | None = None) -> dict[str, str]:
        if key == failing_key:
            raise UpstreamError("the storage service refused the request", code="StorageError")
        return real_get_tags(key, version_id)

    monkeypatch.setattr(gateway, "get_tags", get_tags)
    messages = [
        sqs_message(json.dumps(s3_body(KEY, version))),
        sqs_message(json.dumps(s3_body(gone_key, gone_version))),
        sqs_message(json.dumps(s3_body(failing_key, failing_version))),
    ]
    # When the handler runs
    response = validator_handler.lambda_handler({"Records": messages}, lambda_context)
    # Then only the failing message goes back to the queue; the vanished one is not retried
    assert response == {"batchItemFailures": [{"itemIdentifier": messages[2]["messageId"]}]}
    assert status_of(bucket, KEY, version) == "valid"
    assert status_of(bucket, failing_key, failing_version) == "pending"


def test_direct_s3_invocation_is_handled(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    use_bucket(monkeypatch, bucket)
    version = put_png(bucket)
    assert validator_handler.lambda_handler(s3_body(KEY, version), lambda_context) == {}
    assert status_of(bucket, KEY, version) == "valid"


def test_sample_sqs_event_is_accepted(
    s3_client: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    # Given the sample event (for `sam local invoke ValidatorFunction -e events/validator-s3-put.json`)
    event = json.loads((EVENTS / "validator-s3-put.json").read_text(encoding="utf-8"))
    body = json.loads(event["Records"][0]["body"])
    record = body["Records"][0]
    bucket_name = record["s3"]["bucket"]["name"]
    assert record["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    # And its object in a versioned bucket of that name (moto picks its own version ids)
    s3_client.create_bucket(Bucket=bucket_name)
    s3_client.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
    key = "uploads/user-123/8f14e45fceea167a5a36dedd4bea2543/Summer holiday été 2026.jpg"
    response = s3_client.put_object(Bucket=bucket_name, Key=key, Body=corpus.jpeg(), ContentType="image/jpeg")
    use_bucket(monkeypatch, s3_client, bucket_name)
    # When the sample runs as it is, its version id is unknown: acknowledged, not retried
    assert validator_handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    # And with the stored version's id, the decoded key is found and tagged valid
    record["s3"]["object"]["versionId"] = response["VersionId"]
    event["Records"][0]["body"] = json.dumps(body)
    assert validator_handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert status_of(s3_client, key, response["VersionId"], bucket_name) == "valid"


def test_sample_direct_event_is_accepted(
    s3_client: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    event = json.loads((EVENTS / "validator-s3-direct.json").read_text(encoding="utf-8"))
    record = event["Records"][0]
    bucket_name = record["s3"]["bucket"]["name"]
    s3_client.create_bucket(Bucket=bucket_name)
    s3_client.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
    version = put_png(s3_client, record["s3"]["object"]["key"], bucket_name)
    record["s3"]["object"]["versionId"] = version
    use_bucket(monkeypatch, s3_client, bucket_name)
    assert validator_handler.lambda_handler(event, lambda_context) == {}
    assert status_of(s3_client, record["s3"]["object"]["key"], version, bucket_name) == "valid"


# --------------------------------------------------------------------------- event parsing at the edge


def test_records_become_plain_values_with_decoded_keys() -> None:
    # Given a notification with an encoded key, a record without version, and a delete record
    notification = S3Model.model_validate(
        {
            "Records": [
                s3_record("uploads/a b+c été.png", "v1"),
                s3_record("uploads/d.png", None),
                s3_record("uploads/e.png", "v2", event="ObjectRemoved:Delete"),
            ]
        }
    )
    # When it is turned into records for the core / Then keys are decoded, deletes are left out
    assert created_objects(notification) == [
        ObjectCreated(BUCKET, "uploads/a b+c été.png", "v1", "ObjectCreated:CompleteMultipartUpload", 1234),
        ObjectCreated(BUCKET, "uploads/d.png", None, "ObjectCreated:CompleteMultipartUpload", 1234),
    ]


def test_s3_test_event_yields_nothing() -> None:
    message = ValidationMessage.model_validate(
        sqs_message(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}))
    )
    assert created_objects(message.body) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param(json.dumps({"hello": "world"}), id="not-s3"),
        pytest.param(json.dumps({"Records": "nope"}), id="records-not-a-list"),
        pytest.param(
            json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}), id="partial-record"
        ),
    ],
)
def test_malformed_messages_fail_alone_and_are_retried(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext, body: str
) -> None:
    # Given a batch of one good message and one that is not an S3 notification
    use_bucket(monkeypatch, bucket)
    version = put_png(bucket)
    good, bad = sqs_message(json.dumps(s3_body(KEY, version))), sqs_message(body)
    # When the handler runs / Then only the bad one is reported, and the good one validated
    response = validator_handler.lambda_handler({"Records": [good, bad]}, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert status_of(bucket, KEY, version) == "valid"


def test_a_hostile_object_is_quarantined_through_the_handler(
    bucket: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext
) -> None:
    # Given a PNG with a script appended after a second IEND chunk
    use_bucket(monkeypatch, bucket)
    data = corpus.png() + b"\x00\x00\x00\x00IEND\xaeB`\x82<script>alert(1)</script>"
    version = put_png(bucket, data=data)
    # When its notification is handled
    response = validator_handler.lambda_handler(
        {"Records": [sqs_message(json.dumps(s3_body(KEY, version)))]}, lambda_context
    )
    # Then it left the upload key for the quarantine, tagged with its reason
    assert response == {"batchItemFailures": []}
    assert bucket.list_object_versions(Bucket=BUCKET, Prefix=KEY).get("Versions") is None
    tags = bucket.get_object_tagging(Bucket=BUCKET, Key=f"quarantine/{KEY}")["TagSet"]
    assert {"Key": "upload-reason", "Value": "trailing-data"} in tags


def test_a_direct_event_that_is_not_an_s3_notification_raises(lambda_context: FakeContext) -> None:
    # A pydantic ValidationError is a ValueError too
    with pytest.raises(ValueError, match=r"S3|validation"):
        validator_handler.lambda_handler({"Records": [{"eventSource": "aws:s3"}]}, lambda_context)


@pytest.mark.parametrize(
    ("failure", "comes_back_now"),
    [
        pytest.param(EventsUnavailable("the event bus refused the verdict event"), True, id="event-refused"),
        pytest.param(UpstreamError("S3 throttled"), False, id="storage-failure"),
    ],
)
def test_a_refused_verdict_event_brings_its_message_back_sooner(
    bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: FakeContext,
    failure: Exception,
    comes_back_now: bool,
) -> None:
    # Given the validation queue with the template's long visibility timeout and one message taken
    # from it, whose validation fails the way the parameter says
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="validation", Attributes={"VisibilityTimeout": "5400"})["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(s3_body(KEY, "v1")))
    taken = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]
    message = sqs_message(taken["Body"]) | {"receiptHandle": taken["ReceiptHandle"]}
    use_bucket(monkeypatch, bucket)

    def fail(_created: ObjectCreated) -> None:
        raise failure

    monkeypatch.setattr(validator_handler.service(), "validate", fail)
    monkeypatch.setattr(validator_handler, "redelivery", redelivery.Redelivery("us-east-1", client=sqs))
    monkeypatch.setattr(redelivery, "FIRST_RETRY_SECONDS", 0)
    # When the handler runs: with every record failed, Powertools fails the whole batch
    with pytest.raises(BatchProcessingError):
        validator_handler.lambda_handler({"Records": [message]}, lambda_context)
    # Then only the refused event made the message visible again at once
    again = sqs.receive_message(QueueUrl=queue_url).get("Messages", [])
    assert len(again) == (1 if comes_back_now else 0)


def test_redelivery_is_best_effort(bucket: Any, caplog: pytest.LogCaptureFixture) -> None:
    # A receipt handle SQS does not know, or an ARN that is not a queue's, leaves the queue's own
    # timeout: nothing raises over the validation's own error, and each refusal is logged
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.create_queue(QueueName="validation")
    later = redelivery.Redelivery("us-east-1", client=sqs)
    later.sooner("arn:aws:sqs:us-east-1:123456789012:validation", "not-a-handle", 1)
    later.sooner("arn:aws:sns:us-east-1:123456789012:topic", "handle", 1)
    refusals = [r for r in caplog.records if "keeps the queue's visibility timeout" in r.getMessage()]
    assert len(refusals) == 2
