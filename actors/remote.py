"""Remote actors and their keys: fetched with signed GETs, cached in the database.

``parse_actor`` is pure and applies Mastodon's checks (id equals the URL
fetched, an actor type, an inbox, a username).  ``fetch_actor`` and
``fetch_key`` do the I/O: the cache first, then a GET signed by our instance
actor.  A key is refetched only when asked (after a signature failed), so a
peer that rotates its key is followed, but nobody can make us fetch in a loop.
Keys are also kept in memory for ``KEY_MEMORY_SECONDS`` (by keyId, per node), so
that a busy inbox does not read the same row for every request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urldefrag, urlsplit
from weakref import WeakKeyDictionary

from federation.client import FetchError
from federation.context import NodeContext
from federation.jsonld import ACTOR_TYPES, AS_CONTEXT, as_list, first_type, get_id
from federation.keys import Signer
from federation.origins import same_origin
from federation.shapes import normalise
from federation.store import RemoteActor, Store

STALE_AFTER = timedelta(days=1)
KEY_MEMORY_SECONDS = 60.0
KEY_MEMORY_SIZE = 2048

# keyId -> (monotonic time stored, actor), one map per node (its store).
_remembered: WeakKeyDictionary[Store, OrderedDict[str, tuple[float, RemoteActor]]] = (
    WeakKeyDictionary()
)


def _recall(node: NodeContext, key_id: str) -> RemoteActor | None:
    keys = _remembered.get(node.store)
    hit = keys.get(key_id) if keys is not None else None
    if hit is None or time.monotonic() - hit[0] > KEY_MEMORY_SECONDS:
        return None
    return hit[1]


def _remember(node: NodeContext, key_id: str, actor: RemoteActor) -> None:
    keys = _remembered.setdefault(node.store, OrderedDict())
    keys.pop(key_id, None)
    keys[key_id] = (time.monotonic(), actor)
    while len(keys) > KEY_MEMORY_SIZE:
        keys.popitem(last=False)


class InvalidActor(Exception):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def _has_as_context(document: dict[str, Any]) -> bool:
    return any(c == AS_CONTEXT or c == AS_CONTEXT + "#" for c in as_list(document.get("@context")))


def _netloc_if_http(value: object) -> str | None:
    """The lowercased host[:port] of an http(s) URL; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 literal
        return None
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


def _public_key(document: dict[str, Any]) -> tuple[str | None, str | None]:
    """The first RSA-looking key of an actor: (key id, PEM)."""
    for key in as_list(document.get("publicKey")):
        if isinstance(key, dict) and isinstance(key.get("publicKeyPem"), str):
            key_id = key.get("id")
            return (key_id if isinstance(key_id, str) else None, key["publicKeyPem"])
    return None, None


def parse_actor(document: dict[str, Any], fetched_url: str, now: datetime) -> RemoteActor:
    """A remote actor document, checked as Mastodon checks it."""
    document = normalise(document)
    actor_id = document.get("id")
    if not isinstance(actor_id, str) or actor_id != urldefrag(fetched_url)[0]:
        raise InvalidActor(fetched_url, "id does not match the URL fetched")
    if not _has_as_context(document):
        raise InvalidActor(fetched_url, "no ActivityStreams @context")
    actor_type = first_type(document)
    if not any(t in ACTOR_TYPES for t in as_list(document.get("type"))):
        raise InvalidActor(fetched_url, f"not an actor type: {actor_type!r}")
    inbox = get_id(document.get("inbox"))
    if not isinstance(inbox, str) or _netloc_if_http(inbox) is None:
        raise InvalidActor(fetched_url, "no inbox")
    username = document.get("preferredUsername")
    if not isinstance(username, str) or not username:
        webfinger = document.get("webfinger")
        if isinstance(webfinger, str) and "@" in webfinger:
            username = webfinger.split("@", 1)[0]
        else:
            raise InvalidActor(fetched_url, "no preferredUsername")
    endpoints = document.get("endpoints")
    shared_inbox = get_id(endpoints.get("sharedInbox")) if isinstance(endpoints, dict) else None
    host = urlsplit(actor_id).netloc.lower()
    if not isinstance(shared_inbox, str) or _netloc_if_http(shared_inbox) is None:
        shared_inbox = None
    elif not same_origin(shared_inbox, actor_id):
        # A shared inbox on another host could be used to redirect our deliveries.
        shared_inbox = None
    key_id, pem = _public_key(document)
    name = document.get("name")
    followers = get_id(document.get("followers"))
    return RemoteActor(
        uri=actor_id,
        host=host,
        type=actor_type,
        username=username[:200],
        name=name[:500] if isinstance(name, str) else "",
        inbox=inbox,
        shared_inbox=shared_inbox,
        followers_url=followers,
        key_id=key_id,
        public_key_pem=pem,
        document=document,
        fetched_at=now,
        gone=False,
    )


