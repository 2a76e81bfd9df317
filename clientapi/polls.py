"""Polls: Mastodon's ``poll`` entity of a status whose object is a ``Question``,
``GET /api/v1/polls/:id`` and ``POST /api/v1/polls/:id/votes``.

A poll's id is its status's id.  Counts are the author's (its Question and the
Updates it sends); ``voted`` and ``own_votes`` are the member's recorded vote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from clientapi.common import NOT_FOUND, MastoError, endpoint, path_id, read_params
from clientapi.oauth import authenticate
from clientapi.serializers import iso
from federation.context import NODE, NodeContext
from federation.errors import json_response
from federation.store import LocalActor, StoredObject
from outbox import polls


def poll_json(
    obj: StoredObject, poll: polls.Poll, own: list[int] | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": str(obj.seq),
        "expires_at": iso(poll.ends_at) if poll.ends_at else None,
        "expired": poll.expired(now),
        "multiple": poll.multiple,
        "votes_count": poll.votes,
        "voters_count": poll.voters if poll.voters is not None or poll.multiple else poll.votes,
        "voted": own is not None,
        "own_votes": own or [],
        "options": [{"title": o.title, "votes_count": o.votes} for o in poll.options],
        "emojis": [],
    }


async def polls_of(
    node: NodeContext, viewer: LocalActor | None, objects: list[StoredObject]
) -> dict[str, dict[str, Any]]:
    """The poll JSON of each Question among ``objects``, by URI, as ``viewer`` sees it."""
    found = {o.uri: (o, p) for o in objects if (p := polls.parse_poll(o.body)) is not None}
    if not found:
        return {}
    own = await node.store.poll_votes(viewer.id, list(found)) if viewer else {}
    now = node.clock()
    return {uri: poll_json(o, p, own.get(uri), now) for uri, (o, p) in found.items()}


async def _poll(request: web.Request, scope: str) -> tuple[NodeContext, LocalActor, StoredObject]:
    node = request.app[NODE]
    member = (await authenticate(request, scope)).member
    url, member_id = node.urls.actor(member.username), member.id
    obj = await node.store.visible_object(path_id(request), url, member_id)
    if obj is None or polls.parse_poll(obj.body) is None:
        raise MastoError(404, NOT_FOUND)
    return node, member, obj


@endpoint
async def get_poll(request: web.Request) -> web.Response:
    node, member, obj = await _poll(request, "read:statuses")
    return json_response((await polls_of(node, member, [obj]))[obj.uri])


@endpoint
async def vote(request: web.Request) -> web.Response:
    node, member, obj = await _poll(request, "write:statuses")
    params = await read_params(request)
    raw = params.many("choices")
    if not all(c.strip().isascii() and c.strip().isdigit() and len(c.strip()) < 4 for c in raw):
        raise MastoError(422, "Validation failed: choices must be option numbers")
    await polls.vote(node, member, obj, [int(c) for c in raw])
    return json_response((await polls_of(node, member, [obj]))[obj.uri])
