"""Timelines: home (the member's follows and its own posts), public, hashtag, and
an account's statuses, all paged by status id with Mastodon's ``Link`` header."""

from __future__ import annotations

from aiohttp import web

from clientapi.accounts import uri_of
from clientapi.common import endpoint, json_list, paging, path_id, read_params
from clientapi.oauth import authenticate, optional_auth
from clientapi.statuses import render_statuses, viewer_of
from federation.context import NODE


@endpoint
async def home(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "read:statuses")).member
    page = paging(await read_params(request))
    objects = await node.store.home_timeline(node.urls.actor(member.username), member.id, page)
    return json_list(
        request, await render_statuses(node, member, objects), [o.seq for o in objects]
    )


async def _public(request: web.Request, hashtag: str | None) -> web.Response:
    """The public timeline (``local``/``remote`` narrow it), of one hashtag or all."""
    node = request.app[NODE]
    auth = await optional_auth(request, "read:statuses")
    params = await read_params(request)
    if hashtag is None and params.flag("only_media"):
        return json_list(request, [], [])
    local = True if params.flag("local") else False if params.flag("remote") else None
    objects = await node.store.public_timeline(local=local, hashtag=hashtag, paging=paging(params))
    viewer = auth.actor if auth else None
    return json_list(
        request, await render_statuses(node, viewer, objects), [o.seq for o in objects]
    )


@endpoint
async def public(request: web.Request) -> web.Response:
    return await _public(request, None)


@endpoint
async def hashtag(request: web.Request) -> web.Response:
    return await _public(request, "#" + request.match_info["hashtag"].lstrip("#")[:100])


@endpoint
async def account_statuses(request: web.Request) -> web.Response:
    node = request.app[NODE]
    auth = await optional_auth(request, "read:statuses")
    viewer = auth.actor if auth else None
    uri = await uri_of(node, path_id(request))
    params = await read_params(request)
    if params.flag("only_media") or params.flag("pinned"):
        return json_list(request, [], [])
    viewer_url, viewer_id = viewer_of(viewer, node)
    objects = await node.store.account_statuses(
        uri,
        viewer_url=viewer_url,
        viewer_id=viewer_id,
        exclude_replies=params.flag("exclude_replies"),
        paging=paging(params),
    )
    return json_list(
        request, await render_statuses(node, viewer, objects), [o.seq for o in objects]
    )
