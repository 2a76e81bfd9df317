"""The pasture's real-world variations, sent to a node and read back as a member.

``fediverse-pasture-inputs`` collects how Fediverse servers write a post's
content warning, attachments, replies and languages.  A fake remote actor sends
each example as a signed Create(Note) addressed to our member; the member then
reads the status through the Mastodon client API and sees what Mastodon shows:
content warnings sensitive, image attachments typed ``image`` (with or without a
``mediaType``), replies to a parent the author serves threaded, the first
language as sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.support.fakepeer import AS, PUBLIC, FakePeer, PeerActor
from tests.support.mastoflow import api, member_token
from tests.support.nodes import RunningNode
from tests.support.pasture import INSTALL_TIMEOUT, PASTURE_ACTOR, PASTURE_HOST, examples, localise
from tests.support.peerflow import send_and_wait

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 120)

INPUTS = ("content_warnings", "image_attachments", "image_description", "in_reply_to", "language")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")


class Pasture:
    """Sends the examples as bob, of a fake peer; reads them back as alice."""

    def __init__(
        self, node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession, token: str
    ) -> None:
        self.node, self.peer, self.http, self.token = node, peer, http, token
        self.bob: PeerActor = peer.add_actor("bob")
        self.urls = {
            PASTURE_ACTOR: self.bob.id,
            f"{PASTURE_HOST}assets/note1.jsonap": f"{peer.base}/objects/note1",
            f"{PASTURE_HOST}assets/note2.jsonap": f"{peer.base}/objects/note2",
            "http://invalid.example/": f"{peer.base}/objects/invalid",
            PASTURE_HOST: f"{peer.base}/",
        }
        for n, text in ((1, "One"), (2, "Two")):
            # The parents the pasture serves for its replies.
            uri = f"{peer.base}/objects/note{n}"
            peer.objects[uri] = {
                "@context": AS,
                "id": uri,
                "type": "Note",
                "attributedTo": self.bob.id,
                "to": [PUBLIC],
                "content": text,
                "published": "2024-01-06T13:11:45Z",
            }

    async def send(self, example: dict[str, Any]) -> dict[str, Any]:
        """The status alice reads of one example, sent as bob's Note."""
        uri = f"{self.peer.base}/objects/{self.peer.new_id(self.bob).rsplit('/', 1)[1]}"
        note = {
            "id": uri,
            "type": "Note",
            "attributedTo": self.bob.id,
            "published": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "to": [PUBLIC],
            "cc": [self.node.ctx.urls.actor("alice")],
        } | localise(example, self.urls)
        create = {"@context": AS, "id": f"{uri}/activity", "type": "Create", "actor": self.bob.id}
        create |= {"to": note["to"], "cc": note["cc"], "object": note}
        outcome = await send_and_wait(self.peer, self.bob, self.node, create)
        assert outcome == "stored", (outcome, example)
        stored = await self.node.ctx.store.get_object(uri)
        assert stored is not None
        code, status, _ = await api(
            self.http, self.node, "GET", f"/api/v1/statuses/{stored.seq}", self.token
        )
        assert code == 200, status
        return dict(status)

    async def seq(self, uri: str) -> str | None:
        stored = await self.node.ctx.store.get_object(uri)
        return str(stored.seq) if stored else None


@pytest.fixture(scope="module")
def pasture_examples() -> dict[str, list[dict[str, Any]]]:
    return examples(*INPUTS)


@pytest.fixture
async def pasture(node: RunningNode, peer: FakePeer, http: aiohttp.ClientSession) -> Pasture:
    return Pasture(node, peer, http, await member_token(http, node, "alice"))


async def test_content_warnings_come_out_sensitive(
    pasture: Pasture, pasture_examples: dict[str, list[dict[str, Any]]]
) -> None:
    cases = pasture_examples["content_warnings"]
    assert len(cases) >= 5
    for example in cases:
        status = await pasture.send(example)
        warned = bool(example.get("summary"))
        assert status["spoiler_text"] == (example["summary"] if warned else ""), example
        # A content warning hides the post: sensitive, as Mastodon marks it
        assert status["sensitive"] is (warned or example.get("sensitive") is True), example
        for media in status["media_attachments"]:
            assert media["type"] == "image", (example, media)
    assert any(e.get("summary") and "sensitive" not in e for e in cases)


def image_urls(example: dict[str, Any]) -> list[str]:
    """The http(s) URLs of an example's attachments that name an image file."""
    found = []
    attachments = example.get("attachment")
    for item in attachments if isinstance(attachments, list) else [attachments]:
        urls = item.get("url") if isinstance(item, dict) else None
        for url in urls if isinstance(urls, list) else [urls]:
            href = url.get("href") if isinstance(url, dict) else url
            if isinstance(href, str) and href.startswith("http"):
                if urlsplit(href).path.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(href)
                break  # the first URL of an attachment is the one shown
    return found


async def test_image_attachments_come_out_typed_image(
    pasture: Pasture, pasture_examples: dict[str, list[dict[str, Any]]]
) -> None:
    typed = 0
    for example in pasture_examples["image_attachments"]:
        status = await pasture.send(example)
        kinds = {m["remote_url"]: m["type"] for m in status["media_attachments"]}
        for url in image_urls(localise(example, pasture.urls)):
            assert kinds.get(url) == "image", (example, status["media_attachments"])
            typed += 1
    # Most of them carry no mediaType: they are images by their file's extension
    assert typed >= 10


async def test_attachment_descriptions_are_the_name_then_the_summary(
    pasture: Pasture, pasture_examples: dict[str, list[dict[str, Any]]]
) -> None:
    descriptions = []
    for example in pasture_examples["image_description"]:
        status = await pasture.send(example)
        descriptions.append([m["description"] for m in status["media_attachments"]])
    assert descriptions == [[None], ["name"], ["name"], [None]]


async def test_replies_to_served_parents_come_out_threaded(
    pasture: Pasture, pasture_examples: dict[str, list[dict[str, Any]]]
) -> None:
    note1 = f"{pasture.peer.base}/objects/note1"
    threaded: dict[str, str | None] = {}
    for example in pasture_examples["in_reply_to"]:
        status = await pasture.send(example)
        threaded[example["content"]] = status["in_reply_to_id"]
    parent = await pasture.seq(note1)
    assert parent is not None
    # One parent, by URI, in a list of one, as a Link, or embedded: the same thread
    for case in ("valid uri", "list", "Link in inReplyTo", "embedded note"):
        assert threaded[case] == parent, (case, threaded)
    # A parent that is not there, or not one parent, is no thread
    for case in ("invalid uri", "two elements in inReplyTo", "collection"):
        assert threaded[case] is None, (case, threaded)
    code, context, _ = await api(
        pasture.http, pasture.node, "GET", f"/api/v1/statuses/{parent}/context", pasture.token
    )
    assert code == 200, context
    assert len(context["descendants"]) == 4
    assert {s["in_reply_to_id"] for s in context["descendants"]} == {parent}


async def test_the_language_is_the_first_one_sent(
    pasture: Pasture, pasture_examples: dict[str, list[dict[str, Any]]]
) -> None:
    languages = []
    for example in pasture_examples["language"]:
        languages.append((await pasture.send(example))["language"])
    firsts = [next(iter(e["contentMap"]), None) if "contentMap" in e else None
              for e in pasture_examples["language"]]  # fmt: skip
    assert languages == firsts
    assert "en" in languages and "de" in languages
