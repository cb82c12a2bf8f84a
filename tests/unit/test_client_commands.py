"""The CLI layer: configuration, output, one-line errors and exit codes (in process, no network)."""

from __future__ import annotations

import io
import json
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
    assert set(result) == {"key", "etag", "size", "location", "uploadId", "partsSent", "partsReused"}
    assert (result["size"], result["partsSent"]) == (23, 5)


def test_ls_and_abort(backend: FakeBackend, photo: Path) -> None:
    backend.part_faults[2] = ["fatal"]
    assert (
        run(["put", str(photo), "--part-size", "5", "--keep-parts", "-q"], session=backend.session())[0]
        == ExitCode.TRANSFER
    )
    (upload,) = backend.uploads.values()
    code, out, _ = run(["ls"], session=backend.session())
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
        " (for the local stack: export UPLOAD_API_TOKEN=$(make -s token SUB=me))\n"
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


def test_ctrl_c_exits_130(backend: FakeBackend, photo: Path) -> None:
    def ctrl_c(_number: int) -> None:
        raise KeyboardInterrupt

    backend.on_put = ctrl_c
    code, _, err = run(["put", str(photo), "--part-size", "5", "--no-progress"], session=backend.session())
    assert code == ExitCode.INTERRUPTED
    assert err.rstrip().endswith("interrupted")
    assert "aborted upload" in err


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
