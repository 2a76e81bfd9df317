"""The client-to-server API over real HTTP: tokens, every accepted shape, errors, exchanges."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import aiohttp
import orjson

from federation.keys import dump_private_key_pem, dump_public_key_pem, generate_private_key
from outbox.c2s import issue_token
from tests.support.c2sflow import AP, iso, later, post, signed_by, token_for
from tests.support.fakepeer import AS, FakePeer
from tests.support.nodes import RunningNode
from tests.support.peerflow import accepted_follower

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
