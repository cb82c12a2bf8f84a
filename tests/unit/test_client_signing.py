"""Signing ahead: parts hashed ahead of the workers and signed in batches, within ceil(parts / 100)
sign calls, with the CRC32 default that S3 checks per part."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from client_fakes import API, TOKEN, FakeBackend

from client import LocalFileError, RetryPolicy, Uploader
from client.signing import PARTS_PER_SIGN_CALL, batch_sizes

PART = 5


def upload(backend: FakeBackend, path: Path, **options: object) -> None:
    settings: dict[str, object] = {
        "part_size": PART,
        "session": backend.session(),
        "sleep": lambda _seconds: None,
        "retry_policy": RetryPolicy(retries=3, random=lambda: 0.5),
        "state_files": False,
    }
    settings.update(options)
    Uploader(API, TOKEN, **settings).upload(path)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [1, 7, 8, 99, 100, 101, 128, 200, 201, 1000, 1280, 10_000])
def test_batches_cover_every_part_in_at_most_one_call_per_hundred(count: int) -> None:
    sizes = batch_sizes(count, first=8)
    assert sum(sizes) == count
    assert len(sizes) <= math.ceil(count / PARTS_PER_SIGN_CALL)
    assert max(sizes) <= 1000  # the API signs up to 1000 parts per call
    if count > PARTS_PER_SIGN_CALL:
        assert sizes[0] == 8  # sending starts after a small first batch, not after hashing 100 parts


@pytest.mark.parametrize("parts", [3, 101, 250])
def test_an_upload_makes_at_most_ceil_parts_over_100_plus_2_api_calls(tmp_path: Path, parts: int) -> None:
    # Given a file of `parts` parts and the default checksum (CRC32, signed into each URL)
    backend = FakeBackend()
    path = tmp_path / "photo.png"
    data = bytes(index % 251 for index in range(parts * PART - 2))
    path.write_bytes(data)
    # When it is uploaded
    upload(backend, path, concurrency=4)
    # Then: create, ceil(parts / 100) sign calls, complete; each part PUT once with its CRC32
    assert len(backend.api_log) <= math.ceil(parts / 100) + 2
    assert [method for method, _ in backend.api_log].count("POST") == len(backend.api_log)
    assert sorted(backend.signed) == list(range(1, parts + 1))
    assert backend.objects[next(iter(backend.objects))] == data
    assert len(backend.put_log) == parts


def test_a_corrupted_part_is_refused_by_its_crc32_and_sent_again(tmp_path: Path) -> None:
    # Given a part whose first PUT arrives damaged (the fake S3 checks the signed CRC32 as S3 does)
    backend = FakeBackend()
    path = tmp_path / "photo.png"
    data = bytes(range(23))
    path.write_bytes(data)
    refused: list[int] = []
    original = backend._s3_put

    def damage_once(request, query, number, body, fault):  # type: ignore[no-untyped-def]
        if number == 2 and not refused:
            refused.append(number)
            body = b"!" + body[1:]
        return original(request, query, number, body, fault)

    backend._s3_put = damage_once  # type: ignore[method-assign]
    # When it is uploaded / Then S3 refused the damaged body, the part went again and the object is intact
    upload(backend, path, concurrency=2)
    assert refused == [2]
    assert [number for number, _ in backend.put_log].count(2) == 2
    assert backend.objects[next(iter(backend.objects))] == data


def test_a_file_changed_after_its_parts_were_hashed_fails(tmp_path: Path) -> None:
    # Given a file edited after its parts were hashed and signed, before part 1 is sent
    backend = FakeBackend()
    path = tmp_path / "photo.png"
    path.write_bytes(bytes(range(23)))

    def edit(number: int) -> None:
        if number == 1:
            with path.open("r+b") as handle:
                handle.write(b"changed")

    backend.on_put = edit
    # When it is uploaded / Then S3 refuses the bytes (their CRC32 is not the signed one) and the
    # upload fails as a changed file, aborted
    with pytest.raises(LocalFileError, match="changed"):
        upload(backend, path, concurrency=1)
    assert backend.uploads == {}
