"""The C2S API across two nodes: exchanges answered, accepted and refused through
the outbox, and the admin's JSON views.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp

from federation.store import Exchange
from tests.support.c2sflow import api_get, later, post, token_for
from tests.support.exchangeflow import _follow
from tests.support.fakepeer import PUBLIC, FakePeer
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import send_and_wait

# -- exchanges across two nodes ---------------------------------------------------------


async def _exchange_at(node: RunningNode, offer_id: str, state: str) -> Exchange:
    async def probe() -> Exchange | None:
        found = await node.ctx.store.find_exchange(offer_id=offer_id)
        return found if found is not None and found.state == state else None

    found = await eventually(probe, message=f"{node.name} sees the exchange {state}")
    assert found is not None
    return found


async def _published_need(
    http: aiohttp.ClientSession, a: RunningNode, b: RunningNode, token: str
) -> str:
    need = {"type": "Proposal", "kind": "need", "title": "Organic flour", "unit": "kilogram"}
    status, create, _ = await post(http, a, token, need)
    assert status == 201, create
    uri: str = create["object"]["id"]
    await eventually(lambda: b.ctx.store.get_proposal(uri), message="B stores the need")
    return uri


async def test_respond_accept_complete_over_c2s(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    # Given B follows A, and A publishes a need through its outbox
    a = await nodes("a")
    b = await nodes("b")
    await _follow(b, a)
    a_token, b_token = await token_for(a), await token_for(b)
    need_uri = await _published_need(http, a, b, a_token)
    # When B responds with the simple Offer form
    respond = {
        "type": "Offer",
        "inReplyTo": need_uri,
        "quantity": 50,
        "price": "120",
        "content": "From our mill",
    }
    status, offer, headers = await post(http, b, b_token, respond)
    assert status == 201, offer
    assert headers["Location"] == offer["id"] and offer["type"] == "Offer"
    assert offer["object"]["stipulatesReciprocal"]["resourceQuantity"]["hasNumericalValue"] == "120"
    at_a = await _exchange_at(a, offer["id"], "offered")
    assert (at_a.quantity, at_a.reciprocal_quantity, at_a.message) == (
        Decimal(50),
        Decimal(120),
        "From our mill",
    )
    # And B may not accept its own offer
    status, answer, _ = await post(http, b, b_token, {"type": "Accept", "object": offer["id"]})
    assert (status, answer["reason"]) == (409, "not_ours")
    # When A accepts by the offer's id
    status, accept, _ = await post(http, a, a_token, {"type": "Accept", "object": offer["id"]})
    assert status == 201, accept
    assert accept["type"] == "Accept" and accept["result"]["type"] == "Agreement"
    agreement_uri = accept["result"]["id"]
    await _exchange_at(b, offer["id"], "accepted")
    # When A confirms with a Receipt in the Agreement's context
    receipt = {
        "type": "Create",
        "object": {"type": "Document", "name": "Receipt", "context": agreement_uri},
    }
    status, create, _ = await post(http, a, a_token, receipt)
    assert status == 201, create
    assert create["object"]["context"] == agreement_uri
    at_b = await _exchange_at(b, offer["id"], "completed")
    assert at_b.agreement_uri == agreement_uri
    # And a step the state machine does not allow is 409
    status, answer, _ = await post(http, a, a_token, {"type": "Accept", "object": offer["id"]})
    assert (status, answer["reason"]) == (409, "illegal_transition")
    # And A's admin sees the exchange with each step
    status, listed = await api_get(http, a, a_token, "/api/exchanges?state=completed")
    assert status == 200
    assert [(e["id"], e["role"], e["counterparty"]) for e in listed] == [
        (at_a.id, "proposer", b.actor_url)
    ]
    assert [(ev["event"], ev["to"]) for ev in listed[0]["events"]] == [
        ("accept", "accepted"),
        ("complete", "completed"),
    ]


async def test_withdraw_reject_and_cancel_over_c2s(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    # Given B follows A, and A has a need
    a = await nodes("a")
    b = await nodes("b")
    await _follow(b, a)
    a_token, b_token = await token_for(a), await token_for(b)
    need_uri = await _published_need(http, a, b, a_token)
    # When B responds with a FEP-0837 Offer(Agreement) and withdraws it (Undo)
    fep_offer = {
        "type": "Offer",
        "object": {
            "type": "Agreement",
            "stipulates": {
                "type": "Commitment",
                "satisfies": f"{need_uri}#primary",
                "resourceQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "20"},
            },
        },
    }
    status, first, _ = await post(http, b, b_token, fep_offer)
    assert status == 201, first
    await _exchange_at(a, first["id"], "offered")
    status, undo, _ = await post(http, b, b_token, {"type": "Undo", "object": first["id"]})
    assert status == 201 and undo["type"] == "Undo" and undo["object"] == first["id"]
    # Then both sides record the withdrawal
    await _exchange_at(a, first["id"], "withdrawn")
    await _exchange_at(b, first["id"], "withdrawn")
    # When B responds again and A rejects it, with a reason
    status, rejected, _ = await post(http, b, b_token, fep_offer)
    assert status == 201, rejected
    await _exchange_at(a, rejected["id"], "offered")
    refuse = {"type": "Reject", "object": rejected["id"], "content": "Booked in July"}
    status, sent, _ = await post(http, a, a_token, refuse)
    assert status == 201, sent
    assert (sent["type"], sent["object"], sent["content"]) == (
        "Reject",
        rejected["id"],
        "Booked in July",
    )
    await _exchange_at(b, rejected["id"], "rejected")
    # When B responds a third time, A accepts by exchange number, and B calls it off
    status, second, _ = await post(http, b, b_token, fep_offer)
    assert status == 201, second
    at_a = await _exchange_at(a, second["id"], "offered")
    status, accept, _ = await post(http, a, a_token, {"type": "Accept", "object": at_a.id})
    assert status == 201, accept
    await _exchange_at(b, second["id"], "accepted")
    cancel = {
        "type": "Update",
        "content": "Our mill broke down",
        "object": {
            "type": "Agreement",
            "id": accept["result"]["id"],
            "agreementStatus": "cancelled",
        },
    }
    status, sent, _ = await post(http, b, b_token, cancel)
    # Then B sends Reject of the Agreement and both sides end cancelled
    assert status == 201, sent
    assert (sent["type"], sent["object"], sent["content"]) == (
        "Reject",
        accept["result"]["id"],
        "Our mill broke down",
    )
    await _exchange_at(a, second["id"], "cancelled")
    await _exchange_at(b, second["id"], "cancelled")


# -- the admin's JSON -----------------------------------------------------------------------


def peer_proposal(
    peer: FakePeer, actor: Any, node: RunningNode, *, name: str, purpose: str, tag: str, end: str
) -> dict[str, Any]:
    object_id = f"{peer.base}/objects/{name.lower().replace(' ', '-')}"
    return {
        "id": object_id,
        "type": ["Note", "Proposal"],
        "purpose": purpose,
        "attributedTo": actor.id,
        "name": name,
        "content": f"<p>{name}</p>",
        "published": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "to": [PUBLIC],
        "cc": [node.actor_url],
        "tag": [{"type": "Hashtag", "name": f"#{tag}", "href": f"{peer.base}/tags/{tag}"}],
        "hasEnd": end,
        "publishes": {
            "id": f"{object_id}#primary",
            "type": "Intent",
            "action": "transfer",
            "resourceQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "100"},
        },
    }


async def test_api_market_filters_and_matches(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    peer = await FakePeer().start()
    try:
        # Given the coop's own offer and need
        token = await token_for(node)
        for body in (
            {"type": "Proposal", "kind": "offer", "title": "Bookkeeping", "tags": ["accounting"]},
            {"type": "Proposal", "kind": "need", "title": "Organic flour", "tags": ["flour"]},
        ):
            status, _, _ = await post(http, node, token, body)
            assert status == 201
        # And a peer's flour offer, and a peer's tractor offer whose deadline has passed
        bob = peer.add_actor("bob")
        for name, tag, end in (
            ("Flour sacks", "flour", later(5)),
            ("Old tractor", "farming", later(-1)),
        ):
            obj = peer_proposal(peer, bob, node, name=name, purpose="offer", tag=tag, end=end)
            create = peer.create(bob, obj)
            assert (await send_and_wait(peer, bob, node, create)).startswith("proposal created")

        async def titles(query: str) -> list[str]:
            status, items = await api_get(http, node, token, f"/api/market{query}")
            assert status == 200, items
            return [p["title"] for p in items]

        # Then the market lists everything, newest first, the tractor as closed
        status, items = await api_get(http, node, token, "/api/market")
        assert [(p["title"], p["status"]) for p in items] == [
            ("Old tractor", "closed"),
            ("Flour sacks", "open"),
            ("Organic flour", "open"),
            ("Bookkeeping", "open"),
        ]
        assert items[1]["coop"] == bob.id and items[1]["quantity"] == "100"
        # And each filter narrows it
        assert await titles("?kind=offer") == ["Old tractor", "Flour sacks", "Bookkeeping"]
        assert await titles("?tag=flour") == ["Flour sacks", "Organic flour"]
        assert await titles("?text=tractor") == ["Old tractor"]
        assert await titles(f"?coop={bob.id}") == ["Old tractor", "Flour sacks"]
        assert await titles(f"?coop={node.handle}") == ["Organic flour", "Bookkeeping"]
        assert await titles("?status=closed") == ["Old tractor"]
        assert await titles("?status=open&kind=offer") == ["Flour sacks", "Bookkeeping"]
        # And a bad filter is 422 naming it, a missing token 401
        assert await api_get(http, node, token, "/api/market?kind=gift") == (
            422,
            {"error": "must be one of offer, need, solidarity", "field": "kind"},
        )
        assert (await api_get(http, node, None, "/api/market"))[0] == 401
        # And the flour offer matches our need, with the command to respond
        status, matches = await api_get(http, node, token, "/api/matches")
        assert status == 200
        assert [(m["ours"]["title"], m["theirs"]["title"], m["reason"]) for m in matches] == [
            ("Organic flour", "Flour sacks", "shares the tag #flour")
        ]
        flour_uri = f"{peer.base}/objects/flour-sacks"
        assert matches[0]["respond"] == f"coopfed respond {flour_uri} --quantity 100"
    finally:
        await peer.stop()
