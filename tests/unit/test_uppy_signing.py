"""Uppy 6's signRequest backend: every S3 request it signs stays within the caller's plan (moto)."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from upload_core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from upload_core.keys import new_key
from upload_core.registry import PlanState
from upload_core.s3 import S3Gateway, build_s3_client
from upload_core.settings import MIB, Settings
from upload_core.uploads import UploadService
from upload_core.uppy_signing import SignedRequest, SignRequest, UppySigner, uppy_part_size

BUCKET = "unit-uploads"


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings.from_env(), default_user_quota_bytes=60 * MIB, max_requests_per_minute=1000)


@pytest.fixture
def service(settings: Settings, s3_client: Any) -> UploadService:  # s3_client starts moto
    return UploadService(settings, S3Gateway(settings, client=build_s3_client(settings)))


@pytest.fixture
def signer(service: UploadService) -> UppySigner:
    return UppySigner(service)


def signed_headers(signed: SignedRequest) -> set[str]:
    return set(parse_qs(urlsplit(signed.url).query)["X-Amz-SignedHeaders"][0].split(";"))


def create(signer: UppySigner, s3_client: Any, owner: str = "alice", size: int = 12 * MIB) -> tuple[str, str]:
    """Sign a create and do what the browser does with it: create the upload at the signed key."""
    signed = signer.sign(
        owner, SignRequest(method="POST", key="uuid-photo.png", size=size, name="photo.png", type="image/png")
    )
    assert signed.key is not None
    created = s3_client.create_multipart_upload(Bucket=BUCKET, Key=signed.key, ContentType="image/png")
    return signed.key, str(created["UploadId"])


def put_parts(s3_client: Any, key: str, upload_id: str, sizes: list[int]) -> list[str]:
    etags = []
    for number, size in enumerate(sizes, start=1):
        put = s3_client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=b"x" * size)
        etags.append(str(put["ETag"]))
    return etags


def reserved(service: UploadService, owner: str = "alice") -> int:
    return service.registry.usage(owner).reserved_bytes


def signed_query(signed: SignedRequest) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(signed.url).query).items()}


def test_a_whole_file_gets_a_put_binding_a_server_chosen_key_the_size_type_metadata_and_pending_tag(
    signer: UppySigner, service: UploadService
) -> None:
    # Given Uppy's whole-file request for a 1000-byte PNG
    request = SignRequest(method="PUT", key="uuid-a.png", content_type="image/png", size=1000, name="a.png")
    # When it is signed
    signed = signer.sign("alice", request)
    # Then it is a presigned PUT for a key under the caller's prefix, not the key Uppy asked for
    assert signed.method == "PUT" and signed.fields is None
    assert signed.key is not None and signed.key.startswith("uploads/alice/")
    assert urlsplit(signed.url).path.endswith(signed.key)
    # And the only header to send is Content-Type; the length is signed too (a browser sets it
    # from the body), the metadata and the pending tag are signed into the query string
    assert signed.headers == {"Content-Type": "image/png"}
    assert signed_headers(signed) == {"content-length", "content-type", "host"}
    query = signed_query(signed)
    assert query["x-amz-tagging"] == "upload-status=pending"
    assert query["x-amz-meta-owner"] == "alice"
    # And the whole file's size is reserved as for a form
    assert reserved(service) == 1000
    plan = service.registry.plan(signed.key)
    assert plan is not None and plan.declared_size == 1000


def test_create_plans_exact_parts_reserves_the_size_and_signs_type_metadata_and_tag(
    signer: UppySigner, service: UploadService
) -> None:
    # When a 12 MiB file's create is signed (no part size sent: Uppy's default, 5 MiB)
    signed = signer.sign(
        "alice", SignRequest(method="POST", key="u-x.png", size=12 * MIB, name="x.png", type="image/png")
    )
    # Then the key is the server's, the plan has Uppy's part lengths, and the size is reserved
    assert signed.key is not None and signed.key.startswith("uploads/alice/")
    plan = service.registry.plan(signed.key)
    assert plan is not None and plan.state is PlanState.CREATING and plan.upload_id is None
    assert (plan.part_size, plan.part_count, plan.declared_size) == (5 * MIB, 3, 12 * MIB)
    assert reserved(service) == 12 * MIB
    # And the only header Uppy must send is Content-Type (6.1 sends no other); the metadata and
    # the pending tag are signed into the query string
    assert signed.headers == {"Content-Type": "image/png"}
    assert signed_headers(signed) == {"content-type", "host"}
    query = signed_query(signed)
    assert query["x-amz-meta-owner"] == "alice"
    assert query["x-amz-tagging"] == "upload-status=pending"


def test_uppys_default_part_size_is_what_s3uploader_uses() -> None:
    assert uppy_part_size(50 * MIB) == 5 * MIB
    assert uppy_part_size(100_000 * MIB) == 10 * MIB


def test_the_first_part_request_binds_the_browsers_upload_and_signs_the_exact_length(
    signer: UppySigner, service: UploadService, s3_client: Any
) -> None:
    key, upload_id = create(signer, s3_client)
    # When part 3 (the 2 MiB remainder) is signed
    signed = signer.sign("alice", SignRequest(method="PUT", key=key, upload_id=upload_id, part_number=3))
    # Then the plan knows the upload id and the URL binds the part's length
    plan = service.registry.plan(key)
    assert plan is not None and plan.state is PlanState.OPEN and plan.upload_id == upload_id
    assert "content-length" in signed_headers(signed)
    assert signed.method == "PUT"


def test_a_made_up_upload_id_is_not_bound(signer: UppySigner, service: UploadService, s3_client: Any) -> None:
    signed = signer.sign("alice", SignRequest(method="POST", key="k.png", size=10, name="k.png", type="image/png"))
    assert signed.key is not None
    with pytest.raises(NotFound):
        signer.sign("alice", SignRequest(method="PUT", key=signed.key, upload_id="invented", part_number=1))
    plan = service.registry.plan(signed.key)
    assert plan is not None and plan.upload_id is None


def test_an_upload_at_another_key_cannot_be_bound(signer: UppySigner, s3_client: Any) -> None:
    # Given two planned uploads, only the second created in S3
    first, _ = create(signer, s3_client)
    _, second_id = create(signer, s3_client)
    # Then the second's id does not bind to the first's key
    with pytest.raises(NotFound):
        signer.sign("alice", SignRequest(method="PUT", key=first, upload_id=second_id, part_number=1))


def test_another_caller_cannot_sign_for_the_upload(signer: UppySigner, s3_client: Any) -> None:
    key, upload_id = create(signer, s3_client)
    for method, part in (("PUT", 1), ("GET", None), ("POST", None), ("DELETE", None)):
        with pytest.raises(Forbidden):
            signer.sign("mallory", SignRequest(method=method, key=key, upload_id=upload_id, part_number=part))


def test_a_replayed_create_url_leaves_one_upload_at_the_key(signer: UppySigner, s3_client: Any) -> None:
    key, upload_id = create(signer, s3_client)
    s3_client.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="image/png")
    signer.sign("alice", SignRequest(method="GET", key=key, upload_id=upload_id))
    left = s3_client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
    assert [upload["UploadId"] for upload in left] == [upload_id]


def test_complete_checks_the_parts_first_then_signs_the_size(signer: UppySigner, s3_client: Any) -> None:
    key, upload_id = create(signer, s3_client)
    put_parts(s3_client, key, upload_id, [5 * MIB, 5 * MIB])
    complete = SignRequest(method="POST", key=key, upload_id=upload_id)
    # Given a part missing, When completion is asked for, Then nothing is signed
    with pytest.raises(InvalidRequest) as refused:
        signer.sign("alice", complete)
    assert refused.value.code == "IncompleteUpload"
    # Given every planned part, Then the URL pins the checked size in its signed query, and no
    # header is needed
    put_parts(s3_client, key, upload_id, [5 * MIB, 5 * MIB, 2 * MIB])
    signed = signer.sign("alice", complete)
    assert signed.headers is None
    assert signed_query(signed)["x-amz-mp-object-size"] == str(12 * MIB)
    assert signed_headers(signed) == {"host"}


def test_complete_is_refused_once_an_object_is_at_the_key(signer: UppySigner, s3_client: Any) -> None:
    # Given an upload whose parts are all there, and an object already at its key
    key, upload_id = create(signer, s3_client, size=6 * MIB)
    put_parts(s3_client, key, upload_id, [5 * MIB, MIB])
    s3_client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    # When completion is asked for, Then nothing is signed (Uppy 6.1 cannot send If-None-Match)
    with pytest.raises(Conflict) as refused:
        signer.sign("alice", SignRequest(method="POST", key=key, upload_id=upload_id))
    assert refused.value.code == "UploadAlreadyCompleted"


def test_a_part_of_another_length_than_planned_is_refused_at_complete(signer: UppySigner, s3_client: Any) -> None:
    key, upload_id = create(signer, s3_client, size=10 * MIB)
    put_parts(s3_client, key, upload_id, [6 * MIB, 4 * MIB])
    with pytest.raises(InvalidRequest) as refused:
        signer.sign("alice", SignRequest(method="POST", key=key, upload_id=upload_id))
    assert refused.value.code == "PartSizeMismatch"


def test_abort_aborts_in_s3_releases_the_reservation_and_ends_the_plan(
    signer: UppySigner, service: UploadService, s3_client: Any
) -> None:
    key, upload_id = create(signer, s3_client)
    signed = signer.sign("alice", SignRequest(method="DELETE", key=key, upload_id=upload_id))
    assert signed.method == "DELETE" and "uploadId=" in signed.url
    assert reserved(service) == 0
    assert not s3_client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads")
    with pytest.raises(NotFound):
        signer.sign("alice", SignRequest(method="PUT", key=key, upload_id=upload_id, part_number=1))


def test_list_parts_is_signed_for_the_callers_upload(signer: UppySigner, s3_client: Any) -> None:
    key, upload_id = create(signer, s3_client)
    signed = signer.sign("alice", SignRequest(method="GET", key=key, upload_id=upload_id))
    assert signed.method == "GET" and "uploadId=" in signed.url


@pytest.mark.parametrize(
    ("request_", "error", "code"),
    [
        (SignRequest(method="DELETE", key="uploads/alice/x.png"), InvalidRequest, "UnsupportedSignRequest"),
        (SignRequest(method="GET", key="uploads/alice/x.png"), InvalidRequest, "UnsupportedSignRequest"),
        (SignRequest(method="HEAD", key="uploads/alice/x.png", upload_id="u"), InvalidRequest, None),
        (SignRequest(method="PUT", key="k", part_number=1), InvalidRequest, "InvalidSignRequest"),
        (SignRequest(method="POST", key="k", name="a.png", type="image/png"), InvalidRequest, "MissingSize"),
        (SignRequest(method="PUT", key="k", size=1), InvalidRequest, "MissingContentType"),
        (SignRequest(method="GET", key="uploads/bob/x.png", upload_id="u"), Forbidden, None),
        (SignRequest(method="GET", key="elsewhere/x.png", upload_id="u"), Forbidden, None),
        (SignRequest(method="GET", key=new_key("uploads", "alice", "x.png"), upload_id="u"), NotFound, None),
    ],
)
def test_anything_but_the_callers_uploads_is_refused(
    signer: UppySigner, request_: SignRequest, error: type[Exception], code: str | None
) -> None:
    with pytest.raises(error) as refused:
        signer.sign("alice", request_)
    if code is not None:
        assert getattr(refused.value, "code", None) == code


def test_expires_in_may_shorten_the_url_life_but_not_lengthen_it(signer: UppySigner, s3_client: Any) -> None:
    key, upload_id = create(signer, s3_client)
    for asked, given in ((60, "60"), (10**6, "600")):
        signed = signer.sign("alice", SignRequest(method="GET", key=key, upload_id=upload_id, expires_in=asked))
        assert parse_qs(urlsplit(signed.url).query)["X-Amz-Expires"] == [given]
