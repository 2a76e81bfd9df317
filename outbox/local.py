"""Follows between actors of this node: members, their coop, and each other.

Both sides live in the same database, so a Follow, its Accept or Reject and its
Undo are applied here directly, without HTTP and without signatures: the
follower's ``outbound`` row and the followed actor's ``inbound`` row are the
same rows two nodes would keep, so notifications, relationships, follower
lists and home timelines (computed from ``follows`` and ``objects``) work as
they do for remote follows.  The activities are still recorded in the outbox.
"""

from __future__ import annotations

from federation.context import NodeContext
from federation.store import Follow, LocalActor, RemoteActor
from federation.urls import INSTANCE_ACTOR_USERNAME

HANDLE_PREFIXES = ("acct:", "@")


async def local_actor_named(node: NodeContext, handle_or_url: str) -> LocalActor | None:
    """The live local actor (not the instance actor) a handle or URL of ours names."""
    text = handle_or_url.strip()
    if text.startswith(("http://", "https://")):
        if not node.urls.is_local(text):
            return None
        username = node.urls.local_username(text)
    else:
        for prefix in HANDLE_PREFIXES:
            text = text.removeprefix(prefix)
        username, at, host = text.partition("@")
        if not at or host.lower() != node.urls.domain.lower():
            return None
    if not username or username.lower() == INSTANCE_ACTOR_USERNAME:
        return None
    actor = await node.store.get_local_actor(username)
    if actor is None:
        wanted = username.lower()
        actors = await node.store.list_local_actors()
        actor = next((a for a in actors if a.username.lower() == wanted), None)
    if actor is None or actor.kind == "instance" or actor.deleted_at is not None:
        return None
    return actor


def peer_view(node: NodeContext, actor: LocalActor) -> RemoteActor:
    """A local actor as the follow commands show a peer (handle, URLs)."""
    return RemoteActor(
        uri=node.urls.actor(actor.username),
        host=node.urls.domain.lower(),
        type="Organization" if actor.kind == "coop" else "Person",
        username=actor.username,
        name=actor.name,
        inbox=node.urls.inbox(actor.username),
        shared_inbox=node.urls.shared_inbox,
        followers_url=node.urls.followers(actor.username),
        key_id=node.urls.key_id(actor.username),
        public_key_pem=actor.public_key_pem,
        document={},
        fetched_at=node.clock(),
        gone=False,
    )


async def receive_follow(
    node: NodeContext, follower: LocalActor, target: LocalActor, activity_id: str
) -> Follow:
    """The followed actor's side of a local Follow: pending if it approves manually."""
    return await node.store.upsert_follow(
        local_actor_id=target.id,
        remote_actor=node.urls.actor(follower.username),
        direction="inbound",
        state="pending" if target.manually_approves_followers else "accepted",
        activity_id=activity_id,
    )


async def settle_follower(
    node: NodeContext, followed: LocalActor, record: Follow, *, accepted: bool
) -> None:
    """The follower's side of an Accept or Reject, when the follower is one of ours."""
    follower = await local_actor_named(node, record.remote_actor)
    if follower is None:
        return
    outbound = await node.store.get_follow(
        follower.id, node.urls.actor(followed.username), "outbound"
    )
    if outbound is None:
        return
    if accepted:
        await node.store.accept_follow(outbound.id)
    else:
        await node.store.delete_follow(outbound.id)


async def drop_follow(node: NodeContext, follower: LocalActor, target: LocalActor) -> None:
    """The followed actor's side of an Undo(Follow) between local actors."""
    inbound = await node.store.get_follow(target.id, node.urls.actor(follower.username), "inbound")
    if inbound is not None:
        await node.store.delete_follow(inbound.id)