async def fetch_authentic(
    node: NodeContext, url: str, signer: Signer | None
) -> tuple[dict[str, Any], str]:
    """A document whose ``id`` is the URL it was finally served from, and that URL.

    As Mastodon does: if the document fetched (after redirects) names another id,
    that id is fetched itself, once, and must then match where it was served from.
    """
    document, final = await node.client.fetch_document(url, signer=signer)
    claimed = document.get("id")
    if claimed == urldefrag(final)[0] or not isinstance(claimed, str):
        return document, final
    if _netloc_if_http(claimed) is None:
        raise InvalidActor(url, "the id is not an http(s) URL")
    try:
        document, final = await node.client.fetch_document(claimed, signer=signer)
    except FetchError as exc:
        # Not "try again later": the document served at ``url`` is not what it claims.
        raise InvalidActor(url, f"id {claimed} could not be fetched: {exc.reason}") from exc
    if document.get("id") != urldefrag(final)[0]:
        raise InvalidActor(url, "id does not match the URL it was served from")
    return document, final


async def fetch_actor(
    node: NodeContext, uri: str, *, refresh: bool = False, exact: bool = True
) -> RemoteActor:
    """The actor at ``uri``: from the cache when fresh, else fetched and cached by its id.

    ``exact``: the actor's id must be ``uri`` (an activity's actor); otherwise ``uri``
    may lead to an actor with another id (a profile URL searched, a handle's link).
    """
    uri = urldefrag(uri)[0]
    if not refresh:
        cached = await node.store.get_remote_actor(uri)
        if cached is not None and node.clock() - cached.fetched_at < STALE_AFTER:
            return cached
    document, final = await fetch_authentic(node, uri, await node.instance_signer())
    actor = parse_actor(document, final, node.clock())
    if exact and actor.uri != uri:
        raise InvalidActor(uri, f"the document there is the actor {actor.uri}")
    await node.store.upsert_remote_actor(actor)
    return actor


async def fetch_key(
    node: NodeContext,
    key_id: str,
    *,
    refresh: bool = False,
    before_fetch: Callable[[], None] | None = None,
) -> RemoteActor:
    """The actor that owns ``key_id`` (with its PEM), checked both ways.

    The key document may be the actor itself (Mastodon: ``actor#main-key``) or a
    separate key document naming its ``owner`` (GoToSocial: ``actor/main-key``);
    either way the owner's ``publicKey.id`` must be ``key_id``.
    """
    if not refresh:
        remembered = _recall(node, key_id)
        if remembered is not None:
            return remembered
        cached = await node.store.get_remote_actor_by_key_id(key_id)
        if cached is not None and cached.public_key_pem:
            _remember(node, key_id, cached)
            return cached
    key_url = urldefrag(key_id)[0]
    if before_fetch is not None:
        before_fetch()  # may refuse: the inbox limits the fetches it causes
    signer = await node.instance_signer()
    document, final = await fetch_authentic(node, key_url, signer)
    document = normalise(document)
    if "inbox" in document:
        actor = parse_actor(document, final, node.clock())
    else:
        owner = get_id(document.get("owner"))
        if not isinstance(owner, str) or not isinstance(document.get("publicKeyPem"), str):
            raise InvalidActor(key_url, "neither an actor nor a key document")
        if not same_origin(owner, final):
            raise InvalidActor(key_url, "the key's owner is on another origin")
        owner_doc, owner_final = await fetch_authentic(node, owner, signer)
        actor = parse_actor(owner_doc, owner_final, node.clock())
    if actor.key_id != key_id or not actor.public_key_pem:
        raise InvalidActor(key_url, "the actor does not claim this key")
    if not same_origin(actor.uri, key_id):
        # A key id on one host may only belong to an actor of that host.
        raise InvalidActor(key_url, "the key's owner is on another origin")
    await node.store.upsert_remote_actor(actor)
    _remember(node, key_id, actor)
    return actor
