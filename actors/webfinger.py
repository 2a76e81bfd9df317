"""WebFinger (RFC 7033) and host-meta: how the fediverse finds ``coop@domain``.

Serving side: ``handle_webfinger`` answers ``acct:user@domain`` and the actor
URL itself.  Client side: ``resolve_handle`` turns a handle into an actor URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from actors.remote import fetch_actor
from federation.client import FetchError
from federation.context import NODE, NodeContext
from federation.errors import ApiError, json_response
from federation.jsonld import AP_CONTENT_TYPE, LD_CONTENT_TYPE
from federation.rfc9421 import authority
from federation.settings import USERNAME_RE
from federation.store import RemoteActor
from federation.urls import INSTANCE_ACTOR_USERNAME, Urls

JRD_CONTENT_TYPE = "application/jrd+json"
HANDLE_RE = re.compile(r"^@?(?P<user>[^@\s/]+)@(?P<host>[^@\s/]+)$")
MAX_RESOURCE_LENGTH = 512


class WebfingerError(Exception):
    def __init__(self, handle: str, reason: str) -> None:
        super().__init__(f"{handle}: {reason}")
        self.handle = handle
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Handle:
    username: str
    host: str

    def __str__(self) -> str:
        return f"{self.username}@{self.host}"


def parse_handle(text: str) -> Handle | None:
    """``coop@host``, ``@coop@host`` or ``acct:coop@host``; None if it is none of them."""
    text = text.strip()
    if text.startswith("acct:"):
        text = text[5:]
    match = HANDLE_RE.match(text)
    if not match:
        return None
    return Handle(match["user"], match["host"].lower())


def parse_resource(resource: str, urls: Urls) -> str:
    """The local username a WebFinger ``resource`` names.

    Raises ApiError 400 for a malformed resource and 404 for one that is not ours.
    """
    if not resource or len(resource) > MAX_RESOURCE_LENGTH:
        raise ApiError(400, "missing or oversized resource parameter", reason="bad_resource")
    if resource.startswith(("http://", "https://")):
        username = urls.local_username(resource)
        if username is None and resource.startswith(f"{urls.base}/@"):
            username = resource[len(urls.base) + 2 :]
        if username is None:
            raise ApiError(404, "no such resource on this node", reason="not_found")
        return username
    if not resource.startswith("acct:") and "@" not in resource:
        raise ApiError(
            400, "resource must be acct:user@host or an actor URL", reason="bad_resource"
        )
    handle = parse_handle(resource)
    if handle is None or not USERNAME_RE.match(handle.username):
        raise ApiError(
            400, "resource must be acct:user@host or an actor URL", reason="bad_resource"
        )
    if handle.host != urls.domain.lower():
        raise ApiError(404, "this node does not answer for that domain", reason="not_found")
    return handle.username


def build_jrd(username: str, urls: Urls) -> dict[str, Any]:
    actor_url = urls.instance_actor if username == INSTANCE_ACTOR_USERNAME else urls.actor(username)
    links: list[dict[str, Any]] = [
        {"rel": "self", "type": AP_CONTENT_TYPE, "href": actor_url},
    ]
    aliases = [actor_url]
    if username != INSTANCE_ACTOR_USERNAME:
        page = urls.profile_page(username)
        aliases.append(page)
        links.insert(
            0,
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": page},
        )
    return {"subject": f"acct:{username}@{urls.domain}", "aliases": aliases, "links": links}


async def handle_webfinger(request: web.Request) -> web.Response:
    node = request.app[NODE]
    username = parse_resource(request.query.get("resource", ""), node.urls)
    actor = await node.store.get_local_actor(username)
    if actor is None:
        # Usernames are case-insensitive, as on Mastodon: acct:Coop@host finds @coop.
        wanted = username.lower()
        actors = await node.store.list_local_actors()
        actor = next((a for a in actors if a.username.lower() == wanted), None)
    if actor is None:
        raise ApiError(404, "no such user", reason="not_found")
    if actor.deleted_at is not None:
        raise ApiError(410, "this user was deleted", reason="gone")
    return json_response(
        build_jrd(actor.username, node.urls),
        content_type=JRD_CONTENT_TYPE,
        headers={"Access-Control-Allow-Origin": "*"},
    )


async def handle_host_meta(request: web.Request) -> web.Response:
    node = request.app[NODE]
    template = f"{node.urls.base}/.well-known/webfinger?resource={{uri}}"
    if request.path.endswith(".json"):
        return json_response({"links": [{"rel": "lrdd", "template": template}]})
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{template}"/>\n'
        "</XRD>\n"
    )
    return web.Response(text=body, content_type="application/xrd+xml")


def webfinger_url(handle: Handle, *, scheme: str) -> str:
    resource = quote(f"acct:{handle}", safe=":@")
    return f"{scheme}://{handle.host}/.well-known/webfinger?resource={resource}"


def self_link(jrd: dict[str, Any]) -> str | None:
    for link in jrd.get("links") or []:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and link.get("type") in (AP_CONTENT_TYPE, LD_CONTENT_TYPE)
            and isinstance(link.get("href"), str)
        ):
            return str(link["href"])
    return None


async def resolve_handle(node: NodeContext, text: str) -> str:
    """The actor URL of ``user@host`` (by WebFinger), or ``text`` if it is a URL.

    Tries https first; http only where the node allows private addresses (local
    development and tests run plain http on 127.0.0.1).
    """
    if text.startswith(("http://", "https://")):
        return text
    handle = parse_handle(text)
    if handle is None:
        raise WebfingerError(text, "not a handle (user@host) or an actor URL")
    schemes = ["https", "http"] if node.settings.allow_private_addresses else ["https"]
    last: Exception | None = None
    for scheme in schemes:
        try:
            jrd = await node.client.fetch_json(
                webfinger_url(handle, scheme=scheme),
                signer=None,
                accept=f"{JRD_CONTENT_TYPE}, application/json",
            )
        except FetchError as exc:
            last = exc
            continue
        href = self_link(jrd)
        if href is None:
            raise WebfingerError(str(handle), "no ActivityPub actor in the WebFinger answer")
        if urlsplit(href).scheme not in ("http", "https"):
            raise WebfingerError(str(handle), "the actor link is not an http(s) URL")
        return href
    raise WebfingerError(str(handle), f"WebFinger lookup failed: {last}")


def _handle_host(uri: str) -> str:
    """The host[:port] a handle on ``uri``'s server would carry (no default port)."""
    try:
        return authority(urlsplit(uri))
    except ValueError:
        return ""


async def resolve_actor(node: NodeContext, text: str) -> RemoteActor:
    """The actor ``user@host`` names, found through ``host``'s WebFinger only.

    The actor must live on the handle's host; or else the WebFinger of the actor's
    own host must name it too (Mastodon's check for split domains).  Raises
    WebfingerError, FetchError or InvalidActor.
    """
    handle = parse_handle(text)
    if handle is None:
        raise WebfingerError(text, "not a handle (user@host)")
    actor = await fetch_actor(node, await resolve_handle(node, str(handle)), exact=False)
    actor_host = _handle_host(actor.uri)
    if actor_host == _handle_host(f"http://{handle.host}"):
        return actor
    confirmed = await resolve_handle(node, f"{actor.username}@{actor_host}")
    if confirmed != actor.uri:
        raise WebfingerError(str(handle), f"the actor {actor.uri} is not on {handle.host}")
    return actor
