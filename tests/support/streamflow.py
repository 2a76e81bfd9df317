"""Shared steps of the streaming API tests: open a stream, read its next event."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from tests.support.nodes import RunningNode


def stream_url(node: RunningNode, path: str = "/api/v1/streaming") -> str:
    return node.base_url.replace("http://", "ws://", 1) + path


async def next_event(
    ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0, *, event: str | None = None
) -> dict[str, Any]:
    """The next message of the stream (of kind ``event`` when given), decoded; the
    payload of an ``update`` or ``notification`` is decoded too."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            found: dict[str, Any] = orjson.loads(message.data)
            if event is not None and found.get("event") != event:
                continue
            if found.get("event") in ("update", "notification"):
                found["payload"] = orjson.loads(found["payload"])
            return found


async def no_event(ws: aiohttp.ClientWebSocketResponse, wait: float = 0.5) -> None:
    """Nothing arrives on the stream for ``wait`` seconds."""
    try:
        async with asyncio.timeout(wait):
            message = await ws.receive()
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {message!r}")
