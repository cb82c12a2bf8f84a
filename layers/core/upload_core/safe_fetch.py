"""An HTTP GET that can only reach vetted addresses, within a byte cap and a total deadline.

Built on urllib3's connection classes (already loaded by botocore in every Lambda container, so
it costs nothing at cold start; docs/imports.md compares it with requests-hardened):
- the host name is resolved once (through an injectable resolver) and every address vetted by
  `ssrf.DestinationPolicy`; the connection then goes to a vetted address while the name stays
  the Host header, the TLS SNI name and the name the certificate must match, so a DNS answer
  that changes between the check and the connection cannot redirect it;
- no proxy is ever used: urllib3 reads no proxy environment variables and no ProxyManager exists;
- redirects are followed by hand (at most `max_redirects`), each hop parsed and vetted again;
  the allowlist applies only to the origin the caller named;
- `Accept-Encoding: identity`, and a body in any other Content-Encoding is refused;
- the byte cap is counted on the bytes read (reading stops at cap + 1), a declared
  Content-Length above it is refused before the body is read;
- connect and read timeouts are capped by what remains of a total deadline, and a watchdog
  shuts the socket down when the deadline passes, so a server that drips bytes (into the
  headers, a chunk-size line or the body) cannot stretch it.
"""

from __future__ import annotations

import http.client
import math
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import urljoin

from urllib3._version import __version__ as urllib3_version
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.response import BaseHTTPResponse

from upload_core.errors import InvalidRequest, TooLarge, UploadError, UpstreamError, UpstreamTimeout
from upload_core.ssrf import (
    MAX_URL_CHARS,
    BlockReason,
    DestinationBlocked,
    DestinationPolicy,
    IPAddress,
    Resolver,
    Target,
    parse_url,
    resolve,
    system_resolver,
)

if int(urllib3_version.split(".", 1)[0]) < 2:  # pragma: no cover - a packaging mistake
    raise ImportError(f"upload_core.safe_fetch needs urllib3 2.x, found {urllib3_version}")

USER_AGENT = "s3-direct-upload-import/1.0"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# (address, port, timeout) -> a connected socket. Injectable so tests can watch every connection.
Connector = Callable[[IPAddress, int, float], socket.socket]


def open_socket(address: IPAddress, port: int, timeout: float) -> socket.socket:
    """Connect to exactly this address: no name lookup happens here."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


def deadline_exceeded() -> UpstreamTimeout:
    return UpstreamTimeout("the remote server did not deliver the file in time", code="ImportTimeout")


class Deadline:
    """A point in time (monotonic) after which the fetch gives up."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return self._end - self._clock()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self) -> None:
        if self.expired:
            raise deadline_exceeded()

    def timeout(self, limit: float) -> float:
        """A socket timeout: `limit`, but never past the deadline (raises once it has passed)."""
        remaining = self.remaining()
        if remaining <= 0:
            raise deadline_exceeded()
        return min(limit, remaining)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_bytes: int
    connect_timeout: float
    read_timeout: float
    max_redirects: int


