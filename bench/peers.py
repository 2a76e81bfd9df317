"""Remote actors and the load they send: ``ActorPool``/``ActorHost`` (RSA-2048 actors
served on 127.0.0.1), ``sign_posts`` (pre-signed inbox POSTs) and ``post_all``
(a raw HTTP/1.1 keep-alive client that replays them)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from common import AS, LOCALHOST, PUBLIC, cores, free_port, percentile, rate
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from federation.httpsig import (
    sign_request,
)
from federation.keys import (
    Signer,
    dump_private_key_pem,
    dump_public_key_pem,
    generate_private_key,
    load_private_key,
)

# -- remote actors and signed requests -------------------------------------------------


@dataclass
class RemoteActor:
    uri: str
    key_id: str
    key_index: int


class ActorPool:
    """``count`` remote actors on one 127.0.0.1 host, sharing ``keys`` RSA-2048 keys.

    Generating an RSA key costs ~50 ms, so actors share a few keys; each actor
    still has its own URI and keyId (the node looks keys up by keyId).
    """

    def __init__(self, base_url: str, count: int, keys: int = 8, prefix: str = "a") -> None:
        self.base_url = base_url
        self.private_pems = [dump_private_key_pem(generate_private_key()) for _ in range(keys)]
        self.private_keys: list[RSAPrivateKey] = [load_private_key(p) for p in self.private_pems]
        self.public_pems = [dump_public_key_pem(k) for k in self.private_keys]
        self.actors = [
            RemoteActor(
                uri=f"{base_url}/users/{prefix}{i}",
                key_id=f"{base_url}/users/{prefix}{i}#main-key",
                key_index=i % keys,
            )
            for i in range(count)
        ]
        self.by_name = {a.uri.rsplit("/", 1)[1]: a for a in self.actors}

    def document(self, actor: RemoteActor) -> dict[str, Any]:
        name = actor.uri.rsplit("/", 1)[1]
        return {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": actor.uri,
            "type": "Person",
            "preferredUsername": name,
            "name": f"Bench actor {name}",
            "inbox": actor.uri + "/inbox",
            "outbox": actor.uri + "/outbox",
            "followers": actor.uri + "/followers",
            "endpoints": {"sharedInbox": self.base_url + "/inbox"},
            "publicKey": {
                "id": actor.key_id,
                "owner": actor.uri,
                "publicKeyPem": self.public_pems[actor.key_index],
            },
        }

    def keys_by_key_id(self) -> dict[str, str]:
        return {a.key_id: self.public_pems[a.key_index] for a in self.actors}

    def signer(self, actor: RemoteActor) -> Signer:
        return Signer(key_id=actor.key_id, private_key=self.private_keys[actor.key_index])

    async def seed(
        self, conn: asyncpg.Connection, actors: Sequence[RemoteActor] | None = None
    ) -> None:
        """Cache actors (and their keys) in a node's database, as a fetch would."""
        now = datetime.now(UTC)
        rows = []
        for actor in self.actors if actors is None else actors:
            doc = self.document(actor)
            rows.append(
                (
                    actor.uri,
                    f"{LOCALHOST}:{self.base_url.rsplit(':', 1)[1]}",
                    "Person",
                    doc["preferredUsername"],
                    doc["name"],
                    doc["inbox"],
                    doc["endpoints"]["sharedInbox"],
                    doc["followers"],
                    actor.key_id,
                    self.public_pems[actor.key_index],
                    orjson.dumps(doc).decode(),
                    now,
                )
            )
        await conn.executemany(
            """INSERT INTO remote_actors (uri, host, type, username, name, inbox, shared_inbox,
                   followers_url, key_id, public_key_pem, document, fetched_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)
               ON CONFLICT (uri) DO NOTHING""",
            rows,
        )


