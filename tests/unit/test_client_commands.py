"""The CLI layer: configuration, output, one-line errors and exit codes (in process, no network)."""

from __future__ import annotations

import io
import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import requests
from client_fakes import API, TOKEN, FakeBackend, json_response, response

from client.api import api_error
from client.cli import main
from client.errors import (
    ApiError,
    ApiUnreachable,
    AuthError,
    ConfigError,
    ExitCode,
    LocalFileError,
    NotFoundError,
    TransferError,
    exit_code_for,
)
from client.hints import interpreter
from client.progress import ProgressBar

ENV = {"UPLOAD_API_URL": API, "UPLOAD_API_TOKEN": TOKEN}


def run(argv: list[str], *, env: dict[str, str] = ENV, session: requests.Session | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=env, stdout=out, stderr=err, session=session)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(bytes(range(23)))
    return path


def test_put_prints_the_key_and_exits_0(backend: FakeBackend, photo: Path) -> None:
    code, out, err = run(["put", str(photo), "--part-size", "5", "--no-progress"], session=backend.session())
    assert code == ExitCode.OK, err
    (key,) = backend.objects
    assert out.startswith(f"uploaded {photo} to {key} (23 bytes; 5 parts sent;")
    assert backend.objects[key] == photo.read_bytes()


def test_put_json_output(backend: FakeBackend, photo: Path) -> None:
    code, out, _ = run(
        ["--json", "put", str(photo), "--part-size", "5", "--checksum", "sha256"], session=backend.session()
    )
    assert code == 0
    result = json.loads(out)
    assert set(result) == {
        *("path", "key", "etag", "size", "location", "uploadId", "partsSent", "partsReused"),
        *("verdict", "reason", "exitCode"),
    }
    assert (result["size"], result["partsSent"], result["verdict"], result["exitCode"]) == (23, 5, "valid", 0)


def test_ls_and_abort(backend: FakeBackend, photo: Path) -> None:
    backend.part_faults[2] = ["fatal"]
    assert (
        run(["put", str(photo), "--part-size", "5", "--keep-parts", "-q"], session=backend.session())[0]
        == ExitCode.TRANSFER
    )
    (upload,) = backend.uploads.values()
    code, out, _ = run(["ls", "--unfinished"], session=backend.session())
    assert code == 0 and out.split("\t")[0] == upload.upload_id and out.rstrip().endswith(upload.key)
    code, out, _ = run(["abort", upload.upload_id, "--json"], session=backend.session())
    assert code == 0 and json.loads(out)["aborted"][0]["key"] == upload.key
    assert backend.uploads == {}


def test_the_token_flag_wins_over_the_environment_and_a_bearer_prefix_is_dropped(backend: FakeBackend) -> None:
    code, _, err = run(
        ["ls", "--token", f"Bearer {TOKEN}"],
        env={"UPLOAD_API_URL": API, "UPLOAD_API_TOKEN": "stale"},
        session=backend.session(),
    )
    assert code == 0, err


def test_no_token_says_how_to_get_one() -> None:
    code, _, err = run(["ls"], env={})
    assert code == ExitCode.CONFIG
    assert err == (
        "error: no API token: set UPLOAD_API_TOKEN or pass --token"
        " (for the local stack: export UPLOAD_API_TOKEN=$(make -s token SUB=local-user),"
        " with the SUB you upload as; local-user is `make upload`'s)\n"
    )


def test_a_malformed_api_url_is_a_configuration_error() -> None:
    code, _, err = run(["ls", "--api-url", "localhost:3000"])
    assert code == ExitCode.CONFIG
    assert "the API URL must look like" in err


def test_a_refused_token_exits_4_with_a_hint(backend: FakeBackend) -> None:
    code, _, err = run(["ls"], env={**ENV, "UPLOAD_API_TOKEN": "expired"}, session=backend.session())
    assert code == ExitCode.AUTH
    assert err.startswith("error: the API refused the token (Unauthorized, 401)") and "make -s token" in err
    assert err.count("\n") == 1


