"""StreamingUpload against moto's S3: the source is read into one buffer while the other uploads.

These tests pin what the overlap must not break: the object is the source byte for byte at and
around part boundaries, one part is in flight at a time from two reused buffers, a part that fails
in the background stops the import with its own error, and a failure while a part is in flight
waits for that part before aborting, so nothing is left. No test measures time.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.import_support import png_of_size
from upload_core.errors import UploadError, UpstreamError
from upload_core.s3 import S3Gateway, UploadedPart
from upload_core.settings import MIB, Settings
from upload_core.streaming_upload import StreamingUpload

PART = 5 * MIB  # S3's minimum part size: the smallest parts moto accepts at completion
HEAD = 32  # what the importer sniffs before the upload starts, written with write()
KEY = "uploads/alice/0123456789abcdef0123456789abcdef/picture.png"
WAIT = 10.0  # seconds a coordinated test waits for the other thread before it fails


class Source:
    """readinto over bytes in pieces of uneven, seeded sizes (as a socket delivers them), with an
    optional hook called with the offset before each read."""

    def __init__(self, data: bytes, *, before_read: Callable[[int], None] | None = None) -> None:
        self.data = data
        self.offset = 0
        self._random = random.Random(len(data))
        self._before_read = before_read

    def readinto(self, view: memoryview) -> int:
        if self._before_read is not None:
            self._before_read(self.offset)
        count = min(len(view), len(self.data) - self.offset, self._random.randint(1, 700 * 1024))
        view[:count] = self.data[self.offset : self.offset + count]
        self.offset += count
        return count


class Recording(S3Gateway):
    """moto's S3 through the gateway's own client (the imports function's configuration),
    recording part uploads (how many at once, which buffers) and aborts."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.lock = threading.Lock()
        self.events: list[str] = []
        self.part_numbers: list[int] = []
        self.bodies: list[Any] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes | bytearray) -> UploadedPart:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.part_numbers.append(part_number)
            self.bodies.append(body)
        try:
            self.before_part(part_number)
            return super().upload_part(key, upload_id, part_number, body)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.events.append(f"part {part_number} done")

    def before_part(self, part_number: int) -> None:
        """Hook for a test: runs in the uploading thread before the part is sent."""

    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        with self.lock:
            self.events.append("abort")
        return super().abort_multipart_upload(key, upload_id)


def writer(gateway: S3Gateway) -> StreamingUpload:
    return StreamingUpload(gateway, KEY, content_type="image/png", metadata={"owner": "alice"}, part_size=PART)


def store(upload: StreamingUpload, source: Source) -> Any:
    """As the importer does: the sniffed head first, then the rest of the source, then finish."""
    upload.write(source.data[:HEAD])
    source.offset = HEAD
    upload.read_from(source.readinto)
    return upload.finish()


def nothing_left(s3_client: Any, settings: Settings) -> bool:
    objects = s3_client.list_objects_v2(Bucket=settings.bucket_name).get("Contents", [])
    pending = s3_client.list_multipart_uploads(Bucket=settings.bucket_name).get("Uploads", [])
    return objects == [] and pending == []


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.mark.parametrize(
    "size",
    [PART - 1, PART, PART + 1, 2 * PART, 3 * PART, 3 * PART + 7],
    ids=["under-one-part", "one-part", "one-byte-over", "two-parts-exactly", "three-parts-exactly", "three-and-a-bit"],
)
def test_the_object_is_the_source_byte_for_byte_around_part_boundaries(
    s3_client: Any, settings: Settings, size: int
) -> None:
    # Given a source of `size` bytes that never repeat, read in uneven pieces
    data = png_of_size(size)
    gateway = Recording(settings)
    upload = writer(gateway)
    # When it is stored
    stored = store(upload, Source(data))
    # Then the object holds exactly those bytes, in one PUT up to a part, else in ceil(size / part) parts
    body = s3_client.get_object(Bucket=settings.bucket_name, Key=KEY)["Body"].read()
    assert upload.size == size
    assert body == data
    parts = -(-size // PART)
    if parts == 1:
        assert "-" not in stored.etag and gateway.part_numbers == []
    else:
        assert stored.etag.endswith(f'-{parts}"')
        assert gateway.part_numbers == list(range(1, parts + 1))
    assert s3_client.list_multipart_uploads(Bucket=settings.bucket_name).get("Uploads", []) == []


def test_parts_go_one_at_a_time_from_two_buffers_reused_for_every_part(s3_client: Any, settings: Settings) -> None:
    # Given a source of six parts and a bit
    data = png_of_size(6 * PART + 1000)
    gateway = Recording(settings)
    # When it is stored
    store(writer(gateway), Source(data))
    # Then never two part uploads at once, and every part body is one of the same two buffers
    assert gateway.most_in_flight == 1
    assert {type(body) for body in gateway.bodies} == {bytearray}
    assert len({id(body) for body in gateway.bodies}) == 2
    assert s3_client.get_object(Bucket=settings.bucket_name, Key=KEY)["Body"].read() == data


class FailingPart(Recording):
    def __init__(self, settings: Settings, failing: int) -> None:
        super().__init__(settings)
        self.failing = failing
        self.error = UploadError("injected storage failure", code="StorageError")

    def before_part(self, part_number: int) -> None:
        if part_number == self.failing:
            raise self.error


@pytest.mark.parametrize("failing", [1, 2, 4], ids=["first-part", "middle-part", "last-part-in-finish"])
def test_a_part_that_fails_stops_the_import_with_its_error_and_abort_leaves_nothing(
    s3_client: Any, settings: Settings, failing: int
) -> None:
    # Given a four-part source and S3 failing one part (parts 1-3 upload in the background)
    data = png_of_size(3 * PART + MIB)
    gateway = FailingPart(settings, failing)
    upload = writer(gateway)
    source = Source(data)
    # When it is stored, and aborted on failure as the importer does
    with pytest.raises(UploadError) as failed:
        store(upload, source)
    upload.abort()
    # Then the error raised is the part's own, reading stopped within a part of the failure,
    # the multipart upload is aborted once, and there is neither object nor pending upload
    assert failed.value is gateway.error
    assert source.offset <= min((failing + 1) * PART, len(data))
    assert gateway.events.count("abort") == 1
    assert nothing_left(s3_client, settings)


def test_a_source_failing_while_a_part_is_in_flight_waits_for_it_then_aborts(
    s3_client: Any, settings: Settings
) -> None:
    # Given part 1 held in flight until the source has failed, and the source failing mid-part 2
    part_started, source_failed = threading.Event(), threading.Event()

    class HeldFirstPart(Recording):
        def before_part(self, part_number: int) -> None:
            part_started.set()
            assert source_failed.wait(WAIT), "the source never failed"

    def fail_in_part_two(offset: int) -> None:
        if offset >= PART + MIB:
            assert part_started.wait(WAIT), "part 1 never started"
            with gateway.lock:
                gateway.events.append("source failed")
            source_failed.set()
            raise UpstreamError("the remote server broke off", code="UpstreamProtocolError")

    gateway = HeldFirstPart(settings)
    upload = writer(gateway)
    # When the source fails while part 1 is being uploaded, and the importer aborts
    with pytest.raises(UpstreamError):
        store(upload, Source(png_of_size(3 * PART), before_read=fail_in_part_two))
    upload.abort()
    # Then the abort came only after part 1 finished, and S3 keeps no part and no upload
    assert gateway.events == ["source failed", "part 1 done", "abort"]
    assert nothing_left(s3_client, settings)
