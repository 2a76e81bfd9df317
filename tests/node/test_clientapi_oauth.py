"""OAuth 2 of the client API: app registration, the authorization page, PKCE,
the token and revoke endpoints, and the failures an attacker or a broken app
meets.  Plain aiohttp, the browser's and the app's requests made by hand."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from clientapi.oauth import pkce_matches, scope_allows
from tests.support.mastoflow import PASSWORD, add_member, api, password_token, register_app
from tests.support.nodes import RunningNode

CALLBACK = "https://app.example/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636, appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def authorize_fields(app: dict[str, Any], **extra: str) -> dict[str, str]:
    return {
        "client_id": app["client_id"],
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "read write",
        "state": "xyz",
        **extra,
    }


async def sign_in(
    http: aiohttp.ClientSession,
    node: RunningNode,
    fields: dict[str, str],
    password: str = PASSWORD,
) -> aiohttp.ClientResponse:
    """The browser: POST the login form (its hidden fields and the member's password)."""
    return await http.post(
        f"{node.base_url}/oauth/authorize",
        data=fields | {"username": "alice", "password": password},
        allow_redirects=False,
    )


async def code_for(http: aiohttp.ClientSession, node: RunningNode, fields: dict[str, str]) -> str:
    async with await sign_in(http, node, fields) as answer:
        assert answer.status == 302, await answer.text()
        location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    assert (location.netloc, query["state"]) == ("app.example", ["xyz"])
    return query["code"][0]


async def exchange(
    http: aiohttp.ClientSession, node: RunningNode, **form: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{node.base_url}/oauth/token", data=form) as answer:
        return answer.status, await answer.json()


async def test_app_registration_and_server_metadata(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    app = await register_app(http, node, redirect_uris=f"{CALLBACK}\nurn:ietf:wg:oauth:2.0:oob")
    assert set(app) == {
        "id", "name", "website", "scopes", "redirect_uri", "redirect_uris", "vapid_key",
        "client_id", "client_secret", "client_secret_expires_at",
    }  # fmt: skip
    assert app["redirect_uris"] == [CALLBACK, "urn:ietf:wg:oauth:2.0:oob"]
    assert app["scopes"] == ["read", "write", "follow", "push"]
    # Bad registrations are refused with Mastodon's 422
    for form in (
        {"client_name": "x"},
        {"client_name": "x", "redirect_uris": "javascript:alert(1)"},
        {"client_name": "x", "redirect_uris": CALLBACK, "scopes": "read admin:write"},
        {"client_name": "", "redirect_uris": CALLBACK},
    ):
        status, body, _ = await api(http, node, "POST", "/api/v1/apps", data=form)
        assert status == 422 and body["error"].startswith("Validation failed"), form
    status, meta, headers = await api(http, node, "GET", "/.well-known/oauth-authorization-server")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert meta["token_endpoint"] == f"{node.base_url}/oauth/token"
    assert meta["grant_types_supported"] == ["authorization_code", "password", "client_credentials"]
    assert meta["code_challenge_methods_supported"] == ["S256", "plain"]
    # And web apps on other origins may call the API (CORS preflight)
    async with http.options(f"{node.base_url}/api/v1/timelines/home") as preflight:
        assert preflight.status == 204
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]


async def test_authorization_code_with_pkce_s256(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    await add_member(node, "alice")
    app = await register_app(http, node, redirect_uris=CALLBACK)
    fields = authorize_fields(app, code_challenge=CHALLENGE, code_challenge_method="S256")
    # The authorization page shows the app and a login form carrying the request
    async with http.get(f"{node.base_url}/oauth/authorize", params=fields) as page:
        text = await page.text()
        assert page.status == 200 and page.headers["X-Frame-Options"] == "DENY"
    assert '<span class="app">Test App</span>' in text and 'name="password"' in text
    # naming the coop, and what "read write" lets the app do, in plain words
    coop = await node.ctx.coop_actor()
    assert f"<h1>Sign in to {coop.name}</h1>" in text
    assert "<li>read everything in your account (" in text and "<li>act as you (" in text
    assert f'name="code_challenge" value="{CHALLENGE}"' in text
    # A wrong password gets the form again, and no code
    async with await sign_in(http, node, fields, password="wrong password") as answer:
        assert answer.status == 403 and "Wrong username or password." in await answer.text()
    # Without the verifier, the code is refused, and spent
    code = await code_for(http, node, fields)
    base = {"grant_type": "authorization_code", "client_id": app["client_id"]}
    status, body = await exchange(http, node, **base, code=code, redirect_uri=CALLBACK)
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = await exchange(
        http, node, **base, code=code, redirect_uri=CALLBACK, code_verifier=VERIFIER
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    # With a wrong verifier, refused
    code = await code_for(http, node, fields)
    status, body = await exchange(
        http, node, **base, code=code, redirect_uri=CALLBACK, code_verifier="x" * 43
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    # With the right one, a public client (no secret) gets a token with the asked scopes
    code = await code_for(http, node, fields)
    status, body = await exchange(
        http, node, **base, code=code, redirect_uri=CALLBACK, code_verifier=VERIFIER
    )
    assert (status, set(body), body["scope"]) == (
        200,
        {"access_token", "token_type", "scope", "created_at"},
        "read write",
    )
    me = await api(http, node, "GET", "/api/v1/accounts/verify_credentials", body["access_token"])
    assert (me[0], me[1]["username"]) == (200, "alice")


async def test_plain_pkce_code_reuse_and_redirect_checks(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    await add_member(node, "alice")
    app = await register_app(http, node, redirect_uris=CALLBACK)
    secret = {"client_id": app["client_id"], "client_secret": app["client_secret"]}
    plain = "p" * 50
    code = await code_for(http, node, authorize_fields(app, code_challenge=plain))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    # A plain challenge is matched as it is; the code works once
    status, _ = await exchange(http, node, **secret, **form, code_verifier=plain)
    assert status == 200
    status, body = await exchange(http, node, **secret, **form, code_verifier=plain)
    assert (status, body["error"]) == (400, "invalid_grant")
    # A code is bound to its redirect URI; without PKCE the client secret is required
    code = await code_for(http, node, authorize_fields(app))
    status, body = await exchange(
        http, node, **secret, **form | {"code": code, "redirect_uri": "https://evil.example/"}
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    code = await code_for(http, node, authorize_fields(app))
    status, body = await exchange(http, node, client_id=app["client_id"], **form | {"code": code})
    assert (status, body["error"]) == (401, "invalid_client")
    # A wrong secret is refused before anything else
    status, body = await exchange(
        http, node, client_id=app["client_id"], client_secret="nope", grant_type="password"
    )
    assert (status, body["error"]) == (401, "invalid_client")
    # The authorization page refuses an unregistered redirect, and sends scope errors back
    async with http.get(
        f"{node.base_url}/oauth/authorize",
        params=authorize_fields(app, redirect_uri="https://evil.example/"),
    ) as page:
        assert page.status == 400 and "not one this application registered" in await page.text()
    narrow = await register_app(http, node, redirect_uris=CALLBACK, scopes="read")
    async with http.get(
        f"{node.base_url}/oauth/authorize", params=authorize_fields(narrow), allow_redirects=False
    ) as page:
        assert page.status == 302
        query = parse_qs(urlsplit(page.headers["Location"]).query)
    assert (query["error"], query["state"]) == (["invalid_scope"], ["xyz"])


async def test_out_of_band_code_and_revocation(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    await add_member(node, "alice")
    app = await register_app(http, node)
    oob = "urn:ietf:wg:oauth:2.0:oob"
    fields = authorize_fields(app, redirect_uri=oob, scope="read")
    # The out-of-band redirect shows the code on a page
    async with await sign_in(http, node, fields) as answer:
        assert answer.status == 200
        found = re.search(r'id="code" readonly size="48" value="([^"]+)"', await answer.text())
    assert found is not None
    status, body = await exchange(
        http,
        node,
        grant_type="authorization_code",
        code=found[1],
        redirect_uri=oob,
        client_id=app["client_id"],
        client_secret=app["client_secret"],
    )
    assert (status, body["scope"]) == (200, "read")
    token = body["access_token"]
    # Another app cannot revoke it; its own can, after which it is refused
    other = await register_app(http, node)
    revoke = f"{node.base_url}/oauth/revoke"
    async with http.post(
        revoke,
        data={
            "client_id": other["client_id"],
            "client_secret": other["client_secret"],
            "token": token,
        },
    ) as answer:
        assert answer.status == 403
    async with http.post(
        revoke,
        data={"client_id": app["client_id"], "client_secret": app["client_secret"], "token": token},
    ) as answer:
        assert (answer.status, await answer.json()) == (200, {})
    status, body, _ = await api(http, node, "GET", "/api/v1/accounts/verify_credentials", token)
    assert (status, body) == (401, {"error": "The access token is invalid"})


async def test_failed_logins_are_limited_and_a_new_password_ends_tokens(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await add_member(node, "alice")
    app = await register_app(http, node)
    token = await password_token(http, node, app)
    form = {
        "grant_type": "password",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "username": "alice",
    }
    # Ten wrong passwords, then even the right one waits
    for _ in range(10):
        status, body = await exchange(http, node, **form, password="guess")
        assert (status, body["error"]) == (400, "invalid_grant")
    status, _ = await exchange(http, node, **form, password=PASSWORD)
    assert status == 429
    # A new password (the admin's `coopfed member password`) ends the member's tokens
    from outbox.members import set_member_password

    await set_member_password(node.ctx, alice, "another long password")
    status, _, _ = await api(http, node, "GET", "/api/v1/accounts/verify_credentials", token)
    assert status == 401


def test_scopes_and_pkce_rules() -> None:
    assert scope_allows(["read"], "read:statuses")
    assert scope_allows(["follow"], "write:follows")
    assert not scope_allows(["follow"], "write:statuses")
    assert not scope_allows(["read:accounts"], "read:statuses")
    digest = hashlib.sha256(VERIFIER.encode()).digest()
    assert base64.urlsafe_b64encode(digest).decode().rstrip("=") == CHALLENGE
    assert pkce_matches(CHALLENGE, "S256", VERIFIER)
    assert not pkce_matches(CHALLENGE, "S256", VERIFIER[:-1] + "x")
    assert not pkce_matches("short", "plain", "short")  # a verifier has 43 to 128 characters
