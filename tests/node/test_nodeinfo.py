"""NodeInfo discovery and documents, as GoToSocial reads them (checklist §6)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from actors.nodeinfo import build_nodeinfo, build_nodeinfo_links
from federation.version import software_version
from outbox.publish import post_note
from tests.support.nodes import RunningNode

SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/"


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, str, dict[str, Any]]:
    async with http.get(url) as response:
        return response.status, response.content_type, await response.json(content_type=None)


async def test_well_known_links(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # When a server asks where the NodeInfo is
    status, content_type, body = await get_json(http, f"{node.base_url}/.well-known/nodeinfo")
    # Then plain JSON (GoToSocial refuses jrd here) links both schema versions
    assert (status, content_type) == (200, "application/json")
    assert body == {
        "links": [
            {"rel": f"{SCHEMA}2.0", "href": f"{node.base_url}/nodeinfo/2.0"},
            {"rel": f"{SCHEMA}2.1", "href": f"{node.base_url}/nodeinfo/2.1"},
        ]
    }


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_nodeinfo_document(
    node: RunningNode, http: aiohttp.ClientSession, version: str
) -> None:
    # Given the document the .well-known links to
    _, _, links = await get_json(http, f"{node.base_url}/.well-known/nodeinfo")
    href = next(link["href"] for link in links["links"] if link["rel"] == SCHEMA + version)
    # When it is fetched
    status, content_type, info = await get_json(http, href)
    # Then it describes coopfed speaking ActivityPub with one user
    assert (status, content_type) == (200, "application/json")
    assert info["version"] == version
    assert info["software"]["name"] == "coopfed"
    assert info["software"]["version"] == software_version()
    assert isinstance(info["software"]["version"], str) and info["software"]["version"]
    assert ("repository" in info["software"]) == (version == "2.1")  # 2.0 has no such field
    assert info["protocols"] == ["activitypub"]
    assert info["services"] == {"inbound": [], "outbound": []}
    assert info["openRegistrations"] is False
    assert info["usage"]["users"] == {"total": 1, "activeMonth": 1, "activeHalfyear": 1}
    assert info["usage"]["localPosts"] == 0
    assert info["metadata"]["nodeName"] == "Our Cooperative"
    assert isinstance(info["metadata"]["nodeDescription"], str)


async def test_local_posts_are_counted(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given a node with no posts
    _, _, before = await get_json(http, f"{node.base_url}/nodeinfo/2.0")
    assert before["usage"]["localPosts"] == 0
    # When the coop publishes a note
    await post_note(node.ctx, await node.ctx.coop_actor(), "Fresh bread today")
    # Then both documents count it, and still one user (the instance actor is no user)
    for version in ("2.0", "2.1"):
        _, _, after = await get_json(http, f"{node.base_url}/nodeinfo/{version}")
        assert after["usage"]["localPosts"] == 1
        assert after["usage"]["users"]["total"] == 1


@pytest.mark.parametrize("version", ["1.0", "2.2", "3", "2.0.json"])
async def test_unknown_version_is_404(
    node: RunningNode, http: aiohttp.ClientSession, version: str
) -> None:
    status, content_type, body = await get_json(http, f"{node.base_url}/nodeinfo/{version}")
    assert (status, content_type) == (404, "application/json")
    assert body["reason"] == "not_found"


def test_builders_are_pure() -> None:
    links = build_nodeinfo_links("https://coop.example")
    assert links["links"][0] == {
        "rel": f"{SCHEMA}2.0",
        "href": "https://coop.example/nodeinfo/2.0",
    }
    info = build_nodeinfo("2.0", users=1, local_posts=7, node_name="N", node_description="D")
    assert info == {
        "version": "2.0",
        "software": {"name": "coopfed", "version": software_version()},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {
            "users": {"total": 1, "activeMonth": 1, "activeHalfyear": 1},
            "localPosts": 7,
        },
        "metadata": {"nodeName": "N", "nodeDescription": "D"},
    }
