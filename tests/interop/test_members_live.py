"""A member's own coop, live updates and polls, from real clients: Mastodon.py
(2.3.3) for the member, aiohttp's WebSocket client and Mastodon.py's own
``stream_user`` for the streaming API, and the Fedify peer as the author of a poll.

Mastodon.py is synchronous: every call runs in a thread so the node's event loop
keeps serving.  Over plain http its OAuth calls need ``allow_http=True``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from mastodon import Mastodon, StreamListener

from outbox import publish
from tests.interop.fedify_peer import start_fedify_peer
from tests.support.mastoflow import PASSWORD, add_member, follow_accepted
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.streamflow import next_event, stream_url


async def password_client(node: RunningNode, username: str) -> Mastodon:
    client_id, secret = await asyncio.to_thread(
        Mastodon.create_app, "coopfed live test", api_base_url=node.base_url
    )
    masto = Mastodon(client_id=client_id, client_secret=secret, api_base_url=node.base_url)
    await asyncio.to_thread(masto.log_in, username, PASSWORD, allow_http=True)
    return masto


class Collect(StreamListener):  # type: ignore[misc]
    """What Mastodon.py's stream_user hands to its listener, in a list."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_update(self, status: Any) -> None:
        self.events.append(("update", status))

    def on_notification(self, notification: Any) -> None:
        self.events.append(("notification", notification))


async def test_member_follows_her_coop_and_gets_live_updates(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    node = await nodes("b")
    alice = await add_member(node, "alice")
    await add_member(node, "bob")
    masto = await password_client(node, "alice")
    # When alice follows her own coop from Mastodon.py
    coop_account = await asyncio.to_thread(masto.account_lookup, "coop")
    relation = await asyncio.to_thread(masto.account_follow, coop_account.id)
    assert (relation.following, relation.requested) == (True, False)
    await follow_accepted(node, alice, node.actor_url)
    # And opens the streaming API: a WebSocket, and Mastodon.py's own stream_user
    collected = Collect()
    handle = await asyncio.to_thread(masto.stream_user, collected, run_async=True)
    url = stream_url(node) + f"?stream=user&access_token={masto.access_token}"
    try:
        async with http.ws_connect(url) as ws:
            await asyncio.sleep(0.3)  # Mastodon.py's thread connects
            # When the coop posts
            coop = await node.ctx.coop_actor()
            started = time.monotonic()
            create = await publish.post_note(node.ctx, coop, "Our bakery opens on Monday")
            update = await next_event(ws, timeout=1.0, event="update")
            update_latency = time.monotonic() - started
            assert update["payload"]["uri"] == create["object"]["id"]
            # Then it is in her home timeline too
            home = await asyncio.to_thread(masto.timeline_home)
            assert [s.uri for s in home] == [create["object"]["id"]]
            assert home[0].account.acct == "coop"
            # When bob follows her, she is notified within a second
            bob = await password_client(node, "bob")
            me = await asyncio.to_thread(masto.me)
            started = time.monotonic()
            await asyncio.to_thread(bob.account_follow, me.id)
            notice = await next_event(ws, timeout=1.0, event="notification")
            notice_latency = time.monotonic() - started
            assert (notice["payload"]["type"], notice["payload"]["account"]["acct"]) == (
                "follow",
                "bob",
            )
            print(
                f"streaming latency: update {update_latency * 1000:.0f} ms, "
                f"notification {notice_latency * 1000:.0f} ms (after bob's follow call)"
            )

        # And Mastodon.py's stream_user (server-sent events) got both as well
        async def both() -> bool:
            return {kind for kind, _ in collected.events} == {"update", "notification"}

        await eventually(both, timeout=5, message="Mastodon.py's stream_user events")
        status = next(e for kind, e in collected.events if kind == "update")
        assert status.uri == create["object"]["id"]
    finally:
        await asyncio.to_thread(handle.close)


async def test_member_votes_in_a_fedify_poll(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    node = await nodes("b")
    alice = await add_member(node, "alice")
    masto = await password_client(node, "alice")
    async with await start_fedify_peer() as peer:
        # Given alice follows the Fedify user
        found = await asyncio.to_thread(masto.search, peer.actor_url, resolve=True)
        [author] = found.accounts
        await asyncio.to_thread(masto.account_follow, author.id)
        await follow_accepted(node, alice, peer.actor_url)
        # When the Fedify user asks a question (Fedify's Question class)
        sent = await peer.question(
            "<p>Which day for the market?</p>", ["Friday", "Saturday"], immediate=True
        )

        async def poll_in_home() -> Any:
            home = await asyncio.to_thread(masto.timeline_home)
            return next((s for s in home if s.uri == sent["question_id"]), None)

        status = await eventually(poll_in_home, message="the question in alice's home")
        assert [o.title for o in status.poll.options] == ["Friday", "Saturday"]
        assert (status.poll.voted, status.poll.expired) == (False, False)
        # Then her vote (Mastodon.py's poll_vote) reaches the Fedify user
        voted = await asyncio.to_thread(masto.poll_vote, status.poll.id, [1])
        assert (voted.voted, voted.own_votes) == (True, [1])

        async def votes() -> list[Any]:
            return list(await peer.votes())

        [vote] = await eventually(votes, message="the vote at the Fedify peer")
        assert (vote["question"], vote["name"]) == (sent["question_id"], "Saturday")
        assert vote["actor"] == f"{node.base_url}/users/alice"
        assert vote["to"] in (peer.actor_url, [peer.actor_url])
        # And when the Fedify user sends the new counts, her app shows them
        await peer.question_update(sent["question_id"])

        async def counted() -> Any:
            poll = await asyncio.to_thread(masto.poll, status.poll.id)
            return poll if poll.votes_count == 1 else None

        poll = await eventually(counted, message="the updated counts")
        assert [o.votes_count for o in poll.options] == [0, 1]
        assert (poll.voters_count, poll.own_votes) == (1, [1])
