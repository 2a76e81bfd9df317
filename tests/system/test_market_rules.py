"""Pledges, rules, replays, deadlines, matching and Mastodon readers of the market,
across real nodes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from federation.store import Proposal
from inbox.dispatch import process_activity
from outbox import agreements, market
from outbox.errors import ActionError
from outbox.fanout import send_activity
from outbox.publish import announce, like, post_note
from tests.support.exchangeflow import (
    NEED,
    _all_emitted_valid,
    _follow,
    _in_days,
    _in_state,
    _inbox_item,
    _only_exchange,
    _seen,
    _trusts,
)
from tests.support.fakepeer import PUBLIC, FakePeer, PeerActor
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import (
    accepted_follower,
    outcome,
    peer_activity,
    send_and_wait,
    shared_inbox,
)
from tests.support.vocabcheck import vocabulary_problems

# -- pledges, rules and replays --------------------------------------------------------------


SOLIDARITY: dict[str, Any] = {
    "kind": "solidarity",
    "title": "Flood repair fund",
    "quantity": "5000",
    "currency": "EUR",
}


def _pledge(
    peer: FakePeer, actor: PeerActor, proposer: str, uri: str, amount: int
) -> dict[str, Any]:
    return agreements.build_offer(
        activity_id=peer.new_id(actor),
        actor=actor.id,
        proposer=proposer,
        proposal_id=uri,
        unit="one",
        quantity=Decimal(amount),
        reciprocal=None,
    )


async def test_replayed_pledge_is_counted_once(nodes: NodeFactory) -> None:
    a = await nodes("a")
    a_coop = await a.ctx.coop_actor()
    create = await market.publish_proposal(a.ctx, a_coop, SOLIDARITY | {"deadline": _in_days(3)})
    uri = create["object"]["id"]
    peer = await FakePeer(style="mastodon").start()
    try:
        carol = peer.add_actor("carol")
        await _trusts(a, carol.id)
        pledge = _pledge(peer, carol, a.actor_url, uri, 700)
        # When a Mastodon-shaped coop pledges 700 € (auto-accepted by default)
        exchange_outcome = await send_and_wait(peer, carol, a, pledge)
        at_a = await _only_exchange(a)
        assert exchange_outcome == f"exchange {at_a.id} offered and accepted by rule"
        accepts = await peer.wait_for("Accept")
        assert accepts[0].verified and accepts[0].body["object"] == pledge["id"]
        # And the same Offer arrives again, and its job runs again
        status, answer = await peer.send(carol, shared_inbox(a), pledge)
        assert (status, answer) == (202, {"status": "duplicate"})
        replay = await process_activity(a.ctx, await _inbox_item(a, pledge["id"]))
        assert str(replay) == "ignored: offer already recorded"
        # Then the pledge is counted once
        row = await a.ctx.store.get_proposal(uri)
        assert row is not None and (row.pledged, row.received) == (Decimal(700), Decimal(0))
        assert len(await a.ctx.store.list_exchanges()) == 1
        await a.drain()
        assert len(peer.of_type("Accept")) == 1
        # And a second pledge, a new activity, is counted on top
        await send_and_wait(peer, carol, a, _pledge(peer, carol, a.actor_url, uri, 300))
        row = await a.ctx.store.get_proposal(uri)
        assert row is not None and row.pledged == Decimal(1000)
    finally:
        await peer.stop()


async def test_concurrent_pledges_are_all_counted_and_federated(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    await _follow(b, a)
    create = await market.publish_proposal(
        a.ctx, await a.ctx.coop_actor(), SOLIDARITY | {"deadline": _in_days(3)}
    )
    uri = create["object"]["id"]
    await _seen(b, uri)
    peer = await FakePeer(style="mastodon", cache_keys=True).start()
    try:
        alice = peer.add_actor("alice")
        await accepted_follower(peer, alice, a)
        donors = [peer.add_actor(f"donor{i}") for i in range(12)]
        await _trusts(a, *(d.id for d in donors))
        pledges = [_pledge(peer, d, a.actor_url, uri, 100) for d in donors]
        # When twelve coops pledge 100 € each at the same moment
        sent = await asyncio.gather(
            *(peer.send(d, shared_inbox(a), p) for d, p in zip(donors, pledges, strict=True))
        )
        assert [status for status, _ in sent] == [202] * 12
        for pledge in pledges:
            assert (await outcome(a, pledge["id"])).endswith("offered and accepted by rule")
        # Then A counts every one, and its post says so
        row = await a.ctx.store.get_proposal(uri)
        assert row is not None and row.pledged == Decimal(1200)
        assert "€1,200 pledged of €5,000 (24%)" in row.body["content"]
        stored = await a.ctx.store.get_object(uri)
        assert stored is not None and stored.body["content"] == row.body["content"]

        # And the newest Update every follower gets carries the total
        async def b_total() -> bool:
            seen = await b.ctx.store.get_proposal(uri)
            return seen is not None and seen.pledged == Decimal(1200)

        await eventually(b_total, message="B sees 1,200 € pledged")
        await a.drain()
        updates = [r.body["object"] for r in peer.of_type("Update")]
        newest = max(updates, key=lambda o: datetime.fromisoformat(o["updated"]))
        assert "€1,200 pledged of €5,000 (24%)" in newest["content"]
        times = [o["updated"] for o in updates]
        assert len(set(times)) == len(times)  # every version strictly newer
    finally:
        await peer.stop()


async def test_a_cancelled_pledge_no_longer_counts(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    await _follow(b, a)
    await _trusts(a, b.actor_url)
    create = await market.publish_proposal(
        a.ctx, await a.ctx.coop_actor(), SOLIDARITY | {"deadline": _in_days(3)}
    )
    uri = create["object"]["id"]
    await _seen(b, uri)
    # Given B's pledge of 400 € was accepted by rule
    at_b = await market.respond(b.ctx, await b.ctx.coop_actor(), uri, quantity=Decimal(400))
    await _in_state(b, at_b.id, "accepted")
    at_a = await _only_exchange(a)

    async def pledged(n: RunningNode, total: int) -> bool:
        row = await n.ctx.store.get_proposal(uri)
        return row is not None and row.pledged == Decimal(total)

    await eventually(lambda: pledged(b, 400), message="B sees 400 € pledged")
    # When B calls it off
    await market.cancel(b.ctx, await b.ctx.coop_actor(), at_b.id)
    # Then A takes it out of the total, and B sees the new total
    await _in_state(a, at_a.id, "cancelled")
    await eventually(lambda: pledged(a, 0), message="A counts 0 € pledged")
    await eventually(lambda: pledged(b, 0), message="B sees 0 € pledged")
    row = await b.ctx.store.get_proposal(uri)
    assert row is not None and "€0 pledged of €5,000 (0%)" in row.body["content"]
    assert "little-boxes: Update(Note)" in await _all_emitted_valid(a, b)


async def test_auto_accept_rules(nodes: NodeFactory) -> None:
    a = await nodes("a")
    a_coop = await a.ctx.coop_actor()
    assert await market.rules(a.ctx) == market.RULE_DEFAULTS
    need = await market.publish_proposal(a.ctx, a_coop, NEED)
    fund = await market.publish_proposal(a.ctx, a_coop, SOLIDARITY | {"deadline": _in_days(3)})
    # Given the coop flips both rules
    await a.ctx.store.set_rule("auto_accept_offers", True)
    await a.ctx.store.set_rule("auto_accept_pledges", False)
    assert await market.rules(a.ctx) == market.RULE_DEFAULTS | {
        "auto_accept_pledges": False,
        "auto_accept_offers": True,
    }
    peer = await FakePeer(style="mastodon").start()
    try:
        dave = peer.add_actor("dave")
        offer = agreements.build_offer(
            activity_id=peer.new_id(dave), actor=dave.id, proposer=a.actor_url,
            proposal_id=need["object"]["id"], unit="kilogram", quantity=Decimal(20),
            reciprocal=Decimal(40),
        )  # fmt: skip
        pledge = _pledge(peer, dave, a.actor_url, fund["object"]["id"], 250)
        # When an offer and a pledge arrive
        offer_outcome = await send_and_wait(peer, dave, a, offer)
        pledge_outcome = await send_and_wait(peer, dave, a, pledge)
        # Then the offer is accepted by rule and the pledge waits for a human
        by_offer = {e.offer_id: e for e in await a.ctx.store.list_exchanges()}
        assert offer_outcome == f"exchange {by_offer[offer['id']].id} offered and accepted by rule"
        assert pledge_outcome == f"exchange {by_offer[pledge['id']].id} offered"
        assert (by_offer[offer["id"]].state, by_offer[pledge["id"]].state) == (
            "accepted", "offered"
        )  # fmt: skip
        row = await a.ctx.store.get_proposal(fund["object"]["id"])
        assert row is not None and row.pledged == Decimal(0)
        accepts = await peer.wait_for("Accept")
        assert [r.body["object"] for r in accepts] == [offer["id"]]
    finally:
        await peer.stop()


# -- deadlines ---------------------------------------------------------------------------------


async def test_a_solidarity_request_closes_by_itself_at_its_deadline(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    await _follow(b, a)
    a_coop = await a.ctx.coop_actor()
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    create = await market.publish_proposal(
        a.ctx, a_coop, SOLIDARITY | {"deadline": deadline.isoformat()}
    )
    uri = create["object"]["id"]
    assert (await _seen(b, uri)).status == "open"

    # Then at the deadline the close_proposal job closes it at A
    async def closed_at(n: RunningNode) -> Proposal | None:
        # The status is written first, then the object of that version: wait for both.
        row = await n.ctx.store.get_proposal(uri)
        done = row is not None and row.status == "closed"
        return row if done and row.body["publishes"].get("finished") is True else None

    at_a = await eventually(lambda: closed_at(a), timeout=10, message="A closes the request")
    assert at_a is not None and at_a.deadline is not None
    assert datetime.now(UTC) >= at_a.deadline
    # And B gets the Update: finished, and "CLOSED" for Mastodon readers
    at_b = await eventually(lambda: closed_at(b), message="B sees it closed")
    assert at_b is not None
    assert at_b.body["publishes"]["finished"] is True
    assert "CLOSED" in at_b.body["content"]
    assert at_a.body["publishes"]["finished"] is True
    # And nobody can respond any more
    with pytest.raises(ActionError) as refused:
        await market.respond(b.ctx, await b.ctx.coop_actor(), uri, quantity=Decimal(10))
    assert refused.value.reason == "closed"
    late = agreements.build_offer(
        activity_id=b.ctx.urls.activity("late-pledge"), actor=b.actor_url, proposer=a.actor_url,
        proposal_id=uri, unit="one", quantity=Decimal(10), reciprocal=None,
    )  # fmt: skip
    await send_activity(b.ctx, await b.ctx.coop_actor(), late)
    assert await outcome(a, late["id"]) == "refused: the proposal is closed"
    assert await a.ctx.store.list_exchanges() == []
    assert "little-boxes: Update(Note)" in await _all_emitted_valid(a, b)


async def test_proposals_past_their_deadline_show_as_closed(nodes: NodeFactory) -> None:
    a = await nodes("a")
    a_coop = await a.ctx.coop_actor()
    deadline = datetime.now(UTC) + timedelta(hours=1)
    dated = await market.publish_proposal(a.ctx, a_coop, NEED | {"deadline": deadline.isoformat()})
    undated = await market.publish_proposal(a.ctx, a_coop, NEED | {"title": "Rye"})
    dated_uri, undated_uri = dated["object"]["id"], undated["object"]["id"]
    store = a.ctx.store

    async def uris(status: str, now: datetime) -> list[str]:
        return [p.uri for p in await store.search_proposals(status=status, now=now)]

    now = datetime.now(UTC)
    after = deadline + timedelta(seconds=1)
    assert await uris("open", now) == [undated_uri, dated_uri]
    assert await uris("closed", now) == []
    # Past the deadline (before any job ran) the dated one shows as closed
    assert await uris("open", after) == [undated_uri]
    assert await uris("closed", after) == [dated_uri]
    assert [p.uri for p in await store.open_proposals_of(a.actor_url, after)] == [undated_uri]
    # Its stored status is untouched until the close job runs
    row = await store.get_proposal(dated_uri)
    assert row is not None and row.status == "open"


# -- matching ----------------------------------------------------------------------------------


async def test_matches_between_our_proposals_and_a_followed_coops(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    await _follow(a, b)
    a_coop, b_coop = await a.ctx.coop_actor(), await b.ctx.coop_actor()
    # Given A needs flour (tagged #flour) and offers cargo-bike deliveries
    need = await market.publish_proposal(a.ctx, a_coop, NEED)
    delivery = await market.publish_proposal(a.ctx, a_coop, {
        "kind": "offer", "title": "Cargo bike deliveries", "tags": ["transport"],
        "resource": "cargo delivery",
    })  # fmt: skip
    # When B publishes an offer sharing a tag, a need of the same resource, and
    # two that fit nothing (an unrelated offer; a need sharing a tag with A's need)
    published = [
        await market.publish_proposal(b.ctx, b_coop, raw)
        for raw in (
            {"kind": "offer", "title": "Spelt flour", "tags": ["flour"], "resource": "spelt"},
            {"kind": "need", "title": "Deliveries", "tags": ["logistics"],
             "resource": "cargo delivery"},
            {"kind": "offer", "title": "Soap", "tags": ["soap"], "resource": "soap"},
            {"kind": "need", "title": "Bread", "tags": ["bakery"], "resource": "bread"},
        )
    ]  # fmt: skip
    theirs = [p["object"]["id"] for p in published]
    for uri in theirs:
        await _seen(a, uri)
    # Then A records exactly the two matches, with their reasons
    matches = {
        (m.our_proposal, m.their_proposal, m.reason) for m in await a.ctx.store.list_matches()
    }
    assert matches == {
        (need["object"]["id"], theirs[0],
         "only shares the tag #flour: theirs is spelt, ours flour"),
        (delivery["object"]["id"], theirs[1], "same resource: cargo delivery"),
    }  # fmt: skip
    # And B, which follows nobody, records none
    assert await b.ctx.store.list_matches() == []
    # When A later publishes a need that fits B's soap offer, that matches too
    soap = await market.publish_proposal(a.ctx, a_coop, {
        "kind": "need", "title": "Soap for the canteen", "tags": ["soap"],
    })  # fmt: skip
    after = {(m.our_proposal, m.their_proposal) for m in await a.ctx.store.list_matches()}
    assert after - {(m[0], m[1]) for m in matches} == {(soap["object"]["id"], theirs[2])}


# -- Mastodon readers, conversation and boosts --------------------------------------------


async def test_a_mastodon_follower_reads_proposals_and_progress(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    await _follow(b, a)
    await _trusts(a, b.actor_url)
    a_coop = await a.ctx.coop_actor()
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        await accepted_follower(peer, alice, a)
        deadline = datetime(2031, 5, 4, 12, 30, tzinfo=UTC)
        # When A publishes a priced offer, a negotiable need and a solidarity request
        offer = await market.publish_proposal(a.ctx, a_coop, {
            "kind": "offer", "title": "Bookkeeping for coops", "unit": "hour", "quantity": "10",
            "price": "40", "currency": "EUR", "deadline": deadline.isoformat(),
        })  # fmt: skip
        need = await market.publish_proposal(
            a.ctx, a_coop, NEED | {"deadline": deadline.isoformat()}
        )
        fund = await market.publish_proposal(
            a.ctx, a_coop, SOLIDARITY | {"deadline": deadline.isoformat()}
        )
        creates = await peer.wait_for("Create", count=3)
        # Then alice gets each as a readable Note, signed, addressed publicly
        by_id = {r.body["object"]["id"]: r for r in creates}
        for create in (offer, need, fund):
            got = by_id[create["object"]["id"]]
            assert got.verified, got.reason
            obj = got.body["object"]
            assert "Note" in obj["type"] and obj["attributedTo"] == a.actor_url
            assert got.body["to"] == [PUBLIC] and got.body["cc"] == [f"{a.actor_url}/followers"]
            assert "Deadline: 2031-05-04 12:30 UTC" in obj["content"]
            assert vocabulary_problems(got.body) == []
        offer_text = by_id[offer["object"]["id"]].body["object"]["content"]
        assert "Bookkeeping for coops" in offer_text and "Quantity: 10 h" in offer_text
        assert "Price: €40 per h" in offer_text
        need_text = by_id[need["object"]["id"]].body["object"]["content"]
        assert "Organic flour" in need_text and "Quantity: 200 kg" in need_text
        assert "Price: negotiable" in need_text
        fund_text = by_id[fund["object"]["id"]].body["object"]["content"]
        assert "Target: €5,000" in fund_text
        # When B pledges 1,000 € to the solidarity request
        uri = fund["object"]["id"]
        await _seen(b, uri)
        await market.respond(b.ctx, await b.ctx.coop_actor(), uri, quantity=Decimal(1000))
        # Then alice gets the progress as an Update of the same post, newer
        updates = await peer.wait_for("Update")
        update = updates[0].body
        assert updates[0].verified and update["object"]["id"] == uri
        assert "€1,000 pledged of €5,000 (20%)" in update["object"]["content"]
        assert update["object"]["publishes"]["pledgedQuantity"] == {
            "hasUnit": "one", "hasNumericalValue": "1000"
        }  # fmt: skip
        published, updated = (
            datetime.fromisoformat(update["object"][k]) for k in ("published", "updated")
        )
        assert updated > published
        assert vocabulary_problems(update) == []
    finally:
        await peer.stop()


async def test_replies_likes_and_announces_are_counted_on_the_proposal(
    nodes: NodeFactory,
) -> None:
    a, b = await nodes("a"), await nodes("b")
    await _follow(b, a)
    create = await market.publish_proposal(a.ctx, await a.ctx.coop_actor(), NEED)
    uri = create["object"]["id"]
    await _seen(b, uri)
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")  # not a follower of A: anyone may answer
        # When alice replies, likes and boosts
        reply = peer.create(alice, peer.note(alice, "<p>We have rye too</p>", in_reply_to=uri))
        assert await send_and_wait(peer, alice, a, reply) == "stored"
        assert await send_and_wait(peer, alice, a, peer_activity(peer, alice, "Like", uri)) == (
            "like stored"
        )
        boost = peer_activity(peer, alice, "Announce", uri, to=[PUBLIC], cc=[alice.followers])
        assert await send_and_wait(peer, alice, a, boost) == "announce stored"
        # And coop B replies and likes too
        b_coop = await b.ctx.coop_actor()
        # (post_note delivers to followers and mentions only, so B mentions A)
        await post_note(b.ctx, b_coop, "We can deliver 50 kg", in_reply_to=uri, mentions=[a.handle])
        await like(b.ctx, b_coop, uri)

        # Then A stores all and counts them on the proposal
        async def counted() -> bool:
            likes = await a.ctx.store.count_interactions(uri)
            return likes == {"Like": 2, "Announce": 1} and await a.ctx.store.count_replies(uri) == 2

        await eventually(counted, message="A counts 2 replies, 2 likes and 1 boost")
        # And a duplicate Like from the same actor is not counted twice
        again = peer_activity(peer, alice, "Like", uri)
        assert await send_and_wait(peer, alice, a, again) == "ignored: already liked"
        assert await a.ctx.store.count_interactions(uri) == {"Like": 2, "Announce": 1}
    finally:
        await peer.stop()


async def test_a_coop_announces_a_peers_solidarity_request(nodes: NodeFactory) -> None:
    a, b = await nodes("a"), await nodes("b")
    await _follow(a, b)
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        await accepted_follower(peer, alice, a)
        # Given B asks for solidarity and A has it
        create = await market.publish_proposal(
            b.ctx, await b.ctx.coop_actor(), SOLIDARITY | {"deadline": _in_days(3)}
        )
        uri = create["object"]["id"]
        await _seen(a, uri)
        # When A boosts it to its own followers
        boost = await announce(a.ctx, await a.ctx.coop_actor(), uri)
        # Then alice, A's follower, receives the Announce
        received = await peer.wait_for("Announce")
        assert received[0].verified
        body = received[0].body
        assert (body["id"], body["actor"], body["object"]) == (boost["id"], a.actor_url, uri)
        assert body["to"] == [PUBLIC]
        assert set(body["cc"]) == {b.actor_url, f"{a.actor_url}/followers"}

        # And B counts the boost on its request
        async def boosted() -> bool:
            return await b.ctx.store.count_interactions(uri) == {"Like": 0, "Announce": 1}

        await eventually(boosted, message="B counts A's boost")
    finally:
        await peer.stop()


async def test_following_a_coop_brings_its_open_proposals(nodes: NodeFactory) -> None:
    # Given A published an offer and a solidarity request before B followed it
    a, b = await nodes("a"), await nodes("b")
    a_coop = await a.ctx.coop_actor()
    offer = await market.publish_proposal(
        a.ctx, a_coop, {"kind": "offer", "title": "Bookkeeping", "price": "35", "unit": "hour"}
    )
    deadline = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    fund = await market.publish_proposal(a.ctx, a_coop, SOLIDARITY | {"deadline": deadline})
    # When B follows A
    await _follow(b, a)
    # Then B's market holds both, read from A's outbox once the follow was accepted
    for created in (offer, fund):
        seen = await _seen(b, created["object"]["id"])
        assert seen.status == "open" and not seen.local
    # And B can respond to the older solidarity request at once
    exchange = await market.respond(
        b.ctx, await b.ctx.coop_actor(), fund["object"]["id"], quantity=Decimal(50)
    )
    assert exchange.pledge is True
