"""What operators' probes ask: ``GET /health`` and ``GET /metrics``.

``/health`` answers 200 while the database answers, 503 otherwise.
``/metrics`` serves ``federation.metrics`` to loopback clients that came
through no proxy, or to any client with a valid API token
(``coopfed token create``) sent as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from federation.context import NODE
from federation.credentials import bearer_token, hash_token, is_loopback_client
from federation.errors import error_response, json_response
from federation.metrics import CONTENT_TYPE, Gauges, render_metrics


async def handle_health(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        ok = await asyncio.wait_for(node.store.ping(), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        ok = False
    body = {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "down"}
    return json_response(body, status=200 if ok else 503)


async def handle_metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    if not is_loopback_client(request.remote, request.headers):
        token = bearer_token(request.headers)
        if token is None or await node.store.actor_for_token(hash_token(token)) is None:
            reason = "missing_token" if token is None else "invalid_token"
            challenge = 'Bearer realm="coopfed"'
            if token is not None:
                challenge += ', error="invalid_token"'
            response = error_response(
                401, "metrics need a loopback client or an API token (coopfed token)", reason
            )
            response.headers["WWW-Authenticate"] = challenge
            return response
    gauges = Gauges(**await node.store.operations_gauges())
    body = render_metrics(node.metrics, gauges)
    return web.Response(
        body=body.encode(), headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
    )
