"""Pledges: accepted by rule only from coops we follow, and capped at what is missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from outbox import agreements, market
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.nodes import NodeFactory, RunningNode
from tests.support.peerflow import our_accepted_follow, send_and_wait

FUND: dict[str, Any] = {
    "kind": "solidarity",
    "title": "Roof repair",
    "quantity": "3000",
    "currency": "EUR",
}


def _pledge(peer: FakePeer, actor: PeerActor, proposer: str, uri: str, amount: int) -> Any:
    return agreements.build_offer(
        activity_id=peer.new_id(actor),
        actor=actor.id,
        proposer=proposer,
        proposal_id=uri,
        unit="one",
        quantity=Decimal(amount),
        reciprocal=None,
    )


async def _fund(node: RunningNode) -> str:
    deadline = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    create = await market.publish_proposal(
        node.ctx, await node.ctx.coop_actor(), FUND | {"deadline": deadline}
    )
    return str(create["object"]["id"])


async def test_a_strangers_huge_pledge_waits_and_is_capped(nodes: NodeFactory) -> None:
    a = await nodes("a")
    uri = await _fund(a)
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given an actor the coop does not follow
        mallory = peer.add_actor("mallory")
        # When it pledges 999,999,999,999 € to a 3,000 € request
        pledge = _pledge(peer, mallory, a.actor_url, uri, 999_999_999_999)
        result = await send_and_wait(peer, mallory, a, pledge)
        # Then the offer waits for a decision, counts for nothing yet, and is capped
        [exchange] = await a.ctx.store.list_exchanges()
        assert result == f"exchange {exchange.id} offered"
        assert (exchange.state, exchange.quantity) == ("offered", Decimal(3000))
        row = await a.ctx.store.get_proposal(uri)
        assert row is not None and row.pledged == Decimal(0)
    finally:
        await peer.stop()


async def test_a_followed_coops_pledge_is_accepted_up_to_the_target(nodes: NodeFactory) -> None:
    a = await nodes("a")
    uri = await _fund(a)
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given a coop the node follows
        carol = peer.add_actor("carol")
        await our_accepted_follow(a, peer, carol)
        # When it pledges 5,000 € to the 3,000 € request
        first = _pledge(peer, carol, a.actor_url, uri, 5000)
        result = await send_and_wait(peer, carol, a, first)
        # Then it is accepted by rule, for the 3,000 € that were missing
        assert result.endswith("offered and accepted by rule"), result
        row = await a.ctx.store.get_proposal(uri)
        assert row is not None and row.pledged == Decimal(3000)
        # And a further pledge, once the target is reached, is refused
        second = _pledge(peer, carol, a.actor_url, uri, 10)
        assert (await send_and_wait(peer, carol, a, second)).startswith("refused")
        row = await a.ctx.store.get_proposal(uri)
        assert row is not None and row.pledged == Decimal(3000)
    finally:
        await peer.stop()


async def test_both_rules_can_be_turned_off(nodes: NodeFactory) -> None:
    a = await nodes("a")
    uri = await _fund(a)
    # Given the coop's admin opts into pledges from anyone, uncapped
    await a.ctx.store.set_rule("auto_accept_pledges_from_anyone", True)
    await a.ctx.store.set_rule("cap_pledges", False)
    assert await market.rules(a.ctx) == {
        "auto_accept_pledges": True,
        "auto_accept_pledges_from_anyone": True,
        "cap_pledges": False,
        "auto_accept_offers": False,
    }
    peer = await FakePeer(style="mastodon").start()
    try:
        dave = peer.add_actor("dave")
        # When an unknown actor pledges 4,000 €
        result = await send_and_wait(peer, dave, a, _pledge(peer, dave, a.actor_url, uri, 4000))
        # Then it is accepted as sent
        assert result.endswith("offered and accepted by rule"), result
        row = await a.ctx.store.get_proposal(uri)
        assert row is not None and row.pledged == Decimal(4000)
    finally:
        await peer.stop()


async def test_the_rules_are_set_with_coopfed_rules(nodes: NodeFactory) -> None:
    from coopfed.state_file import save_identity
    from tests.support.cli import coopfed, ok

    a = await nodes("a")
    save_identity(a.settings)
    # When the admin opens pledges to anyone and lifts the cap
    out = ok(
        await coopfed(a, "rules", "--auto-accept-pledges-from-anyone", "on", "--cap-pledges", "off")
    )
    # Then the command shows every rule, and the node applies them
    assert out == (
        "auto-accept-pledges: on\nauto-accept-pledges-from-anyone: on\n"
        "cap-pledges: off\nauto-accept-offers: off\n"
    )
    assert await market.rules(a.ctx) == market.RULE_DEFAULTS | {
        "auto_accept_pledges_from_anyone": True,
        "cap_pledges": False,
    }
