"""Offers, needs, solidarity and exchanges across real nodes, end to end.

Each test runs two or three in-process coopfed nodes on real ports (and, where a
Mastodon server is the other side, a FakePeer).  Exchange steps are checked on
both nodes, including the log of refused steps (``exchange_events.refused``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from outbox import agreements, market
from outbox.errors import ActionError
from outbox.fanout import send_activity
from tests.support.exchangeflow import (
    NEED,
    Step,
    _accepted,
    _activity_of,
    _all_emitted_valid,
    _follow,
    _in_days,
    _in_state,
    _need_with_offer,
    _only_exchange,
    _seen,
    _shared,
    _trail,
    _trusts,
)
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import (
    outcome,
)


async def test_solidarity_pledges_update_progress(nodes: NodeFactory) -> None:
    a = await nodes("a")
    b = await nodes("b")
    c = await nodes("c")
    await _follow(b, a)
    await _follow(c, a)
    await _trusts(a, b.actor_url, c.actor_url)
    a_coop = await a.ctx.coop_actor()
    deadline = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    create = await market.publish_proposal(
        a.ctx,
        a_coop,
        {
            "kind": "solidarity",
            "title": "Flood repair fund",
            "quantity": "5000",
            "currency": "EUR",
            "deadline": deadline,
        },
    )
    uri = create["object"]["id"]
    for peer, amount in ((b, 1000), (c, 1500)):
        await _seen(peer, uri)
        await market.respond(peer.ctx, await peer.ctx.coop_actor(), uri, quantity=Decimal(amount))

    async def pledged_at(n: RunningNode, total: int) -> bool:
        row = await n.ctx.store.get_proposal(uri)
        return row is not None and row.pledged == Decimal(total)

    await eventually(lambda: pledged_at(a, 2500), message="A sums the pledges")
    await eventually(lambda: pledged_at(b, 2500), message="B sees the progress")
    row = await b.ctx.store.get_proposal(uri)
    assert row is not None and "€2,500 pledged of €5,000 (50%)" in row.body["content"]


# -- the exchange, on three real nodes -----------------------------------------------------


async def test_exchange_records_agree_on_both_nodes(nodes: NodeFactory) -> None:
    a, b, c = await nodes("a"), await nodes("b"), await nodes("c")
    await _follow(b, a)
    await _follow(c, a)
    a_coop, b_coop = await a.ctx.coop_actor(), await b.ctx.coop_actor()
    # Given A publishes a need that both followers see
    create = await market.publish_proposal(a.ctx, a_coop, NEED | {"deadline": _in_days(1)})
    uri = create["object"]["id"]
    for follower in (b, c):
        assert (await _seen(follower, uri)).kind == "need"
    # When B offers 50 kg for 120 €
    at_b = await market.respond(
        b.ctx, b_coop, uri, quantity=Decimal(50), reciprocal=Decimal(120), message="From our mill"
    )
    at_a = await _only_exchange(a)
    # Then A records it and waits for a human: offers are not auto-accepted by default
    assert await outcome(a, at_b.offer_id) == f"exchange {at_a.id} offered"
    assert (at_a.role, at_a.state, at_a.responder, at_a.quantity, at_a.unit) == (
        "proposer", "offered", b.actor_url, Decimal(50), "kilogram"
    )  # fmt: skip
    assert (at_a.reciprocal_quantity, at_a.reciprocal_unit, at_a.message) == (
        Decimal(120), "one", "From our mill"
    )  # fmt: skip
    # When A accepts and then confirms the exchange happened
    await market.accept(a.ctx, a_coop, at_a.id)
    await _in_state(b, at_b.id, "accepted")
    await market.complete(a.ctx, a_coop, at_a.id)
    final_b = await _in_state(b, at_b.id, "completed")
    final_a = await a.ctx.store.get_exchange(at_a.id)
    assert final_a is not None
    # Then both records agree on everything but the role
    assert (final_a.role, final_b.role) == ("proposer", "responder")
    assert _shared(final_a) == _shared(final_b)
    assert final_a.agreement is not None and final_a.receipt is not None
    assert final_a.agreement["agreementStatus"] == "accepted"
    assert [e["fulfills"] for e in final_a.receipt["attachment"]] == [
        f"{final_a.agreement_uri}#primary",
        f"{final_a.agreement_uri}#reciprocal",
    ]
    # And both logged the same steps, by the proposer
    steps: list[Step] = [
        ("accept", "offered", "accepted", a.actor_url, None),
        ("complete", "accepted", "completed", a.actor_url, None),
    ]
    assert await _trail(a, at_a.id) == steps
    assert await _trail(b, at_b.id) == steps
    # And C, a follower only, has no part in it
    assert await c.ctx.store.list_exchanges() == []
    # And every activity A and B sent validates against the vocabulary and parses
    # with little-boxes (or structurally, for the types it lacks)
    assert sorted(await _all_emitted_valid(a, b, c)) == [
        "little-boxes: Accept",  # of the offer
        "little-boxes: Accept(Follow)",
        "little-boxes: Create(Note)",  # the need
        "little-boxes: Follow",
        "structural: Create(Document)",  # the receipt
        "structural: Offer(Agreement)",
    ]


async def test_reject_path(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    a_coop = await a.ctx.coop_actor()
    _, at_a, at_b = await _need_with_offer(a, b)
    # When A rejects the offer with a reason
    moved = await market.reject(a.ctx, a_coop, at_a.id, reason="Sold out")
    assert moved.state == "rejected"
    # Then B sees it rejected, by A
    await _in_state(b, at_b.id, "rejected")
    assert await _trail(b, at_b.id) == [("reject", "offered", "rejected", a.actor_url, None)]
    reject_id = await _activity_of(a, at_a.id, "reject")
    assert await outcome(b, reject_id) == f"exchange {at_b.id} rejected"
    # And nobody can accept it any more
    with pytest.raises(ActionError) as refused:
        await market.accept(a.ctx, a_coop, at_a.id)
    assert refused.value.reason == "illegal_transition"
    assert "structural: Reject" in await _all_emitted_valid(a, b)


async def test_withdraw_path(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    _, at_a, at_b = await _need_with_offer(a, b)
    # When B takes its offer back (Undo of the Offer)
    await market.withdraw(b.ctx, await b.ctx.coop_actor(), at_b.id)
    # Then A sees it withdrawn, by B, and can no longer accept it
    await _in_state(a, at_a.id, "withdrawn")
    assert await _trail(a, at_a.id) == [("withdraw", "offered", "withdrawn", b.actor_url, None)]
    with pytest.raises(ActionError):
        await market.accept(a.ctx, await a.ctx.coop_actor(), at_a.id)
    # And only the responder withdraws: A cannot
    with pytest.raises(ActionError) as refused:
        await market.withdraw(a.ctx, await a.ctx.coop_actor(), at_a.id)
    assert refused.value.reason == "not_ours"
    assert "little-boxes: Undo" in await _all_emitted_valid(a, b)


@pytest.mark.parametrize("who", ["proposer", "responder"])
async def test_cancel_after_acceptance(nodes: NodeFactory, who: str) -> None:
    a, b = await nodes("a"), await nodes("b")
    _, at_a, at_b = await _accepted(a, b)
    # When one side calls the accepted exchange off
    canceller = a if who == "proposer" else b
    mine = at_a if who == "proposer" else at_b
    await market.cancel(canceller.ctx, await canceller.ctx.coop_actor(), mine.id, reason="Flooded")
    # Then both nodes end cancelled
    final_a = await _in_state(a, at_a.id, "cancelled")
    final_b = await _in_state(b, at_b.id, "cancelled")
    by = canceller.actor_url
    assert (await _trail(a, at_a.id))[-1] == ("cancel", "accepted", "cancelled", by, None)
    assert (await _trail(b, at_b.id))[-1] == ("cancel", "accepted", "cancelled", by, None)
    # And the owner's Update(Agreement cancelled) reaches B (a confirmation when B
    # cancelled: already cancelled there, nothing applied twice)
    update_b = await eventually(
        lambda: _inbox_outcome(b, "Update"), message="B gets the agreement update"
    )
    expected = (
        "ignored: already cancelled" if who == "responder" else f"exchange {at_b.id} cancelled"
    )
    assert update_b == expected
    # And both records agree: the agreement is stored cancelled, commitments finished
    final_a = await _in_state(a, at_a.id, "cancelled")
    final_b = await _in_state(b, at_b.id, "cancelled")
    assert _shared(final_a) == _shared(final_b)
    assert final_a.agreement is not None
    assert final_a.agreement["agreementStatus"] == "cancelled"
    assert final_a.agreement["stipulates"]["finished"] is True
    assert final_a.agreement["stipulatesReciprocal"]["finished"] is True
    assert len(await _trail(b, at_b.id)) == 2
    checked = await _all_emitted_valid(a, b)
    assert "structural: Update(Agreement)" in checked
    assert ("structural: Reject" in checked) == (who == "responder")


async def _inbox_outcome(n: RunningNode, kind: str) -> str | None:
    value = await n.ctx.store.pool.fetchval(
        """SELECT outcome FROM inbox_activities WHERE type = $1 AND outcome IS NOT NULL
           ORDER BY id DESC LIMIT 1""",
        kind,
    )
    return str(value) if value is not None else None


# -- steps a peer may not take --------------------------------------------------------------


async def test_forged_accept_from_a_third_party_is_refused(nodes: NodeFactory) -> None:
    a, b, c = await nodes("a"), await nodes("b"), await nodes("c")
    _, at_a, at_b = await _need_with_offer(a, b)
    c_coop = await c.ctx.coop_actor()
    # When C, which never published the need, sends B an Accept of B's offer
    agreement = agreements.build_agreement(
        agreement_id=c.ctx.urls.agreement("forged"), owner=c.actor_url, offer=at_b.offer,
        status="accepted",
    )  # fmt: skip
    forged = agreements.build_accept_offer(
        activity_id=c.ctx.urls.activity("forged-accept"),
        actor=c.actor_url,
        offer=at_b.offer,
        agreement=agreement,
    )
    await send_activity(c.ctx, c_coop, forged)
    # Then B refuses it, logs it on the exchange, and applies nothing
    assert await outcome(b, forged["id"]) == "refused: only the proposer may accept this offer"
    assert await _trail(b, at_b.id) == [
        ("accept", "offered", None, c.actor_url, "only the proposer may accept this offer")
    ]
    row = await b.ctx.store.get_exchange(at_b.id)
    assert row is not None and (row.state, row.agreement, row.agreement_uri) == (
        "offered", None, None
    )  # fmt: skip
    # And the real proposer's Accept still goes through
    await market.accept(a.ctx, await a.ctx.coop_actor(), at_a.id)
    accepted = await _in_state(b, at_b.id, "accepted")
    assert accepted.agreement_uri is not None and a.ctx.urls.is_local(accepted.agreement_uri)


async def test_illegal_transitions_from_a_peer_are_refused_and_logged(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    a_coop, b_coop = await a.ctx.coop_actor(), await b.ctx.coop_actor()
    _, at_a, at_b = await _accepted(a, b)
    # When B, the responder, tries to complete the exchange by sending a receipt
    assert at_b.agreement is not None
    receipt = agreements.build_receipt(
        activity_id=b.ctx.urls.activity("receipt-by-responder"),
        receipt_id=b.ctx.urls.receipt("r1"),
        actor=b.actor_url,
        target=a.actor_url,
        agreement=at_b.agreement,
        provider=b.actor_url,
        receiver=a.actor_url,
        action="transfer",
        at=datetime.now(UTC),
    )
    await send_activity(b.ctx, b_coop, receipt)
    # Then A refuses and logs it; the exchange stays accepted
    reason = "only the agreement's owner may confirm it"
    assert await outcome(a, receipt["id"]) == f"refused: {reason}"
    assert await _trail(a, at_a.id) == [
        ("accept", "offered", "accepted", a.actor_url, None),
        ("complete", "accepted", None, b.actor_url, reason),
    ]
    row = await a.ctx.store.get_exchange(at_a.id)
    assert row is not None and (row.state, row.receipt) == ("accepted", None)
    # When A completes it, and then (a buggy or hostile node) sends an Accept again
    await market.complete(a.ctx, a_coop, at_a.id)
    await _in_state(b, at_b.id, "completed")
    assert at_a.agreement is not None
    again = agreements.build_accept_offer(
        activity_id=a.ctx.urls.activity("late-accept"),
        actor=a.actor_url,
        offer=at_a.offer,
        agreement=at_a.agreement,
    )
    await send_activity(a.ctx, a_coop, again)
    # Then B refuses the illegal transition completed -> accepted, and logs it
    illegal = "accept by the proposer is not allowed when the exchange is completed"
    assert await outcome(b, again["id"]) == f"refused: {illegal}"
    trail = await _trail(b, at_b.id)
    assert trail[-1] == ("accept", "completed", None, a.actor_url, illegal)
    assert [s[0] for s in trail if s[4] is None] == ["accept", "complete"]
    final = await b.ctx.store.get_exchange(at_b.id)
    assert final is not None and final.state == "completed"


async def test_an_accept_after_a_reject_is_refused(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    a_coop = await a.ctx.coop_actor()
    _, at_a, at_b = await _need_with_offer(a, b)
    await market.reject(a.ctx, a_coop, at_a.id)
    await _in_state(b, at_b.id, "rejected")
    # When A's node sends an Accept of the rejected offer anyway
    agreement = agreements.build_agreement(
        agreement_id=a.ctx.urls.agreement("after-reject"), owner=a.actor_url, offer=at_a.offer,
        status="accepted",
    )  # fmt: skip
    accept = agreements.build_accept_offer(
        activity_id=a.ctx.urls.activity("after-reject"),
        actor=a.actor_url,
        offer=at_a.offer,
        agreement=agreement,
    )
    await send_activity(a.ctx, a_coop, accept)
    # Then B refuses it, logs it, and the exchange stays rejected without an agreement
    illegal = "accept by the proposer is not allowed when the exchange is rejected"
    assert await outcome(b, accept["id"]) == f"refused: {illegal}"
    assert (await _trail(b, at_b.id))[-1] == ("accept", "rejected", None, a.actor_url, illegal)
    row = await b.ctx.store.get_exchange(at_b.id)
    assert row is not None and (row.state, row.agreement_uri) == ("rejected", None)
