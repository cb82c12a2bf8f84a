"""POST /s3/sign over real HTTP, and the S3 requests sent the way Uppy 6's S3 client sends them.

Each presigned request goes to the local S3 (MiniStack, which checks signatures, signed headers
and POST policies as S3 does) the way `@uppy/aws-s3` sends it (lib/s3-client/S3mini.js): 6.1.0,
which `npm install uppy` (6.0.1) brings, sends only its own Content-Type and ignores the answer's
`headers`; 6.3.1 adds them. Create, parts, list, complete with its XML, abort.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from test_limits_http import registry_of
from upload_fixtures import api, bucket, s3
from upload_flow import MIB, pattern

from local.stack import LocalStack

pytestmark = pytest.mark.integration

__all__ = ["api", "bucket", "s3"]
TIMEOUT = 60


def sign(api: Any, body: dict[str, Any], user: str = "alice") -> dict[str, Any]:
    answer = api.request("POST", "/s3/sign", json=body, user=user)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


UPPY_6_1 = "6.1.0"
UPPY_6_3 = "6.3.1"


def send(
    signed: dict[str, Any],
    data: bytes | str | None = None,
    content_type: str | None = None,
    *,
    uppy: str = UPPY_6_1,
    url: str | None = None,
) -> requests.Response:
    """Uppy's xhr(): its own Content-Type (when it has one); 6.3 then adds the signer's headers."""
    headers = {"Content-Type": content_type} if content_type else {}
    if uppy == UPPY_6_3:
        headers.update(signed.get("headers") or {})
    return requests.request(signed["method"], url or signed["url"], data=data, headers=headers, timeout=TIMEOUT)


def with_query(url: str, **changes: str) -> str:
    """The URL with some of its (signed) query parameters changed."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def create(api: Any, size: int, user: str = "alice", name: str = "photo.png") -> tuple[str, str]:
    signed = sign(api, {"method": "POST", "key": f"uuid-{name}", "size": size, "name": name, "type": "image/png"}, user)
    created = send(signed, content_type="image/png")
    assert created.status_code == 200, created.text
    upload_id = re.search(r"<UploadId>([^<]+)</UploadId>", created.text)
    assert upload_id is not None, created.text
    return str(signed["key"]), upload_id.group(1)


def put_part(api: Any, key: str, upload_id: str, number: int, body: bytes, *, user: str = "alice") -> requests.Response:
    signed = sign(api, {"method": "PUT", "key": key, "uploadId": upload_id, "partNumber": number}, user)
    return send(signed, body)


def complete_xml(etags: dict[int, str]) -> str:
    parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in sorted(etags.items()))
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>"


@pytest.mark.parametrize("uppy", [UPPY_6_1, UPPY_6_3])
def test_a_multipart_upload_as_uppy_6_sends_it_arrives_whole(api: Any, s3: Any, bucket: str, uppy: str) -> None:
    # Given a 12 MiB file (Uppy's default part size for it: 5 MiB)
    data = pattern(12 * MIB, seed=61)
    key, upload_id = create(api, len(data))
    assert key.startswith("uploads/alice/")
    # When its parts are PUT, listed (as after a reload) and the upload completed
    etags = {}
    for number in (1, 2, 3):
        put = put_part(api, key, upload_id, number, data[(number - 1) * 5 * MIB : number * 5 * MIB])
        assert put.status_code == 200, put.text
        etags[number] = put.headers["ETag"]
    listed = send(sign(api, {"method": "GET", "key": key, "uploadId": upload_id}), uppy=uppy)
    assert listed.status_code == 200 and listed.text.count("<PartNumber>") == 3
    completion = sign(api, {"method": "POST", "key": key, "uploadId": upload_id})
    done = send(completion, complete_xml(etags), content_type="application/xml", uppy=uppy)
    # Then S3 stores the file, tagged pending, with the owner's metadata
    assert done.status_code == 200, done.text
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "image/png"
    assert stored["Metadata"]["owner"]
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
    assert tags.get("upload-status") == "pending"


def sign_whole_file(api: Any, data: bytes, name: str = "s.png") -> dict[str, Any]:
    body = {"method": "PUT", "key": f"u-{name}", "size": len(data), "name": name, "type": "image/png"}
    return sign(api, body)


