"""What a coop does: follow, approve, post, like, boost, and take each back.

One code path for every caller: the CLI, the inbox's automatic answers and
(later) the admin pages and the C2S API all call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from actors.local import build_actor, text_to_html
from actors.remote import InvalidActor, fetch_actor
from actors.webfinger import WebfingerError, resolve_actor
from federation.client import FetchError
from federation.context import NodeContext
from federation.jsonld import get_id, get_ids, visibility_of
from federation.netguard import normalize_domain
from federation.store import Follow, LocalActor, RemoteActor
from outbox import build, local
from outbox.errors import ActionError
from outbox.fanout import send_activity

PRIVATE_HINT = (
    "; this node does not contact loopback or private addresses "
    "(for a local test network, start it with --allow-private-addresses)"
)


def _failure(text: str, exc: Exception) -> str:
    """What went wrong, with the way out when the address guard refused the target."""
    return text + (PRIVATE_HINT if "blocked_address" in str(exc) else "")


async def _resolve(node: NodeContext, handle_or_url: str) -> str:
    """The actor URL of ``user@host`` (its host's WebFinger vouching) or a URL."""
    if handle_or_url.startswith(("http://", "https://")):
        return handle_or_url
    try:
        return (await resolve_actor(node, handle_or_url)).uri
    except WebfingerError as exc:
        raise ActionError(
            "unknown_actor", _failure(f"cannot find {handle_or_url}: {exc.reason}", exc)
        ) from exc
    except (FetchError, InvalidActor) as exc:
        raise ActionError(
            "unreachable_actor", _failure(f"cannot fetch {handle_or_url}: {exc}", exc)
        ) from exc


def _follow_document(follow: Follow, actor_url: str, target: str) -> dict[str, Any]:
    return {"id": follow.activity_id, "type": "Follow", "actor": actor_url, "object": target}


# -- following others ----------------------------------------------------------


async def lookup(node: NodeContext, handle_or_url: str) -> RemoteActor:
    """The remote actor of ``user@host`` (its host's WebFinger vouching) or of a URL,
    fetched afresh: what ``follow`` would follow."""
    is_url = handle_or_url.startswith(("http://", "https://"))
    if is_url and node.urls.is_local(handle_or_url):
        raise ActionError("local_actor", "a coop cannot follow itself")
    try:
        if is_url:
            target = await fetch_actor(node, handle_or_url, refresh=True, exact=False)
        else:  # a handle: its host's WebFinger must vouch for the actor
            target = await resolve_actor(node, handle_or_url)
    except WebfingerError as exc:
        raise ActionError(
            "unknown_actor", _failure(f"cannot find {handle_or_url}: {exc.reason}", exc)
        ) from exc
    except (FetchError, InvalidActor) as exc:
        raise ActionError(
            "unreachable_actor", _failure(f"cannot fetch {handle_or_url}: {exc}", exc)
        ) from exc
    if node.urls.is_local(target.uri):
        raise ActionError("local_actor", "a coop cannot follow itself")
    return target


async def follow(node: NodeContext, actor: LocalActor, handle_or_url: str) -> Follow:
    """Follow an actor by ``user@host`` or actor URL; pending until Accept.

    An actor of this node (a member, the coop) is followed locally, without HTTP.
    """
    target_here = await local.local_actor_named(node, handle_or_url)
    if target_here is not None:
        return await _follow_local(node, actor, target_here)
    target = await lookup(node, handle_or_url)
    record, activity = await _new_follow(node, actor, target)
    await send_activity(node, actor, activity)
    return record


async def _new_follow(
    node: NodeContext, actor: LocalActor, target: RemoteActor
) -> tuple[Follow, dict[str, Any]]:
    """Our pending outbound follow of ``target`` and its Follow activity."""
    existing = await node.store.get_follow(actor.id, target.uri, "outbound")
    if existing is not None and existing.state == "accepted":
        raise ActionError("already_following", f"we already follow {target.handle}")
    if existing is not None:
        raise ActionError(
            "already_requested", f"we already asked to follow {target.handle}; waiting for them"
        )
    activity_id = node.urls.activity(node.new_token())
    record = await node.store.upsert_follow(
        local_actor_id=actor.id,
        remote_actor=target.uri,
        direction="outbound",
        state="pending",
        activity_id=activity_id,
    )
    activity = build.build_follow(
        activity_id=activity_id, actor=node.urls.actor(actor.username), target=target.uri
    )
    return record, activity


async def _follow_local(node: NodeContext, actor: LocalActor, target: LocalActor) -> Follow:
    """Follow an actor of this node: both sides applied here, accepted at once
    unless the target approves its followers manually."""
    if target.id == actor.id:
        raise ActionError("local_actor", "an account cannot follow itself")
    record, activity = await _new_follow(node, actor, local.peer_view(node, target))
    await send_activity(node, actor, activity)  # recorded; no inbox to reach over HTTP
    inbound = await local.receive_follow(node, actor, target, record.activity_id)
    if inbound.state == "accepted":
        await accept_follower(node, target, inbound)
    return await node.store.get_follow(actor.id, record.remote_actor, "outbound") or record


async def unfollow(node: NodeContext, actor: LocalActor, handle_or_url: str) -> RemoteActor:
    target = await _known_remote(node, handle_or_url)
    record = await node.store.get_follow(actor.id, target.uri, "outbound")
    if record is None:
        raise ActionError("not_following", f"we do not follow {target.handle}")
    actor_url = node.urls.actor(actor.username)
    undo = build.build_undo(
        activity_id=node.urls.activity(node.new_token()),
        actor=actor_url,
        inner=_follow_document(record, actor_url, target.uri) | {"to": [target.uri]},
    )
    await node.store.delete_follow(record.id)
    await send_activity(node, actor, undo)
    target_here = await local.local_actor_named(node, target.uri)
    if target_here is not None:
        await local.drop_follow(node, actor, target_here)
    return target


# -- our followers -------------------------------------------------------------


async def accept_follower(node: NodeContext, actor: LocalActor, record: Follow) -> None:
    """Accept a follow request, with the Follow embedded as Mastodon expects."""
    await node.store.accept_follow(record.id)
    accept = build.build_accept(
        activity_id=node.urls.activity(node.new_token()),
        actor=node.urls.actor(actor.username),
        follow=_follow_document(record, record.remote_actor, node.urls.actor(actor.username)),
    )
    await send_activity(node, actor, accept)
    await local.settle_follower(node, actor, record, accepted=True)


async def reject_follower(node: NodeContext, actor: LocalActor, record: Follow) -> None:
    """Refuse a request, or remove an accepted follower (Mastodon does the same)."""
    await node.store.delete_follow(record.id)
    reject = build.build_reject(
        activity_id=node.urls.activity(node.new_token()),
        actor=node.urls.actor(actor.username),
        follow=_follow_document(record, record.remote_actor, node.urls.actor(actor.username)),
    )
    await send_activity(node, actor, reject)
    await local.settle_follower(node, actor, record, accepted=False)


async def approve(node: NodeContext, actor: LocalActor, handle_or_url: str) -> RemoteActor:
    remote = await _known_remote(node, handle_or_url)
    record = await node.store.get_follow(actor.id, remote.uri, "inbound")
    if record is None:
        raise ActionError("no_request", f"{remote.handle} has not asked to follow")
    if record.state == "accepted":
        raise ActionError("already_accepted", f"{remote.handle} already follows")
    await accept_follower(node, actor, record)
    return remote


async def reject(node: NodeContext, actor: LocalActor, handle_or_url: str) -> RemoteActor:
    remote = await _known_remote(node, handle_or_url)
    record = await node.store.get_follow(actor.id, remote.uri, "inbound")
    if record is None:
        raise ActionError("no_request", f"{remote.handle} does not follow and has not asked to")
    await reject_follower(node, actor, record)
    return remote


async def _known_remote(node: NodeContext, handle_or_url: str) -> RemoteActor:
    here = await local.local_actor_named(node, handle_or_url)
    if here is not None:
        return local.peer_view(node, here)
    if handle_or_url.startswith(("http://", "https://")):
        found = await node.store.get_remote_actor(handle_or_url)
    else:
        user, _, host = handle_or_url.lstrip("@").removeprefix("acct:").partition("@")
        found = await node.store.find_remote_actor_by_handle(user, host.lower())
    if found is None:
        raise ActionError("unknown_actor", f"no known actor {handle_or_url}")
    return found


# -- posts ---------------------------------------------------------------------


async def publish_object(
    node: NodeContext,
    actor: LocalActor,
    obj: dict[str, Any],
    *,
    mentions: Sequence[str] = (),
    context: list[Any] | None = None,
) -> dict[str, Any]:
    """Store a new object of ours and send ``Create`` to its audience."""
    now = node.clock()
    actor_url = node.urls.actor(actor.username)
    await node.store.save_object(
        uri=obj["id"],
        local=True,
        type=obj["type"] if isinstance(obj["type"], str) else obj["type"][0],
        attributed_to=actor_url,
        in_reply_to=obj.get("inReplyTo"),
        visibility=_visibility(node, actor, obj),
        body=obj,
        published=now,
        updated=None,
    )
    create = build.build_create(
        activity_id=f"{obj['id']}/activity",
        actor=actor_url,
        obj=obj,
        published=now,
        context=context,
    )
    await send_activity(node, actor, create, extra_actors=mentions)
    return create


async def post_note(
    node: NodeContext,
    actor: LocalActor,
    text: str,
    *,
    visibility: str = "public",
    in_reply_to: str | None = None,
    mentions: list[str] | None = None,
) -> dict[str, Any]:
    if not text.strip():
        raise ActionError("empty", "a post needs some text")
    now = node.clock()
    token = node.new_token()
    actor_url = node.urls.actor(actor.username)
    mention_urls = [await _resolve(node, m) for m in mentions or []]
    if in_reply_to:
        # As Mastodon does: a reply is addressed to the author of the post it answers.
        parent = await node.store.get_object(in_reply_to)
        if parent is not None and parent.attributed_to not in (actor_url, *mention_urls):
            mention_urls.append(parent.attributed_to)
    audience = build.addressing(
        visibility=visibility, followers=node.urls.followers(actor.username), mentions=mention_urls
    )
    note = build.build_note(
        object_id=node.urls.object(token),
        actor=actor_url,
        content=text_to_html(text),
        published=now,
        url=node.urls.object(token),
        to=audience["to"],
        cc=audience["cc"],
        in_reply_to=in_reply_to,
        tags=[{"type": "Mention", "href": m} for m in mention_urls],
    )
    return await publish_object(node, actor, note, mentions=mention_urls)


async def update_object(
    node: NodeContext,
    actor: LocalActor,
    obj: dict[str, Any],
    *,
    context: list[Any] | None = None,
    updated: datetime | None = None,
) -> dict[str, Any]:
    """Send the full object again with a newer ``updated`` (now, unless given)."""
    now = updated or node.clock()
    actor_url = node.urls.actor(actor.username)
    update = build.build_update(
        activity_id=node.urls.activity(node.new_token()),
        actor=actor_url,
        obj=obj,
        updated=now,
        context=context,
    )
    outcome = await node.store.save_object(
        uri=obj["id"],
        local=True,
        type=obj["type"] if isinstance(obj["type"], str) else obj["type"][0],
        attributed_to=actor_url,
        in_reply_to=obj.get("inReplyTo"),
        visibility=_visibility(node, actor, obj),
        body=update["object"],
        published=None,
        updated=now,
    )
    if outcome not in ("created", "updated"):
        raise ActionError("not_updatable", f"{obj['id']} cannot be updated ({outcome})")
    await send_activity(node, actor, update)
    return update


async def update_profile(node: NodeContext, actor: LocalActor) -> dict[str, Any]:
    """Send the actor's current document to its followers (one Update for any changes)."""
    update = build.build_actor_update(
        activity_id=node.urls.activity(node.new_token()),
        actor_document=build_actor(actor, node.urls),
        followers=node.urls.followers(actor.username),
        updated=node.clock(),
    )
    await send_activity(node, actor, update)
    return update


async def delete_post(node: NodeContext, actor: LocalActor, uri: str) -> dict[str, Any]:
    stored = await node.store.get_object(uri)
    actor_url = node.urls.actor(actor.username)
    if stored is None or not stored.local or stored.attributed_to != actor_url:
        raise ActionError("not_found", f"no post of ours at {uri}")
    if stored.deleted_at is not None:
        raise ActionError("already_deleted", f"{uri} is already deleted")
    await node.store.delete_object(uri, actor_url)
    delete = build.build_delete(
        activity_id=node.urls.activity(node.new_token()),
        actor=actor_url,
        object_id=uri,
        to=get_ids(stored.body.get("to")),
        cc=get_ids(stored.body.get("cc")),
    )
    await send_activity(node, actor, delete)
    return delete


async def like(node: NodeContext, actor: LocalActor, object_uri: str) -> dict[str, Any]:
    owner = await _object_owner(node, object_uri)
    activity = build.build_like(
        activity_id=node.urls.activity(node.new_token()),
        actor=node.urls.actor(actor.username),
        object_id=object_uri,
        object_owner=owner,
    )
    await send_activity(node, actor, activity)
    return activity


async def announce(node: NodeContext, actor: LocalActor, object_uri: str) -> dict[str, Any]:
    owner = await _object_owner(node, object_uri)
    activity = build.build_announce(
        activity_id=node.urls.activity(node.new_token()),
        actor=node.urls.actor(actor.username),
        object_id=object_uri,
        object_owner=owner,
        followers=node.urls.followers(actor.username),
        published=node.clock(),
    )
    await send_activity(node, actor, activity)
    return activity


async def undo(node: NodeContext, actor: LocalActor, activity_id: str) -> dict[str, Any]:
    """Take back a Like or an Announce we sent, by its activity id."""
    stored = await node.store.get_outbox_activity(activity_id)
    actor_url = node.urls.actor(actor.username)
    if (
        stored is None
        or stored["body"].get("type") not in ("Like", "Announce")
        or get_id(stored["body"].get("actor")) != actor_url
    ):
        # Another local actor's Like is not this outbox's to take back.
        raise ActionError("not_found", f"no Like or Announce of ours at {activity_id}")
    activity = build.build_undo(
        activity_id=node.urls.activity(node.new_token()),
        actor=actor_url,
        inner=stored["body"],
    )
    await send_activity(node, actor, activity)
    return activity


async def _object_owner(node: NodeContext, object_uri: str) -> str:
    stored = await node.store.get_object(object_uri)
    if stored is None:
        raise ActionError("unknown_object", f"{object_uri} is not a post this node has seen")
    return stored.attributed_to


def _visibility(node: NodeContext, actor: LocalActor, obj: dict[str, Any]) -> str:
    return visibility_of(obj, node.urls.followers(actor.username))


# -- domain blocks ---------------------------------------------------------------


async def block_domain(node: NodeContext, domain: str, reason: str = "") -> tuple[str, bool]:
    """Block a domain (and its subdomains): (normalized domain, newly blocked)."""
    name = normalize_domain(domain)
    if not name or " " in name or "/" in name:
        raise ActionError("invalid_domain", f"{domain!r} is not a domain")
    added = await node.store.add_domain_block(name, reason)
    node.blocks.add(name)
    await node.store.notify_config("blocks")  # the node's other processes reload
    return name, added


async def unblock_domain(node: NodeContext, domain: str) -> tuple[str, bool]:
    """Lift a block: (normalized domain, whether it was blocked)."""
    name = normalize_domain(domain)
    removed = await node.store.remove_domain_block(name)
    node.blocks.remove(name)
    await node.store.notify_config("blocks")
    return name, removed
