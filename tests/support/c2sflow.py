"""What the client-to-server tests share: a token, a POST to the outbox, a GET of
the JSON API, and dates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from outbox.c2s import issue_token
from tests.support.fakepeer import Received
from tests.support.nodes import RunningNode

AP = "application/activity+json"
Answer = tuple[int, Any, CIMultiDictProxy[str]]


async def token_for(node: RunningNode, name: str = "script") -> str:
    _, token = await issue_token(node.ctx, await node.ctx.coop_actor(), name)
    return token


async def post(
    http: aiohttp.ClientSession,
    node: RunningNode,
    token: str | None,
    body: Any = None,
    *,
    data: bytes | None = None,
    content_type: str = AP,
    username: str | None = None,
) -> Answer:
    """POST to the coop's outbox; returns (status, JSON answer, headers)."""
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{node.base_url}/users/{username or node.settings.username}/outbox"
    payload = data if data is not None else orjson.dumps(body)
    async with http.post(url, data=payload, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def api_get(
    http: aiohttp.ClientSession, node: RunningNode, token: str | None, path: str
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(f"{node.base_url}{path}", headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat(timespec="seconds")


def iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def signed_by(received: Received, node: RunningNode) -> bool:
    return received.verified and received.signer == node.actor_url
