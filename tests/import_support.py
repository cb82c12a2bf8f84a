"""Test doubles for remote imports, shared by unit and integration tests.

- `SourceServer`: a real threaded HTTP(S) server on 127.0.0.1 whose routes say exactly what goes
  on the wire (status, headers, framing, pacing), and which records every request it got.
- `Canary`: a TCP listener on 127.0.0.1 that counts connections; SSRF tests aim at it and
  require the count to stay 0, so a vetting bug shows up as a hit instead of a timeout.
- `StubResolver`: answers for chosen names (per call, for DNS rebinding); other names go to the
  real getaddrinfo with AI_NUMERICHOST, which turns odd address spellings (127.1, 0x7f.1,
  2130706433) into addresses exactly as production would, and never touches a network.
- `ConnectionSpy`: wraps the fetcher's connector and records every connection attempt.
- images made with Pillow, and a TLS certificate authority for HTTPS tests.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

from upload_core.safe_fetch import open_socket
from upload_core.ssrf import IPAddress

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ images


def image_bytes(fmt: str, size: tuple[int, int] = (16, 12)) -> bytes:
    """A small, valid image in `fmt` (PNG, JPEG, GIF, WEBP)."""
    picture = Image.new("RGB", size, (200, 40, 90))
    for x in range(size[0]):
        picture.putpixel((x, x % size[1]), (x * 10 % 256, 120, 30))
    out = io.BytesIO()
    picture.save(out, format=fmt)
    return out.getvalue()


def png_of_size(total: int) -> bytes:
    """`total` bytes that start like a PNG (the importer sniffs magic bytes; the validator judges the
    rest later). The filler never repeats (seeded random bytes, the same for the same size), so a
    misplaced, swapped or duplicated part changes the content whatever the part size."""
    head = image_bytes("PNG")
    return (head + random.Random(total).randbytes(max(total - len(head), 0)))[:total]


# ------------------------------------------------------------------------------------------ servers


@dataclass
class Reply:
    """One scripted response. `body` pieces are written one by one, `delay` seconds apart."""

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: Sequence[bytes] = ()
    chunked: bool = False
    content_length: int | None = None  # None: the real length (unless chunked or close_delimited)
    close_delimited: bool = False  # no Content-Length, no chunking: the body ends when the socket closes
    delay: float = 0.0
    head_delay: float = 0.0  # seconds between the bytes of the status line and headers (slow drip)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]


Route = Reply | Callable[[BaseHTTPRequestHandler], None]


class SourceServer:
    """A threaded HTTP (or HTTPS) server on 127.0.0.1 with scripted routes."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self.server_names: list[str | None] = []
        self.cut_off: list[str] = []  # paths whose response the client hung up on before it was complete
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    route = Reply(status=404, body=[b"no such file"])
                try:
                    if isinstance(route, Reply):
                        server._send(self, route)
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    server.cut_off.append(self.path)  # the client hung up, as several tests provoke
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if ssl_context is not None:
            ssl_context.sni_callback = self._record_sni
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _record_sni(self, _sock: Any, server_name: str | None, _context: Any) -> None:
        self.server_names.append(server_name)

    def __enter__(self) -> SourceServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    def hung_up_on(self, path: str, within: float = 5.0) -> bool:
        """Whether the client hung up on `path` before its response was complete. The server only
        notices at its next write, so this waits up to `within` seconds for it to notice."""
        give_up = time.monotonic() + within
        while path not in self.cut_off and time.monotonic() < give_up:
            time.sleep(0.02)
        return path in self.cut_off

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        lines = [f"HTTP/1.1 {reply.status} Scripted\r\n"]
        for name, value in reply.headers:
            lines.append(f"{name}: {value}\r\n")
        total = sum(len(piece) for piece in reply.body)
        if reply.chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        elif not reply.close_delimited:
            lines.append(f"Content-Length: {reply.content_length if reply.content_length is not None else total}\r\n")
        lines.append("Connection: close\r\n\r\n")
        head = "".join(lines).encode("latin-1")
        if reply.head_delay:
            for index in range(len(head)):
                handler.wfile.write(head[index : index + 1])
                handler.wfile.flush()
                time.sleep(reply.head_delay)
        else:
            handler.wfile.write(head)
        for piece in reply.body:
            if reply.delay:
                time.sleep(reply.delay)
            if reply.chunked:
                handler.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            else:
                handler.wfile.write(piece)
            handler.wfile.flush()
        if reply.chunked:
            handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status=status, headers=[("Location", location)], body=[b"moved"])


def drip(piece: bytes, interval: float, limit_seconds: float = 15.0) -> Reply:
    """A 200 with a Content-Length that sends one `piece` every `interval` seconds."""
    count = int(limit_seconds / interval)
    return Reply(body=[piece] * count, delay=interval, content_length=len(piece) * count)


class Canary:
    """A TCP listener on 127.0.0.1 that counts every connection it accepts (and closes it)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while self._running:
            try:
                peer, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            peer.close()

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._socket.close()


# ------------------------------------------------------------------------------------------ DNS


def answer(address: str, port: int) -> tuple[Any, ...]:
    """One getaddrinfo result for `address`."""
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


@dataclass
class StubResolver:
    """`names` maps a host to its addresses, or to a list of answers, one per successive lookup."""

    names: dict[str, Sequence[str] | list[Sequence[str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    delay: float = 0.0

    def __call__(self, host: str, port: int) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        if self.delay:
            time.sleep(self.delay)
        entry = self.names.get(host)
        if entry is None:
            # Numeric forms only: a real lookup of a name would need a network.
            return socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST
            )
        if entry and not isinstance(entry[0], str):
            answers = list(entry)
            addresses = answers[min(self.calls.count(host), len(answers)) - 1]
        else:
            addresses = entry
        return [answer(str(address), port) for address in addresses]


@dataclass
class ConnectionSpy:
    """Records each (address, port) the fetcher connects to; `refuse` lists addresses that get an
    immediate ECONNREFUSED instead (stand-ins for public hosts, which tests must not reach)."""

    refuse: Iterable[str] = ()
    attempts: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, address: IPAddress, port: int, timeout: float) -> socket.socket:
        self.attempts.append((str(address), port))
        if str(address) in set(self.refuse) or not address.is_loopback:
            raise ConnectionRefusedError(111, "refused by the test's connection spy")
        return open_socket(address, port, timeout)


# ------------------------------------------------------------------------------------------ TLS


@dataclass
class TlsMaterial:
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext


def tls_material(directory: Path, hostname: str) -> TlsMaterial:
    """A throwaway CA and a server certificate for `hostname` (not for 127.0.0.1)."""
    now = datetime.datetime.now(datetime.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("import tests CA"))
        .issuer_name(name("import tests CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(name(hostname))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file = directory / "ca.pem"
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    client_context = ssl.create_default_context(cafile=str(ca_file))
    return TlsMaterial(server_context=server_context, client_context=client_context)
