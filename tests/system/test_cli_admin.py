"""The admin CLI as a coop admin uses it: `coopfed <command>` against running nodes.

Each command runs as a real subprocess (the installed ``coopfed`` script) with
``--data-dir`` and ``--database-url`` of an in-process node, after
``save_identity`` wrote that node's identity where ``coopfed run`` would.  The
commands queue work in the database; the running node's workers send it.
Every CLI call starts Python (about half a second): the calls are counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.cli import coopfed
from tests.support.fakepeer import FakePeer
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import accepted_follower, follows, outcome, send_ok, shared_inbox


async def test_follow_post_status_and_delete(nodes: NodeFactory) -> None:
    a = await nodes("a")
    b = await nodes("b")
    # A follower of B on a server that answers 503 (a failing host for `status`)
    peer = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        alice = peer.add_actor("alice")
        await accepted_follower(peer, alice, b)
        peer.inbox_status = 503

        # When A's admin runs `coopfed follow coop@127.0.0.1:PORT_B`
        result = await coopfed(a, "follow", b.handle)
        b_name = (await b.ctx.coop_actor()).name
        # Then the request is sent, and once B accepts, `following` lists B
        assert (result.code, result.out) == (
            0,
            f"follow request sent to {b_name} (@{b.handle}) (pending until they accept)\n",
        )

        async def accepted() -> bool:
            return len(await follows(a, "outbound")) == 1

        await eventually(accepted, message="B accepts A's follow")
        # (Two admins at work at once: A lists its follows while B posts.)
        listed, result = await asyncio.gather(
            coopfed(a, "following", "--json"), coopfed(b, "post", "Offer: 20 loaves of bread")
        )
        assert listed.code == 0
        [row] = listed.json()
        assert (row["actor"], row["handle"], row["state"]) == (b.actor_url, b.handle, "accepted")

        # When B's admin posts, the command prints the post's URL and A receives it
        assert result.code == 0
        url = result.out.strip()
        assert url.startswith(f"{b.base_url}/objects/")
        assert result.out == url + "\n"

        async def a_has_post() -> Any:
            return await a.ctx.store.get_object(url)

        post = await eventually(a_has_post, message="A stores B's post")
        assert post.body["content"] == "<p>Offer: 20 loaves of bread</p>"

        # And `status --json` shows followers, the queue and the failing host
        async def localhost_failing() -> bool:
            return any(h.host == "localhost" for h in await b.ctx.store.list_failing_hosts())

        await eventually(localhost_failing, message="delivery to localhost fails")
        result = await coopfed(b, "status", "--json")
        assert result.code == 0
        status = result.json()
        assert set(status) == {
            "coop",
            "actor",
            "name",
            "manually_approves_followers",
            "followers",
            "pending_followers",
            "following",
            "known_remote_actors",
            "queue",
            "failed_jobs",
            "failing_hosts",
            "blocked_domains",
        }
        assert (status["coop"], status["actor"]) == (f"@{b.handle}", b.actor_url)
        assert (status["followers"], status["pending_followers"], status["following"]) == (2, 0, 0)
        assert status["queue"] == {"deliver": 1}  # the retry to localhost
        (failing,) = status["failing_hosts"]
        refusal = failing.pop("last_refusal")
        assert failing == {"host": "localhost", "failure_days": 1, "unavailable": False}
        assert (refusal["status"], refusal["answer"]) == (503, "")
        assert status["blocked_domains"] == []

        # When B's admin deletes the post, A keeps only a tombstone
        result = await coopfed(b, "delete", url)
        assert (result.code, result.out) == (0, f"deleted {url}\n")

        async def a_has_tombstone() -> bool:
            stored = await a.ctx.store.get_object(url)
            return stored is not None and stored.deleted_at is not None

        await eventually(a_has_tombstone, message="A tombstones the post")
    finally:
        await peer.stop()


async def test_pending_followers_approve_and_reject(nodes: NodeFactory) -> None:
    node = await nodes("a", manually_approves_followers=True)
    peer = await FakePeer(style="mastodon").start()
    try:
        alice = peer.add_actor("alice")
        bob = peer.add_actor("bob")
        # Given alice and bob asked to follow a coop that approves by hand
        for actor in (alice, bob):
            follow = peer.follow(actor, node.actor_url)
            await send_ok(peer, actor, node, follow)
            assert await outcome(node, follow["id"]) == "pending approval"

        # When the admin lists the requests
        result = await coopfed(node, "followers", "--pending", "--json")
        assert result.code == 0
        rows = sorted(result.json(), key=lambda r: r["handle"])
        assert [(r["actor"], r["handle"], r["state"]) for r in rows] == [
            (alice.id, f"alice@{peer.domain}", "pending"),
            (bob.id, f"bob@{peer.domain}", "pending"),
        ]

        # When the admin approves alice (by handle) and rejects bob (by URL)
        result = await coopfed(node, "approve", f"alice@{peer.domain}")
        assert (result.code, result.out) == (0, f"approved alice@{peer.domain}\n")
        result = await coopfed(node, "reject", bob.id)
        assert (result.code, result.out) == (0, f"rejected bob@{peer.domain}\n")
        # Then alice gets an Accept and bob a Reject, and only alice follows
        accepts = await peer.wait_for("Accept")
        rejects = await peer.wait_for("Reject")
        assert accepts[0].body["object"]["actor"] == alice.id and accepts[0].verified
        assert rejects[0].body["object"]["actor"] == bob.id and rejects[0].verified
        result = await coopfed(node, "followers")
        listed = f"Alice (@alice@{peer.domain})\t{alice.id}\taccepted\n"
        assert (result.code, result.out) == (0, listed)
    finally:
        await peer.stop()


async def test_block_and_unblock_reach_the_running_node(node: RunningNode) -> None:
    peer = await FakePeer(style="mastodon", hostname="localhost").start()
    try:
        alice = peer.add_actor("alice")

        async def inbox_status() -> int:
            status, _ = await peer.send(
                alice, shared_inbox(node), peer.follow(alice, node.actor_url)
            )
            return status

        # When the admin blocks localhost, the running node refuses it with 403
        result = await coopfed(node, "block", "localhost", "--reason", "spam")
        assert (result.code, result.out) == (0, "blocked localhost\n")

        async def refused() -> bool:
            return await inbox_status() == 403

        await eventually(refused, message="the node reloads its blocks")
        result = await coopfed(node, "blocks")
        assert (result.code, result.out) == (0, "localhost\n")

        # When the admin lifts the block, the node accepts localhost again
        result = await coopfed(node, "unblock", "localhost")
        assert (result.code, result.out) == (0, "unblocked localhost\n")

        async def accepted() -> bool:
            return await inbox_status() == 202

        await eventually(accepted, message="the node lifts the block")
    finally:
        await peer.stop()


async def test_bad_handles_fail_with_a_clear_message(node: RunningNode) -> None:
    # A handle nobody answers for, and something that is not a handle at all
    unknown = await coopfed(node, "follow", f"nobody@{node.settings.domain}")
    assert unknown.code == 1
    assert unknown.err.startswith(f"coopfed: cannot find nobody@{node.settings.domain}: ")
    garbage = await coopfed(node, "follow", "not a handle")
    assert garbage.code == 1
    assert garbage.err.startswith("coopfed: cannot find not a handle: ")
    assert await follows(node, "outbound", None) == []
