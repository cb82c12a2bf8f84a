"""POST /imports over real HTTP: the local gateway, the imports function's worker, MiniStack's S3,
and a real source server on 127.0.0.1.

This module runs its own local stack because the imports function must be started with the
source server allowed: IMPORT_ALLOWED_DESTINATIONS=127.0.0.1:<port> is passed as an environment
override (like `sam local start-api --env-vars`), the test-only escape hatch the template
declares empty. The canary's port is not allowed, so it must never be reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from api_client import ApiClient

from local.stack import LocalStack
from tests.import_support import Canary, Reply, SourceServer, drip, image_bytes, png_of_size, redirect
from tests.stack_limits import GENEROUS_LIMITS

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
MAX_BYTES = 24 * MIB


@pytest.fixture(scope="module")
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    with Canary() as running:
        yield running


@pytest.fixture(scope="module")
def import_stack(source: SourceServer) -> Iterator[LocalStack]:
    overrides = {
        "IMPORT_ALLOWED_DESTINATIONS": source.authority,
        "IMPORT_MAX_BYTES": str(MAX_BYTES),
        # Long enough for the 20+ MiB imports on a slow machine, short enough for the drip test.
        "IMPORT_TIMEOUT_SECONDS": "8",
    }
    # No S3 event loop: the validator would re-tag imported objects while a test reads them.
    with LocalStack(
        s3_port=0, api_port=0, env_overrides=overrides, s3_events=False, parameter_overrides=GENEROUS_LIMITS
    ) as running:
        yield running


@pytest.fixture(scope="module")
def api(import_stack: LocalStack) -> ApiClient:
    return ApiClient(import_stack)


@pytest.fixture(scope="module")
def s3(import_stack: LocalStack) -> Any:
    return import_stack.s3_client()


@pytest.fixture(scope="module")
def bucket(import_stack: LocalStack) -> str:
    return import_stack.bucket


def post_import(api: ApiClient, url: str, *, user: str = "importer", **fields: Any) -> requests.Response:
    return api.request("POST", "/imports", json={"url": url, **fields}, user=user)


def nothing_stored(s3: Any, bucket: str, user: str) -> bool:
    prefix = f"uploads/{user}/"
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    return not objects and not uploads


def test_an_image_is_imported_into_the_callers_prefix(
    api: ApiClient, s3: Any, bucket: str, source: SourceServer
) -> None:
    # Given a PNG served with a misleading type and a query string carrying a token
    data = image_bytes("PNG", (40, 30))
    source.routes["/gallery/sunset"] = Reply(body=[data], headers=[("Content-Type", "application/octet-stream")])
    # When the caller imports it
    response = post_import(api, source.url("/gallery/sunset?token=abc123"), filename="Sunset at the beach.png")
    # Then 201 with the stored object's key, size, type and ETag
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["key"].startswith("uploads/importer/") and body["key"].endswith("/Sunset at the beach.png")
    assert (body["size"], body["contentType"]) == (len(data), "image/png")
    # And S3 holds exactly those bytes, typed as detected, with owner, name and source, pending validation
    stored = s3.get_object(Bucket=bucket, Key=body["key"])
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "image/png"
    assert stored["ETag"] == body["etag"]
    assert stored["Metadata"] == {
        "owner": "importer",
        "original-filename": "Sunset at the beach.png",
        "source-url": f"http://127.0.0.1:{source.port}/gallery/sunset",
    }
    tags = s3.get_object_tagging(Bucket=bucket, Key=body["key"])["TagSet"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == {"upload-status": "pending"}
    assert source.requests[-1].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")])
def test_other_image_formats_are_detected(api: ApiClient, source: SourceServer, fmt: str, mime: str) -> None:
    source.routes[f"/img.{fmt}"] = Reply(body=[image_bytes(fmt)], chunked=True)
    response = post_import(api, source.url(f"/img.{fmt}"))
    assert response.status_code == 201, response.text
    assert response.json()["contentType"] == mime


def test_a_large_chunked_file_is_streamed_in_parts(api: ApiClient, s3: Any, bucket: str, source: SourceServer) -> None:
    # Given 20 MiB without a Content-Length (the function's parts are 8 MiB)
    data = png_of_size(20 * MIB)
    source.routes["/large.png"] = Reply(body=[data[i : i + MIB] for i in range(0, len(data), MIB)], chunked=True)
    response = post_import(api, source.url("/large.png"), user="bulk")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["size"] == len(data)
    assert s3.get_object(Bucket=bucket, Key=body["key"])["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix="uploads/bulk/").get("Uploads", []) == []


def test_a_redirect_chain_is_followed(api: ApiClient, source: SourceServer) -> None:
    source.routes["/go/1"] = redirect("/go/2")
    source.routes["/go/2"] = redirect(f"http://127.0.0.1:{source.port}/go/3", 307)
    source.routes["/go/3"] = redirect("/files/owl.gif", 308)
    source.routes["/files/owl.gif"] = Reply(body=[image_bytes("GIF")])
    response = post_import(api, source.url("/go/1"))
    assert response.status_code == 201, response.text
    assert response.json()["key"].endswith("/owl.gif")


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::ffff:169.254.169.254]/",
        "http://2130706433:{canary}/",
        "http://127.0.0.1:{canary}/",
        "http://localhost:{canary}/",
        "http://10.0.0.1/",
        "http://[::1]:{canary}/",
    ],
)
def test_internal_destinations_are_forbidden(api: ApiClient, s3: Any, bucket: str, canary: Canary, target: str) -> None:
    response = post_import(api, target.format(canary=canary.port), user="attacker")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "ForbiddenDestination"
    assert "169.254" not in body["message"] and "127.0.0.1" not in body["message"]
    assert canary.connections == 0
    assert nothing_stored(s3, bucket, "attacker")


def test_an_allowed_server_cannot_redirect_to_the_canary(api: ApiClient, source: SourceServer, canary: Canary) -> None:
    source.routes["/bounce"] = redirect(f"http://127.0.0.1:{canary.port}/")
    response = post_import(api, source.url("/bounce"))
    assert response.status_code == 403
    assert response.json()["code"] == "ForbiddenDestination"
    assert canary.connections == 0


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("file:///etc/passwd", "UnsupportedScheme"),
        ("http://u:p@example.com/", "CredentialsInUrl"),
        ("nope", "UnsupportedScheme"),
    ],
)
def test_malformed_urls_are_400(api: ApiClient, url: str, code: str) -> None:
    response = post_import(api, url)
    assert (response.status_code, response.json()["code"]) == (400, code)


def test_a_file_over_the_cap_is_413_and_leaves_nothing(
    api: ApiClient, s3: Any, bucket: str, source: SourceServer
) -> None:
    # Given a file larger than IMPORT_MAX_BYTES, chunked so that only reading finds out
    data = png_of_size(MAX_BYTES + MIB)
    source.routes["/too-big.png"] = Reply(body=[data[i : i + MIB] for i in range(0, len(data), MIB)], chunked=True)
    response = post_import(api, source.url("/too-big.png"), user="greedy")
    # Then 413, and neither an object nor an unfinished multipart upload is left
    assert (response.status_code, response.json()["code"]) == (413, "ImportTooLarge")
    assert nothing_stored(s3, bucket, "greedy")


def test_content_that_is_not_an_image_is_415(api: ApiClient, s3: Any, bucket: str, source: SourceServer) -> None:
    source.routes["/page.html"] = Reply(body=[b"<!doctype html><html><script>alert(1)</script></html>"])
    response = post_import(api, source.url("/page.html"), user="html")
    assert (response.status_code, response.json()["code"]) == (415, "UnsupportedContentType")
    assert nothing_stored(s3, bucket, "html")


def test_an_upstream_error_is_502_without_its_body(api: ApiClient, source: SourceServer) -> None:
    source.routes["/broken"] = Reply(status=500, body=[b"Traceback: secret internals"])
    response = post_import(api, source.url("/broken"))
    assert (response.status_code, response.json()["code"]) == (502, "UpstreamStatus")
    assert "secret" not in response.text


def test_a_slow_drip_hits_the_deadline(api: ApiClient, s3: Any, bucket: str, source: SourceServer) -> None:
    source.routes["/drip.png"] = drip(b"\x89PNG\r\n\x1a\n", 0.25, limit_seconds=40)
    response = post_import(api, source.url("/drip.png"), user="patient")
    assert (response.status_code, response.json()["code"]) == (504, "ImportTimeout")
    assert nothing_stored(s3, bucket, "patient")


def test_an_import_needs_a_token(api: ApiClient, source: SourceServer) -> None:
    response = api.request("POST", "/imports", json={"url": source.url("/x.png")}, user=None)
    assert response.status_code == 401


def test_a_body_without_url_is_400(api: ApiClient) -> None:
    response = api.request("POST", "/imports", json={"filename": "x.png"})
    assert (response.status_code, response.json()["code"]) == (400, "InvalidRequest")


def test_a_retry_with_the_same_idempotency_key_stores_one_object(
    api: ApiClient, s3: Any, bucket: str, source: SourceServer
) -> None:
    # Given an import whose client retries it (a gateway timeout) with the same Idempotency-Key
    source.routes["/idempotent.png"] = Reply(body=[png_of_size(9 * MIB)])
    headers = {"Idempotency-Key": "7f3c2a10-retry"}
    url = source.url("/idempotent.png")
    first = api.request("POST", "/imports", json={"url": url}, user="retrier", headers=headers)
    # When the retry arrives
    again = api.request("POST", "/imports", json={"url": url}, user="retrier", headers=headers)
    # Then both answers name the same object, of which the bucket holds one version
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    versions = s3.list_object_versions(Bucket=bucket, Prefix="uploads/retrier/").get("Versions", [])
    assert [version["Key"] for version in versions] == [first.json()["key"]]
    # And a new key is a new import
    other = api.request("POST", "/imports", json={"url": url}, user="retrier", headers={"Idempotency-Key": "other"})
    assert other.status_code == 201 and other.json()["key"] != first.json()["key"]


def test_a_malformed_idempotency_key_is_400(api: ApiClient, source: SourceServer) -> None:
    source.routes["/never.png"] = Reply(body=[image_bytes("PNG")])
    response = api.request(
        "POST", "/imports", json={"url": source.url("/never.png")}, headers={"Idempotency-Key": "x" * 256}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidIdempotencyKey"
