"""/health: what a load balancer or systemd watchdog polls."""

from __future__ import annotations

import asyncio

import aiohttp

from federation.jsonld import AP_CONTENT_TYPE
from tests.support.nodes import NodeFactory, RunningNode


async def test_health_ok(node: RunningNode, http: aiohttp.ClientSession) -> None:
    # Given a running node with its database up, when /health is polled
    async with http.get(f"{node.base_url}/health") as response:
        # Then 200 and a JSON status
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == {"status": "ok", "database": "ok"}


async def test_health_503_when_database_unreachable(
    nodes: NodeFactory, http: aiohttp.ClientSession
) -> None:
    # Given a node of its own (its own database; the shared cluster stays up)
    node = await nodes("health")
    async with http.get(node.actor_url, headers={"Accept": AP_CONTENT_TYPE}) as response:
        assert response.status == 200
    # When the node loses its database (its connections are cut under it; a graceful
    # pool.close() would wait forever for the config listener's connection)
    node.ctx.store.pool.terminate()
    # Then /health says so with 503
    async with http.get(f"{node.base_url}/health") as response:
        assert response.status == 503
        assert response.content_type == "application/json"
        assert await response.json() == {"status": "unavailable", "database": "down"}
    # And routes that need the database answer 503 JSON rather than a 500
    async with http.get(node.actor_url, headers={"Accept": AP_CONTENT_TYPE}) as response:
        assert response.status == 503
        assert response.content_type == "application/json"
        assert (await response.json())["reason"] == "database_unavailable"
    # And the node still stops promptly (its listeners must not swallow the cancel)
    async with asyncio.timeout(10):
        await node.stop()
