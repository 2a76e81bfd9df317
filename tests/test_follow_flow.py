"""The follow flow between real nodes and Mastodon/GoToSocial-shaped peers."""

from __future__ import annotations

from conftest import NodeFactory, RunningNode, eventually
from fakepeer import FakePeer


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
