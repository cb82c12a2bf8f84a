"""What the service answers when S3 says an object, version or upload is missing, fed AWS's own answers.

On AWS a request for a missing key or version is answered 404 only when the caller may also list
the bucket (s3:ListBucket, checked with the key as s3:prefix); otherwise S3 answers 403
AccessDenied so as not to reveal what exists. moto and MiniStack always answer 404, so these
tests replay recorded AWS responses (status, headers, XML body) through a real botocore client
and its real response parser, and check both sides: with the grants template.yaml now gives
(404 family) the service answers as documented, and without them (403) it would not, which is
why the grants exist (tests/unit/test_operations_template.py checks they are there).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from lambda_fakes import FakeContext, s3_record, sqs_message
from moto import mock_aws

import validator_handler
from local.registry_table import create_registry_table
from upload_core.errors import NotFound, UploadError
from upload_core.registry import PlanKind, Registry, UploadPlan, registry_for
from upload_core.s3 import S3Gateway, build_s3_client
from upload_core.settings import Settings
from upload_core.uploads import UploadService
from upload_core.validation import Action, ObjectCreated, ValidationService
from upload_core.validator_settings import ValidatorSettings

BUCKET = "unit-uploads"
OWNER = "alice"
KEY = "uploads/alice/0123456789abcdef0123456789abcdef/photo.png"
QUARANTINE_KEY = f"quarantine/{KEY}"
UPLOAD_ID = "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
VERSION_ID = "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"
REQUEST_HEADERS = {"x-amz-request-id": "4442587FB7D0A2F9", "x-amz-id-2": "recorded", "server": "AmazonS3"}


def error_xml(code: str, message: str, **extra: str) -> bytes:
    fields = "".join(f"<{name}>{value}</{name}>" for name, value in extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{fields}"
        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>recorded</HostId></Error>"
    ).encode()


# Recorded shapes of S3's answers (bodies as S3 sends them; HEAD answers carry no body at all).
NO_SUCH_UPLOAD = (
    404,
    error_xml(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been"
        " aborted or completed.",
        UploadId=UPLOAD_ID,
    ),
)
NO_SUCH_KEY = (404, error_xml("NoSuchKey", "The specified key does not exist.", Key=KEY))
NO_SUCH_VERSION = (
    404,
    error_xml("NoSuchVersion", "The specified version does not exist.", Key=KEY, VersionId=VERSION_ID),
)
ACCESS_DENIED = (403, error_xml("AccessDenied", "Access Denied"))
HEAD_NOT_FOUND = (404, b"")
HEAD_FORBIDDEN = (403, b"")
QUARANTINE_TAGS = (
    200,
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>'
    b"<Tag><Key>upload-status</Key><Value>rejected</Value></Tag>"
    b"<Tag><Key>upload-reason</Key><Value>type-mismatch</Value></Tag></TagSet></Tagging>",
)


# (status, body) or (status, body, headers): one recorded answer.
Answer = tuple[int, bytes] | tuple[int, bytes, dict[str, str]]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class RecordedS3:
    """A real botocore S3 client whose requests never leave the process: each operation gets the
    next recorded answer, parsed by botocore exactly as a response from AWS would be."""

    def __init__(self, settings: Settings) -> None:
        self.client = build_s3_client(settings)
        self.answers: dict[str, deque[Answer]] = defaultdict(deque)
        self.sent: list[tuple[str, str]] = []
        self.client.meta.events.register("before-send.s3", self._answer)

    def answer(self, operation: str, *answers: Answer) -> RecordedS3:
        self.answers[operation].extend(answers)
        return self

    def _answer(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        self.sent.append((operation, request.url))
        if not self.answers[operation]:
            raise AssertionError(f"unexpected {operation} request to {request.url}")
        status, body, *extra = self.answers[operation].popleft()
        headers = {**REQUEST_HEADERS, "content-type": "application/xml", "content-length": str(len(body))}
        headers.update(*extra)
        return AWSResponse(request.url, status, headers, _Raw(body))


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings.from_env(), bucket_name=BUCKET)


@pytest.fixture
def s3(settings: Settings) -> RecordedS3:
    return RecordedS3(settings)


@pytest.fixture
def registry(settings: Settings, template: dict[str, Any]) -> Iterator[Registry]:
    """moto's DynamoDB for the registry (only S3's answers are recorded here), holding the open
    plan of the upload at KEY, as the API's create left it."""
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        create_registry_table(boto3.client("dynamodb", region_name="us-east-1"), template, settings.registry_table)
        registry = registry_for(settings)
        plan = UploadPlan(KEY, OWNER, PlanKind.MULTIPART, 1, 1, 2**40, declared_size=1, part_size=1, part_count=1)
        registry.reserve(plan)
        registry.open(KEY, UPLOAD_ID)
        yield registry


def status_and_code(error: UploadError) -> tuple[int, str]:
    return int(error.status), error.code


# ----------------------------------------------------------------------------- completing an aborted upload


def test_completing_an_aborted_upload_is_404_when_missing_objects_read_as_404(
    settings: Settings, s3: RecordedS3, registry: Registry
) -> None:
    # Given an upload that was aborted behind the API's back (the lifecycle rule): no upload any
    # more, and no object at its key
    s3.answer("ListParts", NO_SUCH_UPLOAD).answer("HeadObject", HEAD_NOT_FOUND)
    service = UploadService(settings, S3Gateway(settings, s3.client), registry)
    # When the client completes it
    with pytest.raises(NotFound) as refused:
        service.complete(OWNER, UPLOAD_ID, KEY)
    # Then it is told the upload does not exist (404), not that storage failed
    assert status_and_code(refused.value) == (404, "NoSuchUpload")
    assert [operation for operation, _ in s3.sent] == ["ListParts", "HeadObject"]


