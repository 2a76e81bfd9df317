"""Interop with Fedify 2.3.6, an independent ActivityPub implementation, on loopback.

The peer (tests/interop/fedify/peer.mjs, driven by tests/interop/fedify_peer.py)
is a real Fedify server: it signs, verifies, fetches and delivers by itself, and
its ``received`` list only holds activities that passed its own verification.
Node.js 22 and Fedify are installed once per lockfile from the npm registry into
~/.cache/coopfed-interop; a failed install is an error, not a skip.

Each test gets a fresh node (function-scoped) and a fresh peer, so neither side
keeps followers, cached keys or per-origin signature choices from another test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import inbox.verify
from federation.httpsig import ParsedSignature
from federation.store import Follow
from outbox import publish
from tests.interop.fedify_peer import (
    INSTALL_TIMEOUT,
    FedifyPeer,
    ensure_fedify_installed,
    start_fedify_peer,
)
from tests.support.nodes import RunningNode, eventually

# pytest's 120 s per test includes fixture setup: leave room for a cold install.
pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 60)

WAIT = 20.0
# What Fedify 2.3.6 signs on an inbox POST: its default first knock (RFC 9421),
# and draft-cavage (its fallback, or first knock when configured so).
FEDIFY_COVERED = {
    "rfc9421": ("@method", "@target-uri", "@authority", "host", "date", "content-digest"),
    "cavage": ("(request-target)", "content-type", "date", "digest", "host"),
}


@dataclass(frozen=True, slots=True)
class SeenSignature:
    path: str
    scheme: str
    key_id: str
    covered: tuple[str, ...]


@pytest.fixture(scope="session")
def fedify_install() -> None:
    """npm ci of Node.js 22 + Fedify, once per lockfile (a no-op when cached)."""
    ensure_fedify_installed()


@pytest.fixture
async def fedify(fedify_install: None, request: pytest.FixtureRequest) -> AsyncIterator[FedifyPeer]:
    """A fresh peer; indirect parametrisation passes start_fedify_peer options."""
    options: dict[str, Any] = getattr(request, "param", {})
    peer = await start_fedify_peer(ready_timeout=WAIT, **options)
    try:
        yield peer
    finally:
        await peer.stop()


@pytest.fixture
def inbox_signatures(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SeenSignature]]:
    """Every signature our inbox parsed during the test (the scheme each POST used)."""
    seen: list[SeenSignature] = []
    original = inbox.verify.read_signature

    def recording(node: Any, method: str, path_qs: str, headers: Any) -> ParsedSignature:
        parsed = original(node, method, path_qs, headers)
        seen.append(SeenSignature(path_qs, parsed.scheme, parsed.key_id, parsed.covered))
        return parsed

    monkeypatch.setattr("inbox.routes.read_signature", recording)
    yield seen


async def _our_followers_page(node: RunningNode) -> list[str]:
    page = await node.ctx.client.fetch_json(
        f"{node.actor_url}/followers?page=1", signer=await node.ctx.instance_signer()
    )
    items: list[str] = page["orderedItems"]
    return items


async def _fedify_follows_us(node: RunningNode, fedify: FedifyPeer) -> Follow:
    """Fedify follows our coop (by actor URL) and gets our Accept; our inbound follow."""
    sent = await fedify.follow(node.actor_url)
    await fedify.wait_following(node.actor_url, "accepted", within=WAIT)
    coop = await node.ctx.coop_actor()
    follows = await node.ctx.store.list_follows(coop.id, "inbound")
    assert [(f.remote_actor, f.activity_id) for f in follows] == [
        (fedify.actor_url, sent["follow_id"])
    ]
    return follows[0]


async def _we_follow_fedify(node: RunningNode, fedify: FedifyPeer) -> Follow:
    """Our coop follows Fedify's actor and Fedify accepts; our outbound follow."""
    coop = await node.ctx.coop_actor()
    record = await publish.follow(node.ctx, coop, fedify.actor_url)
    assert record.state == "pending"

    async def accepted() -> list[Follow]:
        return await node.ctx.store.list_follows(coop.id, "outbound")

    follows = await eventually(accepted, timeout=WAIT, message="Fedify accepts our Follow")
    assert [(f.remote_actor, f.state) for f in follows] == [(fedify.actor_url, "accepted")]
    return follows[0]


def _assert_fedify_knocked(
    node: RunningNode, fedify: FedifyPeer, seen: list[SeenSignature], scheme: str = "rfc9421"
) -> None:
    """Every POST from Fedify was verified at the first knock, signed with ``scheme``."""
    from_fedify = [s for s in seen if s.key_id == f"{fedify.actor_url}#main-key"]
    assert from_fedify == seen
    assert {(s.scheme, s.covered) for s in from_fedify} == {(scheme, FEDIFY_COVERED[scheme])}
    # No refusal means no second (draft-cavage) knock was needed.
    assert node.ctx.metrics.inbox_rejected == {}


async def test_fedify_follows_us_and_receives_our_note(
    node: RunningNode, fedify: FedifyPeer, inbox_signatures: list[SeenSignature]
) -> None:
    # Given Fedify follows our coop by its actor URL
    follow = await _fedify_follows_us(node, fedify)

    # Then Fedify verified our Accept, which embeds its Follow
    accept = await fedify.wait_for_activity("Accept", actor=node.actor_url, within=WAIT)
    assert accept["object_id"] == follow.activity_id
    assert accept["inbox"] == "peer"
    # signed draft-cavage, accepted by Fedify without a second knock
    headers = accept["request"]["headers"]
    assert "signature" in headers and "signature-input" not in headers
    # And our followers collection lists the Fedify actor
    assert await _our_followers_page(node) == [fedify.actor_url]

    # When we publish a note
    create = await publish.post_note(node.ctx, await node.ctx.coop_actor(), "Offer: bread")

    # Then it reaches Fedify's shared inbox and passes Fedify's verification
    received = await fedify.wait_for_activity("Create", actor=node.actor_url, within=WAIT)
    assert received["id"] == create["id"]
    assert received["inbox"] == "shared"
    assert received["object_id"] == create["object"]["id"]
    assert received["object_type"] == "Note"
    assert received["object"]["content"] == "<p>Offer: bread</p>"
    assert received["object"]["attributedTo"] == node.actor_url
    # And Fedify's Follow reached us signed with RFC 9421 at the first knock
    _assert_fedify_knocked(node, fedify, inbox_signatures)


