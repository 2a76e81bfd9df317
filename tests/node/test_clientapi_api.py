"""The client API's JSON, as an app reads it: statuses, paging, visibility,
notifications (a Mastodon peer's follow, mention, like and boost; a coop's
exchange), search, scopes and 401s.  Plain aiohttp against real nodes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp

from outbox import market
from tests.support.fakepeer import AS, FakePeer, PeerActor
from tests.support.mastoflow import add_member, api, member_token, password_token, register_app
from tests.support.nodes import NodeFactory, RunningNode, eventually
from tests.support.peerflow import mutual_follow, send_and_wait

STATUS_KEYS = {
    "id", "created_at", "edited_at", "in_reply_to_id", "in_reply_to_account_id", "sensitive",
    "spoiler_text", "visibility", "language", "uri", "url", "replies_count", "reblogs_count",
    "favourites_count", "favourited", "reblogged", "muted", "bookmarked", "content", "filtered",
    "reblog", "application", "account", "media_attachments", "mentions", "tags", "emojis",
    "card", "poll",
}  # fmt: skip
ACCOUNT_KEYS = {
    "id", "username", "acct", "display_name", "locked", "bot", "discoverable", "indexable",
    "group", "created_at", "note", "url", "uri", "avatar", "avatar_static", "header",
    "header_static", "followers_count", "following_count", "statuses_count", "last_status_at",
    "hide_collections", "noindex", "emojis", "roles", "fields",
}  # fmt: skip


async def post(http: aiohttp.ClientSession, node: RunningNode, token: str, **form: str) -> Any:
    status, body, _ = await api(http, node, "POST", "/api/v1/statuses", token, data=form)
    assert status == 200, body
    return body


async def peer_sends(peer: FakePeer, bob: PeerActor, node: RunningNode, kind: str, obj: Any) -> str:
    activity = {"@context": AS, "id": peer.new_id(bob), "type": kind, "actor": bob.id}
    return await send_and_wait(peer, bob, node, activity | {"object": obj})


async def test_notifications_of_a_peers_follow_mention_like_and_boost(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    token = await member_token(http, node, "alice")
    alice_url = f"{node.base_url}/users/alice"
    mine = await post(http, node, token, status="Our first harvest")
    peer = await FakePeer(style="mastodon").start()
    try:
        bob = peer.add_actor("bob")
        # Given bob (on a Mastodon server) follows alice: her own key signs the Accept
        follow = peer.follow(bob, alice_url)
        assert await send_and_wait(peer, bob, node, follow) == "accepted"
        [accept] = await peer.wait_for("Accept")
        assert (accept.verified, accept.signer) == (True, alice_url)
        # And mentions her in a reply full of unsafe HTML, then likes and boosts her post
        note = peer.note(
            bob,
            '<p>Nice <b>harvest</b> <a href="javascript:alert(1)" onclick="x()">see</a>'
            "<script>alert(2)</script></p>",
            cc=[bob.followers, alice_url],
            in_reply_to=mine["uri"],
        )
        note["tag"] = [{"type": "Mention", "href": alice_url, "name": "@alice"}]
        assert await send_and_wait(peer, bob, node, peer.create(bob, note)) == "stored"
        assert await peer_sends(peer, bob, node, "Like", mine["uri"]) == "like stored"
        assert await peer_sends(peer, bob, node, "Announce", mine["uri"]) == "announce stored"
    finally:
        await peer.stop()
    # When alice reads her notifications
    status, items, headers = await api(http, node, "GET", "/api/v1/notifications", token)
    # Then they are newest first, from bob, with the statuses they concern
    assert status == 200
    assert [n["type"] for n in items] == ["reblog", "favourite", "mention", "follow"]
    assert {n["account"]["acct"] for n in items} == {f"bob@{peer.domain}"}
    assert [n["status"]["id"] if n["status"] else None for n in items[:2]] == [mine["id"]] * 2
    mention = items[2]["status"]
    assert mention["content"] == (
        '<p>Nice <b>harvest</b> <a target="_blank" rel="nofollow noopener noreferrer">see</a></p>'
    )
    assert (mention["in_reply_to_id"], mention["visibility"]) == (mine["id"], "public")
    assert set(mention) == STATUS_KEYS and set(items[3]["account"]) == ACCOUNT_KEYS
    assert headers["Link"].count("rel=") == 2
    # And types[] and exclude_types[] filter them
    only = "/api/v1/notifications?types[]=mention&types[]=follow"
    _, filtered, _ = await api(http, node, "GET", only, token)
    assert [n["type"] for n in filtered] == ["mention", "follow"]
    _, rest, _ = await api(http, node, "GET", "/api/v1/notifications?exclude_types[]=reblog", token)
    assert [n["type"] for n in rest] == ["favourite", "mention", "follow"]
    # When she dismisses one and then clears them all, they are gone
    dismiss = f"/api/v1/notifications/{items[0]['id']}/dismiss"
    assert (await api(http, node, "POST", dismiss, token))[0] == 200
    _, after, _ = await api(http, node, "GET", "/api/v1/notifications", token)
    assert [n["type"] for n in after] == ["favourite", "mention", "follow"]
    assert (await api(http, node, "POST", "/api/v1/notifications/clear", token))[0] == 200
    assert (await api(http, node, "GET", "/api/v1/notifications", token))[1] == []


async def test_exchange_events_notify_the_coops_members(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    a = await nodes("a")
    b = await nodes("b")
    token = await member_token(http, b, "alice")
    await mutual_follow(a, b)
    coop_b = await b.ctx.coop_actor()
    # Given coop B's solidarity request, and coop A's pledge to it
    create = await market.publish_proposal(
        b.ctx,
        coop_b,
        {"kind": "need", "title": "Flour for the bakery", "quantity": "100", "unit": "kilogram"},
    )
    need = create["object"]["id"]

    async def known_at_a() -> bool:
        return await a.ctx.store.get_proposal(need) is not None

    await eventually(known_at_a, message="the need at A")
    await market.respond(a.ctx, await a.ctx.coop_actor(), need, quantity=Decimal(20))

    async def exchange_at_b() -> Any:
        return (await b.ctx.store.list_exchanges()) or None

    [exchange] = await eventually(exchange_at_b, message="the offer at B")
    await market.accept(b.ctx, coop_b, exchange.id)
    # When alice, a member of B, reads her notifications
    _, items, _ = await api(http, b, "GET", "/api/v1/notifications", token)
    # Then the offer and its acceptance are there, newest first, with the need
    assert [n["type"] for n in items] == ["coopfed_exchange", "coopfed_exchange"]
    steps = [n["coopfed_exchange"] for n in items]
    assert [(s["event"], s["to_state"]) for s in steps] == [
        ("accept", "accepted"),
        ("offer", "offered"),
    ]
    assert steps[1] | {"at": ""} == {
        "exchange_id": str(exchange.id),
        "event": "offer",
        "from_state": None,
        "to_state": "offered",
        "state": "accepted",
        "proposal": need,
        "proposer": b.actor_url,
        "responder": a.actor_url,
        "pledge": False,
        "quantity": "20",
        "unit": "kilogram",
        "at": "",
    }
    assert [n["account"]["acct"] for n in items] == ["coop", a.handle]
    assert items[1]["status"]["uri"] == need and "NEED:" in items[1]["status"]["content"]
    # And an app that asks only for the types it knows does not get them
    known = "/api/v1/notifications?types[]=follow&types[]=mention&types[]=favourite"
    assert (await api(http, b, "GET", known, token))[1] == []


async def test_home_timeline_pages_with_mastodons_link_header(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    token = await member_token(http, node, "alice")
    ids = [(await post(http, node, token, status=f"post {i}"))["id"] for i in range(5)]
    home = "/api/v1/timelines/home"
    base = f"{node.base_url}{home}"
    # When she asks for two statuses
    status, page, headers = await api(http, node, "GET", f"{home}?limit=2", token)
    # Then she gets the newest two, and links to the older and the newer pages
    assert status == 200 and [s["id"] for s in page] == [ids[4], ids[3]]
    assert headers["Link"] == (
        f'<{base}?limit=2&max_id={ids[3]}>; rel="next", <{base}?limit=2&min_id={ids[4]}>; '
        'rel="prev"'
    )
    # And max_id, since_id and min_id select as Mastodon's do
    _, older, _ = await api(http, node, "GET", f"{home}?limit=2&max_id={ids[3]}", token)
    assert [s["id"] for s in older] == [ids[2], ids[1]]
    _, newest, _ = await api(http, node, "GET", f"{home}?limit=2&since_id={ids[0]}", token)
    assert [s["id"] for s in newest] == [ids[4], ids[3]]
    _, next_up, _ = await api(http, node, "GET", f"{home}?limit=2&min_id={ids[0]}", token)
    assert [s["id"] for s in next_up] == [ids[2], ids[1]]
    # And a page past the end is empty, without a Link header
    _, empty, headers = await api(http, node, "GET", f"{home}?max_id={ids[0]}", token)
    assert empty == [] and "Link" not in headers


async def test_followers_only_and_direct_statuses_stay_private(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    carol = await member_token(http, node, "carol")
    public = await post(http, node, alice, status="hello all")
    private = await post(http, node, alice, status="followers only", visibility="private")
    direct = await post(http, node, alice, status="@carol just you", visibility="direct")
    secret = await post(http, node, alice, status="nobody else", visibility="direct")
    assert [s["visibility"] for s in (public, private, direct)] == ["public", "private", "direct"]
    assert [m["acct"] for m in direct["mentions"]] == ["carol"]
    # Then the public timeline, anonymous or not, has only the public status
    for token in (None, carol):
        _, timeline, _ = await api(http, node, "GET", "/api/v1/timelines/public", token)
        assert [s["id"] for s in timeline] == [public["id"]]
    # And carol (not a follower) sees the direct message to her, not the others
    seen = {
        s["id"]: (await api(http, node, "GET", f"/api/v1/statuses/{s['id']}", carol))[0]
        for s in (public, private, direct, secret)
    }
    assert seen == {public["id"]: 200, private["id"]: 404, direct["id"]: 200, secret["id"]: 404}
    # And an anonymous reader sees the public one, unliked
    status, anonymous, _ = await api(http, node, "GET", f"/api/v1/statuses/{public['id']}")
    assert (status, anonymous["favourited"], anonymous["account"]["acct"]) == (200, False, "alice")


async def test_delete_answers_the_text_and_only_the_author_may(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    alice = await member_token(http, node, "alice")
    carol = await member_token(http, node, "carol")
    mine = await post(http, node, alice, status="a typo\n\nsecond line")
    path = f"/api/v1/statuses/{mine['id']}"
    assert (await api(http, node, "DELETE", path, carol))[0] == 404
    status, deleted, _ = await api(http, node, "DELETE", path, alice)
    assert (status, deleted["id"], deleted["text"]) == (200, mine["id"], "a typo\nsecond line")
    assert (await api(http, node, "GET", path, alice))[0] == 404


async def test_tokens_scopes_and_app_tokens(node: RunningNode, http: aiohttp.ClientSession) -> None:
    await add_member(node, "alice")
    app = await register_app(http, node)
    read_only = await password_token(http, node, app, scope="read")
    # Without a token, or with a wrong one: 401 and Mastodon's error
    for token in (None, "wrong"):
        status, body, headers = await api(http, node, "GET", "/api/v1/timelines/home", token)
        assert (status, body) == (401, {"error": "The access token is invalid"})
        assert headers["WWW-Authenticate"].startswith("Bearer")
    # A read token cannot post
    status, body, _ = await api(
        http, node, "POST", "/api/v1/statuses", read_only, data={"status": "hi"}
    )
    assert (status, body) == (403, {"error": "This action is outside the authorized scopes"})
    # An app token (client_credentials) identifies the app, and no user
    async with http.post(
        f"{node.base_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    ) as answer:
        assert answer.status == 200
        app_token = (await answer.json())["access_token"]
    status, verified, _ = await api(http, node, "GET", "/api/v1/apps/verify_credentials", app_token)
    assert (status, verified["name"], verified["scopes"]) == (
        200,
        "Test App",
        ["read", "write", "follow", "push"],
    )
    status, body, _ = await api(http, node, "GET", "/api/v1/accounts/verify_credentials", app_token)
    assert (status, body) == (422, {"error": "This method requires an authenticated user"})


async def test_search_lookup_and_relationships(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    token = await member_token(http, node, "alice")
    peer = await FakePeer(style="mastodon").start()
    try:
        peer.add_actor("bob")
        handle = f"bob@{peer.domain}"
        # Anonymous searches never look a remote handle up
        _, anonymous, _ = await api(http, node, "GET", f"/api/v2/search?q=@{handle}&resolve=1")
        assert anonymous == {"accounts": [], "statuses": [], "hashtags": []}
        # A member's search with resolve finds bob by WebFinger
        _, found, _ = await api(
            http, node, "GET", f"/api/v2/search?q=@{handle}&resolve=true", token
        )
        [bob] = found["accounts"]
        assert (bob["acct"], bob["username"], bob["uri"]) == (handle, "bob", peer.actors["bob"].id)
        # After which lookup knows him, and the relationship is none yet
        _, looked_up, _ = await api(http, node, "GET", f"/api/v1/accounts/lookup?acct={handle}")
        assert looked_up["id"] == bob["id"]
        path = f"/api/v1/accounts/relationships?id[]={bob['id']}"
        _, [relation], _ = await api(http, node, "GET", path, token)
        assert (relation["id"], relation["following"], relation["requested"]) == (
            bob["id"],
            False,
            False,
        )
        # When she follows him, the request is pending until he accepts
        status, relation, _ = await api(
            http, node, "POST", f"/api/v1/accounts/{bob['id']}/follow", token
        )
        assert (status, relation["following"], relation["requested"]) == (200, False, True)
        await peer.wait_for("Follow")
        # And when she unfollows, the request is taken back
        status, relation, _ = await api(
            http, node, "POST", f"/api/v1/accounts/{bob['id']}/unfollow", token
        )
        assert (status, relation["following"], relation["requested"]) == (200, False, False)
        [undo] = await peer.wait_for("Undo")
        assert undo.body["object"]["type"] == "Follow"
    finally:
        await peer.stop()
    # And local accounts are found by name, hashtags by #word
    _, local, _ = await api(http, node, "GET", "/api/v2/search?q=ali", token)
    assert [a["acct"] for a in local["accounts"]] == ["alice"]
    _, tags, _ = await api(http, node, "GET", "/api/v2/search?q=%23bread&type=hashtags", token)
    assert tags["hashtags"] == [
        {"name": "bread", "url": f"{node.base_url}/tags/bread", "history": [], "following": False}
    ]


async def test_a_members_actor_is_a_person_with_its_own_key(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    await add_member(node, "alice", name="Alice")
    accept = {"Accept": "application/activity+json"}
    async with http.get(f"{node.base_url}/users/alice", headers=accept) as answer:
        person = await answer.json(content_type=None)
    coop = await node.ctx.coop_actor()
    assert (person["type"], person["preferredUsername"], person["name"]) == (
        "Person",
        "alice",
        "Alice",
    )
    assert person["publicKey"]["publicKeyPem"] != coop.public_key_pem
    resource = f"acct:alice@{node.settings.domain}"
    async with http.get(
        f"{node.base_url}/.well-known/webfinger", params={"resource": resource}
    ) as answer:
        assert (await answer.json(content_type=None))["subject"] == resource
    # And the public timeline shows a member's public post to anyone
    token = await password_token(http, node, await register_app(http, node))
    await post(http, node, token, status="hello")
    _, timeline, _ = await api(http, node, "GET", "/api/v1/timelines/public?local=true")
    assert [s["account"]["acct"] for s in timeline] == ["alice"]


async def test_the_hashtag_timeline_holds_the_posts_of_that_tag(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    # Given a member who posts once with #Bread and once without a tag
    await add_member(node, "alice", name="Alice")
    token = await password_token(http, node, await register_app(http, node))
    tagged = await post(http, node, token, status="Fresh loaves #Bread")
    await post(http, node, token, status="No tag here")
    # When anyone reads the timeline of #bread, and of another tag
    _, bread, _ = await api(http, node, "GET", "/api/v1/timelines/tag/bread")
    _, rye, _ = await api(http, node, "GET", "/api/v1/timelines/tag/rye")
    # Then only the tagged post is on the first, nothing on the second
    assert [s["id"] for s in bread] == [tagged["id"]]
    assert rye == []
    # And the public timeline has both, but none when only media is asked for
    _, public, _ = await api(http, node, "GET", "/api/v1/timelines/public")
    assert len(public) == 2
    _, media, _ = await api(http, node, "GET", "/api/v1/timelines/public?only_media=true")
    assert media == []
