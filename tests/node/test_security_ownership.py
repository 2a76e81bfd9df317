"""C2S ``Undo`` and ``Delete`` only act on what belongs to the outbox's own actor."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import orjson

from federation.keys import dump_private_key_pem, dump_public_key_pem, generate_private_key
from federation.store import LocalActor
from outbox.c2s import issue_token
from outbox.publish import like, post_note
from tests.support.fakepeer import FakePeer
from tests.support.nodes import RunningNode

AP = "application/activity+json"


async def _member(node: RunningNode, username: str = "member") -> LocalActor:
    key = generate_private_key()
    return await node.ctx.store.create_local_actor(
        username=username,
        kind="member",
        name=username.title(),
        summary="",
        avatar_url="",
        manually_approves_followers=False,
        private_key_pem=dump_private_key_pem(key),
        public_key_pem=dump_public_key_pem(key),
    )


async def _post(
    http: aiohttp.ClientSession, node: RunningNode, token: str, body: dict[str, object]
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": AP, "Authorization": f"Bearer {token}"}
    url = f"{node.base_url}/users/{node.settings.username}/outbox"
    async with http.post(url, data=orjson.dumps(body), headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_the_coop_token_cannot_undo_a_members_like(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    peer = await FakePeer(style="mastodon").start()
    try:
        # Given a member who liked a remote post, and the coop's own C2S token
        store = node.ctx.store
        alice = peer.add_actor("alice")
        note = peer.note(alice, "hello")
        await store.save_object(
            uri=note["id"],
            local=False,
            type="Note",
            attributed_to=alice.id,
            in_reply_to=None,
            visibility="public",
            body=note,
            published=datetime.now(UTC),
            updated=None,
        )
        member = await _member(node)
        liked = await like(node.ctx, member, note["id"])
        _, token = await issue_token(node.ctx, await node.ctx.coop_actor(), "coop")
        await node.drain()
        undos_before = len(peer.of_type("Undo"))
        # When the coop's token posts an Undo of the member's Like
        status, answer = await _post(http, node, token, {"type": "Undo", "object": liked["id"]})
        # Then it is refused as not the coop's, and no Undo leaves the node
        assert status == 404, answer
        assert answer.get("reason") == "not_found"
        await node.drain()
        assert len(peer.of_type("Undo")) == undos_before
        # And the member's own Undo still works through the same code path
        _, member_token = await issue_token(node.ctx, member, "member")
        headers = {"Content-Type": AP, "Authorization": f"Bearer {member_token}"}
        url = f"{node.base_url}/users/member/outbox"
        body = orjson.dumps({"type": "Undo", "object": liked["id"]})
        async with http.post(url, data=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
    finally:
        await peer.stop()


async def test_the_coop_token_cannot_delete_a_members_post(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    # Given a member's public post and the coop's C2S token
    member = await _member(node)
    created = await post_note(node.ctx, member, "mine")
    object_id = created["object"]["id"]
    _, token = await issue_token(node.ctx, await node.ctx.coop_actor(), "coop")
    # When the coop's token posts a Delete of it
    status, answer = await _post(http, node, token, {"type": "Delete", "object": object_id})
    # Then it is refused and the post is still there
    assert status == 404, answer
    stored = await node.ctx.store.get_object(object_id)
    assert stored is not None and stored.deleted_at is None
