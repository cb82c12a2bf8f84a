"""The uploads function end to end in process: API Gateway events in, HTTP responses out (moto S3)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lambda_fakes import FakeContext, http_event

import companion_routes
import uploads_handler
from service_factory import upload_service
from upload_core.s3 import S3Gateway
from upload_core.uploads import UploadService

Invoke = Callable[..., tuple[int, Any]]


@pytest.fixture
def invoke(s3_client: Any, lambda_context: FakeContext) -> Iterator[Invoke]:
    # Each test gets a service on its own fresh moto S3, in place of the container's.
    service = UploadService(uploads_handler.settings, S3Gateway(uploads_handler.settings, client=s3_client))
    uploads_handler.app.dependency_overrides[upload_service] = lambda: service

    def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = uploads_handler.lambda_handler(http_event(method, path, **kwargs), lambda_context)
        body = response.get("body") or ""
        return int(response["statusCode"]), json.loads(body) if body else None

    yield call
    uploads_handler.app.dependency_overrides.clear()


def create(invoke: Invoke, sub: str = "alice", **overrides: Any) -> dict[str, Any]:
    body = {"filename": "photo.jpg", "contentType": "image/jpeg", "size": 12 * 1024 * 1024, **overrides}
    status, payload = invoke("POST", "/uploads", body=body, sub=sub)
    assert status == 201, payload
    return dict(payload)


def upload_path(upload: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    upload_id = upload["uploadId"]
    return {
        "path": f"/uploads/{upload_id}{suffix}",
        "route": "/uploads/{uploadId}" + suffix,
        "path_params": {"uploadId": upload_id},
    }


def test_create_returns_the_part_plan(invoke: Invoke) -> None:
    upload = create(invoke)
    assert upload["partSize"] == 8 * 1024 * 1024
    assert upload["partCount"] == 2
    assert upload["key"].startswith("uploads/alice/")


@pytest.mark.parametrize(
    ("body", "raw", "status", "code"),
    [
        (None, "{not json", 400, "InvalidRequest"),
        (None, "", 400, "InvalidRequest"),
        ([1, 2], None, 400, "InvalidRequest"),
        ({"contentType": "image/png", "size": 1}, None, 400, "InvalidRequest"),
        ({"filename": "a.png", "contentType": "image/png", "size": "1"}, None, 400, "InvalidRequest"),
        ({"filename": "a.png", "contentType": "image/png", "size": True}, None, 400, "InvalidRequest"),
        ({"filename": "a.png", "contentType": "image/png", "size": -1}, None, 400, "InvalidRequest"),
        ({"filename": "a.png", "contentType": "image/png", "size": 1, "extra": 1}, None, 400, "InvalidRequest"),
        ({"filename": "a.png", "contentType": "text/html", "size": 1}, None, 415, "UnsupportedContentType"),
        ({"filename": "a.png", "contentType": "image/png", "size": 10**12}, None, 413, "UploadTooLarge"),
        ({"filename": "a.png", "contentType": "image/png", "size": 9, "partSize": 1}, None, 400, "InvalidPartSize"),
        ({"filename": "a.png", "contentType": "image/png", "size": 1, "metadata": {"owner": "x"}}, None, 400, None),
    ],
)
def test_bad_create_requests_get_a_clear_4xx(
    invoke: Invoke, body: Any, raw: str | None, status: int, code: str | None
) -> None:
    got_status, payload = invoke("POST", "/uploads", body=body, raw_body=raw)
    assert got_status == status
    assert set(payload) == {"code", "message"}
    assert payload["message"]
    if code:
        assert payload["code"] == code


def test_requests_without_a_subject_are_unauthorized(invoke: Invoke) -> None:
    status, payload = invoke("GET", "/uploads", sub=None)
    assert (status, payload["code"]) == (401, "Unauthorized")


def test_sign_list_complete_abort_flow(invoke: Invoke, s3_client: Any) -> None:
    upload = create(invoke, size=6)
    status, signed = invoke("POST", **upload_path(upload, "/parts"), body={"key": upload["key"], "partNumbers": [1]})
    assert status == 200
    assert signed["parts"][0]["partNumber"] == 1
    assert signed["expiresAt"].endswith("Z")
    s3_client.upload_part(
        Bucket="unit-uploads", Key=upload["key"], UploadId=upload["uploadId"], PartNumber=1, Body=b"abcdef"
    )
    status, listed = invoke("GET", **upload_path(upload, "/parts"), query={"key": upload["key"]})
    assert status == 200
    assert [(p["partNumber"], p["size"]) for p in listed["parts"]] == [(1, 6)]
    status, done = invoke("POST", **upload_path(upload, "/complete"), body={"key": upload["key"]})
    assert (status, done["size"], done["key"]) == (200, 6, upload["key"])
    status, again = invoke("POST", **upload_path(upload, "/complete"), body={"key": upload["key"]})
    assert (status, again["etag"]) == (200, done["etag"])


def test_another_user_is_refused_on_every_upload_route(invoke: Invoke) -> None:
    upload = create(invoke)
    key_body = {"key": upload["key"]}
    attempts = [
        ("POST", upload_path(upload, "/parts"), {"body": {**key_body, "partNumbers": [1]}}),
        ("GET", upload_path(upload, "/parts"), {"query": key_body}),
        ("POST", upload_path(upload, "/complete"), {"body": key_body}),
        ("DELETE", upload_path(upload), {"query": key_body}),
    ]
    for method, where, extra in attempts:
        status, payload = invoke(method, **where, **extra, sub="mallory")
        assert (status, payload["code"]) == (403, "ForeignKey"), (method, where)
    status, mine = invoke("GET", "/uploads", sub="mallory")
    assert (status, mine) == (200, {"uploads": []})


def test_sign_refuses_more_part_numbers_than_allowed(invoke: Invoke) -> None:
    upload = create(invoke)
    body = {"key": upload["key"], "partNumbers": list(range(1, 1002))}
    status, payload = invoke("POST", **upload_path(upload, "/parts"), body=body)
    assert (status, payload["code"]) == (400, "TooManyParts")


def test_unknown_upload_is_not_found_and_abort_is_idempotent(invoke: Invoke) -> None:
    upload = create(invoke)
    bogus = {**upload, "uploadId": "does-not-exist"}
    status, payload = invoke("GET", **upload_path(bogus, "/parts"), query={"key": upload["key"]})
    assert (status, payload["code"]) == (404, "NotFound")
    for _ in range(2):
        status, payload = invoke("DELETE", **upload_path(upload), query={"key": upload["key"]})
        assert (status, payload) == (204, None)


def test_missing_query_key_is_a_bad_request(invoke: Invoke) -> None:
    upload = create(invoke)
    status, payload = invoke("GET", **upload_path(upload, "/parts"))
    assert (status, payload["code"]) == (400, "InvalidRequest")


def test_form_upload_is_created(invoke: Invoke) -> None:
    status, form = invoke("POST", "/uploads/form", body={"filename": "a.png", "contentType": "image/png", "size": 10})
    assert status == 201
    assert form["fields"]["key"] == form["key"]
    assert form["fields"]["Content-Type"] == "image/png"


def test_openapi_document_lists_the_native_routes(invoke: Invoke) -> None:
    status, document = invoke("GET", "/openapi.json", sub=None)
    assert status == 200
    assert {"/uploads", "/uploads/{uploadId}/parts", "/uploads/{uploadId}/complete", "/uploads/form"} <= set(
        document["paths"]
    )


# --- Companion routes ---------------------------------------------------------------------------


def test_companion_multipart_flow(invoke: Invoke, s3_client: Any) -> None:
    status, created = invoke(
        "POST",
        "/s3/multipart",
        body={"filename": "a.png", "type": "image/png", "metadata": {"name": "a.png", "x": None}},
    )
    assert status == 200
    assert set(created) == {"key", "uploadId", "bucket"}
    base = f"/s3/multipart/{created['uploadId']}"
    params = {"uploadId": created["uploadId"]}
    status, one = invoke(
        "GET",
        f"{base}/1",
        route="/s3/multipart/{uploadId}/{partNumber}",
        path_params={**params, "partNumber": "1"},
        query={"key": created["key"]},
    )
    assert status == 200
    assert "partNumber=1" in one["url"]
    status, batch = invoke(
        "GET",
        f"{base}/batch",
        route="/s3/multipart/{uploadId}/batch",
        path_params=params,
        query={"key": created["key"], "partNumbers": "1,2"},
    )
    assert status == 200
    assert set(batch["presignedUrls"]) == {"1", "2"}
    etag = s3_client.upload_part(
        Bucket="unit-uploads", Key=created["key"], UploadId=created["uploadId"], PartNumber=1, Body=b"xyz"
    )["ETag"]
    status, listed = invoke(
        "GET", base, route="/s3/multipart/{uploadId}", path_params=params, query={"key": created["key"]}
    )
    assert status == 200
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, etag, 3)]
    status, done = invoke(
        "POST",
        f"{base}/complete",
        route="/s3/multipart/{uploadId}/complete",
        path_params=params,
        query={"key": created["key"]},
        body={"parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert status == 200
    assert done["key"] == created["key"]
    status, aborted = invoke(
        "DELETE", base, route="/s3/multipart/{uploadId}", path_params=params, query={"key": created["key"]}
    )
    assert (status, aborted) == (200, {})


@pytest.mark.parametrize("part_number", ["0", "-1", "5abc", "10001", "1.5"])
def test_companion_refuses_bad_part_numbers(invoke: Invoke, part_number: str) -> None:
    status, created = invoke("POST", "/s3/multipart", body={"filename": "a.png", "type": "image/png"})
    base = f"/s3/multipart/{created['uploadId']}"
    status, payload = invoke(
        "GET",
        f"{base}/{part_number}",
        route="/s3/multipart/{uploadId}/{partNumber}",
        path_params={"uploadId": created["uploadId"], "partNumber": part_number},
        query={"key": created["key"]},
    )
    assert (status, payload["code"]) == (400, "InvalidPartNumber")


def test_companion_params_returns_a_post_form(invoke: Invoke) -> None:
    status, params = invoke("GET", "/s3/params", query={"filename": "a.png", "type": "image/png"})
    assert status == 200
    assert params["method"] == "POST"
    assert params["fields"]["Content-Type"] == "image/png"
    status, payload = invoke("GET", "/s3/params", query={"filename": "a.exe", "type": "application/x-msdownload"})
    assert (status, payload["code"]) == (415, "UnsupportedContentType")
    status, payload = invoke("GET", "/s3/params", query={"type": "image/png"})
    assert (status, payload["code"]) == (400, "MissingParameter")


def test_companion_routes_check_ownership(invoke: Invoke) -> None:
    status, created = invoke("POST", "/s3/multipart", body={"filename": "a.png", "type": "image/png"})
    base = f"/s3/multipart/{created['uploadId']}"
    status, payload = invoke(
        "GET",
        base,
        route="/s3/multipart/{uploadId}",
        path_params={"uploadId": created["uploadId"]},
        query={"key": created["key"]},
        sub="mallory",
    )
    assert (status, payload["code"]) == (403, "ForeignKey")


def test_object_status_route(invoke: Invoke, s3_client: Any) -> None:
    upload = create(invoke, size=3)
    status, payload = invoke("GET", "/objects/status", query={"key": upload["key"]})
    assert (status, payload["code"]) == (404, "NoSuchKey")
    s3_client.put_object(Bucket="unit-uploads", Key=upload["key"], Body=b"abc", Tagging="upload-status=pending")
    status, payload = invoke("GET", "/objects/status", query={"key": upload["key"]})
    assert status == 200
    assert payload == {
        "key": upload["key"],
        "status": "pending",
        "reason": None,
        "tags": {"upload-status": "pending"},
        "quarantined": False,
    }
    status, payload = invoke("GET", "/objects/status", query={"key": upload["key"]}, sub="mallory")
    assert status == 403


def test_native_and_companion_routes_share_one_service_and_client() -> None:
    # Given the container's provider, which both route modules name in Depends()
    assert uploads_handler.upload_service is companion_routes.upload_service is upload_service
    # When it is asked twice / Then it built one UploadService, so one boto3 client
    first = upload_service()
    assert upload_service() is first
    assert isinstance(first, UploadService)
