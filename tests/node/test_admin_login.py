"""The admin login (/admin/login): password hashing, sessions and their cookies, token
logins, the login rate limit, the password command, and CSRF refusals that change nothing.
"""

from __future__ import annotations

import hashlib

from admin.auth import LIMITER, set_password
from admin.routes import ADMIN_APP
from federation.credentials import client_address, hash_password, verify_password
from federation.proxies import parse_networks
from outbox.c2s import issue_token
from tests.support.adminflow import (
    OFFER_FORM,
    PASSWORD,
    AdminClient,
    logged_in,
    our_proposals,
    session_rows,
)
from tests.support.cli import coopfed
from tests.support.nodes import NodeFactory, RunningNode


def test_password_hash_is_salted_scrypt() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$") and second != first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, None)
    assert not verify_password(PASSWORD, "scrypt$x$y")


def test_client_address_behind_a_local_proxy() -> None:
    # A direct public client is itself; a trusted proxy's appended hop is the client
    local = parse_networks("127.0.0.1/32")
    forwarded = {"X-Forwarded-For": "10.0.0.1"}
    assert client_address("93.184.216.34", forwarded, local) == "93.184.216.34"
    forwarded = {"X-Forwarded-For": "192.0.2.77, 198.51.100.1"}
    assert client_address("127.0.0.1", forwarded, local) == "198.51.100.1"
    assert client_address("127.0.0.1", forwarded, ()) == "127.0.0.1"  # no proxy configured
    assert client_address("127.0.0.1", {}, local) == "127.0.0.1"


# -- login, sessions, logout ---------------------------------------------------------


async def test_password_login_session_cookie_and_logout(node: RunningNode) -> None:
    await set_password(node.ctx, await node.ctx.coop_actor(), PASSWORD)
    client = AdminClient(node.base_url)
    try:
        # Given no session, the admin page sends the browser to the login form
        page = await client.get("/admin")
        assert (page.status, page.location) == (303, "/admin/login")
        form = await client.get("/admin/login")
        assert form.status == 200 and "Admin login" in form.visible
        assert "No admin password is set yet" not in form.visible
        # When the admin logs in with the password
        page = await client.post(
            "/admin/login", {"csrf": form.csrf, "password": PASSWORD, "token": ""}
        )
        # Then a session cookie is set: HttpOnly, SameSite=Strict, /admin, 12 h, not Secure
        assert (page.status, page.location) == (303, "/admin")
        cookie = next(
            v for v in page.headers.getall("Set-Cookie") if v.startswith("coopfed_admin=")
        )
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path", "max-age", "samesite"} <= attributes
        assert "secure" not in attributes
        assert "Path=/admin" in cookie and "Max-Age=43200" in cookie
        assert "SameSite=Strict" in cookie
        # And only the cookie's SHA-256 is stored
        value = client.cookie("coopfed_admin")
        assert value is not None
        stored = await node.ctx.store.pool.fetchval("SELECT id_hash FROM admin_sessions")
        assert stored == hashlib.sha256(value.encode()).hexdigest() != value
        # And the dashboard shows the coop, with no-store and a strict CSP
        home = await client.dashboard()
        assert home.status == 200
        assert f"@coop@{node.ctx.urls.domain}" in home.visible
        assert "No pending follow requests." in home.visible
        assert home.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
        old_csrf = home.csrf

        # When the admin logs out
        page = await client.post("/admin/logout", {"csrf": old_csrf})
        # Then the session is gone: the old cookie opens nothing, its forms do nothing
        assert (page.status, page.location) == (303, "/admin/login")
        assert await session_rows(node) == 0
        client.http.cookie_jar.update_cookies({"coopfed_admin": value})
        page = await client.get("/admin")
        assert (page.status, page.location) == (303, "/admin/login")
        page = await client.post("/admin/proposals", {"csrf": old_csrf, **OFFER_FORM})
        assert page.status == 403 and "Your session has ended" in page.visible
        assert await our_proposals(node) == []
    finally:
        await client.close()