def test_a_refused_file_exits_6_with_the_api_message(backend: FakeBackend, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, _, err = run(["put", str(notes)], session=backend.session())
    assert code == ExitCode.REFUSED
    assert err == "error: content type 'text/plain' is not allowed (415 UnsupportedContentType)\n"


def test_a_missing_file_exits_8(backend: FakeBackend, tmp_path: Path) -> None:
    code, _, err = run(["put", str(tmp_path / "nope.jpg")], session=backend.session())
    assert code == ExitCode.LOCAL_FILE
    assert err.startswith("error: ") and "no such file" in err


def test_nothing_to_abort_exits_9(backend: FakeBackend) -> None:
    assert run(["abort", "uploads/tester/x/y.jpg"], session=backend.session())[0] == ExitCode.NOT_FOUND


class Unreachable(requests.adapters.BaseAdapter):
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raise requests.exceptions.ConnectionError(
            "Failed to establish a new connection: [Errno 111] Connection refused (NewConnectionError)"
        )

    def close(self) -> None:
        pass


def test_an_unreachable_api_exits_5() -> None:
    session = requests.Session()
    session.mount("http://", Unreachable())
    code, _, err = run(["ls", "--retries", "0"], session=session)
    assert code == ExitCode.UNREACHABLE
    assert err == f"error: cannot reach the API at {API}: connection refused (is it running? `make dev` starts it)\n"


def ctrl_c_at(part: int) -> Any:
    def hook(number: int) -> None:
        if number == part:
            raise KeyboardInterrupt

    return hook


def hint(err: str, label: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith(label)]
    return line.removeprefix(label).strip()


def test_ctrl_c_keeps_the_parts_prints_the_resume_command_and_resume_sends_the_rest(
    backend: FakeBackend, photo: Path
) -> None:
    # Given a put interrupted with Ctrl-C while part 3 is on its way (parts 1 and 2 are in S3)
    backend.on_put = ctrl_c_at(3)
    code, _, err = run(["put", str(photo), "--part-size", "5", "--concurrency", "1"], session=backend.session())
    # Then it exits 130, the upload and its parts stay, and the exact resume command is printed
    assert code == ExitCode.INTERRUPTED
    (upload,) = backend.uploads.values()
    assert set(upload.parts) == {1, 2}
    assert f"kept the upload of {upload.key} (upload {upload.upload_id}): 2 of 5 parts confirmed in S3" in err
    resume = hint(err, "resume with:")
    assert resume == f"{interpreter(os.getcwd())} -m client resume {photo}"
    assert hint(err, "or abort it:") == f"{interpreter(os.getcwd())} -m client abort {photo}"
    assert "lifecycle rule" in err
    # When that command is run (without any option given before)
    backend.on_put = None
    backend.put_log.clear()
    code, out, err = run(shlex.split(resume)[3:], session=backend.session())
    # Then only the 3 missing parts are sent and the object is the file
    assert code == ExitCode.OK, err
    assert sorted(number for number, _ in backend.put_log) == [3, 4, 5]
    assert "3 parts sent, 2 already there" in out
    assert backend.objects[upload.key] == photo.read_bytes()


def test_under_make_the_resume_command_is_make_with_the_same_user(backend: FakeBackend, photo: Path) -> None:
    backend.on_put = ctrl_c_at(2)
    env = {**ENV, "UPLOAD_CLI_MAKE": "make upload SUB=alice"}
    code, _, err = run(["put", str(photo), "--part-size", "5", "-q"], env=env, session=backend.session())
    assert code == ExitCode.INTERRUPTED
    assert hint(err, "resume with:") == f"make upload SUB=alice CMD=resume FILE={photo}"


def test_options_from_the_command_line_are_repeated_but_never_the_token(backend: FakeBackend, photo: Path) -> None:
    backend.on_put = ctrl_c_at(2)
    argv = ["put", str(photo), "--part-size", "5", "--api-url", API, "--token", TOKEN]
    code, _, err = run(argv, env={}, session=backend.session())
    assert code == ExitCode.INTERRUPTED
    assert hint(err, "resume with:") == (
        f"{interpreter(os.getcwd())} -m client resume --api-url {API} {photo} --token TOKEN"
    )
    assert TOKEN not in err


def test_ctrl_c_with_abort_on_interrupt_aborts(backend: FakeBackend, photo: Path) -> None:
    backend.on_put = ctrl_c_at(3)
    argv = ["put", str(photo), "--part-size", "5", "--no-progress", "--abort-on-interrupt"]
    code, _, err = run(argv, session=backend.session())
    assert code == ExitCode.INTERRUPTED
    assert err.rstrip().endswith("interrupted")
    assert "aborted upload" in err and "resume" not in err
    assert backend.uploads == {}


def test_a_failure_with_keep_parts_prints_the_resume_command(backend: FakeBackend, photo: Path) -> None:
    backend.part_faults[2] = ["fatal"]
    code, _, err = run(["put", str(photo), "--part-size", "5", "--keep-parts", "-q"], session=backend.session())
    assert code == ExitCode.TRANSFER
    assert err.startswith("error: part 2: S3 refused it")
    assert hint(err, "resume with:").endswith(f"-m client resume {photo}")


def test_without_a_state_file_the_resume_command_names_the_upload(
    backend: FakeBackend, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a directory where no state file can be written
    monkeypatch.setattr("client.state.save_state", _refuse)
    backend.on_put = ctrl_c_at(2)
    code, _, err = run(["put", str(photo), "--part-size", "5"], session=backend.session())
    (upload,) = backend.uploads.values()
    assert code == ExitCode.INTERRUPTED
    resume = hint(err, "resume with:")
    assert resume.endswith(f"-m client resume --upload-id {shlex.quote(upload.upload_id)} {photo}")
    assert hint(err, "or abort it:").endswith(f"-m client abort {shlex.quote(upload.upload_id)}")


def _refuse(*_: object) -> None:
    raise PermissionError(13, "Permission denied")


def test_ls_says_when_there_is_nothing(backend: FakeBackend) -> None:
    assert run(["ls", "--unfinished"], session=backend.session()) == (0, "", "no unfinished uploads\n")
    assert run(["ls", "--unfinished", "-q"], session=backend.session()) == (0, "", "")
    code, out, _ = run(["ls", "--unfinished", "--json"], session=backend.session())
    assert (code, json.loads(out)) == (0, {"uploads": []})


def test_a_bad_part_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["put", "x.jpg", "--part-size", "lots"], env=ENV)
    assert raised.value.code == ExitCode.USAGE
    assert "not a size" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), ExitCode.CONFIG),
        (AuthError(401, "", "Unauthorized"), ExitCode.AUTH),
        (ApiUnreachable("x"), ExitCode.UNREACHABLE),
        (ApiError(413, "UploadTooLarge", "too large"), ExitCode.REFUSED),
        (TransferError("x"), ExitCode.TRANSFER),
        (LocalFileError("x"), ExitCode.LOCAL_FILE),
        (NotFoundError("x"), ExitCode.NOT_FOUND),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (RuntimeError("bug"), ExitCode.INTERNAL),
    ],
)
def test_every_error_has_its_exit_code(error: BaseException, code: ExitCode) -> None:
    assert exit_code_for(error) == code


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (401, {"message": "Unauthorized"}, AuthError, ""),
        (403, {"message": "Forbidden"}, AuthError, ""),  # the authorizer's own refusal
        (403, {"code": "ForeignKey", "message": "this key does not belong to you"}, ApiError, "ForeignKey"),
        (413, {"code": "UploadTooLarge", "message": "too large"}, ApiError, "UploadTooLarge"),
    ],
)
def test_api_errors_are_typed_by_status_and_code(
    status: int, body: dict[str, str], kind: type[ApiError], code: str
) -> None:
    error = api_error(json_response(status, body))
    assert type(error) is kind
    assert (error.status, error.code, error.message) == (status, code, body["message"])


