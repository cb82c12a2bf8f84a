"""Where a server-side fetch may go: strict URL parsing, address vetting and the explicit allowlist.

The rules (docs/imports.md, "Remote import", explains why each exists):
- only http and https, no userinfo, no whitespace, control characters or backslashes;
- the port must be in the allowed list (80 and 443 by default);
- the host name is resolved once, and EVERY address it resolves to must be global unicast:
  odd spellings of an address (decimal, octal, hex, short forms) are caught here, after the
  resolver has turned them into an address, never by matching strings;
- IPv4 embedded in IPv6 (mapped, compatible, translated, 6to4, Teredo, NAT64) is refused
  whatever the embedded address is: nothing legitimate serves images from such an address;
- the allowlist (IMPORT_ALLOWED_DESTINATIONS) exempts chosen addresses from the global-unicast
  rule, for tests and private deployments. It never exempts a cloud metadata address, and it
  applies only to the origin (scheme, host, port) of the URL the caller gave: a redirect to any
  other origin is vetted as if the allowlist were empty.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

from upload_core.errors import Forbidden, InvalidRequest, UpstreamError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A getaddrinfo-shaped function: (host, port) -> [(family, type, proto, canonname, sockaddr), ...].
# Injectable so tests decide what a name resolves to without a network.
Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]

MAX_URL_CHARS = 2048
SCHEMES = {"http": 80, "https": 443}
_HOST_LABELS = re.compile(r"^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$")
_PORT = re.compile(r"^[0-9]{1,5}$")


class BlockReason(StrEnum):
    SCHEME = "scheme"
    CREDENTIALS = "credentials"
    PORT = "port"
    METADATA = "metadata"
    LOOPBACK = "loopback"
    UNSPECIFIED = "unspecified"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    SHARED = "shared-address-space"
    BENCHMARKING = "benchmarking"
    DOCUMENTATION = "documentation"
    MULTICAST = "multicast"
    BROADCAST = "broadcast"
    RESERVED = "reserved"
    EMBEDDED_IPV4 = "ipv4-in-ipv6"
    NOT_GLOBAL = "not-global"

    @property
    def metric_name(self) -> str:
        """A fixed, dimension-free metric name per reason (ImportsBlockedLinkLocal, ...)."""
        return "ImportsBlocked" + "".join(word.capitalize() for word in self.value.split("-"))


# General terms only: the response says why, never which address a name resolved to.
_EXPLANATIONS = {
    BlockReason.SCHEME: "only http and https URLs can be imported",
    BlockReason.CREDENTIALS: "URLs with credentials (user:password@) are not accepted",
    BlockReason.PORT: "the port is not allowed",
    BlockReason.METADATA: "the host is a cloud metadata endpoint",
    BlockReason.LOOPBACK: "the host resolves to a loopback address",
    BlockReason.UNSPECIFIED: "the host resolves to an unspecified address",
    BlockReason.PRIVATE: "the host resolves to a private network address",
    BlockReason.LINK_LOCAL: "the host resolves to a link-local address",
    BlockReason.SHARED: "the host resolves to a carrier-grade NAT address",
    BlockReason.BENCHMARKING: "the host resolves to a benchmarking address",
    BlockReason.DOCUMENTATION: "the host resolves to a documentation address",
    BlockReason.MULTICAST: "the host resolves to a multicast address",
    BlockReason.BROADCAST: "the host resolves to a broadcast address",
    BlockReason.RESERVED: "the host resolves to a reserved address",
    BlockReason.EMBEDDED_IPV4: "the host resolves to an IPv6 address that embeds an IPv4 address",
    BlockReason.NOT_GLOBAL: "the host resolves to an address that is not public",
}


class DestinationBlocked(Forbidden):
    """403: the URL (or a redirect it led to) points somewhere this service must not fetch from."""

    def __init__(self, reason: BlockReason, *, redirect: bool = False) -> None:
        where = "the URL redirects to a destination that is not allowed" if redirect else "the URL is not allowed"
        super().__init__(f"{where}: {_EXPLANATIONS[reason]}", code="ForbiddenDestination")
        self.reason = reason
        self.redirect = redirect


# ---------------------------------------------------------------------------------------------------
# URLs


@dataclass(frozen=True, slots=True)
class Target:
    """One parsed, normalised http(s) URL. `host` is a lower-case ASCII name or an address."""

    scheme: str
    host: str
    port: int
    path: str
    query: str = ""
    literal: IPAddress | None = None

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        """The Host header (and authority) for this URL: brackets for IPv6, port only when not default."""
        host = f"[{self.host}]" if isinstance(self.literal, ipaddress.IPv6Address) else self.host
        return host if SCHEMES[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def request_target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.request_target}"

    @property
    def redacted(self) -> str:
        """The URL without its query: fit for logs and object metadata. Query strings often carry
        secrets (presigned signatures, access tokens); userinfo never gets this far."""
        return f"{self.scheme}://{self.host_header}{self.path}"


def parse_url(raw: object) -> Target:
    """Parse a caller's URL strictly; anything ambiguous is refused rather than guessed at (400)."""
    if not isinstance(raw, str) or not raw:
        raise InvalidRequest("url is required", code="InvalidUrl")
    if len(raw) > MAX_URL_CHARS:
        raise InvalidRequest(f"the URL is longer than {MAX_URL_CHARS} characters", code="InvalidUrl")
    # Parsers disagree about whitespace, control characters and backslashes (WHATWG turns `\`
    # into `/`, urlsplit does not): refusing them removes every such ambiguity.
    if any(ch.isspace() or ch == "\\" or unicodedata.category(ch).startswith("C") for ch in raw):
        raise InvalidRequest("the URL contains whitespace, control characters or backslashes", code="InvalidUrl")
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise InvalidRequest("the URL is malformed", code="InvalidUrl") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidRequest("only http and https URLs can be imported", code="UnsupportedScheme")
    netloc = parts.netloc
    if "@" in netloc:
        raise InvalidRequest("URLs with credentials (user:password@) are not accepted", code="CredentialsInUrl")
    host, literal, port = _split_authority(netloc, SCHEMES[scheme])
    path = _ascii(parts.path) or "/"
    return Target(scheme=scheme, host=host, port=port, path=path, query=_ascii(parts.query), literal=literal)


