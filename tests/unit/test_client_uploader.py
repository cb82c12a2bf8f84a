"""The managed upload (client.Uploader) against an in-memory API and S3: no network, no sleeping."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from client_fakes import API, TOKEN, FakeBackend

from client import ApiError, AuthError, LocalFileError, NotFoundError, RetryPolicy, TransferError, Uploader
from client.errors import ExitCode, KeptUpload, UploadInterrupted

PART = 5  # the fake API accepts 5-byte parts, so a test file of a few dozen bytes has many parts


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_uploader(backend: FakeBackend, sleeps: list[float], **options: object) -> Uploader:
    settings: dict[str, object] = {
        "part_size": PART,
        "checksum": "md5",  # these tests check MD5 ETags; the CRC32 default has its own tests
        "session": backend.session(),
        "sleep": sleeps.append,
        "retry_policy": RetryPolicy(retries=3, random=lambda: 0.5),
    }
    settings.update(options)
    return Uploader(API, TOKEN, **settings)  # type: ignore[arg-type]


def write(tmp_path: Path, data: bytes, name: str = "photo.jpg") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def state_path(path: Path) -> Path:
    return path.with_name(path.name + ".upload-state.json")


def multipart_etag(data: bytes, part_size: int = PART) -> str:
    digests = b"".join(hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size))  # noqa: S324
    return f'"{hashlib.md5(digests).hexdigest()}-{-(-len(data) // part_size)}"'  # noqa: S324


DATA = bytes(range(23))  # 5 parts: 4 of 5 bytes and one of 3


# ------------------------------------------------------------------------------------------ happy paths


@pytest.mark.parametrize("checksum", ["md5", "sha256", None])
def test_a_file_is_uploaded_in_parts_and_stored_byte_identical(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path, checksum: str | None
) -> None:
    # Given a 23-byte file and 5-byte parts
    path = write(tmp_path, DATA)
    progress: list[tuple[int, int]] = []
    # When it is uploaded
    result = make_uploader(backend, sleeps, checksum=checksum).upload(
        path, on_progress=lambda done, total: progress.append((done, total))
    )
    # Then S3 holds exactly the file, with the multipart ETag of its parts
    assert backend.objects[result.key] == DATA
    assert result.size == len(DATA)
    assert result.etag == multipart_etag(DATA)
    assert (result.parts_sent, result.parts_reused) == (5, 0)
    # And progress went from 0 to the whole size without going back
    dones = [done for done, _ in progress]
    assert dones[0] == 0 and dones[-1] == len(DATA) and dones == sorted(dones)
    assert {total for _, total in progress} == {len(DATA)}
    # And nothing is left: no unfinished upload, no state file, no retry
    assert backend.uploads == {}
    assert not state_path(path).exists()
    assert sleeps == []


def test_the_content_type_is_guessed_from_the_extension_and_the_name_kept(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    path = write(tmp_path, DATA, name="holiday photo.png")
    result = make_uploader(backend, sleeps).upload(path)
    assert result.key.endswith("/holiday photo.png")
    sent = [call for call in backend.api_log if call == ("POST", "/uploads")]
    assert sent == [("POST", "/uploads")]


def test_an_empty_file_is_one_empty_part(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    result = make_uploader(backend, sleeps).upload(write(tmp_path, b""))
    assert backend.objects[result.key] == b""
    assert backend.put_log == [(1, "ok")]


def test_parts_are_read_one_at_a_time_never_the_whole_file(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file read through a spy on os.pread
    path = write(tmp_path, DATA)
    reads: list[int] = []
    real_pread = os.pread

    def spy(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", spy)
    # When it is uploaded / Then no read is larger than a part and every byte is read twice: hashed
    # ahead (so that parts are signed in batches, without keeping their bytes), then sent
    make_uploader(backend, sleeps).upload(path)
    assert max(reads) <= PART
    assert sum(reads) == 2 * len(DATA)


def test_no_more_parts_are_in_flight_than_the_concurrency(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    # Given PUTs that linger a little, so workers overlap
    pause = threading.Event()
    backend.on_put = lambda _number: pause.wait(0.01)
    data = bytes(200)  # 40 parts
    # When 3 workers upload it / Then at most 3 PUTs were ever in flight (memory: 3 parts)
    make_uploader(backend, sleeps, concurrency=3).upload(write(tmp_path, data))
    assert 1 <= backend.max_in_flight <= 3


def test_progress_advances_with_the_bytes_of_a_part_as_they_are_sent(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    # Given 10-byte parts that S3 reads 2 bytes at a time, waiting each time until the caller has
    # been told (so every block gets its own callback)
    backend.read_block = 2
    seen: list[int] = []
    told = threading.Condition()

    def on_progress(done: int, _total: int) -> None:
        with told:
            seen.append(done)
            told.notify_all()

    def on_block(number: int, bytes_read: int) -> None:
        with told:
            told.wait_for(lambda: seen[-1] >= (number - 1) * 10 + bytes_read, timeout=5)

    backend.on_block = on_block
    # When a 23-byte file is uploaded one part at a time
    make_uploader(backend, sleeps, part_size=10, concurrency=1).upload(write(tmp_path, DATA), on_progress=on_progress)
    # Then the caller heard of every block as it was sent, five times within each full part
    assert seen == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 23]


def test_progress_counts_a_part_sent_twice_once(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    # Given part 2 fails once after its whole body was sent
    backend.part_faults[2] = ["500"]
    progress: list[int] = []
    # When the file is uploaded
    make_uploader(backend, sleeps, concurrency=1).upload(
        write(tmp_path, DATA), on_progress=lambda done, _total: progress.append(done)
    )
    # Then progress never went back nor past the file's size
    assert progress == sorted(progress) and progress[-1] == len(DATA)
    assert backend.puts_of(2) == ["500", "ok"]


# ------------------------------------------------------------------------------------------ retries


def test_transient_part_failures_are_retried_with_backoff(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    # Given part 2 fails with a 500, then a dropped connection, then a SlowDown with Retry-After: 1
    backend.part_faults[2] = ["500", "drop", "slowdown"]
    policy = RetryPolicy(retries=3, base_delay=1.0, max_delay=8.0, random=lambda: 0.5)
    # When the file is uploaded
    result = make_uploader(backend, sleeps, concurrency=1, retry_policy=policy).upload(write(tmp_path, DATA))
    # Then part 2 was sent four times, after waits of half of 1, 2 and 4 s (Retry-After is a floor)
    assert backend.puts_of(2) == ["500", "drop", "slowdown", "ok"]
    assert sleeps == [0.5, 1.0, 2.0]
    assert backend.objects[result.key] == DATA


def test_an_expired_url_is_signed_again_without_waiting(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    backend.part_faults[3] = ["expired"]
    result = make_uploader(backend, sleeps).upload(write(tmp_path, DATA))
    assert backend.puts_of(3) == ["expired", "ok"]
    assert backend.signed.count(3) == 2
    assert sleeps == []
    assert backend.objects[result.key] == DATA


def test_a_part_stored_with_the_wrong_md5_is_sent_again(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    backend.part_faults[1] = ["corrupt"]
    result = make_uploader(backend, sleeps).upload(write(tmp_path, DATA))
    assert backend.puts_of(1) == ["corrupt", "ok"]
    assert result.etag == multipart_etag(DATA)


def test_a_part_that_keeps_failing_fails_the_upload_and_aborts_it(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    # Given part 4 fails every time
    backend.part_faults[4] = ["500"] * 10
    path = write(tmp_path, DATA)
    # When the file is uploaded / Then the error names the part, after 3 retries
    with pytest.raises(TransferError, match="part 4: 500 InternalError") as raised:
        make_uploader(backend, sleeps).upload(path)
    assert raised.value.exit_code == ExitCode.TRANSFER
    assert backend.puts_of(4) == ["500"] * 4
    # And the upload was aborted and its state file removed
    assert backend.uploads == {}
    assert backend.api_log[-1][0] == "DELETE"
    assert not state_path(path).exists()


def test_a_refusal_is_not_retried(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    backend.part_faults[2] = ["fatal"]
    with pytest.raises(TransferError, match="SignatureDoesNotMatch"):
        make_uploader(backend, sleeps).upload(write(tmp_path, DATA))
    assert backend.puts_of(2) == ["fatal"]
    assert sleeps == []


def test_api_calls_are_retried_on_5xx(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    backend.api_faults = [503, 500]
    result = make_uploader(backend, sleeps).upload(write(tmp_path, DATA))
    assert backend.objects[result.key] == DATA
    assert len(sleeps) == 2


def test_a_completed_object_whose_etag_does_not_match_the_parts_is_an_error(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    backend.complete_etag_override = "0" * 32 + "-5"
    with pytest.raises(TransferError, match="is not the expected"):
        make_uploader(backend, sleeps).upload(write(tmp_path, DATA))


def test_kms_etags_are_not_taken_for_md5s(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    # Given S3 answers with SSE-KMS ETags (not MD5s) and a multipart ETag that is not MD5-based
    backend.kms = True
    backend.complete_etag_override = "f" * 32 + "-5"
    # When a file is uploaded / Then that is not mistaken for corruption
    result = make_uploader(backend, sleeps).upload(write(tmp_path, DATA))
    assert backend.objects[result.key] == DATA
    assert sleeps == []


# ------------------------------------------------------------------------------------------ refusals


def test_a_refused_content_type_fails_before_any_part(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    with pytest.raises(ApiError, match="not allowed") as raised:
        make_uploader(backend, sleeps).upload(write(tmp_path, DATA, name="notes.txt"))
    assert (raised.value.status, raised.value.code) == (415, "UnsupportedContentType")
    assert raised.value.exit_code == ExitCode.REFUSED
    assert backend.put_log == []


def test_a_wrong_token_is_an_auth_error(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    uploader = Uploader(API, "wrong", session=backend.session(), sleep=sleeps.append)
    with pytest.raises(AuthError) as raised:
        uploader.upload(write(tmp_path, DATA))
    assert raised.value.exit_code == ExitCode.AUTH
    assert sleeps == []


def test_a_missing_file_is_a_local_file_error(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    with pytest.raises(LocalFileError, match="no such file"):
        make_uploader(backend, sleeps).upload(tmp_path / "missing.jpg")
    assert backend.api_log == []


def test_a_file_changed_during_the_upload_fails_and_is_aborted(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    path = write(tmp_path, DATA)
    backend.on_put = lambda number: os.utime(path, ns=(1, 1)) if number == 5 else None
    with pytest.raises(LocalFileError, match="changed during the upload"):
        make_uploader(backend, sleeps).upload(path)
    assert backend.uploads == {}


# ------------------------------------------------------------------------------------------ interruption


def ctrl_c_at(part: int) -> Callable[[int], None]:
    """A PUT hook that presses Ctrl-C when part ``part`` is about to be sent (before S3 has it)."""

    def hook(number: int) -> None:
        if number == part:
            raise KeyboardInterrupt

    return hook


def test_ctrl_c_keeps_the_parts_and_resume_sends_only_the_rest(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    # Given an upload interrupted with Ctrl-C after 2 parts, with no option given
    path = write(tmp_path, DATA)
    backend.on_put = ctrl_c_at(3)
    with pytest.raises(UploadInterrupted) as raised:
        make_uploader(backend, sleeps, concurrency=1).upload(path)
    backend.on_put = None
    # Then the upload and its 2 parts stay in S3, the state file names it, and the interrupt says so
    (upload,) = backend.uploads.values()
    assert set(upload.parts) == {1, 2}
    state = json.loads(state_path(path).read_text())
    assert (state["uploadId"], state["key"], state["partSize"]) == (upload.upload_id, upload.key, PART)
    assert raised.value.kept == KeptUpload(
        upload_id=upload.upload_id,
        key=upload.key,
        path=str(path),
        parts_stored=2,
        part_count=5,
        state_file=str(state_path(path)),
    )
    assert isinstance(raised.value, KeyboardInterrupt)
    assert ("DELETE", f"/uploads/{upload.upload_id}") not in backend.api_log
    # When it is resumed
    backend.put_log.clear()
    result = make_uploader(backend, sleeps).resume(path)
    # Then only the missing parts are sent, and the object is the file
    assert sorted(number for number, _ in backend.put_log) == [3, 4, 5]
    assert (result.parts_sent, result.parts_reused) == (3, 2)
    assert backend.objects[result.key] == DATA
    assert result.key == state["key"]
    assert not state_path(path).exists()


def test_ctrl_c_with_abort_on_interrupt_aborts_the_upload(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    path = write(tmp_path, DATA)
    backend.on_put = ctrl_c_at(3)
    with pytest.raises(UploadInterrupted) as raised:
        make_uploader(backend, sleeps, concurrency=1).upload(path, abort_on_interrupt=True)
    assert raised.value.kept is None
    assert backend.uploads == {}
    assert backend.api_log[-1][0] == "DELETE"
    assert not state_path(path).exists()


@pytest.mark.parametrize("abort_on_interrupt", [False, True])
def test_ctrl_c_in_the_calling_thread_stops_the_transfer(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path, abort_on_interrupt: bool
) -> None:
    # Given a progress callback (the calling thread) that is interrupted once bytes are sent
    def on_progress(done: int, _total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    # When the file is uploaded / Then the interrupt comes through, keeping or aborting the upload
    with pytest.raises(UploadInterrupted) as raised:
        make_uploader(backend, sleeps).upload(
            write(tmp_path, DATA), on_progress=on_progress, abort_on_interrupt=abort_on_interrupt
        )
    assert (raised.value.kept is None) is abort_on_interrupt
    assert (backend.uploads == {}) is abort_on_interrupt
    assert (backend.api_log[-1][0] == "DELETE") is abort_on_interrupt


def test_cancel_from_another_thread_stops_like_ctrl_c(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    uploader = make_uploader(backend, sleeps, concurrency=1)
    backend.on_put = lambda number: uploader.cancel() if number == 2 else None
    with pytest.raises(UploadInterrupted) as raised:
        uploader.upload(write(tmp_path, DATA))
    assert raised.value.kept is not None and raised.value.kept.parts_stored == 1
    assert len(backend.put_log) < 5
    (upload,) = backend.uploads.values()
    assert set(upload.parts) == {1}  # part 2 stopped mid-body: S3 never got it


def test_a_failure_with_keep_parts_keeps_them_and_says_so(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    path = write(tmp_path, DATA)
    backend.part_faults[3] = ["fatal"]
    with pytest.raises(TransferError) as raised:
        make_uploader(backend, sleeps, concurrency=1).upload(path, keep_parts=True)
    (upload,) = backend.uploads.values()
    assert raised.value.kept is not None
    assert (raised.value.kept.upload_id, raised.value.kept.parts_stored) == (upload.upload_id, 2)
    assert state_path(path).exists()


def kept_upload(backend: FakeBackend, sleeps: list[float], path: Path, fail_part: int = 3) -> None:
    backend.part_faults[fail_part] = ["fatal"]
    with pytest.raises(TransferError):
        make_uploader(backend, sleeps, concurrency=1).upload(path, keep_parts=True)
    backend.put_log.clear()


def test_resume_resends_a_part_whose_stored_bytes_differ_from_the_file(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    # Given a kept upload whose part 1 in S3 does not hold the file's bytes
    path = write(tmp_path, DATA)
    kept_upload(backend, sleeps, path)
    (upload,) = backend.uploads.values()
    bad = b"XXXXX"
    upload.parts[1] = (f'"{hashlib.md5(bad).hexdigest()}"', bad, None)  # noqa: S324
    # When it is resumed / Then part 1 is sent again along with the missing ones
    result = make_uploader(backend, sleeps).resume(path)
    assert sorted(number for number, _ in backend.put_log) == [1, 3, 4, 5]
    assert backend.objects[result.key] == DATA


def test_resume_finds_the_upload_without_a_state_file(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    path = write(tmp_path, DATA)
    kept_upload(backend, sleeps, path)
    state_path(path).unlink()
    result = make_uploader(backend, sleeps, part_size=PART).resume(path)
    assert sorted(number for number, _ in backend.put_log) == [3, 4, 5]
    assert backend.objects[result.key] == DATA


def test_resume_with_kms_etags_trusts_the_etags_it_recorded(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    backend.kms = True
    backend.complete_etag_override = "f" * 32 + "-5"
    path = write(tmp_path, DATA)
    uploader = make_uploader(backend, sleeps, concurrency=1)
    backend.part_faults[3] = ["fatal"]
    with pytest.raises(TransferError):
        uploader.upload(path, keep_parts=True)
    backend.put_log.clear()
    make_uploader(backend, sleeps).resume(path)
    assert sorted(number for number, _ in backend.put_log) == [3, 4, 5]


def test_resume_refuses_a_file_of_another_size(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    path = write(tmp_path, DATA)
    kept_upload(backend, sleeps, path)
    path.write_bytes(DATA + b"more")
    with pytest.raises(LocalFileError, match="abort it"):
        make_uploader(backend, sleeps).resume(path)


def test_resume_of_an_upload_that_is_gone_says_so_and_drops_the_state(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    path = write(tmp_path, DATA)
    kept_upload(backend, sleeps, path)
    backend.uploads.clear()
    with pytest.raises(NotFoundError, match="no longer exists") as raised:
        make_uploader(backend, sleeps).resume(path)
    assert raised.value.exit_code == ExitCode.NOT_FOUND
    assert not state_path(path).exists()


def test_resume_with_nothing_to_resume(backend: FakeBackend, sleeps: list[float], tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no unfinished upload of 'photo\.jpg'"):
        make_uploader(backend, sleeps).resume(write(tmp_path, DATA))


# ------------------------------------------------------------------------------------------ abort, ls, import


@pytest.mark.parametrize("by", ["key", "upload id", "file"])
def test_abort_by_key_upload_id_or_file(backend: FakeBackend, sleeps: list[float], tmp_path: Path, by: str) -> None:
    path = write(tmp_path, DATA)
    kept_upload(backend, sleeps, path)
    (upload,) = backend.uploads.values()
    target = {"key": upload.key, "upload id": upload.upload_id, "file": str(path)}[by]
    uploader = make_uploader(backend, sleeps)
    assert [pending.key for pending in uploader.list_unfinished()] == [upload.key]
    aborted = uploader.abort(target)
    assert [(item.upload_id, item.key) for item in aborted] == [(upload.upload_id, upload.key)]
    assert backend.uploads == {}
    assert uploader.list_unfinished() == []
    if by == "file":
        assert not state_path(path).exists()


def test_abort_of_something_unknown_is_not_found(backend: FakeBackend, sleeps: list[float]) -> None:
    with pytest.raises(NotFoundError):
        make_uploader(backend, sleeps).abort("uploads/tester/nothing/here.jpg")


def test_options_are_checked(backend: FakeBackend) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Uploader(API, TOKEN, concurrency=0)
    with pytest.raises(ValueError, match="checksum"):
        Uploader(API, TOKEN, checksum="sha512")  # type: ignore[arg-type]


def test_a_kms_resume_with_every_part_already_stored_completes_without_false_alarms(
    backend: FakeBackend, sleeps: list[float], tmp_path: Path
) -> None:
    # Given an SSE-KMS upload whose five parts are all in S3 (the last one recorded in the state
    # file by hand, as if the process died just before completing)
    backend.kms = True
    backend.complete_etag_override = "e" * 32 + "-5"  # KMS multipart ETags are not MD5-based
    path = write(tmp_path, DATA)
    backend.part_faults[5] = ["fatal"]
    with pytest.raises(TransferError):
        make_uploader(backend, sleeps, concurrency=1).upload(path, keep_parts=True)
    (upload,) = backend.uploads.values()
    upload.parts[5] = ('"' + "a" * 32 + '"', DATA[20:], None)
    state = json.loads(state_path(path).read_text())
    state["etags"]["5"] = '"' + "a" * 32 + '"'
    state_path(path).write_text(json.dumps(state))
    backend.put_log.clear()
    # When it is resumed / Then nothing is sent and the KMS ETags are not mistaken for bad MD5s
    result = make_uploader(backend, sleeps).resume(path)
    assert backend.put_log == []
    assert (result.parts_sent, result.parts_reused) == (0, 5)
    assert backend.objects[result.key] == DATA
