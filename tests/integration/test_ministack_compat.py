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