def _split_authority(netloc: str, default_port: int) -> tuple[str, IPAddress | None, int]:
    if not netloc:
        raise InvalidRequest("the URL has no host", code="InvalidUrl")
    literal: IPAddress | None = None
    if netloc.startswith("["):
        inside, bracket, rest = netloc[1:].partition("]")
        if not bracket or "%" in inside or (rest and not rest.startswith(":")):
            raise InvalidRequest("the URL's IPv6 host is malformed", code="InvalidUrl")
        try:
            literal = ipaddress.IPv6Address(inside)
        except ValueError:
            raise InvalidRequest("the URL's IPv6 host is malformed", code="InvalidUrl") from None
        host, port_text = str(literal), rest[1:] if rest else None
    else:
        host, colon, after = netloc.partition(":")
        port_text = after if colon else None
        host = _normalise_name(host)
        try:
            literal = ipaddress.IPv4Address(host)
        except ValueError:
            literal = None  # a name, or an odd spelling of an address: the resolver decides
    return host, literal, _port(port_text, default_port)


def _normalise_name(host: str) -> str:
    if not host:
        raise InvalidRequest("the URL has no host", code="InvalidUrl")
    if not host.isascii():
        try:
            # IDNA (with its NFKC mapping: fullwidth digits become ASCII ones, and are then
            # vetted like any other address after resolution).
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidRequest("the URL's host name is not valid", code="InvalidUrl") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if len(host) > 253 or not _HOST_LABELS.fullmatch(host):
        raise InvalidRequest("the URL's host name is not valid", code="InvalidUrl")
    return host


