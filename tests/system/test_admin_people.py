"""The admin pages for the profile, follows and members, across two real nodes.

Forms are posted as a browser posts them (multipart for the profile, with the
session's CSRF token); what the peer node stores is what it received over the
network.  The browser runs the same flows in ``test_browser_admin.py``.
"""

from __future__ import annotations

import io
import re

import aiohttp
from PIL import Image

from admin.uploads import MAX_BODY, MAX_FILE
from outbox.publish import follow, post_note
from tests.support.adminflow import AdminClient, logged_in, picture
from tests.support.mastoflow import api, register_app
from tests.support.nodes import NodeFactory, RunningNode, eventually

SECRET_RE = re.compile(r'<p class="secret" id="password">([^<]+)</p>')


async def updates_sent(node: RunningNode) -> int:
    return int(
        await node.ctx.store.pool.fetchval(
            "SELECT count(*) FROM outbox_activities WHERE type = 'Update'"
        )
    )


async def profile_form(client: AdminClient) -> dict[str, str]:
    page = await client.get("/admin/profile")
    assert page.status == 200, page.text
    return {"csrf": page.csrf, "form": "profile"}


async def test_profile_edit_reaches_the_peer_with_one_update(nodes: NodeFactory) -> None:
    a = await nodes("a")
    b = await nodes("b")
    coop_b = await b.ctx.coop_actor()
    await follow(b.ctx, coop_b, a.handle)
    await eventually(lambda: b.ctx.store.list_follows(coop_b.id, "outbound"), message="A accepts B")
    client = await logged_in(a)
    try:
        before = await updates_sent(a)
        # When the admin saves a name, a summary, two fields, an avatar and a header
        page = await client.upload(
            "/admin/profile",
            {
                **await profile_form(client),
                "name": "Bakery Coop",
                "summary": "Bread for the valley.",
                "field-0-name": "Website",
                "field-0-value": "https://bakery.example/",
                "field-1-name": "Address",
                "field-1-value": "1 Mill Lane <Valley>",
            },
            {
                "avatar": ("me.png", picture((600, 500), (200, 40, 40)), "image/png"),
                "header": ("wide.jpg", picture((1600, 600), (40, 40, 200), "JPEG"), "image/jpeg"),
            },
        )
        assert (page.status, page.location) == (303, "/admin/profile?done=saved"), page.text
        # Then the actor document carries them, as Mastodon reads a profile
        async with aiohttp.ClientSession() as http:
            async with http.get(a.actor_url, headers={"Accept": "application/activity+json"}) as r:
                doc = await r.json(content_type=None)
            assert doc["name"] == "Bakery Coop"
            assert doc["icon"]["type"] == "Image" and doc["icon"]["mediaType"] == "image/jpeg"
            assert doc["image"]["url"].startswith(f"{a.base_url}/media/")
            assert doc["attachment"] == [
                {
                    "type": "PropertyValue",
                    "name": "Website",
                    "value": '<a href="https://bakery.example/" rel="me nofollow noopener" '
                    'target="_blank">bakery.example/</a>',
                },
                {"type": "PropertyValue", "name": "Address", "value": "1 Mill Lane &lt;Valley&gt;"},
            ]
            assert "PropertyValue" in doc["@context"][2]
            # And the avatar is served, cropped to 400×400, cached for good
            async with http.get(doc["icon"]["url"]) as r:
                assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
                assert "immutable" in r.headers["Cache-Control"]
                assert Image.open(io.BytesIO(await r.read())).size == (400, 400)
            # And the public page shows the avatar
            async with http.get(f"{a.base_url}/@coop", headers={"Accept": "text/html"}) as r:
                assert f'src="{doc["icon"]["url"]}"' in await r.text()
        # And exactly one Update went out, and B sees the new name, avatar and fields
        assert await updates_sent(a) == before + 1

        async def seen_at_b() -> bool:
            remote = await b.ctx.store.get_remote_actor(a.actor_url)
            return remote is not None and remote.name == "Bakery Coop"

        await eventually(seen_at_b, message="B receives the Update")
        remote = await b.ctx.store.get_remote_actor(a.actor_url)
        assert remote is not None
        assert remote.document["icon"]["url"] == doc["icon"]["url"]
        assert remote.document["attachment"][0]["name"] == "Website"
        # When the admin saves the same again, nothing is sent
        page = await client.upload(
            "/admin/profile",
            {
                **await profile_form(client),
                "name": "Bakery Coop",
                "summary": "Bread for the valley.",
                "field-0-name": "Website",
                "field-0-value": "https://bakery.example/",
                "field-1-name": "Address",
                "field-1-value": "1 Mill Lane <Valley>",
            },
            {},
        )
        assert page.location == "/admin/profile?done=unchanged"
        assert await updates_sent(a) == before + 1
    finally:
        await client.close()


