"""The import service against a real HTTP(S) server on 127.0.0.1 and moto's S3.

127.0.0.1:<port> is opened through IMPORT_ALLOWED_DESTINATIONS, as the test-only setting intends.
Parts are 5 MiB (S3's minimum), so a 12 MiB file takes three parts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.import_support import (
    ConnectionSpy,
    Reply,
    SourceServer,
    StubResolver,
    drip,
    image_bytes,
    png_of_size,
    redirect,
    tls_material,
)
from upload_core.errors import UploadError
from upload_core.import_settings import ImportSettings
from upload_core.observability import metrics
from upload_core.registry import PlanState, registry_for
from upload_core.remote_import import RemoteImportService, fetcher_for
from upload_core.s3 import S3Gateway
from upload_core.safe_fetch import Deadline, RemoteFile, SafeFetcher
from upload_core.settings import MIB, Settings

PART = 5 * MIB
OWNER = "alice"


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


class Importer:
    """Builds the service the way the handler does, with the test's server allowed."""

    def __init__(self, s3_client: Any, server: SourceServer) -> None:
        self.s3_client = s3_client
        self.server = server
        self.settings = Settings.from_env()

    def service(
        self, resolver: Any = None, ssl_context: Any = None, connector: Any = None, **env: str
    ) -> RemoteImportService:
        import_settings = ImportSettings.from_env(
            {"IMPORT_ALLOWED_DESTINATIONS": self.server.authority, "IMPORT_PART_SIZE": str(PART), **env}
        )
        overrides: dict[str, Any] = {"ssl_context": ssl_context}
        if resolver is not None:
            overrides["resolver"] = resolver
        if connector is not None:
            overrides["connector"] = connector
        return RemoteImportService(
            self.settings,
            import_settings,
            s3=S3Gateway(self.settings, client=self.s3_client),
            fetcher=fetcher_for(import_settings, **overrides),
        )

    def run(self, path: str, *, filename: str | None = None, remaining_ms: int | None = None, **env: str) -> Any:
        return self.service(**env).import_url(
            OWNER, self.server.url(path), filename=filename, remaining_ms=remaining_ms
        )

    def refused(self, path: str, **env: str) -> UploadError:
        with pytest.raises(UploadError) as refused:
            self.run(path, **env)
        return refused.value

    # --- what is in the bucket
    def objects(self) -> list[str]:
        listing = self.s3_client.list_objects_v2(Bucket=self.settings.bucket_name, Prefix="uploads/")
        return [item["Key"] for item in listing.get("Contents", [])]

    def pending_uploads(self) -> list[str]:
        listing = self.s3_client.list_multipart_uploads(Bucket=self.settings.bucket_name, Prefix="uploads/")
        return [item["Key"] for item in listing.get("Uploads", [])]

    def body(self, key: str) -> bytes:
        return bytes(self.s3_client.get_object(Bucket=self.settings.bucket_name, Key=key)["Body"].read())

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.s3_client.head_object(Bucket=self.settings.bucket_name, Key=key))

    def tags(self, key: str) -> dict[str, str]:
        tag_set = self.s3_client.get_object_tagging(Bucket=self.settings.bucket_name, Key=key)["TagSet"]
        return {tag["Key"]: tag["Value"] for tag in tag_set}

    def nothing_left(self) -> bool:
        return self.objects() == [] and self.pending_uploads() == []


@pytest.fixture
def importer(s3_client: Any, source: SourceServer) -> Importer:
    return Importer(s3_client, source)


# ------------------------------------------------------------------------------------------ success


@pytest.mark.parametrize(
    ("fmt", "mime", "extension"),
    [
        ("PNG", "image/png", "png"),
        ("JPEG", "image/jpeg", "jpg"),
        ("GIF", "image/gif", "gif"),
        ("WEBP", "image/webp", "webp"),
    ],
)
def test_an_image_is_stored_under_the_callers_prefix_with_its_detected_type(
    importer: Importer, source: SourceServer, fmt: str, mime: str, extension: str
) -> None:
    # Given an image served with a misleading Content-Type
    data = image_bytes(fmt)
    source.routes["/photos/picture"] = Reply(body=[data], headers=[("Content-Type", "text/plain")])
    # When it is imported (with a query string that carries a secret)
    imported = importer.run("/photos/picture?token=secret-token")
    # Then the object holds the same bytes, typed by its magic bytes, pending validation
    assert imported.key.startswith(f"uploads/{OWNER}/")
    assert imported.key.endswith(f"/picture.{extension}")
    assert (imported.size, imported.content_type) == (len(data), mime)
    assert importer.body(imported.key) == data
    head = importer.head(imported.key)
    assert head["ContentType"] == mime
    assert head["ETag"] == imported.etag
    assert head["Metadata"] == {
        "owner": OWNER,
        "original-filename": "picture",
        "source-url": f"http://127.0.0.1:{source.port}/photos/picture",
    }
    assert importer.tags(imported.key) == {"upload-status": "pending"}
    assert "secret-token" not in json.dumps(head["Metadata"])


