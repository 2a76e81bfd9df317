"""Interop with bovine (PyPI ``bovine``, ``bovine-herd`` 0.5.19), a second
independent ActivityPub implementation, on loopback.

The peer (tests/interop/bovine/peer.py, driven by tests/interop/bovine_peer.py)
is a bovine-herd server: it verifies the HTTP signatures of what reaches its
inbox, fetches keys with signed GETs and delivers what its actor posts to its
outbox, signed.  bovine is installed by the tests into a cached virtualenv; a
failed install is an error, not a skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import inbox.verify
from federation.httpsig import ParsedSignature
from outbox import market
from tests.interop.bovine_peer import (
    INSTALL_TIMEOUT,
    BovinePeer,
    ensure_bovine_installed,
    start_bovine_peer,
)
from tests.support.nodes import RunningNode, eventually

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 90)

WAIT = 20.0


@pytest.fixture(scope="session")
def bovine_install() -> None:
    ensure_bovine_installed()


@pytest.fixture
async def bovine(bovine_install: None) -> AsyncIterator[BovinePeer]:
    peer = await start_bovine_peer(ready_timeout=WAIT)
    try:
        yield peer
    finally:
        await peer.stop()


@pytest.fixture
def key_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The key id of every signature our inbox parsed during the test."""
    seen: list[str] = []
    original = inbox.verify.read_signature

    def recording(node: Any, method: str, path_qs: str, headers: Any) -> ParsedSignature:
        parsed = original(node, method, path_qs, headers)
        seen.append(parsed.key_id)
        return parsed

    monkeypatch.setattr("inbox.routes.read_signature", recording)
    yield seen


async def test_bovine_follows_our_coop_and_reads_our_offer(
    node: RunningNode, bovine: BovinePeer, key_ids: list[str]
) -> None:
    coop = await node.ctx.coop_actor()
    # When bovine's actor follows our coop (a Follow posted to its outbox, signed by
    # bovine's client library, delivered signed by bovine-herd)
    sent = await bovine.follow(node.actor_url)
    assert sent["status"] == 201

    # Then we verified its signature and recorded the follower
    async def followed() -> list[Any]:
        return await node.ctx.store.list_follows(coop.id, "inbound")

    (follow,) = await eventually(followed, timeout=WAIT, message="our coop records bovine")
    assert (follow.remote_actor, follow.state) == (bovine.actor_url, "accepted")
    assert key_ids == [f"{bovine.actor_url}#serverKey"]
    assert node.ctx.metrics.inbox_rejected == {}
    # And bovine verified the signature of our Accept
    accept = await bovine.wait_for_activity("Accept", within=WAIT)
    assert (accept["actor"], accept["verified_as"]) == (node.actor_url, node.actor_url)

    # When we publish an offer
    create = await market.publish_proposal(
        node.ctx,
        coop,
        {"kind": "offer", "title": "Bread for coops", "unit": "kilogram", "quantity": "30"},
    )

    # Then bovine verifies our Create and reads the proposal as a note
    received = await bovine.wait_for_activity(
        "Create", where=lambda i: i["id"] == create["id"], within=WAIT
    )
    assert received["verified_as"] == node.actor_url
    reading = received["object"]
    assert reading["id"] == create["object"]["id"]
    assert reading["attributed_to"] == node.actor_url
    assert "Note" in reading["type"]
    assert reading["content"].startswith("<p><strong>OFFER:</strong> Bread for coops</p>")
    # And the herd answered every POST (its outbox, its inbox) with 2xx
    answers = await bovine.answers()
    assert len(answers) >= 3
    assert [a for a in answers if not 200 <= a["status"] < 300] == []
    assert await node.ctx.store.delivery_failures() == []
    # (bovine needed no context from the network: every one it loads is served offline)
    assert "offline: not fetching" not in bovine.log()


async def test_bovine_client_fetches_and_reads_our_documents(
    node: RunningNode, bovine: BovinePeer
) -> None:
    # Given an offer of ours
    create = await market.publish_proposal(
        node.ctx,
        await node.ctx.coop_actor(),
        {"kind": "need", "title": "Organic flour", "unit": "kilogram", "quantity": "200"},
    )
    # When bovine's client fetches our actor and the proposal with signed GETs
    actor = await bovine.fetch(node.actor_url)
    proposal = await bovine.fetch(create["object"]["id"])
    # Then it reads them: our actor's key, and the proposal attributed to our coop
    assert actor["id"] == node.actor_url
    assert actor["document"]["publicKey"]["owner"] == node.actor_url
    assert proposal["id"] == create["object"]["id"]
    assert proposal["attributed_to"] == node.actor_url
    assert proposal["document"]["purpose"] == "request"


def test_bovine_install_is_reused(bovine_install: None) -> None:
    # Given bovine was installed (or found cached) once in this run
    python = ensure_bovine_installed()
    marker = python.parent.parent / ".installed"
    installed_at = marker.stat().st_mtime_ns
    # When it is asked for again
    ensure_bovine_installed()
    # Then the cached virtualenv is used: no second install
    assert marker.stat().st_mtime_ns == installed_at
    assert python.is_file()