def _port(text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise InvalidRequest("the URL's port is not valid", code="InvalidUrl")
    return int(text)


def _ascii(text: str) -> str:
    """Percent-encode what is not ASCII; what is already encoded stays as it is."""
    return quote(text, safe="/%:@!$&'()*+,;=-._~?") if not text.isascii() else text


# ---------------------------------------------------------------------------------------------------
# Addresses

_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, ... instance metadata
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "169.254.169.253",  # AWS VPC DNS resolver
        "169.254.169.123",  # AWS Time Sync
        "169.254.0.23",  # Tencent Cloud metadata
        "169.254.42.42",  # Scaleway metadata
        "100.100.100.200",  # Alibaba Cloud metadata
        "192.0.0.192",  # Oracle Cloud (classic) metadata
        "168.63.129.16",  # Azure WireServer: a public address, so only this list catches it
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::253",  # AWS VPC DNS resolver over IPv6
        "fd00:ec2::123",  # AWS Time Sync over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
    )
)


def _networks(*texts: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


# Checked in this order; the first match names the reason. Python's is_private/is_global are
# consulted last: they miss some ranges (3fff::/20, ::/96 forms count as global in 3.13).
_IPV4_RANGES: tuple[tuple[BlockReason, tuple[IPNetwork, ...]], ...] = (
    (BlockReason.UNSPECIFIED, _networks("0.0.0.0/8")),  # Linux connects 0.x to the local host
    (BlockReason.BROADCAST, _networks("255.255.255.255/32")),
    (BlockReason.LOOPBACK, _networks("127.0.0.0/8")),
    (BlockReason.LINK_LOCAL, _networks("169.254.0.0/16")),
    (BlockReason.MULTICAST, _networks("224.0.0.0/4")),
    (BlockReason.SHARED, _networks("100.64.0.0/10")),
    (BlockReason.BENCHMARKING, _networks("198.18.0.0/15")),
    (BlockReason.DOCUMENTATION, _networks("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")),
    (BlockReason.PRIVATE, _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "192.0.0.0/24")),
    (BlockReason.RESERVED, _networks("240.0.0.0/4", "192.88.99.0/24")),
)
_IPV6_RANGES: tuple[tuple[BlockReason, tuple[IPNetwork, ...]], ...] = (
    (BlockReason.MULTICAST, _networks("ff00::/8")),
    (BlockReason.LINK_LOCAL, _networks("fe80::/10")),
    (BlockReason.PRIVATE, _networks("fc00::/7", "fec0::/10")),
    (BlockReason.DOCUMENTATION, _networks("2001:db8::/32", "3fff::/20")),
    (BlockReason.BENCHMARKING, _networks("2001:2::/48")),
    (BlockReason.RESERVED, _networks("100::/64")),
)
# Every global unicast IPv6 address lies in 2000::/3; anything outside it is not on the internet.
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def classify(address: IPAddress) -> BlockReason | None:
    """Why this address must not be fetched from, or None when it is global unicast."""
    if address in _METADATA_ADDRESSES:
        return BlockReason.METADATA
    if isinstance(address, ipaddress.IPv6Address):
        return _classify_v6(address)
    return _classify_v4(address)


def _classify_v4(address: ipaddress.IPv4Address) -> BlockReason | None:
    for reason, networks in _IPV4_RANGES:
        if any(address in network for network in networks):
            return reason
    if address.is_private or address.is_reserved:
        return BlockReason.RESERVED
    return None if address.is_global else BlockReason.NOT_GLOBAL


def _classify_v6(address: ipaddress.IPv6Address) -> BlockReason | None:
    if address.scope_id:
        return BlockReason.LINK_LOCAL
    if address == ipaddress.IPv6Address("::"):
        return BlockReason.UNSPECIFIED
    if address == ipaddress.IPv6Address("::1"):
        return BlockReason.LOOPBACK
    if address in _NAT64_LOCAL:
        # Local-use NAT64 places the IPv4 address where the network's prefix length says,
        # which cannot be known from here: refused outright.
        return BlockReason.EMBEDDED_IPV4
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        # Refused whatever it embeds; the embedded address only sharpens the reason.
        inner = classify(embedded)
        return inner if inner is not None else BlockReason.EMBEDDED_IPV4
    for reason, networks in _IPV6_RANGES:
        if any(address in network for network in networks):
            return reason
    if address not in _IPV6_GLOBAL_UNICAST or address.is_private or address.is_reserved:
        return BlockReason.NOT_GLOBAL
    return None if address.is_global else BlockReason.NOT_GLOBAL


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-embedding IPv6 address (None when there is none)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _IPV4_COMPATIBLE or address in _IPV4_TRANSLATED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(target: Target, resolver: Resolver) -> tuple[IPAddress, ...]:
    """Every address the host resolves to, in the resolver's order, without duplicates."""
    if target.literal is not None:
        return (target.literal,)
    try:
        answers = resolver(target.host, target.port)
    except (OSError, UnicodeError):
        raise UpstreamError("the URL's host name could not be resolved", code="UnresolvableHost") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonical, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            address = ipaddress.ip_address(sockaddr[0])
        except ValueError:
            raise UpstreamError("the URL's host name could not be resolved", code="UnresolvableHost") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UpstreamError("the URL's host name could not be resolved", code="UnresolvableHost")
    return tuple(addresses)