def test_the_request_asks_for_identity_encoding_and_closes(importer: Importer, source: SourceServer) -> None:
    source.routes["/a.png"] = Reply(body=[image_bytes("PNG")])
    importer.run("/a.png")
    sent = source.requests[-1].headers
    assert sent["accept-encoding"] == "identity"
    assert sent["connection"] == "close"
    assert sent["host"] == f"127.0.0.1:{source.port}"


def test_a_given_filename_is_kept_and_the_key_gets_the_real_extension(importer: Importer, source: SourceServer) -> None:
    # Given a PNG the caller calls "holiday.jpg"
    source.routes["/x"] = Reply(body=[image_bytes("PNG")])
    # When imported under that name
    imported = importer.run("/x", filename="holiday.jpg")
    # Then the metadata keeps the name, and the key says what the file is
    assert imported.key.endswith("/holiday.jpg.png")
    assert importer.head(imported.key)["Metadata"]["original-filename"] == "holiday.jpg"


def test_a_chunked_response_without_content_length_is_imported(importer: Importer, source: SourceServer) -> None:
    data = image_bytes("JPEG", (64, 48))
    source.routes["/chunked.jpg"] = Reply(body=[data[i : i + 100] for i in range(0, len(data), 100)], chunked=True)
    imported = importer.run("/chunked.jpg")
    assert importer.body(imported.key) == data


def test_a_body_delimited_by_closing_the_connection_is_imported(importer: Importer, source: SourceServer) -> None:
    data = image_bytes("GIF")
    source.routes["/old-server.gif"] = Reply(body=[data[:10], data[10:]], close_delimited=True)
    imported = importer.run("/old-server.gif")
    assert importer.body(imported.key) == data


def test_a_large_chunked_file_is_streamed_in_parts(importer: Importer, source: SourceServer) -> None:
    # Given a 12 MiB file with no Content-Length, in pieces of 1 MiB
    data = png_of_size(12 * MIB)
    source.routes["/big.png"] = Reply(body=[data[i : i + MIB] for i in range(0, len(data), MIB)], chunked=True)
    # When imported with 5 MiB parts
    imported = importer.run("/big.png")
    # Then it is one multipart object of three parts, byte for byte the source, nothing pending
    assert imported.etag.endswith('-3"')
    assert imported.size == len(data)
    assert importer.body(imported.key) == data
    assert importer.head(imported.key)["ContentType"] == "image/png"
    assert importer.tags(imported.key) == {"upload-status": "pending"}
    assert importer.pending_uploads() == []


def test_a_file_of_exactly_one_part_is_a_single_put(importer: Importer, source: SourceServer) -> None:
    data = png_of_size(PART)
    source.routes["/one-part.png"] = Reply(body=[data])
    imported = importer.run("/one-part.png")
    assert "-" not in imported.etag  # a multipart ETag ends in -<parts>
    assert importer.body(imported.key) == data


def test_a_redirect_chain_of_three_is_followed(importer: Importer, source: SourceServer) -> None:
    data = image_bytes("WEBP")
    source.routes["/r1"] = redirect("/r2", 301)
    source.routes["/r2"] = redirect(f"http://127.0.0.1:{source.port}/r3", 307)
    source.routes["/r3"] = redirect("final/cat.webp?v=2", 308)
    source.routes["/final/cat.webp"] = Reply(body=[data])
    imported = importer.run("/r1")
    assert source.paths() == ["/r1", "/r2", "/r3", "/final/cat.webp?v=2"]
    assert imported.key.endswith("/cat.webp")  # named after the final URL
    assert importer.body(imported.key) == data
    assert importer.head(imported.key)["Metadata"]["source-url"].endswith("/r1")  # the URL the caller gave


