"""Follows between actors of one node: a member and her coop, members among
themselves, the coop following a member.  Applied locally (no delivery is
queued), with the notifications, relationships and home timelines of a remote
follow."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from outbox import publish
from outbox.errors import ActionError
from tests.support.mastoflow import api, member_token
from tests.support.nodes import NodeFactory, RunningNode


async def account_id(http: aiohttp.ClientSession, node: RunningNode, token: str, acct: str) -> str:
    status, body, _ = await api(
        http, node, "GET", "/api/v1/accounts/lookup", token, params={"acct": acct}
    )
    assert status == 200, body
    return str(body["id"])


async def relationship(
    http: aiohttp.ClientSession, node: RunningNode, token: str, target: str
) -> dict[str, Any]:
    status, body, _ = await api(
        http, node, "GET", "/api/v1/accounts/relationships", token, params={"id[]": target}
    )
    assert status == 200, body
    [found] = body
    return dict(found)


async def home_texts(http: aiohttp.ClientSession, node: RunningNode, token: str) -> list[str]:
    status, body, _ = await api(http, node, "GET", "/api/v1/timelines/home", token)
    assert status == 200, body
    return [s["content"] for s in body]


async def deliveries(node: RunningNode) -> int:
    value = await node.ctx.store.pool.fetchval("SELECT count(*) FROM jobs WHERE kind = 'deliver'")
    return int(value)


async def test_a_member_follows_her_coop_and_reads_its_posts_at_home(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    token = await member_token(http, node, "alice")
    coop = await node.ctx.coop_actor()
    coop_id = await account_id(http, node, token, "coop")
    # When alice follows her own coop from her app
    status, body, _ = await api(http, node, "POST", f"/api/v1/accounts/{coop_id}/follow", token)
    # Then the follow is accepted at once, locally
    assert status == 200, body
    assert (body["following"], body["requested"]) == (True, False)
    assert await deliveries(node) == 0  # nothing went over HTTP
    status, coop_view, _ = await api(http, node, "GET", f"/api/v1/accounts/{coop_id}", token)
    assert coop_view["followers_count"] == 1
    status, followers, _ = await api(
        http, node, "GET", f"/api/v1/accounts/{coop_id}/followers", token
    )
    assert [f["acct"] for f in followers] == ["alice"]
    # And the coop's new posts (public and followers-only) reach her home timeline
    await publish.post_note(node.ctx, coop, "Bread on Friday")
    await publish.post_note(node.ctx, coop, "Members meeting", visibility="followers")
    assert await home_texts(http, node, token) == [
        "<p>Members meeting</p>",
        "<p>Bread on Friday</p>",
    ]
    assert await deliveries(node) == 0
    # When she unfollows
    status, body, _ = await api(http, node, "POST", f"/api/v1/accounts/{coop_id}/unfollow", token)
    assert status == 200, body
    assert (body["following"], body["requested"]) == (False, False)
    # Then the coop has no follower, and its posts leave her home timeline
    assert await node.ctx.store.count_follows(coop.id, "inbound") == 0
    await publish.post_note(node.ctx, coop, "Bread on Monday")
    assert await home_texts(http, node, token) == []
    assert await deliveries(node) == 0


async def test_members_follow_each_other_with_notifications(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    bob = await member_token(http, node, "bob")
    bob_id = await account_id(http, node, alice, "bob")
    alice_id = await account_id(http, node, bob, f"alice@{node.settings.domain}")
    status, body, _ = await api(http, node, "POST", f"/api/v1/accounts/{bob_id}/follow", alice)
    assert status == 200 and body["following"] is True, body
    # bob is notified of his new follower, and sees her as followed_by
    status, items, _ = await api(http, node, "GET", "/api/v1/notifications", bob)
    assert [(n["type"], n["account"]["acct"]) for n in items] == [("follow", "alice")]
    assert (await relationship(http, node, bob, alice_id))["followed_by"] is True
    # bob's followers-only post reaches alice's home, not the public timeline
    status, _, _ = await api(
        http,
        node,
        "POST",
        "/api/v1/statuses",
        bob,
        data={"status": "Only for followers", "visibility": "private"},
    )
    assert status == 200
    assert await home_texts(http, node, alice) == ["<p>Only for followers</p>"]
    status, public, _ = await api(http, node, "GET", "/api/v1/timelines/public", alice)
    assert public == []
    # Following twice changes nothing; following oneself is refused with a JSON error
    status, body, _ = await api(http, node, "POST", f"/api/v1/accounts/{bob_id}/follow", alice)
    assert status == 200 and body["following"] is True
    status, body, _ = await api(http, node, "POST", f"/api/v1/accounts/{alice_id}/follow", alice)
    assert status == 409 and "cannot follow itself" in body["error"], body
    # Unfollow: bob loses his follower
    status, body, _ = await api(http, node, "POST", f"/api/v1/accounts/{bob_id}/unfollow", alice)
    assert status == 200 and body["following"] is False
    assert (await relationship(http, node, bob, alice_id))["followed_by"] is False
    assert await home_texts(http, node, alice) == []
    assert await deliveries(node) == 0


async def test_a_coop_that_approves_followers_gets_a_request_from_its_member(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    node = await nodes("a", manually_approves_followers=True)
    token = await member_token(http, node, "alice")
    coop = await node.ctx.coop_actor()
    coop_id = await account_id(http, node, token, "coop")
    status, body, _ = await api(http, node, "POST", f"/api/v1/accounts/{coop_id}/follow", token)
    assert status == 200
    assert (body["following"], body["requested"]) == (False, True)
    await publish.post_note(node.ctx, coop, "Members only", visibility="followers")
    assert await home_texts(http, node, token) == []
    # When the coop's admin approves alice (by her local handle, as the CLI does)
    approved = await publish.approve(node.ctx, coop, f"alice@{node.settings.domain}")
    assert approved.handle == f"alice@{node.settings.domain.lower()}"
    # Then she follows, and reads the coop's followers-only post
    assert (await relationship(http, node, token, coop_id))["following"] is True
    assert await home_texts(http, node, token) == ["<p>Members only</p>"]
    # A rejected (removed) follower loses the follow on her side too
    await publish.reject(node.ctx, coop, f"@alice@{node.settings.domain}")
    rel = await relationship(http, node, token, coop_id)
    assert (rel["following"], rel["requested"]) == (False, False)
    assert await deliveries(node) == 0


async def test_the_coop_follows_a_member_by_local_handle(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    token = await member_token(http, node, "alice")
    coop = await node.ctx.coop_actor()
    record = await publish.follow(node.ctx, coop, f"alice@{node.settings.domain}")
    assert record.state == "accepted"
    assert record.remote_actor == f"{node.base_url}/users/alice"
    status, items, _ = await api(http, node, "GET", "/api/v1/notifications", token)
    assert [(n["type"], n["account"]["acct"]) for n in items] == [("follow", "coop")]
    # By URL, the same follow again is "already following"; unfollow by handle
    with pytest.raises(ActionError) as refused:
        await publish.follow(node.ctx, coop, f"{node.base_url}/users/alice")
    assert refused.value.reason == "already_following"
    removed = await publish.unfollow(node.ctx, coop, f"alice@{node.settings.domain}")
    assert removed.uri == f"{node.base_url}/users/alice"
    assert await node.ctx.store.count_follows(coop.id, "outbound") == 0
    status, items, _ = await api(http, node, "GET", "/api/v1/notifications", token)
    assert (status, items) == (200, [])
    assert await deliveries(node) == 0


async def test_a_members_favourite_and_boost_notify_the_author_on_the_same_node(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    bob = await member_token(http, node, "bob")
    status, post, _ = await api(
        http, node, "POST", "/api/v1/statuses", alice, data={"status": "Jam for sale"}
    )
    assert status == 200
    for action in ("favourite", "reblog"):
        status, body, _ = await api(
            http, node, "POST", f"/api/v1/statuses/{post['id']}/{action}", bob
        )
        assert status == 200, body
    status, items, _ = await api(http, node, "GET", "/api/v1/notifications", alice)
    assert [(n["type"], n["account"]["acct"], n["status"]["id"]) for n in items] == [
        ("reblog", "bob", post["id"]),
        ("favourite", "bob", post["id"]),
    ]
    # Her own favourite of her post notifies nobody; bob's unfavourite takes his back
    await api(http, node, "POST", f"/api/v1/statuses/{post['id']}/favourite", alice)
    await api(http, node, "POST", f"/api/v1/statuses/{post['id']}/unfavourite", bob)
    status, items, _ = await api(http, node, "GET", "/api/v1/notifications", alice)
    assert [(n["type"], n["account"]["acct"]) for n in items] == [("reblog", "bob")]
    assert await deliveries(node) == 0
