"""Sending: record an activity in the outbox and queue one delivery per inbox.

Followers are reached through their shared inboxes, so a post to 1,000
followers on one Mastodon server is one request.  Blocked domains and hosts
marked unavailable get nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from actors.remote import InvalidActor, fetch_actor
from federation.client import FetchError
from federation.context import NodeContext
from federation.jsonld import PUBLIC_ALIASES, first_type, get_id, get_ids
from federation.store import LocalActor

log = logging.getLogger(__name__)

DELIVER = "deliver"


def listed(activity: dict[str, Any]) -> bool:
    """Whether the activity appears in the public outbox collection."""
    addressed = get_ids(activity.get("to")) + get_ids(activity.get("cc"))
    return any(a in PUBLIC_ALIASES for a in addressed) and activity.get("type") in (
        "Create",
        "Announce",
        "Update",
        "Delete",
    )


async def recipient_inboxes(
    node: NodeContext,
    actor: LocalActor,
    activity: dict[str, Any],
    extra_actors: Iterable[str] = (),
) -> list[str]:
    """Every inbox the activity must reach, de-duplicated, blocked hosts left out."""
    followers_url = node.urls.followers(actor.username)
    addressed = set(get_ids(activity.get("to")) + get_ids(activity.get("cc")))
    addressed.update(extra_actors)
    inboxes: set[str] = set()
    if followers_url in addressed:
        inboxes.update(await node.store.follower_inboxes(actor.id))
    for target in sorted(addressed):
        if target in PUBLIC_ALIASES or target == followers_url or node.urls.is_local(target):
            continue
        try:
            remote = await fetch_actor(node, target)
        except (FetchError, InvalidActor) as exc:
            # Addressing a collection or an unreachable actor: nothing to deliver.
            log.info("no inbox for %s: %s", target, exc)
            continue
        inboxes.add(
            remote.inbox if first_type(activity) in ("Accept", "Reject") else remote.delivery_inbox
        )
    return sorted(i for i in inboxes if not node.blocks.is_blocked(urlsplit(i).hostname or ""))


async def send_activity(
    node: NodeContext,
    actor: LocalActor,
    activity: dict[str, Any],
    *,
    extra_actors: Iterable[str] = (),
) -> int:
    """Store the activity in the outbox and queue its deliveries.

    Returns the number of inboxes queued.  The activity is stored before any
    delivery is queued, so a restart at any point loses nothing.
    """
    activity_id = activity["id"]
    await node.store.record_outbox_activity(
        activity_id=activity_id,
        local_actor_id=actor.id,
        type=activity["type"],
        object_id=get_id(activity.get("object")),
        body=activity,
        listed=listed(activity),
        published=node.clock(),
    )
    inboxes = await recipient_inboxes(node, actor, activity, extra_actors)
    payloads = [
        {"activity_id": activity_id, "inbox": inbox, "actor": actor.username} for inbox in inboxes
    ]
    await node.store.enqueue_many(
        DELIVER, payloads, max_attempts=node.settings.max_delivery_attempts
    )
    node.metrics.deliveries_queued += len(payloads)
    return len(payloads)
