"""Accounts: the logged-in member, any actor by id or handle, follows, relationships.

An account id is a number given to an actor URI on first sight (``api_accounts``),
local and remote actors alike.  Following goes through ``outbox.publish.follow``
as the member: the follow is ``requested`` until the other side accepts (at once
for an actor of this node that does not approve its followers manually).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from actors.remote import InvalidActor, fetch_actor
from actors.webfinger import WebfingerError, parse_handle, resolve_actor
from clientapi.common import NOT_FOUND, MastoError, endpoint, path_id, read_params
from clientapi.oauth import authenticate, optional_auth
from clientapi.serializers import (
    AccountView,
    account_json,
    credential_account_json,
    local_account_view,
    relationship_json,
    remote_account_view,
    unknown_account_view,
)
from federation.client import FetchError
from federation.context import NODE, NodeContext
from federation.errors import json_response
from federation.store import LocalActor
from outbox import publish

AVATAR_PATH = "/api/coopfed/avatar.png"
HEADER_PATH = "/api/coopfed/header.png"


async def account_views(node: NodeContext, uris: Iterable[str]) -> dict[str, AccountView]:
    """A view of each actor URI: local actors, known remote ones, or what the URL says."""
    wanted = sorted(set(uris))
    ids = await node.store.account_ids(wanted)
    remote = {r.uri: r for r in await node.store.remote_actors_by_uris(wanted)}
    avatar, header = node.urls.base + AVATAR_PATH, node.urls.base + HEADER_PATH
    views: dict[str, AccountView] = {}
    for uri in wanted:
        username = node.urls.local_username(uri)
        local = await node.store.get_local_actor(username) if username else None
        statuses, last = await node.store.status_stats(uri)
        if local is not None and local.kind != "instance":
            views[uri] = local_account_view(
                local,
                node.urls,
                ids[uri],
                avatar=avatar,
                header=header,
                followers=await node.store.count_follows(local.id, "inbound"),
                following=await node.store.count_follows(local.id, "outbound"),
                statuses=statuses,
                last_status_at=last,
            )
        elif uri in remote:
            views[uri] = remote_account_view(
                remote[uri],
                ids[uri],
                avatar=avatar,
                header=header,
                statuses=statuses,
                last_status_at=last,
            )
        else:
            views[uri] = unknown_account_view(
                uri, ids[uri], avatar=avatar, header=header, now=datetime.now(UTC)
            )
    return views


async def account_view(node: NodeContext, uri: str) -> AccountView:
    return (await account_views(node, [uri]))[uri]


async def uri_of(node: NodeContext, account_id: int) -> str:
    """The actor URI of an account id we gave out; 404 otherwise."""
    uri = await node.store.account_uri(account_id)
    if uri is None:
        raise MastoError(404, NOT_FOUND)
    username = node.urls.local_username(uri)
    if username is not None:
        local = await node.store.get_local_actor(username)
        if local is None or local.kind == "instance" or local.deleted_at is not None:
            raise MastoError(404, NOT_FOUND)
    return uri


async def resolve_account(node: NodeContext, text: str, *, resolve: bool) -> str | None:
    """The actor URI of ``user``, ``@user@host`` or an actor URL; with ``resolve``,
    unknown remote actors are looked up (WebFinger, then their actor document)."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        if node.urls.is_local(text):
            username = node.urls.local_username(text)
            return await _local_uri(node, username) if username else None
        known = await node.store.get_remote_actor(text)
        if known is not None and not known.gone:
            return known.uri
        return await _fetch(node, text) if resolve else None
    handle = parse_handle(text if "@" in text.lstrip("@") else f"{text.lstrip('@')}@_")
    if handle is None:
        return None
    if handle.host in ("_", node.urls.domain.lower()):
        return await _local_uri(node, handle.username)
    if not resolve:
        # Without a lookup: only an actor we hold whose id is on the handle's host.
        known = await node.store.find_remote_actor_by_handle(handle.username, handle.host)
        return known.uri if known is not None and not known.gone else None
    # A handle is resolved through its host's WebFinger, never by a stored name alone.
    try:
        actor = await resolve_actor(node, str(handle))
    except (WebfingerError, FetchError, InvalidActor):
        return None
    return None if actor.gone or node.urls.is_local(actor.uri) else actor.uri


