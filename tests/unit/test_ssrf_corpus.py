"""A corpus of SSRF attempts against the real fetcher; every one must be refused before any connection.

A canary TCP listener on 127.0.0.1 stands in for an internal service. Its port is in the allowed
port list, and most attempts resolve (literally, through odd spellings the real resolver decodes,
or through the stub resolver) to 127.0.0.1 on that port, so a vetting bug would connect to it.
The connection spy records every connection the fetcher opens: for a refused attempt there must
be none (redirect cases: only the allowed redirector).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.import_support import Canary, ConnectionSpy, Reply, SourceServer, StubResolver, image_bytes, redirect
from upload_core.errors import UploadError
from upload_core.safe_fetch import Deadline, FetchLimits, SafeFetcher, open_socket
from upload_core.ssrf import Allowlist, DestinationPolicy

PUBLIC = "93.184.215.14"  # stands in for a public host; the spy refuses connections to it

NAMES: dict[str, Any] = {
    "localhost": ["127.0.0.1", "::1"],
    "localtest.me": ["127.0.0.1"],
    "loopback.example": ["127.0.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "instance-data": ["169.254.169.254"],
    "metadata.tencentyun.com": ["169.254.0.23"],
    "ec2v6.example": ["fd00:ec2::254"],
    "internal.corp.example": ["10.0.0.5"],
    "router.example": ["192.168.0.1"],
    "cgnat.example": ["100.64.1.1"],
    "zero.example": ["0.0.0.0"],  # noqa: S104 - an answer under test, not a bind
    "ula.example": ["fd00::1"],
    "linklocal6.example": ["fe80::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "nat64.example": ["64:ff9b::7f00:1"],
    "sixtofour.example": ["2002:7f00:1::1"],
    "mixed.example": [PUBLIC, "127.0.0.1"],
    "mixed-reverse.example": ["127.0.0.1", PUBLIC],
    "mixed6.example": ["2606:4700::1111", "::1"],
    "public.example": [PUBLIC],
}

# (id, url, expected status). C is the canary's port, R the allowed redirector's port.
DIRECT: list[tuple[str, str, int]] = [
    # loopback and its spellings
    ("loopback", "http://127.0.0.1:C/", 403),
    ("loopback-other", "http://127.0.0.2:C/", 403),
    ("localhost", "http://localhost:C/", 403),
    ("localhost-upper-trailing-dot", "http://LOCALHOST.:C/", 403),
    ("public-name-to-loopback", "http://localtest.me:C/", 403),
    ("short-form", "http://127.1:C/", 403),
    ("decimal", "http://2130706433:C/", 403),
    ("hex", "http://0x7f000001:C/", 403),
    ("hex-dotted", "http://0x7f.0.0.1:C/", 403),
    ("hex-short", "http://0x7f.1:C/", 403),
    ("octal-dotted", "http://0177.0.0.1:C/", 403),
    ("octal-whole", "http://017700000001:C/", 403),
    ("trailing-dot", "http://127.0.0.1.:C/", 403),
    ("fullwidth-digits", "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:C/", 403),
    ("ideographic-dots", "http://127。0。0。1:C/", 403),
    ("unspecified", "http://0.0.0.0:C/", 403),
    ("zero", "http://0:C/", 403),
    ("zero-by-name", "http://zero.example:C/", 403),
    # IPv6 forms
    ("ipv6-loopback", "http://[::1]:C/", 403),
    ("ipv6-unspecified", "http://[::]:C/", 403),
    ("ipv4-mapped", "http://[::ffff:127.0.0.1]:C/", 403),
    ("ipv4-mapped-hex", "http://[::ffff:7f00:1]:C/", 403),
    ("ipv4-mapped-long", "http://[0:0:0:0:0:ffff:127.0.0.1]:C/", 403),
    ("ipv4-compatible", "http://[::127.0.0.1]:C/", 403),
    ("ipv4-translated", "http://[::ffff:0:127.0.0.1]:C/", 403),
    ("nat64", "http://[64:ff9b::127.0.0.1]:C/", 403),
    ("nat64-local", "http://[64:ff9b:1::7f00:1]:C/", 403),
    ("6to4", "http://[2002:7f00:1::]:C/", 403),
    ("teredo", "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:C/", 403),
    ("mapped-by-dns", "http://mapped.example:C/", 403),
    ("nat64-by-dns", "http://nat64.example:C/", 403),
    ("6to4-by-dns", "http://sixtofour.example:C/", 403),
    ("ula", "http://[fd00::1]:C/", 403),
    ("ula-by-dns", "http://ula.example:C/", 403),
    ("link-local-v6-by-dns", "http://linklocal6.example:C/", 403),
    # cloud metadata and its encodings
    ("metadata", "http://169.254.169.254/latest/meta-data/", 403),
    ("metadata-canary-port", "http://169.254.169.254:C/", 403),
    ("metadata-decimal", "http://2852039166/latest/meta-data/", 403),
    ("metadata-hex", "http://0xa9fea9fe/", 403),
    ("metadata-octal", "http://0251.0376.0251.0376/", 403),
    ("metadata-short", "http://169.254.43518/", 403),
    ("metadata-mapped", "http://[::ffff:169.254.169.254]/", 403),
    ("metadata-nat64", "http://[64:ff9b::a9fe:a9fe]/", 403),
    ("metadata-gcp-name", "http://metadata.google.internal/computeMetadata/v1/", 403),
    ("metadata-aws-name", "http://instance-data/latest/", 403),
    ("metadata-tencent-name", "http://metadata.tencentyun.com/", 403),
    ("metadata-ecs", "http://169.254.170.2/v2/credentials", 403),
    ("metadata-aws-ipv6", "http://[fd00:ec2::254]/latest/meta-data/", 403),
    ("metadata-aws-ipv6-by-dns", "http://ec2v6.example/", 403),
    ("metadata-alibaba", "http://100.100.100.200/latest/meta-data/", 403),
    ("metadata-oracle", "http://192.0.0.192/", 403),
    ("metadata-azure-wireserver", "http://168.63.129.16/", 403),
    # private, shared, special ranges
    ("private-10", "http://10.0.0.1:C/", 403),
    ("private-10-by-dns", "http://internal.corp.example/", 403),
    ("private-172", "http://172.16.0.1/", 403),
    ("private-192", "http://192.168.1.1/", 403),
    ("private-by-dns", "http://router.example/", 403),
    ("cgnat", "http://100.64.0.1/", 403),
    ("cgnat-by-dns", "http://cgnat.example/", 403),
    ("benchmarking", "http://198.18.0.1/", 403),
    ("documentation", "http://192.0.2.1/", 403),
    ("multicast", "http://224.0.0.1/", 403),
    ("broadcast", "http://255.255.255.255/", 403),
    ("reserved", "http://240.0.0.1/", 403),
    ("ipv6-link-local", "http://[fe80::1]/", 403),
    ("ipv6-multicast", "http://[ff02::1]/", 403),
    ("ipv6-documentation", "http://[2001:db8::1]/", 403),
    # names with several answers: every one must pass
    ("one-public-one-loopback", "http://mixed.example:C/", 403),
    ("loopback-first", "http://mixed-reverse.example:C/", 403),
    ("ipv6-public-and-loopback", "http://mixed6.example:C/", 403),
    # ports
    ("ssh-port", "http://public.example:22/", 403),
    ("redis-port", "http://public.example:6379/", 403),
    ("metadata-odd-port", "http://169.254.169.254:8080/", 403),
    # userinfo and parser tricks
    ("userinfo", "http://user:pass@127.0.0.1:C/", 400),
    ("userinfo-public-looking", "http://images.example.com@127.0.0.1:C/", 400),
    ("userinfo-empty", "http://@127.0.0.1:C/", 400),
    ("backslash-userinfo", "http://images.example.com\\@127.0.0.1:C/", 400),
    ("backslash-path", "http://127.0.0.1:C\\@images.example.com/", 400),
    ("fragment-at", "http://127.0.0.1:C#@images.example.com/", 403),
    ("query-at", "http://127.0.0.1:C?@images.example.com/", 403),
    ("double-port", "http://127.0.0.1:80:C/", 400),
    ("whitespace", "http://127.0.0.1:C /", 400),
    ("leading-space", " http://127.0.0.1:C/", 400),
    ("tab-in-host", "http://127.0.0.1\t.images.example.com:C/", 400),
    ("newline", "http://127.0.0.1:C/\r\nX-Injected: 1", 400),
    ("nul-byte", "http://127.0.0.1%00.images.example.com:C/", 400),
    ("percent-encoded-host", "http://%31%32%37.0.0.1:C/", 400),
    ("ipv6-zone", "http://[fe80::1%25lo]:C/", 400),
    ("upper-case-scheme", "HTTP://127.0.0.1:C/", 403),
    # other schemes
    ("file", "file:///etc/passwd", 400),
    ("file-host", "file://127.0.0.1/etc/passwd", 400),
    ("gopher", "gopher://127.0.0.1:C/_GET%20/", 400),
    ("ftp", "ftp://127.0.0.1:C/", 400),
    ("dict", "dict://127.0.0.1:C/info", 400),
    ("ldap", "ldap://127.0.0.1:C/", 400),
    ("jar", "jar:http://127.0.0.1:C/!/", 400),
    ("data", "data:image/png;base64,iVBORw0KGgo=", 400),
    ("scheme-relative", "//127.0.0.1:C/", 400),
    ("no-scheme", "127.0.0.1:C/", 400),
]

# (id, Location the allowed redirector sends, expected status)
REDIRECTS: list[tuple[str, str, int]] = [
    ("to-canary", "http://127.0.0.1:C/", 403),
    ("to-canary-by-name", "http://localhost:C/", 403),
    ("to-canary-decimal", "http://2130706433:C/", 403),
    ("to-canary-mapped", "http://[::ffff:127.0.0.1]:C/", 403),
    ("to-metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", 403),
    ("to-metadata-by-name", "http://metadata.google.internal/", 403),
    ("to-private", "http://10.0.0.1/", 403),
    ("to-scheme-relative-canary", "//127.0.0.1:C/", 403),
    ("to-file", "file:///etc/passwd", 403),
    ("to-gopher", "gopher://127.0.0.1:C/_x", 403),
    ("to-userinfo", "http://user@127.0.0.1:C/", 403),
    ("to-other-port-same-address", "http://127.0.0.1:C/image.png", 403),
    ("to-odd-port", "http://public.example:6379/", 403),
    ("to-malformed", "http://[::1/", 502),
]


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    with Canary() as running:
        yield running


@pytest.fixture(scope="module")
def redirector() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


def _fill(text: str, canary: Canary, redirector: SourceServer) -> str:
    return text.replace(":C", f":{canary.port}").replace(":R", f":{redirector.port}")


def _fetcher(
    canary: Canary, redirector: SourceServer, resolver: StubResolver, spy: ConnectionSpy, allowlist: str | None = None
) -> SafeFetcher:
    policy = DestinationPolicy(
        allowed_ports=frozenset({80, 443, canary.port}),
        allowlist=Allowlist.parse(allowlist if allowlist is not None else redirector.authority),
    )
    limits = FetchLimits(max_bytes=1024 * 1024, connect_timeout=2, read_timeout=2, max_redirects=3)
    return SafeFetcher(policy, limits, resolver=resolver, connector=spy)


def _attempt(fetcher: SafeFetcher, url: str) -> UploadError:
    with pytest.raises(UploadError) as refused, fetcher.open(url, Deadline(5)):
        pass
    return refused.value


def test_the_canary_counts_connections(canary: Canary) -> None:
    # Given the canary, when something connects to it, then it notices (so 0 below means 0)
    before = canary.connections
    open_socket(__import__("ipaddress").ip_address("127.0.0.1"), canary.port, 2).close()
    for _ in range(50):
        if canary.connections > before:
            break
        __import__("time").sleep(0.02)
    assert canary.connections == before + 1
    canary.connections = 0


@pytest.mark.parametrize(("url", "status"), [(url, status) for _, url, status in DIRECT], ids=[c[0] for c in DIRECT])
def test_direct_attempts_are_refused_without_connecting(
    canary: Canary, redirector: SourceServer, url: str, status: int
) -> None:
    # Given a fetcher whose allowed ports include the canary's
    spy = ConnectionSpy()
    fetcher = _fetcher(canary, redirector, StubResolver(names=dict(NAMES)), spy)
    # When an internal destination is requested
    error = _attempt(fetcher, _fill(url, canary, redirector))
    # Then it is refused with the expected status, before any connection, without naming addresses
    assert error.status == status, error.message
    assert spy.attempts == []
    assert canary.connections == 0
    for leaked in ("127.0.0.1", "169.254", "10.0.0", "::1", str(canary.port)):
        assert leaked not in error.message


@pytest.mark.parametrize(
    ("location", "status"), [(loc, status) for _, loc, status in REDIRECTS], ids=[c[0] for c in REDIRECTS]
)
def test_redirects_to_internal_destinations_are_refused(
    canary: Canary, redirector: SourceServer, location: str, status: int
) -> None:
    # Given an allowed server (127.0.0.1:R) that redirects to an internal destination
    path = f"/redirect/{len(redirector.routes)}"
    redirector.routes[path] = redirect(_fill(location, canary, redirector))
    spy = ConnectionSpy()
    fetcher = _fetcher(canary, redirector, StubResolver(names=dict(NAMES)), spy)
    # When its URL is fetched
    error = _attempt(fetcher, redirector.url(path))
    # Then the redirect is refused: the only connection made was to the allowed server
    assert error.status == status, error.message
    assert spy.attempts == [("127.0.0.1", redirector.port)]
    assert canary.connections == 0


def test_a_cidr_allowlist_does_not_extend_to_redirect_targets(canary: Canary, redirector: SourceServer) -> None:
    # Given an allowlist of the whole loopback range, with the canary's port among the allowed ports
    redirector.routes["/cidr-hop"] = redirect(f"http://127.0.0.1:{canary.port}/")
    spy = ConnectionSpy()
    fetcher = _fetcher(canary, redirector, StubResolver(), spy, allowlist=f"127.0.0.0/8,127.0.0.1:{redirector.port}")
    # When the allowed redirector sends the fetch to another loopback port
    error = _attempt(fetcher, redirector.url("/cidr-hop"))
    # Then the new origin is vetted without the allowlist, and refused
    assert error.status == 403
    assert spy.attempts == [("127.0.0.1", redirector.port)]
    assert canary.connections == 0


def test_a_redirect_within_the_allowed_origin_is_followed(canary: Canary, redirector: SourceServer) -> None:
    # The control for the redirect cases: the same server may redirect to itself.
    redirector.routes["/self-hop"] = redirect("/image.png")
    redirector.routes["/image.png"] = Reply(body=[image_bytes("PNG")])
    spy = ConnectionSpy()
    fetcher = _fetcher(canary, redirector, StubResolver(), spy)
    with fetcher.open(redirector.url("/self-hop"), Deadline(5)) as remote:
        assert remote.read(8) == b"\x89PNG\r\n\x1a\n"
    assert spy.attempts == [("127.0.0.1", redirector.port)] * 2


def test_dns_rebinding_cannot_move_the_connection(canary: Canary, redirector: SourceServer) -> None:
    # Given a name that answers a public address first and the canary's address on any later lookup
    resolver = StubResolver(names={"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    spy = ConnectionSpy(refuse=[PUBLIC])
    fetcher = _fetcher(canary, redirector, resolver, spy)
    # When it is fetched
    error = _attempt(fetcher, f"http://rebind.example:{canary.port}/")
    # Then it was looked up once, and the only connection went to the vetted public address
    assert resolver.calls == ["rebind.example"]
    assert spy.attempts == [(PUBLIC, canary.port)]
    assert error.status == 502  # the stand-in public host refuses the connection
    assert canary.connections == 0


def test_dns_rebinding_between_redirect_hops_is_vetted_again(canary: Canary, redirector: SourceServer) -> None:
    # Given an allowed first hop that redirects to a name whose answer changes between lookups
    resolver = StubResolver(names={"rebind-hop.example": [[PUBLIC], ["127.0.0.1"]]})
    redirector.routes["/rebind-hop"] = redirect(f"http://rebind-hop.example:{canary.port}/")
    spy = ConnectionSpy(refuse=[PUBLIC])
    fetcher = _fetcher(canary, redirector, resolver, spy)
    # When fetched, the redirect target is resolved once, on its hop, and connected to as vetted
    error = _attempt(fetcher, redirector.url("/rebind-hop"))
    assert resolver.calls == ["rebind-hop.example"]
    assert spy.attempts == [("127.0.0.1", redirector.port), (PUBLIC, canary.port)]
    assert error.status == 502
    assert canary.connections == 0


def test_proxy_environment_variables_are_ignored(
    canary: Canary, redirector: SourceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given proxy variables that point at the canary
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{canary.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    redirector.routes["/via-proxy.png"] = Reply(body=[image_bytes("PNG")])
    fetcher = _fetcher(canary, redirector, StubResolver(), ConnectionSpy())
    # When an allowed URL is fetched, it goes straight to the server
    with fetcher.open(redirector.url("/via-proxy.png"), Deadline(5)) as remote:
        assert remote.read(4) == b"\x89PNG"
    assert canary.connections == 0


def test_the_corpus_is_large_enough_and_the_canary_stayed_silent(canary: Canary) -> None:
    assert len(DIRECT) + len(REDIRECTS) >= 50
    assert canary.connections == 0
