"""The market's pages in headless Chromium, from the seeded two-node market: a
proposal's own page, the board, the admin dashboard and the OAuth sign-in page,
each at desktop and phone width.  The screenshots in docs/screenshots come from
here (``COOPFED_SCREENSHOTS=1``; see tests/support/screenshots.py).

The checks read what Chromium rendered (``innerText``), not the HTML source.
"""

from __future__ import annotations

from urllib.parse import urlencode

import aiohttp

from admin.auth import set_password
from outbox import market
from tests.support.adminflow import PASSWORD
from tests.support.cdp import Browser
from tests.support.mastoflow import PASSWORD as MEMBER_PASSWORD
from tests.support.mastoflow import add_member, register_app
from tests.support.nodes import NodeFactory, RunningNode
from tests.support.screenshots import PHONE, both_widths, desktop
from tests.support.seedmarket import BAKERY, seed_market


def named(node: RunningNode, name: str) -> str:
    return f"{name} (@{node.handle})"


async def test_a_proposal_page_reads_once_and_says_how_to_answer(
    nodes: NodeFactory, browser: Browser
) -> None:
    seeded = await seed_market(nodes)
    bakery = seeded.bakery
    handle = f"@{bakery.handle}"
    # When a reader opens the bread offer's page, at desktop and at phone width
    await both_widths(browser, seeded.bread, "proposal")
    # Then (on the phone) its title shows once, with its status, date and terms
    text = await browser.text()
    assert text.count("Rye sourdough bread") == 1
    assert await browser.evaluate("document.querySelector('h1').innerText") == (
        "Rye sourdough bread"
    )
    facts = await browser.text(".facts")
    assert "Status: Open" in facts and "Published: " in facts
    assert "Quantity: 20 loaves" in facts and "Price: €60" in facts
    assert "Baked every morning from our own starter." in text
    # And how to answer: from Mastodon (the handle, a mention) and from a coop
    answer = await browser.text(".answer")
    assert f"Search for {handle}" in answer
    assert f"{handle} I'd like 20 loaves {seeded.bread}" in answer
    assert f"coopfed respond {seeded.bread} --quantity N --price TOTAL" in answer
    # When the reader opens the oven fund: its deadline and its progress
    await browser.goto(seeded.oven_fund)
    text = await browser.text()
    assert f"Deadline: {seeded.deadline.strftime('%Y-%m-%d %H:%M UTC')}" in text
    assert "€1,000 pledged of €3,000 (33%)" in text and "€0 received" in text
    assert f"coopfed respond {seeded.oven_fund} --quantity N" in text
    await both_widths(browser, seeded.oven_fund, "solidarity")
    # When the bakery closes its need, its page says so and offers no way to answer
    await market.close_proposal(bakery.ctx, await bakery.ctx.coop_actor(), seeded.rye_need)
    await browser.goto(seeded.rye_need)
    text = await browser.text()
    assert "Status: Closed" in text and "it takes no more answers" in text
    assert "How to answer" not in text


async def test_the_board_and_the_admin_name_coops_and_amounts(
    nodes: NodeFactory, browser: Browser
) -> None:
    seeded = await seed_market(nodes)
    bakery, mill = seeded.bakery, seeded.mill
    # The board: counted goods by their name, the fund's pledges
    await both_widths(browser, f"{bakery.base_url}/@{BAKERY['username']}", "board")
    offers, fund = await browser.text("#offer"), await browser.text("#solidarity")
    assert "Quantity: 20 loaves" in offers and "Price: €60" in offers
    assert "€1,000 pledged of €3,000 (33%)" in fund and "€0 received" in fund
    # The mill's network page names the bakery
    await browser.goto(f"{mill.base_url}/network")
    assert named(bakery, "Rye Bakery") in await browser.text("main")

    # When the bakery's admin signs in and publishes 12 jars of honey
    await set_password(bakery.ctx, await bakery.ctx.coop_actor(), PASSWORD)
    await desktop(browser)
    await browser.goto(f"{bakery.base_url}/admin")
    await browser.type("#password", PASSWORD)
    await browser.click_and_wait("form button")
    await browser.click("#publish details:first-of-type summary")
    await browser.type("#publish-offer-title", "Wildflower honey")
    await browser.type("#publish-offer-quantity", "12")
    await browser.type("#publish-offer-unit_label", "jar")
    await browser.type("#publish-offer-price", "48")
    await browser.click_and_wait("#publish-offer button")
    # Then our proposals read it in jars
    ours = await browser.text("#ours")
    assert "Quantity: 12 jars" in ours and "Price: €48" in ours
    # And the dashboard names the mill and reads every amount, on a phone too
    await both_widths(browser, f"{bakery.base_url}/admin", "admin")
    mill_name = named(mill, "Mill Coop")
    found = await browser.text("#market")
    assert f"by {mill_name}" in found and "Price: €400 per t" in found
    matches = await browser.text("#matches")
    assert "Organic rye grain" in matches and "same resource: rye grain" in matches
    assert "Rye sourdough bread" not in matches
    exchanges = await browser.text("#exchanges")
    assert f"with {mill_name}" in exchanges
    assert "Terms: 20 loaves for €60" in exchanges and "€1,000 pledged" in exchanges
    assert "/users/" not in found + matches + exchanges


async def test_the_oauth_page_names_the_coop_the_app_and_what_it_may_do(
    nodes: NodeFactory, browser: Browser
) -> None:
    node = await nodes("bakery", **BAKERY)
    await add_member(node, "maria")
    async with aiohttp.ClientSession() as http:
        app = await register_app(http, node)
    oob = "urn:ietf:wg:oauth:2.0:oob"
    fields = {
        "client_id": app["client_id"],
        "redirect_uri": oob,
        "response_type": "code",
        "scope": "read:statuses read:notifications write:statuses follow",
    }
    url = f"{node.base_url}/oauth/authorize?{urlencode(fields)}"
    # When Maria's app opens the sign-in page (on her phone, and on a desktop)
    await both_widths(browser, url, "oauth")
    # Then it names the coop and the app, and says in plain words what the app may do
    assert await browser.text("h1") == "Sign in to Rye Bakery"
    grant = await browser.text(".grant")
    assert "Test App wants to use your account on Rye Bakery" in grant
    asks = await browser.evaluate(
        "[...document.querySelectorAll('.asks li')].map(li => li.innerText)"
    )
    assert asks == [
        "follow, unfollow, block and mute accounts for you",
        "read your notifications",
        "read your posts and your home timeline",
        "publish, reply and delete posts as you",
    ]
    # And it is styled like the rest: the site's colours and full-width fields
    look = await browser.evaluate(
        "(() => { const b = getComputedStyle(document.querySelector('button'));"
        " const i = document.querySelector('#password').getBoundingClientRect();"
        " return [b.backgroundColor, Math.round(i.width)]; })()"
    )
    assert look[0] == "rgb(47, 111, 79)" and look[1] >= PHONE[0] - 40
    # When she signs in, the app gets its code
    await browser.type("#username", "maria")
    await browser.type("#password", MEMBER_PASSWORD)
    await browser.click_and_wait("form button")
    code = await browser.evaluate("document.querySelector('#code').value")
    assert len(code) >= 40
