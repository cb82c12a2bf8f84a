"""The resume state file: round trip, atomic and throttled writes, damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.errors import LocalFileError
from client.state import StateFile, UploadState, load_state, save_state, state_path_for


def sample(**changes: object) -> UploadState:
    fields: dict[str, object] = {
        "upload_id": "id/with+odd=chars",
        "key": "uploads/me/0123/photo.jpg",
        "api_url": "http://127.0.0.1:3000",
        "size": 23,
        "mtime_ns": 1_700_000_000_123_456_789,
        "part_size": 5,
        "checksum": "sha256",
        "content_type": "image/jpeg",
        "etags": {1: '"abc"', 10: '"def"'},
    }
    fields.update(changes)
    return UploadState(**fields)  # type: ignore[arg-type]


def test_the_state_file_sits_next_to_the_source() -> None:
    assert state_path_for(Path("/data/photo.jpg")) == Path("/data/photo.jpg.upload-state.json")


def test_a_state_survives_a_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg.upload-state.json"
    save_state(path, sample())
    assert load_state(path) == sample()
    assert json.loads(path.read_text())["version"] == 1
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_no_state_file_is_no_state(tmp_path: Path) -> None:
    assert load_state(tmp_path / "none.upload-state.json") is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"version": 2}',
        json.dumps({**sample().to_json(), "size": "23"}),
        json.dumps({**sample().to_json(), "checksum": "sha512"}),
        json.dumps({**sample().to_json(), "uploadId": ""}),
    ],
)
def test_a_damaged_state_file_is_an_error_that_says_what_to_do(tmp_path: Path, text: str) -> None:
    path = tmp_path / "photo.jpg.upload-state.json"
    path.write_text(text)
    with pytest.raises(LocalFileError, match=r"not a valid upload state file.*--upload-id"):
        load_state(path)


def test_part_etags_are_written_at_most_once_per_interval(tmp_path: Path) -> None:
    # Given a state file with a fake clock and a 1-second write interval
    now = [100.0]
    path = tmp_path / "s.upload-state.json"
    state_file = StateFile(path, sample(etags={}), min_interval=1.0, clock=lambda: now[0])
    state_file.flush()
    # When parts complete within the interval / Then the file is not rewritten
    now[0] = 100.5
    state_file.record_part(1, '"a"')
    assert load_state(path).etags == {}  # type: ignore[union-attr]
    # When the interval has passed / Then the next part writes everything recorded so far
    now[0] = 101.2
    state_file.record_part(2, '"b"')
    assert load_state(path).etags == {1: '"a"', 2: '"b"'}  # type: ignore[union-attr]
    # And a final flush writes the rest
    state_file.record_part(3, '"c"')
    state_file.flush()
    assert load_state(path).etags == {1: '"a"', 2: '"b"', 3: '"c"'}  # type: ignore[union-attr]
    state_file.remove()
    assert not path.exists()


def test_an_unwritable_directory_only_warns(tmp_path: Path) -> None:
    warnings: list[str] = []
    state_file = StateFile(tmp_path / "missing-dir" / "s.upload-state.json", sample(), warn=warnings.append)
    state_file.flush()
    state_file.record_part(1, '"a"')
    assert len(warnings) == 1 and "resume will have to find the upload" in warnings[0]
