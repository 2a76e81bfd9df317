"""Threads: the parents of an incoming reply, fetched so that apps can show them.

When a stored reply names a parent we do not have, the parent is fetched
(signed by the instance actor, through the SSRF-guarded client, and only kept
when its id is where it was served from: ``fetch_authentic``), then its own
parent, up to ``MAX_ANCESTORS`` per incoming activity.  A parent the activity
embeds is taken as it is only when its id is on the origin of the activity's
actor (that server vouches for it); otherwise it is fetched.  Fetches per
remote origin are rate-limited.  This runs in the inbox job, never in a
request; a parent that cannot be had is logged and skipped, never an error of
the reply.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from actors.remote import InvalidActor, fetch_actor, fetch_authentic
from federation.client import FetchError
from federation.context import NodeContext
from federation.jsonld import first_type, get_id, has_type, parse_time, visibility_of
from federation.languages import with_language
from federation.origins import origin_of, same_origin
from federation.ratelimit import RateLimiter
from federation.shapes import normalise

log = logging.getLogger(__name__)

MAX_ANCESTORS = 5
# Parent fetches per remote origin: a burst of 20, then one every two seconds.
FETCH_RATE = 0.5
FETCH_BURST = 20
MAX_CONTENT = 100_000
_LIMITERS: dict[str, RateLimiter] = {}


class NoParent(Exception):
    """The parent cannot be kept (why is the message)."""


def _limiter(node: NodeContext) -> RateLimiter:
    limiter = _LIMITERS.get(node.urls.base)
    if limiter is None:
        limiter = _LIMITERS[node.urls.base] = RateLimiter(rate=FETCH_RATE, burst=FETCH_BURST)
    return limiter


def embedded_parent(raw_activity: dict[str, Any]) -> dict[str, Any] | None:
    """The parent object as the activity embeds it (``inReplyTo`` as an object)."""
    inner = raw_activity.get("object")
    parent = inner.get("inReplyTo") if isinstance(inner, dict) else None
    if isinstance(parent, list) and len(parent) == 1:
        parent = parent[0]
    return parent if isinstance(parent, dict) and "type" in parent else None


async def _document(
    node: NodeContext, uri: str, embedded: dict[str, Any] | None, author: str
) -> dict[str, Any]:
    if embedded is not None and get_id(embedded) == uri and same_origin(uri, author):
        return dict(normalise(with_language(embedded)))
    origin = origin_of(uri)
    if origin is None:
        raise NoParent("not an http(s) URL")
    if _limiter(node).take(":".join(map(str, origin))):
        raise NoParent("too many parent fetches from that origin")
    fetched, _ = await fetch_authentic(node, uri, await node.instance_signer())
    return dict(normalise(with_language(fetched)))


async def _keep(
    node: NodeContext, uri: str, parent: dict[str, Any], post_types: frozenset[str]
) -> None:
    if get_id(parent) != uri:
        raise NoParent("the document is not the parent")
    if not has_type(parent, *post_types):
        raise NoParent(f"a {first_type(parent) or 'document without type'} is not a post")
    owner = get_id(parent.get("attributedTo"))
    if owner is None or not same_origin(owner, uri):
        raise NoParent("the parent's author is not on the parent's origin")
    if len(str(parent.get("content", ""))) > MAX_CONTENT:
        raise NoParent("content too large")
    author = await fetch_actor(node, owner)
    await node.store.save_object(
        uri=uri,
        local=False,
        type=first_type(parent),
        attributed_to=owner,
        in_reply_to=get_id(parent.get("inReplyTo")),
        visibility=visibility_of(parent, author.followers_url),
        body=parent,
        published=parse_time(parent.get("published")) or node.clock(),
        updated=parse_time(parent.get("updated")),
    )


async def complete_thread(
    node: NodeContext,
    reply: dict[str, Any],
    author: str,
    embedded: dict[str, Any] | None,
    post_types: frozenset[str],
) -> int:
    """Fetch and store the unknown ancestors of ``reply`` (kept when they are of
    ``post_types``); how many were stored."""
    stored = 0
    parent_uri = get_id(reply.get("inReplyTo"))
    for _ in range(MAX_ANCESTORS):
        if parent_uri is None or urlsplit(parent_uri).scheme not in ("http", "https"):
            break
        if node.urls.is_local(parent_uri) or await node.store.objects_by_uris([parent_uri]):
            break
        try:
            parent = await _document(node, parent_uri, embedded, author)
            await _keep(node, parent_uri, parent, post_types)
        except (NoParent, FetchError, InvalidActor) as exc:
            log.info("parent %s of a reply by %s not kept: %s", parent_uri, author, exc)
            break
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("parent %s of a reply by %s is malformed: %r", parent_uri, author, exc)
            break
        stored += 1
        author = get_id(parent.get("attributedTo")) or author
        parent_uri, embedded = get_id(parent.get("inReplyTo")), None
    return stored
