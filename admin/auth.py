"""Who may use the admin pages: sessions, CSRF tokens, login limits, and the admin
app's middleware that checks them before any page or action runs.

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
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from admin.pages import login_page, message_page
from admin.uploads import BodyTooLarge, Upload, read_form, read_posted
from federation.context import NODE, NodeContext
from federation.credentials import (
    LoginLimiter,
    check_new_password,
    hash_password,
    hash_token,
    request_client,
    verify_password,
)
from federation.errors import Handler
from federation.store import AdminSession, LocalActor

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


async def set_password(node: NodeContext, actor: LocalActor, password: str) -> None:
    """Store the admin password of ``actor``; its password sessions end."""
    problem = check_new_password(password)
    if problem is not None:
        raise ValueError(problem)
    await node.store.set_admin_password(actor.id, await asyncio.to_thread(hash_password, password))


# -- login limits --------------------------------------------------------------------


LIMITER = web.AppKey("admin_login_limiter", LoginLimiter)


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
    node = request.config_dict[NODE]
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


async def _login_form(node: NodeContext, error: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(32)
    coop = await node.coop_actor()
    has_password = await node.store.get_admin_password(coop.id) is not None
    handle = f"@{coop.username}@{node.urls.domain}"
    response = html_page(login_page(token, error, has_password, coop.name, handle), status)
    set_cookie(response, node, LOGIN_COOKIE, token, LOGIN_FORM_LIFETIME)
    return response


async def handle_login_form(request: web.Request) -> web.Response:
    if await current_admin(request) is not None:
        raise see_other("/admin")
    return await _login_form(request.config_dict[NODE])


async def handle_login(request: web.Request) -> web.Response:
    node = request.config_dict[NODE]
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
    node = request.config_dict[NODE]
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


# -- the admin app's middleware ----------------------------------------------------

ADMIN = web.RequestKey("admin", Admin)  # the logged-in admin
FORM = web.RequestKey("admin_form", dict[str, str])  # the posted form, its CSRF token checked
FILES = web.RequestKey("admin_files", dict[str, Upload])  # the files of a multipart form
# Pages anyone may ask for: the login form, and logging out (which checks its own token).
PUBLIC = frozenset({"/admin/", "/admin/login", "/admin/logout"})
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    # Remote avatars (followers, follows) are shown: https images, as on the public pages.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self' https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every admin answer, redirects included, is uncached and never framed."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A page needs a session (else the login form); a POST also the session's CSRF token."""
    if request.path in PUBLIC:
        return await handler(request)
    admin = await current_admin(request)
    if admin is None:
        if request.method == "GET":
            raise see_other("/admin/login")
        text = "Your session has ended. Log in again."
        return html_page(message_page("Logged out", text, "/admin/login", "Log in"), 403)
    request[ADMIN] = admin
    if request.method == "POST":
        try:
            form, files = await read_posted(request)
        except BodyTooLarge:
            text = "What was sent is larger than any admin form takes. Nothing was saved."
            return html_page(message_page("Too large", text), 413, {"Connection": "close"})
        if not same_token(form.get("csrf"), admin.session.csrf):
            return forbidden()
        request[FORM] = form
        request[FILES] = files
    return await handler(request)
