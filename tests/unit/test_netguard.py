"""Address guard, guarded resolver and domain blocks."""

from __future__ import annotations

import socket

import pytest

from federation.netguard import (
    AddressGuard,
    BlockedAddress,
    DomainBlocks,
    GuardedResolver,
    normalize_domain,
)

STRICT = AddressGuard(allow_private=False)
LENIENT = AddressGuard(allow_private=True)

# ip, allowed when strict, allowed with allow_private
IP_TABLE = [
    ("8.8.8.8", True, True),
    ("1.1.1.1", True, True),
    ("2606:4700:4700::1111", True, True),
    ("2a00:1450:4001:82a::200e", True, True),
    ("64:ff9b::808:808", True, True),  # NAT64 of a public address (DNS64 networks)
    ("2002:808:808::1", True, True),  # 6to4 of a public address
    ("127.0.0.1", False, True),
    ("127.8.9.10", False, True),
    ("::1", False, True),
    ("10.0.0.1", False, True),
    ("172.16.5.4", False, True),
    ("192.168.1.1", False, True),
    ("169.254.169.254", False, True),
    ("fe80::1", False, True),
    ("fe80::1%1", False, True),
    ("100.64.0.1", False, True),
    ("100.127.255.254", False, True),
    ("fc00::1", False, True),
    ("fd12:3456:789a::1", False, True),
    ("fec0::1", False, True),  # deprecated site-local
    ("::ffff:127.0.0.1", False, True),
    ("::ffff:10.1.2.3", False, True),
    ("::ffff:169.254.169.254", False, True),
    ("64:ff9b::7f00:1", False, True),  # NAT64 of loopback
    ("64:ff9b:1::1", False, True),  # local-use NAT64
    ("2002:7f00:1::1", False, True),  # 6to4 of loopback
    ("::127.0.0.1", False, True),  # deprecated IPv4-compatible
    ("192.0.2.1", False, True),  # documentation
    ("198.18.0.1", False, True),  # benchmarking
    ("240.0.0.1", False, True),  # reserved
    ("2001:db8::1", False, True),  # documentation
    # Never a unicast peer, refused in both modes:
    ("0.0.0.0", False, False),
    ("::", False, False),
    ("224.0.0.1", False, False),
    ("239.255.255.250", False, False),
    ("ff02::1", False, False),
    ("255.255.255.255", False, False),
    ("::ffff:0.0.0.0", False, False),
    # Not an address at all:
    ("example.com", False, False),
    ("", False, False),
]


@pytest.mark.parametrize(("ip", "strict", "lenient"), IP_TABLE)
def test_is_allowed_ip(ip: str, strict: bool, lenient: bool) -> None:
    assert STRICT.is_allowed_ip(ip) is strict
    assert LENIENT.is_allowed_ip(ip) is lenient


def test_refusal_names_the_category() -> None:
    assert STRICT.refusal("127.0.0.1") == "loopback"
    assert STRICT.refusal("::ffff:127.0.0.1") == "loopback"
    assert STRICT.refusal("100.64.1.1") == "cgnat"
    assert STRICT.refusal("169.254.169.254") == "link_local"
    assert STRICT.refusal("fec0::1") == "site_local"
    assert STRICT.refusal("10.0.0.1") == "private"
    assert STRICT.refusal("224.0.0.1") == "multicast"
    assert STRICT.refusal("8.8.8.8") is None


def test_allow_networks_opens_only_those_networks() -> None:
    guard = AddressGuard(allow_private=False, allow_networks=["10.1.0.0/16", "fd00::/8"])
    assert guard.is_allowed_ip("10.1.2.3")
    assert guard.is_allowed_ip("fd00::5")
    assert not guard.is_allowed_ip("10.2.0.1")
    assert not guard.is_allowed_ip("127.0.0.1")
    assert not guard.is_allowed_ip("0.0.0.0")
    guard.check_url("http://10.1.2.3/x")


@pytest.mark.parametrize(
    "url",
    [
        "https://coop.example/users/a",
        "http://coop.example:8080/users/a?x=1#frag",
        "HTTPS://Coop.Example/",
        "https://8.8.8.8/",
        "https://[2606:4700:4700::1111]/",
        "https://bücher.example/",
        "https://localhost/",  # names are the resolver's job
    ],
)
def test_check_url_accepts(url: str) -> None:
    STRICT.check_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "bad_scheme"),
        ("ftp://coop.example/x", "bad_scheme"),
        ("javascript:alert(1)", "bad_scheme"),
        ("gopher://coop.example/", "bad_scheme"),
        ("data:application/json,{}", "bad_scheme"),
        ("coop.example/users/a", "bad_scheme"),
        ("http:///path", "missing_host"),
        ("https://user:pw@coop.example/", "userinfo"),
        ("https://user@coop.example/", "userinfo"),
        ("https://@coop.example/", "userinfo"),
        ("https://coop.example:99999/", "bad_url"),
        ("http://127.0.0.1/", "blocked_ip"),
        ("http://127.0.0.1:8080/x", "blocked_ip"),
        ("http://[::1]/", "blocked_ip"),
        ("http://[::ffff:127.0.0.1]/", "blocked_ip"),
        ("http://169.254.169.254/latest/meta-data/", "blocked_ip"),
        ("http://10.0.0.1/", "blocked_ip"),
        ("http://100.64.0.1/", "blocked_ip"),
        ("http://[fd00::1]/", "blocked_ip"),
        ("http://0.0.0.0:8080/", "blocked_ip"),
        ("http://2130706433/", "non_canonical_ip"),
        ("http://0x7f.1/", "non_canonical_ip"),
        ("http://127.1/", "non_canonical_ip"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(BlockedAddress) as info:
        STRICT.check_url(url)
    assert info.value.reason == reason
    assert info.value.url == url


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://[::1]:8080/", "http://169.254.169.254/", "http://10.0.0.1/"],
)
def test_check_url_allow_private(url: str) -> None:
    LENIENT.check_url(url)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "javascript:alert(1)", "http://u@h.example/", "http://0.0.0.0/"]
)
def test_check_url_allow_private_still_refuses(url: str) -> None:
    with pytest.raises(BlockedAddress):
        LENIENT.check_url(url)


