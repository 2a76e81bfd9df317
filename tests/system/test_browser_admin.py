"""The admin pages for profile, follows and members in headless Chromium, at phone width.

As in ``test_browser.py``: Debian's chromium over the DevTools protocol, with
checks on what it rendered.  Every admin page is also captured at 390 px wide to
``/tmp/coopfed-admin-*.png`` (full page) for a person to look at, and the test
checks that nothing is wider than the phone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from admin.auth import set_password
from outbox import market
from outbox.publish import follow
from tests.support.adminflow import PASSWORD, picture
from tests.support.cdp import Browser
from tests.support.nodes import NodeFactory, RunningNode, eventually

SHOTS = Path("/tmp")


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    started = await Browser.start(chromium)
    try:
        await started.phone()
        yield started
    finally:
        await started.close()


async def shot(browser: Browser, name: str) -> None:
    """A full-page phone screenshot, and no sideways scrolling."""
    width = await browser.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} is {width}px wide"
    await browser.screenshot(SHOTS / f"coopfed-admin-{name}.png", full_page=True)


async def log_in(browser: Browser, node: RunningNode) -> None:
    await set_password(node.ctx, await node.ctx.coop_actor(), PASSWORD)
    await browser.goto(f"{node.base_url}/admin/login")
    await browser.type("#password", PASSWORD)
    await browser.click_and_wait("form button")
    assert await browser.url() == f"{node.base_url}/admin"


async def test_login_page_names_the_coop_and_how_to_set_a_password(
    nodes: NodeFactory, browser: Browser
) -> None:
    a = await nodes("a", name="Bakery Coop")
    await browser.goto(f"{a.base_url}/admin")
    header = await browser.text("header")
    assert "Bakery Coop: admin login" in header and f"@coop@{a.ctx.urls.domain}" in header
    hint = await browser.text("#no-password")
    assert "coopfed password" in hint and "--password-stdin" in hint
    await shot(browser, "login")


async def test_profile_edit_with_avatar_upload(
    nodes: NodeFactory, browser: Browser, tmp_path: Path
) -> None:
    a = await nodes("a")
    b = await nodes("b")
    coop_b = await b.ctx.coop_actor()
    await follow(b.ctx, coop_b, a.handle)
    await eventually(lambda: b.ctx.store.list_follows(coop_b.id, "outbound"), message="accept")
    await log_in(browser, a)
    await shot(browser, "dashboard")
    # When the admin opens Profile from the dashboard
    await browser.click_and_wait("nav.pages a[href='/admin/profile']")
    assert await browser.url() == f"{a.base_url}/admin/profile"
    # And sends a text file as the avatar with an empty name
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"not an image at all")
    await browser.type("#profile-name", " ")
    await browser.evaluate("document.querySelector('#profile-name').removeAttribute('required')")
    await browser.upload("#profile-avatar", notes)
    await browser.click_and_wait("#profile button[type=submit]")
    # Then both problems are named, each right after its field, and nothing changed
    assert (
        await browser.evaluate(
            "document.querySelector('#profile-name').nextElementSibling.innerText"
        )
        == "is required"
    )
    avatar_error = await browser.evaluate(
        "document.querySelector('#profile-avatar').nextElementSibling.innerText"
    )
    assert "not a readable image" in avatar_error
    assert "2 field(s) need a change" in await browser.text("main")
    await shot(browser, "profile-errors")
    assert (await a.ctx.coop_actor()).avatar_url == ""
    # When the admin types a name, a field, and uploads a real avatar
    avatar = tmp_path / "avatar.jpg"
    avatar.write_bytes(picture((800, 800), (30, 120, 60), "JPEG"))
    await browser.type("#profile-name", "Valley Bakery")
    await browser.type("#profile-field-0-name", "Website")
    await browser.type("#profile-field-0-value", "https://valley.example/")
    await browser.upload("#profile-avatar", avatar)
    await browser.click_and_wait("#profile button[type=submit]")
    # Then the page confirms and shows the new avatar
    assert "Saved. The followers get the new profile." in await browser.text("main")
    loaded = await browser.evaluate(
        "(() => { const i = document.querySelector('img.avatar');"
        " return [i.complete, i.naturalWidth]; })()"
    )
    assert loaded == [True, 400]
    await shot(browser, "profile")
    # And the public page shows the avatar, loaded
    await browser.goto(f"{a.base_url}/@coop")
    assert "Valley Bakery" in await browser.text("header")
    assert await browser.evaluate("document.querySelector('header img.avatar').naturalWidth") > 0
    await shot(browser, "public-page")
    # And the peer sees the new name and avatar
    coop_a = await a.ctx.coop_actor()

    async def seen() -> bool:
        remote = await b.ctx.store.get_remote_actor(a.actor_url)
        return remote is not None and remote.name == "Valley Bakery"

    await eventually(seen, message="B receives the Update")
    remote = await b.ctx.store.get_remote_actor(a.actor_url)
    assert remote is not None and remote.document["icon"]["url"] == coop_a.avatar_url
    assert remote.document["attachment"][0]["name"] == "Website"


async def test_follow_by_handle_with_preview(nodes: NodeFactory, browser: Browser) -> None:
    a = await nodes("a")
    b = await nodes("b", name="River Farm", summary="Vegetables and grain.")
    await log_in(browser, a)
    await browser.goto(f"{a.base_url}/admin/follows")
    await shot(browser, "follows-empty")
    # When the admin types B's handle and looks it up
    await browser.type("#follow-handle", b.handle)
    await browser.click_and_wait("#follow button")
    # Then the preview shows who it is, before anything is followed
    preview = await browser.text("#preview")
    assert "River Farm" in preview and f"@{b.handle}" in preview
    assert "Vegetables and grain." in preview
    assert "0 posts · 0 followers · 0 following" in preview
    await shot(browser, "follow-preview")
    coop_a = await a.ctx.coop_actor()
    assert await a.ctx.store.get_follow(coop_a.id, b.actor_url, "outbound") is None
    # When the admin confirms
    await browser.click_and_wait("#confirm-follow button")
    assert "Follow request sent." in await browser.text("main")

    async def accepted() -> bool:
        found = await a.ctx.store.get_follow(coop_a.id, b.actor_url, "outbound")
        return found is not None and found.state == "accepted"

    await eventually(accepted, message="B accepts")
    # Then B is listed under Following with its name
    await browser.goto(f"{a.base_url}/admin/follows")
    following = await browser.text("#following")
    assert "Following (1)" in following and "River Farm" in following
    assert "waiting" not in following
    await shot(browser, "follows")
    # When the admin presses Unfollow, a confirmation page asks first
    await browser.click_and_wait("#following button")
    assert "Unfollow River Farm?" in await browser.text("h1")
    await shot(browser, "confirm-unfollow")
    await browser.click_and_wait("#confirm button")
    assert "Unfollowed." in await browser.text("main")
    assert await a.ctx.store.get_follow(coop_a.id, b.actor_url, "outbound") is None


async def test_members_add_suspend_and_remove(nodes: NodeFactory, browser: Browser) -> None:
    a = await nodes("a")
    await log_in(browser, a)
    await browser.goto(f"{a.base_url}/admin/members")
    # When the admin adds a member with a bad username, the field says why
    await browser.type("#add-username", "no spaces")
    await browser.click_and_wait("#add button")
    assert "not a valid username" in await browser.evaluate(
        "document.querySelector('#add-username').nextElementSibling.innerText"
    )
    assert await browser.evaluate("document.querySelector('#add-username').value") == "no spaces"
    # When the admin adds alice
    await browser.type("#add-username", "alice")
    await browser.type("#add-name", "Alice Baker")
    await browser.click_and_wait("#add button")
    # Then the one-time password is shown once
    password = (await browser.text("#password")).strip()
    assert len(password) >= 16
    await shot(browser, "member-password")
    alice = await a.ctx.store.get_local_actor("alice")
    assert alice is not None and alice.name == "Alice Baker"
    # When the admin suspends her
    await browser.goto(f"{a.base_url}/admin/members")
    await browser.click_and_wait("#member-alice form[action$=suspend] button")
    assert "Suspended" in await browser.text("main")
    assert "suspended" in (await browser.text("#member-alice")).lower()
    alice = await a.ctx.store.get_local_actor("alice")
    assert alice is not None and alice.suspended_at is not None
    await shot(browser, "members")
    # When the admin presses Remove, a confirmation page asks first
    await browser.click_and_wait("#member-alice form[action$=remove] button")
    assert "Remove @alice?" in await browser.text("h1")
    assert "cannot be undone" in await browser.text("main")
    await shot(browser, "confirm-remove-member")
    # And "No, go back" leaves her as she was
    await browser.click_and_wait("a.cancel")
    alice = await a.ctx.store.get_local_actor("alice")
    assert alice is not None and alice.deleted_at is None
    # When confirmed, she is removed
    await browser.click_and_wait("#member-alice form[action$=remove] button")
    await browser.click_and_wait("#confirm button")
    assert "Removed" in await browser.text("main")
    assert "removed" in (await browser.text("#member-alice")).lower()
    alice = await a.ctx.store.get_local_actor("alice")
    assert alice is not None and alice.deleted_at is not None


async def test_field_errors_and_delete_confirmation(nodes: NodeFactory, browser: Browser) -> None:
    a = await nodes("a")
    coop = await a.ctx.coop_actor()
    await market.publish_proposal(a.ctx, coop, {"kind": "offer", "title": "Rye bread"})
    await log_in(browser, a)
    # When the admin publishes an offer with three mistakes
    await browser.click("#publish details:first-of-type summary")
    await browser.evaluate(
        "document.querySelector('#publish-offer-title').removeAttribute('required')"
    )
    await browser.type("#publish-offer-quantity", "lots")
    await browser.type("#publish-offer-price", "-2")
    await browser.type("#publish-offer-currency", "euro")
    await browser.click_and_wait("#publish-offer button")
    # Then each is named right after its field, and the typed values are kept
    for name, message in (
        ("title", "is required"),
        ("quantity", "must be a number"),
        ("price", "must not be negative"),
        ("currency", "must be a three-letter code such as EUR"),
    ):
        shown = await browser.evaluate(
            f"document.querySelector('#publish-offer-{name}').nextElementSibling.innerText"
        )
        assert shown == message, name
    assert await browser.evaluate("document.querySelector('#publish-offer-currency').value") == (
        "euro"
    )
    await shot(browser, "dashboard-errors")
    # When the admin presses Delete on the offer, a confirmation page asks first
    await browser.goto(f"{a.base_url}/admin")
    await browser.click_and_wait("#ours-0 form[action$=delete] button")
    assert "Delete “Rye bread”?" in await browser.text("h1")
    await shot(browser, "confirm-delete")
    [offer] = await a.ctx.store.search_proposals(local=True, now=a.ctx.clock())
    assert offer.status == "open"
    await browser.click_and_wait("#confirm button")
    assert "Deleted." in await browser.text("main")
    gone = await a.ctx.store.get_proposal(offer.uri)
    assert gone is not None and gone.status == "deleted"
