"""The authorization page: a member signs in (username and password) to let an
app act for it, and gets a code (redirected to the app, or shown for the
out-of-band redirect).  PKCE (S256 or plain) is checked here when the code is
asked for and at the token endpoint when it is spent.  No cookie is ever set;
failed logins are limited per client address.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from clientapi import pages
from clientapi.common import MastoError, Params, read_params
from clientapi.oauth import CODE_LIFETIME, LOGINS, OOB, VERIFIER_RE, parse_scopes, scope_allows
from federation.context import NODE, NodeContext
from federation.credentials import hash_token, request_client
from federation.store import OAuthApp
from outbox.members import check_login


@dataclass(frozen=True, slots=True)
class Grant:
    """A checked authorization request."""

    app: OAuthApp
    redirect_uri: str
    scopes: list[str]
    state: str
    challenge: str | None
    method: str | None

    def fields(self) -> dict[str, str]:
        return {
            "client_id": self.app.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": " ".join(self.scopes),
            "state": self.state,
            "code_challenge": self.challenge or "",
            "code_challenge_method": self.method or "",
        }


def redirect_with(uri: str, **values: str) -> str:
    query = urlencode({k: v for k, v in values.items() if v})
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{query}"


async def check_grant(node: NodeContext, params: Params) -> Grant:
    """Check client, redirect URI, scopes and PKCE; pages.OAuthPageError when they are wrong."""
    app = await node.store.get_oauth_app(params.text("client_id"))
    if app is None:
        raise pages.OAuthPageError("This application is unknown to this server.")
    redirect_uri = params.text("redirect_uri") or (
        app.redirect_uris[0] if app.redirect_uris else ""
    )
    if redirect_uri not in app.redirect_uris:
        raise pages.OAuthPageError("The redirect URI is not one this application registered.")

    def fail(error: str, description: str) -> pages.OAuthPageError:
        if redirect_uri == OOB:
            return pages.OAuthPageError(description)
        target = redirect_with(
            redirect_uri, error=error, error_description=description, state=params.text("state")
        )
        return pages.OAuthPageError(description, redirect=target)

    if params.text("response_type", "code") != "code":
        raise fail("unsupported_response_type", "Only response_type=code is supported.")
    try:
        scopes = parse_scopes(params.get("scope"))
    except MastoError as exc:
        raise fail("invalid_scope", exc.error) from exc
    if not all(scope_allows(app.scopes, s) for s in scopes):
        raise fail("invalid_scope", "The requested scope is more than the application registered.")
    challenge = params.text("code_challenge") or None
    method = (params.text("code_challenge_method") or "plain") if challenge else None
    if method not in (None, "S256", "plain"):
        raise fail("invalid_request", "code_challenge_method must be S256 or plain.")
    if challenge is not None and not VERIFIER_RE.match(challenge):
        raise fail("invalid_request", "code_challenge must be 43 to 128 URL-safe characters.")
    return Grant(app, redirect_uri, scopes, params.text("state"), challenge, method)


async def _coop_name(node: NodeContext) -> str:
    """The coop whose node this is, as its members know it."""
    coop = await node.coop_actor()
    return coop.name or coop.username


async def authorize_form(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        grant = await check_grant(node, await read_params(request))
    except pages.OAuthPageError as exc:
        return exc.response()
    return pages.login_page(
        grant.app, grant.fields(), domain=node.urls.domain, coop_name=await _coop_name(node)
    )


async def authorize(request: web.Request) -> web.Response:
    node = request.app[NODE]
    params = await read_params(request)
    try:
        grant = await check_grant(node, params)
    except pages.OAuthPageError as exc:
        return exc.response()
    limiter = request.app[LOGINS]
    client = request_client(request)
    wait = limiter.retry_after(client)
    if wait:
        return pages.login_page(
            grant.app, grant.fields(), domain=node.urls.domain,
            coop_name=await _coop_name(node), status=429,
            error=f"Too many failed logins; try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )  # fmt: skip
    member = await check_login(node, params.text("username"), params.text("password"))
    if member is None:
        limiter.fail(client)
        return pages.login_page(
            grant.app, grant.fields(), domain=node.urls.domain,
            coop_name=await _coop_name(node), status=403,
            error="Wrong username or password.", username=params.text("username"),
        )  # fmt: skip
    code = secrets.token_urlsafe(32)
    await node.store.create_oauth_code(
        code_hash=hash_token(code),
        app_id=grant.app.id,
        local_actor_id=member.id,
        redirect_uri=grant.redirect_uri,
        scopes=grant.scopes,
        challenge=grant.challenge,
        challenge_method=grant.method,
        expires_at=node.clock() + CODE_LIFETIME,
    )
    if grant.redirect_uri == OOB:
        return pages.code_page(grant.app, code)
    raise web.HTTPFound(redirect_with(grant.redirect_uri, code=code, state=grant.state))
