"""What a remote actor says reaches the admin pages only through the node's checks:
a hostile profile (script URLs, markup in its name and summary) is previewed and
listed without anything a browser would run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.adminflow import logged_in
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.nodes import RunningNode
from tests.support.pageaudit import dangers_in


@dataclass
class HostileActor(PeerActor):
    def document(self) -> dict[str, Any]:
        return {
            **super().document(),
            "name": "<img src=x onerror=alert(1)>Eve",
            "summary": '<p>Hi<script>alert(2)</script><a href="javascript:alert(3)">x</a></p>',
            "url": "javascript:alert(4)",
            "icon": {"type": "Image", "url": "javascript:alert(5)"},
        }


@dataclass
class FriendlyActor(PeerActor):
    def document(self) -> dict[str, Any]:
        return {
            **super().document(),
            "name": "Mill Coop",
            "summary": "<p>We <strong>mill</strong> grain.</p>",
            "icon": {"type": "Image", "mediaType": "image/png", "url": "https://cdn.example/m.png"},
        }


async def test_hostile_profiles_are_previewed_and_listed_without_scripts(
    node: RunningNode, peer: FakePeer
) -> None:
    eve = HostileActor("eve", peer.base, peer.style)
    peer.actors["eve"] = eve
    mill = FriendlyActor("mill", peer.base, peer.style)
    peer.actors["mill"] = mill
    client = await logged_in(node)
    try:
        token = (await client.get("/admin/follows")).csrf
        # When the admin previews the hostile actor
        page = await client.post(
            "/admin/follows/preview",
            {"csrf": token, "form": "follow", "handle": f"eve@{peer.domain}"},
        )
        # Then its name and summary are text, and no script URL is a link or an image
        assert page.status == 200, page.text
        assert dangers_in(page.text) == []
        assert "&lt;img src=x onerror=alert(1)&gt;Eve" in page.text
        assert "alert(2)" not in page.text and "javascript:" not in page.text
        # And a friendly actor's avatar and summary are shown
        page = await client.post(
            "/admin/follows/preview",
            {"csrf": token, "form": "follow", "handle": f"mill@{peer.domain}"},
        )
        assert '<img class="avatar" src="https://cdn.example/m.png"' in page.text
        assert "We <strong>mill</strong> grain." in page.text
        # When both follow the coop, the followers list is as safe
        coop = await node.ctx.coop_actor()
        for n, actor in enumerate((eve, mill)):
            await node.ctx.store.upsert_follow(
                local_actor_id=coop.id,
                remote_actor=actor.id,
                direction="inbound",
                state="accepted",
                activity_id=f"{actor.id}/follows/{n}",
            )
        page = await client.get("/admin/follows")
        followers = page.text.split('id="followers"')[1].split('id="following"')[0]
        assert "Followers (2)" in page.visible
        assert [d for d in dangers_in(followers) if d != "<img>"] == []
        assert followers.count("<img ") == 1 and 'src="https://cdn.example/m.png"' in followers
        assert "javascript:" not in page.text
    finally:
        await client.close()
