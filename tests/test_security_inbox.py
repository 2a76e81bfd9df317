"""The inbox toward hostile servers: no internals in answers, quiet on broken clients."""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import NodeFactory
from fakepeer import FakePeer


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
