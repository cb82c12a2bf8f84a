"""The transfer engine on its own: a stand-in part task and API, so only scheduling, progress and
the winding down of a stopped transfer are under test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from client.api import CompletedUpload
from client.cancellation import Cancellation
from client.checksums import PartHasher
from client.engine import TransferEngine, UploadResult, WhenStopped
from client.errors import TransferError, UploadInterrupted
from client.parts import PartPlan, SourceFile
from client.planning import TransferJob
from client.state import StateFile, UploadState
from client.verify import StoredPart

PART = 4
DATA = bytes(range(18))  # 5 parts: 4 of 4 bytes and one of 2


class StubApi:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def complete(self, upload_id: str, key: str, parts: list[tuple[int, str]]) -> CompletedUpload:
        self.calls.append("complete")
        return CompletedUpload(key=key, etag='"multipart"', size=len(DATA), location="s3://bucket/" + key)

    def abort(self, upload_id: str, key: str) -> None:
        self.calls.append("abort")


class StubSender:
    """Part tasks that report their body in 2 halves; ``behave(number)`` may raise or block."""

    def __init__(self, job: TransferJob, behave: Callable[[int], None] | None = None) -> None:
        self.job = job
        self.behave = behave
        self.running = 0
        self.most_running = 0
        self.started: list[int] = []
        self.finished: list[int] = []
        self._lock = threading.Lock()

    def start(self, concurrency: int) -> None:
        """The real sender starts hashing and signing ahead here; the stub signs nothing."""

    def stop(self) -> None:
        """Ends what start began."""

    def send(self, number: int, on_read: Callable[[int, int], None]) -> StoredPart:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.started.append(number)
        try:
            length = self.job.plan.length(number)
            time.sleep(0.005)
            if self.behave is not None:
                self.behave(number)
            on_read(number, length // 2)
            on_read(number, length)
            hasher = PartHasher(None)
            self.finished.append(number)
            return StoredPart(number, f'"etag-{number}"', hasher.digest(), length, sent=True, etag_is_md5=False)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def job(tmp_path: Path) -> Iterator[TransferJob]:
    path = tmp_path / "photo.png"
    path.write_bytes(DATA)
    with SourceFile(path) as source:
        state = UploadState("u-1", "uploads/me/x/photo.png", "http://api", len(DATA), 0, PART, None, "image/png")
        state_file = StateFile(tmp_path / "photo.png.upload-state.json", state)
        state_file.flush()
        yield TransferJob("u-1", "uploads/me/x/photo.png", source, PartPlan(len(DATA), PART), None, state_file)


def engine(api: StubApi, sender: StubSender, cancellation: Cancellation, concurrency: int = 2) -> TransferEngine:
    return TransferEngine(
        api,  # type: ignore[arg-type]
        sender,  # type: ignore[arg-type]
        concurrency=concurrency,
        cancellation=cancellation,
        notice=lambda _message: None,
        grace_seconds=5,
    )


def test_every_part_is_sent_once_never_more_than_the_concurrency_at_a_time(job: TransferJob) -> None:
    # Given 5 parts and 2 workers
    api, sender = StubApi(), StubSender(job)
    progress: list[tuple[int, str]] = []

    def on_progress(done: int, _total: int) -> None:
        progress.append((done, threading.current_thread().name))

    # When the engine runs
    result = engine(api, sender, Cancellation()).run(on_progress, WhenStopped())
    # Then each part ran once, at most 2 at a time, and the upload was completed
    assert sorted(sender.started) == [1, 2, 3, 4, 5]
    assert sender.most_running == 2
    assert api.calls == ["complete"]
    assert result == UploadResult(
        "uploads/me/x/photo.png", '"multipart"', 18, "s3://bucket/uploads/me/x/photo.png", "u-1", 5, 0
    )
    # And progress went up to the size, only ever in the calling thread
    dones = [done for done, _ in progress]
    assert dones[0] == 0 and dones[-1] == len(DATA) and dones == sorted(set(dones))
    assert {thread for _, thread in progress} == {threading.current_thread().name}
    # And the state file is gone
    assert job.state is not None and not job.state.path.exists()


def test_a_failed_part_aborts_the_upload_after_the_parts_in_flight_stop(job: TransferJob) -> None:
    def fail_part_2(number: int) -> None:
        if number == 2:
            raise TransferError("part 2: S3 refused it")

    api, sender = StubApi(), StubSender(job, fail_part_2)
    with pytest.raises(TransferError, match="part 2") as raised:
        engine(api, sender, Cancellation()).run(None, WhenStopped())
    assert api.calls == ["abort"]
    assert raised.value.kept is None
    assert job.state is not None and not job.state.path.exists()


def test_a_failed_part_with_keep_on_failure_keeps_the_upload(job: TransferJob) -> None:
    def fail_part_3(number: int) -> None:
        if number == 3:
            raise TransferError("part 3: S3 refused it")

    api, sender = StubApi(), StubSender(job, fail_part_3)
    with pytest.raises(TransferError) as raised:
        engine(api, sender, Cancellation(), concurrency=1).run(None, WhenStopped(keep_on_failure=True))
    assert api.calls == []
    assert raised.value.kept is not None and raised.value.kept.parts_stored == 2
    assert job.state is not None and job.state.path.exists()


@pytest.mark.parametrize("keep", [True, False])
def test_ctrl_c_in_a_worker_keeps_or_aborts_and_stops_the_other_workers(job: TransferJob, keep: bool) -> None:
    # Given part 3's task is interrupted while part 4's waits for the transfer to stop
    cancellation = Cancellation()

    def behave(number: int) -> None:
        if number == 3:
            raise KeyboardInterrupt
        if number == 4:
            while not cancellation.cancelled:
                time.sleep(0.001)
            cancellation.check()

    api, sender = StubApi(), StubSender(job, behave)
    # When it runs / Then the interrupt comes out as UploadInterrupted, and no part is left running
    with pytest.raises(UploadInterrupted) as raised:
        engine(api, sender, cancellation).run(None, WhenStopped(keep_on_interrupt=keep))
    assert cancellation.cancelled
    assert (raised.value.kept is not None) is keep
    assert api.calls == ([] if keep else ["abort"])
    if not keep:
        assert sender.running == 0  # the abort waited for the parts in flight
    assert 5 not in sender.finished


def test_cancel_from_outside_stops_a_transfer_whose_workers_all_wait(job: TransferJob) -> None:
    cancellation = Cancellation()
    release = threading.Event()

    def wait_forever(_number: int) -> None:
        release.wait(10)
        cancellation.check()

    api, sender = StubApi(), StubSender(job, wait_forever)
    threading.Timer(0.1, cancellation.cancel).start()
    started = time.monotonic()
    try:
        with pytest.raises(UploadInterrupted):
            engine(api, sender, cancellation).run(None, WhenStopped())
    finally:
        release.set()
    assert time.monotonic() - started < 5


def test_parts_stored_before_an_interrupt_are_recorded_in_the_state_file(job: TransferJob) -> None:
    def interrupt_at_4(number: int) -> None:
        if number == 4:
            raise KeyboardInterrupt

    api, sender = StubApi(), StubSender(job, interrupt_at_4)
    with pytest.raises(UploadInterrupted):
        engine(api, sender, Cancellation(), concurrency=1).run(None, WhenStopped())
    assert job.state is not None
    saved: Any = job.state.state
    assert sorted(saved.etags) == [1, 2, 3]
