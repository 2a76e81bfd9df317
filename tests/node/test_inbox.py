"""The inbox end to end: a real node, FakePeer (Mastodon/GoToSocial-shaped) as the sender.

Every refusal is checked for its exact status and reason *and* for leaving
nothing behind (no inbox row, no job).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from federation.httpsig import format_http_date, sign_request_rfc9421
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.inboxflow import (
    NOTHING,
    Sent,
    World,
    assert_refused,
    create_activity,
    post_raw,
    rfc9421_signed,
    stored,
)
from tests.support.nodes import RunningNode

# -- accepted ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Follow", "Create"])
@pytest.mark.parametrize("personal", [False, True], ids=["shared", "personal"])
async def test_mastodon_signed_activity_is_accepted(
    node: RunningNode, peer: FakePeer, kind: str, personal: bool
) -> None:
    # Given a Mastodon user
    alice = peer.add_actor("alice")
    activity = (
        peer.follow(alice, node.actor_url) if kind == "Follow" else create_activity(peer, alice)
    )
    inbox = f"{node.actor_url}/inbox" if personal else f"{node.base_url}/inbox"
    # When she POSTs a signed activity (rsa-sha256, Digest, content-type signed)
    answer = await peer.send(alice, inbox, activity)
    # Then the node accepts it and stores it once, for the coop when sent to its inbox
    assert answer == (202, {"status": "accepted"})
    row = await node.ctx.store.pool.fetchrow(
        "SELECT activity_id, actor, type, local_actor_id FROM inbox_activities"
    )
    coop = await node.ctx.coop_actor()
    assert dict(row) == {
        "activity_id": activity["id"],
        "actor": alice.id,
        "type": kind,
        "local_actor_id": coop.id if personal else None,
    }
    # And the signer's actor document was fetched exactly once
    assert peer.gets == ["/users/alice"]


async def test_gotosocial_signed_follow_is_accepted(node: RunningNode) -> None:
    # Given a GoToSocial server (signed GETs required, key at .../main-key without fragment)
    gts = await FakePeer(style="gotosocial", require_signed_get=True).start()
    try:
        alice = gts.add_actor("alice")
        follow = gts.follow(alice, node.actor_url)
        body = orjson.dumps(follow)
        headers = gts.signed_headers(alice, f"{node.base_url}/inbox", body)
        assert headers["Content-Type"].startswith("application/ld+json; profile=")
        assert 'algorithm="hs2019"' in headers["Signature"]
        assert f'keyId="{alice.id}/main-key"' in headers["Signature"]
        # When it delivers a Follow
        answer = await gts.send(alice, f"{node.base_url}/inbox", follow, headers=headers, body=body)
        # Then the node fetched the key stub, then its owner, and accepted the Follow
        assert answer == (202, {"status": "accepted"})
        assert gts.gets == ["/users/alice/main-key", "/users/alice"]
        cached = await node.ctx.store.get_remote_actor(alice.id)
        assert cached is not None and cached.key_id == f"{alice.id}/main-key"
        assert (await stored(node))["inbox_activities"] == 1
    finally:
        await gts.stop()


@pytest.mark.parametrize("personal", [False, True], ids=["shared", "personal"])
async def test_rfc9421_signed_post_is_accepted(
    node: RunningNode, peer: FakePeer, personal: bool
) -> None:
    # Given a POST signed with RFC 9421 (@method @target-uri content-digest), as
    # Mastodon 4.7 sends on its second knock
    alice = peer.add_actor("alice")
    inbox = f"{node.actor_url}/inbox" if personal else f"{node.base_url}/inbox"
    activity = create_activity(peer, alice)
    body = orjson.dumps(activity)
    headers = sign_request_rfc9421(
        method="POST",
        url=inbox,
        headers={"Content-Type": "application/activity+json"},
        body=body,
        signer=alice.signer,
        now=datetime.now(UTC),
    )
    assert "Signature" in headers and "Signature-Input" in headers
    # When it is delivered / Then it is accepted
    assert await peer.send(alice, inbox, activity, headers=headers, body=body) == (
        202,
        {"status": "accepted"},
    )
    assert (await stored(node))["inbox_activities"] == 1


async def test_fedify_style_rfc9421_signed_post_is_accepted(
    node: RunningNode, peer: FakePeer
) -> None:
    # Given a POST signed the way Fedify signs: derived and header components mixed
    alice = peer.add_actor("alice")
    inbox = f"{node.base_url}/inbox"
    activity = peer.follow(alice, node.actor_url)
    body = orjson.dumps(activity)
    components = ("@method", "@target-uri", "@authority", "host", "date", "content-digest")
    headers = rfc9421_signed(alice, inbox, body, components=components, now=datetime.now(UTC))
    # When it is delivered / Then it is accepted
    answer = await peer.send(alice, inbox, activity, headers=headers, body=body)
    assert answer == (202, {"status": "accepted"})
    assert (await stored(node))["inbox_activities"] == 1


async def test_fedify_style_signature_over_a_changed_host_is_refused(
    node: RunningNode, peer: FakePeer
) -> None:
    # Given a Fedify-style signature whose covered Host header is then changed
    alice = peer.add_actor("alice")
    inbox = f"{node.base_url}/inbox"
    activity = peer.follow(alice, node.actor_url)
    body = orjson.dumps(activity)
    components = ("@method", "@target-uri", "@authority", "host", "date", "content-digest")
    headers = rfc9421_signed(alice, inbox, body, components=components, now=datetime.now(UTC))
    headers["Host"] = "localhost:" + str(urlsplit(inbox).port)
    # When it is delivered / Then the signed host is not ours
    answer = await peer.send(alice, inbox, activity, headers=headers, body=body)
    assert_refused(answer, 401, "wrong_host")
    assert await stored(node) == NOTHING


# -- refused -------------------------------------------------------------------


def hours_from_now(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def _without_signature(w: World) -> Sent:
    sent = w.signed()
    del sent.headers["Signature"]
    return sent


def _body_changed(w: World) -> Sent:
    sent = w.signed()
    assert b"Hello" in sent.body
    return Sent(sent.headers, sent.body.replace(b"Hello", b"Jello"))


def _signed_header_changed(w: World) -> Sent:
    sent = w.signed()
    date = datetime.now(UTC) + timedelta(seconds=5)
    sent.headers["Date"] = format_http_date(date)
    return sent


def _content_type(value: str) -> Callable[[World], Sent]:
    def build(w: World) -> Sent:
        sent = w.signed()
        sent.headers["Content-Type"] = value
        return sent

    return build


def _no_content_type(w: World) -> Sent:
    sent = w.signed()
    del sent.headers["Content-Type"]
    return Sent(sent.headers, sent.body, skip_auto_headers=("Content-Type",))


def _stranger(w: World) -> Sent:
    # An actor the peer does not know: its key id answers 404.
    ghost = PeerActor("ghost", w.peer.base, w.peer.style)
    return w.signed(dict(w.activity, actor=ghost.id), actor=ghost)


def _document(update: dict[str, Any], drop: tuple[str, ...] = ()) -> Callable[[World], Sent]:
    def build(w: World) -> Sent:
        document = {k: v for k, v in {**w.activity, **update}.items() if k not in drop}
        return w.signed(document)

    return build


def _nested(depth: int) -> Callable[[World], Sent]:
    def build(w: World) -> Sent:
        value: Any = "deep"
        for _ in range(depth):
            value = {"a": value}
        return w.signed(dict(w.activity, object=value))

    return build


def _malformed_signature(w: World) -> Sent:
    sent = w.signed()
    sent.headers["Signature"] = f'keyId="{w.alice.key_id}",signature="abc",headers="date'
    return sent


REFUSALS: list[tuple[str, int, str, Callable[[World], Sent]]] = [
    ("no_signature", 401, "missing_signature", _without_signature),
    ("body_changed", 401, "digest_mismatch", _body_changed),
    ("signed_header_changed", 401, "bad_signature", _signed_header_changed),
    ("date_2h_old", 401, "date_expired", lambda w: w.signed(now=hours_from_now(-2))),
    ("date_2h_ahead", 401, "date_in_future", lambda w: w.signed(now=hours_from_now(2))),
    ("key_of_another_actor", 401, "actor_mismatch", lambda w: w.signed(actor=w.bob)),
    ("unknown_key_id", 401, "key_gone", _stranger),
    ("text_plain", 415, "unsupported_media_type", _content_type("text/plain")),
    ("application_json", 415, "unsupported_media_type", _content_type("application/json")),
    ("no_content_type", 415, "unsupported_media_type", _no_content_type),
    ("invalid_json", 400, "bad_json", lambda w: w.signed(raw=b'{"type": "Create",')),
    ("json_array", 400, "not_an_object", lambda w: w.signed([w.activity])),
    ("missing_type", 400, "bad_type", _document({}, drop=("type",))),
    ("missing_actor", 400, "bad_actor", _document({}, drop=("actor",))),
    ("actor_not_a_url", 400, "bad_actor", _document({"actor": "alice"})),
    ("id_on_another_host", 400, "foreign_id", _document({"id": "https://elsewhere.example/a/1"})),
    ("nested_100_deep", 400, "too_deep", _nested(100)),
    ("malformed_signature", 400, "malformed_signature", _malformed_signature),
]


@pytest.mark.parametrize(
    ("status", "reason", "build"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
async def test_refused_requests_store_nothing(
    node: RunningNode,
    peer: FakePeer,
    http: aiohttp.ClientSession,
    status: int,
    reason: str,
    build: Callable[[World], Sent],
) -> None:
    # Given a Mastodon peer with two users, alice and bob
    alice = peer.add_actor("alice")
    bob = peer.add_actor("bob")
    world = World(peer, alice, bob, node, f"{node.base_url}/inbox")
    world.activity = create_activity(peer, alice, "Hello")
    sent = build(world)
    # When the request is POSTed to the shared inbox
    answer = await post_raw(
        http, world.url, sent.body, sent.headers, skip_auto_headers=sent.skip_auto_headers
    )
    # Then it is refused with the exact status and reason, and nothing is stored
    assert_refused(answer, status, reason)
    assert await stored(node) == NOTHING


async def test_unknown_personal_inbox_is_404(
    node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession
) -> None:
    # Given a correctly signed activity for a user the node does not have
    alice = peer.add_actor("alice")
    for username in ("nobody", "coopfed.internal"):
        url = f"{node.base_url}/users/{username}/inbox"
        answer = await peer.send(alice, url, create_activity(peer, alice))
        # Then it is 404 (the instance actor has no personal inbox either), nothing stored
        assert_refused(answer, 404, "not_found")
    assert await stored(node) == NOTHING
    assert peer.gets == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
async def test_body_over_one_megabyte_is_413(
    node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession, chunked: bool
) -> None:
    # Given a signed activity whose body is 1 MB + 1 byte
    alice = peer.add_actor("alice")
    activity = create_activity(peer, alice)
    padding_size = 1_048_576 + 1 - len(orjson.dumps(dict(activity, summary="")))
    body = orjson.dumps(dict(activity, summary="x" * padding_size))
    assert len(body) == 1_048_577
    url = f"{node.base_url}/inbox"
    headers = peer.signed_headers(alice, url, body)
    data: bytes | Any = body
    if chunked:
        # sent in pieces without Content-Length
        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 65_536):
                yield body[start : start + 65_536]

        data = pieces()
    # When it is POSTed
    answer = await post_raw(http, url, data, headers)
    # Then it is refused before anything is verified or stored
    assert_refused(answer, 413, "too_large")
    assert await stored(node) == NOTHING
    assert peer.gets == []


async def test_body_of_exactly_one_megabyte_is_accepted(node: RunningNode, peer: FakePeer) -> None:
    # Given a signed activity of exactly 1 MB
    alice = peer.add_actor("alice")
    activity = create_activity(peer, alice)
    padding_size = 1_048_576 - len(orjson.dumps(dict(activity, summary="")))
    activity["summary"] = "x" * padding_size
    assert len(orjson.dumps(activity)) == 1_048_576
    # When it is POSTed / Then it is accepted
    assert await peer.send(alice, f"{node.base_url}/inbox", activity) == (
        202,
        {"status": "accepted"},
    )
