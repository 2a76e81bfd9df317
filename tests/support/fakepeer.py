"""A Mastodon-shaped (or GoToSocial-shaped) remote server for tests.

It is a real HTTP server on 127.0.0.1 with real RSA keys: it serves actor
documents and WebFinger, verifies the signatures of what it receives with the
same rules a real server applies, records every inbox POST, and sends signed
activities the way Mastodon 4.x (``style="mastodon"``) or GoToSocial
(``style="gotosocial"``: ``hs2019``, keyId without fragment, ld+json) send them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from federation.httpsig import (
    SignatureError,
    compute_digest,
    format_http_date,
    parse_signature,
    verify_signature,
)
from federation.keys import (
    Signer,
    dump_public_key_pem,
    generate_private_key,
    load_public_key,
)

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = AS + "#Public"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool
    reason: str
    signer: str | None


@dataclass
class PeerActor:
    username: str
    base: str
    style: str
    private_key: Any = field(default_factory=generate_private_key)
    # False: the actor document has no ``endpoints.sharedInbox`` (personal inbox only).
    shared_inbox: bool = True

    @property
    def id(self) -> str:
        return f"{self.base}/users/{self.username}"

    @property
    def key_id(self) -> str:
        if self.style == "gotosocial":
            return f"{self.id}/main-key"
        return f"{self.id}#main-key"

    @property
    def signer(self) -> Signer:
        return Signer(key_id=self.key_id, private_key=self.private_key)

    @property
    def followers(self) -> str:
        return f"{self.id}/followers"

    def document(self) -> dict[str, Any]:
        document = {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": self.id,
            "type": "Person",
            "preferredUsername": self.username,
            "name": self.username.title(),
            "inbox": f"{self.id}/inbox",
            "outbox": f"{self.id}/outbox",
            "followers": self.followers,
            "following": f"{self.id}/following",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {
                "id": self.key_id,
                "owner": self.id,
                "publicKeyPem": dump_public_key_pem(self.private_key),
            },
        }
        if not self.shared_inbox:
            del document["endpoints"]
        return document


class FakePeer:
    """A remote server with any number of actors."""

    def __init__(
        self,
        *,
        style: str = "mastodon",
        require_signed_get: bool = False,
        hostname: str = "127.0.0.1",
        cache_keys: bool = False,
    ) -> None:
        # ``hostname="localhost"`` gives the peer a host (for blocks and host health)
        # distinct from every 127.0.0.1 peer and node; it still listens on 127.0.0.1.
        # ``cache_keys`` keeps fetched signing keys (fewer GETs on large fan-outs).
        self.style = style
        self.cache_keys = cache_keys
        self._keys: dict[str, tuple[Any, str | None]] = {}
        self.require_signed_get = require_signed_get
        self.received: list[Received] = []
        self.actors: dict[str, PeerActor] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        # Objects served as raw bytes: url -> (content type, body, delay in seconds).
        self.raw_objects: dict[str, tuple[str, bytes, float]] = {}
        self.inbox_status = 202
        # The body of the inbox's answer (a refusal's reason, for instance).
        self.inbox_answer = b""
        self.down = False
        # Seconds each inbox POST takes before it is answered (a slow receiver).
        self.inbox_delay = 0.0
        # Every GET of an actor or key document, by path (in order).
        self.gets: list[str] = []
        # Every GET of /objects/…: (path, the keyId of its signature or None).
        self.object_gets: list[tuple[str, str | None]] = []
        # When set, actor and key GETs answer this status / wait this long first.
        self.get_status: int | None = None
        self.get_delay = 0.0
        # When set, actor and key GETs answer these exact bytes: (content type, body),
        # with status 200 (a peer serving garbage: HTML, invalid JSON, …).
        self.get_raw: tuple[str, bytes] | None = None
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base = f"http://{hostname}:{self.port}"
        self._session: aiohttp.ClientSession | None = None
        self.changed = asyncio.Event()

    @property
    def domain(self) -> str:
        return urlsplit(self.base).netloc

    def add_actor(self, username: str, *, shared_inbox: bool = True) -> PeerActor:
        actor = PeerActor(username, self.base, self.style, shared_inbox=shared_inbox)
        self.actors[username] = actor
        return actor

    def rotate_key(self, actor: PeerActor) -> None:
        """Give ``actor`` a new key pair; its documents serve the new public key."""
        actor.private_key = generate_private_key()

    def gets_of(self, url: str) -> int:
        """How many times the actor or key document at ``url`` was fetched."""
        path = urlsplit(url).path
        return self.gets.count(path)

    async def start(self) -> FakePeer:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/users/{username}", self._actor)
        app.router.add_get("/users/{username}/main-key", self._key)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_get("/objects/{token}", self._object)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_post("/users/{username}/inbox", self._inbox)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if self._sock.fileno() == -1:  # started again after stop(): same port
            self._sock = socket.socket()
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind(("127.0.0.1", self.port))
        self._stopping.clear()
        await web.SockSite(self._runner, self._sock).start()
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- serving -------------------------------------------------------------

    def _signed_get_ok(self, request: web.Request) -> bool:
        return not self.require_signed_get or "Signature" in request.headers

    async def _document_get(self, request: web.Request) -> web.Response | None:
        """Count an actor/key GET; apply ``get_delay`` and ``get_status`` if set."""
        self.gets.append(request.path)
        if self.get_delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.get_delay)
        if self.get_status is not None:
            return web.json_response({"error": "unavailable"}, status=self.get_status)
        if self.get_raw is not None:
            content_type, raw = self.get_raw
            return web.Response(body=raw, headers={"Content-Type": content_type})
        return None

    async def _actor(self, request: web.Request) -> web.Response:
        if (override := await self._document_get(request)) is not None:
            return override
        actor = self.actors.get(request.match_info["username"])
        if actor is None or self.down:
            return web.json_response({"error": "not found"}, status=404)
        if not self._signed_get_ok(request):
            return web.json_response({"error": "signature required"}, status=401)
        return web.Response(
            body=orjson.dumps(actor.document()), content_type="application/activity+json"
        )

    async def _key(self, request: web.Request) -> web.Response:
        if (override := await self._document_get(request)) is not None:
            return override
        actor = self.actors.get(request.match_info["username"])
        if actor is None:
            return web.json_response({"error": "not found"}, status=404)
        stub = {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": actor.key_id,
            "owner": actor.id,
            "publicKeyPem": dump_public_key_pem(actor.private_key),
        }
        return web.Response(body=orjson.dumps(stub), content_type="application/activity+json")

    async def _object(self, request: web.Request) -> web.Response:
        url = f"{self.base}/objects/{request.match_info['token']}"
        signature = request.headers.get("Signature", "")
        key_id = (
            signature.split('keyId="', 1)[1].split('"', 1)[0] if 'keyId="' in signature else None
        )
        self.object_gets.append((request.path, key_id))
        if url in self.raw_objects:
            # Exactly these bytes, after a delay: a peer serving garbage, or slowly.
            content_type, raw, delay = self.raw_objects[url]
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            return web.Response(body=raw, headers={"Content-Type": content_type})
        obj = self.objects.get(url)
        if obj is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.Response(body=orjson.dumps(obj), content_type="application/activity+json")

    async def _webfinger(self, request: web.Request) -> web.Response:
        resource = request.query.get("resource", "")
        user = resource.removeprefix("acct:").split("@")[0]
        actor = self.actors.get(user)
        if actor is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(
            {
                "subject": f"acct:{user}@{self.domain}",
                "links": [{"rel": "self", "type": "application/activity+json", "href": actor.id}],
            },
            content_type="application/jrd+json",
        )

    async def _inbox(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503)
        body = await request.read()
        verified, reason, signer = await self._verify(request, body)
        self.received.append(
            Received(
                request.path, dict(request.headers), orjson.loads(body), verified, reason, signer
            )
        )
        self.changed.set()
        if self.inbox_delay > 0:
            await asyncio.sleep(self.inbox_delay)
        if not verified:
            return web.json_response({"error": reason}, status=401)
        return web.Response(status=self.inbox_status, body=self.inbox_answer)

    async def _verify(self, request: web.Request, body: bytes) -> tuple[bool, str, str | None]:
        try:
            parsed = parse_signature(
                method=request.method, target_uri=str(request.url), headers=request.headers
            )
            assert self._session is not None
            owner = parsed.key_id.split("#")[0]
            if self.cache_keys and owner in self._keys:
                key, signer_id = self._keys[owner]
            else:
                async with self._session.get(
                    owner, headers={"Accept": "application/activity+json"}
                ) as resp:
                    document = orjson.loads(await resp.read())
                key = load_public_key(document["publicKey"]["publicKeyPem"])
                signer_id = document.get("id")
                if self.cache_keys:
                    self._keys[owner] = (key, signer_id)
            verify_signature(parsed, key, method=request.method, body=body, now=datetime.now(UTC))
        except SignatureError as exc:
            return False, exc.reason, None
        except (aiohttp.ClientError, KeyError, ValueError) as exc:
            return False, f"key fetch failed: {exc!r}", None
        return True, "ok", signer_id

    # -- sending -------------------------------------------------------------

    def new_id(self, actor: PeerActor, kind: str = "activities") -> str:
        return f"{actor.id}/{kind}/{uuid.uuid4().hex}"

    def signed_headers(
        self, actor: PeerActor, url: str, body: bytes, now: datetime | None = None
    ) -> dict[str, str]:
        """Headers exactly as the peer's style sends them."""
        moment = now or datetime.now(UTC)
        parts = urlsplit(url)
        content_type = (
            'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
            if self.style == "gotosocial"
            else "application/activity+json"
        )
        headers = {
            "Host": parts.netloc,
            "Date": format_http_date(moment),
            "Digest": compute_digest(body),
            "Content-Type": content_type,
        }
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if self.style == "gotosocial":
            names = ["(request-target)", "host", "date", "digest"]
            algorithm = "hs2019"
        else:
            names = ["host", "date", "digest", "content-type", "(request-target)"]
            algorithm = "rsa-sha256"
        lines = []
        for name in names:
            value = (
                f"post {target}"
                if name == "(request-target)"
                else headers[
                    {
                        "host": "Host",
                        "date": "Date",
                        "digest": "Digest",
                        "content-type": "Content-Type",
                    }[name]
                ]
            )
            lines.append(f"{name}: {value}")
        signature = actor.private_key.sign(
            "\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        headers["Signature"] = (
            f'keyId="{actor.key_id}",algorithm="{algorithm}",headers="{" ".join(names)}",'
            f'signature="{base64.b64encode(signature).decode()}"'
        )
        return headers

    async def send(
        self,
        actor: PeerActor,
        inbox: str,
        activity: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """POST a signed activity; returns the status and the JSON answer."""
        assert self._session is not None
        data = body if body is not None else orjson.dumps(activity)
        sent = headers if headers is not None else self.signed_headers(actor, inbox, data)
        async with self._session.post(inbox, data=data, headers=sent) as resp:
            text = await resp.read()
            try:
                answer = orjson.loads(text) if text else {}
            except orjson.JSONDecodeError:
                answer = {"raw": text.decode(errors="replace")}
            return resp.status, answer

    def follow(self, actor: PeerActor, target: str) -> dict[str, Any]:
        return {
            "@context": AS,
            "id": f"{self.base}/{uuid.uuid4()}",
            "type": "Follow",
            "actor": actor.id,
            "object": target,
        }

    def note(
        self,
        actor: PeerActor,
        content: str,
        *,
        to: list[str] | None = None,
        cc: list[str] | None = None,
        in_reply_to: str | None = None,
    ) -> dict[str, Any]:
        object_id = f"{self.base}/objects/{uuid.uuid4().hex}"
        note = {
            "id": object_id,
            "type": "Note",
            "attributedTo": actor.id,
            "content": content,
            "published": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "to": to if to is not None else [PUBLIC],
            "cc": cc if cc is not None else [actor.followers],
            "inReplyTo": in_reply_to,
        }
        self.objects[object_id] = {"@context": AS, **note}
        return note

    def create(self, actor: PeerActor, note: dict[str, Any]) -> dict[str, Any]:
        return {
            "@context": AS,
            "id": f"{note['id']}/activity",
            "type": "Create",
            "actor": actor.id,
            "to": note["to"],
            "cc": note["cc"],
            "object": note,
        }

    def of_type(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.body.get("type") == kind]

    async def wait_for(self, kind: str, *, count: int = 1, timeout: float = 15.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.of_type(kind)) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.of_type(kind)
