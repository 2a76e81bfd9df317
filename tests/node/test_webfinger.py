"""WebFinger and host-meta: how Mastodon and GoToSocial find ``coop@host:port``.

Checklist §2 (WebFinger) and §7 (the instance actor must be resolvable).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
from yarl import URL

from actors.webfinger import (
    JRD_CONTENT_TYPE,
    MAX_RESOURCE_LENGTH,
    Handle,
    parse_handle,
    parse_resource,
    self_link,
)
from federation.errors import ApiError
from federation.jsonld import AP_CONTENT_TYPE, LD_CONTENT_TYPE
from federation.urls import INSTANCE_ACTOR_USERNAME, Urls
from tests.support.nodes import RunningNode

XRD_NS = "{http://docs.oasis-open.org/ns/xri/xrd-1.0}"


async def finger(
    http: aiohttp.ClientSession, node: RunningNode, resource: str | None, *, encode: bool = True
) -> tuple[int, str, dict[str, Any]]:
    """GET the node's WebFinger endpoint: (status, content type, JSON body)."""
    url = f"{node.base_url}/.well-known/webfinger"
    if resource is not None:
        # Mastodon sends the resource as is; GoToSocial percent-encodes it.
        url += "?resource=" + (quote(resource, safe="") if encode else resource)
    async with http.get(
        URL(url, encoded=True), headers={"Accept": "application/jrd+json, application/json"}
    ) as response:
        return response.status, response.content_type, await response.json(content_type=None)


# -- the coop by handle, actor URL and profile URL ---------------------------


@pytest.mark.parametrize("encode", [False, True], ids=["mastodon-raw", "gotosocial-encoded"])
async def test_acct_resource_with_port(
    node: RunningNode, http: aiohttp.ClientSession, encode: bool
) -> None:
    # Given a node on 127.0.0.1:PORT, when a server fingers acct:coop@127.0.0.1:PORT
    status, content_type, jrd = await finger(http, node, f"acct:{node.handle}", encode=encode)
    # Then it answers a JRD naming the coop's actor as rel=self
    assert status == 200, jrd
    assert content_type == JRD_CONTENT_TYPE
    assert node.handle == f"coop@127.0.0.1:{node.settings.port}"
    assert jrd["subject"] == f"acct:{node.handle}"
    assert jrd["aliases"] == [node.actor_url, f"{node.base_url}/@coop"]
    self_links = [link for link in jrd["links"] if link["rel"] == "self"]
    assert self_links == [
        {"rel": "self", "type": "application/activity+json", "href": node.actor_url}
    ]
    assert {
        "rel": "http://webfinger.net/rel/profile-page",
        "type": "text/html",
        "href": f"{node.base_url}/@coop",
    } in jrd["links"]


@pytest.mark.parametrize("form", ["coop@{d}", "@coop@{d}", "acct:Coop@{d}", "acct:COOP@{d}"])
async def test_handle_forms_resolve(
    node: RunningNode, http: aiohttp.ClientSession, form: str
) -> None:
    # Given the handle without acct:, with a leading @, or typed in another case
    resource = form.format(d=node.settings.domain)
    # When it is fingered
    status, _, jrd = await finger(http, node, resource)
    # Then the coop answers with its canonical subject (usernames are
    # case-insensitive on Mastodon: a user typing @Coop@host must find it)
    assert status == 200, jrd
    assert jrd["subject"] == f"acct:{node.handle}"
    assert self_link(jrd) == node.actor_url


