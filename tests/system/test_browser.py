"""The public pages and the admin pages in a real browser: headless Chromium.

Chromium is Debian's ``chromium`` package, driven over the DevTools protocol
(``tests/support/cdp.py``).  When it is missing, the session installs it once
with apt-get (we run as root in CI; about 80 s here).  If that cannot be done
the tests fail, saying how to install it: a browser test that silently skips
proves nothing.

The checks read what Chromium rendered (``innerText``, element properties,
layout width at phone size), not the HTML source or status codes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from admin.auth import set_password
from federation.store import Exchange
from outbox import market
from outbox.publish import follow
from tests.support.adminflow import PASSWORD
from tests.support.cdp import Browser
from tests.support.nodes import NodeFactory, RunningNode, eventually

SCREENSHOT = Path("/tmp/coopfed-board-phone.png")


async def _follows(follower: RunningNode, followee: RunningNode) -> None:
    coop = await follower.ctx.coop_actor()
    await follow(follower.ctx, coop, followee.handle)

    async def accepted() -> bool:
        return bool(await follower.ctx.store.list_follows(coop.id, "outbound"))

    await eventually(accepted, message=f"{followee.name} accepts {follower.name}")


async def test_public_board_and_proposal_page(nodes: NodeFactory, browser: Browser) -> None:
    a = await nodes("a")
    b = await nodes("b")
    await _follows(b, a)
    await _follows(a, b)  # pledges are accepted by rule from coops A follows
    coop = await a.ctx.coop_actor()
    # Given an offer and a solidarity request that B pledged a fifth of
    create = await market.publish_proposal(
        a.ctx,
        coop,
        {
            "kind": "offer",
            "title": "Fresh sourdough bread",
            "quantity": "40",
            "price": "4.50",
            "details": "Baked every morning.",
            "tags": ["bread"],
        },
    )
    deadline = (datetime.now(UTC) + timedelta(days=20)).replace(hour=18, minute=0, second=0)
    fund = await market.publish_proposal(
        a.ctx,
        coop,
        {
            "kind": "solidarity",
            "title": "Flood repair fund",
            "quantity": "5000",
            "currency": "EUR",
            "deadline": deadline.isoformat(),
        },
    )
    fund_uri = fund["object"]["id"]
    await eventually(lambda: b.ctx.store.get_proposal(fund_uri), message="B sees the fund")
    await market.respond(b.ctx, await b.ctx.coop_actor(), fund_uri, quantity=Decimal(1000))

    async def pledged() -> bool:
        row = await a.ctx.store.get_proposal(fund_uri)
        return row is not None and row.pledged == Decimal(1000)

    await eventually(pledged, message="A counts the pledge")

    # When a phone opens the coop's page
    await browser.phone()
    await browser.goto(f"{a.base_url}/@coop")
    # Then it shows the board: the offer, and the fund with its progress and deadline
    offers = await browser.text("#offer")
    assert "Fresh sourdough bread" in offers and "Baked every morning." in offers
    assert "Quantity: 40" in offers and "Price: €4.50" in offers
    fund_text = await browser.text("#solidarity")
    assert "Flood repair fund" in fund_text
    assert "€1,000 pledged of €5,000 (20%)" in fund_text
    assert f"Deadline: {deadline.strftime('%Y-%m-%d')} 18:00 UTC" in fund_text
    bar = await browser.evaluate(
        "(() => { const p = document.querySelector('#solidarity progress');"
        " return [p.value, p.max, p.labels.length, p.getBoundingClientRect().width]; })()"
    )
    assert bar[:3] == [20, 100, 1] and bar[3] > 200
    # And the page fits the phone's width, in the document's language
    assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
    assert await browser.evaluate("document.documentElement.lang") == "en"
    body = await browser.text()
    assert f"@coop@{a.ctx.urls.domain}" in body and "Follow this coop" in body
    await browser.screenshot(SCREENSHOT, full_page=True)

    # When the reader opens the offer's own page from the board
    await browser.click_and_wait("#offer h3 a")
    # Then it shows the offer and how to follow the coop and answer it
    assert await browser.url() == create["object"]["id"]
    page = await browser.text()
    assert "Fresh sourdough bread" in page and "Baked every morning." in page
    assert f"Search for @coop@{a.ctx.urls.domain}" in page and "How to answer" in page
    assert await browser.evaluate("document.title") == f"Fresh sourdough bread · {coop.name}"
    # And the solidarity request's own page shows its progress bar and deadline too
    await browser.goto(fund_uri)
    page = await browser.text()
    assert "€1,000 pledged of €5,000 (20%)" in page
    assert f"Deadline: {deadline.strftime('%Y-%m-%d')} 18:00 UTC" in page
    assert await browser.evaluate("document.querySelector('progress').value") == 20


async def test_admin_publishes_an_offer_and_accepts_an_exchange(
    nodes: NodeFactory, browser: Browser
) -> None:
    a = await nodes("a")
    b = await nodes("b")
    await _follows(b, a)
    await set_password(a.ctx, await a.ctx.coop_actor(), PASSWORD)
    # Given the admin opens /admin: the login form comes first
    await browser.goto(f"{a.base_url}/admin")
    assert await browser.url() == f"{a.base_url}/admin/login"
    # When a wrong password is typed, the page says so
    await browser.type("#password", "not it")
    await browser.click_and_wait("form button")
    assert "Wrong password or token." in await browser.text()
    # When the right one is typed
    await browser.type("#password", PASSWORD)
    await browser.click_and_wait("form button")
    # Then the dashboard opens
    assert await browser.url() == f"{a.base_url}/admin"
    assert f"{(await a.ctx.coop_actor()).name}: admin" in await browser.text("header")

    # When the admin opens "Publish an offer", fills it in and presses Publish
    await browser.click("#publish details:first-of-type summary")
    await browser.type("#publish-offer-title", "Organic flour")
    await browser.type("#publish-offer-details", "Stone-ground, from our mill.")
    await browser.type("#publish-offer-quantity", "200")
    await browser.choose("#publish-offer-unit", "kilogram")
    await browser.type("#publish-offer-price", "1.20")
    await browser.type("#publish-offer-tags", "flour bakery")
    await browser.click_and_wait("#publish-offer button")
    # Then the dashboard confirms and lists it among our proposals
    assert await browser.url() == f"{a.base_url}/admin?done=published#ours"
    assert "Published: it is on the public board" in await browser.text("main")
    ours = await browser.text("#ours")
    assert "Organic flour" in ours and "Quantity: 200 kg" in ours and "Price: €1.20" in ours
    # And the public board shows it
    await browser.goto(f"{a.base_url}/@coop")
    offers = await browser.text("#offer")
    assert "Organic flour" in offers and "Stone-ground, from our mill." in offers

    # When B responds to the offer
    [offer] = await a.ctx.store.search_proposals(local=True, now=a.ctx.clock())
    await eventually(lambda: b.ctx.store.get_proposal(offer.uri), message="B sees the offer")
    theirs = await market.respond(
        b.ctx, await b.ctx.coop_actor(), offer.uri, quantity=Decimal(50), reciprocal=Decimal(60)
    )

    async def offered() -> Exchange | None:
        rows = await a.ctx.store.list_exchanges()
        return rows[0] if rows else None

    mine = await eventually(offered, message="A records B's response")
    # Then the admin sees it with Accept and Reject
    await browser.goto(f"{a.base_url}/admin")
    item = await browser.text(f"#x{mine.id}")
    assert "Organic flour" in item and "Terms: 50 kg for €60" in item
    assert f"with Our Cooperative (@{b.handle})" in item
    assert re.search(r"State: offered", item, re.IGNORECASE)
    buttons = await browser.evaluate(
        f"[...document.querySelectorAll('#x{mine.id} button')].map(b => b.innerText)"
    )
    assert buttons == ["Accept", "Reject"]
    # When the admin presses Accept
    await browser.click_and_wait(f"#x{mine.id} button[value=accept]")
    # Then the page confirms, and both nodes record the exchange accepted
    assert "Exchange accepted." in await browser.text("main")
    assert re.search(r"State: accepted", await browser.text(f"#x{mine.id}"), re.IGNORECASE)
    row = await a.ctx.store.get_exchange(mine.id)
    assert row is not None and row.state == "accepted"

    async def accepted_at_b() -> bool:
        at_b = await b.ctx.store.get_exchange(theirs.id)
        return at_b is not None and at_b.state == "accepted"

    await eventually(accepted_at_b, message="B records the acceptance")
