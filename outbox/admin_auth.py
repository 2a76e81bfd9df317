"""Who may use the admin pages: password hashes, sessions, CSRF tokens, login limits.

- The admin password (``coopfed password``) is stored as an scrypt hash
  (n=2**14, r=8, p=1, random 16-byte salt).
- A login (password, or an API token of ``coopfed token create``) opens a
  session: a random cookie whose SHA-256 is stored with the session's CSRF
  token and its expiry (12 hours).  The cookie is HttpOnly, SameSite=Strict,
  Path=/admin, and Secure when the node's origin is https.
- Every POST carries the session's CSRF token in a hidden field; the login form,
  before any session exists, carries a random token that must equal a cookie.
- Failed logins are counted per client address in memory: at most 10 per
  10 minutes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from federation.context import NODE, NodeContext
from federation.proxies import client_address
from federation.store import AdminSession, LocalActor
from outbox.admin_pages import login_page, message_page
from outbox.c2s import hash_token

log = logging.getLogger(__name__)

SESSION_COOKIE = "coopfed_admin"
LOGIN_COOKIE = "coopfed_login"
COOKIE_PATH = "/admin"
SESSION_LIFETIME = timedelta(hours=12)
LOGIN_FORM_LIFETIME = 3600
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


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


async def set_password(node: NodeContext, actor: LocalActor, password: str) -> None:
    """Store the admin password of ``actor``; its password sessions end."""
    problem = check_new_password(password)
    if problem is not None:
        raise ValueError(problem)
    await node.store.set_admin_password(actor.id, await asyncio.to_thread(hash_password, password))


# -- login limits --------------------------------------------------------------------


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


LIMITER = web.AppKey("admin_login_limiter", LoginLimiter)


def request_client(request: web.Request) -> str:
    """The client's address (behind a trusted proxy: the address it forwarded for)."""
    trusted = request.app[NODE].settings.trusted_networks
    return client_address(request.remote, request.headers, trusted)


# -- sessions ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Admin:
    """The logged-in admin of a request."""

    actor: LocalActor
    session: AdminSession


def _session_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def is_secure(node: NodeContext) -> bool:
    return node.settings.base_url.startswith("https://")


def set_cookie(
    response: web.StreamResponse, node: NodeContext, name: str, value: str, age: int
) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        max_age=age,
        httponly=True,
        samesite="Strict",
        secure=is_secure(node),
    )


def clear_cookie(response: web.StreamResponse, node: NodeContext, name: str) -> None:
    set_cookie(response, node, name, "", 0)


async def open_session(
    node: NodeContext, response: web.StreamResponse, actor_id: int, token_id: int | None
) -> None:
    """A new session for ``actor_id``; its cookie is set on ``response``."""
    cookie = secrets.token_urlsafe(32)
    now = node.clock()
    await node.store.create_admin_session(
        id_hash=_session_hash(cookie),
        local_actor_id=actor_id,
        token_id=token_id,
        csrf=secrets.token_urlsafe(32),
        now=now,
        expires_at=now + SESSION_LIFETIME,
    )
    set_cookie(response, node, SESSION_COOKIE, cookie, int(SESSION_LIFETIME.total_seconds()))


async def close_session(node: NodeContext, request: web.Request) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await node.store.delete_admin_session(_session_hash(cookie))


async def current_admin(request: web.Request) -> Admin | None:
    node = request.app[NODE]
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or len(cookie) > 200:
        return None
    session = await node.store.get_admin_session(_session_hash(cookie), node.clock())
    if session is None:
        return None
    actor = await node.store.get_local_actor_by_id(session.local_actor_id)
    return Admin(actor, session) if actor is not None else None


def same_token(given: object, expected: str | None) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def login(node: NodeContext, password: str, token: str) -> tuple[int, int | None] | None:
    """(actor id, token id) of valid credentials: an API token, else the password."""
    if token:
        found = await node.store.token_login(hash_token(token))
        return (found[1], found[0]) if found else None
    coop = await node.coop_actor()
    stored = await node.store.get_admin_password(coop.id)
    ok = await asyncio.to_thread(verify_password, password, stored)
    return (coop.id, None) if ok and stored else None


def see_other(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def html_page(
    text: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=headers)


# -- the login pages ---------------------------------------------------------------


async def read_form(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {k: v for k, v in posted.items() if isinstance(v, str)}


async def _login_form(node: NodeContext, error: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(32)
    coop = await node.coop_actor()
    has_password = await node.store.get_admin_password(coop.id) is not None
    response = html_page(login_page(token, error, has_password), status)
    set_cookie(response, node, LOGIN_COOKIE, token, LOGIN_FORM_LIFETIME)
    return response


async def handle_login_form(request: web.Request) -> web.Response:
    if await current_admin(request) is not None:
        raise see_other("/admin")
    return await _login_form(request.app[NODE])


async def handle_login(request: web.Request) -> web.Response:
    node = request.app[NODE]
    limiter = request.app[LIMITER]
    client = request_client(request)
    wait = limiter.retry_after(client)
    if wait:
        text = f"Too many failed logins from your address. Try again in {wait // 60 + 1} minutes."
        page = message_page("Too many attempts", text, "/admin/login", "Log in")
        return html_page(page, 429, {"Retry-After": str(wait)})
    form = await read_form(request)
    if not same_token(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        page = message_page(
            "Form expired", "The login form expired. Load it again.", "/admin/login", "Log in"
        )
        return html_page(page, 403)
    password, token = form.get("password", ""), form.get("token", "").strip()
    found = None
    if (password or token) and len(password) <= 1024 and len(token) <= 512:
        found = await login(node, password, token)
    if found is None:
        limiter.fail(client)
        log.info("failed admin login from %s", client)
        return await _login_form(node, "Wrong password or token.", 401)
    response = see_other("/admin")
    await open_session(node, response, found[0], found[1])
    clear_cookie(response, node, LOGIN_COOKIE)
    raise response


async def handle_logout(request: web.Request) -> web.Response:
    node = request.app[NODE]
    admin = await current_admin(request)
    form = await read_form(request)
    if admin is not None and not same_token(form.get("csrf"), admin.session.csrf):
        return forbidden()
    await close_session(node, request)
    response = see_other("/admin/login")
    clear_cookie(response, node, SESSION_COOKIE)
    raise response


def forbidden() -> web.Response:
    text = "This form did not carry a valid security token. Reload the admin page and try again."
    return html_page(message_page("Forbidden", text), 403)
