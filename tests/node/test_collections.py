"""Followers, following and outbox as paged OrderedCollections."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from federation.jsonld import AP_CONTENT_TYPE, AS_PUBLIC
from federation.store import RemoteActor
from outbox.publish import post_note
from tests.support.nodes import RunningNode

MAX_PAGES = 20  # bound on every walk below


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, str, dict[str, Any]]:
    async with http.get(url, headers={"Accept": AP_CONTENT_TYPE}) as response:
        return response.status, response.content_type, await response.json(content_type=None)


async def get_ok(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    status, content_type, body = await get_json(http, url)
    assert (status, content_type) == (200, AP_CONTENT_TYPE), (url, body)
    return body


def remote_actor(n: int) -> RemoteActor:
    uri = f"https://peer{n % 7}.example/users/u{n}"
    return RemoteActor(
        uri=uri,
        host=f"peer{n % 7}.example",
        type="Person",
        username=f"u{n}",
        name=f"User {n}",
        inbox=f"{uri}/inbox",
        shared_inbox=f"https://peer{n % 7}.example/inbox",
        followers_url=f"{uri}/followers",
        key_id=f"{uri}#main-key",
        public_key_pem=None,
        document={"id": uri, "type": "Person"},
        fetched_at=datetime.now(UTC),
        gone=False,
    )


async def add_followers(node: RunningNode, count: int, *, state: str = "accepted") -> list[str]:
    coop = await node.ctx.coop_actor()
    uris = []
    for n in range(count):
        actor = remote_actor(n if state == "accepted" else 10_000 + n)
        await node.ctx.store.upsert_remote_actor(actor)
        await node.ctx.store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=actor.uri,
            direction="inbound",
            state=state,
            activity_id=f"{actor.uri}/follows/1",
        )
        uris.append(actor.uri)
    return uris


async def walk(http: aiohttp.ClientSession, collection_url: str) -> list[dict[str, Any]]:
    """Every page of a collection, from ``first`` along ``next``."""
    collection = await get_ok(http, collection_url)
    pages: list[dict[str, Any]] = []
    url: str | None = collection["first"]
    while url is not None:
        assert len(pages) < MAX_PAGES, "the collection does not end"
        page = await get_ok(http, url)
        assert page["id"] == url
        assert page["type"] == "OrderedCollectionPage"
        assert page["partOf"] == collection_url
        pages.append(page)
        url = page.get("next")
    return pages


# -- followers and following ------------------------------------------------------


async def test_followers_collection_pages(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given 120 accepted followers and 2 pending requests
    followers = await add_followers(node, 120)
    await add_followers(node, 2, state="pending")
    url = f"{node.base_url}/users/coop/followers"
    # When the collection is fetched
    collection = await get_ok(http, url)
    # Then it counts the accepted ones and points to its first page
    assert collection["id"] == url
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == 120
    assert collection["first"] == f"{url}?page=1"
    assert "orderedItems" not in collection
    # And walking the pages yields 50 + 50 + 20 distinct followers, linked both ways
    pages = await walk(http, url)
    assert [len(p["orderedItems"]) for p in pages] == [50, 50, 20]
    assert [p.get("prev") for p in pages] == [None, f"{url}?page=1", f"{url}?page=2"]
    assert [p.get("next") for p in pages] == [f"{url}?page=2", f"{url}?page=3", None]
    items = [item for p in pages for item in p["orderedItems"]]
    assert len(items) == len(set(items)) == 120
    assert set(items) == set(followers)


async def test_following_collection(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given the coop follows one actor (accepted) and asked another (pending)
    coop = await node.ctx.coop_actor()
    for n, state in ((1, "accepted"), (2, "pending")):
        actor = remote_actor(n)
        await node.ctx.store.upsert_remote_actor(actor)
        await node.ctx.store.upsert_follow(
            local_actor_id=coop.id,
            remote_actor=actor.uri,
            direction="outbound",
            state=state,
            activity_id=f"{node.base_url}/activities/f{n}",
        )
    url = f"{node.base_url}/users/coop/following"
    # When the following collection is read
    collection = await get_ok(http, url)
    pages = await walk(http, url)
    # Then only the accepted follow is listed, on one page
    assert collection["totalItems"] == 1
    assert [p["orderedItems"] for p in pages] == [[remote_actor(1).uri]]
    assert "next" not in pages[0] and "prev" not in pages[0]
    # And the followers collection is still empty
    followers = await get_ok(http, f"{node.base_url}/users/coop/followers")
    assert followers["totalItems"] == 0
    assert (await walk(http, f"{node.base_url}/users/coop/followers"))[0]["orderedItems"] == []


async def test_page_past_the_end_is_empty(node: RunningNode, http: aiohttp.ClientSession) -> None:
    await add_followers(node, 3)
    url = f"{node.base_url}/users/coop/followers"
    page = await get_ok(http, f"{url}?page=5")
    assert page["orderedItems"] == []
    assert "next" not in page
    assert page["prev"] == f"{url}?page=4"


# -- outbox ------------------------------------------------------------------------


async def test_outbox_lists_public_creates_newest_first(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    # Given three public notes and one for followers only
    coop = await node.ctx.coop_actor()
    creates = []
    for text in ("first", "second"):
        creates.append(await post_note(node.ctx, coop, text))
    private = await post_note(node.ctx, coop, "members only", visibility="followers")
    creates.append(await post_note(node.ctx, coop, "third"))
    url = f"{node.base_url}/users/coop/outbox"
    # When the outbox is read
    collection = await get_ok(http, url)
    pages = await walk(http, url)
    # Then it counts and lists the three public Creates, newest first
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == 3
    assert len(pages) == 1
    items = pages[0]["orderedItems"]
    assert [i["id"] for i in items] == [c["id"] for c in reversed(creates)]
    assert [i["type"] for i in items] == ["Create"] * 3
    assert [i["object"]["content"] for i in items] == [
        "<p>third</p>",
        "<p>second</p>",
        "<p>first</p>",
    ]
    assert all(AS_PUBLIC in i["to"] for i in items)
    # Items are embedded without their own @context (the page carries it)
    assert all("@context" not in i for i in items)
    assert "@context" in pages[0]
    # And the followers-only post is nowhere in it
    assert private["id"] not in [i["id"] for i in items]
    assert "members only" not in str(pages)


async def test_outbox_pages(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given 55 listed activities and 5 unlisted ones, recorded directly
    coop = await node.ctx.coop_actor()
    for n in range(60):
        activity_id = f"{node.base_url}/activities/a{n}"
        await node.ctx.store.record_outbox_activity(
            activity_id=activity_id,
            local_actor_id=coop.id,
            type="Create",
            object_id=None,
            body={"id": activity_id, "type": "Create", "n": n},
            listed=n % 12 != 0,
            published=datetime.now(UTC),
        )
    url = f"{node.base_url}/users/coop/outbox"
    # When the outbox is walked
    collection = await get_ok(http, url)
    pages = await walk(http, url)
    # Then 55 items come in pages of 50 and 5, newest first, none twice
    assert collection["totalItems"] == 55
    assert [len(p["orderedItems"]) for p in pages] == [50, 5]
    numbers = [i["n"] for p in pages for i in p["orderedItems"]]
    assert numbers == [n for n in range(59, -1, -1) if n % 12 != 0]
    assert "next" not in pages[-1]


# -- bad parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "followers?page=abc",
        "followers?page=0",
        "followers?page=-1",
        "followers?page=1.5",
        "followers?page=",
        "followers?page=99999999999999999999",
        "following?page=x",
        "outbox?before=abc",
        "outbox?before=-3",
    ],
)
async def test_bad_page_parameter_is_400_json(
    node: RunningNode, http: aiohttp.ClientSession, query: str
) -> None:
    status, content_type, body = await get_json(http, f"{node.base_url}/users/coop/{query}")
    assert (status, content_type) == (400, "application/json"), body
    assert body["reason"] == "bad_page"
