"""Search: accounts (by handle, URL, username or name; an unknown ``user@host`` is
looked up by WebFinger when ``resolve`` is set and the request is a member's),
statuses (by URL, or the text of public posts) and hashtags."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from clientapi.accounts import account_views, resolve_account
from clientapi.common import Params, endpoint, read_params
from clientapi.oauth import Auth, optional_auth
from clientapi.serializers import account_json
from clientapi.statuses import render_statuses, viewer_of
from federation.context import NODE, NodeContext
from federation.errors import json_response
from federation.store import StoredObject

TAG_RE = re.compile(r"^#?(\w{1,100})$")
MAX_QUERY = 500


def _looks_like_actor(q: str) -> bool:
    return q.startswith(("http://", "https://")) or "@" in q.lstrip("@")


async def find_accounts(
    node: NodeContext, q: str, *, resolve: bool, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    if _looks_like_actor(q):
        uri = await resolve_account(node, q, resolve=resolve)
        uris = [uri] if uri is not None and offset == 0 else []
    else:
        found = await node.store.search_actor_uris(q.lstrip("@"), node.urls.base, limit + offset)
        uris = found[offset:]
    views = await account_views(node, uris)
    return [account_json(views[u]) for u in uris]


async def find_statuses(
    node: NodeContext, q: str, auth: Auth | None, *, limit: int, offset: int
) -> list[dict[str, Any]]:
    viewer = auth.actor if auth else None
    objects: list[StoredObject] = []
    if q.startswith(("http://", "https://")):
        known = await node.store.objects_by_uris([q])
        viewer_url, viewer_id = viewer_of(viewer, node)
        for obj in known:
            if await node.store.visible_object(obj.seq, viewer_url, viewer_id):
                objects.append(obj)
    elif viewer is not None:
        objects = (await node.store.search_statuses(q, limit + offset))[offset:]
    return await render_statuses(node, viewer, objects)


def find_hashtags(node: NodeContext, q: str) -> list[dict[str, Any]]:
    match = TAG_RE.match(q)
    if match is None or not q.startswith("#"):
        return []
    name = match[1].lower()
    return [{"name": name, "url": node.urls.tag_base + name, "history": [], "following": False}]


def _limits(params: Params) -> tuple[int, int]:
    limit = max(1, min(params.number("limit") or 20, 40))
    offset = min(params.number("offset") or 0, 1000)
    return limit, offset


@endpoint
async def search_v2(request: web.Request) -> web.Response:
    node = request.app[NODE]
    auth = await optional_auth(request, "read:search")
    params = await read_params(request)
    q = params.text("q").strip()[:MAX_QUERY]
    kind = params.get("type")
    limit, offset = _limits(params)
    resolve = params.flag("resolve") and auth is not None and auth.actor is not None
    answer: dict[str, list[dict[str, Any]]] = {"accounts": [], "statuses": [], "hashtags": []}
    if q:
        if kind in (None, "accounts"):
            answer["accounts"] = await find_accounts(
                node, q, resolve=resolve, limit=limit, offset=offset
            )
        if kind in (None, "statuses"):
            answer["statuses"] = await find_statuses(node, q, auth, limit=limit, offset=offset)
        if kind in (None, "hashtags") and offset == 0:
            answer["hashtags"] = find_hashtags(node, q)
    return json_response(answer)


@endpoint
async def search_accounts(request: web.Request) -> web.Response:
    node = request.app[NODE]
    auth = await optional_auth(request, "read:accounts")
    params = await read_params(request)
    q = params.text("q").strip()[:MAX_QUERY]
    limit, offset = _limits(params)
    resolve = params.flag("resolve") and auth is not None and auth.actor is not None
    if not q:
        return json_response([])
    return json_response(await find_accounts(node, q, resolve=resolve, limit=limit, offset=offset))
