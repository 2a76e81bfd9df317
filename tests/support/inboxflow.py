"""What the inbox tests share: raw POSTs, signed headers, counting what a node
stored, and the checks of a refusal.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from federation.httpsig import compute_content_digest, format_http_date
from federation.rfc9421 import authority, serialize_inner_list, signature_base
from tests.support.fakepeer import FakePeer, PeerActor
from tests.support.nodes import RunningNode

# -- helpers -------------------------------------------------------------------

Headers = dict[str, str]
Answer = tuple[int, dict[str, Any]]


async def stored(node: RunningNode) -> dict[str, int]:
    """How many inbox rows and jobs the node holds."""
    pool = node.ctx.store.pool
    return {
        "inbox_activities": await pool.fetchval("SELECT count(*) FROM inbox_activities"),
        "jobs": await pool.fetchval("SELECT count(*) FROM jobs"),
    }


NOTHING = {"inbox_activities": 0, "jobs": 0}


async def post_raw(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes | Any,
    headers: Headers,
    *,
    skip_auto_headers: tuple[str, ...] = (),
) -> Answer:
    """POST exactly these bytes and headers; the answer must be JSON."""
    async with http.post(
        url, data=body, headers=headers, skip_auto_headers=skip_auto_headers
    ) as resp:
        raw = await resp.read()
        assert resp.content_type == "application/json", (resp.status, raw[:200])
        return resp.status, orjson.loads(raw)


def assert_refused(answer: Answer, status: int, reason: str) -> None:
    """The exact status, and a JSON body of exactly {"error": <text>, "reason": reason}."""
    got_status, body = answer
    assert (got_status, body.get("reason")) == (status, reason), body
    assert set(body) == {"error", "reason"}, body
    assert isinstance(body["error"], str) and body["error"], body


def create_activity(peer: FakePeer, actor: PeerActor, text: str = "Hello") -> dict[str, Any]:
    return peer.create(actor, peer.note(actor, text))


def rfc9421_signed(
    actor: PeerActor, url: str, body: bytes, *, components: tuple[str, ...], now: datetime
) -> Headers:
    """RFC 9421 headers over ``components`` (any mix of derived and header components),
    built by hand the way Fedify signs (label sig1, alg, keyid, created)."""
    headers = {
        "Host": authority(urlsplit(url)),
        "Date": format_http_date(now),
        "Content-Digest": compute_content_digest(body),
        "Content-Type": "application/activity+json",
    }
    params: dict[str, int | str] = {
        "alg": "rsa-v1_5-sha256",
        "keyid": actor.key_id,
        "created": int(now.timestamp()),
    }
    sig_params = serialize_inner_list(list(components), dict(params))
    base = signature_base(
        components,
        sig_params,
        method="POST",
        target_uri=url,
        headers={name.lower(): value for name, value in headers.items()},
    )
    signature = actor.private_key.sign(base, padding.PKCS1v15(), hashes.SHA256())
    headers["Signature-Input"] = f"sig1={sig_params}"
    headers["Signature"] = f"sig1=:{base64.b64encode(signature).decode()}:"
    return headers


@dataclass
class Sent:
    headers: Headers
    body: bytes
    skip_auto_headers: tuple[str, ...] = ()


@dataclass
class World:
    peer: FakePeer
    alice: PeerActor
    bob: PeerActor
    node: RunningNode
    url: str
    activity: dict[str, Any] = field(default_factory=dict)

    def signed(
        self,
        document: Any = None,
        *,
        actor: PeerActor | None = None,
        now: datetime | None = None,
        raw: bytes | None = None,
    ) -> Sent:
        if raw is None:
            raw = orjson.dumps(self.activity if document is None else document)
        signer = actor or self.alice
        return Sent(self.peer.signed_headers(signer, self.url, raw, now=now), raw)
