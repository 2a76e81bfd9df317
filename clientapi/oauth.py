"""OAuth 2 as Mastodon apps speak it: app registration, the authorization code
(with PKCE, S256 or plain, and the out-of-band redirect), the password and
client_credentials grants, revocation, and the server metadata document.

The member logs in on our own page (``GET /oauth/authorize``) with the
username and password the coop admin gave it; no cookie is ever set.  Client
secrets, codes and tokens are stored as SHA-256 only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from aiohttp import web

from clientapi.common import MastoError, Params, endpoint, read_params
from federation.context import NODE, NodeContext
from federation.credentials import LoginLimiter, hash_token, request_client
from federation.errors import json_response
from federation.ratelimit import RateLimiter
from federation.store import LocalActor, OAuthApp, OAuthToken
from outbox.members import check_login

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_LIFETIME = timedelta(minutes=10)
INVALID_TOKEN = "The access token is invalid"
READ = "accounts blocks bookmarks favourites filters follows lists mutes notifications search "
READ += "statuses"
WRITE = "accounts blocks bookmarks conversations favourites filters follows lists media mutes "
WRITE += "notifications reports statuses"
FOLLOW_SCOPES = frozenset(
    {"read:blocks", "read:follows", "read:mutes", "write:blocks", "write:follows", "write:mutes"}
)
TOP_SCOPES = ("read", "write", "follow", "push", "profile")
SCOPES = frozenset(TOP_SCOPES) | {f"read:{s}" for s in READ.split()}
SCOPES |= {f"write:{s}" for s in WRITE.split()}
GRANTS = ("authorization_code", "password", "client_credentials")
VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
BAD_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob"})

LOGINS = web.AppKey("clientapi_logins", LoginLimiter)
REGISTRATIONS = web.AppKey("clientapi_registrations", RateLimiter)


# -- scopes and tokens ---------------------------------------------------------------


def parse_scopes(text: str | None, *, default: str = "read") -> list[str]:
    scopes = list(dict.fromkeys((text or "").replace("+", " ").split())) or [default]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise MastoError(422, f"Validation failed: unknown scope {unknown[0]!r}")
    return scopes


def scope_allows(granted: Sequence[str], required: str) -> bool:
    top = required.split(":", 1)[0]
    return (
        required in granted or top in granted or ("follow" in granted and required in FOLLOW_SCOPES)
    )


@dataclass(frozen=True, slots=True)
class Auth:
    token: OAuthToken
    actor: LocalActor | None

    @property
    def member(self) -> LocalActor:
        if self.actor is None:
            raise MastoError(422, "This method requires an authenticated user")
        return self.actor


def _unauthorized() -> MastoError:
    return MastoError(
        401,
        INVALID_TOKEN,
        headers={"WWW-Authenticate": 'Bearer realm="coopfed", error="invalid_token"'},
    )


async def authenticate(request: web.Request, scope: str | None, *, user: bool = True) -> Auth:
    """The token's grant; 401 when it is missing, unknown or revoked, 403 outside its scopes."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized()
    return await authenticate_token(request.app[NODE], token.strip(), scope, user=user)


async def authenticate_token(
    node: NodeContext, token: str, scope: str | None, *, user: bool = True
) -> Auth:
    """``authenticate`` for a token given another way (the streaming API's query)."""
    if not token:
        raise _unauthorized()
    token_hash = hash_token(token)
    if node.c2s_limiter is not None:
        # The same per-token budget as the C2S outbox, before any database work.
        wait = node.c2s_limiter.take(f"oauth:{token_hash}")
        if wait:
            raise MastoError(
                429, "Too many requests", headers={"Retry-After": str(max(1, round(wait)))}
            )
    found = await node.store.find_oauth_token(token_hash)
    if found is None:
        raise _unauthorized()
    actor = None
    if found.local_actor_id is not None:
        actor = await node.store.get_local_actor_by_id(found.local_actor_id)
        if actor is None or actor.kind != "member" or actor.deleted_at or actor.suspended_at:
            raise _unauthorized()
    if scope is not None and not scope_allows(found.scopes, scope):
        raise MastoError(403, "This action is outside the authorized scopes")
    auth = Auth(found, actor)
    if user:
        auth.member  # noqa: B018 (raises 422 for an app token)
    return auth


async def optional_auth(request: web.Request, scope: str) -> Auth | None:
    """None for an anonymous request; a request with a bad token still gets 401."""
    if not request.headers.get("Authorization"):
        return None
    return await authenticate(request, scope, user=False)


# -- apps ----------------------------------------------------------------------------


def check_redirect_uris(raw: list[str]) -> list[str]:
    uris = [u.strip() for text in raw for u in text.split("\n") if u.strip()]
    if not uris:
        raise MastoError(422, "Validation failed: Redirect URI can't be blank")
    for uri in uris:
        parts = urlsplit(uri)
        if uri != OOB and (
            not parts.scheme or parts.scheme.lower() in BAD_SCHEMES or parts.fragment
        ):
            raise MastoError(422, "Validation failed: Redirect URI must be an absolute URI.")
    return list(dict.fromkeys(uris))[:10]


def app_json(app: OAuthApp, *, secret: str | None = None) -> dict[str, object]:
    answer: dict[str, object] = {
        "id": str(app.id),
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes,
        "redirect_uri": "\n".join(app.redirect_uris),
        "redirect_uris": app.redirect_uris,
        "vapid_key": "",
    }
    if secret is not None:
        answer |= {
            "client_id": app.client_id,
            "client_secret": secret,
            "client_secret_expires_at": 0,
        }
    return answer


