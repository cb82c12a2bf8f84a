"""S3Gateway's two shared habits: S3 errors leave as domain errors, and a version is named only when given."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from upload_core.errors import NotFound
from upload_core.s3 import S3Gateway, StorageBusy, storage_errors
from upload_core.settings import Settings


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "secret detail"}}, "Op")


class RecordingS3:
    """Records each call's arguments and answers, or fails with `fails`."""

    def __init__(self, fails: Exception | None = None) -> None:
        self.fails = fails
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        def call(**params: Any) -> dict[str, Any]:
            self.calls.append((operation, params))
            if self.fails is not None:
                raise self.fails
            return {"ContentLength": 1, "ETag": '"e"', "TagSet": [], "ChecksumAlgorithm": "SHA256"}

        return call


def _gateway(client: RecordingS3) -> S3Gateway:
    return S3Gateway(Settings.from_env({"BUCKET_NAME": "b"}), client=client)


def test_s3_errors_inside_the_block_leave_as_domain_errors_without_s3_s_message() -> None:
    with pytest.raises(NotFound, match="upload not found") as raised, storage_errors(missing="upload not found"):
        raise _client_error("NoSuchUpload")
    assert "secret detail" not in str(raised.value)
    assert isinstance(raised.value.__cause__, ClientError)


def test_other_errors_pass_through_the_block_untouched() -> None:
    with pytest.raises(KeyError), storage_errors():
        raise KeyError("not an S3 error")


def test_a_version_is_named_only_when_one_is_given() -> None:
    # Given a gateway over a client that records its calls
    client = RecordingS3()
    gateway = _gateway(client)
    # When objects are read, tagged, copied and deleted with and without a version
    gateway.head_object("k")
    gateway.head_object("k", "v1")
    gateway.get_tags("k", "v2")
    gateway.put_tags("k", {"a": "b"})
    gateway.copy_object("k", "q/k", source_version_id="v3")
    gateway.delete_object("k", "v4")
    # Then VersionId appears exactly where a version was given
    assert client.calls == [
        ("head_object", {"Bucket": "b", "Key": "k"}),
        ("head_object", {"Bucket": "b", "Key": "k", "VersionId": "v1"}),
        ("get_object_tagging", {"Bucket": "b", "Key": "k", "VersionId": "v2"}),
        ("put_object_tagging", {"Bucket": "b", "Key": "k", "Tagging": {"TagSet": [{"Key": "a", "Value": "b"}]}}),
        ("copy_object", {"Bucket": "b", "Key": "q/k", "CopySource": {"Bucket": "b", "Key": "k", "VersionId": "v3"}}),
        ("delete_object", {"Bucket": "b", "Key": "k", "VersionId": "v4"}),
    ]


def test_absent_objects_and_uploads_are_answers_not_errors() -> None:
    gateway = _gateway(RecordingS3(fails=_client_error("NoSuchUpload")))
    assert gateway.abort_multipart_upload("k", "u") is False
    gateway = _gateway(RecordingS3(fails=_client_error("404")))
    assert gateway.head_object("k", "v") is None


def test_a_busy_s3_is_still_an_error_where_absence_is_an_answer() -> None:
    gateway = _gateway(RecordingS3(fails=_client_error("SlowDown")))
    with pytest.raises(StorageBusy):
        gateway.abort_multipart_upload("k", "u")
    with pytest.raises(StorageBusy):
        gateway.head_object("k")