def test_without_list_bucket_the_same_request_would_be_a_502(
    settings: Settings, s3: RecordedS3, registry: Registry
) -> None:
    # Given S3's answer to a role without s3:ListBucket: the missing object is "forbidden"
    s3.answer("ListParts", NO_SUCH_UPLOAD).answer("HeadObject", HEAD_FORBIDDEN)
    service = UploadService(settings, S3Gateway(settings, s3.client), registry)
    # When the client completes the aborted upload / Then the service can only report a storage error
    with pytest.raises(UploadError) as refused:
        service.complete(OWNER, UPLOAD_ID, KEY)
    assert status_and_code(refused.value) == (502, "StorageError")


# ----------------------------------------------------------------------------- status of a quarantined object


def test_the_status_of_a_quarantined_object_is_its_rejection(
    settings: Settings, s3: RecordedS3, registry: Registry
) -> None:
    # Given an object the validator moved to quarantine: gone from its key, tagged in quarantine
    s3.answer("GetObjectTagging", NO_SUCH_KEY, QUARANTINE_TAGS)
    service = UploadService(settings, S3Gateway(settings, s3.client), registry)
    # When its owner asks for its status
    status = service.object_status(OWNER, KEY)
    # Then the answer is the rejection and where the object went
    assert (status.status, status.reason, status.quarantine_key) == ("rejected", "type-mismatch", QUARANTINE_KEY)
    assert [url.split("?")[0].endswith(QUARANTINE_KEY) for _, url in s3.sent] == [False, True]


def test_the_status_of_a_key_with_no_object_anywhere_is_404(
    settings: Settings, s3: RecordedS3, registry: Registry
) -> None:
    s3.answer("GetObjectTagging", NO_SUCH_KEY, NO_SUCH_KEY)
    service = UploadService(settings, S3Gateway(settings, s3.client), registry)
    with pytest.raises(NotFound) as refused:
        service.object_status(OWNER, KEY)
    assert status_and_code(refused.value) == (404, "NoSuchKey")


def test_without_list_bucket_a_quarantined_objects_status_would_be_a_502(
    settings: Settings, s3: RecordedS3, registry: Registry
) -> None:
    s3.answer("GetObjectTagging", ACCESS_DENIED)
    service = UploadService(settings, S3Gateway(settings, s3.client), registry)
    with pytest.raises(UploadError) as refused:
        service.object_status(OWNER, KEY)
    assert status_and_code(refused.value) == (502, "StorageError")


# ----------------------------------------------------------------------------- the validator's second delivery


def sqs_batch(version_id: str = VERSION_ID) -> dict[str, Any]:
    """The ObjectCreated notification of the version at KEY, delivered through the queue."""
    return {"Records": [sqs_message(json.dumps({"Records": [s3_record(KEY, version_id, BUCKET)]}))]}


@pytest.fixture
def validator(
    settings: Settings, s3: RecordedS3, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> ValidationService:
    service = ValidationService(
        settings, ValidatorSettings.from_env(settings, {}), S3Gateway(settings, s3.client), registry
    )
    monkeypatch.setattr(validator_handler, "service", lambda: service)
    return service


@pytest.mark.parametrize("answer", [HEAD_NOT_FOUND], ids=["head-404"])
def test_a_second_delivery_for_a_quarantined_version_is_gone(
    validator: ValidationService, s3: RecordedS3, answer: Answer
) -> None:
    # Given the version was quarantined (copied and deleted by version id) by the first delivery
    s3.answer("HeadObject", answer)
    # When the event is delivered again / Then the version is recognised as gone
    outcome = validator.validate(ObjectCreated(BUCKET, KEY, VERSION_ID, "ObjectCreated:Put"))
    assert outcome.action is Action.GONE


def test_the_handler_acknowledges_a_second_delivery_instead_of_retrying_it(
    validator: ValidationService, s3: RecordedS3, lambda_context: FakeContext
) -> None:
    # Given an SQS message for a version an earlier delivery already quarantined
    s3.answer("HeadObject", HEAD_NOT_FOUND)
    event = sqs_batch()
    # When the validator handles it / Then no batch item fails: the queue deletes the message
    assert validator_handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert [operation for operation, _ in s3.sent] == ["HeadObject"]


def test_without_list_bucket_versions_the_second_delivery_would_be_retried(
    validator: ValidationService, s3: RecordedS3, lambda_context: FakeContext
) -> None:
    # Given S3's answer to a role that may not list: the deleted version is "forbidden"
    s3.answer("HeadObject", HEAD_FORBIDDEN)
    event = sqs_batch()
    # When the validator handles it / Then the invocation fails and the message goes back to the
    # queue (five times, then to the failure queue): what the ListBucket grants prevent
    with pytest.raises(BatchProcessingError):
        validator_handler.lambda_handler(event, lambda_context)


def test_a_version_deleted_between_head_and_read_is_gone_too(validator: ValidationService, s3: RecordedS3) -> None:
    # Given a version that still answers HEAD but is deleted before its bytes are read
    head = {"content-length": "4096", "etag": '"9b2cf535f27731c974343645a3985328"', "content-type": "image/png"}
    s3.answer("HeadObject", (200, b"", head))
    s3.answer("GetObjectTagging", (200, b'<?xml version="1.0"?><Tagging><TagSet></TagSet></Tagging>'))
    s3.answer("GetObject", NO_SUCH_VERSION)
    # When the validator reads it / Then the record is gone, not failed
    outcome = validator.validate(ObjectCreated(BUCKET, KEY, VERSION_ID, "ObjectCreated:Put"))
    assert outcome.action is Action.GONE
