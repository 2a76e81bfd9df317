"""The Mastodon streaming API: ``/api/v1/streaming`` over WebSocket, and the
server-sent events paths (``/api/v1/streaming/user``, ``/public``, ``/public/local``)
that Mastodon.py reads.

The token comes as ``access_token`` in the query, ``Authorization: Bearer`` or
``Sec-WebSocket-Protocol`` (echoed back, as browsers need).  A WebSocket names
its first stream with ``?stream=``, then sends ``{"type": "subscribe", "stream":
"user"}`` (or ``unsubscribe``).  Messages are Mastodon's: ``{"stream": [...],
"event": "update", "payload": "<the status JSON, as a string>"}``.

Bounds: a token holds at most ``stream_connections_per_token`` streams (429
beyond); pings every ``stream_heartbeat_seconds`` (a client that does not answer
is closed); a send that takes longer than ``stream_send_timeout_seconds`` or a
queue that overflows (``stream_queue_size``) drops the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from clientapi.common import MastoError, endpoint
from clientapi.oauth import Auth, authenticate_token, scope_allows
from clientapi.streamhub import STREAMS, Event, StreamHub, Subscriber
from federation.context import NODE

log = logging.getLogger(__name__)

HUB = web.AppKey("stream_hub", StreamHub)
SSE_PATHS = {
    "user": "user",
    "user/notification": "user:notification",
    "public": "public",
    "public/local": "public:local",
}
MAX_MESSAGE = 4096  # a client sends only small subscribe/unsubscribe messages
SEND_BUFFER = 65536  # the kernel's send buffer of a stream socket: no autotuning to megabytes
CLOSE_GRACE = 1.0  # seconds a closing handshake may take before the socket is dropped

Sender = Callable[[Event], Awaitable[None]]


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK", content_type="text/plain")


def _token(request: web.Request) -> tuple[str, str | None]:
    """The access token, and the subprotocol to echo when it came as one."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    if request.query.get("access_token"):
        return request.query["access_token"].strip(), None
    protocol = request.headers.get("Sec-WebSocket-Protocol", "").split(",")[0].strip()
    return protocol, protocol or None


def _scope_of(stream: str) -> str:
    return "read:notifications" if stream == "user:notification" else "read:statuses"


def _check_stream(auth: Auth, stream: str) -> str | None:
    """Why ``stream`` cannot be subscribed to with this token, or None."""
    if stream not in STREAMS:
        return "Unknown stream type"
    if not scope_allows(auth.token.scopes, _scope_of(stream)):
        return "Access token does not have the required scopes"
    return None


async def _open(request: web.Request, stream: str | None) -> tuple[StreamHub, Subscriber, Auth]:
    node = request.app[NODE]
    token, _ = _token(request)
    auth = await authenticate_token(node, token, None)  # 401 JSON before any upgrade
    if stream is not None:
        problem = _check_stream(auth, stream)
        if problem is not None:
            raise MastoError(400 if problem.startswith("Unknown") else 403, problem)
    sub = Subscriber(
        member=auth.member,
        token_id=auth.token.id,
        scopes=list(auth.token.scopes),
        limit=node.settings.stream_queue_size,
        streams={stream} if stream else set(),
    )
    hub = request.app[HUB]
    if not hub.register(sub):
        raise MastoError(429, "Too many streaming connections for this access token")
    try:
        await hub.prime(sub)
    except BaseException:
        hub.unregister(sub)
        raise
    return hub, sub, auth


async def _pump(sub: Subscriber, send: Sender, timeout: float) -> str:
    """Send the subscriber's events until it must end; says why it ended."""
    while True:
        event = await sub.next()
        if event is None:
            return "overflow" if sub.overflowed else "stopping"
        try:
            async with asyncio.timeout(timeout):
                await send(event)
        except TimeoutError:
            return "slow"