def test_an_error_without_json_uses_the_reason() -> None:
    error = api_error(response(502, b"<html>Bad Gateway</html>"))
    assert (error.status, error.message) == (502, "Error")


def test_the_progress_bar_shows_bytes_and_rate_and_keeps_notices_apart() -> None:
    stream = io.StringIO()
    bar = ProgressBar("photo.jpg", enabled=True, stream=stream)
    bar(0, 3 * 1024 * 1024)
    bar(1024 * 1024, 3 * 1024 * 1024)
    bar.write("part 2: 500 InternalError; retrying")
    bar(3 * 1024 * 1024, 3 * 1024 * 1024)
    bar(1024, 3 * 1024 * 1024)  # never goes back
    bar.close()
    text = stream.getvalue()
    assert "photo.jpg: 100%" in text and "3.00M/3.00M" in text and "B/s" in text
    assert "part 2: 500 InternalError; retrying\n" in text


def test_a_disabled_progress_bar_prints_only_notices() -> None:
    stream = io.StringIO()
    bar = ProgressBar("photo.jpg", enabled=False, stream=stream)
    bar(0, 10)
    bar.write("notice")
    bar(10, 10)
    bar.close()
    assert stream.getvalue() == "notice\n"


# --------------------------------------------------------------------------- files and verdicts


