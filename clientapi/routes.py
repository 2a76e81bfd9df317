"""The Mastodon client API's routes, and CORS for the web apps (Elk, Phanpy) that
call it from other origins.  ``coopfed/app.py`` calls ``setup_routes``."""

from __future__ import annotations

from aiohttp import web

from clientapi import (
    accounts,
    authorize,
    instance,
    media,
    notifications,
    oauth,
    polls,
    search,
    statuses,
    streaming,
    timelines,
)
from federation.credentials import LoginLimiter
from federation.ratelimit import RateLimiter

OAUTH_METADATA = "/.well-known/oauth-authorization-server"
CORS_PREFIXES = ("/api/v1/", "/api/v2/", "/oauth/token", "/oauth/revoke", OAUTH_METADATA)
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Link, X-RateLimit-Reset, X-RateLimit-Limit, "
    "X-RateLimit-Remaining, X-Request-Id, Idempotency-Key",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
    "Access-Control-Max-Age": "7200",
}


def _cors_path(path: str) -> bool:
    return path.startswith(CORS_PREFIXES)


async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
    if _cors_path(request.path) and "Access-Control-Allow-Origin" not in response.headers:
        response.headers.update(CORS_HEADERS)


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=PREFLIGHT_HEADERS)


def setup_routes(app: web.Application) -> None:
    app[oauth.LOGINS] = LoginLimiter()
    app[oauth.REGISTRATIONS] = RateLimiter(rate=0.05, burst=30)
    app.on_response_prepare.append(add_cors)
    app.cleanup_ctx.append(streaming.hub_ctx)
    app.on_shutdown.append(streaming.close_streams)
    r = app.router
    # OAuth
    r.add_get(OAUTH_METADATA, oauth.server_metadata)
    r.add_post("/api/v1/apps", oauth.create_app)
    r.add_get("/api/v1/apps/verify_credentials", oauth.verify_app)
    r.add_get("/oauth/authorize", authorize.authorize_form)
    r.add_post("/oauth/authorize", authorize.authorize)
    r.add_post("/oauth/token", oauth.token)
    r.add_post("/oauth/revoke", oauth.revoke)
    # instance and the lists coopfed does not keep
    r.add_get("/api/v1/instance", instance.instance_v1)
    r.add_get("/api/v1/instance/", instance.instance_v1)  # Mastodon.py's spelling
    r.add_get("/api/v2/instance", instance.instance_v2)
    r.add_get("/api/v2/instance/", instance.instance_v2)
    for path in instance.EMPTY_LISTS:
        r.add_get(path, instance.empty_list)
    r.add_get("/api/v1/markers", instance.markers)
    r.add_get("/api/v1/preferences", instance.preferences)
    r.add_get(accounts.AVATAR_PATH, instance.avatar)
    r.add_get(accounts.HEADER_PATH, instance.header)
    # accounts (the fixed paths before /{id})
    r.add_get("/api/v1/accounts/verify_credentials", accounts.verify_credentials)
    r.add_get("/api/v1/accounts/lookup", accounts.lookup)
    r.add_get("/api/v1/accounts/relationships", accounts.relationships)
    r.add_get("/api/v1/accounts/search", search.search_accounts)
    r.add_get("/api/v1/accounts/{id}", accounts.get_account)
    r.add_get("/api/v1/accounts/{id}/statuses", timelines.account_statuses)
    r.add_get("/api/v1/accounts/{id}/followers", accounts.followers)
    r.add_get("/api/v1/accounts/{id}/following", accounts.following)
    r.add_post("/api/v1/accounts/{id}/follow", accounts.follow)
    r.add_post("/api/v1/accounts/{id}/unfollow", accounts.unfollow)
    # statuses
    r.add_post("/api/v1/statuses", statuses.create_status)
    r.add_get("/api/v1/statuses/{id}", statuses.get_status)
    r.add_delete("/api/v1/statuses/{id}", statuses.delete_status)
    r.add_get("/api/v1/statuses/{id}/context", statuses.context)
    r.add_post("/api/v1/statuses/{id}/favourite", statuses.favourite)
    r.add_post("/api/v1/statuses/{id}/unfavourite", statuses.unfavourite)
    r.add_post("/api/v1/statuses/{id}/reblog", statuses.reblog)
    r.add_post("/api/v1/statuses/{id}/unreblog", statuses.unreblog)
    r.add_get("/api/v1/statuses/{id}/favourited_by", statuses.favourited_by)
    r.add_get("/api/v1/statuses/{id}/reblogged_by", statuses.reblogged_by)
    media.setup_routes(app)
    r.add_get("/api/v1/polls/{id}", polls.get_poll)
    r.add_post("/api/v1/polls/{id}/votes", polls.vote)
    # timelines, notifications, search
    r.add_get("/api/v1/timelines/home", timelines.home)
    r.add_get("/api/v1/timelines/public", timelines.public)
    r.add_get("/api/v1/timelines/tag/{hashtag}", timelines.hashtag)
    r.add_get("/api/v1/notifications", notifications.list_notifications)
    r.add_post("/api/v1/notifications/clear", notifications.clear)
    r.add_get("/api/v1/notifications/{id}", notifications.get_notification)
    r.add_post("/api/v1/notifications/{id}/dismiss", notifications.dismiss)
    r.add_get("/api/v2/search", search.search_v2)
    # live updates
    r.add_get("/api/v1/streaming", streaming.websocket)
    r.add_get("/api/v1/streaming/", streaming.websocket)
    r.add_get("/api/v1/streaming/health", streaming.health)
    r.add_get("/api/v1/streaming/{tail:.+}", streaming.websocket)
    for prefix in ("/api/v1/{tail:.*}", "/api/v2/{tail:.*}", "/oauth/token", "/oauth/revoke"):
        r.add_route("OPTIONS", prefix, preflight)
    r.add_route("OPTIONS", OAUTH_METADATA, preflight)