async def test_wrong_password_is_401_and_opens_no_session(node: RunningNode) -> None:
    client = AdminClient(node.base_url)
    try:
        # Given no password set yet, the form says how to set one
        form = await client.get("/admin/login")
        assert "No admin password is set yet Set one on the server" in form.visible
        assert "coopfed password" in form.visible and "--password-stdin" in form.visible
        # And it names the coop the admin logs into
        coop = await node.ctx.coop_actor()
        assert f"{coop.name}: admin login @coop@{node.ctx.urls.domain}" in form.visible
        # When someone tries a password that is not set
        page = await client.login(password=PASSWORD)
        assert page.status == 401 and "Wrong password or token." in page.visible
        # And after it is set, a wrong one
        await set_password(node.ctx, await node.ctx.coop_actor(), PASSWORD)
        page = await client.login(password="not the password")
        # Then the login page comes back with 401, and no session exists
        assert page.status == 401 and "Wrong password or token." in page.visible
        assert client.cookie("coopfed_admin") is None
        assert await session_rows(node) == 0
        # And a login POST without the form's token is refused before any check
        page = await client.post("/admin/login", {"password": PASSWORD})
        assert page.status == 403 and await session_rows(node) == 0
    finally:
        await client.close()


async def test_token_login_ends_when_the_token_is_revoked(node: RunningNode) -> None:
    coop = await node.ctx.coop_actor()
    token_id, token = await issue_token(node.ctx, coop, "laptop")
    client = AdminClient(node.base_url)
    try:
        # When the admin logs in with an API token
        page = await client.login(token=token)
        assert (page.status, page.location) == (303, "/admin")
        assert (await client.dashboard()).status == 200
        # And the token is revoked
        assert await node.ctx.store.revoke_token(token_id)
        # Then the session opened with it ends too
        page = await client.get("/admin")
        assert (page.status, page.location) == (303, "/admin/login")
        assert (await client.login(token=token)).status == 401
    finally:
        await client.close()


async def test_new_password_ends_password_sessions(node: RunningNode) -> None:
    client = await logged_in(node)
    try:
        await set_password(node.ctx, await node.ctx.coop_actor(), "another long password")
        page = await client.get("/admin")
        assert (page.status, page.location) == (303, "/admin/login")
        assert (await client.login(password=PASSWORD)).status == 401
        assert (await client.login(password="another long password")).status == 303
    finally:
        await client.close()


async def test_login_rate_limit_per_client(node: RunningNode) -> None:
    await set_password(node.ctx, await node.ctx.coop_actor(), PASSWORD)
    now = [1000.0]
    assert node.app is not None
    node.app[ADMIN_APP][LIMITER].clock = lambda: now[0]
    client = AdminClient(node.base_url)
    try:
        # Given 10 failed logins from one address
        for _ in range(10):
            assert (await client.login(password="guess")).status == 401
        # Then the 11th attempt is refused, even with the right password
        page = await client.login(password=PASSWORD)
        assert page.status == 429 and "Too many failed logins" in page.visible
        assert page.headers["Retry-After"] == "601"
        # And ten minutes later the right password works again
        now[0] += 601
        assert (await client.login(password=PASSWORD)).status == 303
    finally:
        await client.close()


async def test_https_origin_makes_cookies_secure(nodes: NodeFactory) -> None:
    node = await nodes("s", origin="https://coop.example")
    client = AdminClient(f"http://127.0.0.1:{node.settings.port}")
    try:
        page = await client.get("/admin/login")
        cookie = page.headers["Set-Cookie"]
        assert cookie.startswith("coopfed_login=") and "; Secure" in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        await client.close()


async def test_coopfed_password_command(node: RunningNode) -> None:
    # When the admin sets the password with the CLI (read from stdin)
    too_short = await coopfed(node, "password", "--stdin", stdin="short\n")
    assert too_short.code == 1 and "at least 8 characters" in too_short.err
    result = await coopfed(node, "password", "--stdin", stdin=PASSWORD + "\n")
    assert result.code == 0, result.err
    assert f"log in at {node.base_url}/admin" in result.out
    # Then the browser logs in with it
    client = AdminClient(node.base_url)
    try:
        assert (await client.login(password=PASSWORD)).status == 303
    finally:
        await client.close()


# -- CSRF -----------------------------------------------------------------------------


async def test_post_without_or_with_wrong_csrf_is_403_and_changes_nothing(
    node: RunningNode,
) -> None:
    client = await logged_in(node)
    try:
        for token in (None, "", "forged-token"):
            data = dict(OFFER_FORM) if token is None else {"csrf": token, **OFFER_FORM}
            page = await client.post("/admin/proposals", data)
            assert page.status == 403, token
            assert "did not carry a valid security token" in page.visible
        page = await client.post("/admin/blocks", {"csrf": "nope", "domain": "spam.example"})
        assert page.status == 403
        assert await our_proposals(node) == []
        assert await node.ctx.store.list_domain_blocks() == []
        # And logging out needs the token too
        assert (await client.post("/admin/logout", {"csrf": "nope"})).status == 403
        assert await session_rows(node) == 1
    finally:
        await client.close()


# -- proposals ------------------------------------------------------------------------
