"""Stored XSS through remote URLs: one http(s)-only check, sanitising at render, a strict CSP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from federation.safehtml import safe_href, sanitize_html
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.mastoflow import api, member_token
from tests.support.nodes import RunningNode
from tests.support.pageaudit import dangers_in

JS = "javascript:fetch('/admin').then(r=>r.text())"


@dataclass
class HostileActor(PeerActor):
    """A remote actor whose profile, avatar and header URLs are scripts."""

    def document(self) -> dict[str, Any]:
        return {
            **super().document(),
            "url": JS,
            "icon": {"type": "Image", "url": "javascript:alert('icon')"},
            "image": {"type": "Image", "url": "data:text/html,<script>alert(1)</script>"},
        }


def test_safe_href_is_http_and_https_only() -> None:
    assert safe_href("https://a.example/x") == "https://a.example/x"
    assert safe_href("http://a.example") == "http://a.example"
    for bad in (
        JS,
        " JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "mailto:a@b.example",
        "https:alert(1)",
        "//a.example/x",
        "/relative",
        "",
        None,
        42,
    ):
        assert safe_href(bad) is None, bad
    assert sanitize_html('<a href="javascript:alert(1)">x</a>') == (
        '<a target="_blank" rel="nofollow noopener noreferrer">x</a>'
    )


async def test_a_mention_of_a_hostile_actor_renders_no_script_link(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given a remote actor whose url, icon and image are scripts
        eve = HostileActor("eve", peer.base, peer.style)
        peer.actors["eve"] = eve
        token = await member_token(http, node, "member")
        # When the member mentions it from a Mastodon app
        form = {"status": f"Welcome @eve@{peer.domain}", "visibility": "public"}
        status, posted, _ = await api(http, node, "POST", "/api/v1/statuses", token, data=form)
        assert status == 200, posted
        # Then the app gets no script URL: not in the mention, nor in the account
        assert [m["url"] for m in posted["mentions"]] == [eve.id]
        assert "javascript:" not in posted["content"]
        status, account, _ = await api(
            http, node, "GET", f"/api/v1/accounts/lookup?acct=eve@{peer.domain}", token
        )
        assert status == 200
        for field in ("url", "avatar", "avatar_static", "header", "header_static"):
            assert account[field].startswith(("http://", "https://")), (field, account[field])
        # And the member's public page has no script link either
        async with http.get(f"{node.base_url}/@member", headers={"Accept": "text/html"}) as resp:
            page = await resp.text()
            headers = resp.headers
        assert resp.status == 200
        assert dangers_in(page) == []
        assert f'href="{eve.id}"' in page
        # And the page sends a strict policy
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
    finally:
        await peer.stop()


async def test_a_hashtag_with_a_script_url_reaches_no_app(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given a followed remote actor's public note whose hashtag links to a script
        alice = peer.add_actor("alice")
        store, coop = node.ctx.store, await node.ctx.coop_actor()
        await store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=alice.id,
            direction="outbound",
            state="accepted",
            activity_id=f"{node.base_url}/activities/f1",
        )
        note = peer.note(alice, "<p>#flour</p>")
        note["tag"] = [{"type": "Hashtag", "name": "#flour", "href": "javascript:alert(5)"}]
        note["url"] = "javascript:alert(6)"
        status, _ = await peer.send(alice, f"{node.base_url}/inbox", peer.create(alice, note))
        assert status == 202
        await node.drain()
        token = await member_token(http, node, "member")
        # When an app reads it
        stored = await store.get_object(note["id"])
        assert stored is not None
        status, got, _ = await api(http, node, "GET", f"/api/v1/statuses/{stored.seq}", token)
        # Then no URL in it is a script
        assert status == 200, got
        assert got["url"] == note["id"]
        assert [t["url"] for t in got["tags"]] == [""]
    finally:
        await peer.stop()


async def test_local_content_is_sanitised_when_rendered(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    # Given a post of ours whose stored HTML holds a script and a script link
    # (written by an older version, or straight into the database)
    coop = await node.ctx.coop_actor()
    uri = f"{node.base_url}/objects/legacy"
    await node.ctx.store.save_object(
        uri=uri,
        local=True,
        type="Note",
        attributed_to=node.actor_url,
        in_reply_to=None,
        visibility="public",
        body={
            "id": uri,
            "type": "Note",
            "attributedTo": node.actor_url,
            "content": '<p>hi<script>alert(1)</script><a href="javascript:alert(2)">x</a></p>',
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        },
        published=datetime.now(UTC),
        updated=None,
    )
    del coop
    # When the profile is served / Then it renders neither
    async with http.get(f"{node.base_url}/@coop", headers={"Accept": "text/html"}) as resp:
        page = await resp.text()
    assert "<p>hi" in page
    assert dangers_in(page) == []
    assert "alert(1)" not in page


@pytest.mark.parametrize("path", ["/@coop", "/network", "/@coop/archive", "/tags/x"])
async def test_every_public_page_sends_the_policy(
    node: RunningNode, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(f"{node.base_url}{path}", headers={"Accept": "text/html"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
