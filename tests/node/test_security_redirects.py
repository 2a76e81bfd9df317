"""Origin confusion through redirects, and handles resolved only by their host's WebFinger."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp import web

from actors.remote import InvalidActor, fetch_actor
from actors.webfinger import WebfingerError, resolve_actor
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.mastoflow import api, member_token
from tests.support.nodes import RunningNode, eventually


class OpenRedirectHost:
    """``vm``: a genuine server with one actor, alice, and an open redirect."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.base = f"http://localhost:{self._sock.getsockname()[1]}"
        self.alice = PeerActor("alice", self.base, "mastodon")
        self.links: dict[str, str] = {"alice": self.alice.id}  # WebFinger: user -> actor
        self.received: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None

    def redirect(self, target: str) -> str:
        return f"{self.base}/redirect?to={quote(target, safe='')}"

    async def start(self) -> OpenRedirectHost:
        app = web.Application()
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_get("/users/alice", self._actor)
        app.router.add_post("/users/alice/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def _webfinger(self, request: web.Request) -> web.Response:
        user = request.query.get("resource", "").removeprefix("acct:").split("@")[0]
        if user not in self.links:
            return web.json_response({}, status=404)
        link = {"rel": "self", "type": "application/activity+json", "href": self.links[user]}
        return web.json_response({"subject": f"acct:{user}", "links": [link]})

    async def _actor(self, request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(self.alice.document()), content_type="application/activity+json"
        )

    async def _inbox(self, request: web.Request) -> web.Response:
        self.received.append(orjson.loads(await request.read()))
        return web.Response(status=202)


@dataclass
class ForgedActor(PeerActor):
    """An actor served by the attacker whose document claims another id."""

    claimed_id: str = ""
    claimed_username: str = ""

    @property
    def key_id(self) -> str:
        return f"{self.claimed_id}#main-key"

    def document(self) -> dict[str, Any]:
        real = f"{self.base}/users/{self.username}"
        document = super().document()
        document.update(
            id=self.claimed_id,
            preferredUsername=self.claimed_username or self.username,
            inbox=f"{real}/inbox",
            endpoints={},
        )
        document["publicKey"]["id"] = self.key_id
        document["publicKey"]["owner"] = self.claimed_id
        return document


@pytest.fixture
async def vm() -> AsyncIterator[OpenRedirectHost]:
    host = await OpenRedirectHost().start()
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
async def evil() -> AsyncIterator[FakePeer]:
    peer = await FakePeer(style="mastodon").start()
    try:
        yield peer
    finally:
        await peer.stop()


def _forged_alice(vm: OpenRedirectHost, evil: FakePeer) -> ForgedActor:
    mallory = ForgedActor("mallory", evil.base, "mastodon")
    mallory.claimed_id = vm.redirect(f"{evil.base}/users/mallory")
    mallory.claimed_username = "alice"
    evil.actors["mallory"] = mallory
    return mallory


async def test_a_document_reached_through_a_redirect_cannot_claim_the_first_host(
    node: RunningNode, vm: OpenRedirectHost, evil: FakePeer
) -> None:
    # Given the attacker's actor, whose document claims an id on vm's open redirect
    mallory = _forged_alice(vm, evil)
    # When the node fetches that id / Then the document is not vm's
    with pytest.raises(InvalidActor):
        await fetch_actor(node.ctx, mallory.claimed_id)
    # And signing with a keyId on vm's redirect gets nothing stored
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{mallory.claimed_id}&follow=1",
        "type": "Follow",
        "actor": mallory.claimed_id,
        "object": node.actor_url,
    }
    status, answer = await evil.send(mallory, f"{node.base_url}/inbox", follow)
    assert (status, answer.get("reason")) == (401, "invalid_key_owner"), answer
    assert await node.ctx.store.get_remote_actor(mallory.claimed_id) is None


async def test_a_direct_message_to_a_handle_goes_where_its_webfinger_says(
    node: RunningNode, vm: OpenRedirectHost, evil: FakePeer, http: aiohttp.ClientSession
) -> None:
    # Given the attacker tried to plant "alice" on vm through the open redirect
    mallory = _forged_alice(vm, evil)
    follow = {
        "id": f"{mallory.claimed_id}&f=2",
        "type": "Follow",
        "actor": mallory.claimed_id,
        "object": node.actor_url,
    }
    await evil.send(mallory, f"{node.base_url}/inbox", follow)
    token = await member_token(http, node, "member")
    # When the member writes to @alice@vm from a Mastodon app
    handle = f"alice@{vm.base.removeprefix('http://')}"
    form = {"status": f"@{handle} a secret", "visibility": "direct"}
    status, body, _ = await api(http, node, "POST", "/api/v1/statuses", token, data=form)
    assert status == 200, body
    # Then it is delivered to the genuine alice on vm, and nothing to the attacker
    await eventually(lambda: _async(bool(vm.received)), message="vm receives the message")
    await node.drain()
    assert [r["type"] for r in vm.received] == ["Create"]
    assert [m["url"] for m in body["mentions"]] == [vm.alice.id]
    assert evil.of_type("Create") == []


async def _async(value: bool) -> bool:
    return value


async def test_a_handle_pointing_at_another_host_must_be_confirmed_there(
    node: RunningNode, vm: OpenRedirectHost, evil: FakePeer
) -> None:
    # Given vm's WebFinger names, for "zed@vm", an actor on the attacker's host
    zed = ForgedActor("carol", evil.base, "mastodon")
    zed.claimed_id = f"{evil.base}/users/carol"
    zed.claimed_username = "zed"
    evil.actors["carol"] = zed
    vm.links["zed"] = zed.claimed_id
    handle = f"zed@{vm.base.removeprefix('http://')}"
    # When the node resolves it / Then the attacker's host does not confirm zed: refused
    with pytest.raises(WebfingerError):
        await resolve_actor(node.ctx, handle)
    # And when the other host does confirm it (a split domain), it is accepted
    evil.actors["zed"] = zed
    assert (await resolve_actor(node.ctx, handle)).uri == zed.claimed_id


async def test_an_object_reached_through_a_redirect_is_not_stored_as_the_first_hosts(
    node: RunningNode, vm: OpenRedirectHost, evil: FakePeer
) -> None:
    # Given an object served by the attacker, claiming an id on vm's open redirect
    token = uuid.uuid4().hex
    claimed = vm.redirect(f"{evil.base}/objects/{token}")
    evil.objects[f"{evil.base}/objects/{token}"] = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": claimed,
        "type": "Note",
        "attributedTo": vm.alice.id,
        "content": "words put in alice's mouth",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
    }
    store, coop = node.ctx.store, await node.ctx.coop_actor()
    await store.upsert_follow(
        local_actor_id=coop.id,
        remote_actor=vm.alice.id,
        direction="outbound",
        state="accepted",
        activity_id=f"{node.base_url}/activities/follow-alice",
    )
    # When a Create naming it by id arrives, signed by alice
    create = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{vm.alice.id}/creates/{token}",
        "type": "Create",
        "actor": vm.alice.id,
        "object": claimed,
    }
    status, _ = await evil.send(vm.alice, f"{node.base_url}/inbox", create)
    assert status == 202
    await node.drain()
    # Then the worker refuses it and stores no object
    outcome = await store.inbox_outcomes(create["id"])
    assert (outcome or "").startswith("refused"), outcome
    assert await store.get_object(claimed) is None
