"""A member uses its coop's node from a real Mastodon client (Mastodon.py 2.3.3).

Against a Fedify peer (tests/interop/fedify_peer.py), the member posts a photo with
alt text that Fedify reads as an attachment with that description, and sees a
Fedify reply threaded under its parent, which her node fetched from Fedify.

Two in-process nodes: coop A publishes offers; B is the member's own coop.  The
member registers an app, logs in through the authorization page (the
out-of-band code, as a new user of a desktop app does), finds coop A by its
handle, follows it, sees A's new offer in the home timeline, replies to it,
favourites and boosts it; the reply, the like and the boost reach A.  Wrong
and revoked tokens get 401 (``MastodonUnauthorizedError``).

Mastodon.py is synchronous: every call runs in a thread so the nodes' event loop
keeps serving.  Over plain http its OAuth calls need ``allow_http=True``.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import aiohttp
import pytest
from mastodon import Mastodon, MastodonUnauthorizedError
from PIL import Image

from outbox import market
from tests.interop.fedify_peer import INSTALL_TIMEOUT, start_fedify_peer
from tests.support.mastoflow import PASSWORD, add_member, follow_accepted
from tests.support.nodes import NodeFactory, RunningNode, eventually

CODE_RE = re.compile(r'id="code" readonly size="48" value="([^"]+)"')


async def sign_in(http: aiohttp.ClientSession, url: str, username: str, password: str) -> str:
    """What the member does in a browser: open the app's URL, sign in, copy the code."""
    async with http.get(url) as page:
        assert page.status == 200
        form = await page.text()
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert fields["response_type"] == "code"
    fields |= {"username": username, "password": password}
    async with http.post(url.split("?")[0], data=fields, allow_redirects=False) as answer:
        assert answer.status == 200, await answer.text()
        match = CODE_RE.search(await answer.text())
    assert match is not None
    return match[1]


async def logged_in_client(http: aiohttp.ClientSession, node: RunningNode) -> Mastodon:
    client_id, secret = await asyncio.to_thread(
        Mastodon.create_app, "coopfed test app", api_base_url=node.base_url
    )
    client = Mastodon(client_id=client_id, client_secret=secret, api_base_url=node.base_url)
    url = await asyncio.to_thread(client.auth_request_url, allow_http=True)
    code = await sign_in(http, url, "alice", PASSWORD)
    await asyncio.to_thread(client.log_in, code=code, allow_http=True)
    return client