def test_a_host_name_is_pinned_to_the_vetted_address_and_kept_for_the_host_header(
    importer: Importer, source: SourceServer
) -> None:
    # Given a name the (stub) resolver maps to the allowed address, and a spy on connections
    resolver = StubResolver(names={"images.example": ["127.0.0.1"]})
    spy = ConnectionSpy()
    source.routes["/cat.png"] = Reply(body=[image_bytes("PNG")])
    service = importer.service(resolver=resolver, connector=spy)
    # When imported by name
    imported = service.import_url(OWNER, f"http://images.example:{source.port}/cat.png")
    # Then the connection went to the vetted address while the request named the host
    assert spy.attempts == [("127.0.0.1", source.port)]
    assert resolver.calls == ["images.example"]
    assert source.requests[-1].headers["host"] == f"images.example:{source.port}"
    assert imported.size > 0


def test_https_connects_to_the_vetted_address_with_the_name_for_sni_and_the_certificate(
    s3_client: Any, tmp_path: Path
) -> None:
    # Given an HTTPS server whose certificate names images.example (and not 127.0.0.1)
    material = tls_material(tmp_path, "images.example")
    with SourceServer(ssl_context=material.server_context) as tls_source:
        tls_source.routes["/secure.png"] = Reply(body=[image_bytes("PNG")])
        importer = Importer(s3_client, tls_source)
        resolver = StubResolver(names={"images.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
        service = importer.service(resolver=resolver, ssl_context=material.client_context)
        # When imported through the name
        imported = service.import_url(OWNER, f"https://images.example:{tls_source.port}/secure.png")
        # Then TLS saw the name (SNI), the certificate matched it, and the Host header carried it
        assert tls_source.server_names == ["images.example"]
        assert tls_source.requests[-1].headers["host"] == f"images.example:{tls_source.port}"
        assert importer.head(imported.key)["ContentType"] == "image/png"
        # And a name the certificate does not cover fails verification, though the address is the same
        with pytest.raises(UploadError) as refused:
            service.import_url(OWNER, f"https://other.example:{tls_source.port}/secure.png")
        assert (refused.value.status, refused.value.code) == (502, "UpstreamTls")


# ------------------------------------------------------------------------------------------ limits


def test_a_file_larger_than_the_cap_is_stopped_and_leaves_nothing(importer: Importer, source: SourceServer) -> None:
    # Given a 7 MiB chunked file (no Content-Length to warn) and a 6 MiB cap with 5 MiB parts
    data = png_of_size(7 * MIB)
    source.routes["/huge.png"] = Reply(body=[data[i : i + MIB] for i in range(0, len(data), MIB)], chunked=True)
    # When imported: the first part is uploaded before the cap is reached
    error = importer.refused("/huge.png", IMPORT_MAX_BYTES=str(6 * MIB))
    # Then 413, no object and no incomplete multipart upload
    assert (error.status, error.code) == (413, "ImportTooLarge")
    assert importer.nothing_left()


@pytest.mark.parametrize("framing", ["chunked", "close_delimited"])
@pytest.mark.parametrize("reader", ["read", "readinto"])
def test_reading_stops_one_byte_past_the_cap(source: SourceServer, reader: str, framing: str) -> None:
    # Given a 2 MiB body with no length declared up front and a fetcher capped at 1 MiB
    source.routes["/stream"] = Reply(body=[b"\x89PNG" + b"x" * (2 * MIB - 4)], **{framing: True})
    fetcher = fetcher_for(
        ImportSettings.from_env({"IMPORT_ALLOWED_DESTINATIONS": source.authority, "IMPORT_MAX_BYTES": str(MIB)})
    )
    # When the body is read to the end, in pieces or straight into a buffer
    with fetcher.open(source.url("/stream"), Deadline(10)) as remote, pytest.raises(UploadError) as refused:
        drain(remote, reader)
    # Then it stopped with 413 having read exactly one byte more than the cap
    assert refused.value.status == 413
    assert remote.bytes_read == MIB + 1


def drain(remote: Any, reader: str = "read") -> None:
    if reader == "read":
        while remote.read(64 * 1024):
            pass
        return
    buffer = bytearray(3 * MIB)
    with memoryview(buffer) as view:
        filled = 0
        while count := remote.readinto(view[filled : filled + 700 * 1024]):
            filled += count


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(
    importer: Importer, source: SourceServer
) -> None:
    # Given a server that declares 10 MiB and would take far longer than the deadline to send it
    source.routes["/declared.png"] = Reply(body=[image_bytes("PNG")], content_length=10 * MIB, delay=30)
    # When imported with a 1 MiB cap and a 2 s deadline
    error = importer.refused("/declared.png", IMPORT_MAX_BYTES=str(MIB), IMPORT_TIMEOUT_SECONDS="2")
    # Then the declaration alone answers 413 (reading the body would have hit the deadline: 504)
    assert error.status == 413
    assert importer.nothing_left()


def test_content_length_shorter_than_the_body_is_honoured(importer: Importer, source: SourceServer) -> None:
    # Given a server that declares 100 bytes and sends more: the framing ends the body at 100
    data = image_bytes("PNG", (64, 64))
    source.routes["/short.png"] = Reply(body=[data], content_length=100)
    imported = importer.run("/short.png")
    assert imported.size == 100
    assert importer.body(imported.key) == data[:100]


def test_content_length_longer_than_the_body_is_a_502_and_leaves_nothing(
    importer: Importer, source: SourceServer
) -> None:
    data = image_bytes("PNG", (64, 64))
    source.routes["/truncated.png"] = Reply(body=[data], content_length=len(data) + 5000)
    error = importer.refused("/truncated.png")
    assert (error.status, error.code) == (502, "UpstreamProtocolError")
    assert importer.nothing_left()


def test_a_truncated_multipart_import_is_aborted(importer: Importer, source: SourceServer) -> None:
    # Given a server that declares 12 MiB and breaks off after 7 MiB (one part already uploaded)
    data = png_of_size(7 * MIB)
    source.routes["/broken.png"] = Reply(
        body=[data[i : i + MIB] for i in range(0, len(data), MIB)], content_length=12 * MIB
    )
    error = importer.refused("/broken.png")
    assert error.status == 502
    assert importer.nothing_left()


def test_a_slow_drip_body_hits_the_total_deadline(importer: Importer, source: SourceServer) -> None:
    # Given a server that sends a PNG signature every 0.2 s for 15 s (every single read succeeds)
    source.routes["/drip.png"] = drip(b"\x89PNG\r\n\x1a\n", 0.2)
    # When imported with a 1 s deadline and a 5 s read timeout
    error = importer.refused("/drip.png", IMPORT_TIMEOUT_SECONDS="1", IMPORT_READ_TIMEOUT="5")
    # Then 504, the importer hung up on the server mid-body, and nothing is stored
    assert (error.status, error.code) == (504, "ImportTimeout")
    assert source.hung_up_on("/drip.png")
    assert importer.nothing_left()


def test_a_slow_drip_in_the_headers_hits_the_total_deadline(importer: Importer, source: SourceServer) -> None:
    # Given a server that sends its status line and ~500 bytes of headers one byte every 0.05 s:
    # no single read ever waits long, so only the total deadline can stop it
    source.routes["/slow-head.png"] = Reply(
        body=[image_bytes("PNG")], headers=[("X-Padding", "p" * 400)], head_delay=0.05
    )
    error = importer.refused("/slow-head.png", IMPORT_TIMEOUT_SECONDS="1", IMPORT_READ_TIMEOUT="5")
    # Then 504, and the importer hung up while the headers were still arriving
    assert error.status == 504
    assert source.hung_up_on("/slow-head.png")
    assert importer.nothing_left()


def test_a_deadline_passing_during_a_multipart_import_aborts_it(importer: Importer, source: SourceServer) -> None:
    # Given 6 MiB fast (one part goes to S3), then a drip
    data = png_of_size(6 * MIB)
    pieces = [data[i : i + MIB] for i in range(0, len(data), MIB)] + [b"x"] * 100
    source.routes["/stall.png"] = Reply(body=pieces, chunked=True, delay=0.05)
    error = importer.refused("/stall.png", IMPORT_TIMEOUT_SECONDS="2")
    assert error.status == 504
    assert importer.nothing_left()


def test_the_lambdas_remaining_time_caps_the_deadline(importer: Importer, source: SourceServer) -> None:
    # Given a drip and a Lambda with 3.5 s left (3 s are kept back for cleanup)
    source.routes["/drip.png"] = drip(b"\x89PNG\r\n\x1a\n", 0.2)
    with pytest.raises(UploadError) as refused:
        importer.run("/drip.png", remaining_ms=3500)
    assert refused.value.status == 504


def test_too_little_remaining_time_refuses_before_connecting(importer: Importer, source: SourceServer) -> None:
    source.routes["/a.png"] = Reply(body=[image_bytes("PNG")])
    with pytest.raises(UploadError) as refused:
        importer.run("/a.png", remaining_ms=2000)
    assert refused.value.status == 504
    assert source.requests == []


def test_a_slow_name_server_cannot_stretch_the_deadline(importer: Importer, source: SourceServer) -> None:
    resolver = StubResolver(names={"slow-dns.example": ["127.0.0.1"]}, delay=3)
    service = importer.service(resolver=resolver, IMPORT_TIMEOUT_SECONDS="0.5")
    with pytest.raises(UploadError) as refused:
        service.import_url(OWNER, f"http://slow-dns.example:{source.port}/a.png")
    assert refused.value.status == 504


def test_four_redirects_are_one_too_many(importer: Importer, source: SourceServer) -> None:
    for hop in range(1, 5):
        source.routes[f"/hop{hop}"] = redirect(f"/hop{hop + 1}")
    source.routes["/hop5"] = Reply(body=[image_bytes("PNG")])
    error = importer.refused("/hop1")
    assert (error.status, error.code) == (502, "TooManyRedirects")
    assert source.paths() == ["/hop1", "/hop2", "/hop3", "/hop4"]
    assert importer.nothing_left()


# ------------------------------------------------------------------------------------------ content


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"just some text, not an image at all", "not an image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "active content"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "active content"),
        (b"", "not an image"),
        (b"\x89PN", "not an image"),
    ],
)
def test_content_that_is_not_an_allowed_image_is_415(
    importer: Importer, source: SourceServer, body: bytes, detail: str
) -> None:
    source.routes["/fake.png"] = Reply(body=[body] if body else [], headers=[("Content-Type", "image/png")])
    error = importer.refused("/fake.png")
    assert (error.status, error.code) == (415, "UnsupportedContentType")
    assert detail in error.message
    assert importer.nothing_left()


