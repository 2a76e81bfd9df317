"""The coop follows, approves and unfollows its own members from the admin CLI
(`coopfed follow alice@HOST`), applied locally: nothing is queued for delivery."""

from __future__ import annotations

from outbox import publish
from tests.support.cli import coopfed
from tests.support.mastoflow import add_member
from tests.support.nodes import NodeFactory


async def test_the_coop_follows_and_approves_members_by_local_handle(nodes: NodeFactory) -> None:
    node = await nodes("a", manually_approves_followers=True)
    alice = await add_member(node, "alice")
    bob = await add_member(node, "bob")
    # When the admin follows alice by her handle on this node
    result = await coopfed(node, "follow", f"alice@{node.settings.domain}")
    # Then the coop follows her at once, and she has a follower
    handle = f"@alice@{node.settings.domain}"
    assert (result.code, result.out) == (0, f"now following alice ({handle})\n")
    coop = await node.ctx.coop_actor()
    assert await node.ctx.store.count_follows(alice.id, "inbound") == 1
    # A second time: nothing to do, exit 0
    again = await coopfed(node, "follow", f"@alice@{node.settings.domain}")
    assert again.code == 0, again
    # When bob asks to follow the coop (which approves its followers by hand)
    record = await publish.follow(node.ctx, bob, node.actor_url)
    assert record.state == "pending"
    # Then the admin approves him by handle, and his follow is accepted
    approved = await coopfed(node, "approve", f"bob@{node.settings.domain}")
    assert (approved.code, approved.out) == (0, f"approved bob@{node.settings.domain}\n")
    follow = await node.ctx.store.get_follow(bob.id, node.actor_url, "outbound")
    assert follow is not None and follow.state == "accepted"
    # And unfollowing alice removes both sides
    gone = await coopfed(node, "unfollow", f"alice@{node.settings.domain}")
    assert (gone.code, gone.out) == (0, f"unfollowed alice@{node.settings.domain}\n")
    assert await node.ctx.store.count_follows(alice.id, "inbound") == 0
    assert await node.ctx.store.count_follows(coop.id, "outbound") == 0
    queued = await node.ctx.store.pool.fetchval("SELECT count(*) FROM jobs WHERE kind = 'deliver'")
    assert queued == 0
