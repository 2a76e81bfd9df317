"""NodeInfo 2.0 and 2.1: what software this node runs and how big it is."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.context import NODE
from federation.errors import ApiError, json_response
from federation.version import software_version

SCHEMA_BASE = "http://nodeinfo.diaspora.software/ns/schema/"
VERSIONS = ("2.0", "2.1")
SOFTWARE_NAME = "coopfed"
REPOSITORY = "https://coopfed.example/source"


def build_nodeinfo_links(base: str) -> dict[str, Any]:
    return {
        "links": [{"rel": f"{SCHEMA_BASE}{v}", "href": f"{base}/nodeinfo/{v}"} for v in VERSIONS]
    }


def build_nodeinfo(
    schema: str, *, users: int, local_posts: int, node_name: str, node_description: str
) -> dict[str, Any]:
    software: dict[str, Any] = {"name": SOFTWARE_NAME, "version": software_version()}
    if schema == "2.1":
        software["repository"] = REPOSITORY
    return {
        "version": schema,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {
            "users": {"total": users, "activeMonth": users, "activeHalfyear": users},
            "localPosts": local_posts,
        },
        "metadata": {"nodeName": node_name, "nodeDescription": node_description},
    }


async def handle_nodeinfo_links(request: web.Request) -> web.Response:
    return json_response(build_nodeinfo_links(request.app[NODE].urls.base))


async def handle_nodeinfo(request: web.Request) -> web.Response:
    schema = request.match_info["version"]
    if schema not in VERSIONS:
        raise ApiError(404, "unknown NodeInfo version", reason="not_found")
    node = request.app[NODE]
    coop = await node.coop_actor()
    users = sum(1 for a in await node.store.list_local_actors() if a.kind != "instance")
    document = build_nodeinfo(
        schema,
        users=users,
        local_posts=await node.store.count_local_posts(),
        node_name=coop.name,
        node_description=coop.summary,
    )
    return json_response(document, headers={"Access-Control-Allow-Origin": "*"})
