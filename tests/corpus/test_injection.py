"""Injected HTML and script from peers is stored as sent and never rendered
unescaped; a strict node never fetches from or delivers to loopback.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest

from actors.remote import parse_actor
from outbox.c2s import issue_token
from outbox.publish import post_note
from tests.support.fakepeer import PUBLIC, FakePeer, PeerActor
from tests.support.nodes import NodeFactory, RunningNode
from tests.support.pageaudit import dangers_in

# -- HTML and script injection: stored as sent, never rendered unescaped ----------------

XSS = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="alert(2)">'
XSS_LINK = '<a href="javascript:alert(3)">x</a>'


@dataclass
class NamedActor(PeerActor):
    """A peer actor whose served document carries a hostile display name."""

    display_name: str = ""

    def document(self) -> dict[str, Any]:
        return {**super().document(), "name": self.display_name, "summary": XSS}


async def served_html(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url, headers={"Accept": "text/html"}) as resp:
        assert resp.status == 200, (url, resp.status)
        assert resp.content_type == "text/html", url
        return await resp.text()


def hostile_proposal(peer: FakePeer, actor: PeerActor) -> dict[str, Any]:
    object_id = f"{peer.base}/proposals/{uuid.uuid4().hex}"
    return {
        "id": object_id,
        "type": ["Note", "Proposal"],
        "purpose": "offer",
        "proposalKind": "offer",
        "attributedTo": actor.id,
        "name": f"{XSS}Flour",
        "summary": XSS_IMG,
        "content": f"<p>{XSS}{XSS_IMG}{XSS_LINK}</p>",
        "url": "javascript:alert(4)",
        "published": datetime.now(UTC).isoformat(timespec="seconds"),
        "to": [PUBLIC],
        "cc": [actor.followers],
        "tag": [{"type": "Hashtag", "name": "#flour", "href": "javascript:alert(5)"}],
        "publishes": {
            "type": "Intent",
            "action": "transfer",
            "resourceConformsTo": "javascript:alert(6)",
            "resourceQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "5"},
        },
    }


async def test_injected_html_is_stored_but_never_rendered(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given alice, whom the coop follows, with a script in her display name
        alice = NamedActor("alice", peer.base, peer.style, display_name=f"{XSS}Alice")
        peer.actors["alice"] = alice
        store, coop = node.ctx.store, await node.ctx.coop_actor()
        await store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=alice.id,
            direction="outbound",
            state="accepted",
            activity_id=f"{node.base_url}/activities/follow-alice",
        )
        # When she sends a Note and a proposal with scripts, handlers and javascript: URLs
        note = peer.note(alice, f"{XSS}{XSS_IMG}{XSS_LINK}")
        note.update(name=XSS, summary=XSS_IMG, url="javascript:alert(7)")
        proposal = hostile_proposal(peer, alice)
        for obj in (note, proposal):
            status, _ = await peer.send(alice, f"{node.base_url}/inbox", peer.create(alice, obj))
            assert status == 202
        # And the coop itself publishes the same over C2S
        _, token = await issue_token(node.ctx, coop, "xss")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        posted: list[dict[str, Any]] = []
        for body in (
            {"type": "Note", "content": f"{XSS}{XSS_IMG}"},
            {
                "type": "Proposal",
                "kind": "offer",
                "title": f"{XSS}Oil",
                "details": f"{XSS_IMG} {XSS_LINK}",
                "quantity": 3,
                "unit": "litre",
                "tags": ["oil"],
            },
        ):
            async with http.post(
                f"{node.base_url}/users/coop/outbox", data=orjson.dumps(body), headers=headers
            ) as resp:
                assert resp.status == 201, await resp.text()
                posted.append(await resp.json(content_type=None))
        await node.drain()
        # Then the remote objects are stored as sent (nothing is lost)
        stored_note = await store.get_object(note["id"])
        stored_proposal = await store.get_proposal(proposal["id"])
        assert stored_note is not None and stored_note.body["content"] == note["content"]
        assert stored_proposal is not None and stored_proposal.title == f"{XSS}Flour"
        # And no public page renders a script, an event handler or a javascript: link
        own_proposal = posted[1]["object"]["id"]
        pages = {
            "network": f"{node.base_url}/network",
            "profile": f"{node.base_url}/@coop",
            "archive": f"{node.base_url}/@coop/archive",
            "tag": f"{node.base_url}/tags/oil",
            "own proposal": own_proposal,
        }
        found = {name: dangers_in(await served_html(http, url)) for name, url in pages.items()}
        assert found == {name: [] for name in pages}
        # And the hostile texts are shown, escaped, where they belong
        network = await served_html(http, pages["network"])
        assert "&lt;script&gt;alert(1)&lt;/script&gt;Flour" in network
        assert "&lt;script&gt;alert(1)&lt;/script&gt;Alice" in network
        profile = await served_html(http, pages["profile"])
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in profile
        assert "&lt;script&gt;alert(1)&lt;/script&gt;Oil" in profile
    finally:
        await peer.stop()


# -- server-side request forgery: strict mode never reaches loopback ---------------------


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"], ids=["literal_ip", "dns"])
async def test_strict_node_never_fetches_a_loopback_key(nodes: NodeFactory, hostname: str) -> None:
    # Given a node NOT configured for local development, and a peer on loopback
    node = await nodes("strict", allow_private_addresses=False)
    peer = await FakePeer(style="mastodon", hostname=hostname).start()
    try:
        alice = peer.add_actor("alice")
        # When alice's signed Create arrives (its key lives on a loopback address)
        status, answer = await peer.send(
            alice, f"{node.base_url}/inbox", peer.create(alice, peer.note(alice, "hi"))
        )
        # Then the key is refused without any request to the peer, and nothing is stored
        assert (status, answer["reason"]) == (401, "key_fetch_failed")
        assert "blocked_address" not in answer["error"]  # the detail stays in the log
        assert peer.gets == []
        assert await node.ctx.store.pool.fetchval("SELECT count(*) FROM inbox_activities") == 0
    finally:
        await peer.stop()


async def test_strict_node_never_delivers_to_loopback(nodes: NodeFactory) -> None:
    # Given a strict node whose coop has a follower whose inbox is on loopback (by name)
    node = await nodes("strict", allow_private_addresses=False)
    peer = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        coop = await node.ctx.coop_actor()
        follower = peer.add_actor("bob")
        await node.ctx.store.upsert_remote_actor(
            parse_actor(follower.document(), follower.id, datetime.now(UTC))
        )
        await node.ctx.store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=follower.id,
            direction="inbound",
            state="accepted",
            activity_id=f"{peer.base}/follows/1",
        )
        # When the coop posts
        await post_note(node.ctx, coop, "hello")
        await node.drain()
        # Then the delivery ends as blocked, once, and the peer received nothing
        failed = await node.ctx.store.pool.fetch("SELECT kind, last_error FROM failed_jobs")
        assert [(r["kind"], "blocked_address" in r["last_error"]) for r in failed] == [
            ("deliver", True)
        ]
        assert peer.received == []
    finally:
        await peer.stop()
