"""Threads: a reply's unknown parents are fetched in the inbox job, so apps see them.

A fake Mastodon-shaped peer serves the parents (and records each GET with its
signature); the node fetches them signed by its instance actor, up to five per
activity, rate-limited per origin; an embedded parent is taken as it is only
from its own origin.  Read back through the client API as a member.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from federation.ratelimit import RateLimiter
from inbox import threads
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.mastoflow import api, member_token
from tests.support.nodes import RunningNode
from tests.support.peerflow import send_and_wait


async def reply_arrives(
    peer: FakePeer, bob: PeerActor, node: RunningNode, note: dict[str, Any]
) -> None:
    create = peer.create(bob, note)
    assert await send_and_wait(peer, bob, node, create) == "stored"


async def seq(node: RunningNode, uri: str) -> str:
    stored = await node.ctx.store.get_object(uri)
    assert stored is not None, f"{uri} is not stored"
    return str(stored.seq)


async def status(
    http: aiohttp.ClientSession, node: RunningNode, token: str, uri: str, tail: str = ""
) -> Any:
    code, body, _ = await api(
        http, node, "GET", f"/api/v1/statuses/{await seq(node, uri)}{tail}", token
    )
    assert code == 200, body
    return body


@pytest.fixture
async def alice(node: RunningNode, http: aiohttp.ClientSession) -> str:
    return await member_token(http, node, "alice")


async def test_a_reply_brings_its_served_parents(
    node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession, alice: str
) -> None:
    bob = peer.add_actor("bob")
    me = node.ctx.urls.actor("alice")
    # Given bob's post and his answer to it, served by his server but never sent to us
    first = peer.note(bob, "<p>Who has spare jars?</p>")
    second = peer.note(bob, "<p>Still looking</p>", in_reply_to=first["id"])
    # When his reply to that answer, mentioning alice, arrives
    reply = peer.note(bob, "<p>@alice do you?</p>", cc=[me], in_reply_to=second["id"])
    await reply_arrives(peer, bob, node, reply)
    # Then both parents were fetched, signed by the node's instance actor
    fetched = [(path, key) for path, key in peer.object_gets]
    assert sorted(p for p, _ in fetched) == sorted(
        "/" + n["id"].split("/", 3)[3] for n in (first, second)
    )
    assert {key for _, key in fetched} == {node.ctx.urls.instance_key_id}
    # And the reply is threaded: its parent and the parent's author are known
    shown = await status(http, node, alice, reply["id"])
    assert shown["in_reply_to_id"] == await seq(node, second["id"])
    lookup = f"/api/v1/accounts/lookup?acct=bob@{peer.domain}"
    _, accounts, _ = await api(http, node, "GET", lookup, alice)
    assert shown["in_reply_to_account_id"] == accounts["id"], accounts
    # And the thread reads whole from either end
    context = await status(http, node, alice, reply["id"], "/context")
    assert [s["uri"] for s in context["ancestors"]] == [first["id"], second["id"]]
    context = await status(http, node, alice, first["id"], "/context")
    assert [s["uri"] for s in context["descendants"]] == [second["id"], reply["id"]]


async def test_at_most_five_parents_are_fetched_per_activity(
    node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession, alice: str
) -> None:
    bob = peer.add_actor("bob")
    # Given a chain of eight posts on bob's server
    chain = [peer.note(bob, "<p>0</p>")]
    for n in range(1, 8):
        chain.append(peer.note(bob, f"<p>{n}</p>", in_reply_to=chain[-1]["id"]))
    # When a reply to the last one arrives
    reply = peer.note(bob, "<p>end</p>", cc=[node.actor_url], in_reply_to=chain[-1]["id"])
    await reply_arrives(peer, bob, node, reply)
    # Then only its five nearest ancestors were fetched and stored
    assert len(peer.object_gets) == threads.MAX_ANCESTORS == 5
    context = await status(http, node, alice, reply["id"], "/context")
    assert [s["uri"] for s in context["ancestors"]] == [n["id"] for n in chain[3:]]
    assert await node.ctx.store.get_object(chain[2]["id"]) is None


async def test_an_embedded_parent_is_trusted_only_from_its_own_origin(
    node: RunningNode,
    peer: FakePeer,
    localhost_peer: FakePeer,
    http: aiohttp.ClientSession,
    alice: str,
) -> None:
    bob = peer.add_actor("bob")
    carol = localhost_peer.add_actor("carol")
    # Given a parent of bob's own server, embedded and never served
    own = peer.note(bob, "<p>Our own parent</p>")
    del peer.objects[own["id"]]
    reply = peer.note(bob, "<p>answer</p>", cc=[node.actor_url], in_reply_to=own["id"])
    reply["inReplyTo"] = own
    await reply_arrives(peer, bob, node, reply)
    # Then it is used as sent, without a fetch
    assert peer.object_gets == []
    shown = await status(http, node, alice, reply["id"])
    assert shown["in_reply_to_id"] == await seq(node, own["id"])
    # Given carol's post on another server, embedded by bob with other words
    real = localhost_peer.note(carol, "<p>What carol wrote</p>")
    forged = real | {"content": "<p>What bob says carol wrote</p>"}
    reply = peer.note(bob, "<p>quoting</p>", cc=[node.actor_url], in_reply_to=real["id"])
    reply["inReplyTo"] = forged
    await reply_arrives(peer, bob, node, reply)
    # Then carol's server was asked, and its words are kept
    assert [p for p, _ in localhost_peer.object_gets] == ["/" + real["id"].split("/", 3)[3]]
    stored = await node.ctx.store.get_object(real["id"])
    assert stored is not None and stored.body["content"] == "<p>What carol wrote</p>"
    assert stored.attributed_to == carol.id
    # And an embedded parent of another origin that is not served is not kept
    ghost = localhost_peer.note(carol, "<p>never served</p>")
    del localhost_peer.objects[ghost["id"]]
    reply = peer.note(bob, "<p>to a ghost</p>", cc=[node.actor_url], in_reply_to=ghost["id"])
    reply["inReplyTo"] = ghost
    await reply_arrives(peer, bob, node, reply)
    assert await node.ctx.store.get_object(ghost["id"]) is None
    shown = await status(http, node, alice, reply["id"])
    assert shown["in_reply_to_id"] is None


async def test_parents_that_cannot_be_had_leave_the_reply_stored(
    node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession, alice: str
) -> None:
    bob = peer.add_actor("bob")
    garbage = f"{peer.base}/objects/garbage"
    peer.raw_objects[garbage] = ("application/activity+json", b"{not json", 0.0)
    actor_doc = f"{peer.base}/objects/an-actor"
    peer.objects[actor_doc] = {"id": actor_doc, "type": "Person", "inbox": f"{peer.base}/x"}
    elsewhere = peer.note(bob, "<p>claims another author</p>")
    peer.objects[elsewhere["id"]]["attributedTo"] = "http://localhost:1/users/mallory"
    for parent in (f"{peer.base}/objects/missing", garbage, actor_doc, elsewhere["id"]):
        reply = peer.note(bob, "<p>reply</p>", cc=[node.actor_url], in_reply_to=parent)
        await reply_arrives(peer, bob, node, reply)
        shown = await status(http, node, alice, reply["id"])
        assert shown["in_reply_to_id"] is None
        assert await node.ctx.store.get_object(parent) is None


async def test_parent_fetches_are_rate_limited_per_origin(
    node: RunningNode,
    peer: FakePeer,
    http: aiohttp.ClientSession,
    alice: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(threads._LIMITERS, node.ctx.urls.base, RateLimiter(rate=0.001, burst=2))
    bob = peer.add_actor("bob")
    parents = [peer.note(bob, f"<p>parent {n}</p>") for n in range(3)]
    for parent in parents:
        reply = peer.note(bob, "<p>re</p>", cc=[node.actor_url], in_reply_to=parent["id"])
        await reply_arrives(peer, bob, node, reply)
    # Two fetches fit the budget; the third parent is not fetched
    assert len(peer.object_gets) == 2
    assert await node.ctx.store.get_object(parents[2]["id"]) is None
