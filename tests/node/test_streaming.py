"""The streaming API: real WebSocket clients (aiohttp) on a real node, fed by
PostgreSQL LISTEN/NOTIFY; its bounds (bad token, connections per token, a client
that does not read) and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import aiohttp
import pytest

from clientapi.streaming import HUB
from coopfed.app import open_node
from outbox import publish
from tests.support.mastoflow import api, member_token
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.streamflow import next_event, no_event, stream_url


async def follow_coop(http: aiohttp.ClientSession, node: RunningNode, token: str) -> None:
    _, coop, _ = await api(
        http, node, "GET", "/api/v1/accounts/lookup", token, params={"acct": "coop"}
    )
    status, body, _ = await api(http, node, "POST", f"/api/v1/accounts/{coop['id']}/follow", token)
    assert status == 200 and body["following"], body


async def test_health(node: RunningNode, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{node.base_url}/api/v1/streaming/health") as response:
        assert (response.status, await response.text()) == (200, "OK")


async def test_the_user_stream_gets_home_updates_notifications_and_deletes(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    bob = await member_token(http, node, "bob")
    await follow_coop(http, node, alice)
    coop = await node.ctx.coop_actor()
    url = stream_url(node) + f"?stream=user&access_token={alice}"
    async with http.ws_connect(url) as ws:
        # When the coop posts, alice's stream gets it within a second, as the REST API shows it
        started = time.monotonic()
        await publish.post_note(node.ctx, coop, "Fresh bread today")
        update = await next_event(ws, timeout=1.0)
        latency = time.monotonic() - started
        assert (update["stream"], update["event"]) == (["user"], "update")
        status = update["payload"]
        assert status["content"] == "<p>Fresh bread today</p>"
        assert status["account"]["acct"] == "coop"
        _, rest, _ = await api(http, node, "GET", f"/api/v1/statuses/{status['id']}", alice)
        assert status == rest
        print(f"streaming latency (post to update event): {latency * 1000:.1f} ms")
        # A post of someone she does not follow does not reach her home stream
        await api(http, node, "POST", "/api/v1/statuses", bob, data={"status": "Hello all"})
        await no_event(ws, 0.5)
        # When bob follows her, she gets the notification
        _, me, _ = await api(http, node, "GET", "/api/v1/accounts/verify_credentials", alice)
        await api(http, node, "POST", f"/api/v1/accounts/{me['id']}/follow", bob)
        notice = await next_event(ws, timeout=1.0)
        assert notice["event"] == "notification"
        assert (notice["payload"]["type"], notice["payload"]["account"]["acct"]) == (
            "follow",
            "bob",
        )
        # When the coop deletes its post, the stream says which
        await publish.delete_post(node.ctx, coop, status["uri"])
        deleted = await next_event(ws, timeout=1.0)
        assert (deleted["event"], deleted["payload"]) == ("delete", status["id"])


async def test_public_stream_by_subprotocol_token_and_subscribe_messages(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    coop = await node.ctx.coop_actor()
    # The token as Sec-WebSocket-Protocol (browsers) is echoed back; no stream yet
    async with http.ws_connect(stream_url(node, "/api/v1/streaming/"), protocols=(alice,)) as ws:
        assert ws.protocol == alice
        await ws.send_json({"type": "subscribe", "stream": "public:local"})
        await ws.send_json({"type": "subscribe", "stream": "hashtag:nope"})
        error = await next_event(ws)
        assert error == {"error": "Unknown stream type", "status": 400}
        await asyncio.sleep(0.1)  # the subscription is applied before the post
        await publish.post_note(node.ctx, coop, "Open day", visibility="public")
        update = await next_event(ws, timeout=1.0)
        assert (update["stream"], update["event"]) == (["public:local"], "update")
        assert update["payload"]["content"] == "<p>Open day</p>"
        # Followers-only posts are not public
        await publish.post_note(node.ctx, coop, "Members only", visibility="followers")
        await no_event(ws, 0.5)
        await ws.send_json({"type": "unsubscribe", "stream": "public:local"})
        await asyncio.sleep(0.1)
        await publish.post_note(node.ctx, coop, "After unsubscribing")
        await no_event(ws, 0.5)


async def test_a_post_stored_by_another_process_reaches_the_stream(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    await follow_coop(http, node, alice)
    async with http.ws_connect(stream_url(node) + f"?stream=user&access_token={alice}") as ws:
        # As `coopfed post` does: its own pool on the same database, its own process state
        async with open_node(node.settings, node.dsn, pool_size=2, migrate=False) as other:
            await publish.post_note(other, await other.coop_actor(), "Posted from the CLI")
        update = await next_event(ws, timeout=1.0)
        assert update["payload"]["content"] == "<p>Posted from the CLI</p>"


async def test_bad_tokens_and_unknown_streams_are_refused_before_the_upgrade(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    for url, expected in [
        (stream_url(node) + "?stream=user&access_token=nope", 401),
        (stream_url(node) + "?stream=user", 401),
        (stream_url(node) + f"?stream=direct-messages&access_token={alice}", 400),
    ]:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url)
        assert refused.value.status == expected, url
    status, body, _ = await api(
        http, node, "GET", "/api/v1/streaming?stream=user&access_token=nope"
    )
    assert (status, body) == (401, {"error": "The access token is invalid"})


async def test_a_token_holds_at_most_four_streams(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    url = stream_url(node) + f"?stream=user&access_token={alice}"
    open_ones = [await http.ws_connect(url) for _ in range(4)]
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url)
        assert refused.value.status == 429
        # Another member's token is not affected, and a closed stream frees its place
        bob = await member_token(http, node, "bob")
        async with http.ws_connect(stream_url(node) + f"?stream=user&access_token={bob}"):
            pass
        await open_ones.pop().close()
        hub = node.app[HUB] if node.app else None
        assert hub is not None

        async def freed() -> bool:
            return sum(hub.per_token.values()) == 3

        await eventually(freed, message="a freed place")
        open_ones.append(await http.ws_connect(url))
    finally:
        for ws in open_ones:
            await ws.close()


async def raw_websocket(node: RunningNode, path: str) -> socket.socket:
    """A WebSocket opened by hand on a socket with a tiny receive buffer, never read."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", node.settings.port))
    await loop.sock_sendall(
        sock,
        f"GET {path} HTTP/1.1\r\nHost: {node.settings.domain}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode(),
    )
    head = b""
    async with asyncio.timeout(5):
        while b"\r\n\r\n" not in head:
            head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_client_that_does_not_read_is_disconnected(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    node = await nodes("a", stream_queue_size=5, stream_send_timeout_seconds=120.0)
    alice = await member_token(http, node, "alice")
    coop = await node.ctx.coop_actor()
    hub = node.app[HUB] if node.app else None
    assert hub is not None
    slow = await raw_websocket(node, f"/api/v1/streaming?stream=public&access_token={alice}")
    async with http.ws_connect(stream_url(node) + f"?stream=public&access_token={alice}") as good:
        assert len(hub.subscribers) == 2
        text = "Plenty of words about our bread. " * 140  # about 4.6 kB a post
        for n in range(60):
            await publish.post_note(node.ctx, coop, f"{n} {text}")
            if len(hub.subscribers) == 1:
                break
        # The slow client is dropped (its queue overflowed) while the good one reads on

        async def dropped() -> bool:
            return len(hub.subscribers) == 1

        await eventually(dropped, message="the slow client dropped")
        received = 0
        while received < n + 1:
            update = await next_event(good, timeout=5.0)
            received += update["event"] == "update"
    # Its socket is closed by the server: reading ends (after what was already sent)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(10):
        with contextlib.suppress(ConnectionResetError):
            while await loop.sock_recv(slow, 65536):
                pass
    slow.close()


async def test_stopping_the_node_closes_streams(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    node = await nodes("a")
    alice = await member_token(http, node, "alice")
    ws = await http.ws_connect(stream_url(node) + f"?stream=user&access_token={alice}")
    receiving = asyncio.create_task(ws.receive())  # an app reads all the time
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await asyncio.wait_for(node.stop(), 10)
    assert time.monotonic() - started < 5
    message = await asyncio.wait_for(receiving, 5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
