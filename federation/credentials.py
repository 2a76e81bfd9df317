"""Credentials and who presents them: password hashes, API token hashes, login
limits and the client's address.

- Passwords (the admin's, a member's) are stored as scrypt hashes
  (n=2**14, r=8, p=1, random 16-byte salt).
- API and OAuth tokens are stored as their SHA-256: a stolen database holds no
  usable token.
- Failed logins are counted per client address in memory; behind a trusted proxy
  (``--trusted-proxies``) the client is the address it forwarded for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping

from aiohttp import web

from federation.context import NODE
from federation.proxies import client_address

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# A loopback peer that forwards for someone else is a proxy, not a local client.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


# -- passwords --------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * r * (n + p + 2), dklen=32
    )


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64url), for ``verify_password``."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches; a missing or malformed hash matches nothing."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt" or int(n) > 2**20 or int(r) > 32 or int(p) > 16:
            raise ValueError(scheme)
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        _scrypt(password, b"\0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)  # same cost either way
        return False
    return hmac.compare_digest(actual, expected)


def check_new_password(password: str) -> str | None:
    """Why ``password`` cannot be the admin password, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"the password must have at most {MAX_PASSWORD} characters"
    return None


# -- tokens --------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_loopback_client(remote: str | None, headers: Mapping[str, str]) -> bool:
    """A client on this machine that came through no proxy."""
    if remote is None or any(name in headers for name in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:  # a unix socket: only local processes reach it
        return remote == "" or remote.startswith("/")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def bearer_token(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


# -- login limits and client addresses ---------------------------------------------


class LoginLimiter:
    """At most ``max_failures`` failed logins per ``window`` seconds per client."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.get(client, deque())
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            self._failures.pop(client, None)
        return times

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        times = self._recent(client)
        if len(times) < self.max_failures:
            return 0
        return max(1, int(times[0] + self.window - self.clock()) + 1)

    def fail(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= self.max_clients:
            for known in list(self._failures):
                self._recent(known)  # forget clients whose failures aged out
        times = self._recent(client)
        times.append(self.clock())
        self._failures[client] = times


def request_client(request: web.Request) -> str:
    """The client's address (behind a trusted proxy: the address it forwarded for)."""
    trusted = request.config_dict[NODE].settings.trusted_networks
    return client_address(request.remote, request.headers, trusted)