@pytest.mark.parametrize("status", [404, 403, 500, 503, 204, 206, 300, 304])
def test_an_upstream_error_status_is_502_without_its_body(
    importer: Importer, source: SourceServer, status: int
) -> None:
    source.routes["/err"] = Reply(status=status, body=[b"SECRET internal stack trace at 10.0.0.7"])
    error = importer.refused("/err")
    assert (error.status, error.code) == (502, "UpstreamStatus")
    assert str(status) in error.message
    assert "SECRET" not in error.message
    assert "10.0.0.7" not in error.message


def test_a_redirect_without_location_is_a_502(importer: Importer, source: SourceServer) -> None:
    source.routes["/nowhere"] = Reply(status=302, body=[b"moved"])
    assert importer.refused("/nowhere").status == 502


@pytest.mark.parametrize(
    "headers",
    [[("Content-Encoding", "gzip")], [("Content-Encoding", "identity, br")], [("Transfer-Encoding", "gzip")]],
)
def test_an_encoded_body_is_refused(importer: Importer, source: SourceServer, headers: list[tuple[str, str]]) -> None:
    source.routes["/enc.png"] = Reply(body=[image_bytes("PNG")], headers=headers)
    error = importer.refused("/enc.png")
    assert (error.status, error.code) == (502, "UnsupportedEncoding")


