"""The upload service against moto's in-process S3."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

import pytest

from upload_core.errors import Forbidden, InvalidRequest, NotFound, TooLarge, UnsupportedType
from upload_core.s3 import S3Gateway, build_s3_client
from upload_core.settings import MIB, Settings
from upload_core.uploads import ClientPart, PartRequest, UploadService


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def service(settings: Settings, s3_client: Any) -> UploadService:  # s3_client starts moto
    # The production client (SigV4, regional endpoint), served by moto.
    gateway = S3Gateway(settings, client=build_s3_client(settings))
    return UploadService(settings, gateway, clock=lambda: 1_800_000_000.0)


def upload_parts(s3_client: Any, key: str, upload_id: str, sizes: list[int]) -> list[dict[str, Any]]:
    uploaded = []
    for number, size in enumerate(sizes, start=1):
        body = bytes([number % 256]) * size
        response = s3_client.upload_part(
            Bucket="unit-uploads", Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        uploaded.append({"PartNumber": number, "ETag": response["ETag"]})
    return uploaded


def test_start_creates_a_pending_upload_under_the_callers_prefix(service: UploadService, s3_client: Any) -> None:
    # Given a valid request / When the upload starts
    started = service.start("alice", filename="../cat.PNG", content_type="Image/PNG", size=12 * MIB)
    # Then the key is server-chosen and the part plan covers the size
    assert started.key.startswith("uploads/alice/") and started.key.endswith("/cat.PNG")
    assert started.part_size == 8 * MIB and started.part_count == 2
    pending = s3_client.list_multipart_uploads(Bucket="unit-uploads")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in pending] == [(started.key, started.upload_id)]


def test_start_refuses_types_and_sizes_outside_the_limits(service: UploadService) -> None:
    with pytest.raises(UnsupportedType):
        service.start("alice", filename="x.html", content_type="text/html", size=1)
    with pytest.raises(TooLarge):
        service.start("alice", filename="x.png", content_type="image/png", size=100 * MIB + 1)
    with pytest.raises(InvalidRequest):
        service.start("alice", filename="x.png", content_type="image/png", size=-1)
    with pytest.raises(InvalidRequest):
        service.start("alice", filename="x.png", content_type="image/png", size=1, checksum_algorithm="MD4")


def test_completed_object_carries_pending_tag_and_owner_metadata(service: UploadService, s3_client: Any) -> None:
    started = service.start(
        "alice", filename="naïve.png", content_type="image/png", size=10, metadata={"album": "summer"}
    )
    upload_parts(s3_client, started.key, started.upload_id, [10])
    done = service.complete("alice", started.upload_id, started.key)
    assert done.size == 10
    head = s3_client.head_object(Bucket="unit-uploads", Key=started.key)
    assert head["ContentType"] == "image/png"
    assert head["Metadata"]["owner"] == "alice"
    assert head["Metadata"]["original-filename"] == "na%C3%AFve.png"
    assert head["Metadata"]["album"] == "summer"
    tags = s3_client.get_object_tagging(Bucket="unit-uploads", Key=started.key)["TagSet"]
    assert {"Key": "upload-status", "Value": "pending"} in tags


def test_reserved_or_malformed_metadata_is_refused(service: UploadService) -> None:
    for metadata in ({"owner": "mallory"}, {"Bad Name": "x"}, {"k": "naïve"}, {f"k{i}": "v" for i in range(11)}):
        with pytest.raises(InvalidRequest):
            service.start("alice", filename="x.png", content_type="image/png", size=1, metadata=metadata)


def test_sign_parts_signs_each_requested_part(service: UploadService) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=20 * MIB)
    signed = service.sign_parts("alice", started.upload_id, started.key, [PartRequest(2), PartRequest(1)])
    assert [part.part_number for part in signed.parts] == [1, 2]
    assert all(f"partNumber={p.part_number}" in p.url and "X-Amz-Signature=" in p.url for p in signed.parts)
    assert signed.expires_at.timestamp() == 1_800_000_000 + 600


def test_sign_parts_signs_a_content_md5_and_says_which_header_to_send(service: UploadService) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=1)
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()  # noqa: S324 - S3's Content-MD5
    signed = service.sign_parts("alice", started.upload_id, started.key, [PartRequest(1, content_md5=md5)])
    assert signed.parts[0].headers == {"Content-MD5": md5}
    assert "content-md5" in signed.parts[0].url.lower()


def test_checksums_must_match_the_uploads_algorithm(service: UploadService) -> None:
    plain = service.start("alice", filename="x.png", content_type="image/png", size=1)
    sha = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    with pytest.raises(InvalidRequest, match="checksumAlgorithm"):
        service.sign_parts("alice", plain.upload_id, plain.key, [PartRequest(1, checksum=sha)])
    with pytest.raises(InvalidRequest, match="SHA256"):
        service.sign_parts(
            "alice", plain.upload_id, plain.key, [PartRequest(1, checksum="AAAA")], checksum_algorithm="SHA256"
        )
    signed = service.sign_parts(
        "alice", plain.upload_id, plain.key, [PartRequest(1, checksum=sha)], checksum_algorithm="sha256"
    )
    assert signed.parts[0].headers == {"x-amz-checksum-sha256": sha}
    assert "x-amz-checksum-sha256" in signed.parts[0].url
    with pytest.raises(InvalidRequest):
        service.sign_parts("alice", plain.upload_id, plain.key, [PartRequest(1, content_md5="bm90LW1kNQ==")])


def test_sign_parts_refuses_foreign_keys_unknown_uploads_and_bad_numbers(
    service: UploadService, settings: Settings
) -> None:
    mine = service.start("alice", filename="x.png", content_type="image/png", size=1)
    other = service.start("bob", filename="y.png", content_type="image/png", size=1)
    with pytest.raises(Forbidden):
        service.sign_parts("bob", mine.upload_id, mine.key, [PartRequest(1)])
    # (bob's own key with alice's upload id is refused by S3's binding of an upload id to its key,
    # which moto does not model: the integration tests against the embedded S3 cover it.)
    with pytest.raises(NotFound):
        service.sign_parts("bob", "no-such-upload", other.key, [PartRequest(1)])
    for numbers in ([0], [10_001], [1, 1]):
        with pytest.raises(InvalidRequest):
            service.sign_parts("alice", mine.upload_id, mine.key, [PartRequest(n) for n in numbers])
    too_many = [PartRequest(n) for n in range(1, settings.max_parts_per_request + 2)]
    with pytest.raises(InvalidRequest, match="at most"):
        service.sign_parts("alice", mine.upload_id, mine.key, too_many)


def test_complete_without_a_parts_list_uses_every_uploaded_part(service: UploadService, s3_client: Any) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=5 * MIB + 3, part_size=5 * MIB)
    upload_parts(s3_client, started.key, started.upload_id, [5 * MIB, 3])
    done = service.complete("alice", started.upload_id, started.key)
    assert done.size == 5 * MIB + 3
    body = s3_client.get_object(Bucket="unit-uploads", Key=started.key)["Body"].read()
    assert body == b"\x01" * (5 * MIB) + b"\x02" * 3


def test_complete_is_idempotent(service: UploadService, s3_client: Any) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=4)
    upload_parts(s3_client, started.key, started.upload_id, [4])
    first = service.complete("alice", started.upload_id, started.key)
    again = service.complete("alice", started.upload_id, started.key)
    assert again == dataclasses.replace(first, location=again.location)
    assert again.etag == first.etag and again.size == 4


def test_complete_checks_the_client_parts_list(service: UploadService, s3_client: Any) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=2)
    uploaded = upload_parts(s3_client, started.key, started.upload_id, [2])
    with pytest.raises(InvalidRequest, match="ETag"):
        service.complete("alice", started.upload_id, started.key, [ClientPart(1, '"deadbeef"')])
    with pytest.raises(InvalidRequest):
        service.complete("alice", started.upload_id, started.key, [ClientPart(2, uploaded[0]["ETag"])])
    done = service.complete("alice", started.upload_id, started.key, [ClientPart(1, uploaded[0]["ETag"])])
    assert done.size == 2


def test_complete_refuses_small_middle_parts_and_empty_uploads(service: UploadService, s3_client: Any) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=10)
    with pytest.raises(InvalidRequest, match="no parts"):
        service.complete("alice", started.upload_id, started.key)
    upload_parts(s3_client, started.key, started.upload_id, [5, 5])
    with pytest.raises(InvalidRequest, match="at least"):
        service.complete("alice", started.upload_id, started.key)


def test_complete_aborts_an_upload_over_the_maximum(settings: Settings, s3_client: Any) -> None:
    # Given an upload whose size was never declared (Companion) and a 6 MiB limit
    small = dataclasses.replace(settings, max_upload_bytes=6 * MIB)
    service = UploadService(small, S3Gateway(small, client=s3_client))
    started = service.start("alice", filename="x.png", content_type="image/png", size=None)
    upload_parts(s3_client, started.key, started.upload_id, [5 * MIB, 2 * MIB])
    # When it is completed / Then it is refused and nothing is left behind
    with pytest.raises(TooLarge):
        service.complete("alice", started.upload_id, started.key)
    assert s3_client.list_multipart_uploads(Bucket="unit-uploads").get("Uploads", []) == []
    assert s3_client.list_objects_v2(Bucket="unit-uploads").get("KeyCount") == 0


def test_abort_is_idempotent_and_owner_scoped(service: UploadService, s3_client: Any) -> None:
    started = service.start("alice", filename="x.png", content_type="image/png", size=1)
    with pytest.raises(Forbidden):
        service.abort("bob", started.upload_id, started.key)
    assert service.abort("alice", started.upload_id, started.key) is True
    assert service.abort("alice", started.upload_id, started.key) is False
    assert s3_client.list_multipart_uploads(Bucket="unit-uploads").get("Uploads", []) == []
    with pytest.raises(NotFound):
        service.list_parts("alice", started.upload_id, started.key)


def test_list_pending_shows_only_the_callers_uploads(service: UploadService) -> None:
    mine = service.start("alice", filename="a.png", content_type="image/png", size=1)
    service.start("bob", filename="b.png", content_type="image/png", size=1)
    service.start("alice|x", filename="c.png", content_type="image/png", size=1)
    assert [upload.upload_id for upload in service.list_pending("alice")] == [mine.upload_id]


def test_form_pins_key_type_size_and_tag_in_the_policy(service: UploadService) -> None:
    form = service.form("alice", filename="x.png", content_type="image/png", size=1234)
    policy = base64.b64decode(form.fields["policy"]).decode()
    assert form.fields["key"] == form.key and form.key.startswith("uploads/alice/")
    assert '["content-length-range", 1234, 1234]' in policy
    assert '{"Content-Type": "image/png"}' in policy
    assert "upload-status" in form.fields["tagging"] and "pending" in form.fields["tagging"]
    with pytest.raises(TooLarge):
        service.form("alice", filename="x.png", content_type="image/png", size=10 * MIB + 1)
    with pytest.raises(UnsupportedType):
        service.form("alice", filename="x.svg", content_type="image/svg+xml", size=10)


def test_object_status_follows_the_validators_tags(service: UploadService, s3_client: Any) -> None:
    # Given a completed upload, still pending
    started = service.start("alice", filename="x.png", content_type="image/png", size=3)
    upload_parts(s3_client, started.key, started.upload_id, [3])
    service.complete("alice", started.upload_id, started.key)
    assert service.object_status("alice", started.key).status == "pending"
    # When the validator tags it (keeping a foreign tag) / Then the status says so
    s3_client.put_object_tagging(
        Bucket="unit-uploads",
        Key=started.key,
        Tagging={"TagSet": [{"Key": "upload-status", "Value": "valid"}, {"Key": "av", "Value": "clean"}]},
    )
    found = service.object_status("alice", started.key)
    assert (found.status, found.tags, found.quarantine_key) == ("valid", {"upload-status": "valid"}, None)
    # And another caller cannot ask
    with pytest.raises(Forbidden):
        service.object_status("bob", started.key)


def test_object_status_finds_a_quarantined_object(service: UploadService, s3_client: Any) -> None:
    key = service.start("alice", filename="x.png", content_type="image/png", size=1).key
    with pytest.raises(NotFound):
        service.object_status("alice", key)
    s3_client.put_object(
        Bucket="unit-uploads",
        Key=f"quarantine/{key}",
        Body=b"<svg/>",
        Tagging="upload-status=rejected&upload-reason=active-content",
    )
    found = service.object_status("alice", key)
    assert (found.status, found.reason) == ("rejected", "active-content")
    assert found.quarantine_key == f"quarantine/{key}"
