"""The follow flow between real nodes and Mastodon/GoToSocial-shaped peers."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from outbox import publish
from tests.support.fakepeer import FakePeer
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import (
    accepted_follower,
    follow_core,
    followers_page,
    follows,
    our_pending_follow,
    outcome,
    peer_activity,
    send_ok,
)


async def test_mastodon_follower_gets_accept_and_posts(node: RunningNode) -> None:
    # Given a Mastodon-shaped server with one user
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        # When alice follows the coop through the shared inbox
        follow = peer.follow(alice, node.actor_url)
        status, answer = await peer.send(alice, f"{node.base_url}/inbox", follow)
        assert status == 202, answer
        # Then she receives a signed Accept embedding her Follow
        accepts = await peer.wait_for("Accept")
        assert accepts[0].verified, accepts[0].reason
        assert accepts[0].body["object"]["id"] == follow["id"]
        assert accepts[0].body["actor"] == node.actor_url
        # And a later post reaches her shared inbox, verified
        from outbox.publish import post_note

        await post_note(node.ctx, await node.ctx.coop_actor(), "Hello fediverse")
        creates = await peer.wait_for("Create")
        assert creates[0].verified
        assert creates[0].path == "/inbox"
        assert creates[0].body["object"]["content"] == "<p>Hello fediverse</p>"
    finally:
        await peer.stop()


async def test_two_coops_follow_each_other(nodes: NodeFactory) -> None:
    a = await nodes("a")
    b = await nodes("b")
    from outbox.publish import follow, post_note

    await follow(a.ctx, await a.ctx.coop_actor(), b.handle)

    async def accepted() -> bool:
        rows = await a.ctx.store.list_follows((await a.ctx.coop_actor()).id, "outbound")
        return bool(rows)

    await eventually(accepted, message="B accepts A's follow")
    await post_note(b.ctx, await b.ctx.coop_actor(), "Offer: bread")

    async def received() -> object:
        return await a.ctx.store.list_objects_by(b.actor_url)

    posts = await eventually(received, message="A stores B's post")
    assert posts[0].body["content"] == "<p>Offer: bread</p>"


# -- manual approval -------------------------------------------------------------


async def test_manual_approval_approve_and_reject(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    node = await nodes("a", manually_approves_followers=True)
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        bob = peer.add_actor("bob")
        # Given a coop that approves its followers by hand
        # When alice and bob ask to follow it
        alice_follow = peer.follow(alice, node.actor_url)
        bob_follow = peer.follow(bob, node.actor_url)
        await send_ok(peer, alice, node, alice_follow)
        await send_ok(peer, bob, node, bob_follow)
        # Then both requests wait, nobody gets an Accept, and nobody is listed
        assert await outcome(node, alice_follow["id"]) == "pending approval"
        assert await outcome(node, bob_follow["id"]) == "pending approval"
        await node.drain()
        assert peer.received == []
        pending = await follows(node, "inbound", "pending")
        assert sorted(f.remote_actor for f in pending) == sorted([alice.id, bob.id])
        assert await followers_page(http, node) == []

        # When the admin approves alice (by URL)
        coop = await node.ctx.coop_actor()
        approved = await publish.approve(node.ctx, coop, alice.id)
        # Then alice gets an Accept of her own Follow, and is listed
        assert approved.uri == alice.id
        accepts = await peer.wait_for("Accept")
        assert accepts[0].verified, accepts[0].reason
        assert accepts[0].path == "/users/alice/inbox"
        assert accepts[0].body["object"] == {
            "id": alice_follow["id"],
            "type": "Follow",
            "actor": alice.id,
            "object": node.actor_url,
        }
        assert await followers_page(http, node) == [alice.id]
        with pytest.raises(publish.ActionError) as again:
            await publish.approve(node.ctx, coop, alice.id)
        assert again.value.reason == "already_accepted"

        # When the admin rejects bob (by handle)
        rejected = await publish.reject(node.ctx, coop, f"bob@{peer.domain}")
        # Then bob gets a Reject of his Follow, and he is neither listed nor pending
        assert rejected.uri == bob.id
        rejects = await peer.wait_for("Reject")
        assert rejects[0].verified, rejects[0].reason
        assert rejects[0].body["object"]["id"] == bob_follow["id"]
        assert rejects[0].body["actor"] == node.actor_url
        assert await followers_page(http, node) == [alice.id]
        assert [f.remote_actor for f in await follows(node, "inbound", None)] == [alice.id]
        assert len(peer.of_type("Accept")) == 1
    finally:
        await peer.stop()


# -- the follower takes its follow back ------------------------------------------


@pytest.mark.parametrize("shape", ["embedded", "id_only", "embedded_unknown_id"])
async def test_undo_follow_removes_the_follower(
    node: RunningNode, http: aiohttp.ClientSession, shape: str
) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        # Given alice follows the coop
        follow = await accepted_follower(peer, alice, node)
        assert await followers_page(http, node) == [alice.id]
        # When she sends Undo(Follow): as Mastodon does (embedded), by id only, or
        # embedding a Follow whose id the node never saw (matched by actor and object)
        inner: Any = follow_core(follow)
        if shape == "id_only":
            inner = follow["id"]
        elif shape == "embedded_unknown_id":
            inner = inner | {"id": peer.new_id(alice)}
        undo = peer_activity(peer, alice, "Undo", inner)
        await send_ok(peer, alice, node, undo)
        # Then she no longer follows
        assert await outcome(node, undo["id"]) == "unfollowed"
        assert await follows(node, "inbound", None) == []
        assert await followers_page(http, node) == []
    finally:
        await peer.stop()


async def test_undo_follow_by_someone_else_is_refused(node: RunningNode) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        mallory = peer.add_actor("mallory")
        follow = await accepted_follower(peer, alice, node)
        # When mallory undoes alice's Follow by its id
        undo = peer_activity(peer, mallory, "Undo", follow["id"])
        await send_ok(peer, mallory, node, undo)
        # Then it is refused and alice still follows
        assert (await outcome(node, undo["id"])).startswith("refused")
        assert [f.remote_actor for f in await follows(node, "inbound")] == [alice.id]
    finally:
        await peer.stop()


async def test_repeated_follow_gets_another_accept_and_keeps_one_row(node: RunningNode) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        # Given alice follows the coop
        first = await accepted_follower(peer, alice, node)
        # When her server sends a new Follow (Mastodon does after losing state)
        second = peer.follow(alice, node.actor_url)
        await send_ok(peer, alice, node, second)
        # Then she gets a second Accept, of the new Follow id, and stays one follower
        assert await outcome(node, second["id"]) == "accepted"
        accepts = await peer.wait_for("Accept", count=2)
        assert [a.body["object"]["id"] for a in accepts] == [first["id"], second["id"]]
        rows = await follows(node, "inbound", None)
        assert [(r.remote_actor, r.state, r.activity_id) for r in rows] == [
            (alice.id, "accepted", second["id"])
        ]
    finally:
        await peer.stop()


# -- our follows of others -----------------------------------------------------------


async def test_reject_from_followee_removes_our_pending_follow(node: RunningNode) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        # Given the coop asked to follow alice
        follow = await our_pending_follow(node, peer, alice)
        assert [f.state for f in await follows(node, "outbound", None)] == ["pending"]
        # When alice rejects it (the Follow embedded, as Mastodon does)
        core = follow_core(follow)
        reject = peer_activity(peer, alice, "Reject", core)
        await send_ok(peer, alice, node, reject)
        # Then the coop no longer has a follow of alice
        assert await outcome(node, reject["id"]) == "follow rejected"
        assert await follows(node, "outbound", None) == []
    finally:
        await peer.stop()


async def test_accept_from_a_third_party_is_refused(node: RunningNode) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        mallory = peer.add_actor("mallory")
        # Given the coop asked to follow alice
        follow = await our_pending_follow(node, peer, alice)
        core = follow_core(follow)
        # When mallory, on the same server, signs an Accept of that Follow:
        # embedded, and by its id only
        embedded = peer_activity(peer, mallory, "Accept", core)
        by_id = peer_activity(peer, mallory, "Accept", follow["id"])
        await send_ok(peer, mallory, node, embedded)
        await send_ok(peer, mallory, node, by_id)
        # Then both are refused and the follow is still pending
        assert (await outcome(node, embedded["id"])).startswith("refused")
        assert (await outcome(node, by_id["id"])).startswith("refused")
        assert [(f.remote_actor, f.state) for f in await follows(node, "outbound", None)] == [
            (alice.id, "pending")
        ]
        # And alice's own Accept still works
        accept = peer_activity(peer, alice, "Accept", core)
        await send_ok(peer, alice, node, accept)
        assert await outcome(node, accept["id"]) == "follow accepted"
        assert [f.state for f in await follows(node, "outbound", None)] == ["accepted"]
    finally:
        await peer.stop()


async def test_follow_by_handle_resolves_webfinger(node: RunningNode) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        # When the coop follows alice@127.0.0.1:PORT
        handle = f"alice@{peer.domain}"
        record = await publish.follow(node.ctx, await node.ctx.coop_actor(), handle)
        # Then WebFinger led to her actor, and she receives a signed Follow
        assert record.remote_actor == alice.id
        received = await peer.wait_for("Follow")
        assert received[0].verified, received[0].reason
        assert received[0].body["object"] == alice.id
        assert received[0].body["actor"] == node.actor_url
    finally:
        await peer.stop()


async def test_unfollow_a_coopfed_node_removes_us_from_its_followers(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    a = await nodes("a")
    b = await nodes("b")
    coop_a = await a.ctx.coop_actor()
    # Given A follows B (by its handle coop@127.0.0.1:PORT, through WebFinger)
    await publish.follow(a.ctx, coop_a, b.handle)

    async def b_lists_a() -> bool:
        return await followers_page(http, b) == [a.actor_url]

    await eventually(b_lists_a, message="B lists A as a follower")

    async def a_follows_b() -> bool:
        return [f.state for f in await follows(a, "outbound", None)] == ["accepted"]

    await eventually(a_follows_b, message="A's follow is accepted")
    # When A unfollows B
    removed = await publish.unfollow(a.ctx, coop_a, b.handle)
    assert removed.uri == b.actor_url
    # Then A no longer follows B, and B no longer lists A
    assert await follows(a, "outbound", None) == []

    async def b_forgot_a() -> bool:
        return await follows(b, "inbound", None) == []

    await eventually(b_forgot_a, message="B drops A")
    assert await followers_page(http, b) == []
    with pytest.raises(publish.ActionError) as again:
        await publish.unfollow(a.ctx, coop_a, b.handle)
    assert again.value.reason == "not_following"


async def test_gotosocial_follower_gets_accept_and_posts(node: RunningNode) -> None:
    # Given a GoToSocial-shaped server (hs2019, keyId without fragment, ld+json)
    peer = await FakePeer(style="gotosocial").start()
    try:
        alice = peer.add_actor("alice")
        # When alice follows the coop through its personal inbox
        follow = peer.follow(alice, node.actor_url)
        status, answer = await peer.send(alice, f"{node.actor_url}/inbox", follow)
        assert status == 202, answer
        # Then she receives a signed Accept at her own inbox, with an id and actor
        accepts = await peer.wait_for("Accept")
        assert accepts[0].verified, accepts[0].reason
        assert accepts[0].path == "/users/alice/inbox"
        assert accepts[0].body["id"].startswith(f"{node.base_url}/activities/")
        assert accepts[0].body["actor"] == node.actor_url
        assert accepts[0].body["object"]["id"] == follow["id"]
        assert [f.remote_actor for f in await follows(node, "inbound")] == [alice.id]
        # And a post reaches her, signed
        await publish.post_note(node.ctx, await node.ctx.coop_actor(), "Need: flour")
        creates = await peer.wait_for("Create")
        assert creates[0].verified, creates[0].reason
        assert creates[0].body["object"]["content"] == "<p>Need: flour</p>"
    finally:
        await peer.stop()