@pytest.mark.parametrize("uppy", [UPPY_6_1, UPPY_6_3])
def test_a_small_file_goes_as_one_presigned_put_with_its_tag_and_metadata(
    api: Any, s3: Any, bucket: str, upload_stack: LocalStack, uppy: str
) -> None:
    # Given a 3000-byte file's whole-file request, as the documented signRequest sends it
    data = pattern(3000, seed=62)
    signed = sign_whole_file(api, data)
    assert signed["method"] == "PUT" and "fields" not in signed
    assert signed["key"].startswith("uploads/alice/")
    # And the whole file is reserved as a form is
    plan = registry_of(upload_stack).plan(signed["key"])
    assert plan is not None and plan.declared_size == len(data)
    # When the browser PUTs it with its own Content-Type (and, on 6.3, the answer's headers)
    put = send(signed, data, content_type="image/png", uppy=uppy)
    # Then S3 stores exactly it, typed, with the owner's metadata and the pending tag
    assert put.status_code == 200, put.text
    stored = s3.get_object(Bucket=bucket, Key=signed["key"])
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "image/png"
    assert stored["Metadata"]["owner"] == "alice"
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=signed["key"])["TagSet"]}
    assert tags == {"upload-status": "pending"}


def test_s3_refuses_a_whole_file_put_of_another_length_type_tag_or_metadata(api: Any, s3: Any, bucket: str) -> None:
    # Given a signed whole-file PUT for 3000 bytes of image/png
    data = pattern(3000, seed=64)
    signed = sign_whole_file(api, data, name="t.png")
    url = signed["url"]
    attempts = {
        "one byte more": send(signed, data + b"x", content_type="image/png"),
        "one byte less": send(signed, data[:-1], content_type="image/png"),
        "another content type": send(signed, data, content_type="image/gif"),
        "no content type": send(signed, data),
        "another tag (query)": send(signed, data, "image/png", url=with_query(url, **{"x-amz-tagging": "a=b"})),
        "another owner (query)": send(signed, data, "image/png", url=with_query(url, **{"x-amz-meta-owner": "bob"})),
        "an unsigned tag header": requests.put(
            url, data=data, headers={"Content-Type": "image/png", "x-amz-tagging": "a=b"}, timeout=TIMEOUT
        ),
        "an unsigned metadata header": requests.put(
            url, data=data, headers={"Content-Type": "image/png", "x-amz-meta-extra": "1"}, timeout=TIMEOUT
        ),
    }
    # Then S3 refuses every one and nothing is stored
    assert {what: answer.status_code for what, answer in attempts.items()} == dict.fromkeys(attempts, 403)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=signed["key"])
    # And the signed request itself still goes through
    assert send(signed, data, content_type="image/png").status_code == 200


def test_s3_refuses_a_create_with_another_type_tag_or_metadata(api: Any, s3: Any, bucket: str) -> None:
    signed = sign(api, {"method": "POST", "key": "u-e.png", "size": 6 * MIB, "name": "e.png", "type": "image/png"})
    url = signed["url"]
    attempts = {
        "another content type": send(signed, content_type="image/gif"),
        "another tag (query)": send(signed, content_type="image/png", url=with_query(url, **{"x-amz-tagging": "a=b"})),
        "no tag (query)": send(
            signed,
            content_type="image/png",
            url=urlunsplit(
                urlsplit(url)._replace(
                    query=urlencode([(k, v) for k, v in parse_qsl(urlsplit(url).query) if k != "x-amz-tagging"])
                )
            ),
        ),
        "an unsigned tag header": requests.post(
            url, headers={"Content-Type": "image/png", "x-amz-tagging": "a=b"}, timeout=TIMEOUT
        ),
    }
    assert {what: answer.status_code for what, answer in attempts.items()} == dict.fromkeys(attempts, 403)
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=signed["key"]).get("Uploads")


def test_a_part_longer_than_planned_is_refused_by_s3(api: Any) -> None:
    key, upload_id = create(api, 6 * MIB)
    put = put_part(api, key, upload_id, 2, b"x" * (MIB + 1))
    assert put.status_code == 403, put.text


def test_completing_more_or_less_than_declared_is_impossible(api: Any, s3: Any, bucket: str) -> None:
    # Given an upload declared as 10 MiB whose parts are uploaded as planned
    data = pattern(10 * MIB, seed=63)
    key, upload_id = create(api, len(data))
    etags = {n: put_part(api, key, upload_id, n, data[(n - 1) * 5 * MIB : n * 5 * MIB]).headers["ETag"] for n in (1, 2)}
    completion = sign(api, {"method": "POST", "key": key, "uploadId": upload_id})
    # When the browser completes with fewer parts than were checked, or drops the signed size
    short = send(completion, complete_xml({1: etags[1]}), content_type="application/xml")
    assert short.status_code == 400, short.text
    other_size = with_query(completion["url"], **{"x-amz-mp-object-size": str(5 * MIB)})
    changed = send(completion, complete_xml({1: etags[1]}), content_type="application/xml", url=other_size)
    assert changed.status_code == 403, changed.text
    # Then nothing was stored; the signed completion of the checked parts works
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key)
    assert send(completion, complete_xml(etags), content_type="application/xml").status_code == 200
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(data)


