"""`coopfed delete-coop`: followers get a signed Delete of the actor, then 410 Gone."""

from __future__ import annotations

import aiohttp
import orjson

from outbox.lifecycle import delete_actor
from outbox.publish import follow
from tests.support.cli import BARE_ENV, coopfed
from tests.support.fakepeer import PUBLIC, FakePeer
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import accepted_follower, our_accepted_follow, shared_inbox

AP = {"Accept": "application/activity+json"}


async def _status(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with http.get(url, headers=AP) as resp:
        return resp.status, orjson.loads(await resp.read())


async def test_followers_get_a_signed_delete_and_the_actor_is_gone(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    a = await nodes("a")
    b = await nodes("b")
    # Mastodon keeps the key of an actor it follows: the Delete verifies with it
    # although the actor's URL answers 410 by the time it arrives.
    peer = await FakePeer(style="mastodon", cache_keys=True).start()
    try:
        # Given a Mastodon follower, a coopfed follower (B) and a Mastodon user A follows
        alice, bob = peer.add_actor("alice"), peer.add_actor("bob")
        await accepted_follower(peer, alice, a)
        await our_accepted_follow(a, peer, bob)
        b_coop = await b.ctx.coop_actor()
        await follow(b.ctx, b_coop, a.handle)

        async def b_follows_a() -> bool:
            return bool(await b.ctx.store.list_follows(b_coop.id, "outbound"))

        await eventually(b_follows_a, message="A accepts B")
        await a.drain()

        # When the coop is deleted
        activity, queued = await delete_actor(a.ctx, await a.ctx.coop_actor())
        # Then one Delete goes to the peer's shared inbox (alice and bob share it)
        # and one to B
        assert queued == 2
        deletes = await peer.wait_for("Delete")
        assert len(deletes) == 1
        assert deletes[0].path == "/inbox"
        assert deletes[0].verified, deletes[0].reason
        assert deletes[0].signer == a.actor_url
        assert deletes[0].body == {
            "@context": deletes[0].body["@context"],
            "id": activity["id"],
            "type": "Delete",
            "actor": a.actor_url,
            "object": a.actor_url,
            "to": [PUBLIC],
            "cc": [f"{a.actor_url}/followers"],
        }

        # And B verifies it and drops its follow of the coop
        async def b_dropped_a() -> bool:
            return not await b.ctx.store.list_follows(b_coop.id, "outbound", state=None)

        await eventually(b_dropped_a, message="B forgets A")
        assert await b.ctx.store.inbox_outcomes(activity["id"]) == "actor deleted"
        await a.drain()
        assert await a.ctx.store.pool.fetchval("SELECT count(*) FROM failed_jobs") == 0

        # And the actor answers 410 with a Tombstone
        status, body = await _status(http, a.actor_url)
        assert status == 410
        assert {k: body[k] for k in ("id", "type", "formerType")} == {
            "id": a.actor_url,
            "type": "Tombstone",
            "formerType": "Organization",
        }
        # And so do its collections and WebFinger
        for url in (f"{a.actor_url}/followers", f"{a.actor_url}/outbox"):
            assert (await _status(http, url))[0] == 410, url
        status, body = await _status(
            http, f"{a.base_url}/.well-known/webfinger?resource=acct:{a.handle}"
        )
        assert (status, body["reason"]) == (410, "gone")
        # And its inboxes refuse what arrives
        like = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": peer.new_id(alice),
            "type": "Like",
            "actor": alice.id,
            "object": a.actor_url,
        }
        for inbox in (f"{a.actor_url}/inbox", shared_inbox(a)):
            status, answer = await peer.send(alice, inbox, like)
            assert (status, answer["reason"]) == (410, "actor_deleted"), inbox
        assert a.ctx.metrics.inbox_rejected["actor_deleted"] == 2
        # And the Delete itself stays readable
        status, body = await _status(http, activity["id"])
        assert (status, body["type"]) == (200, "Delete")
    finally:
        await peer.stop()


async def test_delete_coop_command_asks_for_yes(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    peer = await FakePeer(style="gotosocial", cache_keys=True).start()
    try:
        alice = peer.add_actor("alice")
        await accepted_follower(peer, alice, node)
        # When the admin runs `coopfed delete-coop` without --yes
        code, out, err = await coopfed(node, "delete-coop", env=BARE_ENV)
        # Then nothing happens
        assert (code, out) == (2, "")
        assert "run again with --yes" in err
        assert (await _status(http, node.actor_url))[0] == 200
        # When they confirm
        code, out, err = await coopfed(node, "delete-coop", "--yes", env=BARE_ENV)
        # Then the follower gets the Delete and the actor is gone
        assert code == 0, err
        assert out.startswith(f"deleted @coop@{node.settings.domain}: Delete ")
        assert out.endswith(
            "queued for 1 inbox(es). Keep the node running until "
            "`coopfed status` shows no deliveries queued.\n"
        )
        deletes = await peer.wait_for("Delete")
        assert deletes[0].verified, deletes[0].reason
        assert deletes[0].body["object"] == node.actor_url
        assert (await _status(http, node.actor_url))[0] == 410
        # And a second delete is refused
        code, out, err = await coopfed(node, "delete-coop", "--yes", env=BARE_ENV)
        assert code == 1
        assert err.splitlines()[-1] == f"coopfed: @coop@{node.settings.domain} was already deleted"
    finally:
        await peer.stop()