async def test_actor_url_resource(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # When the resource is the actor URL itself (what Mastodon does for a known URI)
    status, content_type, jrd = await finger(http, node, node.actor_url)
    # Then the answer is the same JRD, with the acct: subject
    assert status == 200, jrd
    assert content_type == JRD_CONTENT_TYPE
    assert jrd["subject"] == f"acct:{node.handle}"
    assert self_link(jrd) == node.actor_url
    assert node.actor_url in jrd["aliases"]


async def test_profile_url_resource(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # When the resource is the HTML profile URL
    status, _, jrd = await finger(http, node, f"{node.base_url}/@coop")
    # Then it names the same actor
    assert status == 200, jrd
    assert jrd["subject"] == f"acct:{node.handle}"
    assert self_link(jrd) == node.actor_url


async def test_cors_header(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Browser-based clients finger from other origins
    async with http.get(
        f"{node.base_url}/.well-known/webfinger", params={"resource": f"acct:{node.handle}"}
    ) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"


# -- the loop back Mastodon checks --------------------------------------------


async def loop_back(node: RunningNode, http: aiohttp.ClientSession, resource: str) -> str:
    """Finger, fetch rel=self, and finger the actor's preferredUsername@host again."""
    status, _, jrd = await finger(http, node, resource)
    assert status == 200, jrd
    href = self_link(jrd)
    assert href is not None
    async with http.get(href, headers={"Accept": AP_CONTENT_TYPE}) as response:
        assert response.status == 200
        assert response.content_type == AP_CONTENT_TYPE
        actor = await response.json(content_type=None)
    # The document fetched at href has href as its id ("does not loop back" otherwise)
    assert actor["id"] == href
    # And preferredUsername@<actor host> fingers back to the same href (Mastodon 4.5)
    back = f"acct:{actor['preferredUsername']}@{urlsplit(href).netloc}"
    status, _, again = await finger(http, node, back)
    assert status == 200, again
    assert again["subject"] == back
    assert self_link(again) == href
    return href


async def test_coop_loops_back(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given the coop's handle, when a server runs Mastodon's loop-back check
    href = await loop_back(node, http, f"acct:{node.handle}")
    # Then every step agrees on the coop's actor URL
    assert href == node.actor_url


async def test_instance_actor_resolvable(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given the instance actor (username coopfed.internal, a dotted name)
    handle = f"acct:{INSTANCE_ACTOR_USERNAME}@{node.settings.domain}"
    # When fingered by handle and by its URL
    href = await loop_back(node, http, handle)
    status, _, by_url = await finger(http, node, f"{node.base_url}/actor")
    # Then both name {base}/actor and nothing else
    assert href == f"{node.base_url}/actor"
    assert status == 200, by_url
    assert by_url == {
        "subject": handle,
        "aliases": [f"{node.base_url}/actor"],
        "links": [{"rel": "self", "type": AP_CONTENT_TYPE, "href": f"{node.base_url}/actor"}],
    }


# -- errors --------------------------------------------------------------------


async def test_unknown_user_is_404_json(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # When a user the node does not have is fingered (by handle and by URL)
    for resource in (
        f"acct:nobody@{node.settings.domain}",
        f"{node.base_url}/users/nobody",
        f"{node.base_url}/@nobody",
    ):
        status, content_type, body = await finger(http, node, resource)
        # Then 404 with a JSON error
        assert (status, content_type) == (404, "application/json"), resource
        assert body["reason"] == "not_found"
        assert isinstance(body["error"], str) and body["error"]


async def test_other_domain_is_404(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # When the resource names a user of another domain (or this host on another port)
    for resource in (
        "acct:coop@other.example",
        f"acct:coop@127.0.0.1:{node.settings.port + 1}",
        "https://other.example/users/coop",
    ):
        status, content_type, body = await finger(http, node, resource)
        # Then the node says it does not answer for it
        assert (status, content_type) == (404, "application/json"), resource
        assert body["reason"] == "not_found"


@pytest.mark.parametrize(
    "resource",
    [
        None,
        "",
        "acct:",
        "acct:@x",
        "foo",
        "acct:co op@{d}",
        " ",
        "acct:" + "a" * 1990 + "@{d}",
        "acct:a@b@c",
        "acct:coop@{d}/extra",
    ],
    ids=[
        "missing",
        "empty",
        "acct-only",
        "no-user",
        "bare-word",
        "space",
        "blank",
        "overlong",
        "two-at",
        "slash",
    ],
)
async def test_malformed_resource_is_400_json(
    node: RunningNode, http: aiohttp.ClientSession, resource: str | None
) -> None:
    # Given a resource parameter that is not acct:user@host nor a URL
    if resource is not None:
        resource = resource.format(d=node.settings.domain)
        if "a" * 1990 in resource:
            assert len(resource) > 2000 - 20
    # When it is fingered
    status, content_type, body = await finger(http, node, resource)
    # Then 400 with a JSON error
    assert (status, content_type) == (400, "application/json"), body
    assert body["reason"] == "bad_resource"


# -- host-meta -----------------------------------------------------------------


async def test_host_meta_xml(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # When Mastodon falls back to host-meta
    async with http.get(f"{node.base_url}/.well-known/host-meta") as response:
        assert response.status == 200
        assert response.content_type == "application/xrd+xml"
        root = ET.fromstring(await response.read())
    # Then the XRD carries an lrdd template that leads to the JRD
    assert root.tag == f"{XRD_NS}XRD"
    links = root.findall(f"{XRD_NS}Link")
    assert [(link.get("rel"), link.get("template")) for link in links] == [
        ("lrdd", f"{node.base_url}/.well-known/webfinger?resource={{uri}}")
    ]
    template = links[0].get("template")
    assert template is not None
    async with http.get(template.replace("{uri}", f"acct:{node.handle}")) as response:
        assert response.status == 200
        assert self_link(await response.json(content_type=None)) == node.actor_url


async def test_host_meta_json(node: RunningNode, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{node.base_url}/.well-known/host-meta.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert body == {
        "links": [
            {"rel": "lrdd", "template": f"{node.base_url}/.well-known/webfinger?resource={{uri}}"}
        ]
    }


# -- the pure helpers --------------------------------------------------------------

URLS = Urls("http://127.0.0.1:8080")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("coop@example.org", Handle("coop", "example.org")),
        ("@coop@example.org", Handle("coop", "example.org")),
        ("acct:coop@example.org", Handle("coop", "example.org")),
        ("  coop@Example.ORG  ", Handle("coop", "example.org")),
        ("coop@127.0.0.1:8080", Handle("coop", "127.0.0.1:8080")),
        ("coopfed.internal@example.org", Handle("coopfed.internal", "example.org")),
        ("", None),
        ("coop", None),
        ("acct:", None),
        ("acct:@x", None),
        ("a@b@c", None),
        ("co op@example.org", None),
        ("coop@example.org/path", None),
        ("https://example.org/users/coop", None),
    ],
)
def test_parse_handle(text: str, expected: Handle | None) -> None:
    assert parse_handle(text) == expected


def test_handle_str() -> None:
    assert str(Handle("coop", "example.org")) == "coop@example.org"


@pytest.mark.parametrize(
    ("resource", "username"),
    [
        ("acct:coop@127.0.0.1:8080", "coop"),
        ("coop@127.0.0.1:8080", "coop"),
        ("acct:bakery.coop@127.0.0.1:8080", "bakery.coop"),
        ("http://127.0.0.1:8080/users/coop", "coop"),
        ("http://127.0.0.1:8080/@coop", "coop"),
        ("http://127.0.0.1:8080/actor", INSTANCE_ACTOR_USERNAME),
        (f"acct:{INSTANCE_ACTOR_USERNAME}@127.0.0.1:8080", INSTANCE_ACTOR_USERNAME),
    ],
)
def test_parse_resource_names_local_user(resource: str, username: str) -> None:
    assert parse_resource(resource, URLS) == username


@pytest.mark.parametrize(
    ("resource", "status"),
    [
        ("", 400),
        ("x" * (MAX_RESOURCE_LENGTH + 1), 400),
        ("foo", 400),
        ("acct:", 400),
        ("acct:@x", 400),
        ("acct:a@b@c", 400),
        ("acct:co op@127.0.0.1:8080", 400),
        ("acct:-bad-@127.0.0.1:8080", 400),
        ("acct:coop@127.0.0.1:9090", 404),
        ("acct:coop@example.org", 404),
        ("https://example.org/users/coop", 404),
        ("http://127.0.0.1:8080/users/coop/outbox", 404),
    ],
)
def test_parse_resource_rejects(resource: str, status: int) -> None:
    with pytest.raises(ApiError) as caught:
        parse_resource(resource, URLS)
    assert caught.value.status == status
    assert caught.value.reason == ("bad_resource" if status == 400 else "not_found")


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        ([{"rel": "self", "type": AP_CONTENT_TYPE, "href": "https://a/u"}], "https://a/u"),
        ([{"rel": "self", "type": LD_CONTENT_TYPE, "href": "https://a/u"}], "https://a/u"),
        (
            [
                {"rel": "self", "type": "text/html", "href": "https://a/html"},
                {"rel": "self", "type": AP_CONTENT_TYPE, "href": "https://a/u"},
            ],
            "https://a/u",
        ),
        ([{"rel": "http://webfinger.net/rel/profile-page", "href": "https://a/@u"}], None),
        ([{"rel": "self", "type": "application/json", "href": "https://a/u"}], None),
        ([{"rel": "self", "type": AP_CONTENT_TYPE}], None),
        ([{"rel": "self", "type": AP_CONTENT_TYPE, "href": 42}], None),
        (["self"], None),
        ([], None),
        (None, None),
    ],
)
def test_self_link(links: Any, expected: str | None) -> None:
    jrd: dict[str, Any] = {"subject": "acct:u@a"}
    if links is not None:
        jrd["links"] = links
    assert self_link(jrd) == expected
