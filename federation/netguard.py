"""Where outbound requests may go: address checks, a guarded DNS resolver, domain blocks.

Remote servers choose the URLs we fetch (actor ids, key ids, inboxes, redirects),
so every outbound request is checked twice:

* :meth:`AddressGuard.check_url` refuses odd schemes, userinfo and literal IP hosts
  that point into private space.  aiohttp never asks the resolver about literal
  IPs, so this check is the only one they get.
* :class:`GuardedResolver` filters DNS answers at connect time, so a public name
  that resolves to ``127.0.0.1`` (or is rebound to it later) is refused too.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})

# Categories refused even with ``allow_private``: these are never a unicast TCP peer.
NEVER_PEER = frozenset({"unspecified", "multicast", "broadcast"})

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
# RFC 6052 well-known NAT64 prefix: DNS64 maps every IPv4-only host into it, so the
# embedded IPv4 address decides.  The RFC 8215 local-use prefix is refused outright.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# A last label made of digits or 0x-hex: a (possibly legacy) numeric IPv4 form.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class BlockedAddress(OSError):
    """An outbound request would go somewhere it must not.

    It is an ``OSError`` so that aiohttp's connector wraps it, when the resolver
    raises it, in a ``ClientConnectorDNSError`` whose ``os_error`` is this object.
    ``url`` is the refused URL, or the host name when the resolver refused it.
    """

    def __init__(self, url: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail or url}")
        self.url = url
        self.reason = reason
        self.detail = detail


def classify_ip(ip: IPAddress) -> str | None:
    """The category that makes ``ip`` non-public, or ``None`` for a public address.

    IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by it.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return classify_ip(ip.ipv4_mapped)
        if ip in _NAT64:
            return classify_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None:
            return classify_ip(ip.sixtofour)
        if ip in _NAT64_LOCAL:
            return "nat64_local"
        if ip.is_site_local:
            return "site_local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip == _BROADCAST:
        return "broadcast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "cgnat"
    if ip.is_private:  # RFC 1918, ULA fc00::/7, documentation, benchmarking, ...
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not_global"
    return None


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets and an IPv6 zone allowed), else ``None``."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


class AddressGuard:
    """Decides which addresses and URLs outbound requests may reach.

    ``allow_private`` (development, closed networks) allows every unicast address.
    ``allow_networks`` allows chosen networks (``"10.1.2.0/24"``) while keeping the
    rest of private space refused.
    """

    def __init__(self, *, allow_private: bool, allow_networks: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        self._allow_networks = tuple(
            ipaddress.ip_network(net, strict=False) for net in allow_networks
        )

    def refusal(self, ip: str) -> str | None:
        """Why ``ip`` is refused (a category, or ``"not_an_ip"``), or ``None``."""
        addr = parse_ip(ip)
        if addr is None:
            return "not_an_ip"
        category = classify_ip(addr)
        if category is None or category in NEVER_PEER:
            return category
        if self.allow_private:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id:
            addr = ipaddress.IPv6Address(int(addr))  # drop the zone for network tests
        if any(addr.version == net.version and addr in net for net in self._allow_networks):
            return None
        return category

    def is_allowed_ip(self, ip: str) -> bool:
        return self.refusal(ip) is None

    def check_url(self, url: str) -> None:
        """Raise :class:`BlockedAddress` unless ``url`` may be requested.

        Host names are not resolved here; :class:`GuardedResolver` checks them.
        """
        try:
            parsed = URL(url)
            netloc = urlsplit(url).netloc
        except ValueError as exc:
            raise BlockedAddress(url, "bad_url", str(exc)) from exc
        if parsed.scheme.lower() not in ALLOWED_SCHEMES:
            raise BlockedAddress(url, "bad_scheme", f"scheme {parsed.scheme!r}")
        host = parsed.raw_host
        if not host:
            raise BlockedAddress(url, "missing_host")
        # Both parsers must agree there is no userinfo (no parser-differential tricks).
        if parsed.raw_user is not None or parsed.raw_password is not None or "@" in netloc:
            raise BlockedAddress(url, "userinfo")
        addr = parse_ip(host)
        if addr is None:
            last_label = host.rstrip(".").rsplit(".", 1)[-1]
            if _NUMERIC_LABEL.match(last_label):
                raise BlockedAddress(url, "non_canonical_ip", f"host {host!r}")
            return
        why = self.refusal(host)
        if why is not None:
            raise BlockedAddress(url, "blocked_ip", f"{why} address {host}")


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's ``ThreadedResolver`` and drops refused answers.

    Raises :class:`BlockedAddress` when no answer is left.  Needs a running loop.
    """

    def __init__(self, guard: AddressGuard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner if inner is not None else ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [answer for answer in answers if self._guard.is_allowed_ip(answer["host"])]
        if not allowed:
            refused = ", ".join(sorted({answer["host"] for answer in answers}))
            raise BlockedAddress(host, "blocked_ip", f"{host} resolves to {refused}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@functools.lru_cache(maxsize=4096)
def normalize_domain(domain: str) -> str:
    """Lower-case ASCII (punycode) form of a host, without port, brackets, trailing dot
    or a leading ``*.`` wildcard.  Memoised: every inbox request asks it several times."""
    host = domain.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
        if port.isdigit() or not port:
            host = name
    host = host.removeprefix("*.").strip(".")
    addr = parse_ip(host)
    if addr is not None:
        return str(addr)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # keep the Unicode form; it can only match an identical entry
    return host


class DomainBlocks:
    """Blocked domains; a block covers the domain and all its subdomains.

    IP literals are matched exactly.  The store fills it from the database.
    """

    def __init__(self, domains: Iterable[str] = ()) -> None:
        self._domains: frozenset[str] = frozenset()
        # Bumped by every change made here, so that a reload which read the database
        # before such a change cannot undo it when it lands after it.
        self.version = 0
        self.replace(domains)

    def replace(self, domains: Iterable[str], *, read_at: int | None = None) -> bool:
        """Take the list read from the database; False (ignored) if it is stale.

        ``read_at`` is the ``version`` seen before the read: a change made here
        since then is newer than what was read (and it notified the reloads
        that will bring it back from the database).
        """
        if read_at is not None and read_at != self.version:
            return False
        self._domains = frozenset(d for d in map(normalize_domain, domains) if d)
        return True

    def add(self, domain: str) -> None:
        host = normalize_domain(domain)
        if host:
            self._domains = self._domains | {host}
            self.version += 1

    def remove(self, domain: str) -> None:
        self._domains = self._domains - {normalize_domain(domain)}
        self.version += 1

    def is_blocked(self, host: str) -> bool:
        if not self._domains:
            return False
        name = normalize_domain(host)
        if not name:
            return False
        if parse_ip(name) is not None:
            return name in self._domains
        labels = name.split(".")
        return any(".".join(labels[i:]) in self._domains for i in range(len(labels)))

    def __len__(self) -> int:
        return len(self._domains)

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and self.is_blocked(host)
