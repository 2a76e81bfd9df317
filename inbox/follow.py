"""Follow, Accept, Reject and Undo(Follow): who follows whom.

Once a coop accepts our follow, its outbox is read (``BACKFILL``) so that its
open proposals reach our market at once.
"""

from __future__ import annotations

from typing import Any

from actors.remote import fetch_actor
from federation.context import NodeContext
from federation.jsonld import get_id, has_type
from federation.store import InboxActivity
from inbox.errors import Refused
from inbox.handling import Outcome, Subject, applied, ignored
from inbox.market import BACKFILL
from outbox.publish import accept_follower


async def handle_follow(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    target = get_id(item.body.get("object"))
    username = node.urls.local_username(target or "")
    local = await node.store.get_local_actor(username) if username else None
    if local is None or local.kind == "instance":
        return ignored("not a follow of a local actor")
    follower = await fetch_actor(node, item.actor)
    pending = local.manually_approves_followers
    record = await node.store.upsert_follow(
        local_actor_id=local.id,
        remote_actor=follower.uri,
        direction="inbound",
        state="pending" if pending else "accepted",
        activity_id=item.activity_id,
    )
    if record.state == "pending":
        return applied("pending approval")
    # Accepted now, or a repeated Follow of an accepted follower: (re-)send Accept.
    await accept_follower(node, local, record)
    return applied("accepted")


def _embedded_follow(item: InboxActivity) -> dict[str, Any] | str | None:
    inner = item.body.get("object")
    if isinstance(inner, dict) and not has_type(inner, "Follow"):
        return None
    return inner if isinstance(inner, dict | str) else None


async def handle_accept(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    inner = _embedded_follow(item)
    if inner is None:
        return ignored("not an Accept of a Follow")
    record = await _our_outbound_follow(node, item, inner)
    if record is None:
        raise Refused("no follow of ours that this actor may accept")
    if record.state == "accepted":
        return applied("already accepted")
    await node.store.accept_follow(record.id)
    await node.store.enqueue(BACKFILL, {"actor": item.actor}, max_attempts=3)
    return applied("follow accepted")


async def handle_reject(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    inner = _embedded_follow(item)
    if inner is None:
        return ignored("not a Reject of a Follow")
    record = await _our_outbound_follow(node, item, inner)
    if record is None:
        raise Refused("no follow of ours that this actor may reject")
    await node.store.delete_follow(record.id)
    return applied("follow rejected")


async def _our_outbound_follow(
    node: NodeContext, item: InboxActivity, inner: dict[str, Any] | str
) -> Any:
    """Our Follow of the signer that this Accept/Reject refers to, or None.

    Matched by the Follow's id; an embedded Follow without a known id is
    matched by (its actor, the signer), as Mastodon does.  Only the followed
    actor itself may accept or reject: a third party's Accept is refused.
    """
    follow_id = get_id(inner)
    record = await node.store.get_follow_by_activity(follow_id) if follow_id else None
    if record is None and isinstance(inner, dict):
        username = node.urls.local_username(get_id(inner.get("actor")) or "")
        local = await node.store.get_local_actor(username) if username else None
        if local is not None and get_id(inner.get("object")) == item.actor:
            record = await node.store.get_follow(local.id, item.actor, "outbound")
    if record is None or record.direction != "outbound" or record.remote_actor != item.actor:
        return None
    return record


async def handle_undo_follow(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    inner = item.body.get("object")
    follow_id = get_id(inner)
    record = await node.store.get_follow_by_activity(follow_id) if follow_id else None
    if record is None and isinstance(inner, dict):
        username = node.urls.local_username(get_id(inner.get("object")) or "")
        local = await node.store.get_local_actor(username) if username else None
        if local is not None:
            record = await node.store.get_follow(local.id, item.actor, "inbound")
    if record is None:
        return ignored("no such follow")
    if record.direction != "inbound" or record.remote_actor != item.actor:
        raise Refused("only the follower may undo its follow")
    await node.store.delete_follow(record.id)
    return applied("unfollowed")