async def test_member_follows_a_coop_reads_its_offer_and_replies(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    a = await nodes("a")
    b = await nodes("b")
    # Given alice, a member of coop B, logged in from a Mastodon app
    alice = await add_member(b, "alice", name="Alice")
    masto = await logged_in_client(http, b)
    me = await asyncio.to_thread(masto.account_verify_credentials)
    assert (me.username, me.acct, me.display_name) == ("alice", "alice", "Alice")

    # When she searches coop A by its handle and follows it
    found = await asyncio.to_thread(masto.search, f"@{a.handle}", resolve=True)
    assert [acc.acct for acc in found.accounts] == [a.handle]
    coop_a = found.accounts[0]
    relation = await asyncio.to_thread(masto.account_follow, coop_a.id)
    assert relation.following or relation.requested
    # Then A accepts, and the relationship says so
    await follow_accepted(b, alice, a.actor_url)
    [relation] = await asyncio.to_thread(masto.account_relationships, coop_a.id)
    assert (relation.following, relation.requested) == (True, False)

    # When A publishes an offer
    coop = await a.ctx.coop_actor()
    create = await market.publish_proposal(
        a.ctx,
        coop,
        {"kind": "offer", "title": "Fresh sourdough bread", "quantity": "40", "price": "4.50"},
    )
    offer_uri = create["object"]["id"]

    # Then it appears in her home timeline, its details in the status text
    async def offer_in_home() -> Any:
        timeline = await asyncio.to_thread(masto.timeline_home)
        return next((s for s in timeline if s.uri == offer_uri), None)

    offer = await eventually(offer_in_home, message="the offer in the home timeline")
    assert offer.account.acct == a.handle
    assert "OFFER:</strong> Fresh sourdough bread" in offer.content
    assert "<li>Quantity: 40</li><li>Price: €4.50</li>" in offer.content

    # When she replies, favourites and boosts it
    reply = await asyncio.to_thread(masto.status_reply, offer, "We would take ten loaves.")
    assert reply.in_reply_to_id == offer.id
    assert [m.acct for m in reply.mentions] == [a.handle]
    liked = await asyncio.to_thread(masto.status_favourite, offer.id)
    assert (liked.favourited, liked.favourites_count) == (True, 1)
    boost = await asyncio.to_thread(masto.status_reblog, offer.id)
    assert (boost.reblog.id, boost.reblog.reblogged) == (offer.id, True)

    # Then the reply, the like and the boost reach coop A
    alice_url = f"{b.base_url}/users/alice"

    async def reply_at_a() -> Any:
        return await a.ctx.store.get_object(reply.uri)

    stored = await eventually(reply_at_a, message="the reply stored at A")
    assert (stored.attributed_to, stored.in_reply_to) == (alice_url, offer_uri)
    assert "We would take ten loaves." in stored.body["content"]

    async def reactions_at_a() -> dict[str, int]:
        counts = await a.ctx.store.count_interactions(offer_uri)
        return counts if counts == {"Like": 1, "Announce": 1} else {}

    await eventually(reactions_at_a, message="the like and the boost at A")
    # And her thread shows the reply under the offer
    thread = await asyncio.to_thread(masto.status_context, offer.id)
    assert [s.id for s in thread.descendants] == [reply.id]


async def test_wrong_and_revoked_tokens_get_401(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    b = await nodes("b")
    await add_member(b, "alice")
    masto = await logged_in_client(http, b)
    token = masto.access_token
    # Given a token that works
    assert (await asyncio.to_thread(masto.account_verify_credentials)).username == "alice"
    # When a client sends a wrong token, it is refused
    wrong = Mastodon(access_token="not-a-token", api_base_url=b.base_url)
    with pytest.raises(MastodonUnauthorizedError):
        await asyncio.to_thread(wrong.account_verify_credentials)
    # When the app revokes its token, that token is refused from then on
    await asyncio.to_thread(masto.revoke_access_token, allow_http=True)
    revoked = Mastodon(access_token=token, api_base_url=b.base_url)
    with pytest.raises(MastodonUnauthorizedError):
        await asyncio.to_thread(revoked.timeline_home)
    # And the answer is Mastodon's
    async with http.get(
        f"{b.base_url}/api/v1/timelines/home", headers={"Authorization": f"Bearer {token}"}
    ) as answer:
        assert answer.status == 401
        assert await answer.json() == {"error": "The access token is invalid"}


async def test_password_login_and_paging_with_the_link_header(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    b = await nodes("b")
    await add_member(b, "alice")
    client_id, secret = await asyncio.to_thread(
        Mastodon.create_app, "coopfed test app", api_base_url=b.base_url
    )
    masto = Mastodon(client_id=client_id, client_secret=secret, api_base_url=b.base_url)
    # Given a login with the password grant (Mastodon.py's log_in(username, password))
    await asyncio.to_thread(masto.log_in, "alice", PASSWORD, allow_http=True)
    # And five posts of hers
    posted = [await asyncio.to_thread(masto.status_post, f"post {i}") for i in range(5)]
    # When she reads her home timeline two at a time, following the Link header
    first = await asyncio.to_thread(masto.timeline_home, limit=2)
    second = await asyncio.to_thread(masto.fetch_next, first)
    third = await asyncio.to_thread(masto.fetch_next, second)
    # Then the pages are the posts, newest first, without gaps or repeats
    pages = [[s.content for s in page] for page in (first, second, third)]
    assert pages == [
        ["<p>post 4</p>", "<p>post 3</p>"],
        ["<p>post 2</p>", "<p>post 1</p>"],
        ["<p>post 0</p>"],
    ]
    # And the previous page of the second one is the first one
    back = await asyncio.to_thread(masto.fetch_previous, second)
    assert [s.id for s in back] == [s.id for s in first]
    assert [s.id for s in first] == [posted[4].id, posted[3].id]
    # And her account's statuses are the same posts
    me = await asyncio.to_thread(masto.me)
    mine = await asyncio.to_thread(masto.account_statuses, me.id, limit=40)
    assert [s.id for s in mine] == [p.id for p in reversed(posted)]
    # And the instance tells Mastodon.py which API it follows
    assert await asyncio.to_thread(masto.retrieve_mastodon_version) == "4.2.0"
    info = await asyncio.to_thread(masto.instance)
    assert (info.domain, info.configuration.statuses.max_characters) == (b.settings.domain, 5000)
    v1 = await asyncio.to_thread(masto.instance_v1)
    assert (v1.uri, v1.stats.user_count, v1.contact_account.acct) == (b.settings.domain, 2, "coop")


def photo() -> io.BytesIO:
    out = io.BytesIO()
    Image.new("RGB", (900, 600), (120, 40, 90)).save(out, "PNG")
    out.seek(0)
    return out


@pytest.mark.timeout(INSTALL_TIMEOUT + 90)
async def test_photo_with_alt_text_reaches_fedify_and_its_replies_are_threaded(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    b = await nodes("b")
    await add_member(b, "alice", name="Alice")
    alice_url = f"{b.base_url}/users/alice"
    masto = await logged_in_client(http, b)
    peer = await start_fedify_peer(ready_timeout=30)
    try:
        # Given a post of a Fedify user, sent to his followers while alice was none
        parent = await peer.post("<p>Who brings bread on Saturday?</p>")
        assert parent["followers"] == 0
        # And the Fedify user follows alice, and alice follows him
        await peer.follow(alice_url)
        await peer.wait_following(alice_url)
        found = await asyncio.to_thread(masto.search, f"@peer@{peer.origin[7:]}", resolve=True)
        [fedify_user] = found.accounts
        await asyncio.to_thread(masto.account_follow, fedify_user.id)
        member = await b.ctx.store.get_local_actor("alice")
        assert member is not None
        await follow_accepted(b, member, peer.actor_url)

        # When she posts a photo with alt text, as an app does (v2 upload, then status)
        media = await asyncio.to_thread(
            masto.media_post,
            photo(),
            mime_type="image/png",
            file_name="jam.png",
            description="Six jars of plum jam on a shelf",
            focus=(0.25, -0.5),
        )
        assert (media.type, media.meta.focus.x, media.meta.focus.y) == ("image", 0.25, -0.5)
        status = await asyncio.to_thread(
            masto.status_post, "Plum jam for the swap", media_ids=[media]
        )
        assert [m.description for m in status.media_attachments] == [
            "Six jars of plum jam on a shelf"
        ]

        # Then the Fedify follower receives it as an attachment with that description
        create = await peer.wait_for_activity(
            "Create", actor=alice_url, where=lambda a: a["object_id"] == status.uri
        )
        assert create["attachments"] == [
            {
                "type": "Document",
                "mediaType": "image/jpeg",
                "url": media.url,
                "name": "Six jars of plum jam on a shelf",
                "width": 900,
                "height": 600,
            }
        ]
        async with http.get(media.url) as served:
            assert (served.status, served.headers["Content-Type"]) == (200, "image/jpeg")

        # When the Fedify user answers his post, which never reached alice's node
        assert await b.ctx.store.get_object(parent["note_id"]) is None
        reply = await peer.post(
            "<p>And jam, @alice?</p>", in_reply_to=parent["note_id"], mention=alice_url
        )

        # Then her home timeline shows the reply threaded under the fetched parent
        async def reply_in_home() -> Any:
            timeline = await asyncio.to_thread(masto.timeline_home)
            return next((s for s in timeline if s.uri == reply["note_id"]), None)

        shown = await eventually(reply_in_home, message="the Fedify reply in the home timeline")
        assert shown.in_reply_to_id is not None
        assert shown.in_reply_to_account_id == fedify_user.id
        above = await asyncio.to_thread(masto.status, shown.in_reply_to_id)
        assert (above.uri, above.content) == (
            parent["note_id"],
            "<p>Who brings bread on Saturday?</p>",
        )
        thread = await asyncio.to_thread(masto.status_context, shown.id)
        assert [s.uri for s in thread.ancestors] == [parent["note_id"]]
        # And the mention in Fedify's single (compacted) tag is a notification
        assert not isinstance(reply["json"]["object"]["tag"], list)
        notes = await asyncio.to_thread(masto.notifications, types=["mention"])
        assert [n.status.uri for n in notes] == [reply["note_id"]]
    finally:
        await peer.stop()
