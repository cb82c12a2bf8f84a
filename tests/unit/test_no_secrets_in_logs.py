"""No log line carries a presigned URL, a POST policy's signature or a token.

Responses of the uploads function are full of live credentials (part URLs, form policies and,
on Lambda, the role's session token inside every URL); tracing no longer records responses
(POWERTOOLS_TRACER_CAPTURE_RESPONSE=false in template.yaml), and these tests check the other way
out: the functions' own log lines, at DEBUG, on success and error paths, read from the process's
stdout where Powertools writes them.
"""

from __future__ import annotations

import ast
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from lambda_fakes import FakeContext, http_event

import imports_handler
import uploads_handler
from service_factory import upload_service
from tests.import_support import Reply, SourceServer, image_bytes
from upload_core.import_settings import ImportSettings
from upload_core.observability import logger
from upload_core.remote_import import RemoteImportService, fetcher_for
from upload_core.settings import Settings
from upload_core.uploads import UploadService

ROOT = Path(__file__).resolve().parents[2]
BEARER = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.bGl2ZS1zaWduYXR1cmUtbWFya2Vy"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTokenMarker" + "A" * 600
# What must never appear in a log line, whatever the route.
FORBIDDEN = ("X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential", "Bearer", BEARER, SESSION_TOKEN[:40])


