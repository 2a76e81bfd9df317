"""The client-to-server API over real HTTP: tokens, every accepted shape, errors, exchanges."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from federation.keys import dump_private_key_pem, dump_public_key_pem, generate_private_key
from federation.store import Exchange
from outbox.c2s import issue_token
from outbox.publish import follow
from tests.support.fakepeer import AS, PUBLIC, FakePeer, Received
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import accepted_follower, send_and_wait

AP = "application/activity+json"
Answer = tuple[int, Any, CIMultiDictProxy[str]]


async def token_for(node: RunningNode, name: str = "script") -> str:
    _, token = await issue_token(node.ctx, await node.ctx.coop_actor(), name)
    return token


async def post(
    http: aiohttp.ClientSession,
    node: RunningNode,
    token: str | None,
    body: Any = None,
    *,
    data: bytes | None = None,
    content_type: str = AP,
    username: str | None = None,
) -> Answer:
    """POST to the coop's outbox; returns (status, JSON answer, headers)."""
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{node.base_url}/users/{username or node.settings.username}/outbox"
    payload = data if data is not None else orjson.dumps(body)
    async with http.post(url, data=payload, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def api_get(
    http: aiohttp.ClientSession, node: RunningNode, token: str | None, path: str
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(f"{node.base_url}{path}", headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat(timespec="seconds")


def iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def signed_by(received: Received, node: RunningNode) -> bool:
    return received.verified and received.signer == node.actor_url


# -- tokens ---------------------------------------------------------------------------


async def test_token_lifecycle(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given a token issued for the coop
    token_id, token = await issue_token(node.ctx, await node.ctx.coop_actor(), "script")
    note = {"type": "Note", "content": "Hello coops"}
    # When a client posts with it
    status, body, headers = await post(http, node, token, note)
    # Then the post is published and the Location is the activity
    assert status == 201, body
    assert body["type"] == "Create" and headers["Location"] == body["id"]
    # And only the token's SHA-256 is stored, and its use is recorded
    rows = await node.ctx.store.pool.fetch("SELECT token_hash, last_used_at FROM tokens")
    assert [r["token_hash"] for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert rows[0]["last_used_at"] is not None
    # When the request has no token, a bad one, or another scheme
    for auth, reason in (
        (None, "missing_token"),
        ("Bearer nope", "invalid_token"),
        (f"Basic {token}", "missing_token"),
    ):
        headers_in = {"Content-Type": AP} | ({"Authorization": auth} if auth else {})
        async with http.post(
            f"{node.actor_url}/outbox", data=orjson.dumps(note), headers=headers_in
        ) as resp:
            # Then 401 with a Bearer challenge
            assert resp.status == 401, auth
            assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
            assert (await resp.json())["reason"] == reason
    # When the token is revoked
    assert await node.ctx.store.revoke_token(token_id) is True
    status, body, headers = await post(http, node, token, note)
    # Then it no longer works
    assert status == 401 and body["reason"] == "invalid_token"
    assert headers["WWW-Authenticate"] == 'Bearer realm="coopfed", error="invalid_token"'
    assert await node.ctx.store.count_outbox((await node.ctx.coop_actor()).id) == 1


async def test_token_of_another_actor_is_forbidden(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    # Given a second local actor with its own token
    key = generate_private_key()
    member = await node.ctx.store.create_local_actor(
        username="member",
        kind="member",
        name="Member",
        summary="",
        avatar_url="",
        manually_approves_followers=False,
        private_key_pem=dump_private_key_pem(key),
        public_key_pem=dump_public_key_pem(key),
    )
    _, member_token = await issue_token(node.ctx, member, "member")
    note = {"type": "Note", "content": "not mine to post"}
    # When it posts to the coop's outbox
    status, body, _ = await post(http, node, member_token, note)
    # Then 403
    assert (status, body["reason"]) == (403, "forbidden")
    # And the coop's own token cannot claim another actor in the activity
    token = await token_for(node)
    claimed = {"type": "Create", "actor": f"{node.base_url}/users/member", "object": note}
    status, body, _ = await post(http, node, token, claimed)
    assert (status, body["reason"]) == (403, "forbidden")
    # And an outbox that does not exist is 404
    status, body, _ = await post(http, node, token, note, username="nobody")
    assert (status, body["reason"]) == (404, "not_found")


# -- every accepted shape ---------------------------------------------------------------


async def test_each_shape_publishes_to_a_follower(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    peer = await FakePeer().start()
    try:
        # Given a Mastodon follower and a token
        alice = peer.add_actor("alice")
        await accepted_follower(peer, alice, node)
        token = await token_for(node)

        # When a client posts a bare proposal in coopfed's simple form
        simple = {
            "type": "Proposal",
            "kind": "offer",
            "title": "Bookkeeping for coops",
            "details": "Up to 40 h a month.",
            "quantity": 40,
            "unit": "hour",
            "price": "35",
            "currency": "eur",
            "tags": ["accounting", "#CoopOffer"],
            "resource": "bookkeeping",
        }
        status, create, headers = await post(http, node, token, simple)
        assert status == 201, create
        offer_uri = create["object"]["id"]
        # Then the follower receives the Create, signed by the coop
        got = (await peer.wait_for("Create", count=1))[-1]
        assert signed_by(got, node) and got.body["id"] == headers["Location"]
        obj = got.body["object"]
        assert (obj["id"], obj["type"], obj["name"]) == (
            offer_uri,
            ["Note", "Proposal"],
            "Bookkeeping for coops",
        )
        assert obj["unitBased"] is True
        assert obj["publishes"]["availableQuantity"] == {
            "hasUnit": "hour",
            "hasNumericalValue": "40",
        }
        assert obj["reciprocal"]["resourceQuantity"] == {
            "hasUnit": "one",
            "hasNumericalValue": "35",
        }
        assert [t["name"] for t in obj["tag"]] == ["#CoopOffer", "#accounting"]

        # When a client posts Create of a FEP-0837 shaped need (HTML content)
        fep = {
            "@context": AS,
            "type": "Create",
            "object": {
                "type": "Proposal",
                "purpose": "request",
                "name": "Organic flour",
                "content": "<p>200 kg a month, <strong>organic</strong></p>",
                "publishes": {
                    "type": "Intent",
                    "action": "transfer",
                    "resourceConformsTo": "flour",
                    "resourceQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "200"},
                },
                "reciprocal": {
                    "type": "Intent",
                    "action": "transfer",
                    "resourceConformsTo": "https://www.wikidata.org/wiki/Q4916",
                    "resourceQuantity": {"hasUnit": "one"},
                },
                "hasEnd": later(30),
            },
        }
        status, create, _ = await post(http, node, token, fep, content_type="application/ld+json")
        assert status == 201, create
        need_uri = create["object"]["id"]
        need = await node.ctx.store.get_proposal(need_uri)
        assert need is not None
        assert (need.kind, need.unit, need.quantity, need.currency, need.price) == (
            "need",
            "kilogram",
            Decimal(200),
            "EUR",
            None,
        )
        assert need.details == "200 kg a month, organic"
        assert need.resource == "https://w3id.org/coopfed/resource/flour"
        assert (await peer.wait_for("Create", count=2))[-1].body["object"]["id"] == need_uri

        # When a client posts a bare Note (as plain JSON)
        note = {"type": "Note", "content": "Our mill is open on Saturday"}
        status, create, _ = await post(http, node, token, note, content_type="application/json")
        assert status == 201, create
        note_uri = create["object"]["id"]
        got = (await peer.wait_for("Create", count=3))[-1]
        assert got.body["object"]["content"] == "<p>Our mill is open on Saturday</p>"

        # When a client updates the offer with the changed fields only
        change = {"type": "Update", "object": {"id": offer_uri, "name": "Bookkeeping, payroll"}}
        status, update, _ = await post(http, node, token, change)
        assert status == 201, update
        # Then the follower receives the full object, newer, with the other fields kept
        got = (await peer.wait_for("Update", count=1))[-1]
        assert signed_by(got, node)
        assert got.body["object"]["name"] == "Bookkeeping, payroll"
        assert got.body["object"]["publishes"]["availableQuantity"]["hasNumericalValue"] == "40"
        assert iso(got.body["object"]["updated"]) > iso(got.body["object"]["published"])

        # When a client sends back the full object it fetched, with one change
        async with http.get(offer_uri, headers={"Accept": AP}) as resp:
            fetched = await resp.json(content_type=None)
        fetched["publishes"]["availableQuantity"]["hasNumericalValue"] = "30"
        status, update, _ = await post(http, node, token, {"type": "Update", "object": fetched})
        assert status == 201, update
        # Then only that changed
        got = (await peer.wait_for("Update", count=2))[-1]
        assert got.body["object"]["publishes"]["availableQuantity"]["hasNumericalValue"] == "30"
        offer = await node.ctx.store.get_proposal(offer_uri)
        assert offer is not None
        assert (offer.title, offer.details, offer.quantity, offer.price, offer.tags) == (
            "Bookkeeping, payroll",
            "Up to 40 h a month.",
            Decimal(30),
            Decimal(35),
            ["accounting"],
        )

        # When a client marks the offer finished
        finish = {"type": "Update", "object": {"id": offer_uri, "finished": True}}
        status, update, _ = await post(http, node, token, finish)
        assert status == 201, update
        got = (await peer.wait_for("Update", count=3))[-1]
        assert got.body["object"]["publishes"]["finished"] is True
        assert "CLOSED" in got.body["object"]["content"]
        offer = await node.ctx.store.get_proposal(offer_uri)
        assert offer is not None and offer.status == "closed"

        # When a client deletes the need and the note
        for number, uri in enumerate((need_uri, note_uri), start=1):
            status, delete, headers = await post(
                http, node, token, {"type": "Delete", "object": uri}
            )
            assert status == 201 and headers["Location"] == delete["id"]
            got = (await peer.wait_for("Delete", count=number))[-1]
            assert signed_by(got, node)
            assert got.body["object"] == {"id": uri, "type": "Tombstone"}
        deleted = await node.ctx.store.get_proposal(need_uri)
        assert deleted is not None and deleted.status == "deleted"
    finally:
        await peer.stop()


# -- refusals ----------------------------------------------------------------------------


async def test_invalid_input_gets_422_naming_the_field(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    token = await token_for(node)
    yesterday = later(-1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "Proposal", "kind": "offer", "details": "no title"}, "title"),
        ({"type": "Proposal", "kind": "offer", "title": "Bread", "quantity": -3}, "quantity"),
        ({"type": "Proposal", "kind": "need", "title": "Flour", "deadline": yesterday}, "deadline"),
        ({"type": "Proposal", "kind": "offer", "title": "Rope", "unit": "furlong"}, "unit"),
        ({"type": "Proposal", "kind": "offer", "title": "Jam", "currency": "EURO"}, "currency"),
        ({"type": "Proposal", "kind": "solidarity", "title": "Fund", "quantity": 5000}, "deadline"),
        ({"type": "Proposal", "purpose": "offer", "name": "X", "publishes": "bad"}, "publishes"),
        ({"type": "Create", "object": {"type": "Proposal", "kind": "gift", "title": "X"}}, "kind"),
        ({"type": "Event", "name": "Assembly"}, "type"),
        ({"type": "Note", "content": "  "}, "content"),
        ({"type": "Offer", "quantity": 3}, "inReplyTo"),
        ({"type": "Offer", "inReplyTo": "https://x.test/p/1", "quantity": 0}, "quantity"),
    ]
    for body, field in cases:
        # When a client posts invalid input
        status, answer, _ = await post(http, node, token, body)
        # Then 422 names the field
        assert (status, answer.get("field")) == (422, field), (body, answer)
        assert isinstance(answer["error"], str) and answer["error"]
    # And nothing was published
    assert await node.ctx.store.count_outbox((await node.ctx.coop_actor()).id) == 0
    assert await node.ctx.store.pool.fetchval("SELECT count(*) FROM proposals") == 0


async def test_http_refusals(node: RunningNode, http: aiohttp.ClientSession) -> None:
    token = await token_for(node)
    note = orjson.dumps({"type": "Note", "content": "hi"})
    # Then a wrong content type is 415, bad JSON or a non-object 400, a big body 413
    cases: list[tuple[bytes, str, int, str]] = [
        (note, "text/plain", 415, "unsupported_media_type"),
        (b"{not json", AP, 400, "bad_json"),
        (b'["Note"]', AP, 400, "bad_json"),
        (b'{"type": "Note", "content": "a\\u0000b"}', AP, 400, "bad_json"),
        (b'{"content": "' + b"x" * (256 * 1024) + b'"}', AP, 413, "too_large"),
    ]
    for data, content_type, expected, reason in cases:
        status, answer, _ = await post(http, node, token, data=data, content_type=content_type)
        assert (status, answer["reason"]) == (expected, reason), (content_type, data[:30])
    # And an unknown exchange is 404, an unknown object to delete too
    status, answer, _ = await post(http, node, token, {"type": "Accept", "object": "99"})
    assert (status, answer["reason"]) == (404, "not_found")
    gone = {"type": "Delete", "object": f"{node.base_url}/objects/nothing"}
    status, answer, _ = await post(http, node, token, gone)
    assert (status, answer["reason"]) == (404, "not_found")


# -- exchanges across two nodes ---------------------------------------------------------


async def _follow(follower: RunningNode, followee: RunningNode) -> None:
    coop = await follower.ctx.coop_actor()
    await follow(follower.ctx, coop, followee.handle)

    async def accepted() -> bool:
        return bool(await follower.ctx.store.list_follows(coop.id, "outbound"))

    await eventually(accepted, message=f"{followee.name} accepts {follower.name}")


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
            ("Organic flour", "Flour sacks", "shared tags: #flour")
        ]
        flour_uri = f"{peer.base}/objects/flour-sacks"
        assert matches[0]["respond"] == f"coopfed respond {flour_uri} --quantity 100"
    finally:
        await peer.stop()