def test_put_waits_for_the_verdict_and_a_rejected_file_exits_10_with_the_reason(
    backend: FakeBackend, photo: Path, tmp_path: Path
) -> None:
    # Given two files in a folder, one of which the validator rejects
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"a" * 7)
    (folder / "sub" / "b.jpg").write_bytes(b"b" * 9)
    original = backend._complete

    def complete(upload: Any, data: Any) -> Any:
        if upload.key.endswith("/b.jpg"):
            backend.verdicts[upload.key] = ("rejected", "trailing-data")
        return original(upload, data)

    backend._complete = complete  # type: ignore[method-assign]
    # When both are put (the folder recursively)
    code, out, _ = run(["put", str(folder), "--part-size", "5", "-q"], session=backend.session())
    # Then each has its result line, and the exit code is the worst outcome: rejected
    assert code == ExitCode.REJECTED == 10
    lines = sorted(out.splitlines())  # in the order they end
    assert len(lines) == 2
    assert lines[0].startswith(f"uploaded {folder / 'a.jpg'} to ") and lines[0].endswith(": valid")
    assert lines[1].startswith(f"uploaded {folder / 'sub' / 'b.jpg'} to ")
    assert lines[1].endswith(": REJECTED (trailing-data)")


def test_put_json_prints_one_object_per_file_and_no_wait_skips_the_verdict(
    backend: FakeBackend, photo: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.jpg"
    other.write_bytes(b"x" * 11)
    code, out, _ = run(
        ["--json", "put", str(photo), str(other), "--part-size", "5", "--no-wait"], session=backend.session()
    )
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    # (in the order they end: several files are in flight at once)
    assert sorted((r["path"], r["verdict"]) for r in results) == [(str(other), "pending"), (str(photo), "pending")]
    assert not any(path.startswith("/files") for _, path in backend.api_log)


def test_ls_status_get_and_rm(backend: FakeBackend, photo: Path, tmp_path: Path) -> None:
    assert run(["put", str(photo), "--part-size", "5", "-q"], session=backend.session())[0] == 0
    (key,) = backend.objects
    file_id = key.split("/")[-2]
    # ls lists the file with its status
    code, out, _ = run(["ls"], session=backend.session())
    assert code == 0 and out.startswith(f"{file_id}\tvalid\t23\t") and out.rstrip().endswith(key)
    # status by fileId or by key
    assert run(["status", key], session=backend.session())[1] == f"valid\t{key}\n"
    # get downloads and verifies it
    target = tmp_path / "copy.jpg"
    code, out, err = run(["get", file_id, "-o", str(target), "--no-progress"], session=backend.session())
    assert code == 0, err
    assert target.read_bytes() == photo.read_bytes()
    # rm deletes it; a second rm is a clean "no such file"
    assert run(["rm", file_id], session=backend.session())[:2] == (0, f"deleted {file_id}\n")
    code, _, err = run(["rm", file_id], session=backend.session())
    assert code == ExitCode.NOT_FOUND and err.startswith("error: no file")


@pytest.mark.parametrize(
    ("declared", "written"),
    [("../../escape.jpg", "escape.jpg"), ("..\\up.jpg", "up.jpg"), (".bashrc", "bashrc"), ("..", None), ("/", None)],
)
def test_get_without_output_writes_only_into_the_current_directory(
    backend: FakeBackend,
    photo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    declared: str,
    written: str | None,
) -> None:
    # Given a valid file whose declared name tries to leave the directory or hide itself
    assert run(["put", str(photo), "--part-size", "5", "-q"], session=backend.session())[0] == 0
    (key,) = backend.objects
    original = backend._file

    def hostile(key: str) -> dict[str, Any]:
        return {**original(key), "name": declared}

    backend._file = hostile  # type: ignore[method-assign]
    here = tmp_path / "here" / "deeper"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    # When it is fetched without -o
    code, _, err = run(["get", key.split("/")[-2], "-q"], session=backend.session())
    # Then it lands here under its last segment (or its file id), and nowhere else
    assert code == 0, err
    assert [path.name for path in here.iterdir()] == [written or key.split("/")[-2]]
    assert not (tmp_path / "escape.jpg").exists() and not (tmp_path / "here" / "escape.jpg").exists()


def test_get_refuses_a_corrupt_download(backend: FakeBackend, photo: Path, tmp_path: Path) -> None:
    assert run(["put", str(photo), "--part-size", "5", "-q"], session=backend.session())[0] == 0
    (key,) = backend.objects
    original = backend._file

    def lying(key: str) -> dict[str, Any]:
        return {**original(key), "size": 99}

    backend._file = lying  # type: ignore[method-assign]
    target = tmp_path / "copy.jpg"
    code, _, err = run(["get", key.split("/")[-2], "-o", str(target), "-q"], session=backend.session())
    assert code == ExitCode.TRANSFER and "corrupt" in err
    assert not target.exists() and not (tmp_path / "copy.jpg.part").exists()
