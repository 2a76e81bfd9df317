"""Polls: a peer's Question shown as a Mastodon poll, a member's vote sent to the
poll's author only (signed by the member), the refusals, and the author's Update
of the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.mastoflow import api, member_token
from tests.support.nodes import RunningNode
from tests.support.peerflow import send_and_wait


def question(
    peer: FakePeer, bob: PeerActor, alice_url: str, *, key: str = "oneOf", ends: timedelta
) -> dict[str, Any]:
    note = peer.note(bob, "<p>Which day for the market?</p>", cc=[bob.followers, alice_url])
    end = (datetime.now(UTC) + ends).isoformat(timespec="seconds").replace("+00:00", "Z")
    options = [
        {"type": "Note", "name": name, "replies": {"type": "Collection", "totalItems": n}}
        for name, n in (("Friday", 3), ("Saturday", 1), ("Sunday", 0))
    ]
    return note | {"type": "Question", key: options, "endTime": end, "votersCount": 4}


async def votes_of(node: RunningNode) -> int:
    return int(await node.ctx.store.pool.fetchval("SELECT count(*) FROM poll_votes"))


async def test_a_member_votes_in_a_peers_poll(
    node: RunningNode, http: aiohttp.ClientSession, peer: FakePeer
) -> None:
    token = await member_token(http, node, "alice")
    alice_url = f"{node.base_url}/users/alice"
    bob = peer.add_actor("bob")
    poll_doc = question(peer, bob, alice_url, ends=timedelta(days=1))
    assert await send_and_wait(peer, bob, node, peer.create(bob, poll_doc)) == "stored"
    status, found, _ = await api(
        http, node, "GET", "/api/v2/search", token, params={"q": "market", "type": "statuses"}
    )
    [shown] = found["statuses"]
    # The status carries Mastodon's poll entity
    poll = shown["poll"]
    assert poll["id"] == shown["id"]
    assert (poll["multiple"], poll["expired"], poll["voted"], poll["own_votes"]) == (
        False,
        False,
        False,
        [],
    )
    assert [(o["title"], o["votes_count"]) for o in poll["options"]] == [
        ("Friday", 3),
        ("Saturday", 1),
        ("Sunday", 0),
    ]
    assert (poll["votes_count"], poll["voters_count"]) == (4, 4)
    status, same, _ = await api(http, node, "GET", f"/api/v1/polls/{poll['id']}", token)
    assert (status, same) == (200, poll)
    # Bad choices are refused with a JSON error and record nothing
    for choices in (["7"], ["0", "1"], ["x"], []):
        status, body, _ = await api(
            http,
            node,
            "POST",
            f"/api/v1/polls/{poll['id']}/votes",
            token,
            json={"choices": choices},
        )
        assert status == 422 and body["error"].startswith("Validation failed"), (choices, body)
    assert await votes_of(node) == 0
    # When alice votes for Saturday
    status, voted, _ = await api(
        http, node, "POST", f"/api/v1/polls/{poll['id']}/votes", token, data={"choices[]": "1"}
    )
    assert status == 200, voted
    assert (voted["voted"], voted["own_votes"]) == (True, [1])
    # Then bob's server gets a Create of a Note named "Saturday", in reply to the
    # Question, addressed to bob only and signed by alice
    [create] = await peer.wait_for("Create")
    assert (create.verified, create.signer) == (True, alice_url)
    vote = create.body["object"]
    assert (vote["type"], vote["name"], vote["inReplyTo"]) == ("Note", "Saturday", poll_doc["id"])
    assert (vote["to"], create.body["to"]) == ([bob.id], [bob.id])
    assert "content" not in vote
    # The vote is not a status: no timeline shows it
    for path in ("/api/v1/timelines/home", "/api/v1/timelines/public"):
        status, items, _ = await api(http, node, "GET", path, token)
        assert all(s["uri"] != vote["id"] for s in items)
    # A second vote is refused
    status, body, _ = await api(
        http, node, "POST", f"/api/v1/polls/{poll['id']}/votes", token, data={"choices[]": "0"}
    )
    assert status == 422 and "already voted" in body["error"]
    assert await votes_of(node) == 1
    # When bob's server updates the counts (no newer `updated`: not an edit)
    counted = poll_doc | {
        "oneOf": [
            {"type": "Note", "name": n, "replies": {"type": "Collection", "totalItems": c}}
            for n, c in (("Friday", 3), ("Saturday", 2), ("Sunday", 0))
        ],
        "votersCount": 5,
    }
    update = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": peer.new_id(bob),
        "type": "Update",
        "actor": bob.id,
        "object": counted,
    }
    assert await send_and_wait(peer, bob, node, update) == "poll counts updated"
    status, fresh, _ = await api(http, node, "GET", f"/api/v1/polls/{poll['id']}", token)
    assert [o["votes_count"] for o in fresh["options"]] == [3, 2, 0]
    assert (fresh["votes_count"], fresh["voters_count"], fresh["own_votes"]) == (5, 5, [1])


async def test_an_ended_poll_and_a_multiple_choice_poll(
    node: RunningNode, http: aiohttp.ClientSession, peer: FakePeer
) -> None:
    token = await member_token(http, node, "alice")
    alice_url = f"{node.base_url}/users/alice"
    bob = peer.add_actor("bob")
    ended = question(peer, bob, alice_url, ends=timedelta(minutes=-5))
    several = question(peer, bob, alice_url, key="anyOf", ends=timedelta(hours=1))
    several["content"] = "<p>Which days can you help?</p>"
    for doc in (ended, several):
        assert await send_and_wait(peer, bob, node, peer.create(bob, doc)) == "stored"
    status, items, _ = await api(
        http, node, "GET", "/api/v1/timelines/public", token, params={"local": "false"}
    )
    polls = {s["uri"]: s["poll"] for s in items}
    old, multi = polls[ended["id"]], polls[several["id"]]
    assert old["expired"] is True and multi["multiple"] is True
    status, body, _ = await api(
        http, node, "POST", f"/api/v1/polls/{old['id']}/votes", token, data={"choices[]": "0"}
    )
    assert status == 422 and "ended" in body["error"], body
    status, body, _ = await api(
        http, node, "POST", f"/api/v1/polls/{multi['id']}/votes", token, json={"choices": [0, 2]}
    )
    assert status == 200 and body["own_votes"] == [0, 2], body
    creates = await peer.wait_for("Create", count=2)
    assert sorted(c.body["object"]["name"] for c in creates) == ["Friday", "Sunday"]
    # A status that is not a poll has no poll endpoint
    status, body, _ = await api(http, node, "GET", "/api/v1/polls/999999", token)
    assert status == 404
