"""The commands the CLI prints for its user to run next: they must work as printed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from client.errors import KeptUpload
from client.hints import Invocation, interpreter, kept_message

KEPT = KeptUpload("u-1", "uploads/me/x/my photo.png", "my photo.png", 3, 8, "my photo.png.upload-state.json")


def test_the_interpreter_is_named_as_typed_from_the_current_directory(tmp_path: Path) -> None:
    # Under the current directory: relative (".venv/bin/python" from the repository root)
    bin_dir = os.path.dirname(sys.executable)
    above = os.path.dirname(os.path.dirname(bin_dir))
    assert interpreter(above) == os.path.relpath(sys.executable, above)
    assert not interpreter(above).startswith(os.pardir)
    # In the current directory itself: "./python", never a bare name the shell would look up in PATH
    assert interpreter(bin_dir) == os.path.join(os.curdir, os.path.basename(sys.executable))
    # Elsewhere: the absolute path
    assert interpreter(str(tmp_path)) == sys.executable


def test_a_direct_run_prints_the_interpreter_and_quotes_paths() -> None:
    message = kept_message(KEPT, Invocation(python=".venv/bin/python"))
    assert "kept the upload of uploads/me/x/my photo.png (upload u-1): 3 of 8 parts confirmed in S3" in message
    assert "resume with:  .venv/bin/python -m client resume 'my photo.png'" in message
    assert "or abort it:  .venv/bin/python -m client abort 'my photo.png'" in message
    assert "lifecycle rule" in message


def test_a_make_run_prints_make_with_its_user() -> None:
    message = kept_message(KEPT, Invocation(python="x", make="make upload SUB=alice"))
    assert "resume with:  make upload SUB=alice CMD=resume FILE='my photo.png'" in message


def test_without_a_state_file_the_upload_id_is_named() -> None:
    kept = KeptUpload("u-1", "k", "photo.png", 0, 8, None)
    message = kept_message(kept, Invocation(python="py", make="make upload"))
    assert "make upload CMD=resume FILE=photo.png ARGS='--upload-id u-1'" in message
    assert "make upload CMD=abort FILE=u-1" in message


def test_command_line_options_are_repeated_the_token_only_by_name() -> None:
    invocation = Invocation(python="py", api_url="https://api.example.com", token_flag=True)
    assert invocation.command("ls") == "py -m client ls --api-url https://api.example.com --token TOKEN"
