"""The inbox toward hostile servers: no internals in answers, quiet on broken clients."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.support.fakepeer import FakePeer
from tests.support.nodes import NodeFactory


async def test_a_refusal_names_a_reason_but_keeps_the_detail_in_the_log(
    nodes: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a strict node and a peer whose key lives on a loopback name
    node = await nodes("strict", allow_private_addresses=False)
    peer = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        alice = peer.add_actor("alice")
        caplog.set_level(logging.INFO, logger="inbox.routes")
        # When alice's signed Create arrives
        status, answer = await peer.send(
            alice, f"{node.base_url}/inbox", peer.create(alice, peer.note(alice, "hi"))
        )
        # Then the answer is a reason code and a generic text, naming no address
        assert (status, answer["reason"]) == (401, "key_fetch_failed")
        for leak in ("localhost", "127.0.0.1", "blocked_address", str(peer.port)):
            assert leak not in answer["error"], answer
        # And the detail is in the node's log
        assert any("blocked_address" in r.getMessage() for r in caplog.records)
    finally:
        await peer.stop()


async def test_a_client_leaving_mid_body_is_a_quiet_4xx_log_line(
    nodes: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a node
    node = await nodes("quiet")
    caplog.set_level(logging.INFO)
    # When a client announces 5000 bytes, sends 100 and disconnects
    reader, writer = await asyncio.open_connection("127.0.0.1", node.settings.port)
    head = (
        f"POST /inbox HTTP/1.1\r\nHost: {node.settings.domain}\r\n"
        "Content-Type: application/activity+json\r\nContent-Length: 5000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"type": "Create", "actor": "' + b"x" * 70)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.5)
    # Then nothing is logged as an error or with a traceback, and one line says why
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]
    assert any("disconnected" in r.getMessage() for r in caplog.records)
    # And the node still answers
    _, again = await asyncio.open_connection("127.0.0.1", node.settings.port)
    again.close()
    del reader
