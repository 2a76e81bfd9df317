"""Per-host rate limits: token buckets, bounded, and the inbox's 429."""

from __future__ import annotations

import pytest

from federation.ratelimit import RateLimiter
from tests.support.fakepeer import FakePeer
from tests.support.nodes import NodeFactory


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_refills_at_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    # Given a full bucket of 3, three requests pass and the fourth waits half a second
    assert [limiter.take("h") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("h") == pytest.approx(0.5)
    # When half a second passes, one more fits
    clock.now += 0.5
    assert limiter.take("h") == 0.0
    # And other hosts have their own bucket
    assert limiter.take("other") == 0.0


def test_keys_are_bounded_least_recent_first() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=3, clock=FakeClock())
    for key in ("a", "b", "c", "d"):
        limiter.take(key)
    assert len(limiter) == 3
    # "a" was dropped, so it starts again with a full bucket
    assert limiter.take("a") == 0.0
    assert limiter.take("d") > 0


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)


async def test_inbox_answers_429_with_retry_after(nodes: NodeFactory) -> None:
    node = await nodes("a", inbox_rate=0.5, inbox_burst=2)
    peer = await FakePeer().start()
    try:
        alice = peer.add_actor("alice")
        statuses = []
        for _ in range(3):
            note = peer.note(alice, "hello")
            status, answer = await peer.send(
                alice, f"{node.base_url}/inbox", peer.create(alice, note)
            )
            statuses.append((status, answer.get("reason")))
        # Then the burst passes and the third request is refused, nothing stored
        assert statuses[:2] == [(202, None), (202, None)]
        assert statuses[2] == (429, "rate_limited")
        count = await node.ctx.store.pool.fetchval("SELECT count(*) FROM inbox_activities")
        assert count == 2
    finally:
        await peer.stop()