@endpoint
async def websocket(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/streaming`` (also ``/api/v1/streaming/`` and the SSE paths) upgraded."""
    stream = request.query.get("stream")
    if stream == "public" and request.query.get("local", "").lower() in ("1", "true"):
        stream = "public:local"
    if request.match_info.get("tail") in SSE_PATHS:
        stream = SSE_PATHS[request.match_info["tail"]]
    elif request.match_info.get("tail"):
        raise MastoError(404, "Unknown stream type")
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if not upgrade:
        if stream is None:
            raise MastoError(
                400, "Use a WebSocket, or a stream path such as /api/v1/streaming/user"
            )
        return await _server_sent_events(request, stream)
    hub, sub, auth = await _open(request, stream)
    settings = request.app[NODE].settings
    _, protocol = _token(request)
    ws = web.WebSocketResponse(
        heartbeat=settings.stream_heartbeat_seconds,
        protocols=(protocol,) if protocol else (),
        max_msg_size=MAX_MESSAGE,
    )
    try:
        await ws.prepare(request)
        _bound_send_buffer(request)
        writer = asyncio.create_task(
            _pump(
                sub, lambda e: ws.send_str(e.websocket_text()), settings.stream_send_timeout_seconds
            )
        )
        reader = asyncio.create_task(_read(ws, sub, auth))
        ended = asyncio.create_task(sub.ended.wait())  # even while a send is blocked
        done, _ = await asyncio.wait({writer, reader, ended}, return_when=asyncio.FIRST_COMPLETED)
        for task in (writer, reader, ended):
            task.cancel()
        await asyncio.gather(writer, reader, ended, return_exceptions=True)
        if sub.overflowed or sub.stopping:
            why = "overflow" if sub.overflowed else "stopping"
        elif writer in done and not writer.cancelled() and writer.exception() is None:
            why = writer.result()
        else:
            why = "closed"
        code = {
            "overflow": WSCloseCode.POLICY_VIOLATION,
            "slow": WSCloseCode.POLICY_VIOLATION,
            "stopping": WSCloseCode.GOING_AWAY,
        }.get(why, WSCloseCode.OK)
        if why in ("overflow", "slow"):
            log.info("stream of @%s dropped: the client reads too slowly", sub.member.username)
        await _close(request, ws, code, why)
    finally:
        hub.unregister(sub)
    return ws


async def _read(ws: web.WebSocketResponse, sub: Subscriber, auth: Auth) -> None:
    """The client's subscribe and unsubscribe messages, until it closes."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            request = orjson.loads(message.data)
        except orjson.JSONDecodeError:
            await ws.send_str(orjson.dumps({"error": "Invalid JSON", "status": 400}).decode())
            continue
        if not isinstance(request, dict) or request.get("type") not in ("subscribe", "unsubscribe"):
            continue
        stream = str(request.get("stream", ""))
        if stream == "public" and request.get("local") is True:
            stream = "public:local"
        problem = _check_stream(auth, stream)
        if problem is not None:
            await ws.send_str(orjson.dumps({"error": problem, "status": 400}).decode())
        elif request["type"] == "subscribe":
            sub.streams.add(stream)
        else:
            sub.streams.discard(stream)


def _bound_send_buffer(request: web.Request) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)


async def _close(request: web.Request, ws: web.WebSocketResponse, code: int, why: str) -> None:
    """Close with a code and reason; a client that does not answer is cut off."""
    try:
        async with asyncio.timeout(CLOSE_GRACE):
            await ws.close(code=code, message=why.encode())
    except (TimeoutError, ConnectionError):
        if request.transport is not None:
            request.transport.abort()


async def _server_sent_events(request: web.Request, stream: str) -> web.StreamResponse:
    hub, sub, _ = await _open(request, stream)
    settings = request.app[NODE].settings
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    try:
        await response.prepare(request)
        _bound_send_buffer(request)
        await response.write(b":)\n")
        while True:
            event = await sub.next(timeout=settings.stream_heartbeat_seconds)
            if event is None and (sub.overflowed or sub.stopping):
                break
            text = event.sse_text() if event is not None else ":thump\n"
            async with asyncio.timeout(settings.stream_send_timeout_seconds):
                await response.write(text.encode())
    except (TimeoutError, ConnectionError):
        if request.transport is not None:
            request.transport.abort()
    finally:
        hub.unregister(sub)
    return response


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    """The process's stream hub, from the node's start to its stop."""
    hub = StreamHub(app[NODE])
    app[HUB] = hub
    task = asyncio.create_task(hub.run(), name="stream-hub")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def close_streams(app: web.Application) -> None:
    """At shutdown: every stream ends (WebSockets with 1001), so a stop never hangs."""
    if HUB not in app:
        return
    hub = app[HUB]
    hub.stop_all()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_GRACE * 3):
            while hub.subscribers:
                await asyncio.sleep(0.05)
