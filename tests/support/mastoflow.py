"""Shared steps of the client API tests: a member, an app, a token, and waits.

``member_token`` goes through the real HTTP endpoints (app registration and the
password grant), as an app would; ``follow_accepted`` waits for the other node's
Accept to arrive.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from federation.store import LocalActor
from outbox.members import create_member
from tests.support.nodes import RunningNode, eventually

PASSWORD = "correct horse battery"


async def add_member(node: RunningNode, username: str = "alice", **kwargs: Any) -> LocalActor:
    return await create_member(node.ctx, username, PASSWORD, name=kwargs.get("name", ""))


async def register_app(
    http: aiohttp.ClientSession,
    node: RunningNode,
    *,
    redirect_uris: str = "urn:ietf:wg:oauth:2.0:oob",
    scopes: str = "read write follow push",
) -> dict[str, Any]:
    async with http.post(
        f"{node.base_url}/api/v1/apps",
        data={"client_name": "Test App", "redirect_uris": redirect_uris, "scopes": scopes},
    ) as response:
        assert response.status == 200, await response.text()
        app: dict[str, Any] = await response.json()
        return app


async def password_token(
    http: aiohttp.ClientSession,
    node: RunningNode,
    app: dict[str, Any],
    username: str = "alice",
    scope: str = "read write follow push",
) -> str:
    async with http.post(
        f"{node.base_url}/oauth/token",
        data={
            "grant_type": "password",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "username": username,
            "password": PASSWORD,
            "scope": scope,
        },
    ) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["access_token"])


async def member_token(
    http: aiohttp.ClientSession, node: RunningNode, username: str = "alice"
) -> str:
    """A new member ``username`` and a token of a new app for it."""
    await add_member(node, username)
    return await password_token(http, node, await register_app(http, node), username)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def api(
    http: aiohttp.ClientSession,
    node: RunningNode,
    method: str,
    path: str,
    token: str | None = None,
    **kwargs: Any,
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    """(status, JSON, headers) of one client API call."""
    headers = bearer(token) if token else {}
    async with http.request(method, f"{node.base_url}{path}", headers=headers, **kwargs) as r:
        return r.status, await r.json(content_type=None), r.headers


async def follow_accepted(node: RunningNode, member: LocalActor, target: str) -> None:
    """Wait until ``member``'s follow of the actor ``target`` is accepted."""

    async def accepted() -> bool:
        follow = await node.ctx.store.get_follow(member.id, target, "outbound")
        return follow is not None and follow.state == "accepted"

    await eventually(accepted, message=f"@{member.username}'s follow of {target} accepted")
