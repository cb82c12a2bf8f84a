"""The embedded S3 behaves like S3 where the product depends on it (local/ministack_compat.py)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration


def tag_set(s3: Any, bucket: str, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def test_tags_given_at_multipart_creation_reach_the_object(upload_stack: Any) -> None:
    s3, bucket = upload_stack.s3_client(), upload_stack.bucket
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="compat/mpu", Tagging="a=1&b=two%20words")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="compat/mpu", UploadId=upload_id, PartNumber=1, Body=b"x")["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="compat/mpu",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert tag_set(s3, bucket, "compat/mpu") == {"a": "1", "b": "two words"}


def test_the_tagging_field_of_a_post_form_reaches_the_object(upload_stack: Any) -> None:
    s3, bucket = upload_stack.s3_client(), upload_stack.bucket
    tagging = "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    form = s3.generate_presigned_post(
        bucket, "compat/form", Fields={"tagging": tagging}, Conditions=[{"tagging": tagging}], ExpiresIn=60
    )
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("f", b"body")}, timeout=30)
    assert posted.status_code in (200, 204), posted.text
    assert tag_set(s3, bucket, "compat/form") == {"k": "v"}


def test_range_reads_of_a_version_return_only_the_range(upload_stack: Any) -> None:
    s3, bucket = upload_stack.s3_client(), upload_stack.bucket
    version = s3.put_object(Bucket=bucket, Key="compat/range", Body=b"0123456789").get("VersionId")
    assert version, "the template's bucket is versioned"
    sliced = s3.get_object(Bucket=bucket, Key="compat/range", VersionId=version, Range="bytes=2-4")
    assert sliced["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert sliced["Body"].read() == b"234"
    assert sliced["ContentRange"] == "bytes 2-4/10"
    tail = s3.get_object(Bucket=bucket, Key="compat/range", VersionId=version, Range="bytes=-3")
    assert tail["Body"].read() == b"789"


def presigned_put(s3: Any, bucket: str, key: str, **params: Any) -> str:
    url: str = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=60)
    return url


@pytest.mark.parametrize(
    "extra",
    [{"x-amz-copy-source": "BUCKET/compat/victim"}, {"x-amz-meta-owner": "mallory"}, {"x-amz-tagging": "a=b"}],
)
def test_presigned_requests_with_unsigned_amz_headers_are_refused(upload_stack: Any, extra: dict[str, str]) -> None:
    # Given another object in the bucket and a presigned PUT for a different key
    s3, bucket = upload_stack.s3_client(), upload_stack.bucket
    s3.put_object(Bucket=bucket, Key="compat/victim", Body=b"secret")
    url = presigned_put(s3, bucket, "compat/attacker")
    headers = {name: value.replace("BUCKET", bucket) for name, value in extra.items()}
    # When the URL is used with an x-amz-* header it did not sign
    response = requests.put(url, data=b"mine", headers=headers, timeout=30)
    # Then S3's answer is AWS's: 403 HeadersNotSigned, and nothing was written or copied
    assert response.status_code == 403, response.text
    assert "<HeadersNotSigned>" in response.text and next(iter(extra)) in response.text
    assert "compat/attacker" not in [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_presigned_requests_with_their_signed_amz_headers_still_work(upload_stack: Any) -> None:
    # Given a presigned PUT that signs a metadata header
    s3, bucket = upload_stack.s3_client(), upload_stack.bucket
    url = presigned_put(s3, bucket, "compat/signed", Metadata={"owner": "alice"})
    # When it is used with exactly that header
    response = requests.put(url, data=b"mine", headers={"x-amz-meta-owner": "alice"}, timeout=30)
    # Then S3 stores the object with its metadata
    assert response.status_code == 200, response.text
    assert s3.head_object(Bucket=bucket, Key="compat/signed")["Metadata"] == {"owner": "alice"}
