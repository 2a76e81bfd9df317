"""Who sent this?  Checks an inbox POST before anything is stored.

Order of checks, cheapest first: the activity's shape, domain blocks, the
signature header, the signer's key (cache, else a signed fetch), the signature
itself (one key refetch if it fails: the peer may have rotated its key), and
that the key's owner is the activity's actor.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from actors.remote import InvalidActor, fetch_key
from federation.client import FetchError
from federation.context import NodeContext
from federation.httpsig import (
    ParsedSignature,
    SignatureError,
    SignatureReason,
    parse_signature,
    verify_signature,
)
from federation.jsonld import get_id
from federation.keys import KeyFormatError, load_public_key
from federation.origins import same_origin
from federation.store import RemoteActor
from inbox.keyguard import key_guard

MAX_ID_LENGTH = 2048


class InboxRejected(Exception):
    """The request is refused: ``status`` and a machine-readable ``reason``."""

    def __init__(
        self, status: int, reason: str, detail: str = "", *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ActivityHead:
    """The fields every activity must have, read from the untrusted body."""

    id: str
    type: str
    actor: str


@dataclass(frozen=True, slots=True)
class Verified:
    head: ActivityHead
    signer: RemoteActor


def _http_url(value: object) -> bool:
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 literal
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def read_head(document: Any, raw_body: bytes) -> ActivityHead:
    """The id, type and actor of an activity; 400 if any is missing or malformed.

    An activity without an ``id`` (allowed for transient activities) gets a
    stable one from its bytes, so a replay is still recognised.
    """
    if not isinstance(document, dict):
        raise InboxRejected(400, "not_an_object", "the body must be a JSON object")
    activity_type = document.get("type")
    if not isinstance(activity_type, str) or not activity_type or len(activity_type) > 64:
        raise InboxRejected(400, "bad_type", "type must be a string")
    actor = get_id(document.get("actor"))
    if not _http_url(actor):
        raise InboxRejected(400, "bad_actor", "actor must be an http(s) URL")
    assert actor is not None
    activity_id = document.get("id")
    if activity_id is None:
        activity_id = "urn:sha256:" + hashlib.sha256(raw_body).hexdigest()
    elif not _http_url(activity_id):
        raise InboxRejected(400, "bad_id", "id must be an http(s) URL")
    elif not same_origin(activity_id, actor):
        raise InboxRejected(400, "foreign_id", "the activity id is not on the actor's origin")
    if "object" in document and document["object"] is None:
        raise InboxRejected(400, "bad_object", "object must not be null")
    return ActivityHead(id=activity_id, type=activity_type, actor=actor)


def is_self_delete(document: dict[str, Any], head: ActivityHead) -> bool:
    """A Delete or Update whose object is the actor itself."""
    return head.type in ("Delete", "Update") and get_id(document.get("object")) == head.actor


def read_signature(node: NodeContext, method: str, path_qs: str, headers: Any) -> ParsedSignature:
    try:
        return parse_signature(method=method, target_uri=node.urls.base + path_qs, headers=headers)
    except SignatureError as exc:
        status = 400 if exc.reason == SignatureReason.MALFORMED_SIGNATURE else 401
        raise InboxRejected(status, exc.reason, exc.detail) from exc


async def verify_inbox_post(
    node: NodeContext, *, parsed: ParsedSignature, head: ActivityHead, body: bytes, peer: str = ""
) -> Verified:
    """Check the signature against the signer's key and the signer against the actor."""
    if not _http_url(parsed.key_id):
        raise InboxRejected(401, "key_fetch_failed", "keyId is not an http(s) URL")
    key_host = urlsplit(parsed.key_id).hostname or ""
    if node.blocks.is_blocked(key_host):
        raise InboxRejected(403, "blocked_domain", key_host)
    signer = await _signer_key(node, parsed.key_id, refresh=False, peer=peer)
    try:
        _verify_with(parsed, signer, body, node)
    except SignatureError as exc:
        if exc.reason != SignatureReason.BAD_SIGNATURE:
            raise InboxRejected(401, exc.reason, exc.detail) from exc
        # The key may have been rotated: fetch it once more (at most once per
        # interval for one key), then decide.
        if not key_guard(node).may_refetch(parsed.key_id):
            raise InboxRejected(401, exc.reason, exc.detail) from exc
        signer = await _signer_key(node, parsed.key_id, refresh=True, peer=peer)
        try:
            _verify_with(parsed, signer, body, node)
        except SignatureError as again:
            raise InboxRejected(401, again.reason, again.detail) from again
    if signer.uri != head.actor:
        raise InboxRejected(
            401, "actor_mismatch", f"signed by {signer.uri}, but the actor is {head.actor}"
        )
    return Verified(head=head, signer=signer)


def _verify_with(
    parsed: ParsedSignature, signer: RemoteActor, body: bytes, node: NodeContext
) -> None:
    assert signer.public_key_pem is not None
    try:
        key = load_public_key(signer.public_key_pem)
    except KeyFormatError as exc:
        raise SignatureError(SignatureReason.BAD_SIGNATURE, f"unusable key: {exc}") from exc
    verify_signature(parsed, key, method="POST", body=body, now=node.clock())


async def _signer_key(node: NodeContext, key_id: str, *, refresh: bool, peer: str) -> RemoteActor:
    guard = key_guard(node)
    failed = guard.failure(key_id)
    if failed is not None:
        status, reason, detail = failed
        raise InboxRejected(status, reason, f"{detail} (failed recently, not fetched again)")
    key_host = urlsplit(key_id).hostname or ""

    def before_fetch() -> None:
        wait = guard.admit(key_host, peer)
        if wait:
            raise InboxRejected(
                429, "key_fetch_limited", f"too many key fetches for {key_host} or {peer}",
                retry_after=wait,
            )  # fmt: skip
        guard.record_fetch(key_id)

    try:
        return await fetch_key(node, key_id, refresh=refresh, before_fetch=before_fetch)
    except (FetchError, InvalidActor) as exc:
        rejected = _key_rejection(exc)
        guard.record_failure(key_id, rejected.status, rejected.reason, rejected.detail)
        raise rejected from exc


def _key_rejection(exc: FetchError | InvalidActor) -> InboxRejected:
    if isinstance(exc, InvalidActor):
        return InboxRejected(401, "invalid_key_owner", exc.reason)
    if exc.reason in ("blocked_domain",):
        return InboxRejected(403, "blocked_domain", exc.url)
    if exc.status in (404, 410):
        return InboxRejected(401, "key_gone", str(exc))
    if exc.temporary:
        return InboxRejected(503, "key_fetch_failed", str(exc))
    return InboxRejected(401, "key_fetch_failed", str(exc))
