"""Planning: starting an upload, and finding what a resume continues (state file or GET /uploads)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_fakes import API, TOKEN, FakeBackend, FakeUpload

from client.api import UploadApi
from client.errors import LocalFileError, NotFoundError, TransferError
from client.parts import PartPlan, SourceFile
from client.planning import Planner, guess_content_type
from client.retry import RetryPolicy

DATA = bytes(range(23))


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SourceFile]:
    path = tmp_path / "photo.jpg"
    path.write_bytes(DATA)
    with SourceFile(path) as opened:
        yield opened


def planner(backend: FakeBackend, *, part_size: int | None = 5, state_files: bool = True) -> Planner:
    api = UploadApi(API, TOKEN, session=backend.session(), policy=RetryPolicy(retries=0), sleep=lambda _s: None)
    return Planner(api, part_size=part_size, checksum="md5", state_files=state_files, warn=lambda _m: None)


def state_path(source: SourceFile) -> Path:
    return source.path.with_name(source.path.name + ".upload-state.json")


def test_a_new_upload_gets_the_apis_plan_and_a_state_file_at_once(backend: FakeBackend, source: SourceFile) -> None:
    job = planner(backend).start(source, filename="photo.jpg", content_type="image/jpeg")
    (upload,) = backend.uploads.values()
    assert (job.upload_id, job.key, job.plan, job.checksum) == (upload.upload_id, upload.key, PartPlan(23, 5), "md5")
    saved = json.loads(state_path(source).read_text())
    assert (saved["uploadId"], saved["partSize"], saved["size"]) == (upload.upload_id, 5, 23)


def test_a_plan_that_does_not_fit_the_file_is_refused_and_the_upload_aborted(
    backend: FakeBackend, source: SourceFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an API that plans one part too few
    real = backend._create

    def short_plan(data: dict[str, object]) -> object:
        answer = real(data)
        body = json.loads(answer.content)
        body["partCount"] -= 1
        answer._content = json.dumps(body).encode()
        return answer

    monkeypatch.setattr(backend, "_create", short_plan)
    with pytest.raises(TransferError, match="the API planned 4 parts"):
        planner(backend).start(source, filename="photo.jpg", content_type="image/jpeg")
    assert backend.uploads == {}


def test_no_state_file_is_written_when_asked_not_to(backend: FakeBackend, source: SourceFile) -> None:
    job = planner(backend, state_files=False).start(source, filename="photo.jpg", content_type="image/jpeg")
    assert job.state is None and not state_path(source).exists()


def test_a_resume_from_the_state_file_lists_the_parts_in_s3(backend: FakeBackend, source: SourceFile) -> None:
    started = planner(backend).start(source, filename="photo.jpg", content_type="image/jpeg")
    backend.uploads[started.upload_id].parts[1] = ('"e1"', DATA[:5], None)
    job = planner(backend, part_size=None).resume(source, upload_id=None)
    assert (job.upload_id, job.plan) == (started.upload_id, PartPlan(23, 5))
    assert set(job.existing) == {1}


def test_a_resume_without_a_state_file_finds_the_upload_by_name_and_plan(
    backend: FakeBackend, source: SourceFile
) -> None:
    # Given two unfinished uploads: another file's, and this one's with 5-byte parts 1 and 2 stored
    backend.uploads["other"] = FakeUpload("other", "uploads/tester/0/other.jpg", "image/jpeg", None)
    mine = FakeUpload("mine", "uploads/tester/1/photo.jpg", "image/jpeg", None)
    mine.parts = {1: ('"a"', DATA[:5], None), 2: ('"b"', DATA[5:10], None)}
    backend.uploads["mine"] = mine
    # When it is resumed without a state file / Then this file's upload and plan are found
    job = planner(backend).resume(source, upload_id=None)
    assert (job.upload_id, job.plan, set(job.existing)) == ("mine", PartPlan(23, 5), {1, 2})


def test_a_resume_of_a_file_of_another_size_is_refused(backend: FakeBackend, source: SourceFile) -> None:
    planner(backend).start(source, filename="photo.jpg", content_type="image/jpeg")
    saved = json.loads(state_path(source).read_text())
    state_path(source).write_text(json.dumps({**saved, "size": 99}))
    with pytest.raises(LocalFileError, match="abort it"):
        planner(backend).resume(source, upload_id=None)


def test_a_resume_of_an_unknown_upload_id_is_not_found(backend: FakeBackend, source: SourceFile) -> None:
    with pytest.raises(NotFoundError, match="no unfinished upload has the id 'nope'"):
        planner(backend).resume(source, upload_id="nope")


def test_the_content_type_is_guessed_from_the_extension() -> None:
    assert guess_content_type("a.png") == "image/png"
    assert guess_content_type("a.unknown-extension") == "application/octet-stream"
