"""Small steps shared by the follow-flow and content tests.

``peer_activity`` builds an activity the way Mastodon sends one; ``outcome``
waits for what a node's worker made of a received activity; the ``*_follow*``
helpers set up who follows whom through the real protocol (no store shortcuts).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from federation.store import Follow
from outbox import publish
from tests.support.fakepeer import AS, FakePeer, PeerActor
from tests.support.nodes import RunningNode, eventually


def shared_inbox(node: RunningNode) -> str:
    return f"{node.base_url}/inbox"


def peer_activity(
    peer: FakePeer, actor: PeerActor, kind: str, obj: Any, **extra: Any
) -> dict[str, Any]:
    """An activity as Mastodon sends it: one ``@context``, an id on the actor's host."""
    return {
        "@context": AS,
        "id": peer.new_id(actor),
        "type": kind,
        "actor": actor.id,
        "object": obj,
        **extra,
    }


def follow_core(follow: dict[str, Any]) -> dict[str, Any]:
    """A Follow as Mastodon embeds it: id, type, actor, object."""
    return {k: follow[k] for k in ("id", "type", "actor", "object")}


async def send_ok(
    peer: FakePeer, actor: PeerActor, node: RunningNode, body: dict[str, Any]
) -> None:
    """POST ``body`` signed by ``actor`` to the node's shared inbox; it must be accepted."""
    status, answer = await peer.send(actor, shared_inbox(node), body)
    assert status == 202, answer


async def outcome(node: RunningNode, activity_id: str) -> str:
    """What the node's worker made of a received activity (waits for it)."""

    async def probe() -> str:
        return await node.ctx.store.inbox_outcomes(activity_id) or ""

    return await eventually(probe, message=f"the outcome of {activity_id}")


async def send_and_wait(
    peer: FakePeer, actor: PeerActor, node: RunningNode, body: dict[str, Any]
) -> str:
    """Send ``body`` and return the outcome the node recorded for it."""
    await send_ok(peer, actor, node, body)
    return await outcome(node, body["id"])


async def follows(
    node: RunningNode, direction: str, state: str | None = "accepted"
) -> list[Follow]:
    coop = await node.ctx.coop_actor()
    return await node.ctx.store.list_follows(coop.id, direction, state=state)


async def followers_page(http: aiohttp.ClientSession, node: RunningNode) -> list[str]:
    """The first page of the coop's public followers collection."""
    async with http.get(
        f"{node.actor_url}/followers?page=1", headers={"Accept": "application/activity+json"}
    ) as resp:
        assert resp.status == 200
        page = await resp.json(content_type=None)
    items: list[str] = page["orderedItems"]
    return items


async def accepted_follower(peer: FakePeer, actor: PeerActor, node: RunningNode) -> dict[str, Any]:
    """``actor`` follows the node's coop; returns the Follow once it is accepted."""
    before = len(peer.of_type("Accept"))
    follow = peer.follow(actor, node.actor_url)
    assert await send_and_wait(peer, actor, node, follow) == "accepted"
    await peer.wait_for("Accept", count=before + 1)
    return follow


async def our_pending_follow(
    node: RunningNode, peer: FakePeer, target: PeerActor
) -> dict[str, Any]:
    """The coop follows ``target``; returns the Follow as the peer received it."""
    before = len(peer.of_type("Follow"))
    record = await publish.follow(node.ctx, await node.ctx.coop_actor(), target.id)
    assert record.state == "pending"
    received = await peer.wait_for("Follow", count=before + 1)
    assert received[-1].verified, received[-1].reason
    body: dict[str, Any] = received[-1].body
    assert (body["id"], body["object"]) == (record.activity_id, target.id)
    return body


async def our_accepted_follow(node: RunningNode, peer: FakePeer, target: PeerActor) -> None:
    """The coop follows ``target`` and ``target`` accepts, as Mastodon does."""
    follow = await our_pending_follow(node, peer, target)
    accept = peer_activity(peer, target, "Accept", follow_core(follow))
    assert await send_and_wait(peer, target, node, accept) == "follow accepted"


async def mutual_follow(a: RunningNode, b: RunningNode) -> None:
    """Two real nodes follow each other (by handle, through WebFinger)."""
    await publish.follow(a.ctx, await a.ctx.coop_actor(), b.handle)
    await publish.follow(b.ctx, await b.ctx.coop_actor(), a.handle)

    async def both_accepted() -> bool:
        return len(await follows(a, "outbound")) == 1 and len(await follows(b, "outbound")) == 1

    await eventually(both_accepted, message="both follows accepted")
