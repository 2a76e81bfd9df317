"""Limits on what one client or one remote actor can make the node do.

- C2S: a token bucket per bearer token (``c2s_rate``/``c2s_burst``): 429 + Retry-After.
- Inbox: at most ``max_pending_per_actor`` unprocessed activities per remote actor:
  429 ``actor_queue_full`` + Retry-After, nothing stored; the cap lifts as work is done,
  and an activity given up on counts no more.

The per-host inbox rate limit is in test_ratelimit.py; outbound timeouts in
test_inbox.py (key host timing out) and test_faults.py (slow receivers).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import orjson

from coopfed.app import make_runner
from outbox.c2s import issue_token
from tests.support.fakepeer import FakePeer
from tests.support.nodes import NodeFactory


async def test_c2s_is_rate_limited_per_token(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    # Given a node allowing a burst of 2 client requests per token, and two tokens
    node = await nodes("a", c2s_rate=0.5, c2s_burst=2)
    coop = await node.ctx.coop_actor()
    _, first = await issue_token(node.ctx, coop, "first")
    _, second = await issue_token(node.ctx, coop, "second")

    async def get(token: str) -> tuple[int, str | None, str | None]:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{node.base_url}/api/exchanges", headers=headers) as resp:
            reason = (await resp.json()).get("reason") if resp.status != 200 else None
            return resp.status, reason, resp.headers.get("Retry-After")

    # When the first token makes three requests at once
    answers = [await get(first) for _ in range(3)]
    # Then the burst passes and the third is refused with a Retry-After of 2 s (rate 0.5/s)
    assert answers == [(200, None, None), (200, None, None), (429, "rate_limited", "2")]
    # And the other token is not affected
    assert await get(second) == (200, None, None)


async def test_one_actor_cannot_queue_more_than_its_cap(nodes: NodeFactory) -> None:
    # Given a node whose workers do not run, allowing 3 waiting activities per actor
    node = await nodes("a", workers=0, max_pending_per_actor=3)
    peer = await FakePeer().start()
    try:
        alice, bob = peer.add_actor("alice"), peer.add_actor("bob")
        inbox = f"{node.base_url}/inbox"
        creates = [peer.create(alice, peer.note(alice, f"n{i}")) for i in range(4)]
        # When alice sends four activities
        answers = [await peer.send(alice, inbox, c) for c in creates]
        # Then three are accepted and the fourth is refused, with nothing stored for it
        assert [(s, a.get("status") or a.get("reason")) for s, a in answers] == [
            (202, "accepted"),
            (202, "accepted"),
            (202, "accepted"),
            (429, "actor_queue_full"),
        ]
        assert await node.ctx.store.pending_inbox_count(alice.id) == 3
        # And a replay of an accepted one is still a duplicate, not a refusal
        assert await peer.send(alice, inbox, creates[0]) == (202, {"status": "duplicate"})
        # And another actor of the same host is not affected
        status, _ = await peer.send(bob, inbox, peer.create(bob, peer.note(bob, "b")))
        assert status == 202
        # When a worker has done alice's work
        await make_runner(node.ctx, "test").run_until_idle(timeout=15)
        # Then she may send again
        status, answer = await peer.send(alice, inbox, creates[3])
        assert (status, answer) == (202, {"status": "accepted"})
    finally:
        await peer.stop()


async def test_the_queue_full_answer_has_a_retry_after(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    # Given a node whose workers do not run, allowing 1 waiting activity per actor
    node = await nodes("a", workers=0, max_pending_per_actor=1)
    peer = await FakePeer().start()
    try:
        alice = peer.add_actor("alice")
        inbox = f"{node.base_url}/inbox"
        assert (await peer.send(alice, inbox, peer.create(alice, peer.note(alice, "1"))))[0] == 202
        # When a second one arrives
        raw = orjson.dumps(peer.create(alice, peer.note(alice, "2")))
        headers = peer.signed_headers(alice, inbox, raw)
        async with http.post(inbox, data=raw, headers=headers) as resp:
            # Then it is a 429 JSON answer saying when to come back
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "60"
            assert resp.content_type == "application/json"
            assert (await resp.json())["reason"] == "actor_queue_full"
    finally:
        await peer.stop()


async def test_an_activity_given_up_on_stops_counting(nodes: NodeFactory) -> None:
    # Given a node that tries each received activity once, workers not running
    node = await nodes("a", workers=0, max_inbox_attempts=1, max_pending_per_actor=1)
    peer = await FakePeer().start()
    try:
        alice = peer.add_actor("alice")
        inbox = f"{node.base_url}/inbox"
        follow = peer.follow(alice, node.actor_url)
        assert (await peer.send(alice, inbox, follow))[0] == 202
        # And alice's server then fails (503) while her cached document is stale
        await node.ctx.store.pool.execute(
            "UPDATE remote_actors SET fetched_at = $1", datetime.now(UTC) - timedelta(days=2)
        )
        peer.get_status = 503
        # When a worker processes the Follow (a temporary failure, on the last attempt)
        await make_runner(node.ctx, "test").run_until_idle(timeout=15)
        # Then the activity is recorded as given up and kept among failed jobs
        outcome = await node.ctx.store.inbox_outcomes(follow["id"])
        assert outcome is not None and outcome.startswith("failed: gave up: http_status 503")
        failed = await node.ctx.store.count_failed_jobs()
        assert failed == {"process_inbox": 1}
        # And it no longer counts against alice's cap
        assert await node.ctx.store.pending_inbox_count(alice.id) == 0
        peer.get_status = None
        status, _ = await peer.send(alice, inbox, peer.create(alice, peer.note(alice, "x")))
        assert status == 202
    finally:
        await peer.stop()