def test_an_identity_content_encoding_is_accepted(importer: Importer, source: SourceServer) -> None:
    source.routes["/id.png"] = Reply(body=[image_bytes("PNG")], headers=[("Content-Encoding", "identity")])
    assert importer.run("/id.png").content_type == "image/png"


def test_a_refused_connection_is_a_502(importer: Importer, source: SourceServer) -> None:
    # Given the allowed address and port with nothing listening any more
    service = importer.service()
    url = source.url("/gone.png")
    source.__exit__()
    with pytest.raises(UploadError) as refused:
        service.import_url(OWNER, url)
    assert (refused.value.status, refused.value.code) == (502, "UpstreamUnreachable")


def test_a_caller_without_identity_is_refused_before_fetching(importer: Importer, source: SourceServer) -> None:
    with pytest.raises(UploadError) as refused:
        importer.service().import_url("", source.url("/a.png"))
    assert refused.value.status == 400
    assert source.requests == []


# ------------------------------------------------------------------------------------------ cleanup


class FailingPart(S3Gateway):
    """moto's S3, except that one part upload fails."""

    def __init__(self, settings: Settings, client: Any, failing: int) -> None:
        super().__init__(settings, client=client)
        self.failing = failing
        self.aborted: list[str] = []

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes | bytearray) -> Any:
        if part_number == self.failing:
            raise UploadError("injected storage failure", code="StorageError")
        return super().upload_part(key, upload_id, part_number, body)

    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        self.aborted.append(upload_id)
        return super().abort_multipart_upload(key, upload_id)