class _Watchdog:
    """Shuts the current connection down when the deadline passes.

    Socket timeouts bound each recv, not a whole read: urllib3 and http.client call recv again
    and again to finish a header line or a chunk-size line, so a server sending one byte per
    second would never time out. Shutting the socket down from a timer wakes any blocked recv
    at once. It holds a duplicate of the socket's descriptor because TLS wrapping detaches the
    original socket object; shutdown acts on the connection, whichever descriptor names it.
    """

    def __init__(self, deadline: Deadline) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.fired = False
        self._timer = threading.Timer(max(deadline.remaining(), 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._release()
            if self.fired:
                raise deadline_exceeded()
            self._socket = sock.dup()

    def stop(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._release()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._socket is not None:
                # Already closed by the peer or by us: nothing left to interrupt.
                with suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)

    def _release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


@dataclass(slots=True)
class _Pin:
    """How a connection reaches its host: only these vetted addresses, in order."""

    addresses: tuple[IPAddress, ...]
    connector: Connector
    deadline: Deadline
    connect_timeout: float
    watchdog: _Watchdog

    def connect(self, port: int) -> socket.socket:
        failure: OSError | None = None
        for address in self.addresses:  # every one was vetted; try the next if one is unreachable
            sock = None
            try:
                sock = self.connector(address, port, self.deadline.timeout(self.connect_timeout))
                self.watchdog.watch(sock)
                return sock
            except OSError as error:
                failure = error
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        raise failure or ConnectionError("no address to connect to")


class _PinnedHTTPConnection(HTTPConnection):
    pin: _Pin

    def _new_conn(self) -> socket.socket:
        return self.pin.connect(self.port)


class _PinnedHTTPSConnection(HTTPSConnection):
    """server_hostname (SNI) and the certificate check use `host`, the name; only the socket is pinned."""

    pin: _Pin

    def _new_conn(self) -> socket.socket:
        return self.pin.connect(self.port)


class RemoteFile:
    """The body of a successful response, read in bounded pieces."""

    def __init__(
        self,
        target: Target,
        response: BaseHTTPResponse,
        *,
        connection: HTTPConnection,
        deadline: Deadline,
        limits: FetchLimits,
        watchdog: _Watchdog,
        redirects: int,
    ) -> None:
        self.url = target
        self.redirects = redirects
        self.declared_length = _declared_length(response)
        self.bytes_read = 0
        self._response = response
        raw = _raw_body(response)
        self._raw_readinto = response.readinto if raw is None else raw.readinto
        self._connection = connection
        self._deadline = deadline
        self._limits = limits
        self._watchdog = watchdog

    def read(self, size: int) -> bytes:
        """At most `size` bytes (b"" at the end) from at most one read of the socket."""
        allowance = self._allowance()
        try:
            self._arm_timeout()
            data = self._response.read1(min(size, allowance), decode_content=False)
        except UploadError:
            raise
        except (Urllib3Error, http.client.HTTPException, OSError, ValueError) as error:
            raise transport_error(error, self._deadline) from None
        self._count(len(data))
        return data

    def readinto(self, buffer: memoryview) -> int:
        """Reads up to len(buffer) bytes straight into `buffer` (0 at the end), under the same cap,
        timeouts and deadline as `read`. Unlike `read` it may take several reads of the socket to
        fill the buffer (the watchdog still ends it at the deadline)."""
        view = buffer[: self._allowance()]
        try:
            self._arm_timeout()
            count = self._raw_readinto(view)
        except UploadError:
            raise
        except (Urllib3Error, http.client.HTTPException, OSError, ValueError) as error:
            raise transport_error(error, self._deadline) from None
        self._count(count)
        if count == 0 and len(view) and self.declared_length is not None and self.bytes_read < self.declared_length:
            # http.client ends a short Content-Length body quietly (urllib3 raises IncompleteRead).
            raise UpstreamError(
                "the remote server broke off or sent a malformed response", code="UpstreamProtocolError"
            )
        return count

    def _allowance(self) -> int:
        allowance = self._limits.max_bytes + 1 - self.bytes_read  # one byte past the cap proves it is exceeded
        if allowance <= 0:
            raise _too_large(self._limits.max_bytes)
        return allowance

    def _arm_timeout(self) -> None:
        sock = self._connection.sock
        timeout = self._deadline.timeout(self._limits.read_timeout)
        if sock is not None:
            sock.settimeout(timeout)

    def _count(self, count: int) -> None:
        # A socket the watchdog shut down reads as a clean end of file: never take it for one.
        if self._watchdog.fired or self._deadline.expired:
            raise deadline_exceeded()
        self.bytes_read += count
        if self.bytes_read > self._limits.max_bytes:
            raise _too_large(self._limits.max_bytes)


class SafeFetcher:
    def __init__(
        self,
        policy: DestinationPolicy,
        limits: FetchLimits,
        *,
        resolver: Resolver = system_resolver,
        connector: Connector = open_socket,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._resolver = resolver
        self._connector = connector
        self._ssl_context = ssl_context

    @contextmanager
    def open(self, url: str, deadline: Deadline) -> Iterator[RemoteFile]:
        """GET `url` and yield its body once a 200 response with an acceptable framing arrived.

        Raises InvalidRequest (400) for a malformed URL, DestinationBlocked (403), TooLarge
        (413) for a declared length over the cap, UpstreamError (502) and UpstreamTimeout (504).
        """
        first = parse_url(url)
        watchdog = _Watchdog(deadline)
        connection: HTTPConnection | None = None
        response: BaseHTTPResponse | None = None
        try:
            connection, response, target, redirects = self._follow(first, deadline, watchdog)
            remote = RemoteFile(
                target,
                response,
                connection=connection,
                deadline=deadline,
                limits=self._limits,
                watchdog=watchdog,
                redirects=redirects,
            )
            if remote.declared_length is not None and remote.declared_length > self._limits.max_bytes:
                raise _too_large(self._limits.max_bytes)
            yield remote
        finally:
            watchdog.stop()
            if connection is not None and response is not None:
                _close(connection, response)

    def _follow(
        self, first: Target, deadline: Deadline, watchdog: _Watchdog
    ) -> tuple[HTTPConnection, BaseHTTPResponse, Target, int]:
        target = first
        for hop in range(self._limits.max_redirects + 1):
            connection, response = self._request(target, deadline, watchdog, first=first, redirect=hop > 0)
            location = response.headers.get("location") if response.status in REDIRECT_STATUSES else None
            if not location:
                try:
                    _check_response(response)
                except UploadError:
                    _close(connection, response)
                    raise
                return connection, response, target, hop
            _close(connection, response)
            target = _redirect_target(target, location)
        raise UpstreamError(
            f"the remote server redirected more than {self._limits.max_redirects} times", code="TooManyRedirects"
        )

    def _request(
        self, target: Target, deadline: Deadline, watchdog: _Watchdog, *, first: Target, redirect: bool
    ) -> tuple[HTTPConnection, BaseHTTPResponse]:
        # The allowlist belongs to the origin the caller named; a redirect elsewhere never uses it.
        use_allowlist = target.origin == first.origin
        self._policy.check_port(target, use_allowlist=use_allowlist, redirect=redirect)
        addresses = self._policy.vet(
            target, _resolve_in_time(target, self._resolver, deadline), use_allowlist=use_allowlist, redirect=redirect
        )
        pin = _Pin(addresses, self._connector, deadline, self._limits.connect_timeout, watchdog)
        connection = self._connection(target, pin, deadline)
        try:
            connection.request(
                "GET",
                target.request_target,
                headers={
                    "Host": target.host_header,
                    "User-Agent": USER_AGENT,
                    "Accept": "image/*",
                    "Accept-Encoding": "identity",
                    "Connection": "close",
                },
                preload_content=False,
                decode_content=False,
                enforce_content_length=True,
            )
            connection.timeout = deadline.timeout(self._limits.read_timeout)
            response = connection.getresponse()
        except UploadError:
            connection.close()
            raise
        except (Urllib3Error, http.client.HTTPException, OSError, ValueError) as error:
            connection.close()
            raise transport_error(error, deadline) from None
        return connection, response

    def _connection(self, target: Target, pin: _Pin, deadline: Deadline) -> HTTPConnection:
        timeout = deadline.timeout(self._limits.connect_timeout)
        if target.scheme == "https":
            secure = _PinnedHTTPSConnection(
                target.host, target.port, timeout=timeout, ssl_context=self._ssl_context or _default_ssl_context()
            )
            secure.pin = pin
            return secure
        plain = _PinnedHTTPConnection(target.host, target.port, timeout=timeout)
        plain.pin = pin
        return plain


def _raw_body(response: BaseHTTPResponse) -> http.client.HTTPResponse | None:
    """The http.client response urllib3 wraps, which reads a body straight into a caller's buffer
    (urllib3's own readinto reads into a new bytes object and copies that). urllib3 2.x keeps it
    in `_fp`; None if a version does not."""
    raw = getattr(response, "_fp", None)
    return raw if isinstance(raw, http.client.HTTPResponse) else None


def _close(connection: HTTPConnection, response: BaseHTTPResponse) -> None:
    """Close both: the response holds its own reference to the socket, which stays open (and the
    server keeps sending) until every reference is closed."""
    response.close()
    connection.close()


def _resolve_in_time(target: Target, resolver: Resolver, deadline: Deadline) -> tuple[IPAddress, ...]:
    """Resolve in a helper thread so a slow name server cannot stretch the deadline either."""
    if target.literal is not None:
        return (target.literal,)
    results: queue.Queue[tuple[tuple[IPAddress, ...] | None, Exception | None]] = queue.Queue(maxsize=1)

    def lookup() -> None:
        try:
            results.put((resolve(target, resolver), None))
        except Exception as error:  # handed to the caller's thread, which raises it
            results.put((None, error))

    threading.Thread(target=lookup, name="import-resolve", daemon=True).start()
    try:
        addresses, error = results.get(timeout=deadline.timeout(math.inf))
    except queue.Empty:
        raise deadline_exceeded() from None
    if error is not None:
        raise error
    assert addresses is not None
    return addresses


_ssl_context_cache: list[ssl.SSLContext] = []


def _default_ssl_context() -> ssl.SSLContext:
    """The system's trust store, certificate and host name checks on, TLS 1.2 or newer."""
    if not _ssl_context_cache:
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _ssl_context_cache.append(context)
    return _ssl_context_cache[0]


def _redirect_target(current: Target, location: str) -> Target:
    if len(location) > MAX_URL_CHARS:
        raise UpstreamError("the remote server redirected to an invalid URL", code="BadRedirect")
    try:
        return parse_url(urljoin(current.url, location))
    except InvalidRequest as error:
        if error.code == "UnsupportedScheme":
            raise DestinationBlocked(BlockReason.SCHEME, redirect=True) from None
        if error.code == "CredentialsInUrl":
            raise DestinationBlocked(BlockReason.CREDENTIALS, redirect=True) from None
        raise UpstreamError("the remote server redirected to an invalid URL", code="BadRedirect") from None
    except ValueError:
        raise UpstreamError("the remote server redirected to an invalid URL", code="BadRedirect") from None


def _tokens(response: BaseHTTPResponse, name: str) -> list[str]:
    values: Sequence[str] = response.headers.getlist(name)
    return [token.strip().lower() for value in values for token in value.split(",") if token.strip()]


def _check_response(response: BaseHTTPResponse) -> None:
    if response.status != 200:
        # The status is the upstream's only words we repeat: never its body.
        raise UpstreamError(f"the remote server answered HTTP {response.status}", code="UpstreamStatus")
    if any(coding != "identity" for coding in _tokens(response, "content-encoding")):
        raise UpstreamError(
            "the remote server sent a compressed or encoded body; only identity is accepted",
            code="UnsupportedEncoding",
        )
    if _tokens(response, "transfer-encoding") not in ([], ["chunked"]):
        raise UpstreamError("the remote server used an unsupported transfer encoding", code="UnsupportedEncoding")
    _declared_length(response)


def _declared_length(response: BaseHTTPResponse) -> int | None:
    """Content-Length as declared (None when chunked or absent); it may lie, and is only used to
    refuse early: the cap is enforced on what is read."""
    if _tokens(response, "transfer-encoding"):
        return None
    values = set(_tokens(response, "content-length"))
    if not values:
        return None
    if len(values) > 1 or not next(iter(values)).isdigit():
        raise UpstreamError("the remote server sent an invalid Content-Length", code="UpstreamProtocolError")
    return int(next(iter(values)))


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the remote file is larger than the import limit of {limit} bytes", code="ImportTooLarge")


def transport_error(error: BaseException, deadline: Deadline) -> UploadError:
    """A network failure as a domain error, worded without addresses or upstream text."""
    if deadline.expired:
        return deadline_exceeded()
    if isinstance(error, TimeoutError | socket.timeout | Urllib3TimeoutError):
        return UpstreamTimeout("the remote server did not respond in time", code="UpstreamTimeout")
    if isinstance(error, ssl.SSLError | ssl.CertificateError | Urllib3SSLError):
        return UpstreamError("a secure connection to the remote server could not be verified", code="UpstreamTls")
    if isinstance(error, OSError) and not isinstance(
        error, ConnectionResetError | ConnectionAbortedError | BrokenPipeError
    ):
        return UpstreamError("the remote server could not be reached", code="UpstreamUnreachable")
    return UpstreamError("the remote server broke off or sent a malformed response", code="UpstreamProtocolError")
