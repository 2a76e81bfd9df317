"""Create, Update, Delete, Announce, Like and the Undo of a reaction: posts and reactions.

Rules follow Mastodon's handling of incoming posts: an object must live on its
actor's host and be attributed to that actor; a Create is kept only when it
concerns a local actor; an Update applies only when newer; a deleted URI is
never re-created; only the owner may update or delete.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from actors.remote import InvalidActor, fetch_actor, fetch_authentic, parse_actor
from federation.client import FetchError
from federation.context import NodeContext
from federation.jsonld import (
    ACTOR_TYPES,
    audience,
    first_type,
    get_id,
    has_type,
    parse_time,
    visibility_of,
)
from federation.languages import with_language
from federation.origins import same_origin
from federation.shapes import normalise
from federation.store import InboxActivity
from inbox import threads
from inbox.errors import Refused
from inbox.handling import Outcome, Subject, applied, ignored

POST_TYPES = frozenset(
    {
        "Note",
        "Question",
        "Article",
        "Page",
        "Event",
        "Image",
        "Video",
        "Audio",
        "Document",
        "Proposal",
    }
)
MAX_CONTENT = 100_000


async def _object_of(node: NodeContext, item: InboxActivity) -> dict[str, Any]:
    """The activity's object: embedded, or fetched (signed) by its id."""
    inner = item.body.get("object")
    if isinstance(inner, dict):
        return inner
    object_id = get_id(inner)
    if object_id is None:
        raise Refused("no object")
    if not same_origin(object_id, item.actor):
        raise Refused("the object is on another origin than its actor")
    try:
        # Its id must be where it was finally served from (redirects followed).
        fetched, _ = await fetch_authentic(node, object_id, await node.instance_signer())
    except FetchError as exc:
        raise Refused(f"the object could not be fetched: {exc}") from exc
    except InvalidActor as exc:
        raise Refused(f"the object fetched is not {object_id}: {exc.reason}") from exc
    normalised: dict[str, Any] = normalise(with_language(fetched))
    return normalised


def _check_owned(node: NodeContext, obj: dict[str, Any], actor: str) -> str:
    object_id = get_id(obj)
    if object_id is None:
        raise Refused("the object has no id")
    if urlsplit(object_id).scheme not in ("http", "https"):
        # "javascript://host/%0A…" has the actor's host: it would be a link on our pages.
        raise Refused("the object id is not an http(s) URL")
    if node.urls.is_local(object_id):
        raise Refused("a remote object cannot have an id on our origin")
    if not same_origin(object_id, actor):
        raise Refused("the object id is on another origin than its actor")
    owner = get_id(obj.get("attributedTo"))
    if owner is not None and owner != actor:
        raise Refused("the object is attributed to someone else")
    if len(str(obj.get("content", ""))) > MAX_CONTENT:
        raise Refused("content too large")
    return object_id


async def _concerns_us(node: NodeContext, item: InboxActivity, obj: dict[str, Any]) -> bool:
    """Mastodon's related_to_local_activity: followed, addressed, or a reply to us."""
    if await node.store.local_actors_following(item.actor):
        return True
    if any(node.urls.is_local(a) for a in audience(obj) + audience(item.body)):
        return True
    reply_to = get_id(obj.get("inReplyTo"))
    return bool(reply_to and node.urls.is_local(reply_to))