def system_resolver(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)


# ---------------------------------------------------------------------------------------------------
# The allowlist and the policy


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Destinations exempt from the global-unicast rule: CIDRs (on the allowed ports) and exact
    address:port pairs (on that port only). Names are not accepted: they resolve differently
    over time, which is what the vetting exists to stop."""

    networks: tuple[IPNetwork, ...] = ()
    endpoints: frozenset[tuple[IPAddress, int]] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        networks: list[IPNetwork] = []
        endpoints: set[tuple[IPAddress, int]] = set()
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            endpoint = _endpoint(item)
            if endpoint is not None:
                endpoints.add(endpoint)
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=True))
            except ValueError:
                raise ValueError(
                    f"{item!r} is neither a CIDR (10.1.0.0/16), an address, nor an address:port "
                    "(127.0.0.1:8001, [::1]:8001); host names are not accepted"
                ) from None
        return cls(networks=tuple(networks), endpoints=frozenset(endpoints))

    def __bool__(self) -> bool:
        return bool(self.networks or self.endpoints)

    def names_port(self, port: int) -> bool:
        return any(allowed_port == port for _, allowed_port in self.endpoints)

    def permits(self, address: IPAddress, port: int, allowed_ports: Iterable[int]) -> bool:
        if (address, port) in self.endpoints:
            return True
        return port in allowed_ports and any(address in network for network in self.networks)


def _endpoint(item: str) -> tuple[IPAddress, int] | None:
    if item.startswith("["):
        inside, bracket, rest = item[1:].partition("]")
        host, port_text = (inside, rest[1:]) if bracket and rest.startswith(":") else (None, None)
    elif item.count(":") == 1:
        host, _, port_text = item.partition(":")
    else:
        return None
    if host is None or port_text is None or not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{item!r} is not an address:port pair")
    try:
        return ipaddress.ip_address(host), int(port_text)
    except ValueError:
        raise ValueError(f"{item!r}: {host!r} is not an IP address (host names are not accepted)") from None


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    allowed_ports: frozenset[int]
    allowlist: Allowlist = field(default_factory=Allowlist)

    def check_port(self, target: Target, *, use_allowlist: bool, redirect: bool = False) -> None:
        """Refuse a port before resolving anything (the allowlist can name extra ports)."""
        if target.port in self.allowed_ports or (use_allowlist and self.allowlist.names_port(target.port)):
            return
        raise DestinationBlocked(BlockReason.PORT, redirect=redirect)

    def vet(
        self,
        target: Target,
        addresses: Sequence[IPAddress],
        *,
        use_allowlist: bool,
        redirect: bool = False,
    ) -> tuple[IPAddress, ...]:
        """The addresses, if every one of them may be connected to; otherwise DestinationBlocked.

        All of them, not only the first: a name that resolves to one public and one internal
        address is refused, whichever the connection would have used.
        """
        if not addresses:
            raise UpstreamError("the URL's host name could not be resolved", code="UnresolvableHost")
        for address in addresses:
            reason = classify(address)
            if (
                use_allowlist
                and reason is not BlockReason.METADATA
                and self.allowlist.permits(address, target.port, self.allowed_ports)
            ):
                continue
            if target.port not in self.allowed_ports:
                raise DestinationBlocked(BlockReason.PORT, redirect=redirect)
            if reason is not None:
                raise DestinationBlocked(reason, redirect=redirect)
        return tuple(addresses)
