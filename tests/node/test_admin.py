"""The admin pages (/admin) against real nodes, as a browser without JavaScript uses them.

Login with the password (``coopfed password``) or an API token, sessions and
their cookies, CSRF refusals that change nothing, the login rate limit, and
the admin's work through the forms: publish, edit, close, delete; respond to a
match; accept and complete an exchange across two nodes; approve a follower;
block a domain.  Pages are checked for what they render, not only the status.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from markupsafe import escape

from federation.store import Exchange
from outbox import market
from tests.support.adminflow import (
    OFFER_FORM,
    follow_each_other,
    logged_in,
    our_proposals,
    visible_text,
)
from tests.support.fakepeer import FakePeer
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import send_ok


async def test_publish_edit_close_delete_through_forms(node: RunningNode) -> None:
    client = await logged_in(node)
    try:
        # When the admin publishes an offer through the form
        page = await client.submit("/admin/proposals", OFFER_FORM)
        assert (page.status, page.location) == (303, "/admin?done=published#ours")
        # Then it is stored as typed
        [offer] = await our_proposals(node)
        assert (offer.kind, offer.title, offer.quantity, offer.unit) == (
            "offer",
            "Organic flour",
            Decimal(200),
            "kilogram",
        )
        assert (offer.price, offer.currency, offer.tags) == (
            Decimal("1.20"),
            "EUR",
            ["flour", "bakery"],
        )
        # And the dashboard says so and lists it with its buttons
        home = await client.dashboard("?done=published")
        assert "Published: it is on the public board" in home.visible
        assert "Offer Organic flour Status: open Quantity: 200 kg Price: €1.20" in home.visible
        assert "Stone-ground &lt;wheat&gt; &amp; rye" not in home.text  # details stay off
        # And the public board shows it under Offers, escaped
        board = await client.get("/@coop", headers={"Accept": "text/html"})
        offers = board.text.split('<section id="offer">')[1].split("</section>")[0]
        assert "Organic flour" in offers
        assert "Stone-ground &lt;wheat&gt; &amp; rye" in offers

        # When a solidarity request is published with a bare date as deadline
        deadline = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
        page = await client.submit(
            "/admin/proposals",
            {
                "form": "publish-solidarity",
                "kind": "solidarity",
                "title": "Flood repair fund",
                "details": "",
                "quantity": "5000",
                "unit": "one",
                "currency": "EUR",
                "deadline": deadline,
                "tags": "",
            },
        )
        assert page.status == 303, page.text
        # Then the board shows a progress bar and the deadline (end of that day, UTC)
        board = await client.get("/@coop", headers={"Accept": "text/html"})
        fund = board.text.split('<section id="solidarity">')[1].split("</section>")[0]
        assert '<progress value="0" max="100">0%</progress>' in fund
        assert f"Deadline: {deadline} 23:59 UTC" in visible_text(fund)
        assert "€0 pledged of €5,000 (0%)" in visible_text(fund)

        # When the admin edits the offer's title and price
        edit = await client.get(f"/admin/edit?uri={offer.uri}")
        assert edit.status == 200
        assert 'name="title" type="text" value="Organic flour"' in edit.text
        assert 'name="quantity" type="text" value="200"' in edit.text
        page = await client.post(
            "/admin/proposals/update",
            {
                **OFFER_FORM,
                "form": "edit",
                "csrf": edit.csrf,
                "uri": offer.uri,
                "title": "Organic spelt flour",
                "price": "",
            },
        )
        assert (page.status, page.location) == (303, "/admin?done=updated#ours")
        edited = await node.ctx.store.get_proposal(offer.uri)
        assert edited is not None
        assert (edited.title, edited.price, edited.quantity) == ("Organic spelt flour", None, 200)
        # When Close is pressed, a page asks first, and nothing is closed yet
        page = await client.submit("/admin/proposals/close", {"form": "close-0", "uri": offer.uri})
        assert page.status == 200 and "Close “Organic spelt flour”?" in page.visible
        assert 'name="confirm" value="yes"' in page.text and f'value="{offer.uri}"' in page.text
        still = await node.ctx.store.get_proposal(offer.uri)
        assert still is not None and still.status == "open"
        # When it is confirmed, it is closed
        page = await client.submit(
            "/admin/proposals/close", {"form": "close-0", "uri": offer.uri, "confirm": "yes"}
        )
        assert page.status == 303
        closed = await node.ctx.store.get_proposal(offer.uri)
        assert closed is not None and closed.status == "closed"
        board = await client.get("/@coop", headers={"Accept": "text/html"})
        assert "Organic spelt flour" not in board.text.split('<section id="offer">')[1]
        # And closing again is refused with the reason shown
        page = await client.submit(
            "/admin/proposals/close", {"form": "close-0", "uri": offer.uri, "confirm": "yes"}
        )
        assert page.status == 409 and "is already closed" in page.visible
        # And deleting asks first too
        page = await client.submit(
            "/admin/proposals/delete", {"form": "delete-0", "uri": offer.uri}
        )
        assert page.status == 200 and "Delete “Organic spelt flour”?" in page.visible
        assert "This cannot be undone." in page.visible
        kept = await node.ctx.store.get_proposal(offer.uri)
        assert kept is not None and kept.status == "closed"
        page = await client.submit(
            "/admin/proposals/delete", {"form": "delete-0", "uri": offer.uri, "confirm": "yes"}
        )
        assert page.status == 303
        gone = await node.ctx.store.get_proposal(offer.uri)
        assert gone is not None and gone.status == "deleted"
    finally:
        await client.close()


async def test_invalid_form_shows_the_field_error_and_keeps_the_input(node: RunningNode) -> None:
    client = await logged_in(node)
    try:
        # When the admin sends an offer without a title and a bad price
        page = await client.submit(
            "/admin/proposals", {**OFFER_FORM, "title": " ", "details": "<b>kept</b>"}
        )
        # Then the page says which field to fix, next to it, and keeps what was typed
        assert page.status == 422
        assert re.search(
            r'id="publish-offer-title"[^>]*aria-invalid="true"[^>]*>'
            r'<p class="error" id="publish-offer-title-error">is required</p>',
            page.text,
        ), page.text
        assert "&lt;b&gt;kept&lt;/b&gt;</textarea>" in page.text
        page = await client.submit("/admin/proposals", {**OFFER_FORM, "price": "cheap"})
        assert page.status == 422
        assert '<p class="error" id="publish-offer-price-error">must be a number</p>' in page.text
        # And nothing was published
        assert await our_proposals(node) == []
        # And a solidarity request without a deadline names the deadline
        page = await client.submit(
            "/admin/proposals",
            {
                "form": "publish-solidarity",
                "kind": "solidarity",
                "title": "Fund",
                "quantity": "100",
                "deadline": "",
            },
        )
        assert page.status == 422
        assert "a solidarity request needs a deadline" in page.visible
        # And several mistakes at once are all named, each next to its field
        page = await client.submit(
            "/admin/proposals",
            {
                **OFFER_FORM,
                "title": "",
                "quantity": "-3",
                "price": "cheap",
                "currency": "euros",
                "tags": "two words, ok!",
            },
        )
        assert page.status == 422
        for name, message in (
            ("title", "is required"),
            ("quantity", "must not be negative"),
            ("price", "must be a number"),
            ("currency", "must be a three-letter code such as EUR"),
            ("tags", "'ok!' is not a single word"),
        ):
            shown = re.escape(str(escape(message)))
            assert re.search(
                rf'id="publish-offer-{name}"[^>]*aria-invalid="true"[^>]*>'
                rf'<p class="error" id="publish-offer-{name}-error">{shown}</p>',
                page.text,
            ), name
        assert "5 fields need a change" in page.visible
        assert 'value="euros"' in page.text  # what was typed is kept
        assert await our_proposals(node) == []
        # And the edit form names every mistake too
        await client.submit("/admin/proposals", OFFER_FORM)
        [offer] = await our_proposals(node)
        edit = await client.get(f"/admin/edit?uri={offer.uri}")
        page = await client.post(
            "/admin/proposals/update",
            {**OFFER_FORM, "form": "edit", "csrf": edit.csrf, "uri": offer.uri, "title": ""}
            | {"price": "-1", "deadline": "2001-01-01"},
        )
        assert page.status == 422 and "Edit: " in page.visible
        for name in ("title", "price", "deadline"):
            assert f'<p class="error" id="edit-{name}-error">' in page.text, name
        unchanged = await node.ctx.store.get_proposal(offer.uri)
        assert unchanged is not None and unchanged.title == offer.title
    finally:
        await client.close()


# -- exchanges across two nodes -----------------------------------------------------------


async def test_match_respond_accept_and_complete_across_two_nodes(nodes: NodeFactory) -> None:
    a = await nodes("a")
    b = await nodes("b")
    await follow_each_other(a, b)
    b_coop = await b.ctx.coop_actor()
    # Given B needs flour
    need = await market.publish_proposal(
        b.ctx,
        b_coop,
        {
            "kind": "need",
            "title": "Flour <for> the bakery",
            "quantity": "50",
            "unit": "kilogram",
            "resource": "flour",
            "tags": ["flour"],
        },
    )
    need_uri = need["object"]["id"]
    await eventually(lambda: a.ctx.store.get_proposal(need_uri), message="A stores B's need")
    client = await logged_in(a)
    try:
        # When A's admin publishes an offer of flour
        assert (await client.submit("/admin/proposals", OFFER_FORM)).status == 303
        [offer] = await our_proposals(a)
        # Then the dashboard lists the match with a respond form filled in
        home = await client.dashboard()
        matches = home.text.split('<section id="matches">')[1].split("</section>")[0]
        assert "same resource" in visible_text(matches)
        # (a peer's text is escaped wherever it shows)
        assert "Flour &lt;for&gt; the bakery" in matches and "<for>" not in home.text
        form_id = re.search(r'id="(match-\d+)"', matches)
        assert form_id is not None
        assert f'id="{form_id[1]}-quantity" name="quantity" type="text" value="50"' in matches
        # When A's admin responds with three mistakes, all three are named at once
        page = await client.submit(
            "/admin/respond",
            {
                "form": form_id[1],
                "proposal": need_uri,
                "quantity": "0",
                "price": "free",
                "message": "x" * 5001,
            },
        )
        assert page.status == 422
        for name, message in (
            ("quantity", "is required and must be above 0"),
            ("price", "must be a number"),
            ("message", "is longer than"),
        ):
            assert f'<p class="error" id="{form_id[1]}-{name}-error">{message}' in page.text
        assert await b.ctx.store.list_exchanges() == []
        # When A's admin responds through it
        page = await client.submit(
            "/admin/respond",
            {
                "form": form_id[1],
                "proposal": need_uri,
                "quantity": "50",
                "price": "60",
                "message": "From our mill",
            },
        )
        assert (page.status, page.location) == (303, "/admin?done=responded#exchanges")

        # Then B records the offer on its need
        async def at_b() -> Exchange | None:
            rows = await b.ctx.store.list_exchanges()
            return rows[0] if rows else None

        theirs = await eventually(at_b, message="B records A's response")
        assert (theirs.role, theirs.state, theirs.quantity) == ("proposer", "offered", 50)

        # Given B answers A's offer
        await eventually(lambda: b.ctx.store.get_proposal(offer.uri), message="B sees the offer")
        response = await market.respond(b.ctx, b_coop, offer.uri, quantity=Decimal(20))

        async def offered_at_a() -> Exchange | None:
            rows = await a.ctx.store.list_exchanges()
            return next((e for e in rows if e.role == "proposer"), None)

        mine = await eventually(offered_at_a, message="A records B's response")
        # Then A's dashboard offers exactly the steps the state machine allows
        home = await client.dashboard()
        item = home.text.split(f'id="x{mine.id}"')[1].split("</article>")[0]
        assert "State: offered · we published the proposal" in visible_text(item)
        assert re.findall(r'name="event" value="(\w+)"', item) == ["accept", "reject"]
        # And a step it does not allow is refused, nothing changed
        page = await client.submit(
            f"/admin/exchanges/{mine.id}", {"form": f"exchange-{mine.id}", "event": "complete"}
        )
        assert page.status == 409 and "not allowed when the exchange is offered" in page.visible
        # When the admin presses Accept
        page = await client.submit(
            f"/admin/exchanges/{mine.id}", {"form": f"exchange-{mine.id}", "event": "accept"}
        )
        assert (page.status, page.location) == (303, "/admin?done=accept#exchanges")
        # Then both nodes record it accepted
        accepted = await a.ctx.store.get_exchange(mine.id)
        assert accepted is not None and accepted.state == "accepted"

        async def b_state(expected: str) -> bool:
            row = await b.ctx.store.get_exchange(response.id)
            return row is not None and row.state == expected

        await eventually(lambda: b_state("accepted"), message="B sees the acceptance")
        home = await client.dashboard("?done=accept")
        assert "Exchange accepted." in home.visible
        item = home.text.split(f'id="x{mine.id}"')[1].split("</article>")[0]
        assert re.findall(r'name="event" value="(\w+)"', item) == ["cancel", "complete"]
        # When the admin marks it completed
        page = await client.submit(
            f"/admin/exchanges/{mine.id}", {"form": f"exchange-{mine.id}", "event": "complete"}
        )
        assert page.status == 303
        await eventually(lambda: b_state("completed"), message="B sees completion")
    finally:
        await client.close()


# -- followers and blocks -------------------------------------------------------------


async def test_approve_and_reject_pending_followers(nodes: NodeFactory) -> None:
    node = await nodes("a", manually_approves_followers=True)
    peer = await FakePeer(style="mastodon").start()
    client = await logged_in(node)
    try:
        alice, bob = peer.add_actor("alice"), peer.add_actor("bob")
        for who in (alice, bob):
            await send_ok(peer, who, node, peer.follow(who, node.actor_url))

        async def both_listed() -> set[str] | None:
            page = await client.dashboard()
            found = set(re.findall(r'name="actor" value="([^"]+)"', page.text))
            return found if len(found) == 2 else None

        # Then the dashboard lists both requests with Approve and Reject
        listed = await eventually(both_listed, message="both requests listed")
        assert listed == {alice.id, bob.id}
        home = await client.dashboard()
        assert f"@alice@{peer.domain} Approve Reject" in home.visible
        # When the admin approves alice and rejects bob
        page = await client.submit(
            "/admin/followers/approve", {"form": "approve-0", "actor": alice.id}
        )
        assert (page.status, page.location) == (303, "/admin?done=approved#followers")
        page = await client.submit("/admin/followers/reject", {"form": "refuse-0", "actor": bob.id})
        assert page.status == 303
        # Then alice gets an Accept, bob a Reject, and no request is left
        accepts = await peer.wait_for("Accept")
        assert accepts[0].body["object"]["actor"] == alice.id
        rejects = await peer.wait_for("Reject")
        assert rejects[0].body["object"]["actor"] == bob.id
        coop = await node.ctx.coop_actor()
        followers = await node.ctx.store.list_follows(coop.id, "inbound")
        assert [f.remote_actor for f in followers] == [alice.id]
        assert "No pending follow requests." in (await client.dashboard()).visible
    finally:
        await client.close()
        await peer.stop()


async def test_block_and_unblock_a_domain(node: RunningNode) -> None:
    client = await logged_in(node)
    try:
        # When the admin blocks a domain (any case, with a port)
        page = await client.submit(
            "/admin/blocks", {"form": "block", "domain": "Spam.Example:443", "reason": "spam"}
        )
        assert (page.status, page.location) == (303, "/admin?done=blocked#blocks")
        # Then it is stored, enforced at once, and listed with an Unblock button
        assert await node.ctx.store.list_domain_blocks() == ["spam.example"]
        assert node.ctx.blocks.is_blocked("www.spam.example")
        home = await client.dashboard()
        assert "spam.example Unblock" in home.visible
        # And an empty domain is refused next to the field
        page = await client.submit("/admin/blocks", {"form": "block", "domain": ""})
        assert page.status == 422
        assert '<p class="error" id="block-domain-error">is required</p>' in page.text
        # When the admin unblocks it
        page = await client.submit(
            "/admin/blocks/remove", {"form": "unblock-0", "domain": "spam.example"}
        )
        assert page.status == 303
        assert await node.ctx.store.list_domain_blocks() == []
        assert not node.ctx.blocks.is_blocked("spam.example")
    finally:
        await client.close()


async def test_market_filters_and_bad_filter(node: RunningNode) -> None:
    client = await logged_in(node)
    try:
        assert (await client.submit("/admin/proposals", OFFER_FORM)).status == 303
        page = await client.dashboard("?kind=need")
        market_html = page.text.split('<section id="market">')[1].split("</section>")[0]
        assert "Nothing in the market matches." in visible_text(market_html)
        page = await client.dashboard("?kind=offer&tag=flour")
        assert "Organic flour" in page.text.split('<section id="market">')[1]
        page = await client.get("/admin?kind=gift")
        assert page.status == 422 and "kind: must be one of offer, need, solidarity" in page.visible
    finally:
        await client.close()
