"""The upload CLI end to end: `python -m client` as a subprocess against the local stack.

The stack here has no S3 event loop (the payloads are random bytes; the validator would quarantine
them), so `put` runs with --no-wait (tests/integration/test_files_http.py checks the verdicts),
and allows imports from one local source server. Faults and interruptions are made by a
forward proxy in front of everything (tests/integration/fault_proxy.py, reached through
HTTP_PROXY), so the CLI talks to the real API and the real embedded S3 with real signed URLs.
Every test uses its own user, so its prefix holds only what the test made.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import FAILURES, FaultProxy

from client.hints import interpreter
from local.stack import LocalStack
from local.template import REPO_ROOT
from tests.import_support import Reply, SourceServer, image_bytes
from tests.stack_limits import GENEROUS_LIMITS

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
CLI_TIMEOUT = 120


@pytest.fixture(scope="module")
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        server.routes["/cat.png"] = Reply(headers=[("Content-Type", "image/png")], body=[image_bytes("PNG")])
        yield server


@pytest.fixture(scope="module")
def cli_stack(source: SourceServer) -> Iterator[LocalStack]:
    overrides = {"IMPORT_ALLOWED_DESTINATIONS": source.authority}
    with LocalStack(
        s3_port=0, api_port=0, env_overrides=overrides, s3_events=False, parameter_overrides=GENEROUS_LIMITS
    ) as running:
        yield running


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy() as running:
        yield running


@pytest.fixture
def s3(cli_stack: LocalStack) -> Any:
    return cli_stack.s3_client()


def cli_env(stack: LocalStack, user: str, proxy: FaultProxy | None = None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        and not name.startswith("UPLOAD_API_")
    }
    env["UPLOAD_API_URL"] = stack.api_url
    env["UPLOAD_API_TOKEN"] = stack.token_for(user)
    if proxy is not None:
        env["http_proxy"] = proxy.url
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def start_cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "client", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def random_file(directory: Path, size: int, name: str = "data.jpg") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = directory / name
    path.write_bytes(data)
    return path, data


def expected_etag(data: bytes, part_size: int) -> str:
    digests = [hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)]  # noqa: S324
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"  # noqa: S324


def stored(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def leftovers(s3: Any, bucket: str, user: str) -> tuple[list[str], list[str]]:
    """Unfinished multipart uploads and objects under the user's prefix."""
    prefix = f"uploads/{user}/"
    uploads = [upload["Key"] for upload in s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])]
    objects = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return uploads, objects


def state_of(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.with_name(path.name + ".upload-state.json").read_text()))


def interrupt_when_held(process: subprocess.Popen[str], proxy: FaultProxy) -> tuple[int, str]:
    """Ctrl-C the CLI once the proxy holds a part PUT (earlier parts went through); returns the
    exit code and stderr."""
    assert proxy.held.wait(60), "the CLI never reached the held part"
    process.send_signal(signal.SIGINT)
    proxy.release()
    _, stderr = process.communicate(timeout=CLI_TIMEOUT)
    return process.returncode, stderr


def wait_for(condition: Any, seconds: float = 30.0) -> bool:
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


# ------------------------------------------------------------------------------------------ put


def test_a_50_mib_file_in_10_parts_3_at_a_time_is_stored_byte_identical(
    cli_stack: LocalStack, s3: Any, tmp_path: Path
) -> None:
    # Given a 50 MiB file
    path, data = random_file(tmp_path, 50 * MIB)
    # When it is uploaded with 3 parts in flight, 5 MiB each
    done = run_cli(
        "put",
        "--no-wait",
        str(path),
        "--concurrency",
        "3",
        "--part-size",
        "5MiB",
        "--json",
        env=cli_env(cli_stack, "cli-put"),
    )
    # Then the CLI reports 10 parts sent and S3 holds exactly the file, under the caller's prefix
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["partsSent"] == 10 and result["partsReused"] == 0
    assert result["key"].startswith("uploads/cli-put/") and result["key"].endswith("/data.jpg")
    assert result["size"] == len(data)
    assert stored(s3, cli_stack.bucket, result["key"]) == data
    assert result["etag"].strip('"') == expected_etag(data, 5 * MIB)
    # And nothing is left behind: no unfinished upload, no state file
    assert leftovers(s3, cli_stack.bucket, "cli-put")[0] == []
    assert not path.with_name("data.jpg.upload-state.json").exists()


