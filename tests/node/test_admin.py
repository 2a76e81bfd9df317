"""The admin pages (/admin) against real nodes, as a browser without JavaScript uses them.

Login with the password (``coopfed password``) or an API token, sessions and
their cookies, CSRF refusals that change nothing, the login rate limit, and
the admin's work through the forms: publish, edit, close, delete; respond to a
match; accept and complete an exchange across two nodes; approve a follower;
block a domain.  Pages are checked for what they render, not only the status.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from markupsafe import escape

from admin.auth import LIMITER, set_password
from admin.routes import ADMIN_APP
from federation.credentials import client_address, hash_password, verify_password
from federation.proxies import parse_networks
from federation.store import Exchange, Proposal
from outbox import market
from outbox.c2s import issue_token
from tests.support.adminflow import (
    PASSWORD,
    AdminClient,
    follow_each_other,
    logged_in,
    visible_text,
)
from tests.support.cli import coopfed
from tests.support.fakepeer import FakePeer
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import send_ok

OFFER_FORM = {
    "form": "publish-offer",
    "kind": "offer",
    "title": "Organic flour",
    "details": "Stone-ground <wheat> & rye",
    "quantity": "200",
    "unit": "kilogram",
    "price": "1.20",
    "currency": "EUR",
    "deadline": "",
    "tags": "flour bakery",
    "resource": "flour",
}


async def session_rows(node: RunningNode) -> int:
    return int(await node.ctx.store.pool.fetchval("SELECT count(*) FROM admin_sessions"))


async def our_proposals(node: RunningNode) -> list[Proposal]:
    return await node.ctx.store.search_proposals(local=True, now=node.ctx.clock())


# -- passwords ---------------------------------------------------------------------


def test_password_hash_is_salted_scrypt() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$") and second != first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, None)
    assert not verify_password(PASSWORD, "scrypt$x$y")


def test_client_address_behind_a_local_proxy() -> None:
    # A direct public client is itself; a trusted proxy's appended hop is the client
    local = parse_networks("127.0.0.1/32")
    forwarded = {"X-Forwarded-For": "10.0.0.1"}
    assert client_address("93.184.216.34", forwarded, local) == "93.184.216.34"
    forwarded = {"X-Forwarded-For": "192.0.2.77, 198.51.100.1"}
    assert client_address("127.0.0.1", forwarded, local) == "198.51.100.1"
    assert client_address("127.0.0.1", forwarded, ()) == "127.0.0.1"  # no proxy configured
    assert client_address("127.0.0.1", {}, local) == "127.0.0.1"


# -- login, sessions, logout ---------------------------------------------------------


async def test_password_login_session_cookie_and_logout(node: RunningNode) -> None:
    await set_password(node.ctx, await node.ctx.coop_actor(), PASSWORD)
    client = AdminClient(node.base_url)
    try:
        # Given no session, the admin page sends the browser to the login form
        page = await client.get("/admin")
        assert (page.status, page.location) == (303, "/admin/login")
        form = await client.get("/admin/login")
        assert form.status == 200 and "Admin login" in form.visible
        assert "No admin password is set yet" not in form.visible
        # When the admin logs in with the password
        page = await client.post(
            "/admin/login", {"csrf": form.csrf, "password": PASSWORD, "token": ""}
        )
        # Then a session cookie is set: HttpOnly, SameSite=Strict, /admin, 12 h, not Secure
        assert (page.status, page.location) == (303, "/admin")
        cookie = next(
            v for v in page.headers.getall("Set-Cookie") if v.startswith("coopfed_admin=")
        )
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path", "max-age", "samesite"} <= attributes
        assert "secure" not in attributes
        assert "Path=/admin" in cookie and "Max-Age=43200" in cookie
        assert "SameSite=Strict" in cookie
        # And only the cookie's SHA-256 is stored
        value = client.cookie("coopfed_admin")
        assert value is not None
        stored = await node.ctx.store.pool.fetchval("SELECT id_hash FROM admin_sessions")
        assert stored == hashlib.sha256(value.encode()).hexdigest() != value
        # And the dashboard shows the coop, with no-store and a strict CSP
        home = await client.dashboard()
        assert home.status == 200
        assert f"@coop@{node.ctx.urls.domain}" in home.visible
        assert "No pending follow requests." in home.visible
        assert home.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
        old_csrf = home.csrf

        # When the admin logs out
        page = await client.post("/admin/logout", {"csrf": old_csrf})
        # Then the session is gone: the old cookie opens nothing, its forms do nothing
        assert (page.status, page.location) == (303, "/admin/login")
        assert await session_rows(node) == 0
        client.http.cookie_jar.update_cookies({"coopfed_admin": value})
        page = await client.get("/admin")
        assert (page.status, page.location) == (303, "/admin/login")
        page = await client.post("/admin/proposals", {"csrf": old_csrf, **OFFER_FORM})
        assert page.status == 403 and "Your session has ended" in page.visible
        assert await our_proposals(node) == []
    finally:
        await client.close()


async def test_wrong_password_is_401_and_opens_no_session(node: RunningNode) -> None:
    client = AdminClient(node.base_url)
    try:
        # Given no password set yet, the form says how to set one
        form = await client.get("/admin/login")
        assert "No admin password is set yet Set one on the server" in form.visible
        assert "coopfed password" in form.visible and "--password-stdin" in form.visible
        # And it names the coop the admin logs into
        coop = await node.ctx.coop_actor()
        assert f"{coop.name}: admin login @coop@{node.ctx.urls.domain}" in form.visible
        # When someone tries a password that is not set
        page = await client.login(password=PASSWORD)
        assert page.status == 401 and "Wrong password or token." in page.visible
        # And after it is set, a wrong one
        await set_password(node.ctx, await node.ctx.coop_actor(), PASSWORD)
        page = await client.login(password="not the password")
        # Then the login page comes back with 401, and no session exists
        assert page.status == 401 and "Wrong password or token." in page.visible
        assert client.cookie("coopfed_admin") is None
        assert await session_rows(node) == 0
        # And a login POST without the form's token is refused before any check
        page = await client.post("/admin/login", {"password": PASSWORD})
        assert page.status == 403 and await session_rows(node) == 0
    finally:
        await client.close()


async def test_token_login_ends_when_the_token_is_revoked(node: RunningNode) -> None:
    coop = await node.ctx.coop_actor()
    token_id, token = await issue_token(node.ctx, coop, "laptop")
    client = AdminClient(node.base_url)
    try:
        # When the admin logs in with an API token
        page = await client.login(token=token)
        assert (page.status, page.location) == (303, "/admin")
        assert (await client.dashboard()).status == 200
        # And the token is revoked
        assert await node.ctx.store.revoke_token(token_id)
        # Then the session opened with it ends too
        page = await client.get("/admin")
        assert (page.status, page.location) == (303, "/admin/login")
        assert (await client.login(token=token)).status == 401
    finally:
        await client.close()


async def test_new_password_ends_password_sessions(node: RunningNode) -> None:
    client = await logged_in(node)
    try:
        await set_password(node.ctx, await node.ctx.coop_actor(), "another long password")
        page = await client.get("/admin")
        assert (page.status, page.location) == (303, "/admin/login")
        assert (await client.login(password=PASSWORD)).status == 401
        assert (await client.login(password="another long password")).status == 303
    finally:
        await client.close()


async def test_login_rate_limit_per_client(node: RunningNode) -> None:
    await set_password(node.ctx, await node.ctx.coop_actor(), PASSWORD)
    now = [1000.0]
    assert node.app is not None
    node.app[ADMIN_APP][LIMITER].clock = lambda: now[0]
    client = AdminClient(node.base_url)
    try:
        # Given 10 failed logins from one address
        for _ in range(10):
            assert (await client.login(password="guess")).status == 401
        # Then the 11th attempt is refused, even with the right password
        page = await client.login(password=PASSWORD)
        assert page.status == 429 and "Too many failed logins" in page.visible
        assert page.headers["Retry-After"] == "601"
        # And ten minutes later the right password works again
        now[0] += 601
        assert (await client.login(password=PASSWORD)).status == 303
    finally:
        await client.close()


async def test_https_origin_makes_cookies_secure(nodes: NodeFactory) -> None:
    node = await nodes("s", origin="https://coop.example")
    client = AdminClient(f"http://127.0.0.1:{node.settings.port}")
    try:
        page = await client.get("/admin/login")
        cookie = page.headers["Set-Cookie"]
        assert cookie.startswith("coopfed_login=") and "; Secure" in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        await client.close()


async def test_coopfed_password_command(node: RunningNode) -> None:
    # When the admin sets the password with the CLI (read from stdin)
    too_short = await coopfed(node, "password", "--stdin", stdin="short\n")
    assert too_short.code == 1 and "at least 8 characters" in too_short.err
    result = await coopfed(node, "password", "--stdin", stdin=PASSWORD + "\n")
    assert result.code == 0, result.err
    assert f"log in at {node.base_url}/admin" in result.out
    # Then the browser logs in with it
    client = AdminClient(node.base_url)
    try:
        assert (await client.login(password=PASSWORD)).status == 303
    finally:
        await client.close()


# -- CSRF -----------------------------------------------------------------------------


async def test_post_without_or_with_wrong_csrf_is_403_and_changes_nothing(
    node: RunningNode,
) -> None:
    client = await logged_in(node)
    try:
        for token in (None, "", "forged-token"):
            data = dict(OFFER_FORM) if token is None else {"csrf": token, **OFFER_FORM}
            page = await client.post("/admin/proposals", data)
            assert page.status == 403, token
            assert "did not carry a valid security token" in page.visible
        page = await client.post("/admin/blocks", {"csrf": "nope", "domain": "spam.example"})
        assert page.status == 403
        assert await our_proposals(node) == []
        assert await node.ctx.store.list_domain_blocks() == []
        # And logging out needs the token too
        assert (await client.post("/admin/logout", {"csrf": "nope"})).status == 403
        assert await session_rows(node) == 1
    finally:
        await client.close()


# -- proposals ------------------------------------------------------------------------


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
