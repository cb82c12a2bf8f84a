"""POST /imports through the Lambda handler: status codes, JSON error bodies, caller and deadline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lambda_fakes import FakeContext, http_event

import imports_handler
from tests.import_support import Reply, SourceServer, drip, image_bytes, png_of_size
from upload_core.import_settings import ImportSettings
from upload_core.remote_import import ImportedObject, RemoteImportService
from upload_core.s3 import S3Gateway
from upload_core.settings import MIB, Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


@pytest.fixture
def allowed(s3_client: Any, source: SourceServer) -> Iterator[SourceServer]:
    """The handler's service, with the test server allowed and moto's S3 (as the environment would)."""
    settings = Settings.from_env()
    import_settings = ImportSettings.from_env(
        {
            "IMPORT_ALLOWED_DESTINATIONS": source.authority,
            "IMPORT_MAX_BYTES": str(2 * MIB),
            "IMPORT_TIMEOUT_SECONDS": "2",
        }
    )
    service = RemoteImportService(settings, import_settings, s3=S3Gateway(settings, client=s3_client))
    imports_handler.app.dependency_overrides[imports_handler.import_service] = lambda: service
    yield source
    imports_handler.app.dependency_overrides.clear()


def call(
    body: Any = None, *, raw_body: str | None = None, sub: str | None = "alice", remaining_ms: int = 30_000
) -> tuple[int, Any]:
    event = http_event("POST", "/imports", body=body, raw_body=raw_body, sub=sub)
    context = RemainingTime(remaining_ms=remaining_ms)
    response = imports_handler.lambda_handler(event, context)  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


@dataclass
class RemainingTime(FakeContext):
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_an_import_answers_201_with_key_size_type_and_etag(allowed: SourceServer, s3_client: Any) -> None:
    data = image_bytes("JPEG")
    allowed.routes["/cat.jpg"] = Reply(body=[data])
    status, body = call({"url": allowed.url("/cat.jpg"), "filename": "my cat.jpg"})
    assert status == 201
    assert set(body) == {"key", "size", "contentType", "etag"}
    assert body["key"].startswith("uploads/alice/") and body["key"].endswith("/my cat.jpg")
    assert (body["size"], body["contentType"]) == (len(data), "image/jpeg")
    stored = s3_client.head_object(Bucket=Settings.from_env().bucket_name, Key=body["key"])
    assert stored["ETag"] == body["etag"]


@pytest.mark.parametrize(
    ("path_body", "status", "code"),
    [
        (Reply(body=[png_of_size(3 * MIB)], chunked=True), 413, "ImportTooLarge"),
        (Reply(body=[b"plain text"]), 415, "UnsupportedContentType"),
        (Reply(status=500, body=[b"internal secret"]), 502, "UpstreamStatus"),
        (drip(b"\x89PNG\r\n\x1a\n", 0.2), 504, "ImportTimeout"),
    ],
    ids=["too-large", "not-an-image", "upstream-error", "deadline"],
)
def test_import_failures_map_to_their_statuses(allowed: SourceServer, path_body: Reply, status: int, code: str) -> None:
    allowed.routes["/file"] = path_body
    got, body = call({"url": allowed.url("/file")})
    assert (got, body["code"]) == (status, code)
    assert "secret" not in body["message"]


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("ftp://example.com/a.png", 400, "UnsupportedScheme"),
        ("http://user:pw@example.com/a.png", 400, "CredentialsInUrl"),
        ("http://exa mple.com/", 400, "InvalidUrl"),
        ("http://169.254.169.254/latest/meta-data/", 403, "ForbiddenDestination"),
        ("http://[::ffff:10.0.0.1]/", 403, "ForbiddenDestination"),
        ("http://127.0.0.1:6379/", 403, "ForbiddenDestination"),
    ],
)
def test_bad_and_forbidden_urls(s3_client: Any, url: str, status: int, code: str) -> None:
    # (moto: every import request counts against the caller's rate in the registry)
    got, body = call({"url": url})
    assert (got, body["code"]) == (status, code)
    assert "169.254" not in body["message"] and "10.0.0.1" not in body["message"]


@pytest.mark.parametrize(
    "request_body",
    [{}, {"url": 5}, {"url": ""}, {"url": "http://example.com/a.png", "extra": 1}, {"url": "x" * 3000}],
)
def test_a_malformed_body_is_400(request_body: Any) -> None:
    status, body = call(request_body)
    assert (status, body["code"]) == (400, "InvalidRequest")


def test_a_body_that_is_not_json_is_400() -> None:
    status, body = call(raw_body="{not json")
    assert status == 400
    assert "JSON" in body["message"]


def test_a_request_without_a_subject_is_401(allowed: SourceServer) -> None:
    status, body = call({"url": allowed.url("/a.png")}, sub=None)
    assert (status, body["code"]) == (401, "Unauthorized")
    assert allowed.requests == []


def test_the_lambdas_remaining_time_caps_the_import(allowed: SourceServer) -> None:
    # Given an invocation with less time left than the cleanup reserve
    allowed.routes["/a.png"] = Reply(body=[image_bytes("PNG")])
    status, body = call({"url": allowed.url("/a.png")}, remaining_ms=1500)
    # Then it answers 504 at once, without fetching
    assert (status, body["code"]) == (504, "ImportTimeout")
    assert allowed.requests == []


def test_the_sample_event_reaches_the_service_with_the_callers_identity() -> None:
    # Given the sample event of events/ and a service that records its call
    calls: list[dict[str, Any]] = []

    class Recorder:
        def import_url(
            self,
            owner: str,
            url: str,
            *,
            filename: str | None,
            remaining_ms: int | None,
            idempotency_key: str | None = None,
        ) -> ImportedObject:
            calls.append({"owner": owner, "url": url, "filename": filename, "remaining_ms": remaining_ms})
            assert idempotency_key is None  # the sample event sends no Idempotency-Key
            return ImportedObject(
                key="uploads/user-123/k/sunset.jpg", size=3, content_type="image/jpeg", etag='"e"', source_url=url
            )

    imports_handler.app.dependency_overrides[imports_handler.import_service] = Recorder
    try:
        event = json.loads((REPO / "events" / "imports-create.json").read_text())
        response = imports_handler.lambda_handler(event, RemainingTime(remaining_ms=45_000))  # type: ignore[arg-type]
    finally:
        imports_handler.app.dependency_overrides.clear()
    assert response["statusCode"] == 201
    assert calls == [
        {
            "owner": "user-123",
            "url": "https://images.example.com/photos/sunset.jpg",
            "filename": "sunset.jpg",
            "remaining_ms": 45_000,
        }
    ]


def test_the_handler_builds_its_service_from_the_environment() -> None:
    assert isinstance(imports_handler.import_service(), RemoteImportService)
    assert imports_handler.import_service() is imports_handler.import_service()
    assert not imports_handler.import_settings.allowed_destinations