def test_a_run_where_a_fifth_of_part_puts_fail_still_ends_byte_identical(
    cli_stack: LocalStack, s3: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    # Given a 17-part file (21 PUTs when every 5th fails) and a proxy that fails every 5th part
    # PUT: a 500, a dropped connection, a 503 SlowDown and an expired URL, in turn
    path, data = random_file(tmp_path, 16 * 5 * MIB + 1000)
    proxy.reset(fail_every=5)
    # When it is uploaded through the proxy
    done = run_cli(
        "put",
        "--no-wait",
        str(path),
        "--concurrency",
        "3",
        "--part-size",
        "5MiB",
        "--json",
        env=cli_env(cli_stack, "cli-faults", proxy),
    )
    # Then every kind of failure happened and was retried (or re-signed) away
    assert done.returncode == 0, done.stderr
    assert sorted(set(proxy.injected())) == sorted(FAILURES)
    assert sorted(proxy.stored_parts()) == list(range(1, 18))  # each part reached S3 exactly once
    # And S3 holds exactly the file
    result = json.loads(done.stdout)
    assert stored(s3, cli_stack.bucket, result["key"]) == data
    assert result["etag"].strip('"') == expected_etag(data, 5 * MIB)
    assert "expired" in done.stderr  # the re-signing was reported


URL_EXPIRY_SECONDS = 3


def test_a_part_whose_url_really_expired_is_signed_again(proxy: FaultProxy, tmp_path: Path) -> None:
    # Given part URLs that live 3 s, and a first PUT that reaches S3 only after 4.5 s
    overrides = {"UrlExpirySeconds": str(URL_EXPIRY_SECONDS)}
    with LocalStack(
        s3_port=0, api_port=0, parameter_overrides={**GENEROUS_LIMITS, **overrides}, s3_events=False
    ) as short_lived:
        # (larger than a part: a file that fits in one goes as a form POST, with no part URL)
        path, data = random_file(tmp_path, 6 * MIB)
        proxy.reset(delay_first_put=URL_EXPIRY_SECONDS + 1.5)
        # When the file is uploaded through the proxy, one part at a time
        done = run_cli(
            "put",
            "--no-wait",
            str(path),
            "--json",
            "--part-size",
            "5MiB",
            "--concurrency",
            "1",
            env=cli_env(short_lived, "cli-expiry", proxy),
        )
        # Then S3 itself refused the late PUT as expired, and the CLI signed a new URL and finished
        # (part 2's URL, signed ahead, may have expired meanwhile too, and is signed again)
        assert done.returncode == 0, done.stderr
        puts = [(put.part_number, put.status, put.injected) for put in proxy.puts]
        assert puts[:2] == [(1, 403, None), (1, 200, None)]
        assert puts[-1] == (2, 200, None) and set(puts[2:-1]) <= {(2, 403, None)}
        assert "the URL expired; signing a new one" in done.stderr
        key = json.loads(done.stdout)["key"]
        assert stored(short_lived.s3_client(), short_lived.bucket, key) == data


# ------------------------------------------------------------------------------------------ interrupt and resume


def printed_command(stderr: str, label: str) -> list[str]:
    """The command the CLI printed after ``label`` (e.g. "resume with:"), split as a shell would."""
    (line,) = [line for line in stderr.splitlines() if line.startswith(label)]
    return shlex.split(line.removeprefix(label))


@pytest.mark.parametrize("found_by", ["state file", "GET /uploads"])
def test_an_interrupted_upload_is_resumed_with_the_printed_command_sending_only_the_missing_parts(
    cli_stack: LocalStack, s3: Any, proxy: FaultProxy, tmp_path: Path, found_by: str
) -> None:
    user = "cli-resume-" + found_by.split(maxsplit=1)[0].lower()
    env = cli_env(cli_stack, user, proxy)
    path, data = random_file(tmp_path, 7 * 5 * MIB + 12345)  # 8 parts
    # Given an upload, started with no option about interrupts, stopped with Ctrl-C after 3 parts reached S3
    proxy.reset(pass_limit=3)
    process = start_cli("put", "--no-wait", str(path), "--part-size", "5MiB", "--concurrency", "2", env=env)
    code, stderr = interrupt_when_held(process, proxy)
    # Then it exits 130 and prints the command that resumes it, with the interpreter that runs here
    assert code == 130, stderr
    resume = printed_command(stderr, "resume with:")
    assert resume == [interpreter(str(REPO_ROOT)), "-m", "client", "resume", str(path)]
    assert resume[0] != "python" and Path(REPO_ROOT, resume[0]).samefile(sys.executable)
    assert re.search(r"kept the upload of \S+ \(upload \S+\): [0-3] of 8 parts confirmed in S3", stderr)
    assert "lifecycle rule" in stderr and stderr.rstrip().endswith("by default)")  # nothing after the hint
    assert wait_for(lambda: len(proxy.stored_parts()) == 3)
    key = state_of(path)["key"]
    upload_id = state_of(path)["uploadId"]
    before = {
        part["PartNumber"] for part in s3.list_parts(Bucket=cli_stack.bucket, Key=key, UploadId=upload_id)["Parts"]
    }
    assert len(before) == 3
    if found_by == "GET /uploads":
        path.with_name(path.name + ".upload-state.json").unlink()
    # When the printed command is run as printed
    proxy.reset()
    done = subprocess.run(
        [*resume, "--json"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )
    # Then only the 5 missing parts are sent, and S3 holds exactly the file under the same key
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["key"] == key
    assert (result["partsSent"], result["partsReused"]) == (5, 3)
    assert sorted(proxy.stored_parts()) == sorted(set(range(1, 9)) - before)
    assert stored(s3, cli_stack.bucket, key) == data
    assert result["etag"].strip('"') == expected_etag(data, 5 * MIB)
    assert not path.with_name(path.name + ".upload-state.json").exists()
    assert leftovers(s3, cli_stack.bucket, user)[0] == []


def test_ctrl_c_with_abort_on_interrupt_aborts_the_upload_and_leaves_nothing(
    cli_stack: LocalStack, s3: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    # Given an upload under way (2 parts in S3, the next one held) that was told to abort on Ctrl-C
    path, _ = random_file(tmp_path, 4 * 5 * MIB)
    proxy.reset(pass_limit=2)
    env = cli_env(cli_stack, "cli-ctrl-c", proxy)
    process = start_cli("put", "--no-wait", str(path), "--part-size", "5MiB", "--abort-on-interrupt", env=env)
    # When Ctrl-C is pressed
    code, stderr = interrupt_when_held(process, proxy)
    # Then the CLI exits 130 after aborting: no unfinished upload, no object, no state file
    assert code == 130, stderr
    assert "aborted upload" in stderr and "resume with:" not in stderr
    assert leftovers(s3, cli_stack.bucket, "cli-ctrl-c") == ([], [])
    assert not path.with_name(path.name + ".upload-state.json").exists()


def test_abort_removes_a_kept_upload_and_ls_lists_it_until_then(
    cli_stack: LocalStack, s3: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    env = cli_env(cli_stack, "cli-abort", proxy)
    # Given an interrupted upload (its parts are kept)
    path, _ = random_file(tmp_path, 3 * 5 * MIB)
    proxy.reset(pass_limit=1)
    process = start_cli("put", "--no-wait", str(path), "--part-size", "5MiB", env=env)
    assert interrupt_when_held(process, proxy)[0] == 130
    assert wait_for(lambda: len(proxy.stored_parts()) == 1)
    key = state_of(path)["key"]
    # When it is listed / Then `ls` shows it
    listed = run_cli("ls", "--unfinished", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [upload["key"] for upload in json.loads(listed.stdout)["uploads"]] == [key]
    # When it is aborted by key
    aborted = run_cli("abort", key, env=env)
    # Then it is gone from S3 and from `ls`; nothing was stored
    assert aborted.returncode == 0, aborted.stderr
    assert f"aborted {key}" in aborted.stdout
    assert leftovers(s3, cli_stack.bucket, "cli-abort") == ([], [])
    assert json.loads(run_cli("ls", "--unfinished", "--json", env=env).stdout)["uploads"] == []
    empty = run_cli("ls", "--unfinished", env=env)
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "no unfinished uploads\n")
    # And aborting it again says there is nothing to abort
    again = run_cli("abort", key, env=env)
    assert again.returncode == 9
    assert again.stderr.startswith("error: no unfinished upload")


# ------------------------------------------------------------------------------------------ import


def test_import_fetches_an_image_into_the_callers_prefix(cli_stack: LocalStack, s3: Any, source: SourceServer) -> None:
    done = run_cli("import", source.url("/cat.png"), "--json", env=cli_env(cli_stack, "cli-import"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["key"].startswith("uploads/cli-import/")
    assert result["contentType"] == "image/png"
    assert stored(s3, cli_stack.bucket, result["key"]) == image_bytes("PNG")


def test_an_import_the_api_refuses_exits_6_with_its_message(cli_stack: LocalStack) -> None:
    done = run_cli("import", "http://127.0.0.1:9/x.png", env=cli_env(cli_stack, "cli-import"))
    assert done.returncode == 6
    assert done.stderr.strip().splitlines() == [
        "error: the URL is not allowed: the port is not allowed (403 ForbiddenDestination)"
    ]


# ------------------------------------------------------------------------------------------ failures


def test_a_content_type_the_api_refuses_fails_before_any_byte_is_sent(
    cli_stack: LocalStack, s3: Any, tmp_path: Path
) -> None:
    path, _ = random_file(tmp_path, 1000, name="notes.txt")
    done = run_cli("put", "--no-wait", str(path), env=cli_env(cli_stack, "cli-refused"))
    assert done.returncode == 6
    assert done.stderr.startswith("error: content type 'text/plain' is not allowed")
    assert len(done.stderr.strip().splitlines()) == 1
    assert leftovers(s3, cli_stack.bucket, "cli-refused") == ([], [])


def test_a_bad_token_exits_4_with_a_hint(cli_stack: LocalStack, tmp_path: Path) -> None:
    env = cli_env(cli_stack, "cli-auth") | {"UPLOAD_API_TOKEN": "not-a-jwt"}
    done = run_cli("ls", env=env)
    assert done.returncode == 4
    assert "the API refused the token" in done.stderr and "make -s token" in done.stderr


def test_no_token_exits_3_and_says_how_to_get_one(cli_stack: LocalStack) -> None:
    env = cli_env(cli_stack, "cli-auth")
    del env["UPLOAD_API_TOKEN"]
    done = run_cli("ls", env=env)
    assert done.returncode == 3
    assert "no API token" in done.stderr and "make -s token SUB=local-user" in done.stderr


def test_an_unreachable_api_exits_5(cli_stack: LocalStack) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = cli_env(cli_stack, "cli-down") | {"UPLOAD_API_URL": f"http://127.0.0.1:{port}"}
    done = run_cli("ls", "--retries", "1", env=env)
    assert done.returncode == 5
    assert "cannot reach the API" in done.stderr and "connection refused" in done.stderr