@pytest.mark.parametrize("failing", [1, 2, 3], ids=["first-part", "second-part", "last-part"])
def test_a_storage_failure_mid_import_aborts_the_multipart_upload(
    importer: Importer, source: SourceServer, s3_client: Any, failing: int
) -> None:
    # Given a three-part file and S3 failing one part (the first two upload while the next is read)
    data = png_of_size(12 * MIB)
    source.routes["/big.png"] = Reply(body=[data])
    import_settings = ImportSettings.from_env(
        {"IMPORT_ALLOWED_DESTINATIONS": source.authority, "IMPORT_PART_SIZE": str(PART)}
    )
    gateway = FailingPart(importer.settings, s3_client, failing)
    service = RemoteImportService(importer.settings, import_settings, s3=gateway)
    # When imported
    with pytest.raises(UploadError) as failed:
        service.import_url(OWNER, source.url("/big.png"))
    # Then the part's own error reaches the caller, the upload is aborted once, nothing is left,
    # and the reservation is given back
    assert (failed.value.code, str(failed.value)) == ("StorageError", "injected storage failure")
    assert len(gateway.aborted) == 1
    assert importer.nothing_left()
    usage = registry_for(importer.settings).usage(OWNER)
    assert (usage.reserved_bytes, usage.uploads_in_flight) == (0, 0)


class HeldFirstPart(S3Gateway):
    """moto's S3; the first part stays in flight until the source has failed."""

    def __init__(self, settings: Settings, client: Any) -> None:
        super().__init__(settings, client=client)
        self.part_started = threading.Event()
        self.source_failed = threading.Event()
        self.events: list[str] = []

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes | bytearray) -> Any:
        if part_number == 1:
            self.part_started.set()
            assert self.source_failed.wait(10), "the source never failed"
        uploaded = super().upload_part(key, upload_id, part_number, body)
        self.events.append(f"part {part_number} done")
        return uploaded

    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        self.events.append("abort")
        return super().abort_multipart_upload(key, upload_id)


class FailureSignallingFetcher:
    """The real fetcher, telling the gateway when reading the body failed (once part 1 is in flight)."""

    def __init__(self, fetcher: SafeFetcher, gateway: HeldFirstPart) -> None:
        self._fetcher = fetcher
        self._gateway = gateway

    @contextmanager
    def open(self, url: str, deadline: Deadline) -> Iterator[Any]:
        with self._fetcher.open(url, deadline) as remote:
            yield self._Signalling(remote, self._gateway)

    class _Signalling:
        def __init__(self, remote: RemoteFile, gateway: HeldFirstPart) -> None:
            self._remote = remote
            self._gateway = gateway
            self.url = remote.url
            self.read = remote.read

        def readinto(self, view: memoryview) -> int:
            try:
                return self._remote.readinto(view)
            except UploadError:
                assert self._gateway.part_started.wait(10), "part 1 never started"
                self._gateway.events.append("source failed")
                self._gateway.source_failed.set()
                raise


def test_a_source_breaking_off_while_a_part_is_in_flight_waits_for_it_then_aborts(
    importer: Importer, source: SourceServer, s3_client: Any
) -> None:
    # Given a server that declares 12 MiB and breaks off after 7 MiB, while part 1 (5 MiB) is
    # held in flight until the importer has seen the failure
    data = png_of_size(7 * MIB)
    source.routes["/broken.png"] = Reply(
        body=[data[i : i + MIB] for i in range(0, len(data), MIB)], content_length=12 * MIB
    )
    import_settings = ImportSettings.from_env(
        {"IMPORT_ALLOWED_DESTINATIONS": source.authority, "IMPORT_PART_SIZE": str(PART)}
    )
    gateway = HeldFirstPart(importer.settings, s3_client)
    fetcher = FailureSignallingFetcher(fetcher_for(import_settings), gateway)
    service = RemoteImportService(importer.settings, import_settings, s3=gateway, fetcher=fetcher)  # type: ignore[arg-type]
    # When imported
    with pytest.raises(UploadError) as failed:
        service.import_url(OWNER, source.url("/broken.png"))
    # Then 502, the abort waited for part 1, and S3 keeps no part, no upload and no object
    assert (failed.value.status, failed.value.code) == (502, "UpstreamProtocolError")
    assert gateway.events == ["source failed", "part 1 done", "abort"]
    assert importer.nothing_left()