@endpoint
async def create_app(request: web.Request) -> web.Response:
    node = request.app[NODE]
    wait = request.app[REGISTRATIONS].take(request_client(request))
    if wait:
        raise MastoError(429, "Too many requests", headers={"Retry-After": str(int(wait) + 1)})
    params = await read_params(request)
    name = params.text("client_name").strip()
    if not name or len(name) > 100:
        raise MastoError(422, "Validation failed: Application name must be 1 to 100 characters")
    website = params.text("website").strip() or None
    if website and urlsplit(website).scheme not in ("http", "https"):
        raise MastoError(422, "Validation failed: Application website is not a valid URL")
    uris = check_redirect_uris(params.many("redirect_uris"))
    scopes = parse_scopes(params.get("scopes"))
    secret = secrets.token_urlsafe(32)
    app = await node.store.create_oauth_app(
        client_id=secrets.token_urlsafe(32),
        secret_hash=hash_token(secret),
        name=name,
        website=website,
        redirect_uris=uris,
        scopes=scopes,
    )
    return json_response(app_json(app, secret=secret))


@endpoint
async def verify_app(request: web.Request) -> web.Response:
    auth = await authenticate(request, None, user=False)
    app = await request.app[NODE].store.get_oauth_app_by_id(auth.token.app_id)
    if app is None:
        raise _unauthorized()
    return json_response(app_json(app))


# -- token and revoke ------------------------------------------------------------------


def oauth_error(status: int, error: str, description: str) -> MastoError:
    return MastoError(status, error, error_description=description)


async def client_of(
    node: NodeContext, request: web.Request, params: Params
) -> tuple[OAuthApp, bool]:
    """The client and whether its secret was given and right (body or HTTP Basic)."""
    client_id, secret = params.text("client_id"), params.get("client_secret")
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise oauth_error(401, "invalid_client", "Malformed client credentials.") from exc
    app = await node.store.get_oauth_app(client_id) if client_id else None
    if app is None:
        raise oauth_error(401, "invalid_client", "Client authentication failed.")
    if secret is None:
        return app, False
    if not hmac.compare_digest(hash_token(secret), app.secret_hash):
        raise oauth_error(401, "invalid_client", "Client authentication failed.")
    return app, True


def pkce_matches(challenge: str, method: str | None, verifier: str) -> bool:
    if not VERIFIER_RE.match(verifier):
        return False
    if method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        verifier = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return hmac.compare_digest(verifier.encode(), challenge.encode())


@endpoint
async def token(request: web.Request) -> web.Response:
    node = request.app[NODE]
    params = await read_params(request)
    grant_type = params.text("grant_type")
    if grant_type not in GRANTS:
        raise oauth_error(400, "unsupported_grant_type", f"grant_type must be one of {GRANTS}.")
    app, authenticated = await client_of(node, request, params)
    actor_id: int | None = None
    if grant_type == "authorization_code":
        code = await node.store.use_oauth_code(
            hash_token(params.text("code")), app.id, node.clock()
        )
        if code is None:
            raise oauth_error(400, "invalid_grant", "The code is unknown, used or expired.")
        if params.text("redirect_uri", code.redirect_uri) != code.redirect_uri:
            raise oauth_error(400, "invalid_grant", "The redirect URI differs from the request's.")
        verifier = params.text("code_verifier")
        if code.challenge is not None:
            if not pkce_matches(code.challenge, code.challenge_method, verifier):
                raise oauth_error(400, "invalid_grant", "The code verifier does not match.")
        elif not authenticated:
            raise oauth_error(401, "invalid_client", "Client authentication failed.")
        scopes, actor_id = code.scopes, code.local_actor_id
    else:
        if not authenticated:
            raise oauth_error(401, "invalid_client", "Client authentication failed.")
        try:
            scopes = parse_scopes(params.get("scope"))
        except MastoError as exc:
            raise oauth_error(400, "invalid_scope", exc.error) from exc
        if not all(scope_allows(app.scopes, s) for s in scopes):
            raise oauth_error(400, "invalid_scope", "The scope is more than the app registered.")
        if grant_type == "password":
            actor_id = await _password_login(request, params)
    access = secrets.token_urlsafe(32)
    await node.store.create_oauth_token(
        token_hash=hash_token(access), app_id=app.id, local_actor_id=actor_id, scopes=scopes
    )
    body = {
        "access_token": access,
        "token_type": "Bearer",
        "scope": " ".join(scopes),
        "created_at": int(node.clock().timestamp()),
    }
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def _password_login(request: web.Request, params: Params) -> int:
    limiter = request.app[LOGINS]
    client = request_client(request)
    wait = limiter.retry_after(client)
    if wait:
        raise MastoError(429, "Too many failed logins", headers={"Retry-After": str(wait)})
    member = await check_login(request.app[NODE], params.text("username"), params.text("password"))
    if member is None:
        limiter.fail(client)
        raise oauth_error(400, "invalid_grant", "Wrong username or password.")
    return member.id


@endpoint
async def revoke(request: web.Request) -> web.Response:
    node = request.app[NODE]
    params = await read_params(request)
    app, authenticated = await client_of(node, request, params)
    if not authenticated:
        raise oauth_error(401, "invalid_client", "Client authentication failed.")
    outcome = await node.store.revoke_oauth_token(hash_token(params.text("token")), app.id)
    if outcome == "other_app":
        raise oauth_error(403, "unauthorized_client", "You are not authorized to revoke this token")
    return json_response({})


async def server_metadata(request: web.Request) -> web.Response:
    base = request.app[NODE].urls.base
    return json_response(
        {
            "issuer": f"{base}/",
            "service_documentation": "https://docs.joinmastodon.org/",
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "app_registration_endpoint": f"{base}/api/v1/apps",
            "scopes_supported": sorted(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "grant_types_supported": list(GRANTS),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
        }
    )
