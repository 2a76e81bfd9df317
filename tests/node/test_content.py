"""Posts and reactions both ways: Create, Update, Delete, Announce, Like and Undo.

Between two real coopfed nodes and with Mastodon-shaped peers, checked against
the rules Mastodon applies to incoming posts: what concerns a local actor is kept,
edits apply only when newer, only the owner may edit or delete, a deleted URI
stays deleted, and visibility is read from to/cc as Mastodon reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from federation.jsonld import AS_CONTEXT
from federation.store import StoredObject
from outbox import publish
from tests.support.fakepeer import PUBLIC, FakePeer, PeerActor
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import (
    accepted_follower,
    mutual_follow,
    our_accepted_follow,
    peer_activity,
    send_and_wait,
)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def stored(node: RunningNode, uri: str) -> StoredObject:
    found = await node.ctx.store.get_object(uri)
    assert found is not None, f"{uri} is not stored"
    return found


async def our_post(node: RunningNode, text: str, visibility: str = "public") -> str:
    create = await publish.post_note(
        node.ctx, await node.ctx.coop_actor(), text, visibility=visibility
    )
    uri: str = create["object"]["id"]
    return uri


@pytest.fixture
async def peer() -> Any:
    server = await FakePeer(style="mastodon").start()
    try:
        yield server
    finally:
        await server.stop()


# -- two real nodes ----------------------------------------------------------------


async def test_two_nodes_exchange_posts_edits_reactions_and_deletes(nodes: NodeFactory) -> None:
    a = await nodes("a")
    b = await nodes("b")
    coop_a = await a.ctx.coop_actor()
    coop_b = await b.ctx.coop_actor()
    # Given two coops that follow each other
    await mutual_follow(a, b)

    # When B posts, A stores it (public, attributed to B)
    uri = await our_post(b, "Offer: bread")

    async def a_has_it() -> StoredObject | None:
        return await a.ctx.store.get_object(uri)

    post = await eventually(a_has_it, message="A stores B's post")
    assert post is not None
    assert (post.local, post.attributed_to, post.visibility) == (False, b.actor_url, "public")
    assert post.body["content"] == "<p>Offer: bread</p>"
    # And a post of A reaches B the same way
    uri_a = await our_post(a, "Need: flour", visibility="followers")

    async def b_has_it() -> StoredObject | None:
        return await b.ctx.store.get_object(uri_a)

    post_a = await eventually(b_has_it, message="B stores A's post")
    assert post_a is not None and post_a.visibility == "followers"

    # When B edits its post, A applies the edit
    await publish.update_object(
        b.ctx, coop_b, (await stored(b, uri)).body | {"content": "<p>Offer: rye bread</p>"}
    )

    async def a_has_edit() -> bool:
        content: str = (await stored(a, uri)).body["content"]
        return content == "<p>Offer: rye bread</p>"

    await eventually(a_has_edit, message="A applies B's edit")
    assert (await stored(a, uri)).updated is not None

    # When A likes and boosts B's post, B counts both; A's Undo of each uncounts
    like = await publish.like(a.ctx, coop_a, uri)
    announce = await publish.announce(a.ctx, coop_a, uri)

    async def counts(expected: dict[str, int]) -> bool:
        return await b.ctx.store.count_interactions(uri) == expected

    await eventually(lambda: counts({"Like": 1, "Announce": 1}), message="B counts both")
    await publish.undo(a.ctx, coop_a, like["id"])
    await publish.undo(a.ctx, coop_a, announce["id"])
    await eventually(lambda: counts({"Like": 0, "Announce": 0}), message="B uncounts both")

    # When B deletes its post, A keeps only a tombstone
    await publish.delete_post(b.ctx, coop_b, uri)

    async def a_has_tombstone() -> bool:
        return (await stored(a, uri)).deleted_at is not None

    await eventually(a_has_tombstone, message="A tombstones B's post")
    assert (await stored(a, uri)).body == {"id": uri, "type": "Tombstone", "formerType": "Note"}


# -- Create: kept only when it concerns us --------------------------------------------


async def test_create_is_stored_only_when_it_concerns_a_local_actor(
    node: RunningNode, peer: FakePeer
) -> None:
    alice, bob, carol, dave, eve = (
        peer.add_actor(n) for n in ("alice", "bob", "carol", "dave", "eve")
    )
    await our_accepted_follow(node, peer, alice)
    ours = await our_post(node, "Offer: bread")
    cases: list[tuple[PeerActor, dict[str, Any], str]] = [
        # followed by the coop: public post
        (alice, peer.note(alice, "<p>followed</p>"), "public"),
        # not followed, but addressed to the coop (a direct mention)
        (bob, peer.note(bob, "<p>to you</p>", to=[node.actor_url], cc=[]), "direct"),
        # not followed, not addressed, but a reply to our post
        (carol, peer.note(carol, "<p>reply</p>", in_reply_to=ours), "public"),
    ]
    for actor, note, visibility in cases:
        # When each sends its Create, it is stored with the visibility Mastodon reads
        assert await send_and_wait(peer, actor, node, peer.create(actor, note)) == "stored"
        saved = await stored(node, note["id"])
        assert (saved.attributed_to, saved.visibility) == (actor.id, visibility)
        assert saved.body["content"] == note["content"]
    assert (await stored(node, cases[2][1]["id"])).in_reply_to == ours

    # When dave, who concerns nobody here, posts publicly: ignored, nothing stored
    unrelated = peer.note(dave, "<p>unrelated</p>")
    result = await send_and_wait(peer, dave, node, peer.create(dave, unrelated))
    assert result == "ignored: concerns no local actor"
    assert await node.ctx.store.get_object(unrelated["id"]) is None

    # When eve sends a Create of a note attributed to alice: refused, nothing stored
    forged = peer.note(alice, "<p>forged</p>", to=[node.actor_url])
    result = await send_and_wait(peer, eve, node, peer_activity(peer, eve, "Create", forged))
    assert result == "refused: the object is attributed to someone else"
    assert await node.ctx.store.get_object(forged["id"]) is None


async def test_visibility_is_stored_as_mastodon_reads_to_and_cc(
    node: RunningNode, peer: FakePeer
) -> None:
    alice = peer.add_actor("alice")
    await our_accepted_follow(node, peer, alice)
    addressing = {
        "public": ([PUBLIC], [alice.followers]),
        "unlisted": ([alice.followers], [PUBLIC]),
        "followers": ([alice.followers], []),
        "direct": ([node.actor_url], []),
    }
    for visibility, (to, cc) in addressing.items():
        note = peer.note(alice, f"<p>{visibility}</p>", to=to, cc=cc)
        assert await send_and_wait(peer, alice, node, peer.create(alice, note)) == "stored"
        assert (await stored(node, note["id"])).visibility == visibility
    # The short forms of Public count too.
    note = peer.note(alice, "<p>as:Public</p>", to=["as:Public"], cc=[])
    assert await send_and_wait(peer, alice, node, peer.create(alice, note)) == "stored"
    assert (await stored(node, note["id"])).visibility == "public"


# -- Update -------------------------------------------------------------------------


async def test_update_applies_only_when_newer_and_only_from_the_owner(
    node: RunningNode, peer: FakePeer
) -> None:
    alice = peer.add_actor("alice")
    mallory = peer.add_actor("mallory")
    await our_accepted_follow(node, peer, alice)
    note = peer.note(alice, "<p>v1</p>")
    assert await send_and_wait(peer, alice, node, peer.create(alice, note)) == "stored"
    t1 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)

    def update(actor: PeerActor, content: str, when: datetime, **extra: Any) -> dict[str, Any]:
        edited = note | {"content": content, "updated": iso(when)} | extra
        return peer_activity(peer, actor, "Update", edited)

    # When alice edits it (updated t1), the edit applies
    assert await send_and_wait(peer, alice, node, update(alice, "<p>v2</p>", t1)) == "updated"
    assert (await stored(node, note["id"])).body["content"] == "<p>v2</p>"
    assert (await stored(node, note["id"])).updated == t1
    # When an edit with the same or an older time arrives, it is ignored
    same = update(alice, "<p>same time</p>", t1)
    older = update(alice, "<p>older</p>", t1 - timedelta(seconds=30))
    assert await send_and_wait(peer, alice, node, same) == "ignored: stale"
    assert await send_and_wait(peer, alice, node, older) == "ignored: stale"
    # When mallory edits alice's note (attributed to alice, or claiming it as hers): refused
    t2 = t1 + timedelta(minutes=1)
    as_alice = update(mallory, "<p>hacked</p>", t2)
    as_mallory = update(mallory, "<p>hacked</p>", t2, attributedTo=mallory.id)
    assert await send_and_wait(peer, mallory, node, as_alice) == (
        "refused: the object is attributed to someone else"
    )
    assert await send_and_wait(peer, mallory, node, as_mallory) == (
        "refused: only the owner may update an object"
    )
    after = await stored(node, note["id"])
    assert (after.body["content"], after.updated, after.attributed_to) == (
        "<p>v2</p>",
        t1,
        alice.id,
    )


# -- Delete -------------------------------------------------------------------------


async def test_delete_leaves_a_tombstone_that_cannot_be_recreated(
    node: RunningNode, peer: FakePeer
) -> None:
    alice = peer.add_actor("alice")
    mallory = peer.add_actor("mallory")
    await our_accepted_follow(node, peer, alice)
    note = peer.note(alice, "<p>soon gone</p>")
    assert await send_and_wait(peer, alice, node, peer.create(alice, note)) == "stored"
    tombstone = {"id": note["id"], "type": "Tombstone"}

    # When mallory deletes alice's note: refused, the note stays
    by_mallory = peer_activity(peer, mallory, "Delete", tombstone)
    assert await send_and_wait(peer, mallory, node, by_mallory) == (
        "refused: only the owner may delete an object"
    )
    assert (await stored(node, note["id"])).deleted_at is None

    # When alice deletes it, only a tombstone is left
    delete = peer_activity(peer, alice, "Delete", tombstone, to=[PUBLIC])
    assert await send_and_wait(peer, alice, node, delete) == "deleted"
    gone = await stored(node, note["id"])
    assert gone.deleted_at is not None
    assert gone.body == {"id": note["id"], "type": "Tombstone", "formerType": "Note"}
    assert await node.ctx.store.list_objects_by(alice.id) == []

    # When a Create of the same id arrives again (a new activity), it is not re-created
    again = peer_activity(peer, alice, "Create", note, to=note["to"], cc=note["cc"])
    assert await send_and_wait(peer, alice, node, again) == "ignored: deleted before"
    # And a later Update of it is ignored too
    edit = note | {"updated": iso(datetime.now(UTC) + timedelta(minutes=1))}
    update = peer_activity(peer, alice, "Update", edit)
    assert await send_and_wait(peer, alice, node, update) == "ignored: deleted"
    assert (await stored(node, note["id"])).body == gone.body


# -- Like and Announce of our posts -------------------------------------------------


async def test_likes_and_boosts_of_our_post_are_counted_and_uncounted(
    node: RunningNode, peer: FakePeer
) -> None:
    alice = peer.add_actor("alice")
    mallory = peer.add_actor("mallory")
    ours = await our_post(node, "Offer: bread")
    store = node.ctx.store

    # When alice likes and boosts our post (Mastodon shapes)
    like = peer_activity(peer, alice, "Like", ours)
    boost = peer_activity(peer, alice, "Announce", ours, to=[PUBLIC], cc=[node.actor_url])
    assert await send_and_wait(peer, alice, node, like) == "like stored"
    assert await send_and_wait(peer, alice, node, boost) == "announce stored"
    # Then both are counted, once each even if repeated
    assert await store.count_interactions(ours) == {"Like": 1, "Announce": 1}
    like_again = peer_activity(peer, alice, "Like", ours)
    assert await send_and_wait(peer, alice, node, like_again) == "ignored: already liked"
    assert await store.count_interactions(ours) == {"Like": 1, "Announce": 1}

    # When mallory undoes alice's Like (embedded): refused, still counted
    embedded_like = {k: v for k, v in like.items() if k != "@context"}
    stolen = peer_activity(peer, mallory, "Undo", embedded_like)
    assert await send_and_wait(peer, mallory, node, stolen) == (
        "refused: only the actor of an activity may undo it"
    )
    assert await store.count_interactions(ours) == {"Like": 1, "Announce": 1}

    # When alice undoes her Like (embedded, as Mastodon requires) and her boost (by id)
    undo_like = peer_activity(peer, alice, "Undo", embedded_like)
    undo_boost = peer_activity(peer, alice, "Undo", boost["id"])
    assert await send_and_wait(peer, alice, node, undo_like) == "like undone"
    assert await send_and_wait(peer, alice, node, undo_boost) == "announce undone"
    # Then nothing is counted any more
    assert await store.count_interactions(ours) == {"Like": 0, "Announce": 0}


async def test_like_of_an_object_that_is_not_ours_is_ignored(
    node: RunningNode, peer: FakePeer
) -> None:
    alice = peer.add_actor("alice")
    note = peer.note(alice, "<p>mine</p>")
    unknown_local = f"{node.base_url}/objects/doesnotexist"
    for target in (note["id"], unknown_local):
        like = peer_activity(peer, alice, "Like", target)
        assert await send_and_wait(peer, alice, node, like) == "ignored: not a local object"
        assert await node.ctx.store.count_interactions(target) == {"Like": 0, "Announce": 0}


# -- what we send reaches a follower, signed -----------------------------------------


async def test_our_activities_reach_a_follower_signed(node: RunningNode, peer: FakePeer) -> None:
    alice = peer.add_actor("alice")
    await accepted_follower(peer, alice, node)
    coop = await node.ctx.coop_actor()
    # Given alice follows the coop, and wrote a post addressed to it
    hers = peer.note(alice, "<p>hello coop</p>", to=[node.actor_url], cc=[])
    assert await send_and_wait(peer, alice, node, peer.create(alice, hers)) == "stored"

    # When the coop posts, edits, likes, boosts, takes both back and deletes
    uri = await our_post(node, "Offer: bread")
    await publish.update_object(
        node.ctx, coop, (await stored(node, uri)).body | {"content": "<p>Offer: rye</p>"}
    )
    like = await publish.like(node.ctx, coop, hers["id"])
    boost = await publish.announce(node.ctx, coop, hers["id"])
    await publish.undo(node.ctx, coop, like["id"])
    await publish.undo(node.ctx, coop, boost["id"])
    await publish.delete_post(node.ctx, coop, uri)

    # Then each reaches alice's server, verified as signed by the coop
    kinds = ["Accept", "Create", "Update", "Like", "Announce", "Undo", "Delete"]
    for kind in kinds:
        await peer.wait_for(kind, count=2 if kind == "Undo" else 1)
    assert all(r.verified and r.signer == node.actor_url for r in peer.received), [
        (r.body.get("type"), r.reason, r.signer) for r in peer.received
    ]
    by_type = {k: [r.body for r in peer.of_type(k)] for k in kinds}
    assert by_type["Create"][0]["object"]["id"] == uri
    assert by_type["Update"][0]["object"]["content"] == "<p>Offer: rye</p>"
    assert by_type["Update"][0]["object"]["updated"]
    assert by_type["Like"][0]["object"] == hers["id"]
    assert by_type["Announce"][0]["object"] == hers["id"]
    # Undo embeds what it takes back (Mastodon ignores an Undo(Like) by id)
    # (deliveries run concurrently: the two Undos may arrive in either order)
    undone = {u["object"]["id"]: u["object"]["type"] for u in by_type["Undo"]}
    assert undone == {like["id"]: "Like", boost["id"]: "Announce"}
    assert by_type["Delete"][0]["object"] == {"id": uri, "type": "Tombstone"}


# -- objects we serve ---------------------------------------------------------------


async def test_objects_are_served_by_visibility(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    headers = {"Accept": "application/activity+json"}
    posts = {v: await our_post(node, f"a {v} post", v) for v in ("public", "unlisted")}
    hidden = {v: await our_post(node, f"a {v} post", v) for v in ("followers", "direct")}
    # A public or unlisted post is served as a Note peers can read (with @context)
    for visibility, uri in posts.items():
        async with http.get(uri, headers=headers) as resp:
            assert resp.status == 200, visibility
            assert resp.content_type == "application/activity+json"
            body = await resp.json(content_type=None)
        assert body == {"@context": body["@context"], **(await stored(node, uri)).body}
        assert AS_CONTEXT in body["@context"]
        assert (body["id"], body["type"]) == (uri, "Note")
    # Followers-only and direct posts are not served
    for visibility, uri in hidden.items():
        async with http.get(uri, headers=headers) as resp:
            assert resp.status == 404, visibility
    # A deleted post answers 410 with its tombstone
    await publish.delete_post(node.ctx, await node.ctx.coop_actor(), posts["public"])
    async with http.get(posts["public"], headers=headers) as resp:
        assert resp.status == 410
        gone = await resp.json(content_type=None)
    assert (gone["id"], gone["type"]) == (posts["public"], "Tombstone")


# -- actor updates ------------------------------------------------------------------


async def test_actor_update_refreshes_the_cache_only_for_itself(
    node: RunningNode, peer: FakePeer
) -> None:
    alice = peer.add_actor("alice")
    mallory = peer.add_actor("mallory")
    await our_accepted_follow(node, peer, alice)
    before = await node.ctx.store.get_remote_actor(alice.id)
    assert before is not None and before.name == "Alice"

    # When alice changes her profile (Mastodon embeds the actor without its own @context,
    # with an id like {actor}#updates/{time})
    profile = {k: v for k, v in alice.document().items() if k != "@context"}
    profile["name"] = "Alice the Baker"
    update = peer_activity(peer, alice, "Update", profile, to=[PUBLIC])
    update["id"] = f"{alice.id}#updates/1760000000"
    assert await send_and_wait(peer, alice, node, update) == "actor updated"
    # Then the cached actor shows it
    cached = await node.ctx.store.get_remote_actor(alice.id)
    assert cached is not None
    assert (cached.name, cached.document["name"]) == ("Alice the Baker", "Alice the Baker")

    # When mallory sends an Update of alice's actor: refused, the cache unchanged
    forged = peer_activity(peer, mallory, "Update", profile | {"name": "Mallory rules"})
    assert await send_and_wait(peer, mallory, node, forged) == (
        "refused: an actor may only update itself"
    )
    cached = await node.ctx.store.get_remote_actor(alice.id)
    assert cached is not None and cached.name == "Alice the Baker"