# ------------------------------------------------------------------------------------------ observability


def test_metrics_count_bytes_and_duration(importer: Importer, source: SourceServer) -> None:
    metrics.clear_metrics()
    data = image_bytes("PNG")
    source.routes["/m.png"] = Reply(body=[data])
    importer.run("/m.png")
    recorded = metrics.metric_set
    assert recorded["BytesImported"]["Value"] == [float(len(data))]
    assert recorded["ImportsCompleted"]["Value"] == [1.0]
    assert recorded["ImportDuration"]["Unit"] == "Milliseconds"
    metrics.clear_metrics()


def test_a_blocked_import_counts_its_reason_without_dimensions(importer: Importer) -> None:
    metrics.clear_metrics()
    with pytest.raises(UploadError):
        importer.service().import_url(OWNER, "http://169.254.169.254/latest/meta-data/")
    recorded = metrics.metric_set
    assert recorded["ImportsBlocked"]["Value"] == [1.0]
    assert recorded["ImportsBlockedMetadata"]["Value"] == [1.0]
    assert "ImportDuration" in recorded
    assert metrics.provider.dimension_set == {} or "reason" not in metrics.provider.dimension_set
    metrics.clear_metrics()


def test_logs_show_the_url_without_its_query(
    importer: Importer, source: SourceServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Given URLs whose query strings carry secrets
    source.routes["/log.png"] = Reply(body=[image_bytes("PNG")])
    # When one is imported and one is blocked
    importer.run("/log.png?X-Amz-Signature=topsecret")
    with pytest.raises(UploadError):
        importer.service().import_url(OWNER, "http://127.0.0.1:9/x?token=topsecret")
    # Then the structured logs name the URLs without their queries
    logged = {record.getMessage(): vars(record) for record in caplog.records}
    assert logged["import completed"]["source_url"] == f"http://127.0.0.1:{source.port}/log.png"
    assert logged["import blocked"]["source_url"] == "http://127.0.0.1:9/x"
    assert logged["import blocked"]["reason"] == "port"
    assert "topsecret" not in repr([vars(record) for record in caplog.records])


# ------------------------------------------------------------------------------------------ idempotency


def _versions(importer: Importer) -> list[str]:
    listing = importer.s3_client.list_object_versions(Bucket=importer.settings.bucket_name, Prefix="uploads/")
    return [item["Key"] for item in listing.get("Versions", [])]


@pytest.mark.parametrize("size", [1024, 12 * MIB], ids=["single-put", "multipart"])
def test_a_retry_with_the_same_idempotency_key_returns_the_first_object(
    importer: Importer, source: SourceServer, size: int
) -> None:
    # Given an import that completed while its client had already given up (gateway timeout)
    source.routes["/retry.png"] = Reply(body=[png_of_size(size)])
    service = importer.service()
    first = service.import_url(OWNER, source.url("/retry.png"), idempotency_key="import-42")
    # When the client retries with the same Idempotency-Key
    again = service.import_url(OWNER, source.url("/retry.png"), idempotency_key="import-42")
    # Then it gets the same object back and the bucket holds one version of it, nothing pending
    assert (again.key, again.size, again.etag, again.content_type) == (
        first.key,
        first.size,
        first.etag,
        first.content_type,
    )
    assert _versions(importer) == [first.key]
    assert importer.pending_uploads() == []


def test_idempotency_keys_are_per_caller_and_per_key(importer: Importer, source: SourceServer) -> None:
    # Given one image imported under two idempotency keys, and by another caller under the first
    source.routes["/a.png"] = Reply(body=[image_bytes("PNG")])
    service = importer.service()
    one = service.import_url(OWNER, source.url("/a.png"), idempotency_key="k1")
    two = service.import_url(OWNER, source.url("/a.png"), idempotency_key="k2")
    other = service.import_url("bob", source.url("/a.png"), idempotency_key="k1")
    # Then each is its own object under its caller's prefix: nobody lands on another's key
    assert len({one.key, two.key, other.key}) == 3
    assert other.key.startswith("uploads/bob/")
    assert sorted(_versions(importer)) == sorted([one.key, two.key, other.key])


def test_without_an_idempotency_key_every_request_stores_a_new_object(importer: Importer, source: SourceServer) -> None:
    source.routes["/n.png"] = Reply(body=[image_bytes("PNG")])
    first, second = importer.run("/n.png"), importer.run("/n.png")
    assert first.key != second.key


@pytest.mark.parametrize("bad", ["", "has space", "x" * 256, "caf\u00e9", "tab\tkey"])
def test_a_malformed_idempotency_key_is_refused_before_fetching(
    importer: Importer, source: SourceServer, bad: str
) -> None:
    source.routes["/never.png"] = Reply(body=[image_bytes("PNG")])
    with pytest.raises(UploadError) as refused:
        importer.service().import_url(OWNER, source.url("/never.png"), idempotency_key=bad)
    assert (int(refused.value.status), refused.value.code) == (400, "InvalidIdempotencyKey")
    assert source.requests == []
    assert importer.nothing_left()


class ConcurrentAttempt(S3Gateway):
    """An attempt with the same Idempotency-Key stores the object just before this one finishes."""

    def __init__(self, settings: Settings, client: Any, body: bytes) -> None:
        super().__init__(settings, client=client)
        self.body = body
        self.aborted: list[str] = []

    def _store_first(self, key: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=self.body, ContentType="image/png")

    def put_object(self, key: str, body: bytes, **kwargs: Any) -> Any:
        self._store_first(key)
        return super().put_object(key, body, **kwargs)

    def complete_multipart_upload(self, key: str, upload_id: str, parts: Any, **kwargs: Any) -> Any:
        self._store_first(key)
        return super().complete_multipart_upload(key, upload_id, parts, **kwargs)

    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        self.aborted.append(upload_id)
        return super().abort_multipart_upload(key, upload_id)


@pytest.mark.parametrize("size", [1024, 12 * MIB], ids=["single-put", "multipart"])
def test_losing_the_race_to_a_concurrent_retry_returns_the_winners_object(
    importer: Importer, source: SourceServer, s3_client: Any, size: int
) -> None:
    # Given two attempts with the same Idempotency-Key, the other one storing first
    data = png_of_size(size)
    source.routes["/race.png"] = Reply(body=[data])
    import_settings = ImportSettings.from_env(
        {"IMPORT_ALLOWED_DESTINATIONS": source.authority, "IMPORT_PART_SIZE": str(PART)}
    )
    gateway = ConcurrentAttempt(importer.settings, s3_client, body=b"winner")
    service = RemoteImportService(importer.settings, import_settings, s3=gateway)
    # When this one finishes (If-None-Match refuses its write)
    imported = service.import_url(OWNER, source.url("/race.png"), idempotency_key="race")
    # Then it answers with the winner's object, leaves no second version and no pending upload
    assert imported.size == len(b"winner")
    assert importer.body(imported.key) == b"winner"
    assert _versions(importer) == [imported.key]
    assert importer.pending_uploads() == []
    assert len(gateway.aborted) == (1 if size > PART else 0)


# ------------------------------------------------------------------------------------------ quota


def test_an_import_reserves_its_limit_then_counts_what_it_stored(importer: Importer, source: SourceServer) -> None:
    registry = registry_for(importer.settings)
    data = image_bytes("PNG")
    source.routes["/a.png"] = Reply(body=[data])
    imported = importer.run("/a.png")
    usage = registry.usage(OWNER)
    assert (usage.stored_bytes, usage.reserved_bytes, usage.uploads_in_flight) == (len(data), 0, 0)
    plan = registry.plan(imported.key)
    assert plan is not None and plan.state is PlanState.COMPLETED


def test_a_failed_import_gives_its_reservation_back(importer: Importer, source: SourceServer) -> None:
    registry = registry_for(importer.settings)
    source.routes["/big.png"] = Reply(body=[image_bytes("PNG") + bytes(3 * MIB)])
    assert importer.refused("/big.png", IMPORT_MAX_BYTES=str(2 * MIB)).code == "ImportTooLarge"
    usage = registry.usage(OWNER)
    assert (usage.stored_bytes, usage.reserved_bytes, usage.uploads_in_flight) == (0, 0, 0)


def test_an_import_that_cannot_fit_the_quota_is_refused_before_storing(
    importer: Importer, source: SourceServer
) -> None:
    registry = registry_for(importer.settings)
    registry.set_limits(OWNER, quota_bytes=MIB, max_uploads=None)  # less than IMPORT_MAX_BYTES
    source.routes["/a.png"] = Reply(body=[image_bytes("PNG")])
    refused = importer.refused("/a.png", IMPORT_MAX_BYTES=str(2 * MIB))
    assert (int(refused.status), refused.code) == (413, "QuotaExceeded")
    assert importer.nothing_left()