async def test_bad_uploads_are_named_and_store_nothing(node: RunningNode) -> None:
    client = await logged_in(node)
    try:
        coop = await node.ctx.coop_actor()
        media = node.ctx.settings.media_path
        # When the name is emptied, a text file is sent as avatar and a too-large header
        page = await client.upload(
            "/admin/profile",
            {
                **await profile_form(client),
                "name": " ",
                "field-2-value": "no label",
            },
            {
                "avatar": ("notes.png", b"these are words, not pixels", "image/png"),
                "header": ("big.jpg", b"\xff" * (MAX_FILE + 1), "image/jpeg"),
            },
        )
        # Then every problem is named next to its field, and nothing is stored or sent
        assert page.status == 422
        for name, message in (
            ("name", "is required"),
            ("field-2-name", "is required when the field has a value"),
            ("avatar", "the file is not a readable image (UnidentifiedImageError)"),
            ("header", "images may be at most 8 MB"),
        ):
            assert f'<p class="error" id="profile-{name}-error">{message}</p>' in page.text, name
        assert "4 field(s) need a change" in page.visible
        assert 'value="no label"' in page.text
        assert await node.ctx.coop_actor() == coop
        assert not media.exists() or not any(media.iterdir())
        assert await updates_sent(node) == 0
        # And a body larger than any form is cut off with 413
        page = await client.upload(
            "/admin/profile",
            await profile_form(client),
            {"avatar": ("huge.png", b"\0" * (MAX_BODY + 1), "image/png")},
        )
        assert page.status == 413 and "Nothing was saved" in page.visible
        # And an upload without the session's CSRF token is refused before anything
        page = await client.upload(
            "/admin/profile",
            {"csrf": "forged", "name": "Evil"},
            {"avatar": ("me.png", picture((50, 50), (1, 2, 3)), "image/png")},
        )
        assert page.status == 403
        assert (await node.ctx.coop_actor()).name == coop.name
        assert not media.exists() or not any(media.iterdir())
    finally:
        await client.close()


