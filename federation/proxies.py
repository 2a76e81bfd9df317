"""Who is the client?  Forwarding headers count only from the proxies we were told of.

``--trusted-proxies CIDR,...`` (``COOPFED_TRUSTED_PROXIES``, default none) lists the
reverse proxies in front of the node.  A request from one of them is attributed to
the rightmost ``X-Forwarded-For`` hop that is not itself a trusted proxy; any other
peer is itself, whatever headers it sends (so rotating ``X-Forwarded-For`` cannot
defeat a per-client limiter).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ADDRESS = 64


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"127.0.0.1/32, 10.0.0.0/8"`` as networks; ValueError names a bad entry."""
    networks: list[Network] = []
    for part in text.replace(" ", ",").split(","):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"{part!r} is not an address or CIDR network") from exc
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(remote: str | None, trusted: Iterable[Network]) -> bool:
    address = _address(remote or "")
    return address is not None and any(address in network for network in trusted)


def client_address(
    remote: str | None, headers: Mapping[str, str], trusted: Sequence[Network]
) -> str:
    """The client's address: the peer, or behind trusted proxies the hop they saw."""
    peer = remote or ""
    if not is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            return hop[:MAX_ADDRESS]
    return (hops[0] if hops else peer)[:MAX_ADDRESS]