async def test_fedify_undo_follow_removes_it_from_our_followers(
    node: RunningNode, fedify: FedifyPeer, inbox_signatures: list[SeenSignature]
) -> None:
    # Given Fedify follows our coop
    follow = await _fedify_follows_us(node, fedify)
    coop = await node.ctx.coop_actor()

    # When Fedify sends Undo(Follow)
    undo = await fedify.unfollow(node.actor_url)

    # Then our node removes the follower
    async def gone() -> bool:
        return await node.ctx.store.list_follows(coop.id, "inbound", state=None) == []

    await eventually(gone, timeout=WAIT, message="the Undo(Follow) removes the follower")
    assert await node.ctx.store.inbox_outcomes(undo["undo_id"]) == "unfollowed"
    assert await _our_followers_page(node) == []
    # (Fedify embeds the whole Follow in its Undo)
    body = await node.ctx.store.pool.fetchval(
        "SELECT body FROM inbox_activities WHERE activity_id = $1", undo["undo_id"]
    )
    assert (body["object"]["type"], body["object"]["id"]) == ("Follow", follow.activity_id)
    # And both the Follow and the Undo reached us as RFC 9421 first knocks
    assert [s.path for s in inbox_signatures] == [f"/users/{coop.username}/inbox"] * 2
    _assert_fedify_knocked(node, fedify, inbox_signatures)


@pytest.mark.parametrize(
    ("fedify", "scheme", "proof"),
    [
        pytest.param({}, "rfc9421", False, id="rfc9421-first-knock"),
        pytest.param(
            {"first_knock": "draft-cavage"}, "cavage", False, id="draft-cavage-first-knock"
        ),
        pytest.param({"ed25519": True}, "rfc9421", True, id="ed25519-proofs"),
    ],
    indirect=["fedify"],
)
async def test_we_follow_fedify_and_store_its_note(
    node: RunningNode,
    fedify: FedifyPeer,
    inbox_signatures: list[SeenSignature],
    scheme: str,
    proof: bool,
) -> None:
    # Given our coop follows Fedify's actor and Fedify accepted
    follow = await _we_follow_fedify(node, fedify)
    followers = await fedify.followers()
    assert [(f["actor"], f["follow_id"]) for f in followers] == [
        (node.actor_url, follow.activity_id)
    ]

    # When Fedify posts a note to its followers
    sent = await fedify.post("<p>Need: flour</p>")
    assert sent["followers"] == 1

    # Then our node verified and stored it
    async def stored() -> list[Any]:
        return await node.ctx.store.list_objects_by(fedify.actor_url)

    posts = await eventually(stored, timeout=WAIT, message="our node stores Fedify's note")
    assert [(p.uri, p.type, p.visibility) for p in posts] == [(sent["note_id"], "Note", "public")]
    assert posts[0].body["content"] == "<p>Need: flour</p>"
    assert await node.ctx.store.inbox_outcomes(sent["create_id"]) == "stored"
    # And Fedify's Accept and Create reached us at the first knock, in that scheme
    assert [s.path for s in inbox_signatures] == [
        f"/users/{(await node.ctx.coop_actor()).username}/inbox",
        "/inbox",
    ]
    _assert_fedify_knocked(node, fedify, inbox_signatures, scheme)
    # And with an Ed25519 key Fedify also signs an FEP-8b32 proof, which does not hinder us
    body = await node.ctx.store.pool.fetchval(
        "SELECT body FROM inbox_activities WHERE activity_id = $1", sent["create_id"]
    )
    assert ("proof" in body) is proof


async def test_our_unfollow_removes_us_from_fedify_followers(
    node: RunningNode, fedify: FedifyPeer
) -> None:
    # Given our coop follows Fedify's actor
    follow = await _we_follow_fedify(node, fedify)
    coop = await node.ctx.coop_actor()

    # When we unfollow it
    await publish.unfollow(node.ctx, coop, fedify.actor_url)

    # Then Fedify verified our Undo of that Follow and dropped us from its followers
    undo = await fedify.wait_for_activity("Undo", actor=node.actor_url, within=WAIT)
    assert undo["object_id"] == follow.activity_id
    assert undo["object"]["type"] == "Follow"

    async def dropped() -> bool:
        return await fedify.followers() == []

    await eventually(dropped, timeout=WAIT, message="Fedify drops us from its followers")
    assert await node.ctx.store.list_follows(coop.id, "outbound", state=None) == []


def test_fedify_install_is_reused(fedify_install: None) -> None:
    # Given the peer was installed (or found cached) once in this run
    _, workdir = ensure_fedify_installed()
    marker = workdir / ".installed"
    installed_at = marker.stat().st_mtime_ns
    # When it is asked for again
    ensure_fedify_installed()
    # Then the cached copy is used: no second npm ci
    assert marker.stat().st_mtime_ns == installed_at
    assert (workdir / "node_modules" / "@fedify" / "fedify" / "package.json").is_file()