async def test_follow_by_handle_with_preview_unfollow_and_remove(nodes: NodeFactory) -> None:
    a = await nodes("a")
    b = await nodes("b", name="River Farm")
    coop_a, coop_b = await a.ctx.coop_actor(), await b.ctx.coop_actor()
    await post_note(b.ctx, coop_b, "Hello from the farm")
    client = await logged_in(a)
    try:
        # When the admin looks up B's handle
        token = (await client.get("/admin/follows")).csrf
        page = await client.post(
            "/admin/follows/preview", {"csrf": token, "form": "follow", "handle": b.handle}
        )
        # Then the preview shows who it is, and nothing is followed yet
        assert page.status == 200
        assert "River Farm" in page.visible and f"@{b.handle}" in page.visible
        # With the counts B's own server publishes
        assert "1 post · 0 followers · 0 following" in page.visible
        assert await a.ctx.store.get_follow(coop_a.id, b.actor_url, "outbound") is None
        # When the admin confirms
        page = await client.post(
            "/admin/follows/follow", {"csrf": token, "form": "confirm-follow", "actor": b.actor_url}
        )
        assert (page.status, page.location) == (303, "/admin/follows?done=requested")

        async def accepted() -> bool:
            found = await a.ctx.store.get_follow(coop_a.id, b.actor_url, "outbound")
            return found is not None and found.state == "accepted"

        await eventually(accepted, message="B accepts A")
        listing = await client.get("/admin/follows")
        following = listing.text.split('id="following"')[1]
        assert "River Farm" in following and f"@{b.handle}" in following
        # A handle that does not exist is named next to the field
        page = await client.post(
            "/admin/follows/preview",
            {"csrf": token, "form": "follow", "handle": f"nobody@{b.ctx.urls.domain}"},
        )
        assert page.status == 422
        assert 'id="follow-handle-error"' in page.text and "cannot find" in page.visible
        # When B follows A, A lists B among its followers
        await follow(b.ctx, coop_b, a.handle)

        async def b_follows() -> bool:
            found = await b.ctx.store.get_follow(coop_b.id, a.actor_url, "outbound")
            return found is not None and found.state == "accepted"

        await eventually(b_follows, message="A accepts B")
        followers = (await client.get("/admin/follows")).text.split('id="followers"')[1]
        assert "River Farm" in followers.split('id="following"')[0]
        # When the admin removes the follower: a confirmation first, then a Reject
        page = await client.post(
            "/admin/follows/remove", {"csrf": token, "form": "remove-0", "actor": b.actor_url}
        )
        assert page.status == 200 and "Remove the follower River Farm?" in page.visible
        assert await a.ctx.store.get_follow(coop_a.id, b.actor_url, "inbound") is not None
        page = await client.post(
            "/admin/follows/remove",
            {"csrf": token, "form": "remove-0", "actor": b.actor_url, "confirm": "yes"},
        )
        assert (page.status, page.location) == (303, "/admin/follows?done=removed")
        assert await a.ctx.store.get_follow(coop_a.id, b.actor_url, "inbound") is None

        async def rejected_at_b() -> bool:
            return await b.ctx.store.get_follow(coop_b.id, a.actor_url, "outbound") is None

        await eventually(rejected_at_b, message="B drops its follow on A's Reject")
        # When the admin unfollows B (after confirming), B no longer counts A
        page = await client.post(
            "/admin/follows/unfollow",
            {"csrf": token, "form": "unfollow-0", "actor": b.actor_url, "confirm": "yes"},
        )
        assert (page.status, page.location) == (303, "/admin/follows?done=unfollowed")

        async def undone_at_b() -> bool:
            return await b.ctx.store.get_follow(coop_b.id, a.actor_url, "inbound") is None

        await eventually(undone_at_b, message="B receives the Undo")
    finally:
        await client.close()


async def test_pending_requests_approved_and_rejected(nodes: NodeFactory) -> None:
    a = await nodes("a", manually_approves_followers=True)
    b = await nodes("b")
    c = await nodes("c")
    coop_a = await a.ctx.coop_actor()
    for peer in (b, c):
        await follow(peer.ctx, await peer.ctx.coop_actor(), a.handle)

    async def both_pending() -> bool:
        rows = await a.ctx.store.list_follows(coop_a.id, "inbound", state="pending")
        return len(rows) == 2

    await eventually(both_pending, message="two requests at A")
    client = await logged_in(a)
    try:
        page = await client.get("/admin/follows")
        assert "Follow requests (2)" in page.visible
        for path, peer in (("/admin/follows/approve", b), ("/admin/follows/reject", c)):
            answer = await client.post(
                path, {"csrf": page.csrf, "form": "x", "actor": peer.actor_url}
            )
            assert answer.status == 303, answer.text
        follower = await a.ctx.store.get_follow(coop_a.id, b.actor_url, "inbound")
        assert follower is not None and follower.state == "accepted"
        assert await a.ctx.store.get_follow(coop_a.id, c.actor_url, "inbound") is None
        coop_b, coop_c = await b.ctx.coop_actor(), await c.ctx.coop_actor()

        async def answered() -> bool:
            at_b = await b.ctx.store.get_follow(coop_b.id, a.actor_url, "outbound")
            at_c = await c.ctx.store.get_follow(coop_c.id, a.actor_url, "outbound")
            return at_b is not None and at_b.state == "accepted" and at_c is None

        await eventually(answered, message="B accepted, C rejected")
    finally:
        await client.close()


async def _add_member(client: AdminClient, username: str) -> tuple[int, str, str]:
    token = (await client.get("/admin/members")).csrf
    page = await client.post(
        "/admin/members", {"csrf": token, "form": "add", "username": username, "name": "Alice A."}
    )
    match = SECRET_RE.search(page.text)
    return page.status, match[1] if match else "", page.text


