"""Fan-out: one signed POST per distinct inbox, blocked domains get nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from coopfed.app import CONFIG_CHANNEL, make_runner
from outbox.deliver import classify_status
from outbox.publish import post_note
from tests.support.fakepeer import FakePeer, Received
from tests.support.followers import add_followers, from_document
from tests.support.nodes import NodeFactory, RunningNode, eventually


def creates_by_path(peer: FakePeer) -> Counter[str]:
    return Counter(r.path for r in peer.of_type("Create"))


async def follow_node(peer: FakePeer, node: RunningNode, username: str, *, shared: bool) -> None:
    actor = peer.add_actor(username, shared_inbox=shared)
    status, answer = await peer.send(
        actor, f"{node.base_url}/inbox", peer.follow(actor, node.actor_url)
    )
    assert status == 202, answer


async def test_one_post_per_distinct_inbox(nodes: NodeFactory) -> None:
    node = await nodes("a")
    mastodon = await FakePeer(style="mastodon").start()
    gts = await FakePeer(style="gotosocial").start()
    blocked = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        # Given three followers on a Mastodon server and three on a GoToSocial server,
        # all sharing their server's shared inbox, one GoToSocial follower without a
        # shared inbox, and one follower on a server we block afterwards
        for name in ("m1", "m2", "m3"):
            await follow_node(mastodon, node, name, shared=True)
        for name in ("g1", "g2", "g3"):
            await follow_node(gts, node, name, shared=True)
        await follow_node(gts, node, "solo", shared=False)
        await follow_node(blocked, node, "x1", shared=True)
        coop = await node.ctx.coop_actor()

        async def all_followers() -> bool:
            return await node.ctx.store.count_follows(coop.id, "inbound") == 8

        await eventually(all_followers, message="8 accepted followers")
        await node.drain()
        await node.ctx.store.add_domain_block("localhost")
        await node.ctx.store.pool.execute("SELECT pg_notify($1, 'blocks')", CONFIG_CHANNEL)

        async def block_loaded() -> bool:
            return node.ctx.blocks.is_blocked("localhost")

        await eventually(block_loaded, message="the block reaches the running node")
        queued_before = node.ctx.metrics.deliveries_queued

        # When the coop posts, also mentioning followers already reached by the fan-out
        create = await post_note(
            node.ctx,
            coop,
            "Offer: 20 kg of flour",
            mentions=[mastodon.actors["m1"].id, gts.actors["solo"].id],
        )
        await mastodon.wait_for("Create", count=1)
        await gts.wait_for("Create", count=2)
        await node.drain()

        # Then exactly one POST per distinct inbox was queued and made
        assert node.ctx.metrics.deliveries_queued - queued_before == 3
        assert creates_by_path(mastodon) == {"/inbox": 1}
        assert creates_by_path(gts) == {"/inbox": 1, "/users/solo/inbox": 1}
        # And each was the same activity, verified by the receiving server
        received: list[Received] = mastodon.of_type("Create") + gts.of_type("Create")
        assert [(r.verified, r.reason, r.signer) for r in received] == [
            (True, "ok", node.actor_url)
        ] * 3
        assert {r.body["id"] for r in received} == {create["id"]}
        # And the blocked domain got nothing (its follower got its Accept before the block)
        assert [r.body["type"] for r in blocked.received] == ["Accept"]
        assert await node.ctx.store.queue_depth() == {}
        assert await node.ctx.store.count_failed_jobs() == {}
    finally:
        for peer in (mastodon, gts, blocked):
            await peer.stop()


async def test_delivery_queued_before_a_block_is_not_sent(nodes: NodeFactory) -> None:
    # Given a node without running workers, with a follower on a server
    node = await nodes("a", workers=0)
    peer = await FakePeer(hostname="localhost").start()
    try:
        coop = await node.ctx.coop_actor()
        actor = peer.add_actor("x1")
        await add_followers(node.ctx.store, coop.id, [from_document(actor.document())])
        # And a post whose delivery is queued
        await post_note(node.ctx, coop, "Queued before the block")
        assert await node.ctx.store.queue_depth() == {"deliver": 1}
        # When the domain is blocked before a worker runs the delivery
        await node.ctx.store.add_domain_block("localhost")
        node.ctx.blocks.add("localhost")
        runner = make_runner(node.ctx, "test")
        await runner.run_until_idle(timeout=10)
        # Then nothing is sent and the job ends at once, saying why
        assert peer.received == []
        rows = await node.ctx.store.pool.fetch("SELECT attempts, last_error FROM failed_jobs")
        assert [tuple(r) for r in rows] == [(1, "localhost is blocked")]
        assert node.ctx.metrics.deliveries == {"blocked": 1}
    finally:
        await peer.stop()


async def test_no_followers_no_deliveries(nodes: NodeFactory) -> None:
    # Given a node nobody follows
    node = await nodes("a", workers=0)
    # When it posts
    await post_note(node.ctx, await node.ctx.coop_actor(), "Anyone there?")
    # Then the post is in the outbox and no delivery is queued
    assert await node.ctx.store.queue_depth() == {}
    count = await node.ctx.store.pool.fetchval("SELECT count(*) FROM outbox_activities")
    assert count == 1


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (400, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (410, "permanent"),
        (422, "permanent"),
        (501, "permanent"),
        (401, "retry"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (599, "retry"),
        (301, "retry"),
        (302, "retry"),
    ],
)
def test_classify_status(status: int, outcome: str) -> None:
    # Mastodon's delivery rules: 2xx done; 4xx but 401/408/429,
    # and 501, permanent; everything else (5xx, 401, 408, 429, redirects) retried.
    assert classify_status(status) == outcome
