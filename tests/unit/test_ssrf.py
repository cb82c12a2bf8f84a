"""Unit tests of the SSRF rules: URL parsing, address classification, the allowlist and the policy."""

from __future__ import annotations

import ipaddress

import pytest

from tests.import_support import StubResolver
from upload_core.errors import InvalidRequest, UpstreamError
from upload_core.ssrf import (
    Allowlist,
    BlockReason,
    DestinationBlocked,
    DestinationPolicy,
    Target,
    classify,
    parse_url,
    resolve,
)

WEB = frozenset({80, 443})


# ------------------------------------------------------------------------------------------ parse_url


def test_parse_url_normalises_scheme_host_and_default_port() -> None:
    # Given a URL with upper-case scheme and host, a trailing dot and no path
    # When it is parsed
    target = parse_url("HTTPS://Images.Example.COM.?size=large#top")
    # Then scheme and host are lower-case, the dot is gone, the port is the default, the fragment dropped
    assert target == Target(scheme="https", host="images.example.com", port=443, path="/", query="size=large")
    assert target.host_header == "images.example.com"
    assert target.url == "https://images.example.com/?size=large"


def test_parse_url_keeps_an_explicit_port_in_the_host_header() -> None:
    target = parse_url("http://example.com:8080/a/b.png")
    assert (target.port, target.host_header, target.request_target) == (8080, "example.com:8080", "/a/b.png")


def test_parse_url_brackets_ipv6_literals_in_the_host_header() -> None:
    target = parse_url("http://[2606:4700::1111]/x")
    assert target.literal == ipaddress.IPv6Address("2606:4700::1111")
    assert target.host_header == "[2606:4700::1111]"


def test_redacted_url_drops_the_query_string() -> None:
    # Given a presigned-style URL whose query carries a signature
    target = parse_url("https://cdn.example.com/cat.png?X-Amz-Signature=secret&token=abc")
    # Then the redacted form has no query at all
    assert target.redacted == "https://cdn.example.com/cat.png"
    assert "secret" not in target.redacted


def test_non_ascii_host_names_are_idna_encoded() -> None:
    assert parse_url("http://bücher.example/x").host == "xn--bcher-kva.example"


def test_fullwidth_digits_fold_to_an_address_that_is_then_vetted() -> None:
    # IDNA's NFKC mapping turns fullwidth digits into ASCII: the result is an address literal.
    target = parse_url("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/")
    assert target.literal == ipaddress.IPv4Address("127.0.0.1")


