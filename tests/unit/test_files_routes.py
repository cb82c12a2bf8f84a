"""The files routes through the Lambda handler: status codes, bodies and clean errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from lambda_fakes import FakeContext, http_event

import files_handler
from upload_core.files import FileService
from upload_core.registry import FileRecord, FileStatus, registry_for
from upload_core.s3 import S3Gateway
from upload_core.settings import Settings

FILE_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def service(s3_client: Any) -> Iterator[FileService]:
    settings = Settings.from_env()
    registry = registry_for(settings)
    registry.record_file(
        FileRecord(
            "alice", FILE_ID, f"uploads/alice/{FILE_ID}/a.png", "a.png", 3, "image/png", "v1", FileStatus.PENDING, 5
        )
    )
    files = FileService(settings, S3Gateway(settings, client=s3_client), registry)
    files_handler.app.dependency_overrides[files_handler.file_service] = lambda: files
    yield files
    files_handler.app.dependency_overrides.clear()


def call(method: str, path: str, *, query: dict[str, str] | None = None, sub: str = "alice") -> tuple[int, Any]:
    route, params = path, None
    if path.startswith("/files/"):
        file_id = path.split("/")[2]
        route, params = path.replace(file_id, "{fileId}"), {"fileId": file_id}
    event = http_event(method, path, route=route, path_params=params, query=query, sub=sub)
    response = files_handler.lambda_handler(event, FakeContext())  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def test_list_answers_the_callers_files_in_camel_case(service: FileService) -> None:
    status, body = call("GET", "/files")
    assert status == 200
    [file] = body["files"]
    assert set(file) >= {"fileId", "key", "name", "size", "contentType", "status", "createdAt"}
    assert (file["fileId"], file["status"]) == (FILE_ID, "pending")
    assert call("GET", "/files", sub="bob") == (200, {"files": [], "nextCursor": None})


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"status": "deleted"}, {"cursor": "%%%"}]
)
def test_bad_list_parameters_are_a_clean_400(service: FileService, query: dict[str, str]) -> None:
    status, body = call("GET", "/files", query=query)
    assert status == 400 and set(body) == {"code", "message"}


def test_a_pending_file_is_409_and_its_status_200(service: FileService) -> None:
    status, body = call("GET", f"/files/{FILE_ID}")
    assert (status, body["code"]) == (409, "NotValidated")
    status, body = call("GET", f"/files/{FILE_ID}/status")
    assert (status, body["status"], body.get("download")) == (200, "pending", None)


@pytest.mark.parametrize("file_id", [FILE_ID.upper(), "nope", "0" * 32, "a%2F..%2Fx"])
def test_unknown_or_malformed_ids_are_404(service: FileService, file_id: str) -> None:
    for method in ("GET", "DELETE"):
        status, body = call(method, f"/files/{file_id}")
        assert (status, body["code"]) == (404, "NoSuchFile")


def test_another_owner_gets_404_and_the_owner_204_twice(service: FileService) -> None:
    assert call("DELETE", f"/files/{FILE_ID}", sub="bob")[0] == 404
    assert call("GET", f"/files/{FILE_ID}", sub="bob")[0] == 404
    assert call("DELETE", f"/files/{FILE_ID}") == (204, None)
    assert call("DELETE", f"/files/{FILE_ID}") == (204, None)
    assert call("GET", f"/files/{FILE_ID}")[0] == 404
