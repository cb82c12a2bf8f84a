"""Small files signed in batches (client.put_batch through ``Uploader.put_many`` / ``upload_many``)
against the in-memory API and S3: one API call per batch, every file's bytes PUT intact, per-file
retries and results, and every way a batch cannot be signed ending with each file on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from client_fakes import API, TOKEN, FakeBackend

from client import Uploader
from client.put_batch import crc32_base64
from client.retry import RetryPolicy


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.batch_route = True
    return fake


def make_uploader(backend: FakeBackend, retries: int = 0, **options: Any) -> Uploader:
    return Uploader(
        API,
        TOKEN,
        session=backend.session(),
        sleep=lambda _seconds: None,
        retry_policy=RetryPolicy(retries=retries),
        **options,
    )


def images(folder: Path, count: int, size: int = 300) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        path = folder / f"img-{index:03d}.jpg"
        path.write_bytes(bytes((index + i) % 256 for i in range(size)))
        made.append(path)
    return made


def api_calls(backend: FakeBackend, path: str) -> int:
    return sum(1 for _, called in backend.api_log if called == path)


def test_crc32_is_s3s_header_value() -> None:
    # S3's x-amz-checksum-crc32 of "hello world" (big-endian, base64)
    assert crc32_base64(b"hello world") == "DUoRhQ=="


def test_small_files_go_in_batches_of_batch_size(backend: FakeBackend, tmp_path: Path) -> None:
    # Given 23 small files and batches of 10
    paths = images(tmp_path, 23)
    # When they are uploaded 4 at a time
    outcomes = make_uploader(backend).upload_many(paths, concurrency=4, batch_size=10)
    # Then three API calls signed them all, every file was PUT once, byte for byte, and no form was used
    assert sorted(backend.batches) == [3, 10, 10]
    assert api_calls(backend, "/uploads/form") == 0
    assert len(backend.whole_puts) == 23
    for path, outcome in zip(paths, outcomes, strict=True):
        assert outcome.error is None and outcome.result is not None
        assert backend.objects[outcome.result.key] == path.read_bytes()
        assert outcome.result.key.endswith(f"/{path.name}")


def test_batch_size_none_sends_one_form_per_file(backend: FakeBackend, tmp_path: Path) -> None:
    paths = images(tmp_path, 5)
    outcomes = make_uploader(backend).upload_many(paths, batch_size=None)
    assert all(outcome.error is None for outcome in outcomes)
    assert backend.batches == [] and len(backend.form_posts) == 5


def test_large_files_still_go_multipart(backend: FakeBackend, tmp_path: Path) -> None:
    # Given two small files and one over the single-request limit
    small = images(tmp_path, 2, size=10)
    large = tmp_path / "large.jpg"
    large.write_bytes(b"L" * 40)
    uploader = make_uploader(backend, part_size=16)
    # When they are uploaded together
    outcomes = uploader.put_many([*small, large], wait=False, form_max_bytes=20, batch_size=50)
    # Then the small ones share one batch and the large one is a multipart upload
    assert all(outcome.error is None for outcome in outcomes)
    assert backend.batches == [2]
    assert outcomes[2].result is not None and outcomes[2].result.upload_id
    assert backend.objects[outcomes[2].result.key] == large.read_bytes()


def test_a_failed_put_is_retried_and_a_lost_answer_is_not_a_failure(backend: FakeBackend, tmp_path: Path) -> None:
    # Given S3 failing the first PUT with a 500, then storing the second but losing its answer
    paths = images(tmp_path, 2)
    backend.put_faults = ["500", "lost"]
    # When both files are uploaded one at a time, with retries
    outcomes = make_uploader(backend, retries=3).upload_many(paths, concurrency=1)
    # Then both are stored intact: the retry after the lost answer met If-None-Match (412), which
    # means an earlier attempt stored exactly these bytes (the URL signs their CRC32)
    assert [outcome.error for outcome in outcomes] == [None, None]
    for path, outcome in zip(paths, outcomes, strict=True):
        assert outcome.result is not None and backend.objects[outcome.result.key] == path.read_bytes()


def test_a_file_the_api_refuses_fails_alone(backend: FakeBackend, tmp_path: Path) -> None:
    # Given a batch with one file of a type the API refuses
    paths = images(tmp_path, 3)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    # When they are uploaded, then the batch was refused, and each file went on its own: the
    # images stored, the text file failed with the API's own message
    outcomes = make_uploader(backend).upload_many([*paths, notes])
    assert [outcome.error is None for outcome in outcomes] == [True, True, True, False]
    assert "not allowed" in str(outcomes[3].error)
    assert len(backend.form_posts) == 3


def test_fewer_upload_slots_than_files_signs_what_fits_then_the_rest(backend: FakeBackend, tmp_path: Path) -> None:
    # Given 6 upload slots free and 9 files
    backend.batch_slots = 6
    paths = images(tmp_path, 9)
    # When they are uploaded in batches of 9, then 6 were signed together and 3 fell back to forms
    # once no slot was left
    outcomes = make_uploader(backend).upload_many(paths, concurrency=1, batch_size=9)
    assert all(outcome.error is None for outcome in outcomes)
    assert backend.batches == [6]
    assert len(backend.whole_puts) == 6 and len(backend.form_posts) == 3


def test_an_api_without_the_route_gets_forms(tmp_path: Path) -> None:
    backend = FakeBackend()  # answers POST /uploads/batch with 404, as an older API
    paths = images(tmp_path, 4)
    outcomes = make_uploader(backend).upload_many(paths)
    assert all(outcome.error is None for outcome in outcomes)
    assert len(backend.form_posts) == 4


def test_a_file_changed_after_its_batch_was_signed_is_an_error(backend: FakeBackend, tmp_path: Path) -> None:
    # Given two files, the second rewritten once the batch (both files) is signed
    paths = images(tmp_path, 2)
    uploader = make_uploader(backend)
    original = uploader.api.create_put_batch

    def sign_then_change(files: Any) -> Any:
        targets = original(files)
        paths[1].write_bytes(b"changed!" * 40)
        return targets

    uploader.api.create_put_batch = sign_then_change  # type: ignore[method-assign]
    outcomes = uploader.upload_many(paths, concurrency=1)
    # Then the first is stored and the second fails instead of sending other bytes
    assert outcomes[0].error is None
    assert outcomes[1].error is not None and "changed" in str(outcomes[1].error)
    assert len(backend.whole_puts) == 1
