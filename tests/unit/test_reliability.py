"""Unit tests of the fault-tolerance details the reliability suite (tests/integration) relies on."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from lambda_fakes import FakeContext, http_event

import uploads_handler
from upload_core.errors import Conflict, UpstreamError, UpstreamTimeout
from upload_core.s3 import CompletedObject, S3Gateway, StorageBusy, build_s3_client, storage_error
from upload_core.settings import MIB, Settings, SettingsError
from upload_core.uploads import UploadService


@pytest.mark.parametrize("path", ["/uploads", "/uploads/form", "/uploads/batch"])
def test_a_body_that_is_not_utf8_is_a_400_not_a_500(s3_client: Any, lambda_context: FakeContext, path: str) -> None:
    # Given a body API Gateway had to base64-encode because it is not UTF-8
    event = http_event("POST", path, raw_body="x")
    event["body"] = base64.b64encode(b"\xfc+\xe8").decode()
    event["isBase64Encoded"] = True
    # When the route validates it
    response = uploads_handler.lambda_handler(event, lambda_context)
    # Then the caller gets a clean 400
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {
        "code": "InvalidRequest",
        "message": "the request body is not valid UTF-8 JSON",
    }


# --- S3 client patience: timeouts and attempts from the settings --------------------------------


def test_s3_timeouts_and_attempts_default_to_generous_values() -> None:
    settings = Settings.from_env({"BUCKET_NAME": "b"})
    assert (settings.s3_connect_timeout_seconds, settings.s3_read_timeout_seconds, settings.s3_max_attempts) == (
        5.0,
        30.0,
        3,
    )


def test_s3_timeouts_and_attempts_reach_the_client() -> None:
    # Given tight settings, as a function with a short Timeout sets them
    env = {
        "BUCKET_NAME": "b",
        "S3_CONNECT_TIMEOUT_SECONDS": "1.5",
        "S3_READ_TIMEOUT_SECONDS": "3",
        "S3_MAX_ATTEMPTS": "2",
    }
    settings = Settings.from_env(env)
    # When the S3 client is built / Then it uses them, attempts counting the first one
    config = build_s3_client(settings).meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 3.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("S3_CONNECT_TIMEOUT_SECONDS", "0"),
        ("S3_READ_TIMEOUT_SECONDS", "-1"),
        ("S3_READ_TIMEOUT_SECONDS", "soon"),
        ("S3_READ_TIMEOUT_SECONDS", "nan"),
        ("S3_READ_TIMEOUT_SECONDS", "901"),
        ("S3_MAX_ATTEMPTS", "0"),
        ("S3_MAX_ATTEMPTS", "11"),
        ("S3_MAX_ATTEMPTS", "2.5"),
    ],
)
def test_bad_s3_patience_settings_fail_at_start(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"BUCKET_NAME": "b", name: value})


# --- S3 failures as API errors -------------------------------------------------------------------


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ReadTimeoutError(endpoint_url="http://s3"), 504, "StorageTimeout"),
        (ConnectTimeoutError(endpoint_url="http://s3"), 504, "StorageTimeout"),
        (EndpointConnectionError(endpoint_url="http://s3"), 502, "StorageUnavailable"),
        (ConnectionClosedError(endpoint_url="http://s3"), 502, "StorageUnavailable"),
        (_client_error("SlowDown", 503), 503, "StorageBusy"),
        (_client_error("ServiceUnavailable", 503), 503, "StorageBusy"),
        (_client_error("InternalError", 500), 502, "StorageError"),
    ],
)
def test_storage_failures_map_to_gateway_statuses(error: Exception, status: int, code: str) -> None:
    mapped = storage_error(error)  # type: ignore[arg-type]
    assert (int(mapped.status), mapped.code) == (status, code)


# --- a CreateMultipartUpload whose answer was lost -----------------------------------------------


class FakeS3:
    """Just enough of an S3 client to replay what a client sees around a lost answer."""

    def __init__(self, *, created: dict[str, Any] | None = None, fails: Exception | None = None) -> None:
        self.created = created
        self.fails = fails
        self.uploads = [("k", "lost-1"), ("k", "lost-2"), ("k", "kept"), ("k-other", "not-ours")]
        self.aborted: list[str] = []
        self.list_fails: Exception | None = None

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        if self.fails is not None:
            raise self.fails
        assert self.created is not None
        return self.created

    def list_multipart_uploads(self, *, Bucket: str, Prefix: str) -> dict[str, Any]:
        if self.list_fails is not None:
            raise self.list_fails
        return {"Uploads": [{"Key": k, "UploadId": u} for k, u in self.uploads if k.startswith(Prefix)]}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> None:
        assert Key == "k"
        self.aborted.append(UploadId)


def _create(gateway: S3Gateway) -> str:
    return gateway.create_multipart_upload("k", content_type="image/png", metadata={}, tags={})


def test_a_create_that_needed_retries_aborts_the_uploads_earlier_attempts_left() -> None:
    # Given S3 created uploads for attempts whose answers were lost, and the retry succeeded
    fake = FakeS3(created={"UploadId": "kept", "ResponseMetadata": {"RetryAttempts": 2}})
    # When the gateway creates the upload
    upload_id = _create(S3Gateway(Settings.from_env(), client=fake))
    # Then the caller gets the retry's upload, and the others at that key (only) are aborted
    assert upload_id == "kept"
    assert fake.aborted == ["lost-1", "lost-2"]


def test_a_create_without_retries_lists_nothing() -> None:
    fake = FakeS3(created={"UploadId": "kept", "ResponseMetadata": {"RetryAttempts": 0}})
    fake.list_fails = AssertionError("no listing when nothing was retried")
    assert _create(S3Gateway(Settings.from_env(), client=fake)) == "kept"
    assert fake.aborted == []


def test_a_create_that_failed_aborts_every_upload_its_attempts_left() -> None:
    fake = FakeS3(fails=ReadTimeoutError(endpoint_url="http://s3"))
    with pytest.raises(UpstreamTimeout):
        _create(S3Gateway(Settings.from_env(), client=fake))
    assert fake.aborted == ["lost-1", "lost-2", "kept"]


def test_a_create_that_failed_reports_its_own_error_when_cleaning_up_fails_too() -> None:
    # Given S3 down for the listing as well: the lifecycle rule is the backstop
    fake = FakeS3(fails=_client_error("SlowDown", 503))
    fake.list_fails = EndpointConnectionError(endpoint_url="http://s3")
    # Then the caller sees the create's failure, not the clean-up's
    with pytest.raises(StorageBusy):
        _create(S3Gateway(Settings.from_env(), client=fake))
    assert fake.aborted == []


# --- a CompleteMultipartUpload whose answers were lost -------------------------------------------


class LosingAnswers(S3Gateway):
    """Completes at S3 (or not), then fails as if the answer never arrived."""

    def __init__(self, settings: Settings, client: Any, *, completes: bool, error: Exception) -> None:
        super().__init__(settings, client)
        self.completes = completes
        self.error = error

    def complete_multipart_upload(self, *args: Any, **kwargs: Any) -> CompletedObject:
        if self.completes:
            super().complete_multipart_upload(*args, **kwargs)
        raise self.error


@pytest.mark.parametrize(
    "error",
    [UpstreamError("lost", code="StorageUnavailable"), UpstreamTimeout("slow", code="StorageTimeout"), Conflict("412")],
)
def test_complete_whose_answers_were_lost_returns_the_stored_object(s3_client: Any, error: Exception) -> None:
    settings = Settings.from_env()
    service = UploadService(settings, LosingAnswers(settings, s3_client, completes=True, error=error))
    started = service.start("alice", filename="a.png", content_type="image/png", size=MIB)
    s3_client.upload_part(
        Bucket=settings.bucket_name, Key=started.key, UploadId=started.upload_id, PartNumber=1, Body=b"x" * MIB
    )
    # When S3 completed the upload but every answer was lost
    done = service.complete("alice", started.upload_id, started.key)
    # Then the caller learns the truth from the object itself
    assert (done.key, done.size) == (started.key, MIB)


def test_complete_that_really_failed_reports_the_failure(s3_client: Any) -> None:
    settings = Settings.from_env()
    error = UpstreamError("down", code="StorageUnavailable")
    service = UploadService(settings, LosingAnswers(settings, s3_client, completes=False, error=error))
    started = service.start("alice", filename="a.png", content_type="image/png", size=MIB)
    s3_client.upload_part(
        Bucket=settings.bucket_name, Key=started.key, UploadId=started.upload_id, PartNumber=1, Body=b"x" * MIB
    )
    with pytest.raises(UpstreamError):
        service.complete("alice", started.upload_id, started.key)
    # And the upload is still there to complete later
    assert [u.upload_id for u in service.list_pending("alice")] == [started.upload_id]
