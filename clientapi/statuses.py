"""Statuses: post, read, delete, thread context, favourite and reblog.

A status is a stored object and its id is the object's ``seq``; offers, needs
and solidarity requests are statuses whose content carries their details.
Posting builds a Note (mentions and hashtags linked) and publishes it with
``outbox.publish.publish_object``; favourites and boosts are the member's Like
and Announce (``outbox.publish``).  The wrapper status of one of our boosts
has the id ``REBLOG_BASE + its outbox seq``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from clientapi import compose, media
from clientapi.accounts import account_views, resolve_account
from clientapi.common import NOT_FOUND, MastoError, endpoint, path_id, read_params
from clientapi.oauth import authenticate, optional_auth
from clientapi.polls import polls_of
from clientapi.sanitize import mention_hrefs
from clientapi.serializers import (
    FROM_MASTODON,
    StatusData,
    account_json,
    deleted_status_json,
    reblog_json,
    status_json,
)
from clientapi.threads import tree_order
from federation.context import NODE, NodeContext
from federation.errors import json_response
from federation.jsonld import build_context
from federation.store import LocalActor, StatusCounts, StoredObject
from outbox import build, publish

REBLOG_BASE = 10**15
MAX_CHARACTERS = 5000
MAX_ANCESTORS = 40


def viewer_of(actor: LocalActor | None, node: NodeContext) -> tuple[str | None, int | None]:
    return (node.urls.actor(actor.username), actor.id) if actor else (None, None)


async def render_statuses(
    node: NodeContext, viewer: LocalActor | None, objects: Sequence[StoredObject]
) -> list[dict[str, Any]]:
    """Mastodon statuses of ``objects`` as ``viewer`` sees them (its likes and boosts)."""
    if not objects:
        return []
    parent_uris = [o.in_reply_to for o in objects if o.in_reply_to]
    parents = {p.uri: p for p in await node.store.objects_by_uris(parent_uris)}
    actors = {o.attributed_to for o in objects} | {p.attributed_to for p in parents.values()}
    for obj in objects:
        actors.update(mention_hrefs(obj.body))
    views = await account_views(node, actors)
    uris = [o.uri for o in objects]
    counts = await node.store.status_counts(uris)
    own = await node.store.own_interactions(viewer.id, uris) if viewer else {}
    local_uris = [o.uri for o in objects if o.local]
    uploads = await node.store.media_of_objects(local_uris) if local_uris else {}
    viewer_url, _ = viewer_of(viewer, node)
    rendered = []
    for obj in objects:
        parent = parents.get(obj.in_reply_to or "")
        data = StatusData(
            obj=obj,
            account=views[obj.attributed_to],
            in_reply_to_id=parent.seq if parent else None,
            in_reply_to_account_id=views[parent.attributed_to].id if parent else None,
            mentions=[views[h] for h in mention_hrefs(obj.body)],
            counts=counts.get(obj.uri, StatusCounts(0, 0, 0)),
            favourited=(obj.uri, "Like") in own,
            reblogged=(obj.uri, "Announce") in own,
            viewer_is_author=obj.attributed_to == viewer_url,
            media=[media.media_json(m, node.urls) for m in uploads[obj.uri]]
            if obj.uri in uploads
            else None,
        )
        rendered.append(status_json(data))
    polls = await polls_of(node, viewer, list(objects))
    for obj, status in zip(objects, rendered, strict=True):
        status["poll"] = polls.get(obj.uri)
    return rendered


async def render_status(
    node: NodeContext, viewer: LocalActor | None, obj: StoredObject
) -> dict[str, Any]:
    return (await render_statuses(node, viewer, [obj]))[0]


async def visible(node: NodeContext, viewer: LocalActor | None, status_id: int) -> StoredObject:
    viewer_url, viewer_id = viewer_of(viewer, node)
    found = await node.store.visible_object(status_id, viewer_url, viewer_id)
    if found is None:
        raise MastoError(404, NOT_FOUND)
    return found


# -- posting ----------------------------------------------------------------------------


async def _mentions(
    node: NodeContext, text: str, parent: StoredObject | None, me: str
) -> tuple[dict[str, compose.Mentioned], list[str]]:
    """The handles of ``text`` that resolve, and every actor the post mentions."""
    found: dict[str, compose.Mentioned] = {}
    for handle in compose.mentioned_handles(text):
        uri = await resolve_account(node, handle, resolve=True)
        if uri is not None:
            view = (await account_views(node, [uri]))[uri]
            found[handle] = compose.Mentioned(uri=uri, url=view.url, username=view.username)
    uris = [m.uri for m in found.values()]
    if parent is not None and parent.attributed_to not in uris:
        uris.append(parent.attributed_to)  # a reply always reaches the replied-to
    return found, [u for u in dict.fromkeys(uris) if u != me]


def _full_handle(node: NodeContext, acct: str) -> str:
    return acct if "@" in acct else f"{acct}@{node.urls.domain}"


@endpoint
async def create_status(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:statuses")).member
    params = await read_params(request)
    text = params.text("status").strip()
    media_ids = media.media_ids_of(params.many("media_ids"))
    if params.get("poll[options][]") or params.get("scheduled_at"):
        raise MastoError(422, "Validation failed: polls and scheduled posts are not supported")
    if not text and not media_ids:
        raise MastoError(422, "Validation failed: Text can't be blank")
    if len(text) > MAX_CHARACTERS:
        raise MastoError(422, f"Validation failed: Text is over {MAX_CHARACTERS} characters")
    visibility = FROM_MASTODON.get(params.text("visibility", "public"))
    if visibility is None:
        raise MastoError(422, "Validation failed: Visibility is not included in the list")
    parent = None
    if params.get("in_reply_to_id"):
        parent_id = params.number("in_reply_to_id") or 0
        parent = await visible(node, member, parent_id)
    me = node.urls.actor(member.username)
    found, mentions = await _mentions(node, text, parent, me)
    content, hashtags = compose.render(text, found, tag_base=node.urls.tag_base)
    audience = build.addressing(
        visibility=visibility, followers=node.urls.followers(member.username), mentions=mentions
    )
    object_id = node.urls.object(node.new_token())
    uploads = await media.attach(node, member, media_ids, object_id)
    views = await account_views(node, mentions) if mentions else {}
    tags = [
        {"type": "Mention", "href": uri, "name": f"@{_full_handle(node, views[uri].acct)}"}
        for uri in mentions
    ] + [
        {"type": "Hashtag", "name": f"#{t}", "href": node.urls.tag_base + t.lower()}
        for t in hashtags
    ]
    note = build.build_note(
        object_id=object_id,
        actor=me,
        content=content,
        published=node.clock(),
        url=object_id,
        to=audience["to"],
        cc=audience["cc"],
        in_reply_to=parent.uri if parent else None,
        tags=tags,
        summary=params.text("spoiler_text").strip()[:500] or None,
        attachments=[media.attachment_document(m, node.urls) for m in uploads],
    )
    note["sensitive"] = params.flag("sensitive") or bool(note.get("summary"))
    try:
        context = build_context(build.MEDIA_TERMS) if uploads else None
        await publish.publish_object(node, member, note, mentions=mentions, context=context)
    except BaseException:
        if uploads:  # not posted: the uploads stay the member's to use again
            await node.store.detach_media(object_id)
        raise
    stored = await node.store.get_object(object_id)
    assert stored is not None
    return json_response(await render_status(node, member, stored))


# -- reading ---------------------------------------------------------------------------


async def _reblog(node: NodeContext, viewer: LocalActor | None, reblog_id: int) -> dict[str, Any]:
    row = await node.store.outbox_by_seq(reblog_id - REBLOG_BASE)
    if row is None or row["type"] != "Announce" or not row["object_id"]:
        raise MastoError(404, NOT_FOUND)
    booster = await node.store.get_local_actor_by_id(row["local_actor_id"])
    active = await node.store.own_interactions(row["local_actor_id"], [row["object_id"]])
    if booster is None or active.get((row["object_id"], "Announce")) != row["id"]:
        raise MastoError(404, NOT_FOUND)
    originals = await node.store.objects_by_uris([row["object_id"]])
    if not originals:
        raise MastoError(404, NOT_FOUND)
    original = await render_status(node, viewer, await visible(node, viewer, originals[0].seq))
    me = node.urls.actor(booster.username)
    return reblog_json(
        reblog_id=reblog_id,
        uri=row["id"],
        created_at=row["published"],
        account=(await account_views(node, [me]))[me],
        original=original,
    )


@endpoint
async def get_status(request: web.Request) -> web.Response:
    node = request.app[NODE]
    auth = await optional_auth(request, "read:statuses")
    viewer = auth.actor if auth else None
    status_id = path_id(request)
    if status_id >= REBLOG_BASE:
        return json_response(await _reblog(node, viewer, status_id))
    return json_response(await render_status(node, viewer, await visible(node, viewer, status_id)))


@endpoint
async def delete_status(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:statuses")).member
    obj = await visible(node, member, path_id(request))
    if obj.attributed_to != node.urls.actor(member.username):
        raise MastoError(404, NOT_FOUND)
    rendered = await render_status(node, member, obj)
    await publish.delete_post(node, member, obj.uri)
    return json_response(deleted_status_json(rendered, obj.body))


@endpoint
async def context(request: web.Request) -> web.Response:
    node = request.app[NODE]
    auth = await optional_auth(request, "read:statuses")
    viewer = auth.actor if auth else None
    obj = await visible(node, viewer, path_id(request))
    viewer_url, viewer_id = viewer_of(viewer, node)
    ancestors: list[StoredObject] = []
    parent_uri = obj.in_reply_to
    seen = {obj.uri}
    while parent_uri and parent_uri not in seen and len(ancestors) < MAX_ANCESTORS:
        seen.add(parent_uri)
        found = await node.store.objects_by_uris([parent_uri])
        parent = found[0] if found else None
        if parent is None or not await node.store.visible_object(parent.seq, viewer_url, viewer_id):
            break
        ancestors.insert(0, parent)
        parent_uri = parent.in_reply_to
    descendants = tree_order(obj.uri, await node.store.descendants(obj.uri, viewer_url, viewer_id))
    return json_response(
        {
            "ancestors": await render_statuses(node, viewer, ancestors),
            "descendants": await render_statuses(node, viewer, descendants),
        }
    )


# -- favourites and boosts ---------------------------------------------------------------


async def _own(node: NodeContext, member: LocalActor, obj: StoredObject, kind: str) -> str | None:
    return (await node.store.own_interactions(member.id, [obj.uri])).get((obj.uri, kind))


@endpoint
async def favourite(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:favourites")).member
    obj = await visible(node, member, path_id(request))
    if await _own(node, member, obj, "Like") is None:
        await publish.like(node, member, obj.uri)
    return json_response(await render_status(node, member, obj))


@endpoint
async def unfavourite(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:favourites")).member
    obj = await visible(node, member, path_id(request))
    like_id = await _own(node, member, obj, "Like")
    if like_id is not None:
        await publish.undo(node, member, like_id)
    return json_response(await render_status(node, member, obj))


@endpoint
async def reblog(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:statuses")).member
    obj = await visible(node, member, path_id(request))
    if obj.visibility not in ("public", "unlisted"):
        raise MastoError(403, "This action is not allowed")
    announce_id = await _own(node, member, obj, "Announce")
    if announce_id is None:
        announce_id = (await publish.announce(node, member, obj.uri))["id"]
    seq = await node.store.outbox_seq(announce_id)
    assert seq is not None
    return json_response(await _reblog(node, member, REBLOG_BASE + seq))


@endpoint
async def unreblog(request: web.Request) -> web.Response:
    node = request.app[NODE]
    member = (await authenticate(request, "write:statuses")).member
    obj = await visible(node, member, path_id(request))
    announce_id = await _own(node, member, obj, "Announce")
    if announce_id is not None:
        await publish.undo(node, member, announce_id)
    return json_response(await render_status(node, member, obj))


async def _who(request: web.Request, kind: str) -> web.Response:
    node = request.app[NODE]
    auth = await optional_auth(request, "read:statuses")
    obj = await visible(node, auth.actor if auth else None, path_id(request))
    uris = await node.store.interaction_actors(obj.uri, kind, node.urls.base)
    views = await account_views(node, uris)
    return json_response([account_json(views[u]) for u in uris])


@endpoint
async def favourited_by(request: web.Request) -> web.Response:
    return await _who(request, "Like")


@endpoint
async def reblogged_by(request: web.Request) -> web.Response:
    return await _who(request, "Announce")
