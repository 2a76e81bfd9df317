"""The coop's Organization actor and the instance actor, as Mastodon fetches them.

Checklist §3 (Actor) and §7 (instance actor).
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import aiohttp
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from actors.local import IdentityMismatch, build_actor, ensure_local_actors
from federation import jsonld
from federation.jsonld import AP_CONTENT_TYPE, AS_CONTEXT, LD_CONTENT_TYPE, SECURITY_CONTEXT
from federation.store import LocalActor
from federation.urls import INSTANCE_ACTOR_USERNAME, Urls
from tests.support.golden import AP_CONTEXT
from tests.support.nodes import NodeFactory, RunningNode

ACCEPTS = [AP_CONTENT_TYPE, LD_CONTENT_TYPE, "application/activity+json, application/ld+json"]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Terms of the ActivityStreams and security contexts an actor document may use.
AS_TERMS = {
    "id", "type", "preferredUsername", "name", "summary", "url", "inbox", "outbox", "followers",
    "following", "endpoints", "icon", "published", "attachment", "tag",
}  # fmt: skip
SECURITY_TERMS = {"publicKey"}


async def fetch_json(
    http: aiohttp.ClientSession, url: str, accept: str = AP_CONTENT_TYPE
) -> tuple[int, str, dict[str, Any]]:
    async with http.get(url, headers={"Accept": accept}, allow_redirects=False) as response:
        return response.status, response.content_type, await response.json(content_type=None)


def assert_context(document: dict[str, Any]) -> None:
    """AS and security by URL, everything else inline: no context a peer must fetch."""
    context = document["@context"]
    assert isinstance(context, list) and len(context) == 3, context
    assert context[:2] == [AS_CONTEXT, SECURITY_CONTEXT]
    inline = context[2]
    assert isinstance(inline, dict)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            assert "@context" not in value and "@import" not in value, value
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):  # a term definition never holds a list of contexts
            raise AssertionError(f"unexpected list in the inline context: {value!r}")

    walk(inline)
    # Every term outside AS and security that the document uses is defined inline.
    extension_terms = set(document) - AS_TERMS - SECURITY_TERMS - {"@context"}
    assert extension_terms <= set(inline), extension_terms - set(inline)


def load_rsa(pem: str) -> RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, RSAPublicKey)
    return key


# -- the coop actor ---------------------------------------------------------------


@pytest.mark.parametrize("accept", ACCEPTS, ids=["activity+json", "ld+json-profile", "both"])
async def test_coop_actor_document(
    nodes: NodeFactory, http: aiohttp.ClientSession, accept: str
) -> None:
    # Given a node started with a profile and an avatar
    node = await nodes(
        "a",
        name="Bakery Coop",
        summary="Bread & <jam>\n\nOpen every day",
        avatar_url="https://img.example/bakery.png",
    )
    # When a server fetches the actor URL with the Accept it uses
    status, content_type, actor = await fetch_json(http, node.actor_url, accept)
    # Then it gets the Organization, as activity+json, under the URL it fetched
    assert status == 200, actor
    assert content_type == AP_CONTENT_TYPE
    assert actor["id"] == node.actor_url
    assert actor["type"] == "Organization"
    assert actor["preferredUsername"] == "coop"
    assert actor["name"] == "Bakery Coop"
    assert actor["summary"] == "<p>Bread &amp; &lt;jam&gt;</p><p>Open every day</p>"
    assert actor["icon"] == {
        "type": "Image",
        "url": "https://img.example/bakery.png",
        "mediaType": "image/png",
    }
    base = node.base_url
    assert actor["url"] == f"{base}/@coop"
    assert actor["inbox"] == f"{base}/users/coop/inbox"
    assert actor["outbox"] == f"{base}/users/coop/outbox"
    assert actor["followers"] == f"{base}/users/coop/followers"
    assert actor["following"] == f"{base}/users/coop/following"
    assert actor["endpoints"] == {"sharedInbox": f"{base}/inbox"}
    assert actor["manuallyApprovesFollowers"] is False
    assert actor["discoverable"] is True
    assert actor["webfinger"] == node.handle
    assert isinstance(actor["attachment"], list)  # Mastodon needs an array
    published = datetime.fromisoformat(actor["published"].replace("Z", "+00:00"))
    assert published.tzinfo is not None
    assert abs((datetime.now(UTC) - published).total_seconds()) < 3600
    # And its key, owned by it, is a 2048-bit RSA key
    key = actor["publicKey"]
    assert set(key) == {"id", "owner", "publicKeyPem"}
    assert key["id"] == f"{node.actor_url}#main-key"
    assert key["owner"] == node.actor_url
    assert load_rsa(key["publicKeyPem"]).key_size == 2048
    assert_context(actor)


async def test_coop_actor_without_avatar_has_no_icon(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    status, _, actor = await fetch_json(http, node.actor_url)
    assert status == 200
    assert "icon" not in actor
    assert actor["name"] == "Our Cooperative"


async def test_manual_approval_is_published(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    node = await nodes("a", manually_approves_followers=True)
    _, _, actor = await fetch_json(http, node.actor_url)
    assert actor["manuallyApprovesFollowers"] is True


async def test_actor_headers_and_head(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # The JSON varies by Accept (an HTML page is served at the same URL)
    async with http.get(node.actor_url, headers={"Accept": AP_CONTENT_TYPE}) as response:
        assert response.status == 200
        assert response.headers["Vary"] == "Accept"
        length = len(await response.read())
    # HEAD answers like GET, without a body
    async with http.head(node.actor_url, headers={"Accept": AP_CONTENT_TYPE}) as response:
        assert response.status == 200
        assert response.content_type == AP_CONTENT_TYPE
        assert int(response.headers["Content-Length"]) == length
        assert await response.read() == b""


async def test_actor_links_dereference(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Every GET-able URL the coop and the instance actor publish answers
    for actor_url in (node.actor_url, f"{node.base_url}/actor"):
        _, _, actor = await fetch_json(http, actor_url)
        for field in ("url", "outbox", "followers", "following"):
            if field in actor:
                async with http.get(actor[field], headers={"Accept": AP_CONTENT_TYPE}) as r:
                    assert r.status == 200, (actor_url, field, actor[field])
        # Inboxes take POSTs only
        for inbox in (actor["inbox"], actor["endpoints"]["sharedInbox"]):
            async with http.get(inbox) as response:
                assert response.status == 405, inbox


# -- the instance actor --------------------------------------------------------------


async def test_instance_actor(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # When a server fetches {base}/actor without any signature
    status, content_type, actor = await fetch_json(http, f"{node.base_url}/actor")
    # Then it gets an Application with its own key, /actor#main-key
    assert status == 200, actor
    assert content_type == AP_CONTENT_TYPE
    assert actor["id"] == f"{node.base_url}/actor"
    assert actor["type"] == "Application"
    assert actor["preferredUsername"] == INSTANCE_ACTOR_USERNAME
    assert actor["inbox"] == f"{node.base_url}/actor/inbox"
    assert actor["endpoints"] == {"sharedInbox": f"{node.base_url}/inbox"}
    assert actor["publicKey"]["id"] == f"{node.base_url}/actor#main-key"
    assert actor["publicKey"]["owner"] == f"{node.base_url}/actor"
    assert load_rsa(actor["publicKey"]["publicKeyPem"]).key_size == 2048
    assert_context(actor)
    # And its key is not the coop's
    _, _, coop = await fetch_json(http, node.actor_url)
    assert actor["publicKey"]["publicKeyPem"] != coop["publicKey"]["publicKeyPem"]


async def test_instance_actor_is_not_a_user(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # The instance actor lives at /actor only, never at /users/<name> or /@<name>
    for path in (f"/users/{INSTANCE_ACTOR_USERNAME}", f"/@{INSTANCE_ACTOR_USERNAME}"):
        status, content_type, body = await fetch_json(http, node.base_url + path)
        assert (status, content_type) == (404, "application/json"), path
        assert body["reason"] == "not_found"


# -- content negotiation and the HTML profile ---------------------------------------


class LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
async def test_browser_is_redirected_to_profile(
    nodes: NodeFactory, http: aiohttp.ClientSession, accept: str
) -> None:
    # Given a coop with a name that needs escaping
    node = await nodes("a", name="Bread & Roses")
    # When a browser opens the actor URL
    async with http.get(
        node.actor_url, headers={"Accept": accept}, allow_redirects=False
    ) as response:
        # Then it is sent to the HTML profile
        assert response.status == 302
        assert response.headers["Location"] == f"{node.base_url}/@coop"
    async with http.get(f"{node.base_url}/@coop", headers={"Accept": accept}) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    # Which shows the name and the handle, and points machines to the actor
    assert "Bread &amp; Roses" in page
    assert f"@{node.handle}" in page
    collector = LinkCollector()
    collector.feed(page)
    assert {
        "rel": "alternate",
        "type": "application/activity+json",
        "href": node.actor_url,
    } in collector.links


async def test_profile_url_serves_json_to_machines(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    # Mastodon may fetch the actor's `url`: with an AP Accept it gets the actor
    status, content_type, actor = await fetch_json(http, f"{node.base_url}/@coop")
    assert (status, content_type) == (200, AP_CONTENT_TYPE)
    assert actor["id"] == node.actor_url


async def test_no_accept_gets_json(node: RunningNode, http: aiohttp.ClientSession) -> None:
    async with http.get(node.actor_url, headers={"Accept": "*/*"}) as response:
        assert response.status == 200
        assert response.content_type == AP_CONTENT_TYPE


async def test_unknown_actor_is_404_json(node: RunningNode, http: aiohttp.ClientSession) -> None:
    for path in ("/users/nobody", "/users/nobody/outbox", "/users/nobody/followers", "/@nobody"):
        status, content_type, body = await fetch_json(http, node.base_url + path)
        assert (status, content_type) == (404, "application/json"), path
        assert body == {"error": "no such actor", "reason": "not_found"}


# -- build_actor: pure, and exactly this JSON -----------------------------------------

FIXED_ACTOR = LocalActor(
    id=1,
    username="bakery",
    kind="coop",
    name="Bakery <Coop>",
    summary="We bake.\nDaily.\n\nAnd share.",
    avatar_url="https://img.example/b.png",
    manually_approves_followers=True,
    discoverable=True,
    private_key_pem="PRIVATE",
    public_key_pem="-----BEGIN PUBLIC KEY-----\nTEST\n-----END PUBLIC KEY-----\n",
    created_at=datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC),
    updated_at=datetime(2024, 6, 1, tzinfo=UTC),
)
GOLDEN_ACTOR: dict[str, Any] = {
    "@context": AP_CONTEXT,
    "id": "https://coop.example/users/bakery",
    "type": "Organization",
    "preferredUsername": "bakery",
    "name": "Bakery <Coop>",
    "summary": "<p>We bake.<br>Daily.</p><p>And share.</p>",
    "url": "https://coop.example/@bakery",
    "inbox": "https://coop.example/users/bakery/inbox",
    "outbox": "https://coop.example/users/bakery/outbox",
    "followers": "https://coop.example/users/bakery/followers",
    "following": "https://coop.example/users/bakery/following",
    "endpoints": {"sharedInbox": "https://coop.example/inbox"},
    "publicKey": {
        "id": "https://coop.example/users/bakery#main-key",
        "owner": "https://coop.example/users/bakery",
        "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nTEST\n-----END PUBLIC KEY-----\n",
    },
    "manuallyApprovesFollowers": True,
    "discoverable": True,
    "indexable": True,
    "published": "2024-05-01T12:30:15Z",
    "webfinger": "bakery@coop.example",
    "attachment": [],
    "tag": [],
    "icon": {"type": "Image", "url": "https://img.example/b.png", "mediaType": "image/png"},
}


def test_build_actor_golden() -> None:
    urls = Urls("https://coop.example")
    assert build_actor(FIXED_ACTOR, urls) == GOLDEN_ACTOR
    # Key order is part of the bytes peers hash into digests: keep it stable too
    assert orjson.dumps(build_actor(FIXED_ACTOR, urls)) == orjson.dumps(GOLDEN_ACTOR)


def test_build_actor_is_pure(monkeypatch: pytest.MonkeyPatch) -> None:
    # (a private copy of the shared terms, so a failure here cannot leak into other tests)
    monkeypatch.setattr(jsonld, "EXTRA_TERMS", copy.deepcopy(jsonld.EXTRA_TERMS))
    urls = Urls("https://coop.example")
    first = build_actor(FIXED_ACTOR, urls)
    snapshot = copy.deepcopy(first)
    # A caller that edits a result (adds a context term, changes a nested value)...
    first["@context"][2]["webfinger"]["@id"] = "changed"
    first["@context"][2]["extra"] = "x"
    first["publicKey"]["id"] = "changed"
    first["endpoints"]["sharedInbox"] = "changed"
    # ...does not change what the next call returns
    assert build_actor(FIXED_ACTOR, urls) == snapshot
    assert orjson.dumps(build_actor(FIXED_ACTOR, urls)) == orjson.dumps(snapshot)


def test_build_instance_actor_golden() -> None:
    urls = Urls("https://coop.example")
    instance = dataclasses.replace(
        FIXED_ACTOR, username=INSTANCE_ACTOR_USERNAME, kind="instance", name="coopfed instance"
    )
    expected = {
        "@context": AP_CONTEXT,
        "id": "https://coop.example/actor",
        "type": "Application",
        "preferredUsername": "coopfed.internal",
        "name": "coopfed instance",
        "inbox": "https://coop.example/actor/inbox",
        "outbox": "https://coop.example/actor/outbox",
        "endpoints": {"sharedInbox": "https://coop.example/inbox"},
        "publicKey": {
            "id": "https://coop.example/actor#main-key",
            "owner": "https://coop.example/actor",
            "publicKeyPem": FIXED_ACTOR.public_key_pem,
        },
        "manuallyApprovesFollowers": True,
        "discoverable": False,
        "indexable": False,
        "published": "2024-05-01T12:30:15Z",
    }
    assert orjson.dumps(build_actor(instance, urls)) == orjson.dumps(expected)
    assert orjson.dumps(build_actor(instance, urls)) == orjson.dumps(expected)


# -- identity over restarts ------------------------------------------------------------


async def test_key_is_stable_across_restart(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given the coop's published key
    _, _, before = await fetch_json(http, node.actor_url)
    _, _, instance_before = await fetch_json(http, f"{node.base_url}/actor")
    # When the node stops and starts again on the same database
    await node.stop()
    await node.start()
    # Then it publishes the same keys (GoToSocial refuses a key that changes)
    _, _, after = await fetch_json(http, node.actor_url)
    _, _, instance_after = await fetch_json(http, f"{node.base_url}/actor")
    assert after["publicKey"] == before["publicKey"]
    assert after["published"] == before["published"]
    assert instance_after["publicKey"] == instance_before["publicKey"]


async def test_username_change_is_refused(node: RunningNode) -> None:
    # Given a database that belongs to @coop
    store = node.ctx.store
    before = await store.list_local_actors()
    # When the node is configured as another coop
    with pytest.raises(IdentityMismatch) as caught:
        await ensure_local_actors(store, node.settings.with_overrides(username="bakery"))
    # Then it refuses, naming both, and creates nothing
    assert (caught.value.stored, caught.value.configured) == ("coop", "bakery")
    assert "@coop" in str(caught.value) and "@bakery" in str(caught.value)
    assert await store.list_local_actors() == before


async def test_profile_settings_apply_on_restart(node: RunningNode) -> None:
    # Given a running coop, when it is started again with a new name
    store = node.ctx.store
    key = (await node.ctx.coop_actor()).public_key_pem
    coop = await ensure_local_actors(store, node.settings.with_overrides(name="New Name"))
    # Then the name changes and the key does not
    assert coop.name == "New Name"
    assert coop.public_key_pem == key
    assert (await node.ctx.coop_actor()).name == "New Name"


async def test_a_restart_with_the_same_settings_keeps_the_browser_edit(node: RunningNode) -> None:
    store = node.ctx.store
    given = node.settings.with_overrides(name="Env Name", summary="Env summary")
    coop = await ensure_local_actors(store, given)
    assert (coop.name, coop.summary) == ("Env Name", "Env summary")
    # Given the admin renames the coop in the browser
    await store.update_local_profile(coop.id, name="Browser Name")
    # When the node restarts with the same settings, the browser's name stays
    coop = await ensure_local_actors(store, given)
    assert (coop.name, coop.summary) == ("Browser Name", "Env summary")
    # When the operator changes the setting, the new one applies
    coop = await ensure_local_actors(store, given.with_overrides(name="Env Name 2"))
    assert coop.name == "Env Name 2"