async def _local_uri(node: NodeContext, username: str) -> str | None:
    actor = await node.store.get_local_actor(username)
    if actor is None:
        wanted = username.lower()
        actor = next(
            (a for a in await node.store.list_local_actors() if a.username.lower() == wanted), None
        )
    if actor is None or actor.kind == "instance" or actor.deleted_at is not None:
        return None
    return node.urls.actor(actor.username)


async def _fetch(node: NodeContext, url: str) -> str | None:
    if node.urls.is_local(url):
        return None
    try:
        return (await fetch_actor(node, url, exact=False)).uri
    except (FetchError, InvalidActor):
        return None


async def relationship(
    node: NodeContext, member: LocalActor, uri: str, account_id: int
) -> dict[str, Any]:
    outbound = await node.store.get_follow(member.id, uri, "outbound")
    inbound = await node.store.get_follow(member.id, uri, "inbound")
    return relationship_json(
        account_id,
        following=outbound is not None and outbound.state == "accepted",
        requested=outbound is not None and outbound.state == "pending",
        followed_by=inbound is not None and inbound.state == "accepted",
        requested_by=inbound is not None and inbound.state == "pending",
    )


# -- endpoints -------------------------------------------------------------------------


@endpoint
async def verify_credentials(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "read:accounts")).member
    view = await account_view(node, node.urls.actor(member.username))
    pending = await node.store.count_follows(member.id, "inbound", "pending")
    return json_response(
        credential_account_json(view, summary=member.summary, follow_requests=pending)
    )


@endpoint
async def get_account(request: web.Request) -> web.Response:
    node = request.app[NODE]
    await optional_auth(request, "read:accounts")
    uri = await uri_of(node, path_id(request))
    return json_response(account_json(await account_view(node, uri)))


@endpoint
async def lookup(request: web.Request) -> web.Response:
    node = request.app[NODE]
    auth = await optional_auth(request, "read:accounts")
    params = await read_params(request)
    uri = await resolve_account(node, params.text("acct"), resolve=auth is not None)
    if uri is None:
        raise MastoError(404, NOT_FOUND)
    return json_response(account_json(await account_view(node, uri)))


@endpoint
async def relationships(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "read:follows")).member
    answers = []
    for raw in (await read_params(request)).many("id")[:40]:
        uri = (
            await node.store.account_uri(int(raw))
            if raw.isascii() and raw.isdigit() and len(raw) < 19
            else None
        )
        if uri is not None:
            answers.append(await relationship(node, member, uri, int(raw)))
    return json_response(answers)


@endpoint
async def follow(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:follows")).member
    account_id = path_id(request)
    uri = await uri_of(node, account_id)
    existing = await node.store.get_follow(member.id, uri, "outbound")
    if existing is None:
        await publish.follow(node, member, uri)
    return json_response(await relationship(node, member, uri, account_id))


@endpoint
async def unfollow(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:follows")).member
    account_id = path_id(request)
    uri = await uri_of(node, account_id)
    if await node.store.get_follow(member.id, uri, "outbound") is not None:
        await publish.unfollow(node, member, uri)
    return json_response(await relationship(node, member, uri, account_id))


async def _follow_list(request: web.Request, direction: str) -> web.Response:
    node = request.app[NODE]
    await optional_auth(request, "read:accounts")
    uri = await uri_of(node, path_id(request))
    username = node.urls.local_username(uri)
    local = await node.store.get_local_actor(username) if username else None
    if local is None:
        return json_response([])  # a remote actor's lists are its server's to tell
    follows = await node.store.list_follows(local.id, direction, limit=80)
    views = await account_views(node, [f.remote_actor for f in follows])
    return json_response([account_json(views[f.remote_actor]) for f in follows])


@endpoint
async def followers(request: web.Request) -> web.Response:
    return await _follow_list(request, "inbound")


@endpoint
async def following(request: web.Request) -> web.Response:
    return await _follow_list(request, "outbound")
