"""The ``deliver`` job against real receivers: retries, permanent failures, host health."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from outbox.publish import post_note
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.followers import add_followers, from_document, remote_follower
from tests.support.nodes import NodeFactory, RunningNode, eventually


async def with_follower(node: RunningNode, peer: FakePeer, username: str) -> PeerActor:
    actor = peer.add_actor(username)
    coop = await node.ctx.coop_actor()
    await add_followers(node.ctx.store, coop.id, [from_document(actor.document())])
    return actor


async def post(node: RunningNode, text: str) -> dict[str, Any]:
    return await post_note(node.ctx, await node.ctx.coop_actor(), text)


async def deliver_jobs(node: RunningNode) -> list[asyncpg.Record]:
    return list(
        await node.ctx.store.pool.fetch(
            "SELECT attempts, last_error FROM jobs WHERE kind = 'deliver' ORDER BY id"
        )
    )


async def failed_jobs(node: RunningNode) -> list[tuple[Any, ...]]:
    rows = await node.ctx.store.pool.fetch(
        "SELECT payload->>'inbox', attempts, last_error FROM failed_jobs ORDER BY id"
    )
    return [tuple(r) for r in rows]


def creates_of(peer: FakePeer, activity: dict[str, Any]) -> int:
    return sum(1 for r in peer.received if r.body.get("id") == activity["id"])


@pytest.mark.parametrize("failure", ["answers_503", "down"])
async def test_receiver_failing_then_recovering_gets_it_once(
    nodes: NodeFactory, failure: str
) -> None:
    node = await nodes("a")
    peer = await FakePeer().start()
    try:
        # Given a follower whose server answers 503 (or is down: 503 before reading)
        await with_follower(node, peer, "alice")
        if failure == "down":
            peer.down = True
        else:
            peer.inbox_status = 503
        # When the coop posts
        create = await post(node, "Offer: jam")

        # Then the delivery is retried with backoff, the error recorded
        async def retried() -> list[asyncpg.Record]:
            rows = await deliver_jobs(node)
            return [r for r in rows if r["attempts"] >= 2 and r["last_error"]]

        rows = await eventually(retried, message="a second failed attempt")
        if failure != "down":
            # The second attempt is claimed before its POST lands: wait for the answer.
            await eventually(lambda: _count(peer, create, 2), message="two answered attempts")
        assert rows[0]["last_error"] == f"{peer.base}/inbox answered 503"
        # And the host's failure is counted for today, without marking it unavailable
        hosts = await node.ctx.store.list_failing_hosts()
        assert [(h.host, h.failure_days, h.unavailable) for h in hosts] == [("127.0.0.1", 1, False)]

        # When the receiver recovers (every POST recorded so far was answered 503)
        peer.down = False
        peer.inbox_status = 202
        failed_attempts = creates_of(peer, create)
        if failure == "down":
            assert failed_attempts == 0
        else:
            assert failed_attempts >= 2
        await eventually(
            lambda: _count(peer, create, failed_attempts + 1), message="delivery after recovery"
        )
        await node.drain()
        # Then it got the activity exactly once after recovering, verified
        assert creates_of(peer, create) == failed_attempts + 1
        assert peer.received[-1].verified
        assert await node.ctx.store.queue_depth() == {}
        assert await failed_jobs(node) == []
        # And the success made the host healthy again
        assert await node.ctx.store.list_failing_hosts() == []
    finally:
        await peer.stop()


async def _count(peer: FakePeer, activity: dict[str, Any], at_least: int) -> bool:
    return creates_of(peer, activity) >= at_least


async def test_gone_receiver_fails_after_one_attempt(nodes: NodeFactory) -> None:
    node = await nodes("a")
    peer = await FakePeer().start()
    try:
        # Given a follower whose server answers 410 Gone
        await with_follower(node, peer, "alice")
        peer.inbox_status = 410
        # When the coop posts
        create = await post(node, "Offer: plums")
        await eventually(lambda: failed_jobs(node), message="the job to fail")
        # Then the job ended after one attempt, kept with the reason
        assert await failed_jobs(node) == [
            (f"{peer.base}/inbox", 1, f"{peer.base}/inbox answered 410")
        ]
        assert creates_of(peer, create) == 1
        assert await node.ctx.store.queue_depth() == {}
        # And a permanent refusal is not a host failure
        assert await node.ctx.store.list_failing_hosts() == []
    finally:
        await peer.stop()


async def test_connection_refused_is_retried(nodes: NodeFactory) -> None:
    node = await nodes("a")
    peer = await FakePeer().start()
    try:
        # Given a follower whose server is stopped (connections refused)
        await with_follower(node, peer, "alice")
        await peer.stop()
        # When the coop posts
        create = await post(node, "Offer: apples")

        # Then the delivery is retried, the connection error recorded
        async def retried() -> list[asyncpg.Record]:
            return [r for r in await deliver_jobs(node) if r["attempts"] >= 2]

        rows = await eventually(retried, message="a second attempt")
        assert rows[0]["last_error"].startswith(f"connection for {peer.base}/inbox")
        # When the server starts again on the same port
        await peer.start()
        await peer.wait_for("Create")
        await node.drain()
        # Then it receives the activity exactly once
        assert creates_of(peer, create) == 1
        assert peer.received[0].verified
        assert await node.ctx.store.queue_depth() == {}
        assert await failed_jobs(node) == []
    finally:
        await peer.stop()


async def test_gives_up_after_max_attempts(nodes: NodeFactory) -> None:
    # Given a node that tries a delivery at most 3 times
    node = await nodes("a", max_delivery_attempts=3)
    peer = await FakePeer().start()
    try:
        # And a follower whose server always answers 503
        await with_follower(node, peer, "alice")
        peer.inbox_status = 503
        # When the coop posts
        create = await post(node, "Offer: pears")
        await eventually(lambda: failed_jobs(node), message="the job to be given up")
        # Then after 3 attempts the job is kept in failed_jobs with "gave up"
        inbox = f"{peer.base}/inbox"
        assert await failed_jobs(node) == [(inbox, 3, f"gave up: {inbox} answered 503")]
        assert creates_of(peer, create) == 3
        assert await node.ctx.store.queue_depth() == {}
    finally:
        await peer.stop()


async def test_unavailable_host_is_skipped_until_it_speaks(nodes: NodeFactory) -> None:
    # Given a node that marks a host unavailable after failures on one day
    node = await nodes("a", unavailable_after_days=1)
    bad = await FakePeer(hostname="localhost").start()
    good = await FakePeer().start()
    try:
        carol = await with_follower(node, bad, "carol")
        await with_follower(node, good, "dave")
        bad.inbox_status = 503
        # When a delivery to the failing host fails
        first = await post(node, "Post 1")
        await eventually(lambda: failed_jobs(node), message="the retry to be skipped")
        # Then the host is marked unavailable and the retry is skipped without a request
        hosts = await node.ctx.store.list_failing_hosts()
        assert [(h.host, h.unavailable) for h in hosts] == [("localhost", True)]
        bad_inbox = f"{bad.base}/inbox"
        assert await failed_jobs(node) == [(bad_inbox, 2, "localhost is marked unavailable")]
        assert creates_of(bad, first) == 1
        # When the host works again, later posts still skip it (no request made)
        bad.inbox_status = 202
        second = await post(node, "Post 2")
        await good.wait_for("Create", count=2)
        await node.drain()
        assert creates_of(bad, second) == 0
        assert [row[1:] for row in await failed_jobs(node)] == [
            (2, "localhost is marked unavailable"),
            (1, "localhost is marked unavailable"),
        ]
        assert node.ctx.metrics.deliveries["skipped"] == 2
        # And the other host got both posts
        assert creates_of(good, first) == 1
        assert creates_of(good, second) == 1

        # When the host sends us an activity
        note = bad.note(carol, "Hello from the unavailable host")
        status, answer = await bad.send(carol, f"{node.base_url}/inbox", bad.create(carol, note))
        assert status == 202, answer

        async def revived() -> bool:
            return await node.ctx.store.list_failing_hosts() == []

        await eventually(revived, message="the host to be revived")
        # Then it receives the next post
        third = await post(node, "Post 3")
        await bad.wait_for("Create")
        await node.drain()
        assert creates_of(bad, third) == 1
        assert len(await failed_jobs(node)) == 2
    finally:
        await bad.stop()
        await good.stop()


async def test_waiting_for_a_connection_to_a_slow_host_is_not_a_failure(
    nodes: NodeFactory,
) -> None:
    # Given a node with the production delivery timeout (20 s) whose worker runs many
    # deliveries at once, and 64 followers with personal inboxes on one slow server:
    # at most 8 connections per host, so the last of 8 waves waits 5.25 s for one
    node = await nodes(
        "a", delivery_timeout_seconds=20.0, worker_concurrency=64, job_lease_seconds=60.0
    )
    peer = await FakePeer(cache_keys=True).start()
    try:
        peer.inbox_delay = 0.75
        coop = await node.ctx.coop_actor()
        followers = [remote_follower(peer.base, f"f{i}", shared_inbox=False) for i in range(64)]
        await add_followers(node.ctx.store, coop.id, followers)
        # When the coop posts
        create = await post(node, "Offer: a slow Tuesday")

        async def all_received() -> bool:
            return creates_of(peer, create) >= 64

        await eventually(all_received, timeout=15, message="64 deliveries")
        await node.drain()
        # Then every delivery succeeded on its first attempt: queueing for a pooled
        # connection is not a connect timeout, and the host is not counted as failing
        assert creates_of(peer, create) == 64
        assert node.ctx.metrics.deliveries == {"delivered": 64}
        assert await node.ctx.store.list_failing_hosts() == []
        assert await node.ctx.store.queue_depth() == {}
    finally:
        await peer.stop()
