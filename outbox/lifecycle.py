"""The end of an actor: ``Delete`` of the actor itself, then 410 Gone everywhere.

``delete_actor`` queues a signed ``Delete`` (object = the actor) for every
follower's inbox and every actor the coop follows, as Mastodon does when an
account deletes itself, then marks the actor deleted.  The row and its key
stay: the queued deliveries are signed with it after the documents already
answer 410 (peers that followed the coop hold its key; Mastodon and coopfed
accept a self-Delete whose key now answers 410).
"""

from __future__ import annotations

from typing import Any

from federation.context import NodeContext
from federation.jsonld import AS_PUBLIC, build_context
from federation.store import LocalActor
from outbox.fanout import send_activity


class AlreadyDeleted(Exception):
    """The actor was deleted before."""


def build_delete_actor(*, activity_id: str, actor: str, followers: str) -> dict[str, Any]:
    return {
        "@context": build_context(),
        "id": activity_id,
        "type": "Delete",
        "actor": actor,
        "object": actor,
        "to": [AS_PUBLIC],
        "cc": [followers],
    }


async def delete_actor(node: NodeContext, actor: LocalActor) -> tuple[dict[str, Any], int]:
    """Send ``Delete`` of ``actor`` and mark it deleted; returns the activity and the
    number of inboxes queued."""
    if actor.deleted_at is not None:
        raise AlreadyDeleted(actor.username)
    following = await node.store.list_follows(actor.id, "outbound", state=None, limit=100_000)
    activity = build_delete_actor(
        activity_id=node.urls.activity(node.new_token()),
        actor=node.urls.actor(actor.username),
        followers=node.urls.followers(actor.username),
    )
    # Followers through the addressed collection; the actors we follow by name, so
    # that they drop the follow too.
    queued = await send_activity(
        node, actor, activity, extra_actors=[f.remote_actor for f in following]
    )
    if await node.store.mark_local_actor_deleted(actor.id) is None:
        raise AlreadyDeleted(actor.username)
    return activity, queued
