"""Several files at once (client.batch, ``Uploader.put_many``, ``put A B folder/``) against the
in-memory API and S3: files really in flight together, one overall progress, the worst outcome,
one JSON object per file, and Ctrl-C stopping every file with its parts kept."""

from __future__ import annotations

import _thread
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from client_fakes import API, TOKEN, FakeBackend

from client import Uploader
from client.batch import BatchInterrupted, FileOutcome, _Stopper, worst
from client.cli import main
from client.errors import ExitCode
from client.retry import RetryPolicy

ENV = {"UPLOAD_API_URL": API, "UPLOAD_API_TOKEN": TOKEN}
# A deadlock guard, not a timing: a barrier nobody else reaches fails the test instead of hanging it.
GUARD_SECONDS = 10


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


def make_uploader(backend: FakeBackend, **options: Any) -> Uploader:
    settings: dict[str, Any] = {
        "session": backend.session(),
        "sleep": lambda _seconds: None,
        "retry_policy": RetryPolicy(retries=0),
    }
    settings.update(options)
    return Uploader(API, TOKEN, **settings)


def files(folder: Path, sizes: dict[str, int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, size in sizes.items():
        path = folder / name
        path.write_bytes(bytes((len(name) + i) % 256 for i in range(size)))
        made.append(path)
    return made


def run(argv: list[str], backend: FakeBackend) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    session: requests.Session = backend.session()
    code = main(argv, env=ENV, stdout=out, stderr=err, session=session)
    return code, out.getvalue(), err.getvalue()


def reject(backend: FakeBackend, name: str, reason: str) -> None:
    """The validator rejects the file called ``name`` (whichever way it was sent)."""
    original = backend._file

    def judged(key: str) -> dict[str, Any]:
        if key.endswith(f"/{name}"):
            backend.verdicts[key] = ("rejected", reason)
        return original(key)

    backend._file = judged  # type: ignore[method-assign]


# --------------------------------------------------------------------------- concurrency


def test_small_files_go_as_forms_several_at_once(backend: FakeBackend, tmp_path: Path) -> None:
    # Given three small files, and an S3 whose form POSTs all wait until three are in flight
    paths = files(tmp_path, {"a.jpg": 10, "b.jpg": 20, "c.jpg": 30})
    barrier = threading.Barrier(3, timeout=GUARD_SECONDS)
    backend.on_form = lambda _key: barrier.wait()
    # When they are put three at a time
    outcomes = make_uploader(backend, files_at_once=3).put_many(paths)
    # Then all three were sent at once (else the barrier breaks), each as one form POST
    assert [(outcome.verdict, outcome.exit_code) for outcome in outcomes] == [("valid", ExitCode.OK)] * 3
    assert sorted(backend.form_posts) == sorted(outcome.key for outcome in outcomes)
    assert [backend.objects[str(outcome.key)] for outcome in outcomes] == [path.read_bytes() for path in paths]
    assert not any(path == "/uploads" for _, path in backend.api_log)  # no multipart upload


def test_multipart_files_and_their_verdict_waits_run_together(backend: FakeBackend, tmp_path: Path) -> None:
    # Given two files larger than a part, and a backend where part 2 of each waits for the
    # other's, and so does each file's first status poll
    paths = files(tmp_path, {"a.jpg": 23, "b.jpg": 17})
    parts = threading.Barrier(2, timeout=GUARD_SECONDS)
    polls = threading.Barrier(2, timeout=GUARD_SECONDS)
    backend.on_put = lambda number: parts.wait() if number == 2 else None
    original = backend._files
    polled: set[str] = set()

    def files_route(method: str, segments: list[str], query: Any) -> Any:
        if segments[1:] == ["status"] and segments[0] not in polled:
            polled.add(segments[0])
            polls.wait()
        return original(method, segments, query)

    backend._files = files_route  # type: ignore[method-assign]
    # When they are put two at a time, one part in flight each
    outcomes = make_uploader(backend, part_size=5, concurrency=1, files_at_once=2).put_many(paths)
    # Then both went as multipart uploads at once, and their verdicts were awaited at once
    assert [(outcome.verdict, outcome.result.parts_sent) for outcome in outcomes if outcome.result] == [
        ("valid", 5),
        ("valid", 4),
    ]
    assert backend.form_posts == []


def test_requests_in_flight_stay_within_files_at_once_times_concurrency(backend: FakeBackend, tmp_path: Path) -> None:
    paths = files(tmp_path, {f"{n}.jpg": 40 for n in range(6)})
    outcomes = make_uploader(backend, part_size=5, concurrency=2, files_at_once=2).put_many(paths, wait=False)
    assert all(outcome.result is not None for outcome in outcomes)
    assert 1 <= backend.max_in_flight <= 2 * 2


# --------------------------------------------------------------------------- progress and outcomes


def test_the_overall_progress_never_goes_back_and_ends_at_the_total(backend: FakeBackend, tmp_path: Path) -> None:
    # Given small files (forms) and larger ones (multipart, part 2 sent twice after a failure)
    files(tmp_path / "mixed", {"a.jpg": 3, "b.jpg": 23, "c.jpg": 4, "d.jpg": 31, "e.jpg": 12})
    backend.part_faults[2] = ["500"]
    reports: list[tuple[int, int]] = []
    uploader = make_uploader(backend, part_size=5, files_at_once=3, retry_policy=RetryPolicy(retries=2))
    # When the folder is put
    outcomes = uploader.put_many([tmp_path / "mixed"], on_progress=lambda done, total: reports.append((done, total)))
    # Then one bar covers every byte of every file: it starts at 0, never goes back, ends at the total
    total = 3 + 23 + 4 + 31 + 12
    assert all(outcome.verdict == "valid" for outcome in outcomes)
    assert {report_total for _, report_total in reports} == {total}
    done = [report_done for report_done, _ in reports]
    assert done[0] == 0 and done[-1] == total
    assert done == sorted(done)


def test_the_exit_code_is_the_worst_outcome(backend: FakeBackend, tmp_path: Path) -> None:
    # Given a valid file, a rejected one, and one that does not exist
    paths = files(tmp_path, {"ok.jpg": 23, "bad.jpg": 7})
    reject(backend, "bad.jpg", "trailing-data")
    ended: list[str] = []
    # When they are put
    outcomes = make_uploader(backend, part_size=5).put_many(
        [*paths, tmp_path / "gone.jpg"], on_result=lambda outcome: ended.append(outcome.path)
    )
    # Then each has its own outcome, one failure stopped nothing, and the worst one wins
    assert [(outcome.verdict, outcome.exit_code) for outcome in outcomes] == [
        ("valid", ExitCode.OK),
        ("rejected", ExitCode.REJECTED),
        ("error", ExitCode.LOCAL_FILE),
    ]
    assert outcomes[1].reason == "trailing-data"
    assert sorted(ended) == sorted(outcome.path for outcome in outcomes)
    assert worst(outcomes) == ExitCode.REJECTED == 10
    assert worst([]) == ExitCode.OK
    ordered = [ExitCode.OK, ExitCode.LOCAL_FILE, ExitCode.REJECTED, ExitCode.NO_VERDICT, ExitCode.INTERRUPTED]
    for index, code in enumerate(ordered):
        assert worst(FileOutcome("f", exit_code=other) for other in ordered[: index + 1]) == code


def test_no_verdict_in_time_exits_11(backend: FakeBackend, tmp_path: Path) -> None:
    (path,) = files(tmp_path, {"slow.jpg": 9})
    reject(backend, "slow.jpg", "")
    backend.verdicts.clear()
    original = backend._file
    backend._file = lambda key: {**original(key), "status": "pending"}  # type: ignore[method-assign]
    code, out, _ = run(["put", str(path), "--wait-timeout", "0", "-q"], backend)
    assert code == ExitCode.NO_VERDICT == 11
    assert out.rstrip().endswith(": pending (no verdict in time)")


def test_json_prints_one_object_per_file_as_it_ends(backend: FakeBackend, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    files(folder, {"a.jpg": 3, "b.jpg": 23})
    files(folder / "sub", {"c.jpg": 8})
    reject(backend, "c.jpg", "bad-magic")
    code, out, _ = run(["--json", "put", str(folder), "--files-at-once", "2", "--part-size", "5"], backend)
    assert code == ExitCode.REJECTED
    results = {Path(item["path"]).name: item for item in map(json.loads, out.splitlines())}
    assert sorted(results) == ["a.jpg", "b.jpg", "c.jpg"]
    assert {name: (item["verdict"], item["exitCode"]) for name, item in results.items()} == {
        "a.jpg": ("valid", 0),
        "b.jpg": ("valid", 0),
        "c.jpg": ("rejected", 10),
    }
    assert results["c.jpg"]["reason"] == "bad-magic"
    assert results["b.jpg"]["partsSent"] == 5 and results["b.jpg"]["key"] in backend.objects


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_every_file_keeps_their_parts_and_prints_each_resume_command(
    backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three files put two at a time, and a Ctrl-C (to the main thread, as the terminal
    # sends it) once both files in flight have part 3 on its way
    paths = files(tmp_path / "photos", {"a.jpg": 23, "b.jpg": 23, "c.jpg": 23})
    both_at_part_3 = threading.Barrier(2, timeout=GUARD_SECONDS)
    stopped = threading.Event()
    stop = _Stopper.stop

    def stop_and_say_so(self: _Stopper) -> None:
        stop(self)
        stopped.set()

    monkeypatch.setattr(_Stopper, "stop", stop_and_say_so)

    def on_put(number: int) -> None:
        if number == 3:
            if both_at_part_3.wait() == 0:
                _thread.interrupt_main()
            assert stopped.wait(GUARD_SECONDS)

    backend.on_put = on_put
    code, _, err = run(
        ["put", str(tmp_path / "photos"), "--part-size", "5", "--concurrency", "1", "--files-at-once", "2"], backend
    )
    # Then it exits 130; both uploads in flight are kept, each with its resume command; the
    # third file never started
    assert code == ExitCode.INTERRUPTED == 130
    assert len(backend.uploads) == 2 and not backend.objects
    for upload in backend.uploads.values():
        assert f"kept the upload of {upload.key} (upload {upload.upload_id}):" in err
        assert set(upload.parts) >= {1, 2}
    resumes = [line for line in err.splitlines() if line.startswith("resume with:")]
    assert sorted(line.rsplit(" ", 1)[-1] for line in resumes) == [str(paths[0]), str(paths[1])]
    assert f"not started (1): {paths[2]}" in err


def test_cancel_from_another_thread_stops_put_many(backend: FakeBackend, tmp_path: Path) -> None:
    paths = files(tmp_path, {"a.jpg": 23, "b.jpg": 23, "c.jpg": 23})
    uploader = make_uploader(backend, part_size=5, concurrency=1, files_at_once=1)
    backend.on_put = lambda number: uploader.cancel() if number == 2 else None
    with pytest.raises(BatchInterrupted) as stopped:
        uploader.put_many(paths)
    # The file in flight is kept for resume, the others never started
    [kept] = stopped.value.kept_uploads
    assert kept.path == str(paths[0]) and kept.upload_id in backend.uploads
    assert stopped.value.not_started == [str(paths[1]), str(paths[2])]
    assert [outcome.exit_code for outcome in stopped.value.outcomes] == [ExitCode.INTERRUPTED]