def test_blocked_address_is_an_oserror() -> None:
    exc = BlockedAddress("http://x/", "blocked_ip", "loopback")
    assert isinstance(exc, OSError)
    assert exc.errno is None
    assert (exc.url, exc.reason, exc.detail) == ("http://x/", "blocked_ip", "loopback")


async def test_resolver_refuses_localhost_when_strict() -> None:
    resolver = GuardedResolver(STRICT)
    try:
        with pytest.raises(BlockedAddress) as info:
            await resolver.resolve("localhost", 80, socket.AF_UNSPEC)
        assert info.value.reason == "blocked_ip"
        assert info.value.url == "localhost"
    finally:
        await resolver.close()


async def test_resolver_allows_localhost_with_allow_private() -> None:
    resolver = GuardedResolver(LENIENT)
    try:
        answers = await resolver.resolve("localhost", 80, socket.AF_UNSPEC)
    finally:
        await resolver.close()
    assert answers
    assert {a["host"] for a in answers} <= {"127.0.0.1", "::1"}
    assert all(a["port"] == 80 for a in answers)


async def test_resolver_keeps_only_allowed_answers() -> None:
    guard = AddressGuard(allow_private=False, allow_networks=["127.0.0.1/32"])
    resolver = GuardedResolver(guard)
    try:
        answers = await resolver.resolve("localhost", 443, socket.AF_UNSPEC)
    finally:
        await resolver.close()
    assert [a["host"] for a in answers] == ["127.0.0.1"]


def test_domain_blocks_match_domain_and_subdomains() -> None:
    blocks = DomainBlocks(["Bad.Example", "*.wild.example", "evil.example."])
    assert blocks.is_blocked("bad.example")
    assert blocks.is_blocked("BAD.EXAMPLE")
    assert blocks.is_blocked("inbox.bad.example")
    assert blocks.is_blocked("a.b.bad.example:8443")
    assert blocks.is_blocked("bad.example.")
    assert blocks.is_blocked("wild.example")
    assert blocks.is_blocked("x.wild.example")
    assert blocks.is_blocked("evil.example")
    assert not blocks.is_blocked("notbad.example")
    assert not blocks.is_blocked("example")
    assert not blocks.is_blocked("bad.example.org")
    assert not blocks.is_blocked("")
    assert "sub.bad.example" in blocks
    assert len(blocks) == 3


def test_domain_blocks_add_remove_replace() -> None:
    blocks = DomainBlocks()
    assert not blocks.is_blocked("coop.example")
    blocks.add("Coop.Example:443")
    assert blocks.is_blocked("www.coop.example")
    blocks.remove("COOP.example")
    assert not blocks.is_blocked("www.coop.example")
    blocks.remove("never.added")  # no error
    blocks.replace(["a.example", "b.example"])
    assert blocks.is_blocked("x.a.example")
    assert blocks.is_blocked("b.example")
    blocks.replace([])
    assert not blocks.is_blocked("a.example")


def test_a_reload_read_before_a_block_cannot_undo_it() -> None:
    # Given a reload that read the database's list (empty) just before the admin blocked
    blocks = DomainBlocks()
    read_at = blocks.version
    blocks.add("spam.example")
    # When that stale list lands / Then it is ignored, and the block holds
    assert blocks.replace([], read_at=read_at) is False
    assert blocks.is_blocked("spam.example")
    # A list read after the change is taken
    assert blocks.replace(["other.example"], read_at=blocks.version) is True
    assert blocks.is_blocked("other.example") and not blocks.is_blocked("spam.example")


def test_domain_blocks_idn_and_ip_literals() -> None:
    blocks = DomainBlocks(["bücher.example", "10.0.0.1", "[2001:DB8::0001]"])
    assert blocks.is_blocked("xn--bcher-kva.example")
    assert blocks.is_blocked("shop.BÜCHER.example")
    assert blocks.is_blocked("10.0.0.1:80")
    assert blocks.is_blocked("[2001:db8::1]:443")
    assert blocks.is_blocked("2001:db8::1")
    assert not blocks.is_blocked("0.0.1")
    assert not blocks.is_blocked("110.0.0.1")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("*.example.com", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:80", "::1"),
        ("::1", "::1"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_normalize_domain(raw: str, normal: str) -> None:
    assert normalize_domain(raw) == normal