def test_odd_address_spellings_are_left_to_the_resolver() -> None:
    # Not string-matched: "2130706433" is a syntactically valid host that the resolver turns
    # into 127.0.0.1, and the vetting after resolution refuses it.
    target = parse_url("http://2130706433/")
    assert target.literal is None
    assert resolve(target, StubResolver()) == (ipaddress.IPv4Address("127.0.0.1"),)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("", "InvalidUrl"),
        ("not a url", "InvalidUrl"),
        ("http://", "InvalidUrl"),
        ("http:///path", "InvalidUrl"),
        ("http://exa mple.com/", "InvalidUrl"),
        ("http://example.com/\x00", "InvalidUrl"),
        ("http://example.com\\@evil.test/", "InvalidUrl"),
        ("http://example.com:99999/", "InvalidUrl"),
        ("http://example.com:8o/", "InvalidUrl"),
        ("http://[::1/", "InvalidUrl"),
        ("http://[fe80::1%25eth0]/", "InvalidUrl"),
        ("http://exa%6dple.com/", "InvalidUrl"),
        ("http://" + "a" * 2100 + ".com/", "InvalidUrl"),
        ("ftp://example.com/a.png", "UnsupportedScheme"),
        ("file:///etc/passwd", "UnsupportedScheme"),
        ("//example.com/a.png", "UnsupportedScheme"),
        ("http://user:pass@example.com/", "CredentialsInUrl"),
        ("http://@example.com/", "CredentialsInUrl"),
    ],
)
def test_malformed_urls_are_refused_with_400(url: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_url(url)
    assert refused.value.code == code
    assert refused.value.status == 400


def test_a_url_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        parse_url(None)


# ------------------------------------------------------------------------------------------ classify


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", BlockReason.LOOPBACK),
        ("127.255.255.254", BlockReason.LOOPBACK),
        ("0.0.0.0", BlockReason.UNSPECIFIED),  # noqa: S104 - an address under test, not a bind
        ("0.1.2.3", BlockReason.UNSPECIFIED),
        ("10.0.0.1", BlockReason.PRIVATE),
        ("172.16.5.4", BlockReason.PRIVATE),
        ("192.168.1.1", BlockReason.PRIVATE),
        ("192.0.0.8", BlockReason.PRIVATE),
        ("169.254.1.1", BlockReason.LINK_LOCAL),
        ("169.254.169.254", BlockReason.METADATA),
        ("169.254.170.2", BlockReason.METADATA),
        ("100.100.100.200", BlockReason.METADATA),
        ("192.0.0.192", BlockReason.METADATA),
        ("168.63.129.16", BlockReason.METADATA),
        ("100.64.0.1", BlockReason.SHARED),
        ("100.127.255.254", BlockReason.SHARED),
        ("198.18.0.1", BlockReason.BENCHMARKING),
        ("198.19.255.1", BlockReason.BENCHMARKING),
        ("192.0.2.10", BlockReason.DOCUMENTATION),
        ("198.51.100.10", BlockReason.DOCUMENTATION),
        ("203.0.113.10", BlockReason.DOCUMENTATION),
        ("224.0.0.1", BlockReason.MULTICAST),
        ("239.255.255.250", BlockReason.MULTICAST),
        ("255.255.255.255", BlockReason.BROADCAST),
        ("240.0.0.1", BlockReason.RESERVED),
        ("192.88.99.1", BlockReason.RESERVED),
        ("::", BlockReason.UNSPECIFIED),
        ("::1", BlockReason.LOOPBACK),
        ("fd00:ec2::254", BlockReason.METADATA),
        ("fe80::1", BlockReason.LINK_LOCAL),
        ("fc00::1", BlockReason.PRIVATE),
        ("fd12:3456::1", BlockReason.PRIVATE),
        ("fec0::1", BlockReason.PRIVATE),
        ("ff02::1", BlockReason.MULTICAST),
        ("2001:db8::1", BlockReason.DOCUMENTATION),
        ("3fff::1", BlockReason.DOCUMENTATION),
        ("2001:2::1", BlockReason.BENCHMARKING),
        ("100::1", BlockReason.RESERVED),
        ("5f00::1", BlockReason.NOT_GLOBAL),
        ("::ffff:127.0.0.1", BlockReason.LOOPBACK),
        ("::ffff:169.254.169.254", BlockReason.METADATA),
        ("::ffff:10.0.0.1", BlockReason.PRIVATE),
        ("::127.0.0.1", BlockReason.LOOPBACK),
        ("::ffff:0:127.0.0.1", BlockReason.LOOPBACK),
        ("64:ff9b::a9fe:a9fe", BlockReason.METADATA),
        ("64:ff9b:1::7f00:1", BlockReason.EMBEDDED_IPV4),
        ("2002:7f00:1::", BlockReason.LOOPBACK),
        ("2002:a9fe:a9fe::1", BlockReason.METADATA),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", BlockReason.LOOPBACK),
    ],
)
def test_non_global_addresses_are_classified(address: str, reason: BlockReason) -> None:
    assert classify(ipaddress.ip_address(address)) is reason


@pytest.mark.parametrize(
    "address",
    ["::ffff:8.8.8.8", "::8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"],
)
def test_ipv4_embedded_in_ipv6_is_refused_even_when_the_ipv4_is_public(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is BlockReason.EMBEDDED_IPV4


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "1.1.1.1", "2606:4700::1111", "2a00:1450::1"])
def test_global_unicast_addresses_pass(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is None


def test_every_reason_has_a_dimension_free_metric_name() -> None:
    names = {reason.metric_name for reason in BlockReason}
    assert len(names) == len(BlockReason)
    assert BlockReason.LINK_LOCAL.metric_name == "ImportsBlockedLinkLocal"
    assert all(name.isalnum() for name in names)


# ------------------------------------------------------------------------------------------ allowlist


def test_allowlist_parses_cidrs_addresses_and_address_port_pairs() -> None:
    allowlist = Allowlist.parse(" 10.1.0.0/16, 127.0.0.1:8001 , [::1]:9000, 192.0.2.7 ,")
    assert allowlist.networks == (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("192.0.2.7/32"))
    assert allowlist.endpoints == {
        (ipaddress.ip_address("127.0.0.1"), 8001),
        (ipaddress.ip_address("::1"), 9000),
    }


def test_empty_allowlist_is_falsy() -> None:
    assert not Allowlist.parse("")
    assert not Allowlist.parse(" , ")


@pytest.mark.parametrize("entry", ["localhost:8001", "example.com", "10.1.0.1/16", "127.0.0.1:0", "[::1]", "1.2.3.4:x"])
def test_allowlist_refuses_names_and_malformed_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="not"):
        Allowlist.parse(entry)