async def test_members_add_reset_suspend_and_remove(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    a = await nodes("a")
    b = await nodes("b")
    client = await logged_in(a)
    try:
        # When the admin adds alice, the answer shows a one-time password
        status, secret, _ = await _add_member(client, "alice")
        assert status == 200 and len(secret) >= 16
        app = await register_app(http, a)

        async def token_with(password: str) -> tuple[int, str]:
            async with http.post(
                f"{a.base_url}/oauth/token",
                data={
                    "grant_type": "password",
                    "client_id": app["client_id"],
                    "client_secret": app["client_secret"],
                    "username": "alice",
                    "password": password,
                    "scope": "read write follow",
                },
            ) as r:
                return r.status, (await r.json()).get("access_token", "")

        status, token = await token_with(secret)
        assert status == 200
        # A bad username and a taken one are named next to the field
        status, _, text = await _add_member(client, "no spaces")
        assert status == 422 and 'id="add-username-error"' in text
        status, _, text = await _add_member(client, "Alice")
        assert status == 422 and "is taken on this node" in text
        # When the admin resets the password, the old token ends and the new password works
        page = await client.post(
            "/admin/members/password",
            {"csrf": client_csrf(text), "form": "password-0", "member": "alice"},
        )
        new_secret = SECRET_RE.search(page.text)
        assert page.status == 200 and new_secret and new_secret[1] != secret
        assert (await api(http, a, "GET", "/api/v1/accounts/verify_credentials", token))[0] == 401
        status, token = await token_with(new_secret[1])
        assert status == 200
        # When the admin suspends alice: her token ends and her logins are refused
        page = await client.post(
            "/admin/members/suspend", {"csrf": client_csrf(text), "form": "s", "member": "alice"}
        )
        assert (page.status, page.location) == (303, "/admin/members?done=suspended")
        assert (await api(http, a, "GET", "/api/v1/accounts/verify_credentials", token))[0] == 401
        assert (await token_with(new_secret[1]))[0] == 400
        assert "suspended" in (await client.get("/admin/members")).visible
        # When she is unsuspended, she logs in again
        page = await client.post(
            "/admin/members/unsuspend", {"csrf": client_csrf(text), "form": "u", "member": "alice"}
        )
        assert page.status == 303
        status, token = await token_with(new_secret[1])
        assert status == 200
        # When B follows alice, then the admin removes alice (after confirming)
        coop_b = await b.ctx.coop_actor()
        alice_url = f"{a.base_url}/users/alice"
        await follow(b.ctx, coop_b, f"alice@{a.ctx.urls.domain}")

        async def followed() -> bool:
            found = await b.ctx.store.get_follow(coop_b.id, alice_url, "outbound")
            return found is not None and found.state == "accepted"

        await eventually(followed, message="alice accepts B")
        page = await client.post(
            "/admin/members/remove", {"csrf": client_csrf(text), "form": "r", "member": "alice"}
        )
        assert page.status == 200 and "Remove @alice?" in page.visible
        alice = await a.ctx.store.get_local_actor("alice")
        assert alice is not None and alice.deleted_at is None
        page = await client.post(
            "/admin/members/remove",
            {"csrf": client_csrf(text), "form": "r", "member": "alice", "confirm": "yes"},
        )
        assert (page.status, page.location) == (303, "/admin/members?done=removed")
        # Then her URL answers 410 with a Tombstone, B marks her gone, her token is dead
        async with http.get(alice_url, headers={"Accept": "application/activity+json"}) as r:
            assert r.status == 410
            assert (await r.json(content_type=None))["type"] == "Tombstone"

        async def gone_at_b() -> bool:
            remote = await b.ctx.store.get_remote_actor(alice_url)
            return remote is not None and remote.gone

        await eventually(gone_at_b, message="B receives the Delete of alice")
        assert (await api(http, a, "GET", "/api/v1/accounts/verify_credentials", token))[0] == 401
        assert (await token_with(new_secret[1]))[0] == 400
        # And the name is never given again
        status, _, text = await _add_member(client, "alice")
        assert status == 422 and "never reused" in text
    finally:
        await client.close()


def client_csrf(page_text: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page_text)
    assert match is not None
    return match[1]