class ActorHost:
    """Serves an ``ActorPool``'s actor documents (the node fetches unknown keys here)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://{LOCALHOST}:{self.port}"
        self.pool: ActorPool | None = None
        self.fetches = 0
        self._runner: web.AppRunner | None = None

    async def _actor(self, request: web.Request) -> web.Response:
        assert self.pool is not None
        actor = self.pool.by_name.get(request.match_info["name"])
        if actor is None:
            return web.Response(status=404)
        self.fetches += 1
        return web.Response(
            body=orjson.dumps(self.pool.document(actor)),
            content_type="application/activity+json",
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOCALHOST, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def note_create(actor: RemoteActor, serial: str, audience: str, size: int = 1500) -> dict[str, Any]:
    """A Mastodon-shaped ``Create`` of a public ``Note`` that mentions ``audience``."""
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    note_id = f"{actor.uri}/statuses/{serial}"
    words = "Our coop has surplus seedlings and spare van capacity this week. "
    content = "<p>" + (words * (size // len(words) + 1))[:size] + "</p>"
    note = {
        "id": note_id,
        "type": "Note",
        "attributedTo": actor.uri,
        "content": content,
        "published": now,
        "url": note_id,
        "to": [PUBLIC],
        "cc": [actor.uri + "/followers", audience],
        "tag": [{"type": "Mention", "href": audience}],
        "sensitive": False,
    }
    return {
        "@context": [AS, {"sensitive": "as:sensitive"}],
        "id": note_id + "/activity",
        "type": "Create",
        "actor": actor.uri,
        "published": now,
        "to": [PUBLIC],
        "cc": [actor.uri + "/followers", audience],
        "object": note,
    }


def _raw_request(host_port: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sign_posts(
    pool: ActorPool,
    items: Sequence[tuple[RemoteActor, dict[str, Any]]],
    target_url: str,
    threads: int | None = None,
) -> list[bytes]:
    """Raw HTTP/1.1 POSTs of ``items`` to ``target_url``, each signed by its actor.

    Signing happens here, before any clock starts (RSA releases the GIL, so
    threads use every core).  The signed Host is the target's.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(target_url)
    host_port = parts.netloc
    path = parts.path or "/"

    def one(item: tuple[RemoteActor, dict[str, Any]]) -> bytes:
        actor, activity = item
        body = orjson.dumps(activity)
        headers = sign_request(
            method="POST",
            url=target_url,
            headers={
                "User-Agent": "coopfed-bench/1 (+http://127.0.0.1/)",
                "Content-Type": "application/activity+json",
            },
            body=body,
            signer=pool.signer(actor),
            now=datetime.now(UTC),
        )
        return _raw_request(host_port, path, headers, body)

    with ThreadPoolExecutor(max_workers=threads or cores()) as executor:
        return list(executor.map(one, items, chunksize=256))


# -- the load client --------------------------------------------------------------------


@dataclass
class LoadResult:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed: float = 0.0
    started_at: float = 0.0  # time.time() at the first request
    latencies: list[float] = field(default_factory=list)

    def per_second(self, status: int) -> float:
        return rate(self.statuses[status], self.elapsed)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sent": self.sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "seconds": round(self.elapsed, 3),
        }
        if self.latencies:
            out["response_ms"] = {
                "p50": round(percentile(self.latencies, 50) * 1000, 2),
                "p99": round(percentile(self.latencies, 99) * 1000, 2),
            }
        return out


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not expected")
    if length:
        await reader.readexactly(length)
    return status, close


async def post_all(
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    time_limit: float,
    per_second: float | None = None,
    host_header: str | None = None,
) -> LoadResult:
    """Send every request over ``concurrency`` keep-alive connections to ``port``.

    Closed loop by default (each connection sends its next request when the answer
    came); with ``per_second``, request i is not sent before ``i / per_second`` s
    (open loop, for a steady background load).  Stops at ``time_limit`` seconds.
    ``host_header`` replaces the Host line (to replay a node's requests elsewhere).
    """
    result = LoadResult()
    if host_header is not None:
        requests = [_replace_host(r, host_header) for r in requests]
    cursor = 0
    start = time.perf_counter()
    result.started_at = time.time()
    deadline = start + time_limit

    async def connection() -> None:
        nonlocal cursor
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while cursor < len(requests) and time.perf_counter() < deadline:
                index = cursor
                cursor += 1
                if per_second:
                    delay = start + index / per_second - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if writer is None:
                    reader, writer = await asyncio.open_connection(LOCALHOST, port)
                assert reader is not None
                sent_at = time.perf_counter()
                writer.write(requests[index])
                result.sent += 1
                try:
                    status, close = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    result.errors += 1
                    writer.close()
                    writer = None
                    continue
                result.latencies.append(time.perf_counter() - sent_at)
                result.statuses[status] += 1
                if close:
                    writer.close()
                    writer = None
        finally:
            if writer is not None:
                writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


def _replace_host(request: bytes, host: str) -> bytes:
    head, sep, body = request.partition(b"\r\n\r\n")
    lines = [
        b"Host: " + host.encode() if line.lower().startswith(b"host:") else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + sep + body