def test_an_address_port_pair_allows_only_that_port() -> None:
    allowlist = Allowlist.parse("127.0.0.1:8001")
    loopback = ipaddress.ip_address("127.0.0.1")
    assert allowlist.permits(loopback, 8001, WEB)
    assert not allowlist.permits(loopback, 8002, WEB)
    assert not allowlist.permits(loopback, 80, WEB)


def test_a_cidr_allows_its_addresses_on_the_allowed_ports_only() -> None:
    allowlist = Allowlist.parse("10.1.0.0/16")
    assert allowlist.permits(ipaddress.ip_address("10.1.2.3"), 443, WEB)
    assert not allowlist.permits(ipaddress.ip_address("10.1.2.3"), 6379, WEB)
    assert not allowlist.permits(ipaddress.ip_address("10.2.0.1"), 443, WEB)


# ------------------------------------------------------------------------------------------ policy


def _vet(policy: DestinationPolicy, url: str, addresses: list[str], *, use_allowlist: bool = True) -> None:
    target = parse_url(url)
    policy.check_port(target, use_allowlist=use_allowlist)
    policy.vet(target, [ipaddress.ip_address(a) for a in addresses], use_allowlist=use_allowlist)


def test_every_resolved_address_must_pass_not_just_the_first() -> None:
    policy = DestinationPolicy(allowed_ports=WEB)
    with pytest.raises(DestinationBlocked) as blocked:
        _vet(policy, "http://mixed.example/", ["93.184.215.14", "127.0.0.1"])
    assert blocked.value.reason is BlockReason.LOOPBACK


def test_a_port_outside_the_list_is_refused_before_resolution() -> None:
    policy = DestinationPolicy(allowed_ports=WEB)
    with pytest.raises(DestinationBlocked) as blocked:
        policy.check_port(parse_url("http://example.com:22/"), use_allowlist=True)
    assert blocked.value.reason is BlockReason.PORT
    assert blocked.value.status == 403


def test_the_allowlist_opens_an_internal_address_only_when_it_applies() -> None:
    policy = DestinationPolicy(allowed_ports=WEB, allowlist=Allowlist.parse("127.0.0.1:8001"))
    _vet(policy, "http://127.0.0.1:8001/a.png", ["127.0.0.1"])  # allowed
    with pytest.raises(DestinationBlocked):  # the same address for a hop the allowlist does not cover
        _vet(policy, "http://127.0.0.1:8001/a.png", ["127.0.0.1"], use_allowlist=False)
    with pytest.raises(DestinationBlocked):  # another port on the same address
        _vet(policy, "http://127.0.0.1:8002/a.png", ["127.0.0.1"])


def test_the_allowlist_never_opens_a_metadata_address() -> None:
    policy = DestinationPolicy(allowed_ports=WEB, allowlist=Allowlist.parse("169.254.0.0/16,169.254.169.254:80"))
    with pytest.raises(DestinationBlocked) as blocked:
        _vet(policy, "http://169.254.169.254/latest/meta-data/", ["169.254.169.254"])
    assert blocked.value.reason is BlockReason.METADATA


def test_blocked_message_names_the_reason_but_not_the_address() -> None:
    policy = DestinationPolicy(allowed_ports=WEB)
    with pytest.raises(DestinationBlocked) as blocked:
        _vet(policy, "http://internal.example/", ["10.20.30.40"])
    assert "private" in blocked.value.message
    assert "10.20.30.40" not in blocked.value.message
    assert blocked.value.code == "ForbiddenDestination"


def test_a_name_that_does_not_resolve_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError) as failed:
        resolve(parse_url("http://no-such-host.invalid/"), StubResolver())
    assert failed.value.code == "UnresolvableHost"