@pytest.fixture
def debug_logs(s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    # The most verbose level a stack could be deployed with, and a session token like Lambda's
    # in the credentials that sign the URLs (set before the services build their clients).
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials it first found
    previous = logger.log_level
    logger.setLevel("DEBUG")
    # Every line the shared Logger writes, JSON-formatted as on Lambda.
    captured = io.StringIO()
    handler = cast(logging.StreamHandler, logger.registered_handler)  # type: ignore[type-arg]
    previous_stream = handler.setStream(captured)
    # A service built now, so its S3 client signs with the session token above.
    service = UploadService(uploads_handler.settings)
    uploads_handler.app.dependency_overrides[upload_service] = lambda: service
    yield captured
    uploads_handler.app.dependency_overrides.clear()
    handler.setStream(previous_stream)
    logger.setLevel(previous)


def call(handler: Any, context: FakeContext, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
    event = http_event(method, path, **kwargs)
    # What API Gateway passes on: the caller's token, and the routes' signed responses.
    event["headers"]["authorization"] = f"Bearer {BEARER}"
    response = handler.lambda_handler(event, context)
    return int(response["statusCode"]), str(response.get("body") or "")


def assert_clean(output: str) -> None:
    assert output.strip(), "nothing was logged: the test would prove nothing"
    leaks = [secret for secret in FORBIDDEN if secret in output]
    assert leaks == [], f"log lines carry {leaks}:\n{output[:2000]}"


def test_upload_routes_never_log_urls_policies_or_tokens(
    s3_client: Any, lambda_context: FakeContext, debug_logs: io.StringIO
) -> None:
    # Given a multipart upload and a form, signed with session credentials
    status, created = call(
        uploads_handler,
        lambda_context,
        "POST",
        "/uploads",
        body={"filename": "p.png", "contentType": "image/png", "size": 6},
    )
    assert status == 201
    upload = json.loads(created)
    where = {"route": "/uploads/{uploadId}/parts", "path_params": {"uploadId": upload["uploadId"]}}
    # When every route that hands out or consumes signed material runs, on success and error paths
    status, signed = call(
        uploads_handler,
        lambda_context,
        "POST",
        f"/uploads/{upload['uploadId']}/parts",
        body={"key": upload["key"], "partNumbers": [1]},
        **where,
    )
    assert status == 200 and "X-Amz-Signature" in signed and "X-Amz-Security-Token" in signed
    status, form = call(
        uploads_handler,
        lambda_context,
        "POST",
        "/uploads/form",
        body={"filename": "f.png", "contentType": "image/png", "size": 10},
    )
    assert status == 201 and "x-amz-signature" in form
    companion = {
        "route": "/s3/multipart/{uploadId}/{partNumber}",
        "path_params": {"uploadId": upload["uploadId"], "partNumber": "1"},
        "query": {"key": upload["key"]},
    }
    status, _ = call(uploads_handler, lambda_context, "GET", f"/s3/multipart/{upload['uploadId']}/1", **companion)
    assert status == 200
    s3_client.upload_part(
        Bucket="unit-uploads", Key=upload["key"], UploadId=upload["uploadId"], PartNumber=1, Body=b"abcdef"
    )
    complete = {"route": "/uploads/{uploadId}/complete", "path_params": {"uploadId": upload["uploadId"]}}
    status, _ = call(
        uploads_handler,
        lambda_context,
        "POST",
        f"/uploads/{upload['uploadId']}/complete",
        body={"key": upload["key"]},
        **complete,
    )
    assert status == 200
    status, _ = call(
        uploads_handler,
        lambda_context,
        "POST",
        f"/uploads/{upload['uploadId']}/parts",
        body={"key": upload["key"], "partNumbers": [1]},
        **where,
    )
    assert status == 404  # the completed upload is gone: an error path too
    # Then the log lines name keys and ids, never a URL's signature, a policy or a token
    form_signature = json.loads(form)["fields"]["x-amz-signature"]
    output = debug_logs.getvalue()
    assert_clean(output)
    assert form_signature not in output
    assert "upload completed" in output  # the one line per completed upload is there


def test_imports_never_log_the_callers_token_or_the_urls_query(
    lambda_context: FakeContext, debug_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a source URL whose query carries a signature (a presigned URL of another store)
    with SourceServer() as source:
        source.routes["/i.png"] = Reply(body=[image_bytes("PNG")])
        import_settings = ImportSettings.from_env({"IMPORT_ALLOWED_DESTINATIONS": source.authority})
        settings = Settings.from_env()
        service = RemoteImportService(settings, import_settings, fetcher=fetcher_for(import_settings))
        imports_handler.app.dependency_overrides[imports_handler.import_service] = lambda: service
        secret_query = "X-Amz-Signature=abcdef0123456789&X-Amz-Security-Token=" + SESSION_TOKEN[:40]
        # When it is imported, and a blocked URL with the same query is tried
        status, _ = call(
            imports_handler, lambda_context, "POST", "/imports", body={"url": source.url(f"/i.png?{secret_query}")}
        )
        assert status == 201
        status, _ = call(
            imports_handler, lambda_context, "POST", "/imports", body={"url": f"http://10.0.0.1/x.png?{secret_query}"}
        )
        assert status == 403
    imports_handler.app.dependency_overrides.clear()
    # Then neither the query nor the caller's token is in the logs
    output = debug_logs.getvalue()
    assert_clean(output)
    assert "abcdef0123456789" not in output
    assert "import completed" in output and "import blocked" in output


# Names of log fields that would carry signed material if a future change logged them.
SECRET_FIELDS = re.compile(r"^(url|urls|part_urls|fields|policy|headers|token|authorization|signature|event)$")


def _logger_calls() -> Iterator[tuple[Path, int, str]]:
    for path in [*ROOT.glob("functions/*/*.py"), *ROOT.glob("layers/core/upload_core/**/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"logger", "log"}
            ):
                for keyword in node.keywords:
                    if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                        for key in keyword.value.keys:
                            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                                yield path, node.lineno, key.value
                    if keyword.arg in {"log_event"}:
                        yield path, node.lineno, "event"


def test_no_logger_call_names_a_field_that_holds_signed_material() -> None:
    # Given every logger call of the functions and the core package
    offending = [
        f"{path.relative_to(ROOT)}:{line} logs {field!r}"
        for path, line, field in _logger_calls()
        if SECRET_FIELDS.fullmatch(field)
    ]
    # Then none logs a URL, form fields, headers or the event itself (source_url is the redacted form)
    assert offending == []