def test_completion_is_not_signed_before_every_planned_part_is_there(api: Any) -> None:
    key, upload_id = create(api, 10 * MIB)
    put_part(api, key, upload_id, 1, b"x" * 5 * MIB)
    refused = api.request("POST", "/s3/sign", json={"method": "POST", "key": key, "uploadId": upload_id})
    assert refused.status_code == 400 and refused.json()["code"] == "IncompleteUpload"


def test_a_second_user_cannot_sign_for_the_first_users_upload(api: Any) -> None:
    key, upload_id = create(api, 6 * MIB)
    for body in (
        {"method": "PUT", "key": key, "uploadId": upload_id, "partNumber": 1},
        {"method": "GET", "key": key, "uploadId": upload_id},
        {"method": "POST", "key": key, "uploadId": upload_id},
        {"method": "DELETE", "key": key, "uploadId": upload_id},
    ):
        refused = api.request("POST", "/s3/sign", json=body, user="bob")
        assert refused.status_code == 403, refused.text
        assert set(refused.json()) == {"code", "message"}
    # And the owner's upload is unaffected
    assert put_part(api, key, upload_id, 1, b"x" * 5 * MIB).status_code == 200


def test_abort_ends_the_upload_in_s3_and_releases_the_reservation(
    api: Any, s3: Any, bucket: str, upload_stack: LocalStack
) -> None:
    registry = registry_of(upload_stack)
    key, upload_id = create(api, 6 * MIB, user="carol")
    assert registry.usage("carol").reserved_bytes == 6 * MIB
    put_part(api, key, upload_id, 1, b"x" * 5 * MIB, user="carol")
    aborted = sign(api, {"method": "DELETE", "key": key, "uploadId": upload_id}, user="carol")
    send(aborted)  # Uppy sends it; the upload is already gone, which Uppy only logs
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads")
    assert registry.usage("carol").reserved_bytes == 0
    body = {"method": "PUT", "key": key, "uploadId": upload_id, "partNumber": 2}
    assert api.request("POST", "/s3/sign", json=body, user="carol").status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"method": "DELETE", "key": "uploads/alice/x.png"}, 400),
        ({"method": "GET", "key": "uploads/alice/x.png"}, 400),
        ({"method": "GET", "key": "uploads/bob/0123/x.png", "uploadId": "u"}, 403),
        ({"method": "PUT", "key": "somewhere/else.png", "uploadId": "u", "partNumber": 1}, 403),
        ({"method": "PUT", "key": "k.png", "size": 10, "type": "text/html"}, 415),
    ],
)
def test_other_requests_are_refused_with_json_errors(api: Any, body: dict[str, Any], status: int) -> None:
    refused = api.request("POST", "/s3/sign", json=body)
    assert refused.status_code == status, refused.text
    assert set(refused.json()) == {"code", "message"}


def test_a_made_up_upload_id_is_not_signed(api: Any) -> None:
    signed = sign(api, {"method": "POST", "key": "u-m.png", "size": 10, "name": "m.png", "type": "image/png"})
    refused = api.request("POST", "/s3/sign", json={"method": "GET", "key": signed["key"], "uploadId": "invented"})
    assert refused.status_code == 404, refused.text


def test_the_bucket_lets_a_browser_send_what_uppy_6_sends(api: Any, bucket: str) -> None:
    # A CORS preflight for the create (POST with the signed headers) and the abort (DELETE)
    signed = sign(api, {"method": "POST", "key": "u-c.png", "size": 10, "name": "c.png", "type": "image/png"})
    headers = ",".join(name.lower() for name in signed["headers"])
    assert headers == "content-type"
    for method, allowed in (
        ("POST", headers),
        ("DELETE", ""),
        ("POST", "if-none-match,x-amz-mp-object-size,content-type"),
    ):
        preflight = requests.options(
            signed["url"],
            headers={
                "Origin": "http://127.0.0.1:9",
                "Access-Control-Request-Method": method,
                **({"Access-Control-Request-Headers": allowed} if allowed else {}),
            },
            timeout=TIMEOUT,
        )
        assert preflight.status_code == 200, (method, preflight.status_code, preflight.text)
        assert method in preflight.headers.get("Access-Control-Allow-Methods", "")


def test_the_bucket_refuses_a_header_its_cors_does_not_allow(api: Any) -> None:
    # Given a URL of the bucket; When a browser asks to send a header the CORS rule does not list
    signed = sign(api, {"method": "POST", "key": "u-d.png", "size": 10, "name": "d.png", "type": "image/png"})
    preflight = requests.options(
        signed["url"],
        headers={
            "Origin": "http://127.0.0.1:9",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-not-allowed",
        },
        timeout=TIMEOUT,
    )
    # Then the preflight is refused (so the passing preflights above are the rule's doing)
    assert preflight.status_code == 403, (preflight.status_code, dict(preflight.headers))