async def handle_create(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    obj = await _object_of(node, item)
    if not has_type(obj, *POST_TYPES):
        return ignored(f"Create of {first_type(obj) or 'unknown'}")
    object_id = _check_owned(node, obj, item.actor)
    if not await _concerns_us(node, item, obj):
        return ignored("concerns no local actor")
    sender = await fetch_actor(node, item.actor)
    outcome = await node.store.save_object(
        uri=object_id,
        local=False,
        type=first_type(obj),
        attributed_to=item.actor,
        in_reply_to=get_id(obj.get("inReplyTo")),
        visibility=visibility_of(obj, sender.followers_url),
        body=obj,
        published=parse_time(obj.get("published")) or node.clock(),
        updated=parse_time(obj.get("updated")),
    )
    if outcome == "deleted":
        return ignored("deleted before")
    if outcome == "created" and obj.get("inReplyTo"):
        raw = await node.store.get_inbox_activity(item.id)  # as sent: with an embedded parent
        embedded = threads.embedded_parent(raw.body) if raw else None
        await threads.complete_thread(node, obj, item.actor, embedded, POST_TYPES)
    return applied("stored") if outcome == "created" else ignored(outcome)


async def handle_update(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    obj = await _object_of(node, item)
    object_id = get_id(obj)
    if has_type(obj, *ACTOR_TYPES):
        if object_id != item.actor:
            raise Refused("an actor may only update itself")
        if "@context" not in obj:
            # Mastodon embeds the actor without its own @context: it is the activity's.
            obj = {"@context": item.body.get("@context"), **obj}
        try:
            actor = parse_actor(obj, item.actor, node.clock())
        except InvalidActor as exc:
            raise Refused(f"invalid actor update: {exc.reason}") from exc
        await node.store.upsert_remote_actor(actor)
        return applied("actor updated")
    if not has_type(obj, *POST_TYPES):
        return ignored(f"Update of {first_type(obj) or 'unknown'}")
    object_id = _check_owned(node, obj, item.actor)
    stored = await node.store.get_object(object_id)
    if stored is None:
        return ignored("unknown object")
    if stored.attributed_to != item.actor:
        raise Refused("only the owner may update an object")
    updated = parse_time(obj.get("updated"))
    if updated is None:
        return ignored("no updated time")
    sender = await fetch_actor(node, item.actor)
    outcome = await node.store.save_object(
        uri=object_id,
        local=False,
        type=first_type(obj),
        attributed_to=item.actor,
        in_reply_to=get_id(obj.get("inReplyTo")),
        visibility=visibility_of(obj, sender.followers_url),
        body=obj,
        published=stored.published,
        updated=updated,
    )
    return applied("updated") if outcome == "updated" else ignored(outcome)


async def handle_delete(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    object_id = get_id(item.body.get("object"))
    if object_id is None:
        raise Refused("no object")
    if object_id == item.actor:
        await node.store.mark_remote_actor_gone(item.actor)
        return applied("actor deleted")
    stored = await node.store.get_object(object_id)
    if stored is None:
        return ignored("unknown object")
    if stored.attributed_to != item.actor:
        raise Refused("only the owner may delete an object")
    await node.store.delete_object(object_id, item.actor)
    # A proposal is a post too: it leaves the market with it.
    await node.store.set_proposal_status(object_id, "deleted", None, node.clock())
    return applied("deleted")


async def handle_announce(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    object_id = get_id(item.body.get("object"))
    if object_id is None:
        raise Refused("no object")
    local_object = node.urls.is_local(object_id)
    if not local_object and not await node.store.local_actors_following(item.actor):
        return ignored("concerns no local actor")
    if local_object and await node.store.get_object(object_id) is None:
        return ignored("unknown local object")
    added = await node.store.add_interaction(
        activity_id=item.activity_id, type="Announce", actor=item.actor, object_uri=object_id
    )
    return applied("announce stored") if added else ignored("already announced")


async def handle_like(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    object_id = get_id(item.body.get("object"))
    if object_id is None:
        raise Refused("no object")
    if not node.urls.is_local(object_id) or await node.store.get_object(object_id) is None:
        return ignored("not a local object")
    added = await node.store.add_interaction(
        activity_id=item.activity_id, type="Like", actor=item.actor, object_uri=object_id
    )
    return applied("like stored") if added else ignored("already liked")


async def handle_undo_reaction(node: NodeContext, item: InboxActivity, subject: Subject) -> Outcome:
    """Undo of a Like or an Announce: embedded, or named by the id of either."""
    inner = item.body.get("object")
    inner_id = get_id(inner)
    if inner_id is None:
        raise Refused("no object")
    kind = first_type(inner) if isinstance(inner, dict) else ""
    object_uri = get_id(inner.get("object")) if isinstance(inner, dict) else None
    for candidate in (kind,) if kind else ("Like", "Announce"):
        if await node.store.remove_interaction(
            type=candidate, actor=item.actor, object_uri=object_uri, activity_id=inner_id
        ):
            return applied(f"{candidate.lower()} undone")
    return ignored("nothing to undo")
